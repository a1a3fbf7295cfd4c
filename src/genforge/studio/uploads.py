"""Uploads, checked before anything is kept.

Files (many in one request, with folder names such as class/x.png) and zips are written to a
staging folder under HOME/tmp, then checked: every name is a plain relative path; a zip is
refused for entries that leave the folder, absolute paths, links, encryption, too many files, too
many bytes unpacked, or a compression ratio no real dataset has (a zip bomb), all before a byte is
unpacked, and unpacking counts the bytes again; every kept file must pass its content kind's own
check (genforge.api.check_file: extension, first bytes, an image's header budgets, so a
decompression bomb is refused from its header). Any refusal is one line and removes the staging
folder; what passes is moved into place by the caller in one step.
"""
from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .. import api, io
from ..errors import DataError
from .home import PathError, inside, relative_parts

CHUNK = 1 << 20


class UploadError(DataError):
    """An upload refused; the message says which file and why, in one line."""


@dataclass(frozen=True)
class Limits:
    """What one upload may hold (the request itself is limited by the server's body limit)."""

    max_files: int = 20_000
    max_bytes: int = 4 << 30         # unpacked, all files together
    max_file_bytes: int = 512 << 20  # one file
    max_ratio: float = 100.0         # unpacked / packed, for entries above RATIO_FLOOR bytes
    ratio_floor: int = 1 << 20       # small entries cannot be bombs, whatever their ratio


def _ignored(parts: tuple[str, ...]) -> bool:
    """What archives carry besides the data: macOS resource forks and folders, hidden files."""
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or parts[-1] == "Thumbs.db"


class Receiver:
    """Collects the files of one upload into a staging folder, within the limits."""

    def __init__(self, staging: Path, limits: Limits):
        self.staging, self.limits = staging, limits
        self.files: list[Path] = []
        self.bytes = 0
        self.ignored = 0

    def _target(self, name: str) -> Path | None:
        try:
            parts = relative_parts(name)
        except PathError as err:
            raise UploadError(str(err)) from None
        if _ignored(parts):
            self.ignored += 1
            return None
        if len(self.files) >= self.limits.max_files:
            raise UploadError(f"more than {self.limits.max_files:,} files in one upload")
        path = inside(self.staging, "/".join(parts))
        if path.exists():
            raise UploadError(f"{'/'.join(parts)}: given twice")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _copy(self, source: BinaryIO, path: Path, name: str) -> None:
        """Copy counting bytes, so a lying header cannot unpack more than the limits."""
        written = 0
        with open(path, "wb") as out:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                self.bytes += len(chunk)
                if written > self.limits.max_file_bytes:
                    raise UploadError(f"{name}: larger than {self.limits.max_file_bytes >> 20} MiB")
                if self.bytes > self.limits.max_bytes:
                    raise UploadError(f"the upload unpacks to more than "
                                      f"{self.limits.max_bytes >> 20} MiB")
                out.write(chunk)
        self.files.append(path)

    def add(self, name: str, source: BinaryIO, unpack: bool = True) -> None:
        """One uploaded file: kept as it is, or unpacked when it is a zip (and unpack is set)."""
        if unpack and name.lower().endswith(".zip"):
            self.add_zip(name, source)
            return
        path = self._target(name)
        if path is not None:
            self._copy(source, path, name)

    def add_zip(self, name: str, source: BinaryIO) -> None:
        try:
            archive = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            raise UploadError(f"{name}: not a readable zip ({err})") from None
        with archive:
            entries = [e for e in archive.infolist() if not e.is_dir()]
            self._check_entries(name, entries)
            for entry in entries:
                path = self._target(entry.filename)
                if path is None:
                    continue
                try:
                    with archive.open(entry) as member:
                        self._copy(member, path, f"{name}: {entry.filename}")
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
                    raise UploadError(f"{name}: {entry.filename}: cannot be unpacked ({err})") from None

    def _check_entries(self, name: str, entries: list[zipfile.ZipInfo]) -> None:
        """Refuse a zip from its directory alone, before anything is unpacked."""
        lim = self.limits
        if len(entries) + len(self.files) > lim.max_files:
            raise UploadError(f"{name}: {len(entries):,} files; at most {lim.max_files:,} in one upload")
        total = packed = 0
        for e in entries:
            where = f"{name}: {e.filename}"
            if stat.S_ISLNK(e.external_attr >> 16):
                raise UploadError(f"{where}: a symbolic link; links are not accepted")
            if e.flag_bits & 0x1:
                raise UploadError(f"{where}: encrypted; upload the files unencrypted")
            try:
                relative_parts(e.filename)
            except PathError as err:
                raise UploadError(f"{name}: {err}") from None
            if e.file_size > lim.max_file_bytes:
                raise UploadError(f"{where}: unpacks to {e.file_size >> 20} MiB; at most "
                                  f"{lim.max_file_bytes >> 20} MiB a file")
            if e.file_size > lim.ratio_floor and e.file_size > lim.max_ratio * max(e.compress_size, 1):
                raise UploadError(f"{where}: compressed {e.file_size / max(e.compress_size, 1):,.0f}"
                                  f" to 1, more than {lim.max_ratio:g} to 1: refusing a possible "
                                  "zip bomb")
            total, packed = total + e.file_size, packed + e.compress_size
        if total + self.bytes > lim.max_bytes:
            raise UploadError(f"{name}: unpacks to {total >> 20} MiB; at most "
                              f"{lim.max_bytes >> 20} MiB in one upload")
        if total > lim.ratio_floor and total > lim.max_ratio * max(packed, 1):
            raise UploadError(f"{name}: compressed {total / max(packed, 1):,.0f} to 1 overall, more "
                              f"than {lim.max_ratio:g} to 1: refusing a possible zip bomb")

    def check(self, kind: str | None) -> tuple[str, dict]:
        """Every kept file checked as its content kind; (the kind, a manifest found among them)."""
        manifest: dict = {}
        kinds: dict[str, str] = {}
        for path in self.files:
            shown = path.relative_to(self.staging).as_posix()
            if path.name == api.DATASET_MANIFEST:
                manifest = self._manifest(path, shown)
                continue
            try:
                found = api.check_file(path, kind)
            except DataError as err:
                raise UploadError(self.scrub(f"{shown}: {err}")) from None
            kinds.setdefault(found, shown)
        if not kinds:
            raise UploadError("no data files in the upload" + (
                f" ({self.ignored} hidden or system files ignored)" if self.ignored else ""))
        if len(kinds) > 1:
            shown = "; ".join(f"{k} ({first})" for k, first in kinds.items())
            raise UploadError(f"one dataset holds one kind of content, this upload holds {shown}")
        return next(iter(kinds)), manifest

    def _manifest(self, path: Path, shown: str) -> dict:
        """A dataset manifest that came with the files: read within bounds, kept only if it is
        an object of text fields (set again through the library, which writes it)."""
        try:
            fields = io.read_json(path, "dataset manifest", max_bytes=64 << 10, error=UploadError)
        except UploadError as err:
            raise UploadError(self.scrub(str(err))) from None
        if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
            raise UploadError(f"{shown}: a dataset manifest is an object of text fields")
        path.unlink()
        self.files.remove(path)
        return {k: v for k, v in fields.items() if k in api.DATASET_MANIFEST_FIELDS}

    def scrub(self, message: str) -> str:
        """A message without the staging folder's path (the user knows the files by their names)."""
        return message.replace(f"{self.staging}/", "").replace(str(self.staging), "the upload")

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
