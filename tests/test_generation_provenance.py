"""Generated images carry the watermark naming their model and a signed C2PA manifest;
genforge detect and genforge verify read them back."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

import genforge
from genforge.cli import main
from genforge.modalities.image import read_metadata
from genforge.provenance import keys, signing

TINY = ["--model-channels", "8", "--channel-mult", "1,2", "--num-blocks", "1",
        "--attn-resolutions", "", "--batch-size", "4", "--preview-count", "2",
        "--progress", "none", "--device", "cpu"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A one-step model of 128x128 images: the watermark's minimum size."""
    run = tmp_path_factory.mktemp("wm") / "run"
    assert main(["train", "fashion-mnist-sample", "--run", str(run), "--steps", "1",
                 "--resolution", "128", *TINY]) == 0
    return genforge.load(run / "model", device="cpu")


def test_generated_images_carry_the_models_payload(model, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", str(model.folder), "-n", "2", "--steps", "2", "--device", "cpu",
                 "--out", str(out)]) == 0
    payload = model.manifest["weights_sha256"][:8]
    assert f"watermark: payload {payload} in every image" in capsys.readouterr().out
    assert read_metadata(out / "000000.png")["watermark"]["payload"] == payload
    files = [str(out / "000000.png"), str(out / "000001.png")]
    # through JPEG 75 as images travel, and checked against the model that made them
    jpeg = tmp_path / "shared.jpg"
    Image.open(files[0]).convert("RGB").save(jpeg, quality=75)
    assert main(["detect", *files, str(jpeg), "--model", str(model.folder), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["found"] for r in records] == [True, True, True]
    assert {r["payload"] for r in records} == {payload}
    assert all(r["matches_model"] and r["confidence"] > 0.999 for r in records)


def test_opting_out_is_recorded_and_nothing_is_found(model, tmp_path, capsys):
    out = tmp_path / "plain"
    model.generate(1, seed=3, steps=2, watermark=False, out=out)
    record = json.loads((out / "generation.json").read_text())["watermark"]
    assert record == {"applied": False, "reason": "opted out (--no-watermark)"}
    assert main(["detect", str(out / "000003.png")]) == 0
    assert "no genforge watermark found" in capsys.readouterr().out
    # the same seed with the watermark differs from the plain image by an invisible amount
    marked = model.generate(1, seed=3, steps=2)
    plain = np.asarray(Image.open(out / "000003.png"))
    diff = marked[0, 0].numpy().astype(float) - plain
    assert 0 < np.abs(diff).mean() and 10 * np.log10(255 ** 2 / np.mean(diff ** 2)) >= 38


def test_small_images_say_why_they_carry_no_watermark(tmp_path, capsys):
    small = tmp_path / "small.png"
    Image.new("L", (28, 28), 128).save(small)
    assert main(["detect", str(small)]) == 0
    assert "no watermark can be read from a 28x28 image" in capsys.readouterr().out


def test_detect_names_a_bad_file_in_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert main(["detect", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genforge: error: ") and str(bad) in err and "\n" not in err
    assert main(["detect", str(tmp_path / "missing.png")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_generated_files_are_signed_and_verify_as_trusted(model, tmp_path, capsys):
    out = tmp_path / "signed"
    model.generate(2, seed=7, steps=2, out=out)
    log = json.loads((out / "generation.json").read_text())
    assert log["c2pa"]["signed"] and "genforge" in log["c2pa"]["signer"]
    report = signing.verify_file(out / "000008.png")
    assert report.state == "trusted" and report.failures == []
    assert report.digital_source_type == signing.TRAINED_ALGORITHMIC_MEDIA
    gen = report.generation
    assert gen["model"]["hash"] == model.manifest["weights_sha256"] and gen["seed"] == 8
    assert gen["training_data"]["fingerprint"] == model.manifest["dataset"]["fingerprint"]
    assert gen["sampler"] == "dpmpp-2m" and gen["params"]["steps"] == 2
    assert report.soft_binding["blocks"][0]["value"] == log["watermark"]["payload"]
    # the grid is signed too; the CLI says so, and a changed byte of pixels is caught
    assert main(["verify", str(out / "000007.png"), str(out / "grid.png")]) == 0
    assert capsys.readouterr().out.count("valid and trusted") == 2
    data = bytearray((out / "000007.png").read_bytes())
    idat = data.index(b"IDAT") + 20
    data[idat] ^= 0xFF
    (out / "000007.png").write_bytes(bytes(data))
    assert main(["verify", str(out / "000007.png")]) == 1
    text = capsys.readouterr().out
    assert "INVALID" in text and "changed after it was signed" in text


def test_signing_can_be_refused_and_bad_certificates_stop_before_generating(model, tmp_path, capsys):
    out = tmp_path / "unsigned"
    assert main(["generate", str(model.folder), "-n", "1", "--steps", "2", "--device", "cpu",
                 "--no-sign", "--out", str(out)]) == 0
    assert "C2PA: none (opted out (--no-sign))" in capsys.readouterr().out
    assert main(["verify", str(out / "000000.png")]) == 1
    assert "no C2PA manifest" in capsys.readouterr().out
    # a self-signed certificate: the SDK would refuse it, genforge says so in one line
    key = keys.new_key()
    now = __import__("datetime").datetime.now(__import__("datetime").timezone.utc)
    cert = keys.make_certificate(key, "me", not_before=now, not_after=now.replace(year=now.year + 1))
    (tmp_path / "me.pem").write_bytes(keys.pem(cert))
    (tmp_path / "me.key").write_bytes(keys.key_pem(key))
    late = tmp_path / "never"
    assert main(["generate", str(model.folder), "-n", "1", "--steps", "2", "--device", "cpu",
                 "--cert", str(tmp_path / "me.pem"), "--key", str(tmp_path / "me.key"),
                 "--out", str(late)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genforge: error: ") and "\n" not in err and "self-signed" in err
    assert not late.exists()


def test_keys_init_show_and_refuse_to_overwrite(tmp_path, capsys):
    folder = tmp_path / "keys"
    assert main(["keys", "init", "--dir", str(folder), "--name", "Studio A"]) == 0
    assert "CN=Studio A" in capsys.readouterr().out
    assert main(["keys", "show", "--dir", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)["signer"]["subject"].endswith("CN=Studio A")
    assert main(["keys", "init", "--dir", str(folder)]) == 2
    assert "already exist" in capsys.readouterr().err
    assert main(["keys", "show", "--dir", str(tmp_path / "none")]) == 2
    assert "genforge keys init" in capsys.readouterr().err
