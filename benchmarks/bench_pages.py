"""The studio's pages under a full home: 50 runs and 5,000 generated files. Each page is fetched
from a running `genforge studio` on loopback (one connection a request, as a browser opens
them) --repeat times; median, p95 and worst render times against the 300 ms target.

    python benchmarks/bench_pages.py --home /tmp/bench-pages          # builds the home once
    python benchmarks/bench_pages.py --home /tmp/bench-pages --repeat 50

The home: one real tiny training (fashion-mnist-sample, 2 steps), 49 more train jobs as rows in
the queue (finished, failed, queued; they share the real run's result but have no folders: the
home page and the compare page read rows), and one real generate job of --files images (signed
and watermarked as the CLI writes them).
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_studio import TINY, StudioProcess  # noqa: E402
from _cli import cpu_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def build(home: Path, files: int) -> dict:
    """The home: a real run, 49 more rows, a real generate job of `files` items."""
    from fastapi.testclient import TestClient
    from genforge.studio.server import create_app
    from genforge.studio.state import Settings
    from genforge.studio.supervisor import HOST
    from genforge.studio.worker import LEASE_S, Worker

    app = create_app(Settings(home=home, run_jobs=False))
    with TestClient(app, base_url="http://localhost") as c:
        store = app.app.state.studio.store

        def run_all() -> None:
            while (job := store.lease("bench", HOST, LEASE_S)) is not None:
                Worker(app.app.state.studio.home, job["id"], "bench", standalone=False).run()

        dataset = c.post("/api/datasets/named", json={"name": "fashion-mnist-sample"}).json()
        run_all()
        model = c.post("/api/jobs/train", json={"data": dataset["dataset"]["id"],
                                                "options": {**TINY, "steps": 2}}).json()["id"]
        run_all()
        real = store.job(model)
        started = time.perf_counter()
        gen = c.post("/api/jobs/generate", json={"model": model, "params": {"n": files},
                                                 "sampling": {"steps": 2, "sampler": "euler"}}).json()["id"]
        run_all()
        generate_s = time.perf_counter() - started
        assert store.job(gen)["state"] == "done", store.job(gen)["error"]
        for i in range(49):  # the other runs: rows in the queue, in a mix of states
            spec = {"kind": "train", "request": real["request"], "call": real["call"],
                    "dataset_id": dataset["dataset"]["id"]}
            row = store.enqueue(spec)
            if i % 7 == 6:
                continue  # left queued
            store.lease("bench", HOST, LEASE_S)
            store.finish(row["id"], "bench", "failed" if i % 5 == 4 else "done",
                         result=real["result"], error="bench row" if i % 5 == 4 else None)
    return {"dataset": dataset["dataset"]["id"], "model": model, "generate": gen,
            "generate_s": generate_s}


def fetch(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
        assert response.status == 200, url
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}; Python {platform.python_version()}")
    marker = args.home / "bench-pages.txt"
    if not marker.is_file():
        ids = build(args.home, args.files)
        marker.write_text(" ".join(f"{k}={v}" for k, v in ids.items()))
        print(f"built the home: {args.files} images generated in {ids['generate_s']:.0f} s")
    ids = dict(item.split("=") for item in marker.read_text().split())
    server = StudioProcess(args.home)
    try:
        runs = "&".join(f"runs={i}" for i in range(int(ids["model"]), int(ids["model"]) + 6))
        pages = ["/", "/?page=2", f"/datasets/{ids['dataset']}", f"/datasets/{ids['dataset']}/train",
                 f"/jobs/{ids['model']}", f"/jobs/{ids['generate']}",
                 f"/jobs/{ids['generate']}?page=100", f"/jobs/{ids['generate']}/outputs",
                 f"/models/{ids['model']}", f"/compare?{runs}", "/provenance", "/datasets/new"]
        worst_all = 0.0
        print(f"{'page':44s} {'median':>8s} {'p95':>8s} {'worst':>8s}  (ms, {args.repeat} fetches)")
        for page in pages:
            fetch(server.url + page)  # the first fetch loads templates and the model once
            times = sorted(fetch(server.url + page) * 1000 for _ in range(args.repeat))
            p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
            worst_all = max(worst_all, times[-1])
            print(f"{page:44s} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f}")
        print(f"worst of all: {worst_all:.1f} ms (target: under 300 ms)")
    finally:
        server.kill(2)
        server.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
