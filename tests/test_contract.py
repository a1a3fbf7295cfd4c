"""The contracts every registered content kind and every family x kind pair must keep.

A new kind registered in MODALITIES without a tiny dataset here fails the first test, so no kind
joins without the whole contract: open, to-model/from-model round trip, write and read back,
preview, its default metrics, and one training step and sampling in every family that supports
it. The pairs that are not supported are listed with their reasons, and training refuses them
with that reason.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genforge import api
from genforge.config import resolve_augment
from genforge.errors import ConfigError
from genforge.families import FAMILIES, ModelSpec, sampling_options
from genforge.metrics import registry
from genforge.metrics.encoder_training import train_encoder
from genforge.metrics.extractors import load_extractor
from genforge.modalities import MODALITIES, Modality
from genforge.options import declarations

FIXTURES = Path(__file__).parent / "fixtures"


def image_folder(tmp_path: Path) -> Path:
    """Six 8x8 RGB images in two class folders, with the same seeded pixels every run."""
    rng = np.random.default_rng(0)
    for i in range(6):
        folder = tmp_path / ("dark" if i % 2 else "light")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) // (2 if i % 2 else 1)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return tmp_path


# kind -> (make the source folder, data options): the tiniest dataset of each kind
TINY = {
    "image": (image_folder, {}),
    "music": (lambda tmp: shutil.copytree(FIXTURES / "music" / "good", tmp / "music"),
              {"bars": 1, "split": "all", "transpose": 0}),
    "level": (lambda tmp: shutil.copytree(FIXTURES / "levels" / "sokoban", tmp / "levels",
                                          ignore=shutil.ignore_patterns("malformed*")),
              {"max_size": "8"}),
}
TINY_NETWORK = {"model_channels": 8, "channel_mult": (1,), "num_blocks": 1, "attn_resolutions": (),
                "patch_size": 1, "generator_channels": 4, "discriminator_channels": 4,
                "max_channels": 8, "latent_dim": 8, "mapping_layers": 1}


def open_tiny(kind: str, tmp_path: Path):
    make, options = TINY[kind]
    source = make(tmp_path / "source")
    return api.open_data(api.data_config(str(source), kind=kind, **options)), options


def test_every_registered_kind_has_a_tiny_dataset_here():
    assert set(TINY) == set(MODALITIES)


@pytest.mark.parametrize("kind", sorted(MODALITIES))
def test_kind_declares_its_seam(kind):
    m = MODALITIES[kind]
    assert isinstance(m, Modality) and m.name == kind
    assert declarations(m.options_type), "a kind owns a frozen data-options dataclass"
    assert m.default_metrics and all(name in registry.METRICS for name in m.default_metrics)
    assert m.family in FAMILIES and FAMILIES[m.family].supports(m) is None
    for preset in m.sampling_presets:
        declared = {d.name for d in declarations(FAMILIES[preset.family].sampling)}
        assert set(preset.options) <= declared, "a kind's sampling preset names declared options"


@pytest.mark.parametrize("kind", sorted(MODALITIES))
def test_open_round_trip_write_read_back_and_preview(kind, tmp_path):
    data, options = open_tiny(kind, tmp_path)
    assert data.kind == kind and len(data) > 0 and not data.items.is_floating_point()
    assert data.names is None or len(data.names) == len(data)
    m = MODALITIES[kind].bind(data.vocabulary)

    x = m.to_model(data.items)
    assert x.is_floating_point() and tuple(x.shape[1:]) == m.model_shape(data.item_shape)
    assert torch.equal(m.from_model(x), data.items)

    stems = [f"{i:03d}" for i in range(len(data))]
    written = m.write(data.items, tmp_path / "out", stems, metadata=[{"seed": i} for i in stems])
    assert len(written) == len(data) and all(p.exists() for p in written)
    again_folder = tmp_path / "again"
    again_folder.mkdir()
    for path in written:  # the files the kind reads back (a kind may write previews beside them)
        shutil.copy(path, again_folder / path.name)
    again = api.open_data(api.data_config(str(again_folder), kind=kind,
                                          **({"labels": "none"} if kind == "image" else options)))
    assert torch.equal(again.items, data.items), "what a kind writes, it reads back the same"

    picture = m.preview(data.items[:4])
    assert isinstance(picture, Image.Image) and min(picture.size) > 0


@pytest.mark.parametrize("kind", sorted(MODALITIES))
def test_check_file_takes_the_kind_s_files_and_refuses_others_in_one_line(kind, tmp_path):
    """What an upload is judged by before it is kept (genforge studio): every file of the tiny
    dataset passes as its own kind; a file with another extension, or whose bytes are not the
    kind's, is refused with one line naming it."""
    from genforge.errors import DataError
    source = TINY[kind][0](tmp_path / "source")
    m = MODALITIES[kind]
    assert set(m.extensions) <= set(m.folder_extensions)
    files = [p for p in Path(source).rglob("*") if p.is_file()]
    assert files and all(api.check_file(p) == kind == api.check_file(p, kind) for p in files)
    for name, data in (("notes.doc", b"text"), (f"fake{m.extensions[0]}", b"\0\1garbage\0")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError) as refused:
            api.check_file(tmp_path / name, kind)
        assert str(refused.value).startswith(name) and "\n" not in str(refused.value)


@pytest.mark.parametrize("kind", sorted(MODALITIES))
def test_default_metrics_run(kind, tmp_path):
    data, _ = open_tiny(kind, tmp_path)
    m = MODALITIES[kind].bind(data.vocabulary)
    if m.default_extractor is None:  # the domain encoder: a tiny one, two steps
        path = train_encoder(data, tmp_path / "encoder.safetensors", steps=2, batch_size=4,
                             device="cpu")
        extractor = load_extractor(str(path))
    else:
        extractor = load_extractor(m.default_extractor)
    n = len(data)
    protocol = registry.Protocol(generated=n, fd_dim=2, fd_resamples=0, kid_subsets=2,
                                 kid_subset_size=n, k_precision_recall=1, k_density_coverage=1)
    result = registry.evaluate(lambda count: data.items[:count], data, extractor,
                               metrics=m.default_metrics, protocol=protocol, training=data)
    assert len(result.records) >= len(m.default_metrics)  # each metric gives one value or more
    assert all(r.extractor and r.generated == n for r in result.records)
    assert all(r.value is None or np.isfinite(r.value) for r in result.records)


PAIRS = [(family, kind) for family in sorted(FAMILIES) for kind in sorted(MODALITIES)]


def test_unsupported_pairs_are_listed_with_their_reasons():
    unsupported = {(f, k): FAMILIES[f].supports(MODALITIES[k]) for f, k in PAIRS
                   if FAMILIES[f].supports(MODALITIES[k])}
    assert set(unsupported) == {("discrete", "image")}
    assert "made of symbols" in unsupported[("discrete", "image")]


@pytest.mark.parametrize("family, kind", PAIRS)
def test_every_family_trains_one_step_and_samples_every_kind_it_supports(family, kind, tmp_path):
    data, options = open_tiny(kind, tmp_path)
    config = api.resolve_config(str(tmp_path / "source"), None, family=family, kind=kind,
                                **{k: v for k, v in TINY_NETWORK.items()
                                   if k in {d.name for d in declarations(
                                       api.config_sections()["gan" if family == "gan" else "network"])}},
                                batch_size=2, device="cpu", **options)
    config = resolve_augment(config, len(data), data.item_shape)
    m = MODALITIES[kind].bind(data.vocabulary)
    shape = m.model_shape(data.item_shape)
    spec = ModelSpec(kind, data.item_shape, (), None if shape == data.item_shape else shape,
                     dict(data.vocabulary))
    reason = FAMILIES[family].supports(MODALITIES[kind])
    if reason is not None:
        with pytest.raises(ConfigError, match="made of symbols"):
            FAMILIES[family].build(spec, config)
        return
    torch.manual_seed(0)
    module = FAMILIES[family].build(spec, config)
    batch = m.to_model(data.items[:2])
    for phase in FAMILIES[family].phases(config, spec):
        loss = phase.loss(module, batch, None, torch.Generator().manual_seed(0))
        assert torch.isfinite(loss)
    exported = FAMILIES[family].exported(module).eval()
    options = vars(sampling_options(FAMILIES[family], spec, {"steps": 2}
                                    if "steps" in {d.name for d in declarations(
                                        FAMILIES[family].sampling)} else {}))
    x = FAMILIES[family].sample(exported, [0, 1], None, item_shape=spec.model_shape,
                                device="cpu", config=config, spec=spec, **options)
    items = m.from_model(x)
    assert tuple(items.shape) == (2, *data.item_shape) and items.dtype == data.items.dtype
