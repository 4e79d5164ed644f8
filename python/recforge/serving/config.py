"""The settings of one ``recforge serve`` process, passed to every uvicorn worker as JSON."""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

#: the environment variable that carries the JSON settings from ``recforge serve`` to its workers
CONFIG_ENV = "RECFORGE_SERVE_CONFIG"
#: the SQLite file created beside the model folder when no --events-url is given
DEFAULT_EVENTS_FILE = "events.sqlite3"


def available_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServeConfig:
    """Everything a worker needs; ``validated()`` checks every field and names the bad one."""

    model_path: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 0                       # 0: one per available core
    events_url: Optional[str] = None       # None: sqlite:///<model folder's parent>/<folder>.events.sqlite3
    max_n: int = 1000                      # largest n a request may ask for
    max_batch_users: int = 1000            # largest batch of users in one request
    max_body_bytes: int = 1_000_000        # larger request bodies get 413
    max_events_per_request: int = 10_000
    kernel_threads: int = 1                # OpenMP threads per request (the workers use the cores)
    partial_fit_events: int = 1000         # refit incrementally after this many new events (0: never)
    partial_fit_seconds: float = 60.0      # ... or this long after the first unfitted event (0: never)
    reload_poll_seconds: float = 1.0       # how often the model folder is checked for a new version
    events_poll_seconds: float = 0.05      # how often a worker reads the store for events written outside
                                           # this host's workers (theirs are announced: event_notice)
    log_level: str = "warning"
    imports: tuple = ()                    # modules imported first (they register custom models)

    def import_plugins(self) -> None:
        """Import ``imports`` (modules that call ``recforge.models.registry.register``), so an
        artifact of a custom model class can be loaded; artifacts themselves never name modules."""
        import importlib

        for name in self.imports:
            importlib.import_module(name)

    def validated(self) -> "ServeConfig":
        if not Path(self.model_path).is_dir():
            raise ValueError(f"model_path {self.model_path!r} is not a folder holding a saved model")
        for name in ("port", "max_n", "max_batch_users", "max_body_bytes", "max_events_per_request",
                     "kernel_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("workers", "partial_fit_events"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        for name in ("partial_fit_seconds", "reload_poll_seconds", "events_poll_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.port > 65535:
            raise ValueError(f"port must be at most 65535, got {self.port}")
        if self.events_url is not None and not self.events_url.startswith(("sqlite:", "postgresql", "postgres:")):
            raise ValueError(f"events_url must be sqlite:///FILE or postgresql://..., got {self.events_url!r}")
        return self

    @property
    def worker_count(self) -> int:
        return self.workers or available_cores()

    @property
    def resolved_events_url(self) -> str:
        """The event store's URL: the given one, else a SQLite file beside the model folder."""
        if self.events_url:
            return self.events_url
        folder = Path(self.model_path).absolute()
        return f"sqlite:///{folder.parent / (folder.name + '.' + DEFAULT_EVENTS_FILE)}"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeConfig":
        fields = json.loads(text)
        fields["imports"] = tuple(fields.get("imports", ()))
        return cls(**fields)

    @classmethod
    def from_environment(cls) -> "ServeConfig":
        text = os.environ.get(CONFIG_ENV)
        if not text:
            raise RuntimeError(f"{CONFIG_ENV} is not set: start the server with `recforge serve PATH`")
        return cls.from_json(text)
