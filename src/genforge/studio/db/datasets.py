"""Datasets (uploaded folders, or named datasets) and input files in the studio database."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from .base import dataset_row
from .schema import Missing, StateError


class DatasetQueries:
    """Every query on datasets and inputs (mixed into Store)."""

    # -- datasets and inputs --------------------------------------------------------------------
    def add_dataset(self, fields: dict[str, Any], place: Callable[[int], str],
                    then: Callable[[dict], list[dict]] = lambda d: []) -> tuple[dict, list[dict]]:
        """Insert a dataset; place(id) moves its files into place and returns its source, inside
        the transaction (a failure leaves neither row nor folder); then(dataset) gives jobs to
        queue with it (its audit)."""
        now = time.time()
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO datasets (name, kind, source, named, files, bytes, options, created) "
                "VALUES (?, ?, '', ?, ?, ?, ?, ?)",
                (fields["name"], fields["kind"], int(fields["named"]), fields["files"],
                 fields["bytes"], json.dumps(fields.get("options") or {}), now))
            dataset_id = cur.lastrowid
            source = fields["source"] if fields["named"] else place(dataset_id)
            conn.execute("UPDATE datasets SET source = ? WHERE id = ?", (source, dataset_id))
            dataset = dataset_row(conn.execute("SELECT * FROM datasets WHERE id = ?",
                                            (dataset_id,)).fetchone())
            jobs = [self._insert_job(conn, spec, now) for spec in then(dataset)]
        return dataset, jobs

    def dataset(self, dataset_id: int) -> dict | None:
        row = self._conn().execute("SELECT * FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
        return dataset_row(row) if row else None

    def datasets(self) -> list[dict]:
        return [dataset_row(r) for r in self._conn().execute("SELECT * FROM datasets ORDER BY id")]

    def dataset_folders(self) -> set[str]:
        return {r[0] for r in self._conn().execute("SELECT source FROM datasets WHERE named = 0")}

    def delete_dataset(self, dataset_id: int, remove: Callable[[dict], None]) -> dict:
        """Delete a dataset no unfinished job reads; remove(dataset) deletes its files first."""
        with self._write() as conn:
            row = conn.execute("SELECT * FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
            if row is None:
                raise Missing(f"no dataset {dataset_id}")
            busy = self.unfinished_readers(conn, "dataset_id", dataset_id)
            if busy:
                raise StateError(f"dataset {dataset_id} is read by unfinished job(s) "
                                 f"{', '.join(map(str, busy))}: stop or wait for them first")
            dataset = dataset_row(row)
            remove(dataset)
            conn.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
        return dataset

    def add_input(self, kind: str, name: str, bytes_: int, place: Callable[[int], str]) -> dict:
        """Insert an input file; place(id) moves it into place and returns its path."""
        with self._write() as conn:
            cur = conn.execute("INSERT INTO inputs (kind, name, path, bytes, created) "
                               "VALUES (?, ?, '', ?, ?)", (kind, name, bytes_, time.time()))
            path = place(cur.lastrowid)
            conn.execute("UPDATE inputs SET path = ? WHERE id = ?", (path, cur.lastrowid))
            return dict(conn.execute("SELECT * FROM inputs WHERE id = ?",
                                     (cur.lastrowid,)).fetchone())

    def input(self, input_id: int) -> dict | None:
        row = self._conn().execute("SELECT * FROM inputs WHERE id = ?", (input_id,)).fetchone()
        return dict(row) if row else None

    def inputs(self) -> list[dict]:
        return [dict(r) for r in self._conn().execute("SELECT * FROM inputs ORDER BY id")]

    def input_paths(self) -> set[str]:
        return {r[0] for r in self._conn().execute("SELECT path FROM inputs")}

