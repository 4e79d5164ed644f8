"""``recforge serve PATH``: verify the artifact, then run the FastAPI app under uvicorn."""
from __future__ import annotations

import inspect
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional

from recforge.cli_commands.errors import UserError, missing_extra

#: seconds a worker may leave uvicorn's health check unanswered before it is killed and replaced
WORKER_HEALTHCHECK_SECONDS = 60


def memory_dir() -> Optional[str]:
    """A RAM-backed folder for the workers' shared metric files (/dev/shm), or None (the temp dir).

    Every request writes its counts into memory-mapped files there. On a disk filesystem (this
    machine's /tmp is ext4) the first store into a page after the kernel wrote it back faults
    into the filesystem, which may wait for the journal while the disk is busy; on tmpfs
    nothing is ever written back, so a request's metric update is a plain memory store.
    """
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def serve(path: Path, host: str, port: int, workers: int, events_url: Optional[str], max_n: int,
          max_body_bytes: int, partial_fit_events: int, partial_fit_seconds: float, reload_poll_seconds: float,
          log_level: str, imports: tuple = ()) -> None:
    for library in ("fastapi", "uvicorn", "prometheus_client"):
        try:
            __import__(library)
        except ImportError:
            raise missing_extra(library, "serve", "recforge serve") from None
    import uvicorn

    from recforge.models.artifacts import ArtifactError
    from recforge.serving.artifact import load_artifact
    from recforge.serving.config import CONFIG_ENV, ServeConfig

    config = ServeConfig(model_path=str(path), host=host, port=port, workers=workers, events_url=events_url,
                         max_n=max_n, max_body_bytes=max_body_bytes, partial_fit_events=partial_fit_events,
                         partial_fit_seconds=partial_fit_seconds, reload_poll_seconds=reload_poll_seconds,
                         log_level=log_level, imports=tuple(imports)).validated()
    try:
        config.import_plugins()
    except ImportError as exc:
        raise UserError(f"--import: cannot import {exc.name}: {exc}") from None
    try:
        artifact = load_artifact(config.model_path)     # refuse a bad artifact before any worker starts
    except (ArtifactError, FileNotFoundError) as exc:
        raise UserError(f"refusing to serve {path}: {exc}") from None
    from recforge.serving.event_store import open_event_store

    open_event_store(config.resolved_events_url).close()  # create the table once, fail early on a bad URL
    n_workers = config.worker_count
    os.environ[CONFIG_ENV] = config.to_json()
    os.environ.setdefault("OMP_NUM_THREADS", str(config.kernel_threads))
    metrics_dir = None
    if n_workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="recforge-metrics-", dir=memory_dir())
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    print(f"recforge serve: {artifact.manifest.get('model')} version {artifact.version} on http://{host}:{port} "
          f"({n_workers} worker{'s' if n_workers > 1 else ''}; events: {config.resolved_events_url})",
          file=sys.stderr, flush=True)
    options = {}
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        # uvicorn kills a worker whose health-check thread stays silent this long (default 5 s);
        # on a busy machine a worker deep in a long request can miss 5 s without being hung
        options["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_SECONDS
    try:
        uvicorn.run("recforge.serving.app:app_from_environment", factory=True, host=host, port=port,
                    workers=n_workers, log_level=log_level, access_log=False, timeout_graceful_shutdown=10,
                    **options)
    finally:
        if metrics_dir is not None:         # RAM on /dev/shm: give it back
            shutil.rmtree(metrics_dir, ignore_errors=True)
