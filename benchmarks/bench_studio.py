"""The studio under load: 100 concurrent API requests (listing, progress, small generation) against
a running `genforge studio` on loopback while a training job runs; errors, latency p50/p95, and
the training's slowdown against the same training unloaded, measured in the same run.

    python benchmarks/bench_studio.py                     # 100 requests a round, 10 s a phase
    python benchmarks/bench_studio.py --seconds 30 --threads 2

Phases on one training job: quiet (training alone), load (rounds of --requests concurrent
requests, one after another), quiet again; the training's rate is its steps over each phase's
wall time, read from the job's progress, and the slowdown is 1 - load rate / mean quiet rate.
Each request is a fresh connection (urllib), as separate clients make them. tests/
test_studio_processes.py runs one bounded round of this and asserts 0 errors.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = {"model_channels": 8, "channel_mult": [1, 2], "num_blocks": 1, "attn_resolutions": [],
        "batch_size": 8, "resolution": 12, "preview_count": 4, "sample_every": 1000,
        "device": "cpu", "checkpoint_every": 20, "log_every": 5, "precision": "fp32"}


class StudioProcess:
    """`genforge studio` as a real process on loopback (port 0: any free one)."""

    def __init__(self, home: Path, *args: str, threads: int = 1):
        self.home = home
        env = {**os.environ, "OMP_NUM_THREADS": str(threads),
               "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
        self.log_path = home.parent / f"{home.name}-server.log"
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "genforge", "studio", "--home", str(home), "--port", "0", *args],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.url = self._wait_for_url()

    def _wait_for_url(self, seconds: float = 60) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            info = self.home / "server.json"
            if info.is_file():
                data = json.loads(info.read_text())
                if data["pid"] == self.process.pid:
                    return data["url"]
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the studio did not start: {self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.process.send_signal(sig)

    def wait(self, seconds: float = 60) -> int:
        try:
            return self.process.wait(seconds)
        finally:
            self.log.close()


def request(url: str, body: dict | None = None) -> tuple[int, float]:
    """(status, seconds) of one request on a connection of its own (0: no answer). urllib, not
    httpx: httpx's client adds ~40 ms of its own to each request on loopback."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except OSError:
        status = 0
    return status, time.perf_counter() - started


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as response:
        return json.loads(response.read())


def wait_for(check, seconds: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {seconds} s waiting for {what}")


def steps(job: dict) -> int:
    """The train step a job's newest progress event reports (0 before training starts)."""
    progress = job.get("progress") or {}
    return progress.get("done", 0) if progress.get("task") == "train" else 0


def load_round(url: str, model: int, training: int, n: int) -> list[tuple[str, int, float]]:
    """n requests at once: listings, progress polls and small generations (2 items each);
    (kind, status, seconds) of each."""
    def one(i: int) -> tuple[str, int, float]:
        if i % 5 == 4:
            return ("generate", *request(f"{url}/api/models/{model}/sample",
                                         {"n": 2, "seed": i + 1000 * round(time.time())}))
        if i % 2:
            return ("progress", *request(f"{url}/api/jobs/{training}/events?after={i}"))
        return ("listing", *request(f"{url}/api/jobs"))

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def start_training(url: str, minutes: float) -> tuple[int, int]:
    """(a finished tiny model's job id, a running training job's id)."""
    model = post(f"{url}/api/jobs/train", {"data": "fashion-mnist-sample",
                                           "options": {**TINY, "steps": 2}})["id"]
    wait_for(lambda: get(f"{url}/api/jobs/{model}")["state"] == "done", 120, "the tiny model")
    training = post(f"{url}/api/jobs/train", {"data": "fashion-mnist-sample",
                                              "options": {**TINY, "minutes": minutes}})["id"]
    wait_for(lambda: steps(get(f"{url}/api/jobs/{training}")) > 0, 120, "the training")
    return model, training


def rate(url: str, training: int, seconds: float, during=None) -> tuple[float, list]:
    """Training steps per second over `seconds` of wall time, while during() runs repeatedly."""
    results, first = [], steps(get(f"{url}/api/jobs/{training}"))
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        if during is None:
            time.sleep(0.5)
        else:
            results += during()
    elapsed = time.perf_counter() - started
    return (steps(get(f"{url}/api/jobs/{training}")) - first) / elapsed, results


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(share * len(ordered))) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100, help="concurrent requests a round")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the worker")
    parser.add_argument("--home", default=None, help="studio home (default: a temporary one)")
    args = parser.parse_args()
    home = Path(args.home or tempfile.mkdtemp(prefix="genforge-bench-studio-")) / "home"
    load_before = os.getloadavg()[0]
    studio = StudioProcess(home, threads=args.threads)
    try:
        model, training = start_training(studio.url, minutes=max(2.0, args.seconds * 4 / 60))
        quiet, _ = rate(studio.url, training, args.seconds)
        loaded, results = rate(studio.url, training, args.seconds,
                               lambda: load_round(studio.url, model, training, args.requests))
        quiet_after, _ = rate(studio.url, training, args.seconds)
        post(f"{studio.url}/api/jobs/{training}/stop", {})
    finally:
        studio.kill(signal.SIGINT)
        studio.wait(90)
    errors = sum(status != 200 for _, status, _ in results)
    print(f"genforge studio under load ({os.cpu_count()} CPUs, worker threads {args.threads}, "
          f"{args.requests} concurrent requests a round, {len(results) // args.requests} rounds "
          f"in {args.seconds:g} s; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after)")
    print(f"{'requests':>12} {'count':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for kind in ("all", "listing", "progress", "generate"):
        times = [s for k, _, s in results if kind in ("all", k)]
        bad = sum(status != 200 for k, status, _ in results if kind in ("all", k))
        print(f"{kind:>12} {len(times):>6} {bad:>6} {statistics.median(times) * 1000:>8.0f} "
              f"{percentile(times, 0.95) * 1000:>8.0f}")
    baseline = (quiet + quiet_after) / 2
    print(f"training: {quiet:.1f} and {quiet_after:.1f} steps/s quiet, {loaded:.1f} steps/s under "
          f"load: slowdown {1 - loaded / baseline:.0%}")
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
