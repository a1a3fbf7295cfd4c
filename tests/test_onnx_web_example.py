"""examples/sokoban-web: the browser page's sampler, run by Node on onnxruntime-web (the wasm
build the page vendors), makes Sokoban levels of the model's size with exactly one player each.
Skipped, saying why, where Node or npm's copy of onnxruntime-web cannot be had."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("onnxscript")

from genforge.export_onnx import export_onnx  # noqa: E402
from genforge.levels import formats  # noqa: E402
from onnx_models import build_model  # noqa: E402

EXAMPLE = Path(__file__).parent.parent / "examples" / "sokoban-web"


def test_the_web_page_sampler_makes_levels(tmp_path):
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if not (EXAMPLE / "vendor" / "ort.wasm.min.mjs").exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed to vendor onnxruntime-web")
        done = subprocess.run([str(EXAMPLE / "vendor.sh")], capture_output=True, text=True,
                              timeout=300)
        if done.returncode:
            pytest.skip(f"vendor.sh could not fetch onnxruntime-web: {done.stderr[-300:]}")
    folder = export_onnx(build_model(tmp_path / "m", "discrete-sokoban"), tmp_path / "model")
    done = subprocess.run(["node", "check.mjs", str(folder), "3", "4"], cwd=EXAMPLE,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    levels = json.loads(done.stdout.splitlines()[-1])
    assert len(levels) == 4
    for text in levels:
        grid = formats.parse_grid(text, formats.SOKOBAN)
        assert grid.shape == (7, 7)
        players = sum(int((grid == i).sum()) for i in formats.SOKOBAN.tiles_with("player"))
        assert players == 1, text
