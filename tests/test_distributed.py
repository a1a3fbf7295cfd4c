"""Training on several processes (torchrun, gloo on the CPU): the same model as one process, exact
resume across process counts, every item once per epoch, and a killed process ends the job."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from filelock import FileLock
from safetensors.torch import load_file

import distributed_worker
from genforge import io
from genforge.cli import main
from genforge.training.distributed import ShardedStream, World, check_split, shared_split
from genforge.training.state import CHECKPOINT_NAME, DataStream
from tiny import TINY

ROOT = Path(__file__).parent.parent
# Each process one thread: two processes share the two cores.
ENV = {**os.environ, "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests"),
                                      os.environ.get("PYTHONPATH", "")])}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
# a constant rate: runs here grow their --steps budget between sessions, which moves the end of
# a decaying schedule
RUN = ["train", "fashion-mnist-sample", *TINY, "--grad-accum", "2", "--precision", "fp32",
       "--checkpoint-every", "2", "--log-every", "1", "--lr-schedule", "constant"]


def genforge(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genforge", *args], env=ENV, timeout=timeout,
                          capture_output=True, text=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory) -> Path:
    """Every family trained 10 steps by two processes under torchrun; their weights per rank.
    Made once per session, also when pytest-xdist workers share the tests (a lock file)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # this session's
    out = shared / "torchrun-families"
    with FileLock(str(out) + ".lock"):
        if not (out / "finished").exists():
            out.mkdir(exist_ok=True)
            done = subprocess.run([*TORCHRUN, "--standalone", "--nproc-per-node", "2",
                                   str(ROOT / "tests" / "distributed_worker.py"), str(out)],
                                  env=ENV, timeout=150, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-3000:]
            (out / "finished").touch()
    return out


@pytest.mark.parametrize("family", list(distributed_worker.FAMILY_RUNS))
def test_two_processes_train_the_model_one_process_trains(two_process_runs, tmp_path, family,
                                                          one_thread):
    rank0 = load_file(str(two_process_runs / f"{family}-rank0.safetensors"))
    rank1 = load_file(str(two_process_runs / f"{family}-rank1.safetensors"))
    assert rank0.keys() == rank1.keys()
    for key in rank0:  # every process holds the same weights, bit for bit
        assert torch.equal(rank0[key], rank1[key]), key
    alone = distributed_worker.train_family(family, tmp_path / "one")  # same global batch
    for key, value in rank0.items():
        expected = alone[key].double()
        error = (value.double() - expected).norm() / expected.norm().clamp(min=1e-12)
        assert error <= 1e-5, (key, error.item())
    start = distributed_worker.train_family(family, tmp_path / "start", steps=0)
    moved = max(((alone[k].double() - start[k].double()).norm() / start[k].double().norm())
                .item() for k in start if start[k].is_floating_point() and start[k].norm() > 0)
    assert moved > 1e-3  # ten steps moved the weights far past the tolerance
    checkpoint, _ = io.load_tensors(two_process_runs / f"{family}-run" / CHECKPOINT_NAME)
    assert checkpoint["model." + next(iter(rank0))].equal(next(iter(rank0.values())))
    if family == "gan":  # ADA's probability moved, the same for both (its evidence was summed)
        assert rank0["augment_p"].item() > 0 and rank0["augment_p"] == alone["augment_p"]


def test_two_processes_see_every_item_once_per_epoch(two_process_runs):
    orders = [json.loads((two_process_runs / f"order-rank{r}.json").read_text()) for r in (0, 1)]
    assert sorted(orders[0] + orders[1]) == list(range(60))
    assert len(set(orders[0])) == 30 and not set(orders[0]) & set(orders[1])


@pytest.mark.parametrize("sizes", [(1, 2), (2, 1), (2, 4), (4, 2)])
def test_a_resumed_epoch_on_another_process_count_skips_and_repeats_nothing(sizes):
    before, after = sizes
    drawn = []
    for size, steps, start in ((before, 3, (0, 0)), (after, 2, None)):
        epoch, offset = start if start else (stream.epoch, stream.offset)
        streams = [ShardedStream(DataStream(40, seed=1, epoch=epoch, offset=offset), 8, 4,
                                 World(rank, size)) for rank in range(size)]
        for _ in range(steps):
            for s in streams:
                drawn += [int(i) for _, part in s.next_step() for i in part]
        stream = streams[0].stream  # every process's position is the same
        assert all(s.stream.offset == stream.offset for s in streams)
    assert sorted(drawn) == list(range(40))  # 5 steps of 8: one epoch, each item once


def test_micro_batches_that_do_not_share_evenly_are_refused_before_any_process_starts(
        tmp_path, capsys):
    assert main([*RUN, "--run", str(tmp_path / "r"), "--steps", "1", "--grad-accum", "1",
                 "--nproc", "2"]) == 2
    assert capsys.readouterr().err.strip() == (
        "genforge: error: --grad-accum 1 micro-batches per step cannot be shared by 2 processes: "
        "give --grad-accum as a multiple of 2 (e.g. 2; a multiple of every process count you "
        "will resume with keeps the run exact); --batch-size stays the global batch")
    assert not (tmp_path / "r").exists()
    check_split(4, 2)
    # not given, the preset's micro-batches are raised to the next multiple of the processes
    assert [shared_split(1, 2), shared_split(2, 2), shared_split(2, 4), shared_split(3, 2)] == \
        [2, 2, 4, 6]


def test_a_resumed_run_keeps_its_micro_batches_when_none_are_given(tmp_path):
    run = tmp_path / "r"  # as a run started by 2 processes resumes on 1
    assert main([*RUN, "--run", str(run), "--steps", "1", "--progress", "none"]) == 0
    without = [a for i, a in enumerate(RUN) if "--grad-accum" not in RUN[max(i - 1, 0):i + 1]]
    assert main([*without, "--run", str(run), "--steps", "2", "--progress", "none"]) == 0
    _, meta = state(run)
    assert meta["progress"]["step"] == 2 and meta["config"]["train"]["grad_accum"] == 2


def state(run: Path) -> dict[str, torch.Tensor]:
    tensors, meta = io.load_tensors(run / CHECKPOINT_NAME)
    return {k: v for k, v in tensors.items() if not k.startswith("rng.")}, meta


def test_two_processes_to_one_and_back_on_two_nodes_equals_not_stopping(tmp_path):
    run = tmp_path / "moved"
    first = genforge(*RUN, "--run", str(run), "--steps", "4", "--nproc", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "process 0 of 2" in first.stderr and "process 1 of 2" in first.stderr
    assert main([*RUN, "--run", str(run), "--steps", "7"]) == 0  # one process
    # two torchrun agents as two "machines" on the loopback, meeting at a c10d rendezvous
    port = free_port()
    nodes = [subprocess.Popen([*TORCHRUN, "--nnodes", "2", "--nproc-per-node", "1",
                               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
                               "--rdzv-id", "genforge-test",
                               # "--": torchrun's options end (its --run-path would take --run)
                               "-m", "--", "genforge", *RUN, "--run", str(run), "--steps", "10"],
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for node in (0, 1)]
    outputs = [node.communicate(timeout=120) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert "resuming" in "".join(err for _, err in outputs)
    assert main([*RUN, "--run", str(tmp_path / "straight"), "--steps", "10"]) == 0
    moved, meta = state(run)
    straight, _ = state(tmp_path / "straight")
    assert meta["progress"]["step"] == 10 and meta["progress"]["images_seen"] == 80
    assert moved.keys() == straight.keys()
    for key in moved:
        assert torch.allclose(moved[key].double(), straight[key].double(), rtol=1e-5,
                              atol=1e-7), key
    assert (run / "model").is_dir()


def _worker_of_rank(launcher: int, rank: int) -> int | None:
    """The pid of the torchrun worker with this RANK below a launcher process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == launcher and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds workers through /proc")
def test_a_killed_process_ends_the_job_in_one_line_and_a_rerun_resumes(tmp_path):
    run = tmp_path / "killed"
    job = subprocess.Popen([sys.executable, "-m", "genforge", *RUN, "--run", str(run),
                            "--steps", "100000", "--nproc", "2"], env=ENV,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # wait for a checkpoint past the first one
            stats = run / "stats.jsonl"
            if stats.exists() and len(stats.read_text().splitlines()) >= 3:
                break
            time.sleep(0.2)
        worker = _worker_of_rank(job.pid, 1)
        assert worker is not None
        os.kill(worker, signal.SIGKILL)
        killed = time.monotonic()
        _, err = job.communicate(timeout=60)
        took = time.monotonic() - killed
    finally:
        job.kill()
    assert job.returncode != 0 and took < 60
    last = err.strip().splitlines()[-1]
    assert last.startswith("genforge: error: process 1 of 2 was killed by SIGKILL"), err[-2000:]
    assert "rerun the same command to resume" in last
    _, meta = state(run)
    saved = meta["progress"]["step"]
    again = genforge(*RUN, "--run", str(run), "--steps", str(saved + 2), "--nproc", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming {run} from step {saved}" in again.stderr
    assert state(run)[1]["progress"]["step"] == saved + 2
