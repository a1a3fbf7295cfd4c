"""The FID Inception-v3 network against torch-fidelity's, and the inception-v3 extractor's contract.

The real weights are never downloaded: both networks load the same seeded random weights (batch
norm statistics included, so every layer's arithmetic is exercised), saved once per module.
Conv weights are drawn with He scaling so activations keep an O(1) size through all 94 layers and
a mismatch anywhere shows in the 2048-d output. A forward pass costs ~0.2 s per image on one
thread, so every test uses two or three images.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from genforge.errors import ConfigError, DataError
from genforge.metrics.extractors import EXTRACTORS, load_extractor, state_checksum
from genforge.metrics.inception import WEIGHT_FILES, WEIGHTS_ENV, WEIGHTS_URL, FIDInceptionV3

from peers import import_torch_fidelity


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see conftest.py


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    """Seeded random weights for the whole network, with non-trivial batch-norm statistics."""
    gen = torch.Generator().manual_seed(0)
    network = FIDInceptionV3()
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (2 / fan_in) ** 0.5)
            elif isinstance(module, torch.nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(c, generator=gen) * 0.1)
                module.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            elif isinstance(module, torch.nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * 0.01)
    return network.state_dict()


@pytest.fixture(scope="module")
def weights(state, tmp_path_factory) -> str:
    """The random weights as a .pth state dict, like the usual weights files."""
    path = tmp_path_factory.mktemp("weights") / WEIGHT_FILES[1]
    torch.save(state, path)
    return str(path)


@pytest.fixture(scope="module")
def extractor(weights):
    return load_extractor("inception-v3", weights=weights)


def _images(shape, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_features_match_torch_fidelity(weights, extractor):
    """Same weights, same uint8 images, upsampled and downsampled: the same pool3 features."""
    fidelity = import_torch_fidelity()
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    assert fidelity.__version__ == "0.4.0"
    peer = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                       feature_extractor_weights_path=weights)
    for shape, seed in (((2, 3, 45, 61), 1), ((1, 3, 320, 301), 2)):
        images = _images(shape, seed)
        with torch.no_grad():
            (expected,) = peer(images)
        got = extractor.features(images)
        assert got.shape == (shape[0], 2048) and got.dtype == torch.float32
        assert expected.abs().mean() > 0.1  # the random weights give O(1) features, not ~0
        assert (got - expected).abs().max() <= 1e-5 * expected.abs().max()


def test_grey_and_rgba_score_as_their_rgb_equivalents(extractor):
    """Grey repeats into RGB; RGBA is composited over white exactly as Pillow flattens it."""
    grey = _images((2, 1, 33, 40), 3)
    rgba = _images((2, 4, 33, 40), 4)
    rgba[0, 3, :8] = 0      # fully transparent rows: white
    rgba[0, 3, 8:16] = 255  # fully opaque rows: the colour itself
    flattened = torch.stack([
        torch.from_numpy(np.array(Image.alpha_composite(
            Image.new("RGBA", (40, 33), (255, 255, 255, 255)),
            Image.fromarray(image.permute(1, 2, 0).numpy(), "RGBA")).convert("RGB"))).permute(2, 0, 1)
        for image in rgba])
    assert torch.equal(flattened[0, :, :8], torch.full((3, 8, 40), 255, dtype=torch.uint8))
    assert torch.equal(flattened[0, :, 8:16], rgba[0, :3, 8:16])

    mixed = extractor.features(torch.cat([grey.expand(-1, 3, -1, -1), flattened]), batch_size=4)
    assert torch.allclose(extractor.features(grey, batch_size=1), mixed[:2], rtol=1e-5, atol=1e-5)
    assert torch.allclose(extractor.features(rgba), mixed[2:], rtol=1e-5, atol=1e-5)


def test_extractor_contract_and_formats(state, weights, extractor, tmp_path):
    """Registered by importing the extractors module; .pth (with or without BN counters) and
    .safetensors copies of the same weights give the same checksum and features."""
    assert "inception-v3" in EXTRACTORS
    assert (extractor.name, extractor.kind, extractor.dim, extractor.fingerprint) == \
        ("inception-v3", "image", 2048, None)
    plain = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert extractor.checksum == state_checksum(plain)

    save_file(plain, tmp_path / "inception.safetensors")
    torch.save(plain, tmp_path / "no-counters.pth")
    image = _images((1, 3, 24, 24), 5)
    expected = extractor.features(image)
    for path in (tmp_path / "inception.safetensors", tmp_path / "no-counters.pth"):
        other = load_extractor("inception-v3", weights=str(path))
        assert other.checksum == extractor.checksum
        assert torch.equal(other.features(image), expected)

    assert extractor.features(torch.zeros(0, 3, 8, 8, dtype=torch.uint8)).shape == (0, 2048)
    for bad in (torch.zeros(1, 3, 8, 8), torch.zeros(1, 2, 8, 8, dtype=torch.uint8)):
        with pytest.raises(DataError, match="inception-v3 reads uint8"):
            extractor.features(bad)


def test_weights_are_found_in_the_environment_then_the_hub_cache(weights, tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(ConfigError) as info:
        load_extractor("inception-v3")
    message = str(info.value)
    assert "\n" not in message
    for needed in (WEIGHT_FILES[0], WEIGHTS_ENV, str(hub / "checkpoints"), WEIGHTS_URL):
        assert needed in message

    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "absent.pth"))
    with pytest.raises(ConfigError, match=f"absent.pth \\(from \\${WEIGHTS_ENV}\\) not found"):
        load_extractor("inception-v3")
    monkeypatch.setenv(WEIGHTS_ENV, weights)
    assert load_extractor("inception-v3").dim == 2048

    monkeypatch.delenv(WEIGHTS_ENV)
    (hub / "checkpoints").mkdir(parents=True)
    (hub / "checkpoints" / WEIGHT_FILES[0]).symlink_to(weights)
    assert load_extractor("inception-v3").dim == 2048


def test_unusable_weight_files_name_the_file(state, tmp_path):
    cases = {
        "wrong-keys.pth": {"conv.weight": torch.zeros(3)},
        "wrong-shape.pth": {**state, "fc.weight": torch.zeros(10, 2048)},
        "pickle.pth": {"weights": Image.new("L", (1, 1))},  # refused by the safe unpickler
    }
    for name, content in cases.items():
        torch.save(content, tmp_path / name)
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    for name, reason in (("wrong-keys.pth", "missing"), ("wrong-shape.pth", r"wrong shape 1 \(fc.weight\)"),
                         ("pickle.pth", "Unsupported global: GLOBAL PIL.Image.Image"), ("broken.safetensors", "not a readable")):
        path = tmp_path / name
        with pytest.raises(ConfigError, match=reason) as info:
            load_extractor("inception-v3", weights=str(path))
        assert str(path) in str(info.value) and "\n" not in str(info.value)
