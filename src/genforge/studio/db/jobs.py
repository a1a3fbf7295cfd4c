"""Jobs in the studio database: the queue, leases, what users ask, and the event log."""
from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from .base import job_row
from .schema import ACTIVE, FINAL, MAX_ATTEMPTS, STATES, Missing, StateError


class JobQueries:
    """Every query on jobs and events (mixed into Store)."""

    # -- queueing -------------------------------------------------------------------------------
    def _insert_job(self, conn: sqlite3.Connection, spec: dict, now: float) -> dict:
        cur = conn.execute(
            "INSERT INTO jobs (kind, state, request, call, dataset_id, model_job, input_id, "
            "created, queued_at, updated) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
            (spec["kind"], json.dumps(spec["request"]), json.dumps(spec["call"]),
             spec.get("dataset_id"), spec.get("model_job"), spec.get("input_id"), now, now, now))
        self._log_state(conn, cur.lastrowid, 0, "queued", "queued")
        return job_row(conn.execute("SELECT * FROM jobs WHERE id = ?", (cur.lastrowid,)).fetchone())

    def enqueue(self, spec: dict) -> dict:
        """Queue a job: spec holds kind, request, call (the configuration, copied now) and the
        dataset_id, model_job or input_id it reads."""
        with self._write() as conn:
            return self._insert_job(conn, spec, time.time())

    def _log_state(self, conn: sqlite3.Connection, job_id: int, attempt: int, state: str,
                   message: str) -> None:
        conn.execute("INSERT INTO events (job_id, attempt, time, data) VALUES (?, ?, ?, ?)",
                     (job_id, attempt, time.time(),
                      json.dumps({"event": "state", "state": state, "message": message})))

    def _set_state(self, conn: sqlite3.Connection, row: sqlite3.Row, state: str, message: str,
                   **columns: Any) -> None:
        """Change a job's state (and columns) and log it; a final state releases the lease."""
        now = time.time()
        columns = {"state": state, "updated": now, **columns}
        if state in FINAL:
            columns.setdefault("finished", now)
        if state not in ACTIVE:
            columns.update(lease_owner=None, lease_host=None, lease_pid=None, lease_expires=None)
        assigns = ", ".join(f"{name} = ?" for name in columns)
        conn.execute(f"UPDATE jobs SET {assigns} WHERE id = ?", (*columns.values(), row["id"]))
        self._log_state(conn, row["id"], row["attempts"], state, message)

    # -- leases ---------------------------------------------------------------------------------
    def lease(self, owner: str, host: str, lease_s: float) -> dict | None:
        """Take the oldest queued job for owner (one worker process), or None when none waits."""
        with self._write() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE state = 'queued' "
                               "ORDER BY queued_at, id LIMIT 1").fetchone()
            if row is None:
                return None
            now = time.time()
            conn.execute("UPDATE jobs SET attempts = attempts + 1 WHERE id = ?", (row["id"],))
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()
            self._set_state(conn, row, "running", f"running (attempt {row['attempts']})",
                            lease_owner=owner, lease_host=host, lease_pid=None,
                            lease_expires=now + lease_s, heartbeat=now, started=now,
                            error=None)
            return job_row(conn.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone())

    def set_pid(self, job_id: int, owner: str, pid: int) -> bool:
        with self._write() as conn:
            return conn.execute("UPDATE jobs SET lease_pid = ? WHERE id = ? AND lease_owner = ?",
                                (pid, job_id, owner)).rowcount == 1

    def heartbeat(self, job_id: int, owner: str, lease_s: float) -> tuple[bool, float | None]:
        """Extend the lease: (still ours, when a stop was requested or None). Not ours: the
        job was reclaimed, and this worker must stop at once without writing anything."""
        now = time.time()
        with self._write() as conn:
            changed = conn.execute(
                "UPDATE jobs SET lease_expires = ?, heartbeat = ? WHERE id = ? AND lease_owner = ? "
                "AND state IN ('running', 'stopping')", (now + lease_s, now, job_id, owner)).rowcount
            row = conn.execute("SELECT stop_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return changed == 1, (row["stop_requested"] if row else None)

    def finish(self, job_id: int, owner: str, state: str, *, result: Any = None,
               error: str | None = None, message: str = "") -> bool:
        """The worker's last word on its job (done, failed, stopped, or queued to run again);
        ignored (False) when the lease is no longer its own."""
        with self._write() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ? AND lease_owner = ? AND state IN "
                               "('running', 'stopping')", (job_id, owner)).fetchone()
            if row is None:
                return False
            columns: dict[str, Any] = {"error": error}
            if result is not None:
                columns["result"] = json.dumps(result)
            if state == "queued":  # handed back in good order: not a lost attempt
                columns.update(stop_requested=None, finished=None, attempts=0)
            self._set_state(conn, row, state, message or error or state, **columns)
            return True

    def reclaim(self, host: str, gone: Callable[[dict, bool], bool], *,
                startup: bool = False) -> list[dict]:
        """Resolve the jobs whose worker is gone: its lease expired, or its process on this host
        is dead (at startup, a lease without a process id too: the server that took it died
        before starting it). gone(job, expired) says whether the worker is surely gone (it may
        end one whose lease expired). A job with a stop request ends stopped; one whose worker
        was lost MAX_ATTEMPTS times in a row fails; any other goes back to the queue, where it
        resumes from its checkpoint."""
        now, resolved = time.time(), []
        with self._write() as conn:
            for row in conn.execute("SELECT * FROM jobs WHERE state IN ('running', 'stopping')").fetchall():
                expired = (row["lease_expires"] or 0) < now
                if not expired and (row["lease_host"] != host
                                    or (row["lease_pid"] is None and not startup)):
                    continue  # another host's live lease, or a worker this server is starting
                job = job_row(row)
                if not gone(job, expired):
                    continue
                self._resolve_lost(conn, row, "its worker's lease expired" if expired
                                   else "its worker is gone")
                resolved.append(job)
        return resolved

    def worker_exited(self, job_id: int, owner: str, code: int | None) -> bool:
        """The worker process of a job ended without its last word (killed, crashed)."""
        with self._write() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ? AND lease_owner = ? AND state IN "
                               "('running', 'stopping')", (job_id, owner)).fetchone()
            if row is None:
                return False
            self._resolve_lost(conn, row, "its worker could not start" if code is None
                               else f"its worker exited with code {code}")
            return True

    def _resolve_lost(self, conn: sqlite3.Connection, row: sqlite3.Row, why: str) -> None:
        if row["stop_requested"] is not None:
            self._set_state(conn, row, "stopped", f"stopped: {why} during the stop (the last "
                            "checkpoint is kept)")
        elif row["attempts"] >= MAX_ATTEMPTS:
            self._set_state(conn, row, "failed", f"failed: {why}, {row['attempts']} times in a "
                            "row; see the job's log", error=f"{why}, {row['attempts']} times in "
                            "a row (see the job's log)")
        else:
            self._set_state(conn, row, "queued", f"requeued: {why}; it resumes from its last "
                            "checkpoint")

    def overdue_stops(self, limit_s: float) -> list[dict]:
        """Jobs still stopping limit_s after the stop was asked for."""
        rows = self._conn().execute("SELECT * FROM jobs WHERE state = 'stopping' AND "
                                    "stop_requested < ?", (time.time() - limit_s,))
        return [job_row(r) for r in rows]

    def force_stopped(self, job_id: int, message: str) -> bool:
        """End a stopping job whose worker did not stop in time (the caller killed it)."""
        with self._write() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ? AND state = 'stopping'",
                               (job_id,)).fetchone()
            if row is None:
                return False
            self._set_state(conn, row, "stopped", message)
            return True

    # -- what users ask -------------------------------------------------------------------------
    def request_stop(self, job_id: int) -> dict:
        """A queued job stops at once; a running one is asked to (checkpoint, then stopped)."""
        with self._write() as conn:
            row = self._row(conn, job_id)
            if row["state"] == "queued":
                self._set_state(conn, row, "stopped", "stopped before it started")
            elif row["state"] == "running":
                self._set_state(conn, row, "stopping", "stop requested: saving a checkpoint",
                                stop_requested=time.time())
            elif row["state"] != "stopping":
                raise StateError(f"job {job_id} is {row['state']}: there is nothing to stop")
            return job_row(self._row(conn, job_id))

    def requeue_by_user(self, job_id: int, allowed: tuple[str, ...], verb: str) -> dict:
        """Resume (a stopped train job) or retry (a failed or stopped job): queued again, at
        the back of the queue, with its own configuration and folder."""
        with self._write() as conn:
            row = self._row(conn, job_id)
            if row["state"] not in allowed:
                raise StateError(f"job {job_id} is {row['state']}: only a job that is "
                                 f"{' or '.join(allowed)} can be {verb}")
            self._set_state(conn, row, "queued", f"{verb} by request", queued_at=time.time(),
                            attempts=0, stop_requested=None, error=None, finished=None)
            return job_row(self._row(conn, job_id))

    def delete_job(self, job_id: int, remove: Callable[[dict], None]) -> dict:
        """Delete a finished job no unfinished job reads; remove(job) deletes its files first."""
        with self._write() as conn:
            job = job_row(self._row(conn, job_id))
            if job["state"] not in FINAL:
                raise StateError(f"job {job_id} is {job['state']}: stop it before deleting it")
            busy = self.unfinished_readers(conn, "model_job", job_id)
            if busy:
                raise StateError(f"job {job_id}'s model is used by unfinished job(s) "
                                 f"{', '.join(map(str, busy))}")
            remove(job)
            conn.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            return job

    def _row(self, conn: sqlite3.Connection, job_id: int) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise Missing(f"no job {job_id}")
        return row

    # -- reading --------------------------------------------------------------------------------
    def job(self, job_id: int) -> dict | None:
        row = self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return job_row(row) if row else None

    def jobs(self, *, state: str | None = None, kind: str | tuple[str, ...] | None = None,
             limit: int = 100, offset: int = 0) -> list[dict]:
        """The newest jobs, of a state and of a kind (or of any of several kinds)."""
        where, args = [], []
        for column, value in (("state", state), ("kind", kind)):
            values = (value,) if isinstance(value, str) else value
            if values is not None:
                where.append(f"{column} IN ({', '.join('?' * len(values))})")
                args.extend(values)
        sql = ("SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY id DESC LIMIT ? OFFSET ?")
        return [job_row(r) for r in self._conn().execute(sql, (*args, limit, offset))]

    def job_count(self, *, kind: str | None = None) -> int:
        """How many jobs there are (of a kind)."""
        if kind is None:
            return self._conn().execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        return self._conn().execute("SELECT COUNT(*) FROM jobs WHERE kind = ?",
                                    (kind,)).fetchone()[0]

    def jobs_of_model(self, model_job: int, *, limit: int = 100) -> list[dict]:
        """The newest jobs that use a model (generate, evaluate, harmonize, complete)."""
        return [job_row(r) for r in self._conn().execute(
            "SELECT * FROM jobs WHERE model_job = ? ORDER BY id DESC LIMIT ?", (model_job, limit))]

    def latest(self, kind: str, dataset_id: int) -> dict | None:
        """The newest job of a kind on a dataset (its audit)."""
        row = self._conn().execute("SELECT * FROM jobs WHERE kind = ? AND dataset_id = ? "
                                   "ORDER BY id DESC LIMIT 1", (kind, dataset_id)).fetchone()
        return job_row(row) if row else None

    def count(self, states: tuple[str, ...]) -> int:
        marks = ", ".join("?" * len(states))
        return self._conn().execute(f"SELECT COUNT(*) FROM jobs WHERE state IN ({marks})",
                                    states).fetchone()[0]

    def counts(self) -> dict[str, int]:
        """How many jobs are in each state."""
        found = dict(self._conn().execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"))
        return {state: found.get(state, 0) for state in STATES}

    def add_event(self, job_id: int, attempt: int, data: dict) -> int:
        """Store one progress event (and keep it as the job's newest, for listings)."""
        text = json.dumps(data, default=str)
        with self._write() as conn:
            cur = conn.execute("INSERT INTO events (job_id, attempt, time, data) VALUES (?, ?, ?, ?)",
                               (job_id, attempt, time.time(), text))
            conn.execute("UPDATE jobs SET last_event = ? WHERE id = ?", (text, job_id))
            return cur.lastrowid

    def events(self, *, job_id: int | None = None, after: int = 0, limit: int = 500) -> list[dict]:
        """Events after the id `after`, oldest first: one job's, or every job's (the queue)."""
        if job_id is None:
            rows = self._conn().execute("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?",
                                        (after, limit))
        else:
            rows = self._conn().execute("SELECT * FROM events WHERE job_id = ? AND id > ? "
                                        "ORDER BY id LIMIT ?", (job_id, after, limit))
        return [{"id": r["id"], "job": r["job_id"], "attempt": r["attempt"], "time": r["time"],
                 **json.loads(r["data"])} for r in rows]

    def last_event_id(self) -> int:
        return self._conn().execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]


