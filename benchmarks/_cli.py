"""What the benchmarks share: running one genforge command as a user would, timed and logged."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def run_genforge(command: list[str], threads: int, log: Path) -> float:
    """Run `genforge COMMAND` with a fixed number of threads, appending its output to log;
    return its wall time. RuntimeError (naming the command and the log) when it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    with open(log, "a") as f:
        f.write("$ genforge " + " ".join(command) + "\n")
        f.flush()
        done = subprocess.run([sys.executable, "-m", "genforge", *command], env=env, stdout=f,
                              stderr=subprocess.STDOUT)
    if done.returncode:
        raise RuntimeError(f"failed ({done.returncode}): genforge {' '.join(command)}; see {log}")
    return time.perf_counter() - started


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo (what every benchmark prints first), else platform's."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
