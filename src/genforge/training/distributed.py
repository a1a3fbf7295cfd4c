"""Training on several processes, GPUs or machines, started by torchrun (PyTorch's own launcher).

What the loop needs from it, and nothing about families: where this process stands (`World`,
from torchrun's RANK / WORLD_SIZE / LOCAL_RANK), its share of each global batch, one flat
all-reduce of a phase's gradients (StyleGAN3's way: no DDP wrapper, so R1's double backward is
plain autograd and every phase, G, D or R1, synchronises once after its micro-batches), and
rank 0's decisions (stop, time budget, checkpoint) broadcast so that every process stops together.

Exactness across process counts: a step's global batch is cut into --grad-accum micro-batches of a
size that does not depend on how many processes share them, and micro-batch k of step s draws its
noise from a seed of (seed, step, phase, k). So 1, 2 or 8 processes compute the same micro-batches
with the same noise, and a checkpoint from N processes resumes on M (only the summation order of
the all-reduce differs: fp32 rounding).
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import math
import os
import re
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .. import progress
from ..errors import ConfigError, GenforgeError
from .state import DataStream

# A process that hears nothing from the others for this long stops (a dead or hung peer); one
# that is killed is noticed at once (its sockets close). Rank 0's own work between steps
# (previews, evaluation, checkpoints) is waited for on a second group with a longer timeout.
PEER_TIMEOUT_S = 60
SLOW_WORK_TIMEOUT_S = 6 * 3600
SHUTDOWN_GRACE_S = 120


class PeerLost(GenforgeError):
    """Another process of the run stopped (killed, crashed or unreachable)."""


@dataclass(frozen=True)
class World:
    """This process's place among the processes that train one run together."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 writes checkpoints, previews, logs and exports; the others only train."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """One GPU per process on a machine: cuda becomes cuda:LOCAL_RANK."""
        if device.type == "cuda" and self.size > 1 and device.index is None:
            device = torch.device("cuda", self.local_rank)
        if device.type == "cuda":
            torch.cuda.set_device(device)
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest
        return device

    def describe(self, device: torch.device) -> str:
        return (f"process {self.rank} of {self.size} (local rank {self.local_rank}) on "
                f"{socket.gethostname()}, device {device}")


_slow_group = None
_joined = False


def world() -> World:
    """This process's World; under torchrun the first call joins the process group (gloo for CPU
    tensors, NCCL for CUDA ones where a GPU is present)."""
    global _slow_group, _joined
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    here = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not _joined:  # once per process: after finish() the group is not joined again
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        timeout = datetime.timedelta(seconds=PEER_TIMEOUT_S)
        try:
            dist.init_process_group(backend, timeout=timeout)
        except (RuntimeError, ValueError) as err:
            raise PeerLost(f"process {here.rank} of {size} could not join the others "
                           f"({_first_line(err)})") from None
        _slow_group = dist.new_group(backend="gloo",
                                     timeout=datetime.timedelta(seconds=SLOW_WORK_TIMEOUT_S))
        _joined = True
    return here


def _first_line(err: BaseException) -> str:
    """An error's gist: its first sentence, without the source path gloo puts in front."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    text = re.sub(r"^\[[^\]]*\] ", "", text)
    return text.split(". ")[0][:160]


def _collective(function):
    """A failed collective means another process is gone: say so in one line (the checkpoint on
    disk is whole; nothing is written after a failure)."""
    @functools.wraps(function)
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except RuntimeError as err:  # gloo and NCCL errors, timeouts (DistError) included
            here = next(a for a in (*args, *kwargs.values()) if isinstance(a, World))
            raise PeerLost(f"process {here.rank} of {here.size}: another process of this run "
                           f"stopped or cannot be reached ({_first_line(err)}); stopping "
                           "without writing; rerun the same command to resume from the last "
                           "checkpoint") from None
    return run


def shared_split(grad_accum: int, processes: int) -> int:
    """The micro-batches of a step when --grad-accum was not given: the preset's, raised to the
    next multiple of the process count (2 processes: each computes half the global batch)."""
    return grad_accum * processes // math.gcd(grad_accum, processes)


def check_split(grad_accum: int, processes: int) -> None:
    """The micro-batches of a step must share evenly over the processes."""
    if grad_accum % processes:
        raise ConfigError(
            f"--grad-accum {grad_accum} micro-batches per step cannot be shared by {processes} "
            f"processes: give --grad-accum as a multiple of {processes} (e.g. {processes}; a "
            "multiple of every process count you will resume with keeps the run exact); "
            "--batch-size stays the global batch")


class ShardedStream:
    """Each step's global batch in micro-batches, and which of them are this process's.

    The state is the global stream's (epoch, offset): the same on every process and for any
    process count, so a run resumes on another number of processes without skipping or repeating
    an item; every item of an epoch goes to exactly one process.
    """

    def __init__(self, stream: DataStream, batch_size: int, micro_batches: int, here: World):
        self.stream, self.batch_size, self.here = stream, batch_size, here
        self.micro = batch_size // micro_batches
        self.mine = range(here.rank * micro_batches // here.size,
                          (here.rank + 1) * micro_batches // here.size)

    def next_step(self) -> list[tuple[int, torch.Tensor]]:
        """[(k, indices)] for this process's micro-batches k of the next global batch."""
        indices = self.stream.next(self.batch_size)
        return [(k, indices[k * self.micro:(k + 1) * self.micro]) for k in self.mine]


def noise_seed(seed: int, step: int, phase: int, micro_batch: int) -> int:
    """The seed of one micro-batch's noise: a function of where it is in training, not of which
    process computes it (so any process count and any resume draws the same)."""
    digest = hashlib.blake2b(f"{seed}/{step}/{phase}/{micro_batch}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little") >> 1


@_collective
def sum_gradients(parameters: list[torch.nn.Parameter], loss: float, here: World) -> float:
    """Sum the gradients (and the loss) over all processes in one flat all-reduce; a parameter
    without a gradient on every process keeps none (as AdamW skips it on one process)."""
    if here.size == 1:
        return loss
    device = parameters[0].device
    has = torch.tensor([p.grad is not None for p in parameters], dtype=torch.float32,
                       device=device)
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten().float()
                      for p in parameters]
                     + [has, torch.tensor([loss], dtype=torch.float32, device=device)])
    dist.all_reduce(flat)
    offset = 0
    for p, present in zip(parameters, flat[-1 - len(parameters):-1].tolist()):
        n = p.numel()
        if present:
            p.grad = flat[offset:offset + n].view_as(p).to(p.dtype)
        offset += n
    return float(flat[-1])


@_collective
def sum_tensor(tensor: torch.Tensor, here: World) -> torch.Tensor:
    """A tensor summed over all processes (itself on one)."""
    if here.size > 1:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
    return tensor


@_collective
def rank0_decisions(values: list[float], here: World, *, slow: bool = False,
                    asked: bool | None = None) -> list[float]:
    """Rank 0's values (elapsed time, checkpoint due) given to every process, so all decide
    alike: a clock seen by one process alone would split the run. asked: this process's stop
    request; the result then ends with whether any process asked (1.0) or none (0.0). slow: rank
    0 may still be busy alone (a preview, an evaluation): wait on the long-timeout group."""
    if here.size == 1:
        return values + ([] if asked is None else [float(asked)])
    shared = torch.tensor([float(v) if here.main else 0.0 for v in values]
                          + ([] if asked is None else [float(asked)]), dtype=torch.float64)
    dist.all_reduce(shared, group=_slow_group if slow else None)  # CPU tensor: gloo
    return shared.tolist()[:len(values)] + ([] if asked is None else [float(shared[-1] > 0)])


@_collective
def broadcast_module(module: torch.nn.Module, here: World) -> None:
    """Rank 0's parameters and buffers on every process (StyleGAN3 does this at the start too:
    the same seed builds the same network, but a library's initialiser need not be deterministic)."""
    if here.size == 1:
        return
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, 0)


@contextmanager
def quiet_unless_main(here: World) -> Iterator[None]:
    """On ranks above 0: no progress events but each process's start line (World.describe),
    and no warnings (rank 0 says it once for all)."""
    if here.main:
        yield
        return
    outer = progress.current()

    def start_line_only(event: progress.Event) -> None:
        if outer is not None and event.info.get("process_start"):
            outer(event)

    with progress.reporting(start_line_only), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@_collective
def broadcast_object(value, here: World):
    """Rank 0's value (a JSON-like object) on every process."""
    if here.size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, 0, group=_slow_group)
    return box[0]


@_collective
def wait_for_rank0(here: World) -> None:
    """The other processes wait while rank 0 works alone (a preview, an evaluation, a checkpoint);
    a peer that dies meanwhile is still noticed at once."""
    if here.size > 1:
        dist.barrier(group=_slow_group)


def finish(here: World, clean: bool = True) -> None:
    """Leave the process group (torchrun's processes then exit cleanly). After a clean end every
    process first waits for the others: one that tore its group down while a peer's last
    collective was still in flight made that peer abort at exit ("terminate called without an
    active exception", seen 1 run in ~10 under load)."""
    if here.size > 1 and dist.is_initialized():
        if clean:
            try:
                wait_for_rank0(here)  # rank 0 may still be exporting alone
            except RuntimeError:
                pass  # a peer already gone: nothing left to wait for
        dist.destroy_process_group()


def launch(processes: int, cli_args: list[str]) -> int:
    """Run `genforge CLI_ARGS` in `processes` processes on this machine through torchrun's own
    launcher (torch.distributed.run, --standalone). Returns 0, or 130 when a stop request (Ctrl-C,
    SIGTERM) ended them after rank 0 saved a checkpoint; a failed process ends them all, in one
    line (PeerLost)."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    for name in list(logging.root.manager.loggerDict):  # torchrun's log lines: ours say it
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    args = get_args_parser().parse_args(
        ["--standalone", "--nproc-per-node", str(processes), "--max-restarts", "0",
         # on a stop request torchrun passes SIGTERM on, then waits this long before SIGKILL:
         # time for the step to end and rank 0 to write its checkpoint
         "--shutdown-timeout", str(SHUTDOWN_GRACE_S), "--module", "genforge"])
    args.training_script_args = list(cli_args)  # not parsed: torchrun's options would eat ours
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    try:
        run(args)
    except SignalException:
        return 130  # the processes had the signal too: they stopped at a step, rank 0 saved
    except ChildFailedError as err:
        if all(f.exitcode == 130 for f in err.failures.values()):
            return 130  # every process stopped on request (status "interrupted")
        # the process that died first, not the ones torchrun then stopped with SIGTERM
        killed = [(r, f) for r, f in sorted(err.failures.items())
                  if f.exitcode < 0 and f.signal_name() != "SIGTERM"]
        rank, failure = killed[0] if killed else err.get_first_failure()
        how = (f"was killed by {failure.signal_name()}" if failure.exitcode < 0
               else f"stopped with exit status {failure.exitcode}")
        raise PeerLost(f"process {rank} of {processes} {how}; the others were stopped; rerun "
                       "the same command to resume from the last checkpoint") from None
    return 0
