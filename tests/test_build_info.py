"""`recforge info`'s install line: the wheel's tag from the installed distribution's metadata.

Each case lays out a real site-packages folder (a ``recforge-0.1.0.dist-info`` with the files pip
writes) and reads it through ``importlib.metadata``, as an installed recforge is read.
"""
from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from recforge.cli_commands.info import describe_install, vendored_libraries

MANYLINUX_WHEEL = ("Wheel-Version: 1.0\nGenerator: auditwheel 6.8.2\nRoot-Is-Purelib: false\n"
                   "Tag: cp311-cp311-manylinux_2_17_x86_64\nTag: cp311-cp311-manylinux2014_x86_64\n\n")
LOCAL_WHEEL = "Wheel-Version: 1.0\nGenerator: scikit-build-core 1.1.2\nRoot-Is-Purelib: false\nTag: cp311-cp311-linux_x86_64\n\n"


def site_packages(tmp_path: Path, wheel: str, direct_url: dict | None) -> tuple[metadata.Distribution, str]:
    """A site-packages folder holding recforge/__init__.py and its dist-info; (distribution, package file)."""
    site = tmp_path / "site-packages"
    package = site / "recforge" / "__init__.py"
    package.parent.mkdir(parents=True)
    package.write_text("")
    info = site / "recforge-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: recforge\nVersion: 0.1.0\n")
    (info / "WHEEL").write_text(wheel)
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return metadata.PathDistribution(info), str(package)


def test_a_wheel_from_an_index_shows_every_tag(tmp_path):
    dist, package = site_packages(tmp_path, MANYLINUX_WHEEL, None)
    assert describe_install(dist, package) == "cp311-cp311-manylinux_2_17_x86_64, cp311-cp311-manylinux2014_x86_64"


def test_a_wheel_file_installed_by_path_is_still_a_wheel(tmp_path):
    url = "file:///tmp/wheelhouse/recforge-0.1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    dist, package = site_packages(tmp_path, MANYLINUX_WHEEL, {"url": url, "archive_info": {}})
    assert describe_install(dist, package) == "cp311-cp311-manylinux_2_17_x86_64, cp311-cp311-manylinux2014_x86_64"


def test_a_source_tree_build_says_so(tmp_path):
    dist, package = site_packages(tmp_path, LOCAL_WHEEL, {"url": "file:///src/recforge", "dir_info": {}})
    assert describe_install(dist, package) == "cp311-cp311-linux_x86_64 (built from source: file:///src/recforge)"


def test_an_sdist_build_says_so(tmp_path):
    url = "file:///tmp/dist/recforge-0.1.0.tar.gz"
    dist, package = site_packages(tmp_path, LOCAL_WHEEL, {"url": url, "archive_info": {"hashes": {}}})
    assert describe_install(dist, package) == f"cp311-cp311-linux_x86_64 (built from source: {url})"


def test_an_editable_install_is_not_reported_as_a_wheel(tmp_path):
    dist, package = site_packages(tmp_path, LOCAL_WHEEL, {"url": "file:///src/recforge", "dir_info": {"editable": True}})
    assert describe_install(dist, package) == "editable (file:///src/recforge)"


def test_a_package_imported_from_elsewhere_is_a_source_build(tmp_path):
    dist, _ = site_packages(tmp_path, MANYLINUX_WHEEL, None)
    other = tmp_path / "checkout" / "python" / "recforge" / "__init__.py"
    other.parent.mkdir(parents=True)
    other.write_text("")
    assert describe_install(dist, str(other)).startswith(f"source build (imported from {other.parent}")
    assert describe_install(None, str(other)).startswith("source build (no installed distribution")


def test_vendored_libraries_are_what_auditwheel_grafted(tmp_path):
    _, package = site_packages(tmp_path, MANYLINUX_WHEEL, None)
    assert vendored_libraries(package) == []
    libs = tmp_path / "site-packages" / "recforge.libs"
    libs.mkdir()
    (libs / "libgomp-a34b3233.so.1.0.0").write_bytes(b"")
    assert vendored_libraries(package) == ["libgomp-a34b3233.so.1.0.0"]


def test_info_prints_the_install_line_of_this_installation():
    result = subprocess.run([sys.executable, "-m", "recforge", "info"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line.split(None, 1)[1] for line in result.stdout.splitlines() if line.strip().startswith("install ")]
    assert len(lines) == 1, result.stdout
    interpreter = f"cp{sys.version_info.major}{sys.version_info.minor}-"
    assert lines[0].startswith(("editable", "source build", interpreter)), lines[0]
