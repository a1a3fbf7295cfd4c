"""The library surface shells stand on: one declaration per option (a default changed in one place
is seen by the CLI, the API and the records), and progress as events (the JSON-lines stream of
`--progress jsonl`, the resume message, stop requests)."""
from __future__ import annotations

import contextlib
import io as text_io
import json
import dataclasses
from dataclasses import dataclass

import pytest

import genforge
from genforge import api, progress
from genforge.cli import main
from tiny import TINY
from genforge.families import FAMILIES
from genforge.families.diffusion import DiffusionSampling
from genforge.modalities.image import IMAGE
from genforge.options import between, option



def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained through the CLI with the JSON-lines progress stream on stdout."""
    run = tmp_path_factory.mktemp("surface") / "run"
    out = text_io.StringIO()
    env = pytest.MonkeyPatch()
    env.setenv("GENFORGE_CACHE", str(tmp_path_factory.mktemp("cache")))  # the audit runs afresh
    try:
        with contextlib.redirect_stdout(out):
            code = main(["train", "fashion-mnist-sample", "--run", str(run), "--steps", "3",
                         *TINY, "--progress", "jsonl"])
    finally:
        env.undo()
    assert code == 0
    return run, out.getvalue()


def test_train_progress_streams_as_json_lines(trained):
    run, stdout = trained
    events = jsonl(stdout)  # every line of stdout is one event: nothing else is printed there
    assert events and all(e["event"] == "progress" for e in events)
    train = [e for e in events if e["task"] == "train"]
    assert train[0]["status"] == "start" and train[-1]["status"] == "end"
    assert train[-1]["done"] == train[-1]["total"] == 3 and train[-1]["unit"] == "step"
    assert train[-1]["info"]["status"] == "finished"
    updates = [e for e in train if e["status"] == "update"]
    assert [e["done"] for e in updates] == sorted(e["done"] for e in updates)
    assert any("loss" in e["info"] for e in updates)
    preview = next(e["info"]["preview"] for e in updates if "preview" in e["info"])
    assert preview.endswith("step-0000000.png") and (run / "samples" / "step-0000000.png").exists()
    tasks = [e["task"] for e in events if e["status"] == "start"]
    assert tasks.index("audit") < tasks.index("train") < tasks.index("export")


def test_a_rerun_says_it_resumes_and_continues_from_the_step(trained, capsys):
    run, _ = trained
    assert main(["train", "fashion-mnist-sample", "--run", str(run), "--steps", "5",
                 *TINY, "--progress", "jsonl"]) == 0
    events = jsonl(capsys.readouterr().out)
    notes = [e for e in events if e["status"] == "note" and e["task"] == "train"]
    assert len(notes) == 1 and notes[0]["message"].startswith(f"resuming {run} from step 3 (saved ")
    assert "minutes ago" in notes[0]["message"] and notes[0]["info"]["step"] == 3
    start = next(e for e in events if e["task"] == "train" and e["status"] == "start")
    assert start["done"] == 3 and start["total"] == 5  # the bar continues, it does not restart


def test_should_stop_saves_a_checkpoint_and_stops(tmp_path):
    seen: list[progress.Event] = []
    asked = []

    def stop() -> bool:
        asked.append(True)
        return len(asked) >= 2

    summary = genforge.train("fashion-mnist-sample", tmp_path / "run", steps=50, preset=None,
                             model_channels=8, channel_mult=(1, 2), num_blocks=1,
                             attn_resolutions=(), batch_size=8, resolution=12, preview_count=4,
                             device="cpu", progress=seen.append, should_stop=stop)
    assert summary["status"] == "interrupted" and summary["steps"] == 2
    assert (tmp_path / "run" / "checkpoint.safetensors").exists()
    assert [e.status for e in seen if e.task == "train"][-1] == "end"


@dataclass(frozen=True)
class SevenSteps(DiffusionSampling):
    """The diffusion family's sampling options with one default changed."""

    steps: int = option(7, "sampler steps", check=between(1, 1000))


def test_one_changed_default_reaches_the_cli_the_api_and_the_records(trained, monkeypatch,
                                                                      capsys, tmp_path):
    run, _ = trained
    monkeypatch.setattr(FAMILIES["diffusion"], "sampling", SevenSteps)

    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert "diffusion 7" in " ".join(capsys.readouterr().out.split())

    model = genforge.load(run / "model", device="cpu")
    assert model.sampling()["steps"] == 7
    assert model.sampling(steps=3)["steps"] == 3

    assert main(["generate", str(run / "model"), "-n", "2", "--no-sign", "--device", "cpu",
                 "--out", str(tmp_path / "out"), "--progress", "none"]) == 0
    record = json.loads((tmp_path / "out" / "generation.json").read_text())
    assert record["steps"] == 7 and record["sampler"] == "dpmpp-2m"
    line = json.loads((tmp_path / "out" / "generations.jsonl").read_text().splitlines()[0])
    assert line["steps"] == 7


def test_class_conditional_images_sample_with_the_kinds_guidance(trained):
    # the image kind's measured preset: guided by default where the model knows classes,
    # unguided where it does not; a given guidance wins
    run, _ = trained
    model = genforge.load(run / "model", device="cpu")
    (preset,) = IMAGE.sampling_presets
    assert model.spec.num_classes == 10 and preset.options["guidance"] > 1
    assert model.sampling()["guidance"] == preset.options["guidance"]
    assert model.sampling(guidance=1.0)["guidance"] == 1.0
    assert "guidance" not in model.sampling(inpainting=True)
    unconditional = dataclasses.replace(model.spec, class_names=())
    assert IMAGE.sampling_defaults("diffusion", unconditional) == {}
    assert model.sampling(spec=unconditional)["guidance"] == 1.0


def test_declarations_feed_the_shells():
    by_family = api.sampling_declarations()
    assert set(by_family) == set(FAMILIES)
    assert set(api.sampling_declarations(inpainting=True)) == {"diffusion", "discrete"}
    groups = api.data_sections()
    assert {"data", *api.kinds()} == set(groups)
    assert "resolution" in {d.name for d in groups["image"]}
    assert "bars" in {d.name for d in groups["music"]}
    assert "max_size" in {d.name for d in groups["level"]}


def test_an_option_of_another_family_or_kind_is_refused_by_name(trained):
    run, _ = trained
    model = genforge.load(run / "model", device="cpu")
    with pytest.raises(genforge.ConfigError, match="--temperature does not apply to a diffusion"):
        model.generate(1, temperature=0.5)
    with pytest.raises(genforge.ConfigError, match="--bars is a music data option; this data is image"):
        api.resolve_config("fashion-mnist-sample", bars=8)
    with pytest.raises(genforge.ConfigError,
                       match="--split is a music and level data option; this data is image"):
        api.resolve_config("fashion-mnist-sample", split="test")
    assert api.resolve_config("bach-chorales", split="test").data.split == "test"
