"""Image folders: search, channels, resolution, fit, labels, every error, and the tensor/file round trips."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genforge.config import DataConfig
from genforge.errors import ConfigError, DataError
from genforge.modalities.image import IMAGE, find_images
from genforge.modalities.image_pixels import fit_square, to_channels


def save(path: Path, mode: str = "RGB", size: tuple[int, int] = (8, 8), color=None, **kw) -> Path:
    """Write a small image (solid colour, or seeded noise when color is None) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if color is None:
        bands = len(Image.new(mode, (1, 1)).getbands())
        noise = np.random.default_rng(len(str(path))).integers(0, 256, (size[1], size[0], bands), np.uint8)
        img = Image.fromarray(noise[..., 0] if bands == 1 else noise).convert(mode)
    else:
        img = Image.new(mode, size, color)
    img.save(path, **kw)
    return path


def open_folder(root: Path, **kw) -> "genforge.modalities.base.Dataset":  # noqa: F821
    return IMAGE.open(DataConfig(source=str(root), **kw))


def error_of(root: Path, **kw) -> str:
    with pytest.raises(DataError) as info:
        open_folder(root, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- search and decoding -------------------------------------------------------------------------

def test_recursive_search_finds_every_format_in_a_stable_order(tmp_path):
    save(tmp_path / "b.png")
    save(tmp_path / "sub" / "deeper" / "c.JPG")
    save(tmp_path / "sub" / "d.jpeg", format="JPEG")
    save(tmp_path / "a.webp")
    save(tmp_path / "sub" / "e.BMP", format="BMP")
    (tmp_path / "notes.txt").write_text("not an image")
    save(tmp_path / ".hidden.png")                      # macOS-style junk is ignored
    save(tmp_path / "__MACOSX" / "x.png")
    found = [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)]
    assert found == ["a.webp", "b.png", "sub/d.jpeg", "sub/deeper/c.JPG", "sub/e.BMP"]
    data = open_folder(tmp_path, labels="none")
    assert data.items.shape == (5, 3, 8, 8) and data.items.dtype == torch.uint8
    assert data.report.found == 5 and data.report.loaded == 5 and data.labels is None


@pytest.mark.parametrize("modes, expected", [
    (["L", "L"], 1),
    (["L", "1", "I;16"], 1),
    (["L", "RGB"], 3),
    (["RGB", "P"], 3),
    (["RGB", "RGBA"], 4),
    (["L", "LA"], 4),
])
def test_channel_count_follows_the_data(tmp_path, modes, expected):
    for k, mode in enumerate(modes):
        save(tmp_path / f"{k}.png", mode)
    assert open_folder(tmp_path).items.shape[1] == expected


def test_palette_with_transparency_counts_as_alpha(tmp_path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.save(tmp_path / "p.png", transparency=0)
    data = open_folder(tmp_path)
    assert data.items.shape == (1, 4, 8, 8) and int(data.items[0, 3].max()) == 0


def test_requested_channels_convert(tmp_path):
    grey = save(tmp_path / "grey" / "g.png", "L")
    rgb = save(tmp_path / "rgb" / "c.png", "RGB")
    as_rgb = open_folder(tmp_path / "grey", channels=3).items[0]
    assert as_rgb.shape == (3, 8, 8)
    assert torch.equal(as_rgb[0], as_rgb[1]) and torch.equal(as_rgb[1], as_rgb[2])
    assert np.array_equal(as_rgb[0].numpy(), np.asarray(Image.open(grey)))
    as_grey = open_folder(tmp_path / "rgb", channels=1).items[0]
    assert as_grey.shape == (1, 8, 8)
    assert np.array_equal(as_grey[0].numpy(), np.asarray(Image.open(rgb).convert("L")))


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "w.png")
    Image.fromarray(np.full((4, 4), 32896, np.uint16)).save(tmp_path / "m.png")
    data = open_folder(tmp_path)
    assert data.items.shape == (2, 1, 4, 4)
    assert data.items[:, 0, 0, 0].tolist() == [128, 255]  # m.png, w.png


# --- resolution and fit --------------------------------------------------------------------------

def test_default_resolution_is_the_median_shorter_side(tmp_path):
    for side in (10, 20, 30):
        save(tmp_path / f"{side}.png", "L", (side, side * 2))
    assert open_folder(tmp_path).items.shape == (3, 1, 20, 20)


def test_default_resolution_is_capped_at_128(tmp_path):
    save(tmp_path / "big.png", "L", (200, 150), color=7)
    assert open_folder(tmp_path).items.shape == (1, 1, 128, 128)
    assert open_folder(tmp_path, resolution=150).items.shape == (1, 1, 150, 150)


def wide_picture(path: Path) -> Path:
    """40x20: red 10-pixel bands left and right of a white 20x20 square."""
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10] = arr[:, 30:] = (255, 0, 0)
    arr[:, 10:30] = 255
    Image.fromarray(arr).save(path)
    return path


def test_crop_keeps_the_centre(tmp_path):
    wide_picture(tmp_path / "wide.png")
    item = open_folder(tmp_path, resolution=20, fit="crop").items[0]
    assert item.shape == (3, 20, 20)
    assert int(item.min()) == 255                        # the red bands are cut away, nothing black


def test_pad_keeps_everything_and_adds_black_bars(tmp_path):
    wide_picture(tmp_path / "wide.png")
    item = open_folder(tmp_path, resolution=20, fit="pad").items[0]
    assert item.shape == (3, 20, 20)
    assert int(item[:, :5].max()) == 0 and int(item[:, 15:].max()) == 0  # bars above and below
    middle = item[:, 10]
    assert middle[:, 0].tolist()[:1] == [255] and int(middle[1, 0]) < 64   # red at the left edge
    assert middle[:, 10].tolist() == [255, 255, 255]                        # white in the centre


def test_pad_is_transparent_for_rgba():
    img = Image.new("RGBA", (30, 10), (9, 9, 9, 255))
    out = np.asarray(fit_square(img, 10, "pad"))
    assert out.shape == (10, 10, 4) and out[0, 0].tolist() == [0, 0, 0, 0]
    assert out[5, 5].tolist() == [9, 9, 9, 255]


def test_to_channels_drops_alpha_on_request():
    assert to_channels(Image.new("RGBA", (2, 2)), 3).mode == "RGB"
    assert to_channels(Image.new("LA", (2, 2)), 1).mode == "L"


# --- labels --------------------------------------------------------------------------------------

def make_classes(root: Path) -> None:
    save(root / "dogs" / "a.png", "L")
    save(root / "dogs" / "puppies" / "b.png", "L")  # nested: still class "dogs"
    save(root / "cats" / "c.png", "L")


@pytest.mark.parametrize("labels", ["auto", "folders"])
def test_labels_come_from_first_level_folders(tmp_path, labels):
    make_classes(tmp_path)
    data = open_folder(tmp_path, labels=labels)
    assert data.class_names == ["cats", "dogs"]
    assert data.labels.tolist() == [0, 1, 1] and data.labels.dtype == torch.int64


def test_auto_labels_need_every_image_in_one_of_two_folders(tmp_path):
    make_classes(tmp_path)
    save(tmp_path / "loose.png", "L")
    assert open_folder(tmp_path).labels is None
    save(tmp_path / "solo" / "only" / "x.png", "L")
    assert open_folder(tmp_path / "solo").labels is None  # one sub-folder only: no labels
    assert open_folder(tmp_path / "solo", labels="folders").class_names == ["only"]


def test_folder_labels_refuse_images_at_the_root(tmp_path):
    make_classes(tmp_path)
    save(tmp_path / "loose.png", "L")
    message = error_of(tmp_path, labels="folders")
    assert "loose.png" in message and "sub-folder" in message


def test_no_labels_on_request(tmp_path):
    make_classes(tmp_path)
    data = open_folder(tmp_path, labels="none")
    assert data.labels is None and data.class_names == [] and data.num_classes == 0


# --- errors --------------------------------------------------------------------------------------

def test_missing_path(tmp_path):
    message = error_of(tmp_path / "nope")
    assert message == (f"data source '{tmp_path / 'nope'}' not found: expected a folder of images "
                       "or one of: fashion-mnist, fashion-mnist-test, fashion-mnist-sample")


def test_file_instead_of_folder(tmp_path):
    path = save(tmp_path / "one.png")
    assert "is a file, not a folder" in error_of(path)


def test_empty_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    message = error_of(tmp_path)
    assert f"no image files found in {tmp_path}" in message and ".png, .jpg, .jpeg, .webp, .bmp" in message


def test_no_readable_images(tmp_path):
    for k in range(3):
        (tmp_path / f"{k}.png").write_bytes(b"garbage" * 10)
    message = error_of(tmp_path)
    assert message.startswith(f"none of the 3 image files in {tmp_path} could be read (first: 0.png: ")


@pytest.mark.parametrize("side", [12, 20])  # 144 px: Pillow warns; 400 px: Pillow raises
def test_decompression_bombs_are_refused(tmp_path, monkeypatch, side):
    save(tmp_path / "ok.png", "L", (8, 8))
    bomb = save(tmp_path / "bomb.png", "L", (side, side), color=0)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    message = error_of(tmp_path)
    assert str(bomb) in message and "decompression bomb" in message


def truncated_png(path: Path) -> Path:
    save(path, "RGB", (64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_bad_files_are_skipped_and_counted(tmp_path):
    for k in range(18):
        save(tmp_path / f"good{k:02d}.png", "L")
    truncated_png(tmp_path / "cut.png")
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8 this is not a jpeg" * 5)
    data = open_folder(tmp_path)  # 2 of 20 bad: exactly 10%, allowed
    assert len(data) == 18 and data.items.shape[1] == 1  # the truncated RGB file gets no vote
    assert data.report.found == 20 and data.report.loaded == 18
    reasons = dict(data.report.skipped)
    assert set(reasons) == {str(tmp_path / "cut.png"), str(tmp_path / "junk.jpg")}
    assert "truncated" in reasons[str(tmp_path / "cut.png")]
    assert "not an image" in reasons[str(tmp_path / "junk.jpg")]


def test_too_many_bad_files(tmp_path):
    for k in range(3):
        save(tmp_path / f"good{k}.png", "L")
    truncated_png(tmp_path / "cut.png")
    (tmp_path / "junk.jpg").write_bytes(b"nope")
    message = error_of(tmp_path)
    assert message.startswith(f"2 of 5 files in {tmp_path} could not be read (first: cut.png: ")
    assert "refusing to train: more than 10% " in message
    assert len(open_folder(tmp_path, max_bad_fraction=0.5)) == 3


def test_bad_channels_option_is_refused(tmp_path):
    save(tmp_path / "a.png")
    with pytest.raises(ConfigError, match="data.channels"):
        open_folder(tmp_path, channels=2)


# --- tensors, files and previews -----------------------------------------------------------------

def test_model_range_round_trip_is_exact():
    items = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    x = IMAGE.to_model(items)
    assert x.dtype == torch.float32 and x.min() == -1 and x.max() == 1
    assert torch.equal(IMAGE.from_model(x), items)
    assert IMAGE.from_model(torch.tensor([-3.0, 0.0, 5.0])).tolist() == [0, 128, 255]


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_write_then_read_back(tmp_path, channels):
    items = torch.randint(0, 256, (3, channels, 5, 7), generator=torch.Generator().manual_seed(0),
                          dtype=torch.uint8)
    paths = IMAGE.write(items, tmp_path / "out", ["a", "b", "c"])
    assert [p.name for p in paths] == ["a.png", "b.png", "c.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]
    for item, path in zip(items, paths):
        with Image.open(path) as img:
            assert img.mode == {1: "L", 3: "RGB", 4: "RGBA"}[channels]
            back = np.asarray(img)
        assert np.array_equal(back.reshape(5, 7, channels).transpose(2, 0, 1), item.numpy())


def test_preview_grid_size():
    grid = IMAGE.preview(torch.zeros(10, 3, 28, 28, dtype=torch.uint8))
    assert grid.mode == "RGB" and grid.size == (4 * 30 + 2, 3 * 30 + 2)
    assert IMAGE.preview(torch.zeros(10, 1, 8, 8, dtype=torch.uint8), columns=5).size == (52, 22)
    assert IMAGE.preview(torch.zeros(3, 1, 8, 8)).getpixel((5, 5)) == 128  # float: model output
