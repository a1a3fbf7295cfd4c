"""Progress as events: every long step (training, parsing, auditing, sampling, evaluation) says
what it is doing as structured events through one callback, and the caller decides how to show
them: the CLI draws a bar or writes JSON lines (`--progress jsonl`), the studio stores them for
its pages. The library itself never prints.

    with genforge.progress.reporting(print):      # any callable taking an Event
        genforge.train("fashion-mnist-sample", "runs/demo", steps=100)

Code that does long work opens a task and updates it; with no reporter installed an update
costs a clock read.

    with progress.task("sample", total=n, unit="item") as t:
        for batch in ...:
            t.update(advance=len(batch))
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("start", "update", "note", "end", "failed")


@dataclass(frozen=True)
class Event:
    """One report of a task's progress."""

    task: str                 # what runs: train, parse, audit, sample, evaluate, check, encoder, ...
    status: str               # start, update, note (a message), end, failed
    done: int = 0
    total: int | None = None  # None: unknown (a time budget, a search that stops when it finds)
    unit: str = "item"
    elapsed_s: float = 0.0    # wall time since the task started
    eta_s: float | None = None  # estimated wall time left
    info: dict[str, Any] = field(default_factory=dict)  # the task's own figures (loss, lr,
    #                           images_per_s, preview, acceptance_rate, phase, ...)
    message: str = ""         # one line for people, where there is something to say
    time: float = 0.0         # Unix time of the event

    def to_dict(self) -> dict[str, Any]:
        return {"event": "progress", **asdict(self)}


Reporter = Callable[[Event], None]
_reporter: ContextVar[Reporter | None] = ContextVar("genforge_progress", default=None)


@contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Send the events of everything run inside this block to reporter (None: drop them)."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)


def current() -> Reporter | None:
    """The reporter installed by the innermost `reporting` block, if any."""
    return _reporter.get()


def emit(event: Event) -> None:
    reporter = _reporter.get()
    if reporter is not None:
        reporter(event)


class Task:
    """A unit of long work that reports start, updates (at most every min_interval seconds, plus
    forced ones) and end; use as a context manager. A failure inside ends it as "failed"."""

    def __init__(self, name: str, total: int | None = None, unit: str = "item",
                 min_interval: float = 0.5, **info: Any):
        self.name, self.total, self.unit, self.min_interval = name, total, unit, min_interval
        self.done, self.info, self.eta_s = 0, dict(info), None
        self.started = self._last = time.perf_counter()

    def _event(self, status: str, message: str = "") -> Event:
        elapsed = time.perf_counter() - self.started
        eta = self.eta_s
        if eta is None and self.total and self.done:
            eta = elapsed / self.done * max(0, self.total - self.done)
        return Event(self.name, status, self.done, self.total, self.unit, round(elapsed, 3),
                     None if eta is None else round(eta, 1), dict(self.info), message, time.time())

    def __enter__(self) -> "Task":
        emit(self._event("start"))
        return self

    def __exit__(self, kind, value, traceback) -> None:
        emit(self._event("end" if kind is None else "failed",
                         "" if kind is None else " ".join(str(value).split())[:300]))

    def update(self, done: int | None = None, *, advance: int = 0, total: int | None = None,
               eta_s: float | None = None, force: bool = False, **info: Any) -> None:
        """Move to `done` (or by `advance`), merge info; emits when due, or when force is set."""
        self.done = done if done is not None else self.done + advance
        if total is not None:
            self.total = total
        if eta_s is not None:
            self.eta_s = eta_s
        self.info.update(info)
        now = time.perf_counter()
        if force or now - self._last >= self.min_interval or self.done == self.total:
            self._last = now
            emit(self._event("update"))

    def note(self, message: str, **info: Any) -> None:
        """A one-line message about this task (always emitted)."""
        self.info.update(info)
        emit(self._event("note", message))


def task(name: str, total: int | None = None, unit: str = "item", **info: Any) -> Task:
    """A Task to use in a with block (see Task)."""
    return Task(name, total, unit, **info)


def note(task_name: str, message: str, **info: Any) -> None:
    """A one-off message event outside any task (e.g. 'resuming RUN from step N')."""
    emit(Event(task_name, "note", info=dict(info), message=message, time=time.time()))


__all__ = ["Event", "Reporter", "Task", "reporting", "current", "emit", "task", "note", "STATUSES"]
