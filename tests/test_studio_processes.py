"""The studio as real processes on loopback: kill -9 the server and its worker in the middle of a
training, start again, and the job resumes from its checkpoint (none lost, none run twice, the
database intact); 100 concurrent requests while a training runs, with no errors; a stop that
ends in "stopped" and a Ctrl-C that hands the job back to the queue."""
from __future__ import annotations

import json
import os
import signal
import statistics
import time

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from genforge.studio.db import Store  # noqa: E402
from genforge.studio.supervisor import is_worker  # noqa: E402
from studio_tools import TINY, Server, load_round, steps, wait_for  # noqa: E402

LONG = {**TINY, "checkpoint_every": 20, "log_every": 5, "precision": "fp32"}


def job(url: str, job_id: int) -> dict:
    return httpx.get(f"{url}/api/jobs/{job_id}", timeout=30).json()


def test_kill_9_mid_training_loses_nothing_and_resumes_from_the_checkpoint(tmp_path):
    home = tmp_path / "home"
    first = Server(home)
    try:
        queued = httpx.post(f"{first.url}/api/jobs/train", timeout=30, json={
            "data": "fashion-mnist-sample", "options": {**LONG, "minutes": 0.1}}).json()
        running = wait_for(lambda: (j := job(first.url, queued["id"])) and steps(j) >= 50 and j,
                           90, "the training to pass step 50")
        worker = running["worker"]["pid"]
        first.kill()  # kill -9 both, the server first
        os.kill(worker, signal.SIGKILL)
        killed_at = time.time()
        first.wait(30)
        wait_for(lambda: not is_worker(worker, queued["id"]), 30, "the worker to die")
        stats = (home / "jobs" / str(queued["id"]) / "run" / "stats.jsonl").read_text()
        # the checkpoint is at or before the last whole line (the loop logs, then saves)
        logged = json.loads(stats[:stats.rindex("\n")].rsplit("\n", 1)[-1])["step"]
    finally:
        if first.process.poll() is None:
            first.kill()
    restarted = time.time()
    second = Server(home)
    try:
        done = wait_for(lambda: (j := job(second.url, queued["id"]))["state"] in
                        ("done", "failed") and j, 120, "the resumed job to finish", every=0.5)
        assert done["state"] == "done", done["error"]
        events = httpx.get(f"{second.url}/api/jobs/{queued['id']}/events",
                           params={"limit": 5000}, timeout=30).json()["events"]
        jobs = httpx.get(f"{second.url}/api/jobs", timeout=30).json()["jobs"]
    finally:
        second.kill(signal.SIGINT)
        assert second.wait(60) in (0, 130)
    assert [j["id"] for j in jobs] == [queued["id"]]  # 0 jobs lost, none added
    states = [(e["state"], e["attempt"]) for e in events if e["event"] == "state"]
    assert states == [("queued", 0), ("running", 1), ("queued", 1), ("running", 2), ("done", 2)]
    assert "its worker is gone" in [e for e in events if e["event"] == "state"][2]["message"]
    resumed = [e for e in events if e.get("status") == "note" and "resuming" in e["message"]]
    assert len(resumed) == 1 and resumed[0]["attempt"] == 2
    from_step = int(resumed[0]["message"].split("from step ")[1].split()[0])
    assert 0 < from_step <= logged and from_step % LONG["checkpoint_every"] == 0
    late = [e for e in events if e["event"] == "progress" and e["attempt"] == 1
            and e["time"] > killed_at + 0.5]
    assert late == []  # nothing of the killed run after the kill: it never ran twice
    assert done["result"]["steps"] >= from_step and done["attempts"] == 2
    log = (home / "jobs" / str(queued["id"]) / "log.txt").read_text()
    assert log.count(f"job {queued['id']} (train), attempt") == 2
    assert Store(home / "studio.db").integrity() == "ok"
    running_again = next(e for e in events if e["event"] == "state" and e["attempt"] == 2)
    print(f"\ncrash test: killed after step {logged}, resumed from step {from_step}; jobs "
          f"lost 0; requeued and running again {running_again['time'] - restarted:.1f} s after "
          f"the restart, training again {resumed[0]['time'] - restarted:.1f} s after it")


def test_concurrent_requests_while_training_then_stop_and_ctrl_c(tmp_path):
    home = tmp_path / "home"
    server = Server(home)
    url = server.url
    try:
        model = httpx.post(f"{url}/api/jobs/train", timeout=30, json={
            "data": "fashion-mnist-sample", "options": {**LONG, "steps": 2}}).json()["id"]
        wait_for(lambda: job(url, model)["state"] == "done", 90, "the tiny model")
        training = httpx.post(f"{url}/api/jobs/train", timeout=30, json={
            "data": "fashion-mnist-sample", "options": {**LONG, "minutes": 5}}).json()["id"]
        wait_for(lambda: steps(job(url, training)) > 0, 90, "the training to start")
        results = load_round(url, model, training, 100)
        errors = [r for r in results if r[1] != 200]
        assert errors == [], errors[:3]
        latencies = sorted(r[2] for r in results)
        p50, p95 = statistics.median(latencies), latencies[int(0.95 * len(latencies)) - 1]
        assert job(url, training)["state"] == "running"
        asked = time.monotonic()
        assert httpx.post(f"{url}/api/jobs/{training}/stop", timeout=30).json()["state"] == "stopping"
        stopped = wait_for(lambda: (j := job(url, training))["state"] == "stopped" and j, 60,
                           "the stop")
        stop_s = time.monotonic() - asked
        assert stopped["result"]["status"] == "interrupted"  # a checkpoint, then stopped
        assert httpx.post(f"{url}/api/jobs/{training}/resume", timeout=30).json()["state"] == "queued"
        wait_for(lambda: steps(job(url, training)) > stopped["result"]["steps"], 90, "the resume")
        worker = job(url, training)["worker"]["pid"]
    finally:
        server.kill(signal.SIGINT)  # Ctrl-C: the worker saves a checkpoint and hands the job back
        code = server.wait(90)
    assert code in (0, 130)
    assert not is_worker(worker, training)
    store = Store(home / "studio.db")
    assert store.job(training)["state"] == "queued"
    assert store.events(job_id=training)[-1]["message"].startswith("requeued: the studio stopped")
    assert store.integrity() == "ok"
    print(f"\nload test: {len(results)} requests, 0 errors, p50 {p50 * 1000:.0f} ms, p95 "
          f"{p95 * 1000:.0f} ms; stop to stopped in {stop_s:.1f} s")
