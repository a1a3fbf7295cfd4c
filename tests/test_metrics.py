"""The metrics mean something: on Fashion-MNIST with a genforge-trained domain encoder, FD grows
as images degrade, same-distribution scores sit where they should, copies are caught; records,
reports, the CLI and in-training evaluation work end to end."""
import json
import warnings

import pytest
import torch
import torch.nn.functional as F

from genforge import api, cli
from genforge.config import DataConfig
from genforge.errors import ConfigError
from genforge.metrics import registry
from genforge.metrics.encoder import load_encoder
from genforge.metrics.encoder_training import train_encoder
from genforge.modalities import IMAGE
from genforge.modalities.base import Dataset


@pytest.fixture(scope="module")
def fashion():
    return IMAGE.open(DataConfig(source="fashion-mnist-sample"))


@pytest.fixture(scope="module")
def split(fashion):
    """3,000 training items (the reference) and 1,000 held-out items (stand-in 'generated')."""
    perm = torch.randperm(len(fashion), generator=torch.Generator().manual_seed(1))
    train, held = perm[:3000].sort().values, perm[3000:].sort().values
    return (Dataset("image", fashion.items[train], fashion.labels[train], fashion.class_names,
                    "fashion-train-part"), fashion.items[held])


@pytest.fixture(scope="module")
def encoder_file(split, tmp_path_factory):
    path = tmp_path_factory.mktemp("encoder") / "fashion.safetensors"
    return train_encoder(split[0], path, name="fashion", steps=150, seed=0)


@pytest.fixture(scope="module")
def encoder(encoder_file):
    return load_encoder(encoder_file)


PROTOCOL = registry.Protocol(generated=1000, fd_resamples=0, kid_subsets=20, kid_subset_size=500)


@pytest.fixture(scope="module", autouse=True)
def feature_cache(tmp_path_factory):
    global CACHE
    CACHE = tmp_path_factory.mktemp("feature-cache")


def run(items, split, encoder, metrics=("fd",), protocol=PROTOCOL, **kwargs):
    return registry.evaluate(lambda n: items[:n], split[0], encoder, metrics=metrics,
                             protocol=protocol, cache_dir=CACHE, **kwargs)


def blur(items, level):
    kernel = 2 * level + 1
    x = F.avg_pool2d(items.float(), kernel, stride=1, padding=level, count_include_pad=False)
    return x.round().to(torch.uint8)


def noise(items, level):
    g = torch.Generator().manual_seed(level)
    return (items.float() + torch.randn(items.shape, generator=g) * 20 * level).clamp(0, 255).round().to(torch.uint8)


def pixelate(items, level):
    factor = 2 ** level
    small = F.avg_pool2d(items.float(), factor, ceil_mode=True)
    return F.interpolate(small, size=items.shape[-2:], mode="nearest").round().to(torch.uint8)


@pytest.mark.parametrize("degrade", [blur, noise, pixelate])
def test_fd_grows_monotonically_as_samples_degrade(split, encoder, degrade):
    held = split[1]
    values = [run(held if level == 0 else degrade(held, level), split, encoder).value("fd")
              for level in range(4)]
    assert values == sorted(values) and values[1] > 1.2 * values[0], values
    # the held-out items themselves are close: small next to the mildest degradation of all
    assert values[0] < 0.5 * values[-1]


def test_scores_for_the_same_distribution(split, encoder):
    # k-NN scores compare sets of equal size (1,000 each): coverage and recall depend on it
    equal = registry.Protocol(generated=1000, reference_limit=1000, fd_resamples=0,
                              kid_subsets=20, kid_subset_size=500)
    result = run(split[1], split, encoder, metrics=("fd", "kid", "prdc"), protocol=equal)
    values = {r.metric: r for r in result.records}
    assert abs(values["kid"].value) < 0.02 * max(1.0, values["fd"].value)
    kid = values["kid"]
    assert kid.ci_low < 0.002 and kid.ci_low <= kid.value <= kid.ci_high
    for name in ("precision", "recall", "coverage"):
        assert values[name].value > 0.8, (name, values[name].value)
    assert 0.8 < values["density"].value < 1.25
    blurred = {r.metric: r.value for r in run(blur(split[1], 2), split, encoder,
                                              metrics=("kid", "prdc"), protocol=equal).records}
    assert blurred["kid"] > 10 * max(values["kid"].value, 1e-4)
    assert blurred["recall"] < values["recall"].value - 0.3


def test_memorisation_catches_injected_copies(split, encoder):
    train = split[0].items
    copies = train[torch.arange(0, 3000, 30)]       # 100 exact training items
    mixed = torch.cat([split[1][:400], copies])
    protocol = registry.Protocol(generated=500, fd_resamples=0)
    result = registry.evaluate(lambda n: mixed[:n], split[0], encoder, metrics=("memorisation",),
                               protocol=protocol)
    share = result.records[0]
    assert share.metric == "memorised_share" and share.extractor == "pixels"
    assert share.value == pytest.approx(100 / 500, abs=0.01)
    closest = {gen for gen, _, ratio in result.inputs.nearest_pairs if ratio < registry.COPY_RATIO}
    assert set(range(400, 500)) >= closest and len(closest) >= 30
    clean = registry.evaluate(lambda n: split[1][:n], split[0], encoder, metrics=("memorisation",),
                              protocol=protocol).records[0]
    assert clean.value < 0.02


def test_memorisation_works_with_a_small_training_set(split, encoder):
    # 1,000 training items: fewer than the 2,000 the train-to-train baseline draws by default
    small = Dataset("image", split[0].items[:1000].clone(), None, [], "small")
    copies = small.items[:50]
    result = registry.evaluate(lambda n: torch.cat([split[1][:150], copies])[:n], small, encoder,
                               metrics=("memorisation",),
                               protocol=registry.Protocol(generated=200, fd_resamples=0))
    assert result.records[0].value == pytest.approx(50 / 200, abs=0.01)
    assert len(result.inputs.histograms["train_to_train"]) == 500


def test_records_say_what_made_them_and_append_to_jsonl(split, encoder, tmp_path):
    log = tmp_path / "metrics.jsonl"
    protocol = registry.Protocol(generated=600, fd_resamples=5, kid_subsets=5, seed=3)
    for _ in range(2):
        result = run(split[1], split, encoder, metrics=("fd", "kid"), protocol=protocol, log=log)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["metric"] for r in lines] == ["fd", "kid", "fd", "kid"]
    fd = lines[0]
    assert fd["label"] == "FD-fashion" and "FID" not in json.dumps(lines)
    assert fd["extractor"] == "fashion" and fd["extractor_checksum"] == encoder.checksum
    assert fd["generated"] == 600 and fd["reference"] == 3000 and fd["seed"] == 3
    assert fd["protocol"]["reference_fingerprint"] == split[0].fingerprint
    assert fd["ci_low"] <= fd["ci_high"]
    assert lines[0]["value"] == lines[2]["value"]  # deterministic
    assert registry.read_records(log) == lines


def test_fd_refuses_too_few_samples_unless_asked_for_a_reduced_dimension(split, encoder):
    few = registry.Protocol(generated=200, fd_resamples=0)
    with pytest.raises(ConfigError, match="more generated samples than feature dimensions"):
        run(split[1], split, encoder, protocol=few)
    reduced = registry.Protocol(generated=200, fd_resamples=0, fd_dim=32)
    record = run(split[1], split, encoder, protocol=reduced).records[0]
    assert record.details["dimensions"] == 32 and record.value > 0


def test_bad_inputs_get_clear_messages(split, encoder):
    rgb = split[1][:600].repeat(1, 3, 1, 1)
    with pytest.raises(ConfigError, match=r"shape \(3, 28, 28\) but the reference data .* has \(1, 28, 28\)"):
        run(rgb, split, encoder)
    with pytest.raises(ConfigError, match="unknown metric 'fid'"):
        run(split[1], split, encoder, metrics=("fid",))
    other = Dataset("image", split[1], None, [], "other-data")
    with pytest.warns(UserWarning, match="trained on other data"):
        registry.evaluate(lambda n: split[1][:n], other, encoder, metrics=("kid",),
                          protocol=registry.Protocol(generated=100, kid_subsets=2))


@pytest.fixture(scope="module")
def generated_folder(split, tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated")
    items = torch.cat([split[1][:280], split[0].items[:20]])  # 20 copies of training items
    IMAGE.write(items, folder, [f"{i:04d}" for i in range(len(items))])
    return folder


def test_cli_evaluates_a_folder_of_files_from_any_tool(split, encoder_file, generated_folder,
                                                       tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path / "cache"))
    # the reference is the same data the encoder saw, so no fingerprint warning; it stands in
    # for a folder of that name
    train_part = tmp_path / "train-part"
    train_part.mkdir()
    monkeypatch.setattr(api.MODALITIES["image"], "open", lambda cfg, _d=split[0]: _d
                        if cfg.source == str(train_part) else IMAGE.__class__.open(IMAGE, cfg))
    out = tmp_path / "report"
    code = cli.main(["evaluate", str(generated_folder), "--data", str(train_part), "-n", "300",
                     "--extractor", str(encoder_file), "--fd-dim", "32",
                     "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "FD-fashion" in printed and "memorised_share" in printed
    record = json.loads((out / "evaluation.json").read_text())["records"]
    share = next(r for r in record if r["metric"] == "memorised_share")
    assert share["value"] == pytest.approx(20 / 300, abs=0.01)
    html = (out / "report.html").read_text()
    assert "FD-fashion" in html and (out / "samples.png").exists()
    assert len(registry.read_records(out / "metrics.jsonl")) == len(record)


def test_evaluate_without_an_encoder_measures_memorisation_and_says_how_to_get_one(
        generated_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path / "empty-cache"))
    out = tmp_path / "out"
    code = cli.main(["evaluate", str(generated_folder), "--data", "fashion-mnist-sample", "-n",
                     "50", "--out", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert "memorised_share" in captured.out and "FD" not in captured.out
    assert "genforge features train" in captured.err and "--train-encoder" in captured.err
    record = json.loads((out / "evaluation.json").read_text())
    assert {r["metric"] for r in record["records"]} == {"memorised_share", "normalised_nn_distance"}
    assert "fd, kid, prdc left out" in record["notes"][0]
    # asked for by name, a feature metric without an extractor is refused before any sampling
    code = cli.main(["evaluate", str(generated_folder), "--data", "fashion-mnist-sample", "-n",
                     "50", "--metrics", "fd", "--out", str(out)])
    assert code == 2 and "--train-encoder" in capsys.readouterr().err


def test_few_samples_project_fd_automatically_and_say_so(generated_folder, encoder_file, tmp_path):
    result = api.evaluate(generated_folder, "fashion-mnist-sample", n=100, metrics=("fd",),
                          extractor=str(encoder_file), out=tmp_path / "out", fd_resamples=0)
    (fd,) = result["records"]
    assert fd["protocol"]["fd_dim"] == 25 and fd["details"]["dimensions"] == 25
    assert "100 samples are fewer than the 256 features" in fd["details"]["notes"][0]
    with pytest.raises(ConfigError, match="--fd-dim 300 must be below"):
        api.evaluate(generated_folder, "fashion-mnist-sample", n=100, metrics=("fd",),
                     extractor=str(encoder_file), fd_dim=300, out=tmp_path / "out")


def test_too_few_files_for_n(generated_folder, capsys):
    code = cli.main(["evaluate", str(generated_folder), "--data", "fashion-mnist-sample",
                     "-n", "5000", "--extractor", "x.safetensors"])
    assert code == 2
    assert "holds 300 items, fewer than the 5000 asked for" in capsys.readouterr().err


def test_in_training_evaluation_logs_and_keeps_the_best(split, encoder_file, tmp_path, monkeypatch):
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(api.MODALITIES["image"], "open", lambda cfg, _d=split[0]: _d)
    run_dir = tmp_path / "run"
    (tmp_path / "train-part").mkdir()  # stands in for the folder the patched open serves
    summary = api.train(str(tmp_path / "train-part"), run_dir, steps=4, eval_every=2, eval_samples=64,
                        eval_metric="kid", eval_extractor=str(encoder_file),
                        model_channels=16, channel_mult=(1, 2), attn_resolutions=(),
                        batch_size=16, sample_every=100, preview_count=4)
    assert summary["status"] == "finished"
    records = registry.read_records(run_dir / "model" / "metrics.jsonl")
    assert [r["step"] for r in records] == [2, 4]
    assert all(r["label"] == "KID-fashion" and r["generated"] == 64 for r in records)
    best = json.loads((run_dir / "best" / "manifest.json").read_text())["training"]["best"]
    assert summary["best"] == best and "best by KID-fashion" in api.summary_markdown(summary)
    assert best["value"] == min(r["value"] for r in records)
    assert best["step"] == min(records, key=lambda r: r["value"])["step"]
    assert api.load(run_dir / "best").generate(2).shape == (2, 1, 28, 28)
