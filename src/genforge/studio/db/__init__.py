"""The studio's database: the one package that touches SQLite (schema, migrations, every query).

Jobs live here, never in a server's memory or a browser connection. A job changes state only
through the functions below, each one transaction (BEGIN IMMEDIATE: one writer at a time, so two
workers can never lease the same job):

    queued -> running -> done | failed | stopped          (stop: running -> stopping -> stopped)
       ^         |
       +---------+  requeued when its worker is gone: the lease expired, or the process is dead

A running job holds a lease: the owner (one worker process), its host and process id, and an
expiry the worker pushes forward with every heartbeat. A worker that lost its lease must stop at
once (Store.heartbeat says so), so a job never runs twice. Every state change and every progress
event is appended to the events table, which is also the change log the streams follow.
"""
from __future__ import annotations

from .base import Connection
from .datasets import DatasetQueries
from .jobs import JobQueries
from .schema import ACTIVE, FINAL, MAX_ATTEMPTS, STATES, Missing, StateError


class Store(JobQueries, DatasetQueries, Connection):
    """The studio's SQLite database (WAL): jobs and their events, datasets, inputs."""


__all__ = ["Store", "Missing", "StateError", "STATES", "ACTIVE", "FINAL", "MAX_ATTEMPTS"]
