"""The studio database's schema, as migrations: each one runs once, in order, in a transaction
(meta.schema holds how many have run). Add a migration; never edit one that has shipped."""
from __future__ import annotations

STATES = ("queued", "running", "stopping", "done", "failed", "stopped")
ACTIVE = ("running", "stopping")
FINAL = ("done", "failed", "stopped")
MAX_ATTEMPTS = 3  # leases in a row that ended with the worker gone: then the job fails

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE datasets (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,            -- a dataset name, or the folder in the studio home
        named INTEGER NOT NULL,          -- 1: a dataset genforge knows by name
        files INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        options TEXT NOT NULL,           -- JSON: data options every job on it starts from
        created REAL NOT NULL
    );
    CREATE TABLE inputs (                -- single files given to a job (a melody, a partial level)
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'stopping', 'done', 'failed',
                                             'stopped')),
        request TEXT NOT NULL,           -- JSON: what was asked
        call TEXT NOT NULL,              -- JSON: the library call, resolved when queued
        dataset_id INTEGER,              -- what it reads (deleting those waits for it)
        model_job INTEGER,
        input_id INTEGER,
        created REAL NOT NULL,
        queued_at REAL NOT NULL,         -- the queue's order
        started REAL,
        finished REAL,
        updated REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_host TEXT,
        lease_pid INTEGER,
        lease_expires REAL,
        heartbeat REAL,
        stop_requested REAL,
        error TEXT,
        result TEXT,                     -- JSON
        last_event TEXT                  -- JSON: the newest progress event, for listings
    );
    CREATE INDEX jobs_queue ON jobs (state, queued_at, id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        time REAL NOT NULL,
        data TEXT NOT NULL               -- JSON: a progress event, or {"event": "state", ...}
    );
    CREATE INDEX events_job ON events (job_id, id);
    """,
]


class Missing(LookupError):
    """No row with this id."""


class StateError(Exception):
    """A request the job's state does not allow (stop a finished job, delete a running one)."""


