"""The supervisor: a thread of the studio server that keeps up to N workers busy.

Every POLL_S it (1) reaps worker processes that ended, resolving any job they left running;
(2) reclaims jobs whose worker is gone (its lease expired, or its process on this host is dead:
at startup that is how a job interrupted by a crash is found and requeued); (3) ends stops that
overran STOP_LIMIT_S, so no job stays "stopping"; (4) leases queued jobs for new worker
processes, one job per process (python -m genforge.studio.worker). Jobs live in the database:
this thread holds nothing a crash would lose.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from .db import ACTIVE, Store
from .home import Home
from .worker import LEASE_S

POLL_S = 0.25
STOP_LIMIT_S = 55.0     # the worker ends its own stop at 45 s; this is the backstop
SHUTDOWN_S = 40.0       # workers asked to stop at shutdown get this long to checkpoint
HOST = socket.gethostname()


def is_worker(pid: int, job_id: int) -> bool:
    """Whether pid is a live worker process of this job (not a zombie, not a reused pid)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.parent.exists():
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            return False
        return b"genforge.studio.worker" in args and str(job_id).encode() in args
    try:  # no /proc (macOS): the pid is alive, which is the best we know
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


class Supervisor:
    def __init__(self, home: Home, store: Store, workers: int = 1,
                 env: dict[str, str] | None = None):
        self.home, self.store, self.workers = home, store, workers
        self.env = env
        self.children: dict[int, tuple[subprocess.Popen, str]] = {}  # job id -> (process, owner)
        self.halt = threading.Event()
        self.thread: threading.Thread | None = None

    # -- the loop -------------------------------------------------------------------------------
    def start(self) -> None:
        self.store.reclaim(HOST, self.gone, startup=True)
        self.thread = threading.Thread(target=self.loop, name="genforge-supervisor", daemon=True)
        self.thread.start()

    def loop(self) -> None:
        while not self.halt.wait(POLL_S):
            try:
                self.tick()
            except Exception as err:  # noqa: BLE001 - a busy database: next tick
                print(f"genforge studio: supervisor: {type(err).__name__}: {err}", file=sys.stderr)

    def tick(self) -> None:
        self.reap()
        self.store.reclaim(HOST, self.gone)
        for job in self.store.overdue_stops(STOP_LIMIT_S):
            if job["lease_pid"] and job["lease_host"] == HOST and is_worker(job["lease_pid"], job["id"]):
                kill(job["lease_pid"])
            self.store.force_stopped(job["id"], f"stopped: the job did not stop within "
                                     f"{STOP_LIMIT_S:.0f} s and its worker was ended; its last "
                                     "checkpoint is kept")
        while not self.halt.is_set() and max(len(self.children),
                                             self.store.count(ACTIVE)) < self.workers:
            if not self.spawn():
                break

    def gone(self, job: dict, expired: bool) -> bool:
        """Whether a job's worker is surely gone; one whose lease expired is ended first."""
        pid = job["lease_pid"]
        if job["lease_host"] != HOST or pid is None or not is_worker(pid, job["id"]):
            return True
        if expired:  # alive but silent (hung, stopped): end it, so it cannot run beside its successor
            kill(pid)
            return True
        return False

    def spawn(self) -> bool:
        owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        job = self.store.lease(owner, HOST, LEASE_S)
        if job is None:
            return False
        folder = self.home.job_folder(job["id"])
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with open(folder / "log.txt", "ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "genforge.studio.worker", str(self.home.root),
                     str(job["id"]), owner], stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, cwd=self.home.root, env=self.env,
                    start_new_session=True)  # Ctrl-C reaches the server, which stops workers
        except OSError as err:  # no process to be had (too many open files, no memory)
            self.store.worker_exited(job["id"], owner, None)
            print(f"genforge studio: cannot start a worker ({err}); job {job['id']} waits",
                  file=sys.stderr)
            return False
        self.children[job["id"]] = (process, owner)
        self.store.set_pid(job["id"], owner, process.pid)
        return True

    def reap(self) -> None:
        for job_id, (process, owner) in list(self.children.items()):
            code = process.poll()
            if code is not None:
                del self.children[job_id]
                self.store.worker_exited(job_id, owner, code)  # no-op after its last word

    # -- shutdown -------------------------------------------------------------------------------
    def stop(self, timeout: float = SHUTDOWN_S) -> None:
        """Stop leasing; ask each worker to stop (training saves a checkpoint) and requeue its
        job; end the ones still running after timeout (their jobs are requeued too)."""
        self.halt.set()
        if self.thread is not None:
            self.thread.join()
        for process, _ in self.children.values():
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for job_id, (process, owner) in list(self.children.items()):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.reap()
