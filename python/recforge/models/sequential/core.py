"""Training and inference of the sequence networks, shared by SASRec and BERT4Rec.

The model classes (:mod:`.sasrec`, :mod:`.bert4rec`) hold parameters and learned arrays; this
module turns ordered sequences into batches, runs :func:`recforge.torch.train.fit_loop` with
the chosen objective, and turns any histories into query vectors for ``dense_topk``. torch
is imported here, and this module is imported only inside ``fit`` and scoring methods.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from recforge.models.sequential import batching as B
from recforge.models.sequential import objectives as O
from recforge.models.sequential.networks import BERT4RecNet, SASRecNet, SequenceNet

#: sequences per inference forward pass
ENCODE_CHUNK = 1024


@dataclass
class NetSpec:
    """Architecture and objective (the model classes' constructor arguments)."""

    kind: str                 # "sasrec" | "bert4rec"
    hidden: int
    heads: int
    blocks: int
    max_len: int
    dropout: float
    pre_norm: bool
    loss: str
    n_negatives: int
    negative_sampler: str
    mask_prob: float = 0.2
    inner: int | None = None
    scale_embeddings: bool = False

    def build(self, n_items: int) -> SequenceNet:
        cls = SASRecNet if self.kind == "sasrec" else BERT4RecNet
        return cls(n_items, self.hidden, self.heads, self.blocks, self.max_len, self.dropout, self.pre_norm,
                   inner=self.inner, scale_embeddings=self.scale_embeddings)


def training_sequences(spec: NetSpec, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Sequences that yield a target: >= 2 items (SASRec), >= 1 (BERT4Rec)."""
    need = 2 if spec.kind == "sasrec" else 1
    return [s for s in B.as_sequences(sequences) if s.size >= need]


def batch_arrays(spec: NetSpec, sequences: list[np.ndarray], n_items: int, rng: np.random.Generator,
                 sampler=None) -> dict[str, np.ndarray]:
    """One training batch as numpy arrays: tokens, targets and, per loss, the negatives."""
    if spec.kind == "sasrec":
        inputs, targets = B.next_item_batch(sequences, spec.max_len)
    else:
        inputs, targets = B.masked_item_batch(sequences, spec.max_len, spec.mask_prob, n_items + 1, rng)
    batch = {"tokens": inputs, "targets": targets}
    if spec.loss == "bce":
        negatives = B.uniform_negatives(sequences, targets, n_items, rng)
        batch["negatives"] = negatives[targets != B.PAD] - 1
    elif spec.loss == "sampled_softmax":
        batch["negatives"] = sampler.sample(min(spec.n_negatives, n_items), rng=rng)[0]
    return batch


def epoch_batches_of(spec: NetSpec, sequences: list[np.ndarray], n_items: int, batch_size: int,
                     sampler=None) -> Callable:
    """fit_loop's ``epoch_batches``: length-bucketed batches of the training sequences."""
    lengths = np.fromiter((s.size for s in sequences), dtype=np.int64, count=len(sequences))

    def epoch_batches(epoch: int, rng: np.random.Generator):
        for idx in B.bucketed_batches(lengths, batch_size, rng):
            yield batch_arrays(spec, [sequences[i] for i in idx], n_items, rng, sampler)

    return epoch_batches


def make_step(spec: NetSpec, net: SequenceNet, log_q: torch.Tensor | None = None) -> Callable:
    """fit_loop's ``step``: the loss of one batch (tensors on the device)."""

    def step(batch: dict) -> torch.Tensor:
        q, y = O.gather_targets(net(batch["tokens"]), batch["targets"])
        if spec.loss == "bce":
            return O.bce_loss(net, q, y, batch["negatives"])
        if spec.loss == "sampled_softmax":
            return O.sampled_softmax_loss(net, q, y, batch["negatives"], log_q.to(q.device))
        return O.full_ce_loss(net, q, y)

    return step


def negative_sampler(spec: NetSpec, sequences: Sequence[np.ndarray], n_items: int):
    """The shared-negative sampler of ``sampled_softmax`` (None for the other losses)."""
    if spec.loss != "sampled_softmax":
        return None
    from recforge.torch.samplers import PopularityNegativeSampler

    return PopularityNegativeSampler(item_counts_of(sequences, n_items), alpha=O.SAMPLERS[spec.negative_sampler],
                                     smoothing=1.0)


def item_counts_of(sequences: Sequence[np.ndarray], n_items: int) -> np.ndarray:
    flat = np.concatenate(list(sequences)) if len(sequences) else np.zeros(0, np.int64)
    return np.bincount(flat, minlength=n_items).astype(np.float64)


@torch.no_grad()
def encode(spec: NetSpec, net: SequenceNet, histories: Sequence[np.ndarray], chunk: int = ENCODE_CHUNK) -> np.ndarray:
    """(len(histories), d) float32 query vectors for the next item after each history
    (SASRec: the output at the last item; BERT4Rec: at a mask token appended to the history)."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    histories = B.as_sequences(histories)
    lengths = np.fromiter((h.size for h in histories), dtype=np.int64, count=len(histories))
    out = np.zeros((len(histories), net.item_embedding.embedding_dim), dtype=np.float32)
    for idx in B.length_sorted_chunks(lengths, chunk):
        part = [histories[i] for i in idx]
        if spec.kind == "sasrec":
            tokens = B.pad_left(part, spec.max_len)
        else:
            tokens = B.pad_left(part, spec.max_len, extra=net.n_items + 1)
        out[idx] = net(torch.from_numpy(tokens).to(device))[:, -1, :].float().cpu().numpy()
    net.train(was_training)
    return out


@torch.no_grad()
def set_item_table(net: SequenceNet, table: np.ndarray) -> None:
    """Overwrite the item rows (tokens 1..n_items) of the embedding table with ``table``
    (n_items, hidden); padding (and BERT4Rec's mask token) keep their rows."""
    weight = net.item_embedding.weight
    if table.shape != (net.n_items, weight.shape[1]):
        raise ValueError(f"the item table must be ({net.n_items}, {weight.shape[1]}), got {table.shape}")
    weight[1:net.n_items + 1] = torch.from_numpy(np.asarray(table, dtype=np.float32)).to(weight.device)


@torch.no_grad()
def item_arrays(net: SequenceNet) -> tuple[np.ndarray, np.ndarray | None]:
    """(item vectors (n_items, d) float32, output biases (n_items,) float32 or None)."""
    table = np.ascontiguousarray(net.item_table().detach().float().cpu().numpy())
    bias = net.item_bias()
    return table, None if bias is None else bias.detach().float().cpu().numpy().copy()


def state_arrays(net: SequenceNet) -> dict[str, np.ndarray]:
    """The network's weights as float32 numpy arrays (keys: state_dict names)."""
    return {k: t.detach().float().cpu().numpy().copy() for k, t in net.state_dict().items()}


def load_arrays(net: SequenceNet, arrays: dict[str, np.ndarray]) -> SequenceNet:
    net.load_state_dict({k: torch.from_numpy(np.asarray(a, dtype=np.float32)) for k, a in arrays.items()})
    return net.eval()
