r"""Data sets that need no download: Yin-Yang, scikit-learn digits, and a local IDX (MNIST) reader.

MNIST and Fashion-MNIST (installed by set-up, read from local files) are in :mod:`training.images`.

Yin-Yang (Kriener, Göltz & Petrovici, arXiv 2102.08211; reference code
``lkriener/yin_yang_data_set``, ``dataset.py``). Points ``(x, y)`` inside the big circle of radius
``r_big`` centred at ``(r_big, r_big)``; two dots of radius ``r_small`` centred at
``(r_big/2, r_big)`` (left) and ``(3 r_big/2, r_big)`` (right). With ``d_L``, ``d_R`` the distances
to the dot centres the class is::

    2  if d_R < r_small or d_L < r_small                                        ("dot")
    1  elif d_R <= r_small or r_small < d_L <= r_big/2 or (y > r_big and d_R > r_big/2)
    0  otherwise

Class-name convention (**1 = yin, 0 = yang, 2 = dot**; see :func:`yin_yang`): the integer codes
are exactly those of the reference code, so samples, labels and published accuracies agree. We
name them after the reference's geometric criterion ``is_yin`` (which returns ``int(is_yin)``):
``YIN_YANG_CLASS_NAMES = ("yang", "yin", "dot")``,
i.e. 1 = "yin" = the upper half away from the right dot plus the ring around the left dot,
0 = "yang" = the lower half away from the left dot plus the ring around the right dot,
2 = "dot". (The reference's ``class_names = ['yin', 'yang', 'dot']`` list names 0 "yin"; only
the names differ, never the integers.)

Sampling, bit-exact with the reference: one ``numpy.random.RandomState(seed)``; for each sample,
draw the goal class with ``randint(3)``, then draw ``(x, y) = rand(2) * 2 r_big`` until the point
lies inside the big circle and has the goal class (rejection sampling balances the classes).
Features are ``(x, y, 1 − x, 1 − y)`` (the mirrored copies let bias-free networks learn),
computed in float64 and returned as float32. Splits: train 5000 (seed 42), validation 1000
(seed 41), test 1000 (seed 40).

Reference accuracies (repository README, 20 runs): ANN 4-30-3 97.6 ± 1.5 %, linear 63.8 ± 1.0 %.
"""
from __future__ import annotations

import gzip
import math
import os
from typing import NamedTuple, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from devices.validation import check_int, check_real, check_seed

__all__ = [
    "Split", "DataSplits", "YIN_YANG_CLASS_NAMES", "yin_yang", "yin_yang_class", "yin_yang_splits",
    "digits", "load_idx", "load_idx_split", "tensor_dataset", "make_loader",
]

#: names of the Yin-Yang integer labels 0, 1, 2 (see the module docstring)
YIN_YANG_CLASS_NAMES = ("yang", "yin", "dot")

_SEED_MAX = 2**32 - 1


class Split(NamedTuple):
    """Features ``X`` (n, features) float32 and integer labels ``y`` (n,) int64."""

    X: torch.Tensor
    y: torch.Tensor


class DataSplits(NamedTuple):
    """Train / validation / test splits; ``validation`` is ``None`` when the set has none."""

    train: Split
    validation: Optional[Split]
    test: Split


# ============================================================================= Yin-Yang
def _check_radii(r_small, r_big) -> tuple[float, float]:
    r_big = check_real("r_big", r_big, low=0.0, low_open=True)
    r_small = check_real("r_small", r_small)
    if not 0.0 < r_small < 0.5 * r_big:
        raise ValueError(f"r_small must be in (0, r_big/2) = (0, {0.5 * r_big:g}), got {r_small:g}")
    return r_small, r_big


def _which_class(x: float, y: float, r_small: float, r_big: float) -> int:
    """Scalar class rule, operation for operation as in the reference ``which_class``."""
    d_right = math.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = math.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    if d_right < r_small or d_left < r_small:
        return 2
    is_yin = (d_right <= r_small) or (r_small < d_left <= 0.5 * r_big) or (y > r_big and d_right > 0.5 * r_big)
    return int(is_yin)


def yin_yang_class(x, y, r_small: float = 0.1, r_big: float = 0.5) -> np.ndarray:
    """Vectorised Yin-Yang class (0 "yang", 1 "yin", 2 "dot") of points ``(x, y)`` (arrays or floats).

    Points outside the big circle also get a class by the same rule; test membership with
    ``hypot(x - r_big, y - r_big) <= r_big``.
    """
    r_small, r_big = _check_radii(r_small, r_big)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    dot = (d_right < r_small) | (d_left < r_small)
    is_yin = (d_right <= r_small) | ((d_left > r_small) & (d_left <= 0.5 * r_big)) | (
        (y > r_big) & (d_right > 0.5 * r_big))
    return np.where(dot, 2, is_yin.astype(np.int64)).astype(np.int64)


def yin_yang(n: int, seed: int, r_small: float = 0.1, r_big: float = 0.5) -> Split:
    """``n`` Yin-Yang samples drawn exactly as the reference implementation does for ``seed``.

    Returns ``Split(X, y)``: ``X`` (n, 4) float32 = (x, y, 1 − x, 1 − y), ``y`` (n,) int64 in {0, 1, 2}.

    Class names — read before building a test set by name: the labels are the reference code's
    integers, ``int(is_yin)`` for the two big regions, so **1 = "yin", 0 = "yang", 2 = "dot"**
    (:data:`YIN_YANG_CLASS_NAMES` ``= ("yang", "yin", "dot")``). The reference's own
    ``class_names = ['yin', 'yang', 'dot']`` list names label 0 "yin" — the opposite. Samples
    selected with that list's names have yin and yang swapped, and a network trained here then
    scores far below chance on those samples instead of ~97 %. Use the integers, or
    :data:`YIN_YANG_CLASS_NAMES`.
    """
    n = check_int("n", n, low=0)
    seed = check_int("seed", seed, low=0, high=_SEED_MAX)
    r_small, r_big = _check_radii(r_small, r_big)
    rng = np.random.RandomState(seed)
    vals = np.empty((n, 4), dtype=np.float64)
    labels = np.empty(n, dtype=np.int64)
    for k in range(n):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * r_big
            if math.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
                continue
            c = _which_class(float(x), float(y), r_small, r_big)
            if c == goal:
                break
        vals[k] = (x, y, 1.0 - x, 1.0 - y)
        labels[k] = c
    return Split(torch.from_numpy(vals.astype(np.float32)), torch.from_numpy(labels))


def yin_yang_splits(r_small: float = 0.1, r_big: float = 0.5) -> DataSplits:
    """The standard splits: train 5000 (seed 42), validation 1000 (seed 41), test 1000 (seed 40)."""
    return DataSplits(train=yin_yang(5000, 42, r_small, r_big),
                      validation=yin_yang(1000, 41, r_small, r_big),
                      test=yin_yang(1000, 40, r_small, r_big))


# ============================================================================= digits
def digits(seed: int, test_fraction: float = 0.2) -> DataSplits:
    """scikit-learn's 8×8 digits (1797 samples, 10 classes), stratified train/test split.

    Features are the 64 pixel values divided by 16 (range [0, 1]) as float32; labels int64.
    The split is ``sklearn.model_selection.train_test_split(stratify=y, random_state=seed)``;
    ``test_fraction`` must leave at least one sample per class on each side. ``validation`` is None.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    seed = check_int("seed", seed, low=0, high=_SEED_MAX)
    test_fraction = check_real("test_fraction", test_fraction)
    data = load_digits()
    n, n_classes = data.data.shape[0], len(data.target_names)
    lo, hi = n_classes / n, 1.0 - n_classes / n
    if not lo <= test_fraction <= hi:
        raise ValueError(f"test_fraction must be in [{lo:.4f}, {hi:.4f}] (at least {n_classes} samples, "
                         f"one per class, in each split of {n}), got {test_fraction:g}")
    X = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_fraction, random_state=seed, stratify=y)
    return DataSplits(train=Split(torch.from_numpy(X_tr), torch.from_numpy(y_tr)), validation=None,
                      test=Split(torch.from_numpy(X_te), torch.from_numpy(y_te)))


# ============================================================================= IDX files
#: IDX type code -> big-endian numpy dtype (LeCun's MNIST format)
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_idx(path) -> np.ndarray:
    """Read an IDX file (MNIST format), plain or gzip-compressed (detected from its content).

    Layout: bytes 0–1 are zero, byte 2 the type code (0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C
    int32, 0x0D float32, 0x0E float64), byte 3 the number of dimensions ``d >= 1``, then ``d``
    big-endian uint32 sizes, then the data in C order, big-endian. Returns an array of that shape
    in native byte order (``uint8`` for MNIST images ``(n, rows, cols)`` and labels ``(n,)``).
    Raises ``ValueError`` naming the file for a bad magic number, unknown type, or a size that
    does not match the header; ``FileNotFoundError`` if it does not exist.
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"IDX file {path!r}: corrupt gzip stream ({exc})") from exc
    if len(raw) < 4:
        raise ValueError(f"IDX file {path!r}: too short for the 4-byte magic number ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"IDX file {path!r}: bad magic number 0x{raw[:4].hex()} (the first two bytes "
                         f"must be zero; MNIST images have 0x00000803, labels 0x00000801)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"IDX file {path!r}: unknown type code 0x{code:02x} in magic number "
                         f"0x{raw[:4].hex()}; allowed {[f'0x{c:02x}' for c in _IDX_TYPES]}")
    if ndim < 1:
        raise ValueError(f"IDX file {path!r}: number of dimensions must be >= 1, got {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX file {path!r}: truncated header (needs {header} bytes for {ndim} dims, "
                         f"has {len(raw)})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"IDX file {path!r}: size {len(raw)} bytes does not match the header "
                         f"(dims {shape}, {dtype.itemsize}-byte items -> {expected} bytes)")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def load_idx_split(images_path, labels_path, *, flatten: bool = True) -> Split:
    """An MNIST-style pair of IDX files as a :class:`Split`.

    Images (uint8, ``(n, rows, cols)``) are scaled to [0, 1] by dividing by 255 and flattened to
    ``(n, rows·cols)`` if ``flatten``; labels ``(n,)`` become int64. The counts must agree.
    """
    images = load_idx(images_path)
    labels = load_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim < 2:
        raise ValueError(f"images file {os.fspath(images_path)!r}: expected ubyte data with >= 2 dims, "
                         f"got {images.dtype} with shape {images.shape}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels file {os.fspath(labels_path)!r}: expected 1-D integer data, "
                         f"got {labels.dtype} with shape {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"images ({images.shape[0]}) and labels ({labels.shape[0]}) must have the same count")
    X = images.astype(np.float32) / 255.0
    if flatten:
        X = X.reshape(X.shape[0], -1)
    return Split(torch.from_numpy(X), torch.from_numpy(labels.astype(np.int64)))


# ============================================================================= torch helpers
def tensor_dataset(split: Split) -> TensorDataset:
    """``torch.utils.data.TensorDataset(X, y)`` of a :class:`Split`."""
    return TensorDataset(split.X, split.y)


def make_loader(split: Split, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                drop_last: bool = False) -> DataLoader:
    """A :class:`torch.utils.data.DataLoader` over ``split``; shuffling uses its own seeded generator."""
    batch_size = check_int("batch_size", batch_size, low=1)
    seed = check_seed("seed", seed)
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(tensor_dataset(split), batch_size=batch_size, shuffle=bool(shuffle),
                      drop_last=bool(drop_last), generator=gen)
