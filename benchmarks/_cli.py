"""What the benchmarks share: running one genforge command as a user would, timed and logged,
the machine's name, the sampling options a benchmark was given, and the interval a verdict over
seed sets reads."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

T95 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776}  # two-sided 95% t quantiles by sample size


def interval(values) -> tuple[float, float, float]:
    """Mean and a 95% t interval over seed sets (the mean three times for one set)."""
    v = [float(x) for x in values]
    mean = sum(v) / len(v)
    if len(v) < 2:
        return mean, mean, mean
    std = (sum((x - mean) ** 2 for x in v) / (len(v) - 1)) ** 0.5
    half = T95.get(len(v), 1.96) * std / len(v) ** 0.5
    return mean, mean - half, mean + half


def sampling_given(args) -> dict:
    """The sampling options (--sampler, --steps, --temperature, --rules) a benchmark was given;
    the rest stay the model's defaults."""
    return {k: getattr(args, k) for k in ("sampler", "steps", "temperature", "rules")
            if getattr(args, k, None) is not None}


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
