"""Fashion-MNIST: IDX parsing, the bundled sample, finding the full set, and a verified download."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from genforge.config import DataConfig
from genforge.errors import DataError
from genforge.modalities import fashion_mnist as fm
from genforge.modalities.image import IMAGE

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def write_set(folder: Path, n: int = 20, gz: bool = True) -> dict[str, str]:
    """Tiny stand-ins for the four official files; returns their content sha256 by official name."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    hashes = {}
    for images_name, labels_name in fm.SPLITS.values():
        arrays = (rng.integers(0, 256, (n, 28, 28), np.uint8), np.arange(n, dtype=np.uint8) % 10)
        for name, array in zip((images_name, labels_name), arrays):
            payload = fm.encode_idx(array)
            hashes[name] = hashlib.sha256(payload).hexdigest()
            if gz:
                (folder / name).write_bytes(gzip.compress(payload))
            else:
                (folder / name.removesuffix(".gz")).write_bytes(payload)
    return hashes


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No Fashion-MNIST anywhere on the search path; the cache lives in tmp_path."""
    monkeypatch.delenv(fm.DATA_ENV, raising=False)
    monkeypatch.delenv(fm.URL_ENV, raising=False)
    monkeypatch.setattr(fm, "SYSTEM_DIRS", (tmp_path / "no-system-copy",))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "genforge" / "fashion-mnist"


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server over tmp_path/served; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def error_of(**kw) -> str:
    with pytest.raises(DataError) as info:
        IMAGE.open(DataConfig(**kw))
    assert "\n" not in str(info.value)
    return str(info.value)


# --- IDX -----------------------------------------------------------------------------------------

def test_idx_round_trip_and_validation():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = fm.encode_idx(array)
    assert np.array_equal(fm.parse_idx(data, "x"), array)
    with pytest.raises(DataError, match="not an IDX file"):
        fm.parse_idx(b"\x01\x02" + data[2:], "x")
    with pytest.raises(DataError, match=r"header says shape \(2, 3, 4\)"):
        fm.parse_idx(data[:-1], "x")


def test_malformed_files_give_one_line_errors(tmp_path):
    write_set(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03junk"))
    message = error_of(source="fashion-mnist", root=str(tmp_path))
    assert "train-images-idx3-ubyte.gz is a malformed IDX file" in message
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(fm.encode_idx(np.zeros((3, 28, 28)))))
    assert "has 3 images but" in error_of(source="fashion-mnist", root=str(tmp_path))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b broken gzip")
    assert "cannot read" in error_of(source="fashion-mnist", root=str(tmp_path))


# --- the bundled sample --------------------------------------------------------------------------

def test_bundled_sample_is_balanced():
    data = IMAGE.open(DataConfig(source="fashion-mnist-sample"))
    assert data.items.shape == (4000, 1, 28, 28) and data.items.dtype == torch.uint8
    assert data.labels.dtype == torch.int64
    assert torch.bincount(data.labels).tolist() == [400] * 10
    assert data.class_names == list(fm.CLASS_NAMES) and data.class_names[9] == "Ankle boot"
    assert int(data.items.max()) == 255  # real pictures, not zeros
    for name in (*fm.SAMPLE_FILES, "FASHION-MNIST-LICENSE", "README.md"):
        assert (fm.SAMPLE_DIR / name).is_file()
    assert "Zalando SE" in (fm.SAMPLE_DIR / "FASHION-MNIST-LICENSE").read_text(encoding="utf-8")


def test_named_datasets_honour_resolution_channels_and_labels():
    data = IMAGE.open(DataConfig(source="fashion-mnist-sample", resolution=32, channels=3, labels="none"))
    assert data.items.shape == (4000, 3, 32, 32) and data.labels is None and data.class_names == []
    assert torch.equal(data.items[:, 0], data.items[:, 2])
    rgba = IMAGE.open(DataConfig(source="fashion-mnist-sample", channels=4)).items
    assert rgba.shape == (4000, 4, 28, 28) and int(rgba[:, 3].min()) == 255


# --- finding the full set ------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_explicit_root(tmp_path, nowhere, gz):
    write_set(tmp_path / "fm", gz=gz)
    data = IMAGE.open(DataConfig(source="fashion-mnist", root=str(tmp_path / "fm")))
    assert data.items.shape == (20, 1, 28, 28) and data.labels.tolist() == [k % 10 for k in range(20)]
    assert data.source == "fashion-mnist" and data.report.loaded == 20


def test_explicit_root_without_the_files(tmp_path, nowhere):
    message = error_of(source="fashion-mnist", root=str(tmp_path))
    assert message.startswith(f"Fashion-MNIST not found in data.root {tmp_path}")
    assert "train-images-idx3-ubyte.gz" in message


def test_genforge_data_env(tmp_path, nowhere, monkeypatch):
    write_set(tmp_path / "datasets" / "fashion-mnist", n=30)
    monkeypatch.setenv("GENFORGE_DATA", str(tmp_path / "datasets"))
    assert len(IMAGE.open(DataConfig(source="fashion-mnist", download=False))) == 30


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_package(monkeypatch):
    monkeypatch.delenv(fm.DATA_ENV, raising=False)
    data = IMAGE.open(DataConfig(source="fashion-mnist", download=False))
    assert data.items.shape == (60000, 1, 28, 28)
    assert torch.bincount(data.labels).tolist() == [6000] * 10
    test = IMAGE.open(DataConfig(source="fashion-mnist-test", download=False))
    assert test.items.shape == (10000, 1, 28, 28) and test.fingerprint != data.fingerprint


def test_a_misspelt_name_is_not_a_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert error_of(source="fashion-mnst") == (
        "data source 'fashion-mnst' not found: expected a folder of images or one of: "
        "fashion-mnist, fashion-mnist-test, fashion-mnist-sample")


# --- downloading ---------------------------------------------------------------------------------

def test_download_is_verified_and_cached(nowhere, server, monkeypatch):
    folder, url = server
    monkeypatch.setattr(fm, "SHA256", write_set(folder, n=12))
    monkeypatch.setenv(fm.URL_ENV, url)
    data = IMAGE.open(DataConfig(source="fashion-mnist"))
    assert len(data) == 12
    assert sorted(p.name for p in nowhere.iterdir()) == sorted(fm.SHA256)  # no temp files left
    for p in folder.iterdir():  # the next open uses the cache, not the server
        p.unlink()
    assert len(IMAGE.open(DataConfig(source="fashion-mnist"))) == 12


def test_download_with_a_wrong_checksum_keeps_nothing(nowhere, server, monkeypatch):
    folder, url = server
    hashes = write_set(folder, n=12)
    hashes["train-images-idx3-ubyte.gz"] = "0" * 64
    monkeypatch.setattr(fm, "SHA256", hashes)
    monkeypatch.setenv(fm.URL_ENV, url)
    message = error_of(source="fashion-mnist")
    assert message.startswith(f"checksum mismatch for {url}train-images-idx3-ubyte.gz")
    assert not (nowhere / "train-images-idx3-ubyte.gz").exists()
    assert not [p for p in nowhere.iterdir() if p.name.endswith(".part")]


def test_offline_says_where_it_looked_and_how_to_install(nowhere, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(fm.URL_ENV, f"http://127.0.0.1:{port}/")
    message = error_of(source="fashion-mnist")
    assert "download from" in message and "apt-get install dataset-fashion-mnist" in message
    assert str(nowhere) in message and "GENFORGE_DATA" in message
    assert "downloading is off" in error_of(source="fashion-mnist", download=False)
