"""The invisible watermark: round trips, the issue's transformations, false positives, limits."""
import io

import numpy as np
import pytest
from PIL import Image

from genforge.errors import ConfigError, DataError, GenforgeError
from genforge.provenance import PAYLOAD_BITS, WatermarkTooSmall, detect, embed, min_size, psnr
from genforge.provenance import watermark as wm

PAYLOAD = 0x9E3779B9  # a model-hash prefix stand-in


def natural(size: int, channels: int, seed: int) -> np.ndarray:
    """A photo-like uint8 image: a smooth gradient, 1/f texture, a bright disc and sensor noise."""
    rng = np.random.default_rng(seed)
    f = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :])
    f[0, 0] = 1.0
    yy, xx = np.mgrid[:size, :size] / size
    disc = (np.hypot(yy - 0.6, xx - 0.35) < 0.2) * 60.0
    out = []
    for c in range(channels):
        texture = np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) / f).real
        texture *= 25.0 / texture.std()
        out.append(70 + 80 * yy + 30 * xx * (c + 1) / channels + texture + disc
                   + rng.normal(0, 2, (size, size)))
    image = np.stack(out, -1) if channels > 1 else out[0]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def images():
    """RGB and grey 256x256 fixtures and their marked copies."""
    rgb, grey = natural(256, 3, seed=1), natural(256, 1, seed=2)
    return {"rgb": (rgb, embed(rgb, PAYLOAD)), "grey": (grey, embed(grey, PAYLOAD))}


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality, subsampling=2)  # 4:2:0
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())))


def half_and_back(image: np.ndarray, resample) -> np.ndarray:
    h, w = image.shape[:2]
    small = Image.fromarray(image).resize((w // 2, h // 2), resample)
    return np.asarray(small.resize((w, h), resample))


def crop_area(image: np.ndarray, where: str) -> np.ndarray:
    """Remove 10% of the area, keeping a square at a corner or in the centre."""
    h = image.shape[0]
    k = int(round(h * 0.9 ** 0.5))
    o = 0 if where == "corner" else (h - k) // 2
    return image[h - k:, h - k:] if where == "corner" else image[o:o + k, o:o + k]


def brightness(image: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(np.rint(image * factor), 0, 255).astype(np.uint8)


TRANSFORMS = {
    "jpeg75": lambda x: jpeg(x, 75),
    "jpeg50": lambda x: jpeg(x, 50),
    "half-bicubic": lambda x: half_and_back(x, Image.BICUBIC),
    "half-lanczos": lambda x: half_and_back(x, Image.LANCZOS),
    "crop-corner": lambda x: crop_area(x, "corner"),
    "crop-centre": lambda x: crop_area(x, "centre"),
    "brighter": lambda x: brightness(x, 1.1),
    "darker": lambda x: brightness(x, 0.9),
}


@pytest.mark.parametrize("kind", ["rgb", "grey"])
def test_round_trip(images, kind):
    original, marked = images[kind]
    assert marked.shape == original.shape and marked.dtype == np.uint8
    found = detect(marked)
    assert found.found and found.payload == PAYLOAD
    assert found.confidence > 1 - 2.0 ** -16 and found.offset == (0, 0)
    assert psnr(original, marked) >= 38.0


@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("kind", ["rgb", "grey"])
def test_transformations_keep_the_payload(images, kind, name):
    attacked = TRANSFORMS[name](images[kind][1])
    found = detect(attacked)
    assert found.found and found.payload == PAYLOAD, (name, found)


def test_crop_moves_the_grid(images):
    h = images["rgb"][1].shape[0]
    shift = h - int(round(h * 0.9 ** 0.5))
    found = detect(crop_area(images["rgb"][1], "corner"))
    assert found.offset == ((-shift) % wm.TILE, (-shift) % wm.TILE)


def test_unmarked_images_are_not_found(images):
    rng = np.random.default_rng(3)
    unmarked = [images["rgb"][0], images["grey"][0], natural(200, 3, seed=4),
                np.full((128, 128, 3), 128, np.uint8),
                rng.integers(0, 256, (96, 160), dtype=np.uint8),
                images["rgb"][0][:70, :90]]
    for image in unmarked:
        result = detect(image)
        assert not result.found and result.payload is None and result.confidence == 0.0


def test_another_key_does_not_find_it(images):
    result = detect(images["rgb"][1], key=12345)
    assert not result.found and result.payload is None
    assert detect(embed(images["rgb"][0], 5, key=12345), key=12345).payload == 5


@pytest.mark.parametrize("shape", [(28, 28), (32, 32, 3), (127, 300, 3), (300, 40, 4)])
def test_too_small_images_raise_a_one_line_error(shape):
    with pytest.raises(WatermarkTooSmall) as error:
        embed(np.zeros(shape, np.uint8), PAYLOAD)
    message = str(error.value)
    assert "\n" not in message and "128x128" in message
    assert "C2PA" in message and "generation log" in message
    assert isinstance(error.value, GenforgeError)
    assert not detect(np.zeros(shape, np.uint8)).found


def test_minimum_size_carries_the_payload():
    assert min_size() == (128, 128)
    # Generated images are smoother than photos: a 28x28 sample upscaled, as genforge's would be.
    sample = natural(28, 1, seed=5)
    small = np.asarray(Image.fromarray(sample).resize((128, 128), Image.LANCZOS))
    assert detect(embed(small, PAYLOAD)).payload == PAYLOAD


def test_alpha_is_untouched_and_colour_is_marked():
    rgb = natural(256, 3, seed=6)
    alpha = np.random.default_rng(7).integers(0, 256, (256, 256), dtype=np.uint8)
    rgba = np.dstack([rgb, alpha])
    marked = embed(rgba, PAYLOAD)
    assert marked.shape == rgba.shape and marked.dtype == np.uint8
    assert np.array_equal(marked[..., 3], alpha)
    assert not np.array_equal(marked[..., :3], rgb)
    assert detect(marked).payload == PAYLOAD


def test_embedding_is_deterministic_and_strength_sets_the_distortion():
    image = natural(128, 3, seed=8)
    assert np.array_equal(embed(image, 1), embed(image, 1))
    assert psnr(image, embed(image, 1, strength=1.0)) > psnr(image, embed(image, 1)) + 5


def test_heavy_texture_gets_the_self_check_boost():
    noise = np.random.default_rng(10).normal(128, 40, (256, 256))  # grass-like: drowns the mark
    image = np.clip(noise, 0, 255).astype(np.uint8)
    plain = wm._add_mark(image, wm._codeword(PAYLOAD), wm.DEFAULT_KEY, wm.DEFAULT_STRENGTH)
    assert detect(plain).bit_errors_corrected > wm.SELF_CHECK_ERRORS
    marked = embed(image, PAYLOAD)
    assert 38.0 <= psnr(image, marked) < 39.0  # 1.2x the strength
    assert detect(jpeg(marked, 50)).payload == PAYLOAD


@pytest.mark.parametrize("call, error", [
    (lambda: embed(np.zeros((99, 99), np.float32), 1), DataError),
    (lambda: embed(np.zeros((99, 99, 2), np.uint8), 1), DataError),
    (lambda: embed(np.zeros((99, 99), np.uint8), 2 ** PAYLOAD_BITS), ConfigError),
    (lambda: embed(np.zeros((99, 99), np.uint8), -1), ConfigError),
    (lambda: embed(np.zeros((99, 99), np.uint8), 1, key=-3), ConfigError),
    (lambda: embed(np.zeros((99, 99), np.uint8), 1, strength=0.0), ConfigError),
    (lambda: psnr(np.zeros((9, 9), np.uint8), np.zeros((9, 8), np.uint8)), DataError),
])
def test_bad_arguments_raise_typed_errors(call, error):
    with pytest.raises(error):
        call()


# ----- golden values: a change here breaks detection of images marked before it ------------------

def test_crc_check_value():
    bits = np.unpackbits(np.frombuffer(b"123456789", np.uint8))
    assert wm._bits_to_int(wm._crc16(bits)) == 0x29B1  # CRC-16/CCITT-FALSE's published check


def test_codeword_and_layout_are_stable():
    code = wm._codeword(0xDEADBEEF)
    assert code.size == wm.N_CODED == 224
    assert np.packbits(code)[:8].tobytes().hex() == GOLDEN_CODEWORD
    rows, cols, bit, phase = wm._layout(wm.DEFAULT_KEY)
    assert rows.size == GOLDEN_FREQUENCIES
    assert (rows[:4].tolist(), cols[:4].tolist()) == GOLDEN_FIRST_FREQUENCIES
    assert np.allclose(np.angle(phase[:2]), GOLDEN_PHASES, atol=1e-9)


def test_viterbi_corrects_coded_bit_errors():
    rng = np.random.default_rng(9)
    code = wm._codeword(PAYLOAD)
    soft = (1.0 - 2.0 * code) + rng.normal(0, 0.3, code.size)
    soft[rng.choice(code.size, 25, replace=False)] *= -1  # 11% of the coded bits flipped
    _, info = wm._viterbi(soft[:, None], PAYLOAD_BITS + wm.CRC_BITS)
    assert wm._bits_to_int(info[:PAYLOAD_BITS]) == PAYLOAD


GOLDEN_CODEWORD = "fcb0644731103531"
GOLDEN_FREQUENCIES = 300
GOLDEN_FIRST_FREQUENCIES = ([7, 59, 61, 62], [12, 10, 13, 10])
GOLDEN_PHASES = [-1.7565467845078964, -1.9363861698137443]
