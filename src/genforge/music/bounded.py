"""Running a parser on an untrusted file in a forked child, bounded in time and memory.

music21 parses without a bound on either: a MIDI file holding one note 0x0FFFFFFF ticks long ran
for over 200 s (a 37-byte one: over a minute and 1.2 GB). `run(work, path, ...)` forks, limits the child's address space and CPU time,
runs work(path) there and takes back its arrays as npz bytes through a pipe (never a pickle);
the parent kills a child that overruns its time. Where os.fork does not exist the work runs
in-process, unbounded.
"""
from __future__ import annotations

import gc
import math
import os
import select
import signal
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import numpy as np


class Unreadable(Exception):
    """A file the work failed on, that overran its time, or whose child was killed."""


def run(work: Callable[[Path], dict[str, np.ndarray]], path: Path, seconds: float, memory: int,
        passthrough: type[Exception]) -> dict[str, np.ndarray]:
    """work(path) -> arrays, in a forked child given `seconds` and `memory` more bytes of address
    space. Its `passthrough` exceptions come back as themselves (their message), anything else
    as Unreadable with the reason."""
    if not hasattr(os, "fork"):
        return work(path)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(work, path, write, seconds, memory, passthrough)  # never returns
    os.close(write)
    payload = None
    try:
        payload = _receive(read, seconds)
    finally:  # on a timeout (or Ctrl-C here) the child is killed, and always reaped
        os.close(read)
        if payload is None:
            os.kill(pid, signal.SIGKILL)
        status = os.waitpid(pid, 0)[1]
    if payload is None:
        raise Unreadable(f"took longer than {seconds:.0f} s to parse (the limit for its size)")
    kind, body = payload[:1], payload[1:]
    if kind == b"A":
        with np.load(BytesIO(body), allow_pickle=False) as arrays:
            return dict(arrays)
    if kind == b"S":
        raise passthrough(body.decode())
    if kind == b"E":
        raise Unreadable(body.decode())
    signalled = os.WIFSIGNALED(status) and os.WTERMSIG(status)
    raise Unreadable(f"the parser was killed by signal {signalled}" if signalled else
                     "the parser ended without an answer")


def _child(work, path: Path, fd: int, seconds: float, memory: int, passthrough) -> None:
    """The forked parser: limits, work, one tagged answer (A arrays, S passthrough, E error), exit."""
    try:
        # The parent's objects are not ours to collect: left in the collector's lists, every
        # collection here walked (and copied, page by page) the parent's heap, five times slower.
        gc.freeze()
        import resource
        if _address_space():
            _limit(resource.RLIMIT_AS, _address_space() + memory)
        _limit(resource.RLIMIT_CPU, math.ceil(seconds) + 1)  # if the parent dies, still ends
        try:
            buffer = BytesIO()
            np.savez(buffer, **work(path))
            payload = b"A" + buffer.getvalue()
        except passthrough as why:
            payload = b"S" + str(why).encode()
        except MemoryError:
            payload = b"E" + f"MemoryError: needs more than {memory >> 20} MiB".encode()
        except BaseException as e:  # noqa: BLE001 - parsers raise many types on corrupt input
            payload = b"E" + f"{type(e).__name__}: {' '.join(str(e).split())[:200]}".encode()
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os._exit(0)


def _limit(which: int, value: int) -> None:
    """Lower a resource's soft limit to value (never above the hard limit, never raised)."""
    import resource
    soft, hard = resource.getrlimit(which)
    caps = [v for v in (soft, hard) if v != resource.RLIM_INFINITY]
    resource.setrlimit(which, (min([value] + caps), hard))


def _address_space() -> int:
    """This process's mapped address space in bytes (a fork starts with its parent's); 0 where
    /proc is missing (then there is no memory limit: macOS does not enforce RLIMIT_AS anyway)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _receive(fd: int, seconds: float) -> bytes | None:
    """Everything written to fd until the writer closes it, or None after `seconds`."""
    deadline, chunks = time.monotonic() + seconds, []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
