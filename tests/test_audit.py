"""Dataset audit: planted duplicates, bad files, unbalanced classes, the manifest, C2PA, training."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from genforge import api, audit
from genforge.cli import main

# Tiny tensors: one thread each (two threads on two shared cores made a 1-step run 30x slower).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    """Audit hashes and encoders go to a temporary cache, not the user's."""
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def smooth_image(rng: np.random.Generator, size: int = 32) -> Image.Image:
    """A random smooth RGB picture (an upsampled 6x6 field), unlike any other at this seed."""
    field = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return Image.fromarray(field).resize((size, size), Image.Resampling.BICUBIC)


def make_folder(root: Path, seed: int = 0) -> Path:
    """Class 'big' with 26 images, 'small' with 4: planted copies, a near copy and two bad files."""
    rng = np.random.default_rng(seed)
    for cls, count in (("big", 26), ("small", 4)):
        (root / cls).mkdir(parents=True)
        for i in range(count):
            smooth_image(rng).save(root / cls / f"{i:02d}.png")
    big = root / "big"
    shutil.copyfile(big / "00.png", big / "00-copy.png")                  # byte copy
    Image.open(big / "01.png").save(big / "01-reencoded.bmp")              # same pixels, new bytes
    brighter = ImageEnhance.Brightness(Image.open(big / "02.png")).enhance(1.1)
    brighter.save(big / "02-near.jpg", quality=90)                         # brightened + JPEG
    (root / "small" / "corrupt.png").write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    data = (big / "03.png").read_bytes()
    (big / "truncated.png").write_bytes(data[:len(data) // 2])
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("audit") / "data")


def audited(path, **options) -> tuple[dict, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = api.audit(str(path), **options)
    return record, [str(w.message) for w in caught]


def test_audit_finds_what_was_planted(folder):
    record, warned = audited(folder)
    assert record["found"] == 35 and record["items"] == 33
    unreadable = {Path(u["path"]).name for u in record["unreadable"]}
    assert unreadable == {"corrupt.png", "truncated.png"}
    pixels = record["exact_duplicates"]["pixels"]["listed"]
    assert ["big/00-copy.png", "big/00.png"] in pixels
    assert ["big/01-reencoded.bmp", "big/01.png"] in pixels
    assert record["exact_duplicates"]["files"]["listed"] == [["big/00-copy.png", "big/00.png"]]
    assert record["near_duplicates"]["listed"] == [["big/02-near.jpg", "big/02.png"]]
    # the first of each group (in file order) stays; its copies would be dropped
    assert record["duplicates"]["items"] == 3
    o = record["originals"]
    assert o["width"] == {"min": 32, "median": 32, "max": 32} and o["aspect"]["max"] == 1
    assert o["modes"] == {"RGB": 33} and o["formats"]["BMP"] == 1
    assert record["classes"]["counts"] == {"big": 29, "small": 4}
    assert record["features"]["status"] == "skipped"
    assert "genforge features train" in record["features"]["reason"]
    assert record["manifest"]["unknown"] == ["licence", "source", "consent"]
    assert any("duplicates: they drive memorisation" in w for w in warned)
    assert any("unbalanced" in w for w in warned)
    assert any("licence, source, consent of" in w for w in warned)
    assert record["c2pa"] == {"manifests": 0, "not_allowed": [], "constrained": [],
                              "unreadable": [], "unchecked": []}


def test_near_duplicates_ignore_lookalikes_but_find_edited_copies():
    rng = np.random.default_rng(1)
    base = np.stack([np.asarray(smooth_image(rng).convert("L")) for _ in range(200)])[:, None]
    brighter = np.clip(base[:20].astype(int) * 1.15 + 10, 0, 255).astype(np.uint8)
    items = np.concatenate([base, brighter])
    pairs = audit.near_pairs(items, list(range(len(items))))
    assert sorted(map(tuple, pairs.tolist())) == [(i, 200 + i) for i in range(20)]


def test_multi_index_hashing_finds_every_close_pair():
    rng = np.random.default_rng(2)
    hashes = rng.integers(0, 2**63, 3000, dtype=np.int64).astype(np.uint64)
    flips = rng.integers(0, 64, (3000, 7))
    near = hashes.copy()
    for k in range(3000):  # each a copy with 0..7 bits flipped
        for b in flips[k, :k % 8]:
            near[k] ^= np.uint64(1) << np.uint64(int(b))
    both = np.concatenate([hashes, near])
    pairs = audit.hamming_pairs(both, 5, limit=1000)
    distance = audit.popcount(both[:, None] ^ both[None, :])
    i, j = np.nonzero(np.triu(distance <= 5, 1))
    assert sorted(map(tuple, pairs.tolist())) == sorted(zip(i.tolist(), j.tolist()))


def test_duplicate_drops_keep_chains_and_respect_exclusions():
    assert audit.duplicate_drops([[0, 3, 5]], [[1, 2], [2, 4]]) == [2, 3, 5]  # 4 is kept: 2 went
    assert audit.duplicate_drops([[0, 3]], [], excluded={0}) == []           # 3 replaces 0


def test_manifest_round_trip_and_named_datasets(tmp_path):
    data = make_folder(tmp_path / "data", seed=3)
    assert main(["audit", str(data), "--licence", "CC-BY-4.0", "--source", "https://example.org/x",
                 "--consent", "photographed with written consent"]) == 0
    stored = json.loads((data / audit.MANIFEST_NAME).read_text())
    assert stored == {"licence": "CC-BY-4.0", "source": "https://example.org/x",
                      "consent": "photographed with written consent"}
    assert main(["audit", str(data), "--licence", "CC0-1.0"]) == 0  # updates one field
    record, warned = audited(data)
    assert record["manifest"]["licence"] == "CC0-1.0" and record["manifest"]["unknown"] == []
    assert record["manifest"]["source"] == "https://example.org/x"
    assert not any("unknown" in w for w in warned)
    sample, _ = audited("fashion-mnist-sample")
    assert sample["manifest"]["licence"].startswith("MIT") and "Zalando" in sample["manifest"]["source"]
    assert sample["originals"] == {"from": "stored shape", "width": 28, "height": 28, "mode": "L"}
    assert sample["classes"]["largest_share"] == 0.1 and sample["duplicates"]["items"] == 0


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["audit", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genforge: error: data source") and "\n" not in err
    assert main(["audit", "fashion-mnist-sample", "--licence", "CC0-1.0"]) == 2
    assert "built in" in capsys.readouterr().err


def test_cli_summary_json_and_out(folder, tmp_path, capsys):
    out = tmp_path / "audit.json"
    assert main(["audit", str(folder), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "near duplicates: 1 pair(s)" in printed.out and "genforge: warning:" in printed.err
    assert json.loads(out.read_text())["items"] == 33
    assert main(["audit", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seconds"]["cached"] is True


def test_training_permission_from_a_parsed_manifest():
    entry = lambda use: {"label": "c2pa.training-mining", "data": {"entries": {
        "c2pa.ai_generative_training": {"use": use}, "c2pa.ai_inference": {"use": "allowed"}}}}
    store = {"manifests": {"a": {"assertions": [{"label": "c2pa.actions.v2"}, entry("notAllowed")]}}}
    assert audit.training_permission(store)[0] == "notAllowed"
    assert audit.training_permission({"manifests": {"a": {"assertions": [entry("allowed")]}}})[0] == "allowed"
    assert audit.training_permission({"manifests": {"a": {"assertions": []}}}) == (None, "")


def test_training_warns_writes_audit_and_dedup_drops_copies(folder, tmp_path):
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="they drive memorisation; --dedup"):
        summary = api.train(str(folder), run, **_options())
    assert summary["dataset"]["items"] == 33
    assert json.loads((run / "audit.json").read_text())["duplicates"]["items"] == 3
    assert "3 items (9.1%) --dedup would drop" in summary["audit"]
    assert "- audit:" in (run / "summary.md").read_text()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        deduped = api.train(str(folder), tmp_path / "dedup", dedup=True, **_options())
    assert not any("memorisation" in str(w.message) for w in caught)
    assert deduped["dataset"]["items"] == 30
    assert "3 items (9.1%) dropped (--dedup)" in deduped["audit"]
    record = json.loads((tmp_path / "dedup" / "audit.json").read_text())
    assert record["training"]["items"] == 30 and record["seconds"]["cached"] is True


def _options() -> dict:
    return dict(model_channels=8, channel_mult=(1, 2), num_blocks=1, attn_resolutions=(),
                batch_size=8, resolution=12, preview_count=4, steps=1)


def _signer(tmp_path: Path):
    """A C2PA signer from a development PKI: a root CA and a leaf (the SDK rejects self-signed leaves)."""
    c2pa = pytest.importorskip("c2pa")
    pytest.importorskip("cryptography")
    from genforge.provenance.keys import init_keys, load_signer
    return c2pa, load_signer(init_keys(tmp_path / "keys").folder).signer


def sign(c2pa, signer, source: Path, dest: Path, use: str) -> None:
    """Write dest: source with a C2PA manifest whose training-mining assertion says use."""
    builder = c2pa.Builder({
        "claim_generator_info": [{"name": "genforge-tests", "version": "1"}],
        "assertions": [{"label": "c2pa.training-mining", "data": {"entries": {
            "c2pa.ai_generative_training": {"use": use}, "c2pa.ai_training": {"use": use}}}}]})
    builder.set_intent(c2pa.C2paBuilderIntent.CREATE, c2pa.C2paDigitalSourceType.DIGITAL_CAPTURE)
    builder.sign_file(str(source), str(dest), signer)


def test_c2pa_not_allowed_files_are_listed_and_left_out_of_training(tmp_path):
    c2pa, signer = _signer(tmp_path)
    data = tmp_path / "data"
    rng = np.random.default_rng(4)
    data.mkdir()
    for i in range(12):
        smooth_image(rng).save(tmp_path / f"{i}.png")
    for i in range(10):
        shutil.copyfile(tmp_path / f"{i}.png", data / f"{i}.png")
    sign(c2pa, signer, tmp_path / "10.png", data / "forbidden.png", "notAllowed")
    sign(c2pa, signer, tmp_path / "11.png", data / "allowed.png", "allowed")
    # a copy with the manifest stripped (the same pixels, re-encoded) is left out too
    Image.open(data / "forbidden.png").save(data / "stripped.bmp")
    record, warned = audited(data)
    c = record["c2pa"]
    assert c["manifests"] == 2 and [r["path"] for r in c["not_allowed"]] == ["forbidden.png"]
    assert "notAllowed" in c["not_allowed"][0]["assertion"]
    names = sorted(p.name for p in data.iterdir())
    assert [names[i] for i in record["excluded"]] == ["forbidden.png", "stripped.bmp"]
    assert any("forbid AI training" in w for w in warned)
    summary = api.train(str(data), tmp_path / "run", **_options())
    assert summary["dataset"]["items"] == 13 - 2  # 10 plain, allowed, forbidden, stripped
    assert "2 left out (C2PA" in summary["audit"]
    assert json.loads((tmp_path / "run" / "audit.json").read_text())["training"]["items"] == 11


def test_feature_neighbours_with_a_cached_encoder(tmp_path):
    data = make_folder(tmp_path / "data", seed=5)
    record, _ = audited(data, features=True)
    assert record["features"]["status"] == "skipped"
    api.train_features(str(data), steps=2)  # lands in the cache, under the data's fingerprint
    record, _ = audited(data)
    found = record["features"]
    assert found["status"] == "done" and found["median_nearest_angle"] > 0
    pairs = {tuple(sorted(p[:2])) for p in found["listed"]}
    assert ("big/00-copy.png", "big/00.png") in pairs  # the same pixels: the same features
    assert record["duplicates"]["items"] == 3  # reported only: --dedup goes by the hashes
