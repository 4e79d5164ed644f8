r"""BPR matrix factorisation (Rendle et al., UAI 2009): LightGCN with no propagation.

:math:`\mathrm{score}(u, i) = e_u^\top e_i`, trained by the same BPR trainer and shared loop as
:class:`recforge.models.LightGCN` with ``layers=0`` (no graph is built or propagated).

``history=``: a user seen in training keeps its learned vector (a history then changes only
what is excluded: nothing is refitted); a user not seen in training gets the mean of its history
items' vectors (every history item counts once, as positives do in training) (the zero vector for an empty history).

``privacy=recforge.privacy.DPSGD(epsilon=..., delta=..., max_grad_norm=...)``: user-level DP-SGD
through Opacus (:mod:`recforge.privacy.dpsgd` says what ε covers; ``pip install
"recforge[privacy]"``). ``batch_size`` is then the expected number of *users* per step (Poisson
sampled), ``sampling`` is unused, and ``validation=``, ``early_stopping`` and ``checkpoint_dir`` are
refused. The accountant's ε is ``privacy_epsilon_`` (with ``privacy_noise_multiplier_``,
``privacy_sample_rate_``, ``privacy_steps_``), saved with the model. LightGCN has no such option:
its propagation matrix is built from every user's interactions and enters every gradient and
the final vectors, so clipping per-user gradients would not bound one user's influence.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from recforge.models.base import pattern
from recforge.models.graph.lightgcn import LightGCN
from recforge.models.training_data import HistoryChunk, TrainingData
from recforge.privacy.dpsgd import DPSGD


class BPRMF(LightGCN):
    """BPR-MF: LightGCN's trainer with ``layers=0`` (see LightGCN for the parameters)."""

    #: quicker settings for ``recforge demo``
    demo_params = dict(epochs=10, lr=0.01, batch_size=4096)

    def __init__(self, dim: int = 64, lr: float = 1e-3, reg: float = 1e-4, batch_size: int = 2048, epochs: int = 50,
                 negatives: int = 1, loss: str = "bpr", sampling: str = "user", device: str = "auto",
                 num_threads: int = 0, seed: int = 0, validation_metric: str = "ndcg@20", validate_every: int = 1,
                 early_stopping: int | None = None, checkpoint_dir: str | None = None, progress: bool = False,
                 init_std: float = 0.1, init: str = "normal", privacy: Any = None):
        self.privacy = DPSGD.of(privacy)
        super().__init__(dim=dim, layers=0, lr=lr, reg=reg, batch_size=batch_size, epochs=epochs,
                         negatives=negatives, loss=loss, sampling=sampling, device=device, num_threads=num_threads,
                         seed=seed, validation_metric=validation_metric, validate_every=validate_every,
                         early_stopping=early_stopping, checkpoint_dir=checkpoint_dir, progress=progress, init_std=init_std,
                         init=init)

    def fit(self, data: Any, *, validation: Any = None) -> "BPRMF":
        if self.privacy is not None and validation is not None:
            raise ValueError("validation= selects weights on private data outside the privacy accounting; "
                             "train a private BPRMF without it")
        return super().fit(data, validation=validation)

    def _check_params(self) -> None:
        super()._check_params()
        if self.privacy is not None and (self.early_stopping is not None or self.checkpoint_dir is not None):
            raise ValueError("privacy= does not support early_stopping or checkpoint_dir (the accountant counts "
                             "one uninterrupted run)")
        if self.privacy is not None and self.init != "normal":
            raise ValueError(f"privacy= trains from the normal init (init_std); init={self.init!r} is not supported")

    def _fit(self, data: TrainingData) -> None:
        if self.privacy is None:
            return super()._fit(data)
        from recforge.models.graph.lightgcn import require_torch
        require_torch()
        from recforge.backend import resolve_num_threads
        from recforge.models.graph._dp_trainer import PrivateBPRProblem
        from recforge.torch import train

        threads = resolve_num_threads(self.num_threads)
        device = train.resolve_device(self.device)
        timer = train.SectionTimer()
        problem = PrivateBPRProblem(pattern(data.matrix), dp=self.privacy, dim=self.dim, reg=self.reg,
                                    batch_size=self.batch_size, negatives=self.negatives, loss=self.loss,
                                    epochs=self.epochs, seed=self.seed, num_threads=threads, timer=timer,
                                    init_std=self.init_std)
        config = train.TrainConfig(epochs=self.epochs, seed=self.seed, device=device, num_threads=threads,
                                   progress=self.progress, metric_name=self.validation_metric)
        with warnings.catch_warnings():
            # Opacus' hooks on the item table, whose input (indices) needs no gradient: expected
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            self.train_history_ = train.fit_loop(problem.module, lambda _: problem.make_optimizer(self.lr),
                                                 problem.epoch_batches, problem.step, config=config, timer=timer)
        self.user_factors_, self.item_factors_ = problem.user_factors(), problem.item_factors()
        self.user_layer0_, self.item_fold_in_ = self.user_factors_, None
        self.privacy_epsilon_ = problem.epsilon()
        self.privacy_noise_multiplier_ = float(problem.noise_multiplier)
        self.privacy_sample_rate_ = float(problem.sample_rate)
        self.privacy_steps_ = int(problem.steps_taken())

    def _state(self) -> dict[str, Any]:
        state = super()._state()
        if self.privacy is not None:
            state.update(privacy_epsilon_=float(self.privacy_epsilon_),
                         privacy_noise_multiplier_=float(self.privacy_noise_multiplier_),
                         privacy_sample_rate_=float(self.privacy_sample_rate_), privacy_steps_=int(self.privacy_steps_))
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        super()._restore(state)
        for name in ("privacy_epsilon_", "privacy_noise_multiplier_", "privacy_sample_rate_"):
            if name in state:
                setattr(self, name, float(state[name]))
        if "privacy_steps_" in state:
            self.privacy_steps_ = int(state["privacy_steps_"])

    def _user_vectors(self, codes: np.ndarray, history: HistoryChunk) -> np.ndarray:
        H = pattern(history.rows)  # positives are binary, as in training
        counts = np.diff(H.indptr).astype(np.float64)
        scale = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
        Q = ((H @ self.item_factors_.astype(np.float64)) * scale[:, None]).astype(np.float32)
        known = codes >= 0
        Q[known] = self.user_factors_[codes[known]]
        return Q
