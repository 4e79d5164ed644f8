"""recforge.serving: turn a saved model into an HTTP service (``recforge serve PATH``).

* :func:`save_artifact` / :func:`load_artifact` — a model folder with a checksum manifest, the
  library version, a training-data fingerprint and training-time metrics, verified at load;
* :mod:`recforge.serving.app` — the FastAPI app (``pip install "recforge[serve]"``);
* :mod:`recforge.serving.event_store` — SQLite (WAL, synchronous=FULL) or PostgreSQL events.

``import recforge.serving`` imports neither FastAPI nor SQLAlchemy.
"""
from recforge.serving.artifact import LoadedArtifact, fingerprint, load_artifact, save_artifact
from recforge.serving.config import ServeConfig

__all__ = ["save_artifact", "load_artifact", "LoadedArtifact", "fingerprint", "ServeConfig"]
