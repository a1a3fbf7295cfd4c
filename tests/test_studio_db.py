"""The studio's job store: migrations, the queue's order, leases (one owner at a time, even when
many processes race for them), heartbeats, what a lost worker's job becomes, and stops that
never stay "stopping"."""
from __future__ import annotations

import multiprocessing
import sqlite3
import time

import pytest

pytest.importorskip("fastapi")

from genforge.studio.db import MAX_ATTEMPTS, Missing, StateError, Store  # noqa: E402
from genforge.studio.db import schema  # noqa: E402


def spec(n: int = 0, **extra) -> dict:
    return {"kind": "train", "request": {"n": n}, "call": {"n": n}, **extra}


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "studio.db")


def test_a_new_database_has_every_migration_once(tmp_path):
    store = Store(tmp_path / "studio.db")
    assert store.schema_version() == len(schema.MIGRATIONS)
    assert Store(tmp_path / "studio.db").schema_version() == len(schema.MIGRATIONS)  # reopened
    assert store.integrity() == "ok"
    mode = sqlite3.connect(tmp_path / "studio.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_a_later_migration_runs_once_on_an_older_database(tmp_path, monkeypatch):
    Store(tmp_path / "studio.db").enqueue(spec(1))
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS,
                                               "ALTER TABLE jobs ADD COLUMN label TEXT"])
    monkeypatch.setattr("genforge.studio.db.base.MIGRATIONS", schema.MIGRATIONS)
    store = Store(tmp_path / "studio.db")
    assert store.schema_version() == len(schema.MIGRATIONS)
    assert "label" in store.job(1) and store.job(1)["request"] == {"n": 1}  # the data kept
    Store(tmp_path / "studio.db")  # nothing runs twice (a second ALTER would fail)


def test_the_queue_runs_in_order_and_a_configuration_is_copied(store):
    first, second = store.enqueue(spec(1)), store.enqueue(spec(2))
    assert first["call"] == {"n": 1} and first["state"] == "queued"
    leased = store.lease("a", "host", 30)
    assert leased["id"] == first["id"] and leased["state"] == "running"
    assert leased["attempts"] == 1 and leased["lease_owner"] == "a"
    assert store.lease("b", "host", 30)["id"] == second["id"]
    assert store.lease("c", "host", 30) is None


def test_only_the_owner_extends_or_ends_a_lease(store):
    job = store.enqueue(spec())
    store.lease("a", "host", 30)
    assert store.heartbeat(job["id"], "a", 30) == (True, None)
    assert store.heartbeat(job["id"], "intruder", 30)[0] is False
    assert not store.finish(job["id"], "intruder", "done")
    assert store.finish(job["id"], "a", "done", result={"ok": 1})
    assert store.job(job["id"])["state"] == "done" and store.job(job["id"])["lease_owner"] is None
    assert store.heartbeat(job["id"], "a", 30)[0] is False  # finished: the lease is gone


def _lease_all(path: str, owner: str, out) -> None:
    store = Store(path)
    taken = []
    while (job := store.lease(owner, "host", 30)) is not None:
        taken.append(job["id"])
    out.put(taken)


def test_racing_processes_never_lease_a_job_twice(tmp_path):
    path = str(tmp_path / "studio.db")
    store = Store(path)
    for i in range(60):
        store.enqueue(spec(i))
    out = multiprocessing.get_context("fork").Queue()
    workers = [multiprocessing.get_context("fork").Process(target=_lease_all,
                                                            args=(path, f"w{i}", out))
               for i in range(3)]
    for w in workers:
        w.start()
    taken = [job for _ in workers for job in out.get(timeout=60)]
    for w in workers:
        w.join(30)
    assert sorted(taken) == list(range(1, 61))  # each exactly once
    assert {j["attempts"] for j in store.jobs(limit=100)} == {1}


def gone(job, expired):
    return True


def test_a_lost_worker_s_job_is_requeued_keeps_its_place_and_fails_after_max_attempts(store):
    first, later = store.enqueue(spec(1)), store.enqueue(spec(2))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        job = store.lease(f"w{attempt}", "host", 30)
        assert job["id"] == first["id"] and job["attempts"] == attempt  # first in line again
        store.set_pid(job["id"], f"w{attempt}", 4242)
        assert [j["id"] for j in store.reclaim("host", gone)] == [job["id"]]
        state = store.job(first["id"])["state"]
        assert state == ("failed" if attempt == MAX_ATTEMPTS else "queued")
    failed = store.job(first["id"])
    assert "times in a row" in failed["error"]
    assert store.lease("next", "host", 30)["id"] == later["id"]  # a failed job blocks nothing


def test_a_clean_hand_back_is_not_a_lost_attempt(store):
    job = store.enqueue(spec())
    for _ in range(MAX_ATTEMPTS + 1):  # shut down with the studio, over and over
        store.lease("w", "host", 30)
        assert store.finish(job["id"], "w", "queued", message="requeued: the studio stopped")
    assert store.job(job["id"])["state"] == "queued" and store.job(job["id"])["attempts"] == 0


def test_what_reclaim_leaves_alone(store):
    job = store.enqueue(spec())
    store.lease("w", "here", 30)
    # being started by this server (no pid yet), or another host's live lease: untouched
    assert store.reclaim("here", gone) == [] and store.reclaim("elsewhere", gone) == []
    store.set_pid(job["id"], "w", 1234)
    assert store.reclaim("here", lambda j, expired: False) == []  # alive
    assert store.job(job["id"])["state"] == "running"
    # at startup a lease without a pid is the crashed server's: requeued
    other = store.enqueue(spec())
    store.lease("x", "here", 30)
    resolved = store.reclaim("here", lambda j, expired: j["lease_pid"] is None, startup=True)
    assert [j["id"] for j in resolved] == [other["id"]]


def test_an_expired_lease_is_reclaimed_on_any_host(store):
    job = store.enqueue(spec())
    store.lease("w", "elsewhere", 0.01)
    time.sleep(0.05)
    seen = []
    store.reclaim("here", lambda j, expired: seen.append(expired) or True)
    assert seen == [True] and store.job(job["id"])["state"] == "queued"
    events = [e["message"] for e in store.events(job_id=job["id"])]
    assert events[-1].startswith("requeued: its worker's lease expired")


def test_stop_requests(store):
    queued = store.enqueue(spec(1))
    assert store.request_stop(queued["id"])["state"] == "stopped"  # never started
    running = store.enqueue(spec(2))
    store.lease("w", "host", 30)
    assert store.request_stop(running["id"])["state"] == "stopping"
    assert store.heartbeat(running["id"], "w", 30)[1] is not None  # the worker sees the request
    with pytest.raises(StateError, match="nothing to stop"):
        store.request_stop(queued["id"])
    # a worker gone during the stop: stopped, not requeued
    store.set_pid(running["id"], "w", 99)
    store.reclaim("host", gone)
    assert store.job(running["id"])["state"] == "stopped"


def test_a_stop_that_overruns_is_forced(store):
    job = store.enqueue(spec())
    store.lease("w", "host", 30)
    store.request_stop(job["id"])
    assert store.overdue_stops(60) == []
    assert [j["id"] for j in store.overdue_stops(-1)] == [job["id"]]
    assert store.force_stopped(job["id"], "stopped: forced")
    assert store.job(job["id"])["state"] == "stopped"


def test_resume_retry_and_delete_follow_the_states(store):
    job = store.enqueue(spec())
    store.lease("w", "host", 30)
    with pytest.raises(StateError, match="stop it before deleting"):
        store.delete_job(job["id"], lambda j: None)
    store.finish(job["id"], "w", "failed", error="boom")
    with pytest.raises(StateError, match="only a job that is stopped"):
        store.requeue_by_user(job["id"], ("stopped",), "resumed")
    again = store.requeue_by_user(job["id"], ("failed", "stopped"), "retried")
    assert again["state"] == "queued" and again["error"] is None and again["attempts"] == 0
    user = store.enqueue(spec(9, model_job=job["id"]))
    store.lease("w", "host", 30)
    store.finish(job["id"], "w", "done")
    with pytest.raises(StateError, match="used by unfinished"):
        store.delete_job(job["id"], lambda j: None)
    store.request_stop(user["id"])
    removed = []
    store.delete_job(job["id"], removed.append)
    assert removed and store.job(job["id"]) is None and store.events(job_id=job["id"]) == []
    with pytest.raises(Missing):
        store.request_stop(job["id"])


def test_events_are_the_change_log(store):
    job = store.enqueue(spec())
    store.lease("w", "host", 30)
    store.add_event(job["id"], 1, {"event": "progress", "task": "train", "done": 3})
    events = store.events(after=0)
    assert [e.get("state") or e.get("task") for e in events] == ["queued", "running", "train"]
    assert store.events(after=events[1]["id"]) == events[2:]
    assert store.job(job["id"])["last_event"]["done"] == 3
