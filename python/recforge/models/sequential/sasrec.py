"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

A causal Transformer reads the user's last ``max_len`` items; its output at the last item is
the user's vector, scored against every item embedding (shared with the input). Options give
the published architectures: pre-LayerNorm blocks (SASRec's; ``pre_norm=False`` gives the
post-LayerNorm blocks of the S3-Rec/ICLRec code), learned positions, ``dropout``, ``hidden``,
``heads``, ``blocks``, ``ffn_size`` (default: hidden, as published; ICLRec uses 4 x hidden).
The loss matters more than the architecture: ``"bce"`` with one sampled negative per position
(the original), ``"sampled_softmax"`` with ``n_negatives`` shared negatives (uniform, or by
popularity with the logQ correction), ``"ce"`` over the whole catalogue (the default: the
strongest for full ranking). See :mod:`.sequence_model` for training, validation and history.
``item_init="text"`` starts the item table from the items' texts (``item_text_fields`` of the
item metadata, encoded by ``item_encoder``, default MiniLM, PCA-projected to ``hidden``;
:mod:`.text_init`) instead of N(0, 1/hidden).
"""
from __future__ import annotations

from recforge.models.sequential.sequence_model import SequenceRecommender


class SASRec(SequenceRecommender):
    """Causal Transformer next-item recommender (module docstring)."""

    _kind = "sasrec"
    _default_ffn_multiple = 1
    demo_params = {"hidden": 32, "blocks": 1, "heads": 1, "max_len": 20, "epochs": 3,
                   "early_stopping_patience": None, "dropout": 0.2}

    def __init__(self, hidden: int = 64, blocks: int = 2, heads: int = 2, dropout: float = 0.5, max_len: int = 50, *,
                 pre_norm: bool = True, ffn_size: int | None = None, loss: str = "ce", n_negatives: int = 256,
                 negative_sampler: str = "uniform", batch_size: int = 256, lr: float = 1e-3,
                 weight_decay: float = 0.0, epochs: int = 200, early_stopping_patience: int | None = 10,
                 seed: int = 0, num_threads: int = 0, device: str = "auto", amp: bool = False,
                 checkpoint_dir: str | None = None, progress: bool = False, item_init: str = "random",
                 item_text_fields: tuple = ("title", "genres", "tags"), item_encoder: str = "bert",
                 item_encoder_options: dict | None = None):
        self.hidden, self.blocks, self.heads, self.dropout, self.max_len = hidden, blocks, heads, dropout, max_len
        self.pre_norm, self.ffn_size, self.loss, self.n_negatives = pre_norm, ffn_size, loss, n_negatives
        self.negative_sampler, self.batch_size, self.lr, self.weight_decay = negative_sampler, batch_size, lr, weight_decay
        self.epochs, self.early_stopping_patience, self.seed = epochs, early_stopping_patience, seed
        self.num_threads, self.device, self.amp = num_threads, device, amp
        self.checkpoint_dir, self.progress = checkpoint_dir, progress
        self.item_init, self.item_text_fields = item_init, item_text_fields
        self.item_encoder, self.item_encoder_options = item_encoder, item_encoder_options
