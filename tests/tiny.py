"""The tiniest image model a test can train through the CLI in a second or two."""
from __future__ import annotations

from pathlib import Path

from genforge.cli import main

# A two-level U-Net of width 8 on 12x12 Fashion-MNIST, previews rare, on the CPU, no bars.
TINY = ["--model-channels", "8", "--channel-mult", "1,2", "--num-blocks", "1",
        "--attn-resolutions", "", "--batch-size", "8", "--resolution", "12",
        "--preview-count", "4", "--sample-every", "1000", "--device", "cpu", "--progress", "none"]


def train_tiny(run: Path, steps: int = 2, *extra: str) -> Path:
    """Train (or resume) the tiny model in run through the CLI; return run."""
    assert main(["train", "fashion-mnist-sample", "--run", str(run), "--steps", str(steps),
                 *TINY, *extra]) == 0
    return run
