"""What the studio's tests share: a client on an app whose jobs the test runs itself (in this
process, one at a time, as a worker would), the tiny model's options, real server processes."""
from __future__ import annotations

import io
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient

from genforge.studio.server import create_app
from genforge.studio.state import Settings
from genforge.studio.supervisor import HOST
from genforge.studio.worker import LEASE_S, Worker

# tests/tiny.py's model as JSON options (a two-level U-Net of width 8 on 12x12 images)
TINY = {"model_channels": 8, "channel_mult": [1, 2], "num_blocks": 1, "attn_resolutions": [],
        "batch_size": 8, "resolution": 12, "preview_count": 4, "sample_every": 1000,
        "device": "cpu"}
ROOT = Path(__file__).parent.parent


@contextmanager
def client(home: Path, **settings):
    """A TestClient on a studio at home; its jobs run only when the test calls run_queued."""
    app = create_app(Settings(home=home, run_jobs=False, **settings))
    with TestClient(app, base_url="http://localhost") as c:
        c.studio = app.app.state.studio
        yield c


def run_queued(c, limit: int = 20) -> list[int]:
    """Run the queued jobs in order, in this process, as workers would; their ids."""
    done = []
    while len(done) < limit and (job := c.studio.store.lease("test", HOST, LEASE_S)) is not None:
        Worker(c.studio.home, job["id"], "test", standalone=False).run()
        done.append(job["id"])
    return done


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# the real-process helpers are the load benchmark's (benchmarks/bench_studio.py)
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_studio import StudioProcess as Server, load_round, steps, wait_for  # noqa: E402

__all__ = ["TINY", "client", "run_queued", "ok", "zip_bytes", "Server", "load_round", "steps",
           "wait_for"]
