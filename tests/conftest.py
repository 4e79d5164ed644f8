"""Shared test helpers: where the real datasets are, and markers.

Datasets are read from $RECFORGE_DATA_DIR or ../shared/data next to the repository. When one
is missing the test is skipped with a message saying where to put it, except under CI
(CI=true), where a missing dataset is an error.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_data_root() -> Path:
    env = os.environ.get("RECFORGE_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def data_dir(name: str) -> Path:
    """The folder of dataset ``name`` (e.g. "ml-100k"); skip (or fail under CI) when absent."""
    path = shared_data_root() / name
    if not path.is_dir():
        message = f"dataset {name!r} not found at {path}: set RECFORGE_DATA_DIR or put it in ../shared/data/{name}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def data_file(name: str, filename: str) -> Path:
    """One file of a dataset; skip (or fail under CI) when absent."""
    path = data_dir(name) / filename
    if not path.is_file():
        message = f"{path} not found: put {filename} into {path.parent}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
