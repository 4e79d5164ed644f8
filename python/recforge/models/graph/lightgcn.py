r"""LightGCN (He et al., SIGIR 2020): graph convolution without weights or non-linearities.

Users and items are the nodes of the bipartite interaction graph with the symmetric normalised
adjacency :math:`A` (:func:`recforge.kernels.normalize_adjacency` of the binary interactions).
The only parameters are layer-0 embeddings :math:`E` (users, then items); the final embeddings
are the mean over layers

.. math:: F = \frac{1}{L+1} \sum_{l=0}^{L} A^l E, \qquad \mathrm{score}(u, i) = f_u^\top f_i,

trained with BPR on uniform negatives, Adam, and LightGCN's L2 term on the batch's layer-0 rows
(:mod:`recforge.models.graph._trainer`), through the shared loop
:func:`recforge.torch.train.fit_loop` (progress bar, early stopping on a :func:`recforge.evaluate`
metric of ``fit(..., validation=...)``, safetensors checkpoints and resume).

Propagation runs on the compiled kernels (CPU, OpenMP) or torch's sparse CSR product (CUDA). Per
batch only what the loss needs is propagated: L - 1 full sparse products, the last layer at the
batch's rows only, and one fused propagation for the gradient (:mod:`._propagation`).

``history=`` (users not in training, or a known user with another history): the propagation the
trained graph would apply, :math:`q = w_0 e_u + |H|^{-1/2} \sum_{i \in H} G_i`, with
:math:`G_i = \sum_{l \ge 1} w_l (A^{l-1} E)_i / \sqrt{d_i}` (``item_fold_in_``) and :math:`e_u`
the user's layer-0 vector (zero for a user not seen in training). For a training user given its
own history this is exactly its stored vector, which is why it is preferred to the plain mean of
item vectors; the new user is not added to the item degrees (nothing is refitted).

Importing this module does not import torch; ``fit`` does (``pip install "recforge[torch]"``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.kernels import _validation as v
from recforge.models.base import pattern
from recforge.models.embedding import EmbeddingRecommender
from recforge.models.graph._trainer import INITS, LOSSES, SAMPLINGS
from recforge.models.training_data import HistoryChunk, TrainingData

TORCH_HINT = 'pip install "recforge[torch]"'


def require_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"LightGCN and BPRMF need PyTorch: {TORCH_HINT}") from exc
    return torch


class LightGCN(EmbeddingRecommender):
    """LightGCN recommender (module docstring).

    dim: embedding size; layers: propagation depth L (0 gives BPR-MF); lr: Adam learning rate;
    reg: L2 weight :math:`\\lambda`; batch_size: samples per step; epochs: passes (one pass = as
    many samples as training interactions); negatives: uniform negatives per positive; loss:
    "bpr" or "bce"; sampling: "user" (uniform users, LightGCN's reference), "interaction" or
    "user-batches" (``n // batch_size + 1`` full batches of distinct users: LightGCN's TensorFlow
    reference and microsoft/recommenders; :mod:`recforge.models.graph._trainer`);
    device: "auto", "cpu", "cuda"...; num_threads: CPU threads (0 = all cores); seed: makes runs
    identical; validation_metric: a :func:`recforge.evaluate` metric computed on
    ``fit(..., validation=...)`` after every ``validate_every`` epochs (the best epoch's weights
    are kept); early_stopping: stop after that many validations without improvement (None: never);
    checkpoint_dir: safetensors checkpoints there, and resume from one; progress: a tqdm bar;
    init: layer-0 initialisation, "normal" (:math:`\\mathcal{N}(0, \\text{init\\_std}^2)`, LightGCN's
    PyTorch reference) or "xavier" (each of the user and item tables uniform on :math:`[-a, a]`,
    :math:`a = \\sqrt{6/(n + \\text{dim})}` with n its rows: LightGCN's TensorFlow reference and
    microsoft/recommenders; init_std is then unused); init_std: standard deviation of "normal".
    """

    #: quicker settings for ``recforge demo`` (well under 2 minutes on 2 cores)
    demo_params = dict(epochs=10, lr=0.01, batch_size=4096)

    def __init__(self, dim: int = 64, layers: int = 3, lr: float = 1e-3, reg: float = 1e-4, batch_size: int = 2048,
                 epochs: int = 50, negatives: int = 1, loss: str = "bpr", sampling: str = "user",
                 device: str = "auto", num_threads: int = 0, seed: int = 0, validation_metric: str = "ndcg@20",
                 validate_every: int = 1, early_stopping: int | None = None, checkpoint_dir: str | None = None,
                 progress: bool = False, init_std: float = 0.1, init: str = "normal"):
        self.dim = dim
        self.layers = layers
        self.lr = lr
        self.reg = reg
        self.batch_size = batch_size
        self.epochs = epochs
        self.negatives = negatives
        self.loss = loss
        self.sampling = sampling
        self.device = device
        self.num_threads = num_threads
        self.seed = seed
        self.validation_metric = validation_metric
        self.validate_every = validate_every
        self.early_stopping = early_stopping
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress
        self.init_std = init_std
        self.init = init

    def _check_params(self) -> None:
        v.check_int(self.dim, "dim", 1)
        v.check_int(self.layers, "layers", 0)
        v.check_int(self.batch_size, "batch_size", 1)
        v.check_int(self.epochs, "epochs", 0)
        v.check_int(self.negatives, "negatives", 1)
        v.check_int(self.num_threads, "num_threads", 0)
        v.check_int(self.seed, "seed", 0)
        v.check_int(self.validate_every, "validate_every", 1)
        if self.early_stopping is not None:
            v.check_int(self.early_stopping, "early_stopping", 1)
        for name in ("lr", "reg", "init_std"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise TypeError(f"{name} must be a finite number, got {value!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.init_std <= 0:
            raise ValueError(f"init_std must be > 0, got {self.init_std}")
        if self.reg < 0:
            raise ValueError(f"reg must be >= 0, got {self.reg}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")

    # ------------------------------------------------------------------ fitting
    def fit(self, data: Any, *, validation: Any = None) -> "LightGCN":
        """Train on ``data``; ``validation`` (held-out interactions: Interactions matched by id,
        or a users x items matrix in the training codes) enables ``validation_metric``, best-epoch
        weights and ``early_stopping``."""
        self._validation = validation
        try:
            return super().fit(data)
        finally:
            self._validation = None

    def _fit(self, data: TrainingData) -> None:
        require_torch()
        from recforge.backend import resolve_num_threads
        from recforge.models.graph._trainer import BPRGraphProblem
        from recforge.torch import train

        validation = getattr(self, "_validation", None)
        if self.early_stopping is not None and validation is None:
            raise ValueError("early_stopping needs fit(..., validation=held-out interactions)")
        threads = resolve_num_threads(self.num_threads)
        device = train.resolve_device(self.device)
        timer = train.SectionTimer()
        R = pattern(data.matrix)
        problem = BPRGraphProblem(R, dim=self.dim, layers=self.layers, reg=self.reg, batch_size=self.batch_size,
                                  negatives=self.negatives, loss=self.loss, sampling=self.sampling, seed=self.seed,
                                  num_threads=threads, device=device, timer=timer, init_std=self.init_std,
                                  init=self.init)
        validate = None if validation is None else self._validator(problem, validation, data)
        config = train.TrainConfig(epochs=self.epochs, seed=self.seed, device=device, patience=self.early_stopping,
                                   metric_name=self.validation_metric, validate_every=self.validate_every,
                                   checkpoint_dir=self.checkpoint_dir, num_threads=threads, progress=self.progress)
        torch = require_torch()
        self.train_history_ = train.fit_loop(problem.module, lambda p: torch.optim.Adam(p, lr=self.lr),
                                             problem.epoch_batches, problem.step, validate=validate, config=config,
                                             timer=timer)
        self._set_vectors(problem)

    def _set_vectors(self, problem) -> None:
        F = problem.final_embeddings()
        self.user_factors_ = F[:self.n_users_]
        self.item_factors_ = F[self.n_users_:]
        E = problem.embedding.detach().to("cpu").float().numpy()
        self.user_layer0_ = np.ascontiguousarray(E[:self.n_users_])
        self.item_fold_in_ = problem.item_fold_in() if problem.op is not None else None

    def _validator(self, problem, validation: Any, data: TrainingData):
        from recforge.evaluation import evaluate

        train_matrix = data.interactions if data.interactions is not None else data.matrix
        metric = self.validation_metric

        def validate() -> float:
            self._set_vectors(problem)
            table = evaluate(self, train_matrix, validation, metrics=[metric], batch_size=4096)
            return float(table.loc[metric, "value"])

        return validate

    # ------------------------------------------------------------------ users from a history
    def _fold_in(self, history: HistoryChunk) -> np.ndarray:
        G = getattr(self, "item_fold_in_", None)
        H = pattern(history.rows)
        counts = np.diff(H.indptr).astype(np.float64)
        scale = np.divide(1.0, np.sqrt(counts), out=np.zeros_like(counts), where=counts > 0)
        Q = (H @ G.astype(np.float64)) * scale[:, None]
        codes = np.asarray(history.codes)
        known = codes >= 0
        if known.any():
            Q[known] += (1.0 / (self.layers + 1)) * self.user_layer0_[codes[known]]
        return Q.astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        state = super()._state()
        state["user_layer0_"] = np.asarray(self.user_layer0_, np.float32)
        if getattr(self, "item_fold_in_", None) is not None:
            state["item_fold_in_"] = np.asarray(self.item_fold_in_, np.float32)
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        super()._restore(state)
        U0 = np.asarray(state["user_layer0_"])
        if U0.shape != self.user_factors_.shape:
            raise ValueError(f"user_layer0_ must have shape {self.user_factors_.shape}, got {U0.shape}")
        self.user_layer0_ = U0.astype(np.float32)
        G = state.get("item_fold_in_")
        if G is not None and np.shape(G) != self.item_factors_.shape:
            raise ValueError(f"item_fold_in_ must have shape {self.item_factors_.shape}, got {np.shape(G)}")
        self.item_fold_in_ = None if G is None else np.asarray(G, np.float32)
