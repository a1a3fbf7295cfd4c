"""Every exported model folder gets a Hugging Face model card filled from the run, and
evaluation updates it with the figures and their protocol."""
from __future__ import annotations

import pytest

import genforge
from genforge.cli import main
from genforge.provenance.model_card import HUMAN, watermark_line

pytestmark = pytest.mark.usefixtures("one_thread")


def front_matter(text: str) -> dict[str, list[str]]:
    """Top-level keys of the YAML front matter and the lines under each."""
    assert text.startswith("---\n")
    block, keys, current = text.split("---\n")[1], {}, None
    for line in block.splitlines():
        if not line.startswith((" ", "-")):
            current = line.split(":")[0]
            keys[current] = [line]
        else:
            keys[current].append(line)
    return keys


def test_card_is_written_at_export_and_updated_by_evaluation(tmp_path, monkeypatch):
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    genforge.train("fashion-mnist-sample", run, preset=None, model_channels=8, channel_mult=(1,),
                   num_blocks=1, patch_size=2, batch_size=8, steps=2,
                   preview_count=4, device="cpu")
    card = (run / "model" / "README.md").read_text()
    meta = front_matter(card)
    assert meta["license"] == ["license: mit"] and meta["library_name"] == ["library_name: genforge"]
    assert "- diffusion" in meta["tags"] and "- class-conditional" in meta["tags"]
    assert "- zalando-datasets/fashion_mnist" in meta["datasets"]
    assert "2 steps" in card and "fashion-mnist-sample" in card and "Not evaluated yet" in card
    assert "near-duplicate pair(s)" in card and "licence MIT" in card  # the run's audit
    assert card.count(HUMAN) == 2  # intended use and who is affected: a person's words
    assert "28x28 images, below the invisible watermark's minimum of 128x128" in card
    assert "signed by default with a C2PA manifest" in card and "genforge verify" in card

    encoder = tmp_path / "enc.safetensors"
    assert main(["features", "train", "fashion-mnist-sample", "--out", str(encoder),
                 "--steps", "20", "--device", "cpu"]) == 0
    assert main(["evaluate", str(run / "model"), "--data", "fashion-mnist-sample", "-n", "200",
                 "--metrics", "prdc,memorisation", "--extractor", str(encoder), "--steps", "2",
                 "--device", "cpu"]) == 0
    card = (run / "model" / "README.md").read_text()
    meta = front_matter(card)
    assert any('type: "precision"' in line for line in meta["model-index"])
    assert "| memorised_share |" in card and "vs 4,000 training items" in card
    assert "likely copies of a training item" in card and "evaluation/report.html" in card


def test_card_names_the_watermark_payload_of_large_images():
    config = {"modality": "image", "item_shape": [3, 128, 160]}
    line = watermark_line(config, {"weights_sha256": "9e3779b9" + "0" * 56})
    assert "payload `9e3779b9`" in line and "genforge detect" in line and "--no-watermark" in line
    assert "no pixel watermark" in watermark_line({"modality": "music", "item_shape": [4, 128]}, {})
