"""genforge.runtime where PyTorch is not installed: a virtual environment without the system's
site-packages, holding only numpy, onnxruntime and Pillow, generates from an ONNX export what
the runtime generates here. The environment is built once (pip, from its cache or the registry)
and kept under the temp folder; the test is skipped, saying why, when it cannot be built."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from onnx_models import build_model  # noqa: E402

SRC = Path(__file__).parent.parent / "src"
PACKAGES = ["numpy", "onnxruntime", "pillow"]
SCRIPT = """
import json, sys
import genforge.runtime as rt
assert "torch" not in sys.modules, "genforge.runtime imported torch"
try:
    import torch  # noqa: F401
    sys.exit("torch is importable in the torch-free environment")
except ImportError:
    pass
items = rt.load(sys.argv[1], threads=1).generate(4, seed=7, out=sys.argv[2], truncation=0.7)
print(json.dumps({"items": items.tolist(), "modules": sorted(m.split(".")[0] for m in sys.modules)}))
"""


def runtime_venv() -> Path:
    """The python of a venv holding only PACKAGES (built once, under a lock: xdist workers)."""
    key = hashlib.sha256(" ".join(PACKAGES + [sys.version]).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"genforge-runtime-venv-{key}"
    python = folder / "bin" / "python"
    with open(f"{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "ready").exists():
            venv.create(folder, clear=True, with_pip=True, system_site_packages=False)
            done = subprocess.run([str(python), "-m", "pip", "install", "-q",
                                   "--disable-pip-version-check", *PACKAGES],
                                  capture_output=True, text=True, timeout=600)
            if done.returncode:
                pytest.skip(f"cannot build the torch-free venv: pip said "
                            f"{done.stderr.strip().splitlines()[-1:]}")
            (folder / "ready").touch()
    return python


def test_the_runtime_generates_in_a_venv_without_torch(tmp_path):
    from genforge import runtime
    from genforge.export_onnx import export_onnx
    try:
        python = runtime_venv()
    except (OSError, subprocess.SubprocessError) as err:
        pytest.skip(f"cannot build the torch-free venv ({err})")
    folder = export_onnx(build_model(tmp_path / "gan", "gan-dcgan"), tmp_path / "gan-onnx")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    done = subprocess.run([str(python), "-c", SCRIPT, str(folder), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300,
                          env={**env, "PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert not {"torch", "safetensors", "mido", "music21"} & set(result["modules"])
    here = runtime.load(folder, threads=1).generate(4, seed=7, truncation=0.7)
    np.testing.assert_array_equal(np.array(result["items"], dtype=np.uint8), here)
    written = json.loads((tmp_path / "out" / "generation.json").read_text())
    assert [i["seed"] for i in written["items"]] == [7, 8, 9, 10]
