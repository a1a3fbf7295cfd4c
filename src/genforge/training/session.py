"""What one training session shares with the world around it: stop requests (Ctrl-C, SIGTERM),
the stats log's loss fields and TensorBoard."""
from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError


@contextmanager
def stop_requests():
    """Turn SIGINT/SIGTERM into a flag checked between steps, so a stop writes a checkpoint first."""
    flag = {"stop": False, "by": None}

    def handler(signum, frame):
        # a second Ctrl-C means "now"; a SIGTERM after Ctrl-C is torchrun passing the same stop on
        if flag["stop"] and signum == flag["by"] == signal.SIGINT:
            raise KeyboardInterrupt
        flag["stop"], flag["by"] = True, flag["by"] or signum

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread (e.g. a web worker): no handlers, no flag
            pass
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def loss_fields(window: dict[str, list[float]], phases) -> dict[str, float]:
    """Mean loss per phase since the last log line: 'loss' for the first phase, 'loss_<name>'
    for each further phase (a GAN's G, D and R1 losses)."""
    fields = {}
    for i, phase in enumerate(phases):
        values = window.get(phase.name)
        if values:
            fields["loss" if i == 0 else f"loss_{phase.name}"] = sum(values) / len(values)
    return fields


def tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(run_dir / "tensorboard"))
