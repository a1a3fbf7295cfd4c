"""genforge.runtime where PyTorch is not installed: a virtual environment without the system's
site-packages, holding only numpy, onnxruntime and Pillow, generates from an ONNX export what
the runtime generates here. The environment is built once (pip, from its cache or the registry)
and kept under the temp folder; the test is skipped, saying why, when it cannot be built."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from onnx_models import build_model, runtime_venv  # noqa: E402

SRC = Path(__file__).parent.parent / "src"
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


def test_the_runtime_generates_in_a_venv_without_torch(tmp_path):
    from genforge import runtime
    from genforge.export_onnx import export_onnx
    try:
        python = runtime_venv()
    except (OSError, subprocess.SubprocessError, RuntimeError) as err:
        pytest.skip(f"cannot build the torch-free venv ({str(err)[-300:]})")
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
