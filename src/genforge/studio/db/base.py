"""Connections, transactions and migrations of the studio database."""
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .schema import MIGRATIONS


class Connection:
    """One connection per thread, opened on first use; writes in BEGIN IMMEDIATE transactions."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        self.migrate()

    # -- connections and transactions -----------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a committed state survives a power cut too
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def migrate(self) -> int:
        """Bring the schema to the newest version, each migration in its own transaction."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            version = int(row[0]) if row else 0
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(number),))
        return len(MIGRATIONS)

    @staticmethod
    def unfinished_readers(conn: sqlite3.Connection, column: str, value: int) -> list[int]:
        """The unfinished jobs that read a dataset, a model or an input (column: dataset_id,
        model_job, input_id): what may not be deleted under them."""
        assert column in ("dataset_id", "model_job", "input_id")
        return [r[0] for r in conn.execute(
            f"SELECT id FROM jobs WHERE {column} = ? AND state NOT IN ('done', 'failed', "
            "'stopped') ORDER BY id", (value,))]

    def schema_version(self) -> int:
        return int(self._conn().execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0])

    def integrity(self) -> str:
        """SQLite's own check of the file: 'ok' or what is wrong."""
        return self._conn().execute("PRAGMA integrity_check").fetchone()[0]


def job_row(row: sqlite3.Row) -> dict:
    job = dict(row)
    for key in ("request", "call", "result", "last_event"):
        job[key] = json.loads(job[key]) if job[key] else None
    return job


def dataset_row(row: sqlite3.Row) -> dict:
    dataset = dict(row)
    dataset["options"] = json.loads(dataset["options"])
    dataset["named"] = bool(dataset["named"])
    return dataset
