"""Atomic file writing: a file is either the old version or the complete new one, never half."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from .errors import CheckpointError, GenforgeError


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once, at import: temporary files are created 0600 (mkstemp) and folders 0700 (mkdtemp),
# and what genforge hands over must have the permissions the user's umask gives a new file.
UMASK = _read_umask()


def user_permissions(path: str | Path, folder: bool = False) -> None:
    """Give a file (0666) or folder (0777) the permissions the user's umask allows."""
    os.chmod(path, (0o777 if folder else 0o666) & ~UMASK)


def write_with(path: Path, write) -> Path:
    """Call write(temp_path), then move the finished file into place atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        user_permissions(tmp)  # first: a writer may narrow it (a private key stays 0600)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # data on disk before the rename makes it visible
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    """Write bytes to path atomically."""
    return write_with(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text(path: Path, text: str) -> Path:
    """Write text (UTF-8) to path atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> Path:
    """Write an object as indented JSON atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def append_jsonl(path: Path, rows: list[dict]) -> None:
    """Append one JSON line per row, flushed to disk; earlier lines are never rewritten."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(row) + "\n" for row in rows))
        f.flush()
        os.fsync(f.fileno())


JSON_MAX_BYTES = 16 << 20  # a config, manifest or legend is kilobytes; more is not ours
JSON_MAX_DEPTH = 64        # ours nest four deep; Python's parser recurses (and fails) near 1,000


def read_json(path: Path, what: str = "file", *, max_bytes: int = JSON_MAX_BYTES,
              error: type[GenforgeError] = CheckpointError) -> Any:
    """Read JSON, raising `error` (CheckpointError by default) naming the file when it is
    missing, larger than max_bytes, malformed, or nested deeper than JSON_MAX_DEPTH."""
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)  # not stat: a FIFO or /dev/zero has no honest size
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as err:
        raise error(f"{path}: {what} cannot be read ({err.strerror or err})") from None
    if len(data) > max_bytes:
        raise error(f"{path}: {what} is larger than {max_bytes >> 20} MiB; refusing to read it")
    too_deep = f"{path}: {what} nests lists or objects more than {JSON_MAX_DEPTH} deep"
    try:
        value = json.loads(data.decode("utf-8"))
    except ValueError as err:  # bad JSON or UTF-8, or a number past Python's 4,300 digits
        raise error(f"{path}: {what} is not valid JSON ({err})") from None
    except RecursionError:  # the parser recurses once per level
        raise error(too_deep) from None
    if _depth(value) > JSON_MAX_DEPTH:  # what parsed may still be too deep for code that recurses
        raise error(too_deep)
    return value


def _depth(value: Any) -> int:
    """How deep lists and objects nest in a parsed JSON value (iterative: no recursion limit)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth + 1)
            todo += [(v, depth + 1) for v in (node.values() if isinstance(node, dict) else node)]
    return deepest


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """safetensors file with JSON metadata under the key 'genforge', written atomically."""
    tensors = {k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()}
    meta = {"genforge": json.dumps(metadata, sort_keys=True)}
    try:
        # safetensors makes the file anew, with its own mode: the user's umask is applied after
        return write_with(path, lambda tmp: (save_file(tensors, tmp, metadata=meta),
                                             user_permissions(tmp)))
    except Exception as err:  # safetensors reports a full disk as its own error type
        if not isinstance(err, OSError) and "No space left" not in str(err):
            raise
        raise CheckpointError(f"{path}: could not be written ({' '.join(str(err).split())[:160]});"
                              " the previous version is kept: free some space and rerun") from None


def load_tensors(path: Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Inverse of save_tensors. Never unpickles; a damaged file gives a CheckpointError."""
    meta = load_metadata(path)
    try:
        return load_file(str(path), device=str(device)), meta
    except Exception as err:  # safetensors raises several types for damaged files
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None


def load_metadata(path: Path) -> dict:
    """The JSON metadata save_tensors wrote, read from the file's header alone (no tensors)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {}).get("genforge", "{}"))
    except Exception as err:  # safetensors raises several types for damaged files
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None


def replace_dir(staging: Path, target: Path) -> Path:
    """Move a fully written staging folder into place, keeping the old one until the swap is done."""
    target = Path(target)
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    if old.exists():
        shutil.rmtree(old)
    return target


def cache_dir(name: str) -> Path:
    """A folder of genforge's cache: $GENFORGE_CACHE/<name>, else ~/.cache/genforge/<name>
    (features, encoders, audit, music)."""
    root = os.environ.get("GENFORGE_CACHE") or Path.home() / ".cache" / "genforge"
    return Path(root) / name
