"""BERT4Rec: bidirectional Transformer trained by the cloze task (Sun et al., CIKM 2019).

Training masks each item of a sequence with probability ``mask_prob`` (at least one per
sequence) and predicts the masked items from both sides; at inference a mask token is
appended after the history and its output, through a dense + GELU + LayerNorm head, is scored
against the item embeddings plus a per-item output bias. Post-LayerNorm blocks by default
(``pre_norm=True`` for pre-LayerNorm), ``ffn_size`` default 4 x hidden, losses as in
:class:`~recforge.models.sequential.sasrec.SASRec` (default ``"ce"``, as published).
``item_init="text"`` starts the item table from item texts as in SASRec (:mod:`.text_init`; the
mask token's row stays random).
"""
from __future__ import annotations

from recforge.models.sequential.sequence_model import SequenceRecommender


class BERT4Rec(SequenceRecommender):
    """Bidirectional masked-item Transformer recommender (module docstring)."""

    _kind = "bert4rec"
    _default_ffn_multiple = 4
    demo_params = {"hidden": 32, "blocks": 1, "heads": 1, "max_len": 20, "epochs": 3,
                   "early_stopping_patience": None, "dropout": 0.1}

    def __init__(self, hidden: int = 64, blocks: int = 2, heads: int = 2, dropout: float = 0.2, max_len: int = 50, *,
                 mask_prob: float = 0.2, pre_norm: bool = False, ffn_size: int | None = None, loss: str = "ce",
                 n_negatives: int = 256, negative_sampler: str = "uniform", batch_size: int = 256, lr: float = 1e-3,
                 weight_decay: float = 0.0, epochs: int = 200, early_stopping_patience: int | None = 10,
                 seed: int = 0, num_threads: int = 0, device: str = "auto", amp: bool = False,
                 checkpoint_dir: str | None = None, progress: bool = False, item_init: str = "random",
                 item_text_fields: tuple = ("title", "genres", "tags"), item_encoder: str = "bert",
                 item_encoder_options: dict | None = None):
        self.hidden, self.blocks, self.heads, self.dropout, self.max_len = hidden, blocks, heads, dropout, max_len
        self.mask_prob, self.pre_norm, self.ffn_size, self.loss = mask_prob, pre_norm, ffn_size, loss
        self.n_negatives, self.negative_sampler, self.batch_size = n_negatives, negative_sampler, batch_size
        self.lr, self.weight_decay, self.epochs = lr, weight_decay, epochs
        self.early_stopping_patience, self.seed, self.num_threads = early_stopping_patience, seed, num_threads
        self.device, self.amp, self.checkpoint_dir, self.progress = device, amp, checkpoint_dir, progress
        self.item_init, self.item_text_fields = item_init, item_text_fields
        self.item_encoder, self.item_encoder_options = item_encoder, item_encoder_options

    def _check_params(self) -> None:
        super()._check_params()
        if not 0.0 < float(self.mask_prob) < 1.0:
            raise ValueError(f"mask_prob must be in (0, 1), got {self.mask_prob}")
