"""One training loop for every torch model: :func:`fit_loop`.

A model supplies what differs between models -- the module, the optimizer, the batches of an
epoch, a step turning one batch into a loss, and optionally a validation score -- and the loop
does the rest the same way for all: seeding and determinism, device placement, mixed precision,
a progress bar, early stopping with the best weights restored, checkpoint/resume, and a
per-epoch timing breakdown.

Randomness: epoch e's batches come from ``epoch_batches(e, rng)`` with
``rng = numpy.random.default_rng([seed, e])``, so they depend only on the seed and the epoch
(not on what ran before); torch's generators (dropout, ...) are seeded once at the start and
carried across a resume in the checkpoint.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np

from recforge.torch import checkpoint as _ckpt
from recforge.torch._imports import require_torch
from recforge.torch.timing import SectionTimer

torch = require_torch()

__all__ = ["TrainConfig", "TrainHistory", "EpochRecord", "SectionTimer", "fit_loop", "seed_everything",
           "resolve_device", "to_device"]

_END = object()


@dataclass
class TrainConfig:
    """Settings of :func:`fit_loop` (model hyper-parameters such as lr and batch size stay in the model).

    epochs: total epochs (a resumed run counts the ones already done).
    seed: seeds python, numpy, torch, and each epoch's batch generator.
    device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:i"; see :func:`resolve_device`.
    patience: stop after this many validations without improvement (None: never stop early).
    min_delta: the improvement that counts; higher_is_better: direction of the metric.
    metric_name: the metric's name in the progress bar and history, e.g. "ndcg@20".
    validate_every: validate after every k-th epoch (and after the last).
    checkpoint_dir: write ``checkpoint.safetensors`` there every ``checkpoint_every`` epochs;
        with ``resume`` a run finding one there continues from it, exactly as an uninterrupted run
        would (given the same settings, and validations at the same epochs: the last epoch of the
        interrupted run is always validated). The optimizer's state (e.g. Adam's moments) is
        restored, but its learning rates are the ones of the optimizer given to this call, so a
        resumed run may continue at a new learning rate (a step schedule across resumes).
    amp: mixed precision -- on CUDA float16 autocast with a GradScaler (or bfloat16, no scaler),
        on the CPU bfloat16 autocast; amp_dtype: "float16" / "bfloat16" (None: the default above).
    grad_clip_norm: clip the gradients' global 2-norm to this value (None: no clipping).
    num_threads: torch.set_num_threads during the loop (None: leave as is); restored afterwards.
    deterministic: torch.use_deterministic_algorithms (warn-only) during the loop.
    progress: show a tqdm bar over epochs with the loss and the metric.
    sync_timing: on CUDA, synchronise at section boundaries so section seconds are device time.
    """

    epochs: int = 20
    seed: int = 0
    device: Any = "auto"
    patience: Optional[int] = None
    min_delta: float = 0.0
    higher_is_better: bool = True
    metric_name: str = "metric"
    validate_every: int = 1
    checkpoint_dir: Optional[Union[str, os.PathLike]] = None
    checkpoint_every: int = 1
    resume: bool = True
    amp: bool = False
    amp_dtype: Optional[str] = None
    grad_clip_norm: Optional[float] = None
    num_threads: Optional[int] = None
    deterministic: bool = True
    progress: bool = True
    sync_timing: bool = False

    def check(self) -> None:
        for name, minimum in (("epochs", 0), ("validate_every", 1), ("checkpoint_every", 1)):
            _check_int(getattr(self, name), name, minimum)
        _check_int(self.seed, "seed", 0)
        if self.patience is not None:
            _check_int(self.patience, "patience", 1)
        if self.num_threads is not None:
            _check_int(self.num_threads, "num_threads", 1)
        if not (math.isfinite(self.min_delta) and self.min_delta >= 0):
            raise ValueError(f"min_delta must be finite and >= 0, got {self.min_delta}")
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            raise ValueError(f"grad_clip_norm must be > 0 or None, got {self.grad_clip_norm}")
        if self.amp_dtype not in (None, "float16", "bfloat16"):
            raise ValueError(f"amp_dtype must be None, 'float16' or 'bfloat16', got {self.amp_dtype!r}")


@dataclass
class EpochRecord:
    epoch: int                      # 0-based
    loss: float                     # mean of the epoch's batch losses
    metric: Optional[float]         # validation score, None when not validated this epoch
    seconds: float                  # wall-clock seconds of the epoch, validation included
    sections: dict[str, float] = field(default_factory=dict)  # seconds per timer section


@dataclass
class TrainHistory:
    records: list[EpochRecord] = field(default_factory=list)
    best_epoch: Optional[int] = None     # epoch whose weights the module holds at the end (with validation)
    best_metric: Optional[float] = None
    stopped_early: bool = False
    resumed_at: Optional[int] = None     # epochs already done when this run resumed a checkpoint
    device: str = "cpu"

    @property
    def losses(self) -> list[float]:
        return [r.loss for r in self.records]

    @property
    def metrics(self) -> list[Optional[float]]:
        return [r.metric for r in self.records]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainHistory":
        records = [EpochRecord(**r) for r in data.get("records", [])]
        return cls(**{**data, "records": records})


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and CUDA).

    With ``deterministic``, also ask torch for deterministic algorithms (warn-only, so an
    operation without a deterministic version warns instead of failing), deterministic cuDNN
    without autotuning, and set CUBLAS_WORKSPACE_CONFIG when unset (needed by cuBLAS for
    reproducible results; effective only before CUDA is first used). These settings are global.
    """
    import random

    seed = _check_int(seed, "seed", 0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def resolve_device(device: Any = "auto") -> Any:
    """A torch.device: "auto" is CUDA when available, else the CPU; asking for CUDA without one raises."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got {device!r}") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={device!r} was asked for but CUDA is not available "
                               f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif resolved.type != "cpu":
        raise ValueError(f"device must be 'auto', 'cpu' or a CUDA device, got {device!r}")
    return resolved


def to_device(batch: Any, device: Any) -> Any:
    """Tensors moved, numpy arrays made tensors on ``device``, recursively through tuples, lists and dicts."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, np.ndarray):
        return torch.as_tensor(batch).to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        moved = [to_device(v, device) for v in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    return batch


class _Precision:
    """autocast + GradScaler as the config asks, or plain float32 steps."""

    def __init__(self, config: TrainConfig, device: Any):
        self.enabled = bool(config.amp)
        default = "float16" if device.type == "cuda" else "bfloat16"
        self.dtype = getattr(torch, config.amp_dtype or default)
        if self.enabled and device.type == "cpu" and self.dtype != torch.bfloat16:
            raise ValueError("amp on the CPU supports amp_dtype='bfloat16' only")
        self.device_type = device.type
        use_scaler = self.enabled and device.type == "cuda" and self.dtype == torch.float16
        self.scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)

    def autocast(self) -> Any:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)

    def step(self, loss: Any, optimizer: Any, parameters: list, clip_norm: Optional[float],
             timer: SectionTimer) -> None:
        optimizer.zero_grad(set_to_none=True)
        with timer.section("backward"):
            self.scaler.scale(loss).backward()
        with timer.section("optimizer"):
            if clip_norm is not None:
                self.scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(parameters, clip_norm)
            self.scaler.step(optimizer)
            self.scaler.update()


class _EarlyStopping:
    def __init__(self, config: TrainConfig):
        self.config = config
        self.best_metric: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.bad_validations = 0
        self.best_weights: Optional[dict] = None

    def update(self, epoch: int, metric: float, module: Any) -> None:
        if not math.isfinite(metric):
            raise ValueError(f"validate() returned {metric} at epoch {epoch}; it must return a finite float")
        sign = 1.0 if self.config.higher_is_better else -1.0
        if self.best_metric is None or sign * (metric - self.best_metric) > self.config.min_delta:
            self.best_metric, self.best_epoch, self.bad_validations = metric, epoch, 0
            self.best_weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            self.bad_validations += 1

    @property
    def should_stop(self) -> bool:
        return self.config.patience is not None and self.bad_validations >= self.config.patience

    def state(self) -> dict:
        return {"best_metric": self.best_metric, "best_epoch": self.best_epoch, "bad_validations": self.bad_validations}

    def restore(self, state: dict, best_weights: Optional[dict]) -> None:
        self.best_metric, self.best_epoch = state["best_metric"], state["best_epoch"]
        self.bad_validations, self.best_weights = state["bad_validations"], best_weights


def _progress_bar(config: TrainConfig, start: int) -> Any:
    if not config.progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise ImportError('the progress bar needs tqdm: pip install "recforge[torch]" (or progress=False)') from exc
    return tqdm(total=config.epochs, initial=start, unit="epoch", leave=False)


def _postfix(loss: float, metric: Optional[float], best: Optional[float], name: str) -> dict[str, str]:
    shown = {"loss": f"{loss:.4g}"}
    if best is not None:
        shown[name] = f"{metric:.4g}" if metric is not None else "-"
        shown["best"] = f"{best:.4g}"
    return shown


def _run_epoch(module: Any, optimizer: Any, batches: Iterable, step: Callable, device: Any,
               precision: _Precision, config: TrainConfig, timer: SectionTimer, epoch: int) -> float:
    module.train()
    parameters = [p for p in module.parameters() if p.requires_grad]
    total, count = None, 0
    iterator = iter(batches)
    while True:
        with timer.section("data"):
            batch = next(iterator, _END)
            if batch is _END:
                break
            batch = to_device(batch, device)
        with timer.section("forward"), precision.autocast():
            loss = step(batch)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise TypeError(f"step(batch) must return a scalar loss tensor, got {type(loss).__name__}"
                            f"{'' if not isinstance(loss, torch.Tensor) else ' of shape ' + str(tuple(loss.shape))}")
        precision.step(loss, optimizer, parameters, config.grad_clip_norm, timer)
        detached = loss.detach().float()
        total = detached if total is None else total + detached
        count += 1
    if count == 0:
        raise ValueError(f"epoch_batches yielded no batch in epoch {epoch}")
    mean = float(total) / count
    if not math.isfinite(mean):
        raise FloatingPointError(f"the training loss is {mean} in epoch {epoch} (diverged: lower the learning rate?)")
    return mean


def fit_loop(module: Any, optimizer: Any, epoch_batches: Callable[[int, np.random.Generator], Iterable[Any]],
             step: Callable[[Any], Any], *, validate: Optional[Callable[[], float]] = None,
             config: Optional[TrainConfig] = None, timer: Optional[SectionTimer] = None) -> TrainHistory:
    """Train ``module`` and return its :class:`TrainHistory`; the module ends with the best weights.

    module: a torch.nn.Module, moved to the configured device.
    optimizer: a torch.optim.Optimizer over the module's parameters, or a factory
        ``params -> Optimizer`` (called after the move; preferred, e.g.
        ``lambda p: torch.optim.Adam(p, lr=1e-3)``).
    epoch_batches: ``(epoch, rng) -> iterable of batches``; rng is a numpy Generator seeded by
        (seed, epoch). Batches may be tensors, numpy arrays, or tuples/lists/dicts of them: they
        reach ``step`` on the device, arrays as tensors.
    step: ``batch -> scalar loss tensor`` (the forward pass; runs under autocast with amp).
        The loop does zero_grad, backward (scaled with amp), clipping and the optimizer step.
    validate: ``() -> float``, called in eval mode under ``torch.no_grad()`` after every
        ``config.validate_every`` epochs (e.g. a closure calling ``recforge.evaluate`` on a
        validation split). With it, the module ends with the weights of the best validation.
    timer: a :class:`SectionTimer` the model's step also writes to (``with
        timer.section("propagation"):``); the loop's own sections go there too.
    """
    config = config or TrainConfig()
    config.check()
    if config.patience is not None and validate is None:
        raise ValueError("patience needs a validate callable (early stopping compares validation scores)")
    if not callable(epoch_batches) or not callable(step):
        raise TypeError("epoch_batches and step must be callables")
    device = resolve_device(config.device)
    timer = timer or SectionTimer()
    if config.sync_timing and device.type == "cuda":
        timer.synchronize = torch.cuda.synchronize
    saved_threads = torch.get_num_threads()
    saved_determinism = (torch.are_deterministic_algorithms_enabled(),
                         torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        if config.num_threads is not None:
            torch.set_num_threads(config.num_threads)
        seed_everything(config.seed, deterministic=config.deterministic)
        module.to(device)
        if not isinstance(optimizer, torch.optim.Optimizer):
            if not callable(optimizer):
                raise TypeError(f"optimizer must be a torch.optim.Optimizer or a factory params -> Optimizer, "
                                f"got {type(optimizer).__name__}")
            optimizer = optimizer(module.parameters())
        return _train(module, optimizer, epoch_batches, step, validate, config, timer, device)
    finally:
        torch.set_num_threads(saved_threads)
        torch.use_deterministic_algorithms(saved_determinism[0], warn_only=saved_determinism[1])


def _train(module, optimizer, epoch_batches, step, validate, config, timer, device) -> TrainHistory:
    precision = _Precision(config, device)
    stopping = _EarlyStopping(config)
    history = TrainHistory(device=str(device))
    path = None if config.checkpoint_dir is None else os.path.join(os.fspath(config.checkpoint_dir), _ckpt.FILENAME)
    if path is not None and config.resume and os.path.exists(path):
        given_lrs = [group["lr"] for group in optimizer.param_groups]
        best, loop = _ckpt.load(path, module=module, optimizer=optimizer, scaler=precision.scaler, device=device)
        for group, lr in zip(optimizer.param_groups, given_lrs):
            group["lr"] = lr
        history = TrainHistory.from_dict(loop["history"])
        history.device, history.resumed_at = str(device), len(history.records)
        stopping.restore(loop["stopping"], best)
    start = len(history.records)
    bar = _progress_bar(config, start)
    try:
        for epoch in range(start, config.epochs):
            if history.stopped_early:
                break
            timer.reset()
            began = time.perf_counter()
            rng = np.random.default_rng([config.seed, epoch])
            loss = _run_epoch(module, optimizer, epoch_batches(epoch, rng), step, device, precision, config,
                              timer, epoch)
            metric = None
            if validate is not None and ((epoch + 1) % config.validate_every == 0 or epoch + 1 == config.epochs):
                with timer.section("validate"):
                    module.eval()
                    with torch.no_grad():
                        metric = float(validate())
                    module.train()
                stopping.update(epoch, metric, module)
                history.stopped_early = stopping.should_stop
            history.records.append(EpochRecord(epoch, loss, metric, time.perf_counter() - began, timer.reset()))
            history.best_epoch, history.best_metric = stopping.best_epoch, stopping.best_metric
            if bar is not None:
                bar.update(1)
                bar.set_postfix(_postfix(loss, metric, stopping.best_metric, config.metric_name))
            last = epoch + 1 == config.epochs or history.stopped_early
            if path is not None and ((epoch + 1) % config.checkpoint_every == 0 or last):
                loop_state = {"history": history.to_dict(), "stopping": stopping.state()}
                _ckpt.save(path, module=module, optimizer=optimizer, scaler=precision.scaler,
                           best_weights=stopping.best_weights, loop_state=loop_state)
    finally:
        if bar is not None:
            bar.close()
    if stopping.best_weights is not None:
        module.load_state_dict(stopping.best_weights)
    return history
