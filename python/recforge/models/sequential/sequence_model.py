r"""The base of SASRec and BERT4Rec: a Transformer over each user's ordered history.

The user's vector is the network's query at the end of the history (module
:mod:`.networks`), the item vectors are the item embedding table (plus BERT4Rec's output bias), so

.. math:: \mathrm{score}(u, i) = f_\theta(s_u) \cdot e_i + b_i

is ranked over the whole catalogue by :func:`recforge.kernels.dense_topk` with the exclusion
fused (through :class:`~recforge.models.embedding.EmbeddingRecommender`). Any history can be
given at request time (``recommend(users, history=[...])``, oldest first): it is encoded on the
spot, no refit (real-time personalisation). Stored users use the encoding of their training
sequence, computed once at the end of ``fit``.

Training is :func:`recforge.torch.train.fit_loop` (seeding, early stopping on validation
NDCG@10, checkpoints, progress bar, AMP) over length-bucketed batches (:mod:`.batching`) with
the chosen objective (:mod:`.objectives`). Validation: ``fit(data, validation=(histories,
targets))`` (e.g. the leave-one-out split's validation stage), or, with
``early_stopping_patience`` and no validation given, each user's last training item (users
with >= 3 items) is held out and the rest trained on. torch is imported inside ``fit`` and the
scoring methods only; without it they raise ImportError naming ``pip install "recforge[torch]"``.

``amp=True``: float16 autocast + GradScaler on CUDA, bfloat16 autocast on the CPU. Not the
default: on this project's 2-core AMX/avx512_bf16 machine a Beauty SASRec epoch (BCE, hidden 64,
max_len 50, batch 256, 1 thread) was no faster in wall time (float32/bf16 = 0.99) and used 7% less
CPU time (float32/bf16 = 1.08)
(``benchmarks/bench_sasrec_speed.py --amp-compare``, medians of 3, load ~22).

Item init: ``item_init="random"`` draws the item table from N(0, 1/hidden); ``"text"`` starts
it from the items' texts (``item_text_fields`` of the item metadata, encoded by
``item_encoder`` with ``item_encoder_options``; :mod:`.text_init`), and training then updates
it like the random one. Only the trained weights are saved, so a loaded model needs no texts.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp

from recforge.kernels import _validation as v
from recforge.models.embedding import EmbeddingRecommender
from recforge.models.training_data import HistoryChunk, TrainingData

LOSSES = ("bce", "sampled_softmax", "ce")
NEGATIVE_SAMPLERS = ("uniform", "popularity")
NET_PREFIX = "net_"  # saved weights: "net_" + state_dict name with "." -> "__" + "_" (artifact names)


def _saved_name(name: str) -> str:
    return NET_PREFIX + name.replace(".", "__") + "_"


def _weight_name(saved: str) -> str:
    return saved[len(NET_PREFIX):-1].replace("__", ".")
#: validation cut-off (NDCG@VALIDATION_K drives early stopping)
VALIDATION_K = 10


def require_torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError('SASRec and BERT4Rec need PyTorch: pip install "recforge[torch]"') from exc
    return torch


def ndcg_of_targets(found: np.ndarray, targets: np.ndarray) -> float:
    r"""Mean :math:`[r < k] / \log_2(r + 2)` of each target's position r in its top-k row."""
    rows, cols = np.nonzero(found == targets[:, None])
    gains = np.zeros(found.shape[0])
    gains[rows] = 1.0 / np.log2(cols + 2.0)
    return float(gains.mean()) if gains.size else 0.0


class SequenceRecommender(EmbeddingRecommender):
    """Shared by :class:`~recforge.models.sequential.sasrec.SASRec` and
    :class:`~recforge.models.sequential.bert4rec.BERT4Rec` (module docstring)."""

    #: nothing is strictly required: Interactions give the event order, a bare matrix is read in
    #: item-code order (with a warning)
    requires: frozenset = frozenset()
    #: "sasrec" or "bert4rec" (the network)
    _kind = "sasrec"

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        for name in ("hidden", "heads", "blocks", "max_len", "n_negatives", "batch_size", "epochs"):
            v.check_positive_int(getattr(self, name), name)
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if self.ffn_size is not None:
            v.check_positive_int(self.ffn_size, "ffn_size")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.negative_sampler not in NEGATIVE_SAMPLERS:
            raise ValueError(f"negative_sampler must be one of {NEGATIVE_SAMPLERS}, got {self.negative_sampler!r}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if not (np.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.early_stopping_patience is not None:
            v.check_positive_int(self.early_stopping_patience, "early_stopping_patience")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise TypeError(f"seed must be an integer, got {self.seed!r}")
        if int(self.num_threads) < 0:
            raise ValueError(f"num_threads must be >= 0, got {self.num_threads}")
        self._check_item_init_params()

    def _check_item_init_params(self) -> None:
        from recforge.models.sequential.text_init import ITEM_INITS

        if self.item_init not in ITEM_INITS:
            raise ValueError(f"item_init must be one of {ITEM_INITS}, got {self.item_init!r}")
        fields = self.item_text_fields
        if isinstance(fields, str) or not fields or not all(isinstance(f, str) for f in fields):
            raise TypeError(f"item_text_fields must be a non-empty tuple of metadata column names, got {fields!r}")
        from recforge.models.content.encoders import ENCODERS

        if not isinstance(self.item_encoder, str) or self.item_encoder not in ENCODERS:
            raise ValueError(f"item_encoder must be one of {sorted(ENCODERS)} (a name: the model is saved as "
                             f"JSON), got {self.item_encoder!r}")
        if self.item_encoder_options is not None and not isinstance(self.item_encoder_options, dict):
            raise TypeError(f"item_encoder_options must be a dict or None, got {self.item_encoder_options!r}")

    def _spec(self):
        from recforge.models.sequential.core import NetSpec

        return NetSpec(self._kind, int(self.hidden), int(self.heads), int(self.blocks), int(self.max_len),
                       float(self.dropout), bool(self.pre_norm), self.loss, int(self.n_negatives),
                       self.negative_sampler, mask_prob=float(getattr(self, "mask_prob", 0.2)),
                       inner=self._ffn_size())

    def _ffn_size(self) -> int:
        return int(self.ffn_size) if self.ffn_size is not None else self._default_ffn_multiple * int(self.hidden)

    _default_ffn_multiple = 1

    # ------------------------------------------------------------------ fitting
    def fit(self, data: Any, *, validation: tuple[Sequence[np.ndarray], Any] | None = None,
            on_validate: Callable[[int, float], None] | None = None) -> "SequenceRecommender":
        """Learn from ``data`` (Interactions with timestamps or order, or TrainingData).

        ``validation``: ``(histories, targets)`` — per validation user an item-code sequence
        (oldest first) and the code of the next item — for early stopping on NDCG@10
        (default: each user's last training item, see the module docstring).
        ``on_validate(epoch, ndcg)``: called after each validation, while the model can already
        recommend with ``history=`` (e.g. to log test figures during training).
        """
        self._validation_given, self._on_validate = validation, on_validate
        try:
            return super().fit(data)
        finally:
            self._validation_given = self._on_validate = None

    def _fit(self, data: TrainingData) -> None:
        torch = require_torch()
        from recforge.models.sequential import core
        from recforge.torch import train

        spec = self._spec()
        sequences = self._sequences_of(data)
        n_items = data.n_items
        train_seqs, val_hist, val_targets = self._validation_split(sequences)
        train_seqs = core.training_sequences(spec, train_seqs)
        if not train_seqs:
            raise ValueError(f"{type(self).__name__} needs at least one user with "
                             f"{2 if self._kind == 'sasrec' else 1}+ items in order to train")
        text_table = self._text_item_table(data) if self.item_init == "text" else None
        train.seed_everything(int(self.seed))
        net = spec.build(n_items)
        if text_table is not None:
            core.set_item_table(net, text_table)
        self._network, self._net_arrays = net, None
        sampler = core.negative_sampler(spec, train_seqs, n_items)
        log_q = None if sampler is None else torch.from_numpy(sampler.log_probabilities.astype(np.float32))
        validate = None
        if val_hist is not None and len(val_hist):
            validate = self._validator(spec, net, val_hist, val_targets)
        config = train.TrainConfig(
            epochs=int(self.epochs), seed=int(self.seed), device=self.device,
            patience=self.early_stopping_patience if validate is not None else None,
            metric_name=f"ndcg@{VALIDATION_K}", checkpoint_dir=self.checkpoint_dir, amp=bool(self.amp),
            num_threads=int(self.num_threads) or None, progress=bool(self.progress))
        lr, wd = float(self.lr), float(self.weight_decay)
        history = train.fit_loop(net, lambda p: torch.optim.Adam(p, lr=lr, weight_decay=wd),
                                 core.epoch_batches_of(spec, train_seqs, n_items, int(self.batch_size), sampler),
                                 core.make_step(spec, net, log_q), validate=validate, config=config)
        net.cpu().eval()
        self.history_ = history.to_dict()
        self.best_epoch_ = history.best_epoch
        self._set_item_side(net)
        self.user_factors_ = core.encode(spec, net, sequences)

    def _text_item_table(self, data: TrainingData) -> np.ndarray:
        """The initial item table from the items' texts (:mod:`.text_init`), computed before the
        seeding so the rest of the network starts as with ``item_init="random"``."""
        from recforge.models.sequential import text_init

        texts = text_init.item_texts_for_init(data, self.item_text_fields, type(self).__name__)
        return text_init.text_item_table(texts, int(self.hidden), self.item_encoder, self.item_encoder_options,
                                         progress=bool(self.progress))

    def _sequences_of(self, data: TrainingData) -> list[np.ndarray]:
        """The users' item sequences, oldest first; a bare matrix is read in item-code order (the
        order a matrix ``history=`` gets too), with a warning."""
        if data.has("sequences"):
            return [np.asarray(s, dtype=np.int64) for s in data.sequences]
        warnings.warn(f"{type(self).__name__} was given a matrix, which has no event order: each user's items are "
                      f"read in item-code order. Pass recforge.data.Interactions (with timestamps) to train on "
                      f"real sequences.", stacklevel=4)
        R = data.matrix
        return [R.indices[R.indptr[u]:R.indptr[u + 1]].astype(np.int64) for u in range(R.shape[0])]

    def _validation_split(self, sequences: list[np.ndarray]):
        """(training sequences, validation histories, validation targets) (module docstring)."""
        given = self._validation_given
        if given is not None:
            histories, targets = given
            histories = [np.asarray(h, dtype=np.int64).reshape(-1) for h in histories]
            targets = np.asarray(targets, dtype=np.int64).reshape(-1)
            if len(histories) != targets.size:
                raise ValueError(f"validation needs one target per history, got {len(histories)} and {targets.size}")
            check = np.concatenate(histories + [targets]) if histories else targets
            if check.size and (check.min() < 0 or check.max() >= self.n_items_):
                raise ValueError(f"validation holds item codes outside 0..{self.n_items_ - 1}")
            return sequences, histories, targets
        if self.early_stopping_patience is None:
            return sequences, None, None
        held = [k for k, s in enumerate(sequences) if s.size >= 3]
        train_seqs = [s[:-1] if s.size >= 3 else s for s in sequences]
        return train_seqs, [train_seqs[k] for k in held], np.array([sequences[k][-1] for k in held], dtype=np.int64)

    def _validator(self, spec, net, histories: list[np.ndarray], targets: np.ndarray) -> Callable[[], float]:
        from recforge.kernels import dense_topk
        from recforge.models.sequential import core

        lengths = np.array([h.size for h in histories], dtype=np.int64)
        cols = np.concatenate(histories) if lengths.sum() else np.zeros(0, np.int64)
        seen = sp.csr_matrix((np.ones(cols.size, np.float32), cols, np.r_[0, np.cumsum(lengths)]),
                             shape=(len(histories), self.n_items_))
        state = {"epoch": 0}

        def validate() -> float:
            self._set_item_side(net)
            Q = self._query_matrix(core.encode(spec, net, histories))
            found, _ = dense_topk(Q, self._item_matrix(), VALIDATION_K, exclude=seen, num_threads=self._threads())
            value = ndcg_of_targets(found, targets)
            if self._on_validate is not None:
                self._on_validate(state["epoch"], value)
            state["epoch"] += 1
            return value

        return validate

    def _set_item_side(self, net) -> None:
        from recforge.models.sequential import core

        self.item_factors_, bias = core.item_arrays(net)
        if bias is not None:
            self.item_bias_ = bias

    # ------------------------------------------------------------------ scoring
    def _net(self):
        """The trained network (rebuilt from the saved arrays after ``load``)."""
        net = getattr(self, "_network", None)
        if net is None:
            require_torch()
            from recforge.models.sequential import core

            net = core.load_arrays(self._spec().build(self.n_items_), self._net_arrays)
            self._network = net
        return net

    def _encode(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        from recforge.models.sequential import core

        return core.encode(self._spec(), self._net(), sequences)

    def _user_vectors(self, codes: np.ndarray, history: HistoryChunk) -> np.ndarray:
        """Stored vectors for known users recommended from their stored history; otherwise the
        encoding of the history's sequence (oldest first)."""
        if history.from_caller or (codes < 0).any() or getattr(self, "user_factors_", None) is None:
            return self._encode(history.sequences)
        return np.asarray(self.user_factors_[codes], dtype=np.float32)

    def score_histories(self, histories: Sequence[np.ndarray], items: np.ndarray) -> np.ndarray:
        """Scores (m, c) of item codes ``items`` (m, c) after each of m histories (item codes,
        oldest first): the leave-one-out evaluation's sampled protocol calls this."""
        self._require_fitted()
        items = np.asarray(items, dtype=np.int64)
        if items.ndim != 2 or items.shape[0] != len(histories):
            raise ValueError(f"items must be (len(histories), c), got shape {items.shape}")
        Q = self._query_matrix(self._encode(histories))
        V = self._item_matrix()
        return np.einsum("md,mcd->mc", Q, V[np.clip(items, 0, self.n_items_ - 1)])

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        state = super()._state()
        if getattr(self, "_network", None) is None:
            arrays = self._net_arrays
        else:
            from recforge.models.sequential import core

            arrays = core.state_arrays(self._network)
        state.update({_saved_name(k): a for k, a in arrays.items()})
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        arrays = {_weight_name(k): np.asarray(a) for k, a in state.items() if k.startswith(NET_PREFIX)}
        if not arrays:
            raise ValueError(f"the artifact holds no network weights ({NET_PREFIX}*_) for {type(self).__name__}")
        super()._restore({k: a for k, a in state.items() if not k.startswith(NET_PREFIX)})
        self._net_arrays, self._network = arrays, None
