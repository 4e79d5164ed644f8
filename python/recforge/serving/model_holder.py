"""The model being served: loaded and verified, swapped atomically, never half-replaced.

A request reads ``holder.current`` once and uses that ``ServedModel`` to the end, so a swap
(a new artifact version on disk, or a background ``partial_fit``) never disturbs a request in
flight: the old model lives until its last request finishes. A version that fails verification
is refused and the current one keeps serving.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from recforge.serving.artifact import LoadedArtifact, artifact_signature, load_artifact

log = logging.getLogger("recforge.serve")


@dataclass
class ServedModel:
    """A loaded model with the lookup tables built once for single-request speed."""

    model: Any
    version: str
    manifest: dict
    events_upto: int                       # events with id <= this are part of the model
    user_codes: dict = field(repr=False)   # id text -> code
    item_codes: dict = field(repr=False)
    item_ids: list = field(repr=False)     # code -> JSON-ready id
    integer_ids: bool = True               # the model's user/item ids are integers
    supports_partial_fit: bool = False

    @classmethod
    def of(cls, model: Any, version: str, manifest: dict, events_upto: int,
           kernel_threads: int = 1) -> "ServedModel":
        if "num_threads" in model.get_params():
            model.num_threads = int(kernel_threads)
        user_ids = model.user_ids_.to_numpy()
        item_ids = model.item_ids_.to_numpy()
        integer = user_ids.dtype.kind in "iu" and item_ids.dtype.kind in "iu"
        users = [str(x) for x in user_ids.tolist()]
        items_json = item_ids.tolist()
        return cls(model=model, version=version, manifest=manifest, events_upto=int(events_upto),
                   user_codes={k: c for c, k in enumerate(users)},
                   item_codes={str(k): c for c, k in enumerate(items_json)},
                   item_ids=items_json if integer else [str(x) for x in items_json], integer_ids=integer,
                   supports_partial_fit=callable(getattr(model, "partial_fit", None)))

    @classmethod
    def from_artifact(cls, artifact: LoadedArtifact, kernel_threads: int = 1) -> "ServedModel":
        upto = int(artifact.manifest.get("events_upto", 0) or 0)
        return cls.of(artifact.model, artifact.version, artifact.manifest, upto, kernel_threads)

    @property
    def name(self) -> str:
        return type(self.model).__name__

    @property
    def n_items(self) -> int:
        return int(self.model.n_items_)

    def id_text(self, value: Any) -> str | None:
        """The canonical text of an id for this model, or None when it can never be one of its ids."""
        if self.integer_ids:
            if isinstance(value, bool):
                return None
            if isinstance(value, (int, np.integer)):
                return str(int(value))
            text = str(value)
            try:
                return text if str(int(text)) == text else None
            except ValueError:
                return None
        return str(value)

    def public_id(self, value: Any) -> Any:
        """``value`` as this model's ids are written in JSON (integers stay integers)."""
        text = self.id_text(value)
        return int(text) if self.integer_ids and text is not None else value


class ModelHolder:
    """Holds the served model; ``watch()`` polls the artifact folder and hot-swaps new versions."""

    def __init__(self, path: Any, kernel_threads: int = 1, on_swap: Callable[[ServedModel, str], None] | None = None):
        self.path = Path(path)
        self.kernel_threads = int(kernel_threads)
        self._on_swap = on_swap
        self._swap_lock = threading.Lock()
        self._signature = artifact_signature(self.path)
        self.current = ServedModel.from_artifact(load_artifact(self.path), self.kernel_threads)
        self._failed_signature: tuple | None = None
        self._stop = threading.Event()
        self._notify("load")

    def _notify(self, reason: str) -> None:
        if self._on_swap is not None:
            self._on_swap(self.current, reason)

    def swap(self, new: ServedModel, expected: ServedModel | None = None, reason: str = "swap") -> bool:
        """Serve ``new`` from now on (only if ``expected`` is still current, when given)."""
        with self._swap_lock:
            if expected is not None and self.current is not expected:
                return False
            self.current = new
        self._notify(reason)
        return True

    def reload_if_changed(self) -> bool:
        """Load and verify a new version if the manifest changed; True when one was swapped in."""
        signature = artifact_signature(self.path)
        if signature is None or signature == self._signature or signature == self._failed_signature:
            return False
        try:
            artifact = load_artifact(self.path)
        except Exception as exc:  # a half-written or tampered version: keep serving the current one
            self._failed_signature = signature
            log.warning("refused the new artifact at %s: %s", self.path, exc)
            if self._on_swap is not None:
                self._on_swap(self.current, "refused")
            return False
        self._signature = signature
        self.swap(ServedModel.from_artifact(artifact, self.kernel_threads), reason="reload")
        log.warning("serving model version %s from %s", self.current.version, self.path)
        return True

    def watch(self, every_seconds: float) -> threading.Thread | None:
        """Poll for new versions in a daemon thread (every_seconds=0: never)."""
        if every_seconds <= 0:
            return None

        def loop() -> None:
            while not self._stop.wait(every_seconds):
                try:
                    self.reload_if_changed()
                except Exception:  # never let the watcher die
                    log.exception("artifact watcher")

        thread = threading.Thread(target=loop, name="recforge-artifact-watcher", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
