"""The studio home: one folder holding everything the studio keeps, and the one way to name a
path inside it.

    HOME/studio.db       the job queue, datasets and events (SQLite, WAL)
    HOME/datasets/ID/    uploaded datasets, as the library reads folders
    HOME/inputs/ID/      single files given to jobs (a melody, a partial level)
    HOME/jobs/ID/        each job's folder: log.txt, run/ (train), out/ (outputs), audit.json
    HOME/cache/          the library's caches (audit hashes, encoders, parsed music)
    HOME/tmp/            uploads being checked, zips being sent; emptied at every start
    HOME/token           the access token (0600), made when the studio first serves beyond
                         this machine

Every path a request names (a file to download, an entry of an uploaded zip) goes through
`inside`: relative, no '..', no symlink on the way, and under its folder once resolved.
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import GenforgeError


class PathError(GenforgeError):
    """A path from a request that would leave its folder (or pass through a link)."""


DRIVE = re.compile(r"^[A-Za-z]:")


def relative_parts(name: str) -> tuple[str, ...]:
    """The parts of a relative path from a user (a URL, a form, a zip entry); PathError for an
    absolute path, a drive, '..', a NUL byte or an empty name. Backslashes count as separators:
    zips made on Windows use them."""
    text = str(name).replace("\\", "/")
    if not text or "\0" in text or text.startswith("/") or DRIVE.match(text):
        raise PathError(f"{name!r}: not a relative path inside the studio")
    parts = tuple(p for p in PurePosixPath(text).parts if p not in ("", "."))
    if not parts or ".." in parts:
        raise PathError(f"{name!r}: a path may not leave its folder")
    return parts


def inside(root: Path, name: str) -> Path:
    """root/name, checked: relative, no symlink on the way (nothing is followed out of root),
    and inside root once resolved."""
    root = Path(root).resolve()
    path = root
    for part in relative_parts(name):
        path = path / part
        if path.is_symlink():
            raise PathError(f"{name!r}: passes through a symbolic link")
    if not path.resolve().is_relative_to(root):
        raise PathError(f"{name!r}: leaves its folder")
    return path


class Home:
    """The folders of a studio home (see the module's docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.db = self.root / "studio.db"
        self.datasets = self.root / "datasets"
        self.inputs = self.root / "inputs"
        self.jobs = self.root / "jobs"
        self.cache = self.root / "cache"
        self.tmp = self.root / "tmp"
        self.token = self.root / "token"
        self.lock = self.root / "server.lock"

    def make(self) -> "Home":
        """Create the folders; a new home is private to its user (0700)."""
        if not self.root.exists():
            self.root.mkdir(parents=True, mode=0o700)
        for folder in (self.datasets, self.inputs, self.jobs, self.cache, self.tmp):
            folder.mkdir(exist_ok=True)
        return self

    def job_folder(self, job_id: int) -> Path:
        return self.jobs / str(int(job_id))

    def staging(self) -> Path:
        """A fresh folder under tmp/ for something not yet checked."""
        path = self.tmp / uuid.uuid4().hex
        path.mkdir(parents=True)
        return path

    def trash(self, path: Path) -> Path | None:
        """Move a folder into tmp/ (one rename: quick inside a transaction); the caller deletes
        it after the commit, and a crash in between leaves it to the next start's sweep."""
        if not path.exists():
            return None
        target = self.tmp / f"deleted-{uuid.uuid4().hex}"
        os.replace(path, target)
        return target

    def sweep(self, dataset_folders: set[str], input_paths: set[str]) -> list[Path]:
        """Remove what a crash left half-made: everything in tmp/, and dataset or input folders
        no database row names (moved into place, then the transaction did not commit)."""
        removed = []
        for entry in self.tmp.iterdir():
            remove(entry)
            removed.append(entry)
        kept_inputs = {str(Path(p).parent) for p in input_paths}
        for folder, kept in ((self.datasets, dataset_folders), (self.inputs, kept_inputs)):
            for entry in folder.iterdir():  # the studio names its folders by row id
                if entry.name.isdigit() and str(entry) not in kept:
                    remove(entry)
                    removed.append(entry)
        return removed


def remove(path: Path) -> None:
    """Delete a file, link or folder (links are removed, never followed)."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path)


def folder_bytes(folder: Path) -> tuple[int, int]:
    """(files, bytes) under a folder, links not followed."""
    files = size = 0
    for base, _, names in os.walk(folder):
        for name in names:
            path = Path(base, name)
            if not path.is_symlink():
                files, size = files + 1, size + path.stat().st_size
    return files, size


def zip_folder(folder: Path, target: Path, skip: tuple[str, ...] = (".lock",)) -> Path:
    """A zip of a folder's files (links left out), paths relative to the folder's parent so it
    unpacks into one folder of the same name."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for base, dirs, names in os.walk(folder):
            dirs.sort()
            for name in sorted(names):
                path = Path(base, name)
                if name in skip or path.is_symlink():
                    continue
                archive.write(path, path.relative_to(folder.parent).as_posix())
    return target
