"""``recforge info``: what this installation can do. Needs numpy and scipy only.

Reports the version, how the compiled core was built, every backend (usable, or why not),
OpenMP threads and CPU features, CUDA devices, and which optional libraries are importable.
Importability is checked with :func:`importlib.util.find_spec`, which never imports the
module, so ``recforge info`` stays fast even with torch installed.
"""
from __future__ import annotations

import importlib.util
import json
import platform
import sys
from pathlib import Path
from typing import Any

#: optional library -> the recforge extra that installs it (None: not an extra of recforge)
OPTIONAL_LIBRARIES = {
    "torch": "torch", "cupy": "gpu", "sentence_transformers": "text", "fastapi": "serve",
    "uvicorn": "serve", "dask": "dask", "distributed": "dask", "optuna": "tune",
    "pandas": "data", "pyarrow": "data", "polars": None, "tqdm": "progress",
    "typer": "cli", "rich": "cli", "matplotlib": "plot",
}
#: peers that ``recforge bench`` compares against when they are installed
BENCH_PEERS = ("implicit", "sparse_dot_topn", "faiss", "torch", "scipy")


def importable(module: str) -> bool:
    """True when ``module`` could be imported (found on the path); never imports it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, from its metadata (no import)."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


_DISTRIBUTIONS = {"sentence_transformers": "sentence-transformers", "sparse_dot_topn": "sparse-dot-topn",
                  "faiss": "faiss-cpu", "cupy": "cupy-cuda12x"}


def library_status(module: str) -> str:
    if not importable(module):
        return "missing"
    version = installed_version(_DISTRIBUTIONS.get(module, module))
    if version is None and module == "faiss":
        version = installed_version("faiss-gpu")
    return f"yes ({version})" if version else "yes"


def wheel_tags(dist: Any) -> list[str]:
    """The ``Tag:`` lines of a distribution's WHEEL metadata (e.g. ``cp311-cp311-manylinux_2_17_x86_64``)."""
    text = dist.read_text("WHEEL") or ""
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]


def describe_install(dist: Any, package_file: str) -> str:
    """How the imported recforge was installed, from the installed distribution's metadata.

    ``dist`` is the ``importlib.metadata`` distribution of recforge (None when there is none) and
    ``package_file`` the imported ``recforge/__init__.py``. The answer is the wheel's tag(s) for an
    installed wheel, the tag plus "built from source" when pip built it from a source tree or an
    sdist (direct_url.json names a folder or an archive that is not a wheel), "editable" for an
    editable install, and "source build" when recforge is not imported from that distribution.
    """
    if dist is None:
        return f"source build (no installed distribution; imported from {Path(package_file).parent})"
    direct: dict[str, Any] = {}
    raw = dist.read_text("direct_url.json")
    if raw:
        try:
            direct = json.loads(raw)
        except ValueError:
            direct = {}
    url = str(direct.get("url", ""))
    if direct.get("dir_info", {}).get("editable"):
        return f"editable ({url or 'source tree'})"
    located = Path(str(dist.locate_file("recforge/__init__.py")))
    try:
        same = located.resolve() == Path(package_file).resolve()
    except OSError:
        same = False
    if not same:
        return f"source build (imported from {Path(package_file).parent}, not from the installed distribution)"
    tags = ", ".join(wheel_tags(dist)) or "no tag in WHEEL metadata"
    if "dir_info" in direct or ("archive_info" in direct and not url.endswith(".whl")):
        return f"{tags} (built from source: {url})"
    return tags


def vendored_libraries(package_file: str) -> list[str]:
    """Shared libraries that ``auditwheel repair`` grafted into the wheel (``recforge.libs/``)."""
    libs = Path(package_file).resolve().parent.parent / "recforge.libs"
    return sorted(p.name for p in libs.iterdir()) if libs.is_dir() else []


def install_rows() -> list[tuple[str, Any]]:
    """The "install" and "vendored" rows of the report."""
    from importlib import metadata

    import recforge

    try:
        dist = metadata.distribution("recforge")
    except metadata.PackageNotFoundError:
        dist = None
    rows: list[tuple[str, Any]] = [("install", describe_install(dist, recforge.__file__))]
    vendored = vendored_libraries(recforge.__file__)
    if vendored:
        rows.append(("vendored", ", ".join(vendored)))
    return rows


def describe_device(dev: Any) -> str:
    """One line for a CUDA device: name, compute capability, memory, SMs, whether this build runs on it."""
    if not isinstance(dev, dict):
        return str(dev)
    parts = []
    if "compute_capability" in dev:
        parts.append(f"compute capability {dev['compute_capability']}")
    if "total_memory_gib" in dev:
        parts.append(f"{float(dev['total_memory_gib']):.1f} GiB")
    if "multiprocessors" in dev:
        parts.append(f"{dev['multiprocessors']} SMs")
    if "pci_bus_id" in dev:
        parts.append(f"PCI {dev['pci_bus_id']}")
    if dev.get("supported_by_build") is False:
        parts.append("NOT supported by the architectures this build was compiled for")
    shown = {"index", "name", "compute_capability", "total_memory_gib", "total_memory", "multiprocessors",
             "pci_bus_id", "supported_by_build"}
    parts += [f"{k}={v}" for k, v in dev.items() if k not in shown]
    return f"{dev.get('name', 'device')} ({', '.join(parts)})" if parts else str(dev.get("name", dev))


def info_sections() -> list[tuple[str, list[tuple[str, Any]]]]:
    """(section title, [(key, value), ...]) for every part of the report."""
    from recforge import __version__
    from recforge import _core
    from recforge.backend import backends

    build = dict(_core.build_info())
    sections = [("recforge", [("version", __version__), ("python", platform.python_version()),
                              ("platform", platform.platform()), ("core", _core.__file__)]
                 + install_rows()),
                ("build", [(k, v) for k, v in build.items()])]
    for b in backends():
        rows: list[tuple[str, Any]] = [("usable", "yes" if b.usable else f"no: {b.reason}")]
        details = dict(b.details)
        devices = details.pop("devices", None)
        rows += [(k, ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v) for k, v in details.items()]
        for i, dev in enumerate(devices or []):
            index = dev.get("index", i) if isinstance(dev, dict) else i
            rows.append((f"device {index}", describe_device(dev)))
        sections.append((f"backend {b.name}", rows))
    extras = []
    for module, extra in OPTIONAL_LIBRARIES.items():
        status = library_status(module)
        if status == "missing" and extra:
            status = f"missing (pip install \"recforge[{extra}]\")"
        extras.append((module, status))
    sections.append(("optional libraries", extras))
    sections.append(("benchmark peers", [(p, library_status(p)) for p in BENCH_PEERS if p != "torch"]))
    return sections


def info_text() -> str:
    """The report as plain text (what ``recforge info`` prints)."""
    lines = []
    for title, rows in info_sections():
        lines.append(title)
        width = max((len(k) for k, _ in rows), default=0)
        lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def run_info(argv: list[str]) -> int:
    """``recforge info`` without any CLI library (the path CI's wheel smoke test takes)."""
    if any(a in ("-h", "--help") for a in argv):
        print("usage: recforge info\n\nVersion, build, backends (CPU threads and features, CUDA devices or why "
              "none is usable) and importable optional libraries.")
        return 0
    if argv:
        print(f"recforge info: unexpected argument {argv[0]!r}", file=sys.stderr)
        return 2
    print(info_text())
    return 0
