"""ONNX export and the torch-free runtime (issue 24): every family exports with onnx.checker
passing and a dynamic batch; for 16 fixed seeds the runtime's network outputs equal PyTorch's to
1e-4 and, given the same noise, its images are within one grey level and its levels and notes
identical; the files and records it writes are genforge's."""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import onnx  # noqa: E402
from PIL import Image  # noqa: E402

from genforge import runtime  # noqa: E402
from genforge.cli import main  # noqa: E402
from genforge.errors import CheckpointError, ConfigError  # noqa: E402
from genforge.export import load_module  # noqa: E402
from genforge.export_onnx import export_onnx, graph_for  # noqa: E402
from genforge.generation import load as load_torch  # noqa: E402
from genforge.generation.sampling import generate_items  # noqa: E402
from genforge.levels import formats  # noqa: E402
from genforge.music import writing  # noqa: E402
from onnx_models import CASES, build_model, max_abs, same_noise  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
SEEDS = list(range(16))
# What each case samples with, beside its defaults: every solver, guidance, truncation, and both
# reveal orders (few steps: the network is the same at any step count).
SAMPLING = {"diffusion-image": [{"steps": 6}, {"steps": 3, "sampler": "heun", "guidance": 2.0},
                                {"steps": 4, "sampler": "euler-ancestral"},
                                {"steps": 4, "sampler": "euler"},
                                {"steps": 6, "guidance": 2.0, "guidance_interval": (0.5, 10.0)}],
            "consistency-image": [{}, {"steps": 1}, {"steps": 2, "guidance": 2.0}],
            "gan-stylegan2": [{}, {"truncation": 0.6}], "gan-dcgan": [{"truncation": 0.8}],
            "discrete-sokoban": [{"steps": 12}, {"sampler": "confidence", "steps": 8}],
            "discrete-music": [{"steps": 8}]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{case: (model folder, ONNX folder)}, exported once for the module."""
    root = tmp_path_factory.mktemp("onnx")
    return {case: (build_model(root / case, case), export_onnx(root / case, root / f"{case}-onnx"))
            for case in CASES}


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", sorted(CASES))
def test_export_folder_is_checked_and_self_describing(exported, case):
    model, folder = exported[case]
    onnx.checker.check_model(str(folder / "model.onnx"), full_check=True)
    config = json.loads((folder / "config.json").read_text())
    manifest = json.loads((folder / "manifest.json").read_text())
    source = json.loads((model / "manifest.json").read_text())
    assert manifest["onnx_sha256"] == _sha256(folder / "model.onnx")
    assert manifest["weights_sha256"] == source["weights_sha256"] == _sha256(
        model / "model.safetensors")
    card = (folder / "README.md").read_text()
    assert "## ONNX export" in card and manifest["onnx_sha256"] in card
    assert config["onnx"]["sampling"] and config["family"] == CASES[case][0]
    graph = onnx.load(str(folder / "model.onnx")).graph
    # the batch is a named dimension on every input, and no input is folded into a constant
    assert [i.name for i in graph.input] == config["onnx"]["inputs"]
    assert all(i.type.tensor_type.shape.dim[0].dim_param for i in graph.input)


@pytest.mark.parametrize("case", sorted(CASES))
def test_network_outputs_equal_pytorch_for_16_seeds(exported, case):
    model, folder = exported[case]
    module, spec, config, _ = load_module(model)
    module = module.to(memory_format=torch.contiguous_format)
    wrapper, example, _ = graph_for(config.family, module, spec)
    rt = runtime.load(folder, threads=1)
    worst = 0.0
    for seed in SEEDS:  # each seed its own inputs; batch sizes 1 to 4 through the dynamic batch
        g = torch.Generator().manual_seed(seed)
        b = 1 + seed % 4
        inputs = {}
        for name, value in example.items():
            shape = (b, *value.shape[1:])
            if name == "tokens":
                inputs[name] = torch.randint(0, int(value.max()) + 1, shape, generator=g)
            elif name == "class_labels":
                low = -1 if config.family != "gan" and spec.num_classes else 0  # -1: no class
                inputs[name] = torch.randint(low, max(1, spec.num_classes), shape, generator=g)
            elif name in ("sigma", "rate", "truncation"):
                inputs[name] = torch.rand(shape, generator=g) * (20 if name == "sigma" else 1) + 0.002
            else:
                inputs[name] = torch.randn(shape, generator=g)
        with torch.no_grad():
            ref = wrapper(*inputs.values()).numpy()
        got = rt.run(**{k: v.numpy() for k, v in inputs.items()})
        assert got.shape == ref.shape
        worst = max(worst, max_abs(got, ref))
    assert worst <= 1e-4, f"{case}: runtime and PyTorch differ by {worst:.2e}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_runtime_samples_equal_pytorch_given_the_same_noise(exported, case, monkeypatch):
    model, folder = exported[case]
    same_noise(monkeypatch)
    torch_model, rt = load_torch(model, device="cpu"), runtime.load(folder, threads=1)
    for options in SAMPLING[case]:
        labels = torch_model.class_labels(len(SEEDS), None, SEEDS)
        expected = generate_items(torch_model.family, torch_model.module, torch_model.spec,
                                  torch_model.config, len(SEEDS), seed=0, labels=labels,
                                  batch_size=16, device="cpu", **options).numpy()
        got = rt.generate(len(SEEDS), seed=0, batch_size=5, **options)  # batches differ: per seed
        assert got.dtype == expected.dtype and got.shape == expected.shape
        if torch_model.spec.modality == "image":
            assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1, options
        else:  # levels and notes: identical
            np.testing.assert_array_equal(got, expected, err_msg=str(options))


def test_runtime_writes_genforge_files_and_records(exported, tmp_path):
    _, folder = exported["discrete-sokoban"]
    rt = runtime.load(folder, threads=1)
    out = tmp_path / "levels"
    levels = rt.generate(3, seed=5, out=out, steps=8)
    record = json.loads((out / "generation.json").read_text())
    assert [i["file"] for i in record["items"]] == ["000005.xsb", "000006.xsb", "000007.xsb"]
    assert record["noise"] == "numpy-pcg64" and record["onnx_sha256"]
    assert record["steps"] == 8 and record["sampler"] == "ancestral"
    # the XSB reads back, through genforge's own reader, to the generated level
    text = (out / "000006.xsb").read_text()
    board = "".join(line + "\n" for line in text.splitlines() if not line.startswith(
        ("Title:", "Genforge:")))
    assert board == formats.format_grid(levels[1], formats.SOKOBAN)
    assert json.loads(text.split("Genforge: ")[1])["seed"] == 6
    assert len((out / "generations.jsonl").read_text().splitlines()) == 3
    assert Image.open(out / "000005.png").text["genforge"]


def test_runtime_midi_is_the_midi_genforge_writes(exported, tmp_path):
    _, folder = exported["discrete-music"]
    rt = runtime.load(folder, threads=1)
    pieces = rt.generate(2, seed=0, out=tmp_path / "music", steps=4)
    meta = {"seed": 0}
    assert runtime.decode.midi_bytes(pieces[0], rt.decoding, meta) == writing.midi_bytes(
        pieces[0], meta)
    assert (tmp_path / "music" / "000001.mid").read_bytes()[:4] == b"MThd"


def test_images_and_classes_through_the_runtime(exported, tmp_path):
    _, folder = exported["diffusion-image"]
    rt = runtime.load(folder, threads=1)
    images = rt.generate(4, seed=0, out=tmp_path / "img", steps=2, class_label="b")
    assert images.shape == (4, 1, 12, 12) and images.dtype == np.uint8
    meta = json.loads(Image.open(tmp_path / "img" / "000002.png").text["genforge"])
    assert meta["class"] == "b" and meta["seed"] == 2 and meta["runtime"].startswith("onnxruntime")
    # one seed gives the same item whatever the batch
    np.testing.assert_array_equal(rt.generate(1, seed=3, steps=2, class_label="b")[0], images[3])
    measured = runtime.load(folder)  # threads measured on the first evaluation: same items
    np.testing.assert_array_equal(measured.generate(2, seed=0, steps=2, class_label="b"),
                                  images[:2])
    assert measured.threads in (1, os.cpu_count())
    with pytest.raises(ConfigError, match="unknown class"):
        rt.generate(1, class_label="zebra")
    with pytest.raises(ConfigError, match="truncation does not apply"):
        rt.generate(1, truncation=0.5)
    with pytest.raises(ConfigError, match="steps takes a int"):
        rt.generate(1, steps="many")
    for interval in ("5,0.3", (1.0,), "a,b"):
        with pytest.raises(ConfigError, match="guidance_interval takes two noise levels"):
            rt.generate(1, guidance_interval=interval)


def test_a_changed_onnx_file_is_refused(exported, tmp_path):
    import shutil
    _, folder = exported["gan-dcgan"]
    copy = shutil.copytree(folder, tmp_path / "copy")
    with open(copy / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(CheckpointError, match="sha256"):
        runtime.load(copy, threads=1)
    with pytest.raises(CheckpointError, match="not an ONNX export"):
        runtime.load(tmp_path)
    bad = shutil.copytree(folder, tmp_path / "bad")
    config = json.loads((bad / "config.json").read_text())
    del config["item_shape"]
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="malformed ONNX export config"):
        runtime.load(bad, threads=1)


def test_export_through_the_cli(exported, tmp_path, capsys):
    model, _ = exported["gan-dcgan"]
    out = tmp_path / "exported"
    assert main(["export", str(model), "--format", "onnx", "--out", str(out)]) == 0
    assert (out / "model.onnx").is_file() and "ONNX" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "missing")]) == 2
    assert "not a model folder" in capsys.readouterr().err
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    assert main(["export", str(model), "--out", str(precious)]) == 2  # never replaced
    assert "holds something other" in capsys.readouterr().err
    assert (precious / "notes.txt").read_text() == "mine"
    assert main(["export", str(model), "--out", str(out)]) == 0  # an export is replaced
    from genforge.runtime.__main__ import main as run_main
    assert run_main([str(out), "-n", "2", "--out", str(tmp_path / "s"),
                                  "--option", "truncation=0.5"]) == 0
    assert json.loads((tmp_path / "s" / "generation.json").read_text())["truncation"] == 0.5


def test_a_consistency_model_takes_one_or_two_steps_in_the_runtime(exported):
    rt = runtime.load(exported["consistency-image"][1], threads=1)
    assert rt.sampling()["sampler"] == "consistency" and rt.sampling()["steps"] == 2
    with pytest.raises(ConfigError, match="steps must be 1 or 2"):
        rt.sampling(steps=3)
    with pytest.raises(ConfigError, match="does not apply to a consistency model"):
        rt.sampling(sampler="euler")


def test_the_runtime_erf_rounds_to_float32_as_math_erf():
    import math
    from genforge.runtime.noise import erf
    x = np.concatenate([np.linspace(-7, 7, 200_001), np.random.default_rng(0).standard_normal(
        200_000) / math.sqrt(2)])
    exact = np.array([math.erf(v) for v in x])
    assert np.abs(erf(x) - exact).max() < 2e-8  # float64 rounding inside 4, erfc(4) past it
    np.testing.assert_array_equal(erf(x).astype(np.float32), exact.astype(np.float32))
