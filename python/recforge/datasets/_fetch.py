"""Where dataset files live, and how a missing one is downloaded and verified (or explained).

Datasets are read from ``data_home()``: the ``data_dir`` argument, else ``$RECFORGE_DATA_DIR``,
else ``~/.recforge/data``; each dataset has its own sub-folder (``ml-100k``, ``amazon-s3rec``...).
A missing file is downloaded only when its URL *and* checksum are known; the download shows a
tqdm progress bar when tqdm is installed and is checked before it is used. Otherwise — or
without network — :class:`DatasetNotFoundError` says which file to put in which folder.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recforge.data.errors import DatasetNotFoundError

DOWNLOAD_TIMEOUT_S = 30


def data_home(data_dir: Any = None) -> Path:
    """The root folder of all datasets (argument, else $RECFORGE_DATA_DIR, else ~/.recforge/data)."""
    if data_dir is not None:
        return Path(os.fspath(data_dir)).expanduser()
    env = os.environ.get("RECFORGE_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".recforge" / "data"


@dataclass(frozen=True)
class Remote:
    """A downloadable file: ``checksum`` is "md5:<hex>", "sha256:<hex>" or "git-blob:<sha1>" (or None).

    ``archive=True`` means a zip whose top-level folder is the dataset's folder name.
    """

    url: str
    checksum: str | None = None
    archive: bool = False


def file_digest(path: Path, checksum: str) -> str:
    """The digest of ``path`` in the algorithm named by ``checksum``'s prefix."""
    kind = checksum.split(":", 1)[0]
    if kind == "git-blob":
        h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    elif kind in ("md5", "sha256"):
        h = hashlib.new(kind)
    else:
        raise ValueError(f"unknown checksum kind {kind!r}")
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"{kind}:{h.hexdigest()}"


def _download(url: str, target: Path) -> None:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(target, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = _progress(total, target.name)
        try:
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                if bar is not None:
                    bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()


def _progress(total: int | None, name: str) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}")


def ensure_files(dataset: str, folder: Path, files: list[str], remote: Remote | dict[str, Remote] | None,
                 download: bool) -> Path:
    """``folder`` once every file in ``files`` is there, downloading and verifying what is missing."""
    missing = [name for name in files if not (folder / name).is_file()]
    if not missing:
        return folder
    sources = _sources_for(missing, remote)
    failure = None
    if download and sources and all(s is not None and s.checksum for s in sources.values()):
        try:
            for name, source in sources.items():
                if not (folder / name).is_file():
                    _fetch(source, folder, name)
            return folder
        except (urllib.error.URLError, OSError) as exc:
            failure = f"the download failed ({exc})"
    raise DatasetNotFoundError(_instructions(dataset, folder, missing, sources, failure, download))


def _sources_for(missing: list[str], remote: Remote | dict[str, Remote] | None) -> dict[str, Remote | None]:
    if remote is None:
        return {}
    if isinstance(remote, Remote):
        return {name: remote for name in missing}
    return {name: remote.get(name) for name in missing}


def _fetch(source: Remote, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        target = Path(tmp) / Path(source.url).name
        _download(source.url, target)
        digest = file_digest(target, source.checksum)
        if digest != source.checksum:
            raise ValueError(f"checksum mismatch for {source.url}: expected {source.checksum}, got {digest}; "
                             f"the file was not used")
        if source.archive:
            with zipfile.ZipFile(target) as archive:
                archive.extractall(tmp)
            extracted = Path(tmp) / folder.name
            for item in extracted.iterdir():
                destination = folder / item.name
                if not destination.exists():
                    shutil.move(str(item), destination)
        else:
            shutil.move(str(target), folder / name)


def _instructions(dataset: str, folder: Path, missing: list[str], sources: dict[str, Remote | None],
                  failure: str | None, download: bool) -> str:
    lines = [f"{dataset}: {', '.join(missing)} not found in {folder}."]
    if failure:
        lines.append(f"It could not be downloaded: {failure}.")
    elif not download:
        lines.append("Downloading was turned off (download=False).")
    elif any(s is None or not s.checksum for s in sources.values()):
        lines.append("No checksum is published for it, so recforge does not download it.")
    for name in missing:
        source = sources.get(name)
        if source is None:
            lines.append(f"Put {name} into {folder}/.")
        elif source.archive:
            check = f" ({source.checksum})" if source.checksum else ""
            lines.append(f"Download {source.url}{check}, unzip it and put {name} into {folder}/.")
        else:
            check = f" ({source.checksum})" if source.checksum else ""
            lines.append(f"Download {source.url}{check} and save it as {folder / name}.")
    lines.append("Or set RECFORGE_DATA_DIR (or data_dir=) to the folder that holds "
                 f"{folder.name}/.")
    return " ".join(lines)
