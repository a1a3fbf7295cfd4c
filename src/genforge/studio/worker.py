"""A worker process: runs one leased job through genforge.api, then exits.

    python -m genforge.studio.worker HOME JOB OWNER

The supervisor leased the job for OWNER and started this process. A heartbeat thread extends the
lease every HEARTBEAT_S seconds and watches for three things:
  * the lease is no longer ours (the job was reclaimed): exit at once, writing nothing, so a job
    never runs twice;
  * a stop request: training saves a checkpoint and returns (should_stop), any other job is
    interrupted; the job ends stopped, within STOP_GRACE_S at most;
  * the studio server is gone (our parent changed): stop the same way, then put the job back in
    the queue, where the next start resumes it.
The job's folder is locked (flock) while it runs, so even a process the database lost track of
cannot run beside its successor. Progress events go to the database, words to HOME/jobs/ID/log.txt.
"""
from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
import time
import traceback
import warnings

from .. import api
from ..errors import GenforgeError
from .db import Store
from .home import Home
from .jobs import KINDS, relative

HEARTBEAT_S = 1.0
LEASE_S = 30.0          # a worker silent this long is gone: its job is reclaimed
STOP_GRACE_S = 45.0     # a stop that takes longer ends the process (the checkpoint before is kept)
EVENT_INTERVAL_S = 1.0  # progress updates stored at most this often per task
LOCK_WAIT_S = 60.0      # how long a successor waits for a predecessor still saving its checkpoint
EXIT_LOST = 3


class Stopped(BaseException):
    """Raised in the job's thread to interrupt it (a BaseException: no `except Exception` in the
    library swallows it)."""


class Worker:
    def __init__(self, home: Home, job_id: int, owner: str, *, standalone: bool = True):
        self.home, self.job_id, self.owner = home, job_id, owner
        self.store = Store(home.db)
        self.folder = home.job_folder(job_id)
        self.standalone = standalone  # a process of its own (not a test running it in-process)
        self.reason: str | None = None  # "stop" (a user's request) or "shutdown" (studio gone)
        self.since = 0.0
        self.done = threading.Event()
        self.parent = os.getppid()
        self.last_update: dict[str, float] = {}
        self.previews: dict[str, str | None] = {}
        self.attempt = 0
        self.in_job = False  # while the library call runs: a SIGTERM then interrupts it

    def log(self, text: str) -> None:
        """A line in the job's log (HOME/jobs/ID/log.txt, where the process's output goes too)."""
        with open(self.folder / "log.txt", "a", encoding="utf-8") as f:
            f.write(f"genforge: {text}\n")

    # -- the job's side -------------------------------------------------------------------------
    def should_stop(self) -> bool:
        return self.reason is not None

    def report(self, event: api.Event) -> None:
        """Store a progress event: updates at most every EVENT_INTERVAL_S per task (a new preview
        always), everything else at once; a note also goes to the log."""
        data = relative(event.to_dict(), self.folder)
        preview = event.info.get("preview")  # a task's info keeps its newest preview: new or not
        if event.status == "update" and preview == self.previews.get(event.task):
            now = time.monotonic()
            if now - self.last_update.get(event.task, -1e9) < EVENT_INTERVAL_S \
                    and event.done != event.total:
                return
            self.last_update[event.task] = now
        self.previews[event.task] = preview
        if event.status in ("note", "failed"):
            self.log(f"{event.task}: {event.message}")
        self._store_event(data)

    def _store_event(self, data: dict) -> None:
        try:
            self.store.add_event(self.job_id, self.attempt, data)
        except Exception as err:  # noqa: BLE001 - progress must never stop the job
            self.log(f"progress event not stored ({err})")

    def warn(self, message, category, filename, lineno, file=None, line=None) -> None:
        """Library warnings: one line in the log, and an event the pages show."""
        text = " ".join(str(message).split())
        self.log(f"warning: {text}")
        self._store_event({"event": "warning", "message": text, "time": time.time()})

    # -- the heartbeat's side -------------------------------------------------------------------
    def ask(self, reason: str) -> None:
        """Ask the job to stop: training checks should_stop after each step; anything else (and
        training outside its loop) gets SIGTERM, which the job's thread turns into Stopped."""
        if self.reason is None:
            self.reason, self.since = reason, time.monotonic()
            self.log(f"{'stop requested' if reason == 'stop' else 'the studio stopped'}; stopping")
            if self.standalone:
                os.kill(os.getpid(), signal.SIGTERM)

    def heartbeat(self) -> None:
        while not self.done.wait(HEARTBEAT_S):
            try:
                owned, stop = self.store.heartbeat(self.job_id, self.owner, LEASE_S)
            except Exception:  # noqa: BLE001 - a busy database: try again next beat
                continue
            if not owned:
                self.log("this worker lost its lease (the job was reclaimed); exiting without "
                         "writing")
                if self.standalone:
                    os._exit(EXIT_LOST)
                self.reason = self.reason or "lost"
                return
            if stop is not None:
                self.ask("stop")
            elif self.standalone and os.getppid() != self.parent:
                self.ask("shutdown")
            if self.reason and time.monotonic() - self.since > STOP_GRACE_S and self.standalone:
                self.finish(*self.interrupted("it did not reach a checkpoint within "
                                              f"{STOP_GRACE_S:.0f} s; the one before is kept"))
                os._exit(0)

    # -- running --------------------------------------------------------------------------------
    def interrupted(self, why: str = "") -> tuple[str, str]:
        """The state an interrupted job ends in: stopped (asked for), else queued again."""
        if self.reason == "stop":
            return "stopped", "stopped" + (f": {why}" if why else "")
        return "queued", "requeued: the studio stopped" + (f"; {why}" if why else "")

    def finish(self, state: str, message: str, **fields) -> None:
        self.done.set()
        if self.reason != "lost":
            self.store.finish(self.job_id, self.owner, state, message=message, **fields)

    def run(self) -> int:
        job = self.store.job(self.job_id)
        if job is None or job["lease_owner"] != self.owner:
            return 0  # reclaimed before we started: not ours
        self.attempt = job["attempts"]
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = open(self.folder / ".lock", "a")
        if not self._lock(lock):
            self.log("another process still holds this job's folder; leaving it")
            return EXIT_LOST
        self.log(f"job {self.job_id} ({job['kind']}), attempt {self.attempt}, pid {os.getpid()}, "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
        beat = threading.Thread(target=self.heartbeat, name="heartbeat", daemon=True)
        beat.start()
        try:
            state, message, fields = self._run(job)
            self.finish(state, message, **fields)
        finally:
            self.done.set()
            lock.close()
        return 0

    def _lock(self, lock) -> bool:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.2)

    def _run(self, job: dict) -> tuple[str, str, dict]:
        kind = KINDS[job["kind"]]
        try:
            with api.reporting(self.report), warnings.catch_warnings():
                warnings.showwarning = self.warn
                warnings.simplefilter("default")
                self.in_job = True
                try:
                    result = kind.run(job["call"], self.folder, self.should_stop)
                finally:
                    self.in_job = False
        except Stopped:
            state, message = self.interrupted()
            return state, message, {}
        except GenforgeError as err:
            return "failed", f"failed: {err}", {"error": str(err)}
        except OSError as err:
            where = f" ({err.filename})" if err.filename else ""
            text = f"{err.strerror or err}{where}"
            return "failed", f"failed: {text}", {"error": text}
        except Exception as err:  # the last line of defence: one line, the traceback in the log
            self.log(traceback.format_exc().rstrip())
            text = (f"unexpected {type(err).__name__}: {' '.join(str(err).split())[:200]} "
                    "(a bug in genforge; the traceback is in the job's log)")
            return "failed", f"failed: {text}", {"error": text}
        if isinstance(result, dict) and result.get("status") == "interrupted":
            state, message = self.interrupted("at its checkpoint")
            return state, message, {"result": result}
        return "done", "done", {"result": result}


def main(argv: list[str] | None = None) -> int:
    home, job_id, owner = (argv if argv is not None else sys.argv[1:])
    worker = Worker(Home(home), int(job_id), owner)

    def on_term(signum, frame):
        worker.reason = worker.reason or "shutdown"  # the server stops us (else: a stop request)
        worker.since = worker.since or time.monotonic()
        if worker.in_job:
            raise Stopped()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server; it stops us
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
