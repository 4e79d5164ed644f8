"""Helpers of the serving tests: a small artifact, and a real `recforge serve` in a subprocess."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx", reason='the serving tests need httpx: pip install "recforge[test]"')
pytest.importorskip("fastapi", reason='the serving tests need FastAPI: pip install "recforge[serve]"')
pytest.importorskip("uvicorn", reason='the serving tests need uvicorn: pip install "recforge[serve]"')

REPO = Path(__file__).resolve().parent.parent
POSTGRES_ENV = "RECFORGE_TEST_POSTGRES_URL"


def postgres_url() -> str:
    """The test PostgreSQL's URL; skip without one (an error under CI=true, where .ci/run starts it)."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        message = (f"{POSTGRES_ENV} is not set: start a server with `eval \"$(.ci/postgres.sh $$)\"` "
                   f"to run the PostgreSQL tests")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


def small_interactions(seed: int = 0, n_users: int = 60, n_items: int = 40, per_user: int = 8):
    """Random implicit data with integer ids 1000+u and 5000+i (not equal to the codes)."""
    from recforge.data import Interactions

    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        chosen = rng.choice(n_items, size=per_user, replace=False)
        users += [1000 + u] * per_user
        items += (5000 + chosen).tolist()
    return Interactions.from_arrays(np.asarray(users), np.asarray(items), np.ones(len(users), np.float32))


def make_artifact(path: Path, k: int = 10, seed: int = 0, metrics=None) -> Path:
    from recforge.models import ItemKNN
    from recforge.serving import save_artifact

    inter = small_interactions(seed)
    model = ItemKNN(k=k, progress=False, num_threads=1).fit(inter)
    return save_artifact(model, path, training_data=inter, metrics=metrics or {"ndcg@10": 0.25})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m recforge serve PATH` on a free loopback port (one worker unless told)."""

    def __init__(self, model: Path, *args: str, workers: int = 1, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(model).parent / f"server-{self.port}.log"
        command = [sys.executable, "-m", "recforge", "serve", str(model), "--port", str(self.port),
                   "--workers", str(workers), "--log-level", "warning", *args]
        full_env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
        self._log_file = open(self.log, "wb")
        self.process = subprocess.Popen(command, stdout=self._log_file, stderr=subprocess.STDOUT, env=full_env)

    def wait_ready(self, timeout: float = 90.0) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server did not become ready in {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()

    def __enter__(self) -> "Server":
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def run_serve(model: Path, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess:
    """`recforge serve` expected to exit by itself (a refused artifact)."""
    command = [sys.executable, "-m", "recforge", "serve", str(model), "--port", str(free_port()), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
