"Data loading: exact shapes, provenance, bad names and splits, missing files, damaged files, subsets."
import shutil
import numpy as np
from pathlib import Path
import pytest
import torch
from shortcut_nb.config import ChecksumError
from shortcut_nb.data import DataMissingError, load_images, subset, relabel, EVEN_VS_ODD, VEHICLES_VS_ANIMALS


def test_mnist_exact(shared_data):
    ds = load_images("mnist", "train")
    assert ds.x.shape == (60000, 1, 28, 28) and ds.x.dtype == torch.uint8 and ds.y.dtype == torch.int64
    assert ds.provenance["MNIST/raw/train-images-idx3-ubyte"] == "6bbc9ace898e44ae57da46a324031adb"
    assert torch.bincount(ds.y).tolist()[:2] == [5923, 6742]  # MNIST's published class counts


def test_fashion_and_cifar_sources(shared_data):
    f = load_images("fashion_mnist", "test")
    assert f.x.shape == (10000, 1, 28, 28) and f.classes[7] == "Sneaker"
    c = load_images("cifar10", "test")
    assert c.x.shape == (10000, 3, 32, 32) and "jpeg" in c.source.lower()
    assert torch.bincount(c.y).tolist() == [1000] * 10


@pytest.mark.parametrize("name,split,msg", [("imagenet", "train", "fashion_mnist"), ("mnist", "validation", "train, test"),
                                            ("cifar10", "valid", "train, test")])
def test_bad_names(name, split, msg):
    with pytest.raises(ValueError, match=msg):
        load_images(name, split)


@pytest.mark.parametrize("name,expected", [("mnist", "MNIST/raw/train-images-idx3-ubyte"), ("cifar10", "cifar10_jpeg.npz"),
                                           ("emnist_digits", "emnist-digits-train-images"), ("celeba", "img_align_celeba")])
def test_missing_files_say_what_to_do(tmp_path, name, expected):
    with pytest.raises(DataMissingError) as e:
        load_images(name, root=tmp_path)
    assert expected in str(e.value) and "SHORTCUT_NB_DATA" in str(e.value)


def test_offline_download_fails_clearly(tmp_path, monkeypatch):
    "No root set and no network for torchvision: one clear error, not a traceback from urllib."
    monkeypatch.delenv("SHORTCUT_NB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    import shortcut_nb.data as data
    spec = data.DATASETS["mnist"]
    def offline(root): raise OSError("network unreachable")
    monkeypatch.setattr(spec, "download", offline)
    with pytest.raises(DataMissingError, match="download failed: OSError"):
        load_images("mnist")


def test_damaged_file_is_an_error(shared_data, tmp_path):
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    for f in (shared_data / "MNIST" / "raw").iterdir():
        shutil.copy(f, tmp_path / "MNIST" / "raw" / f.name)
    shutil.copy(shared_data / "MD5SUMS", tmp_path / "MD5SUMS")
    assert len(load_images("mnist", "test", root=tmp_path)) == 10000  # intact copy loads
    p = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    b = bytearray(p.read_bytes()); b[5000] ^= 0xFF; p.write_bytes(bytes(b))
    with pytest.raises(ChecksumError, match="md5"):
        load_images("mnist", "test", root=tmp_path)


def test_subset_and_relabel(shared_data):
    ds = load_images("mnist", "test")
    a, b = subset(ds, 10, seed=3), subset(ds, 10, seed=3)
    assert torch.equal(a.x, b.x) and torch.bincount(a.y).tolist() == [10] * 10
    assert not torch.equal(a.x, subset(ds, 10, seed=4).x)
    eo = relabel(ds, EVEN_VS_ODD)
    assert eo.classes == ["even", "odd"] and len(eo) == len(ds)
    assert torch.equal(eo.y, ds.y % 2)
    c = relabel(load_images("cifar10", "test"), VEHICLES_VS_ANIMALS)
    assert torch.bincount(c.y).tolist() == [4000, 6000]


def test_damaged_array_cache_is_rebuilt(shared_data, tmp_path, monkeypatch):
    "A decoded-array cache cut short (or paired with a mismatched label file) is decoded again, never read as data."
    monkeypatch.setenv("SHORTCUT_NB_CACHE", str(tmp_path / "cache"))
    first = load_images("mnist", "test")
    fx = next((tmp_path / "cache" / "arrays").glob("mnist-test-*-x.npy"))
    fx.write_bytes(fx.read_bytes()[: fx.stat().st_size // 3])          # truncated, as by a copy cut short
    again = load_images("mnist", "test")
    assert torch.equal(again.x, first.x) and torch.equal(again.y, first.y)
    fy = next((tmp_path / "cache" / "arrays").glob("mnist-test-*-y.npy"))
    np.save(fy, np.zeros(5, dtype=np.int64))                              # a stale label file of the wrong length
    assert torch.equal(load_images("mnist", "test").y, first.y)
