"""Yin-Yang generation (vs an independent re-implementation), digits splits and the IDX reader."""
from __future__ import annotations

import gzip
import math
import struct

import numpy as np
import pytest
import torch

from training.data import (
    YIN_YANG_CLASS_NAMES, digits, load_idx, load_idx_split, make_loader, tensor_dataset, yin_yang,
    yin_yang_class, yin_yang_splits,
)


# ============================================================================= Yin-Yang
def _reference_yin_yang(n, seed, r_small=0.1, r_big=0.5):
    """Straightforward transcription of the published algorithm (Kriener et al., dataset.py)."""
    rs = np.random.RandomState(seed)
    xs, cs = [], []
    for _ in range(n):
        goal = rs.randint(3)
        while True:
            x, y = rs.rand(2) * 2. * r_big
            if np.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
                continue
            d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
            d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
            crit1 = d_right <= r_small
            crit2 = d_left > r_small and d_left <= 0.5 * r_big
            crit3 = y > r_big and d_right > 0.5 * r_big
            c = 2 if (d_right < r_small or d_left < r_small) else int(crit1 or crit2 or crit3)
            if c == goal:
                break
        xs.append([x, y, 1. - x, 1. - y])
        cs.append(c)
    return np.array(xs), np.array(cs)


@pytest.fixture(scope="module")
def splits():
    return yin_yang_splits()


def test_first_samples_match_reference_algorithm():
    X_ref, y_ref = _reference_yin_yang(200, 42)
    s = yin_yang(200, 42)
    assert s.X.dtype == torch.float32 and s.y.dtype == torch.int64
    assert np.array_equal(s.X.numpy(), X_ref.astype(np.float32))
    assert np.array_equal(s.y.numpy(), y_ref)
    X_ref41, y_ref41 = _reference_yin_yang(50, 41, r_small=0.08, r_big=0.6)
    s41 = yin_yang(50, 41, r_small=0.08, r_big=0.6)
    assert np.array_equal(s41.X.numpy(), X_ref41.astype(np.float32)) and np.array_equal(s41.y.numpy(), y_ref41)


def test_splits_shapes_seeds_and_balance(splits):
    assert splits.train.X.shape == (5000, 4) and splits.validation.X.shape == (1000, 4)
    assert splits.test.X.shape == (1000, 4)
    assert torch.equal(splits.validation.X, yin_yang(1000, 41).X)
    assert torch.equal(splits.test.y, yin_yang(1000, 40).y)
    n = 5000
    counts = torch.bincount(splits.train.y, minlength=3).double()
    sigma = math.sqrt(n * (1 / 3) * (2 / 3))
    assert torch.all((counts - n / 3).abs() < 4 * sigma), counts
    assert not torch.equal(splits.train.X[:1000], splits.validation.X)


def test_points_inside_big_circle_and_mirrored_features(splits):
    for s in splits:
        X = s.X.double()
        x, y = X[:, 0], X[:, 1]
        assert torch.all(torch.hypot(x - 0.5, y - 0.5) <= 0.5 + 1e-7)
        assert torch.allclose(X[:, 0] + X[:, 2], torch.ones_like(x), atol=1e-7)
        assert torch.allclose(X[:, 1] + X[:, 3], torch.ones_like(y), atol=1e-7)
        assert torch.all((X >= 0) & (X <= 1))


def test_labels_agree_with_region_rule(splits):
    X, y = splits.train
    c = yin_yang_class(X[:, 0].double().numpy(), X[:, 1].double().numpy())
    # float32 rounding of the coordinates can move a point across a border only within ~1e-7
    assert np.mean(c == y.numpy()) > 0.999


@pytest.mark.parametrize("point,label", [
    ((0.25, 0.5), "dot"), ((0.75, 0.5), "dot"), ((0.31, 0.52), "dot"),
    ((0.8, 0.85), "yin"),    # far right-top: upper half, away from the right dot
    ((0.25, 0.3), "yin"),    # ring around the left dot
    ((0.8, 0.15), "yang"),   # far right-bottom
    ((0.75, 0.7), "yang"),   # ring around the right dot
    ((0.5, 0.05), "yang"), ((0.5, 0.95), "yin"),
])
def test_region_membership_of_known_points(point, label):
    assert YIN_YANG_CLASS_NAMES[int(yin_yang_class(*point))] == label


def test_region_areas_roughly_equal_big_regions():
    # Monte-Carlo areas inside the big circle: the two big regions are mirror images
    rng = np.random.RandomState(0)
    p = rng.rand(200000, 2)
    inside = np.hypot(p[:, 0] - 0.5, p[:, 1] - 0.5) <= 0.5
    c = yin_yang_class(p[inside, 0], p[inside, 1])
    frac = np.bincount(c, minlength=3) / inside.sum()
    dot_area = 2 * math.pi * 0.1 ** 2 / (math.pi * 0.25)
    assert frac[2] == pytest.approx(dot_area, abs=0.004)
    assert frac[0] == pytest.approx(frac[1], abs=0.006)


def test_yin_yang_reproducible_and_seed_dependent():
    a, b, c = yin_yang(100, 7), yin_yang(100, 7), yin_yang(100, 8)
    assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y) and not torch.equal(a.X, c.X)
    assert yin_yang(0, 1).X.shape == (0, 4)


def test_yin_yang_errors():
    with pytest.raises(ValueError, match=r"n must be an integer in \[0"):
        yin_yang(-1, 0)
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 4.29497e\+09\]"):
        yin_yang(10, 2**32)
    with pytest.raises(ValueError, match=r"r_small must be in \(0, r_big/2\)"):
        yin_yang(10, 0, r_small=0.3)
    with pytest.raises(ValueError, match=r"r_big must be in \(0"):
        yin_yang(10, 0, r_big=-1.0)


# ============================================================================= digits
def test_digits_shapes_range_stratification_determinism():
    d = digits(seed=3)
    assert d.validation is None
    assert d.train.X.shape == (1437, 64) and d.test.X.shape == (360, 64)
    assert d.train.X.dtype == torch.float32 and d.train.y.dtype == torch.int64
    allx = torch.cat([d.train.X, d.test.X])
    assert float(allx.min()) == 0.0 and float(allx.max()) == 1.0
    full = torch.cat([d.train.y, d.test.y]).bincount(minlength=10).double()
    test_frac = d.test.y.bincount(minlength=10).double() / full
    assert torch.all((test_frac - 0.2).abs() < 0.01)  # stratified: per-class fraction within 1 sample
    d2, d3 = digits(seed=3), digits(seed=4)
    assert torch.equal(d.train.X, d2.train.X) and torch.equal(d.test.y, d2.test.y)
    assert not torch.equal(d.train.y, d3.train.y)
    assert digits(seed=0, test_fraction=0.5).test.X.shape[0] in (898, 899)


def test_digits_errors():
    with pytest.raises(ValueError, match="test_fraction must be in"):
        digits(0, test_fraction=1.0)
    with pytest.raises(ValueError, match="test_fraction must be in"):
        digits(0, test_fraction=0.001)
    with pytest.raises(ValueError, match="seed"):
        digits(-1)


# ============================================================================= IDX
def _write_idx(path, array, code, compress=False):
    fmt = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
    payload = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += np.ascontiguousarray(array, dtype=fmt).tobytes()
    with (gzip.open if compress else open)(path, "wb") as fh:
        fh.write(payload)
    return payload


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, compress):
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(7, 5, 4)).astype(np.uint8)
    labels = rng.randint(0, 10, size=7).astype(np.uint8)
    suffix = ".gz" if compress else ""
    _write_idx(tmp_path / f"img{suffix}", images, 0x08, compress)
    _write_idx(tmp_path / f"lab{suffix}", labels, 0x08, compress)
    back = load_idx(tmp_path / f"img{suffix}")
    assert back.dtype == np.uint8 and np.array_equal(back, images)
    assert np.array_equal(load_idx(str(tmp_path / f"lab{suffix}")), labels)
    split = load_idx_split(tmp_path / f"img{suffix}", tmp_path / f"lab{suffix}")
    assert split.X.shape == (7, 20) and split.X.dtype == torch.float32 and split.y.dtype == torch.int64
    assert torch.allclose(split.X, torch.from_numpy(images.reshape(7, 20) / 255.0).float())
    assert load_idx_split(tmp_path / f"img{suffix}", tmp_path / f"lab{suffix}", flatten=False).X.shape == (7, 5, 4)


def test_idx_other_types_big_endian(tmp_path):
    a = np.array([[1, -2, 300], [4, 5, -32768]], dtype=np.int16)
    _write_idx(tmp_path / "s", a, 0x0B)
    back = load_idx(tmp_path / "s")
    assert back.dtype == np.int16 and back.dtype.isnative and np.array_equal(back, a)
    f = np.linspace(-1, 1, 6, dtype=np.float32)
    _write_idx(tmp_path / "f", f, 0x0D)
    assert np.array_equal(load_idx(tmp_path / "f"), f)


def test_idx_errors(tmp_path):
    good = _write_idx(tmp_path / "good", np.zeros((3, 2, 2), np.uint8), 0x08)
    (tmp_path / "magic").write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(ValueError, match="bad magic number 0x12340803"):
        load_idx(tmp_path / "magic")
    (tmp_path / "type").write_bytes(b"\x00\x00\x07\x03" + good[4:])
    with pytest.raises(ValueError, match="unknown type code 0x07"):
        load_idx(tmp_path / "type")
    (tmp_path / "trunc").write_bytes(good[:-1])
    with pytest.raises(ValueError, match="does not match the header"):
        load_idx(tmp_path / "trunc")
    (tmp_path / "hdr").write_bytes(good[:9])
    with pytest.raises(ValueError, match="truncated header"):
        load_idx(tmp_path / "hdr")
    (tmp_path / "short").write_bytes(b"\x00")
    with pytest.raises(ValueError, match="too short"):
        load_idx(tmp_path / "short")
    (tmp_path / "badgz").write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(ValueError, match="corrupt gzip"):
        load_idx(tmp_path / "badgz")
    with pytest.raises(FileNotFoundError):
        load_idx(tmp_path / "missing")
    _write_idx(tmp_path / "lab", np.zeros(4, np.uint8), 0x08)
    with pytest.raises(ValueError, match=r"images \(3\) and labels \(4\)"):
        load_idx_split(tmp_path / "good", tmp_path / "lab")


# ============================================================================= loaders
def test_loader_uses_torch_and_is_seeded():
    s = yin_yang(50, 1)
    ds = tensor_dataset(s)
    assert isinstance(ds, torch.utils.data.TensorDataset) and len(ds) == 50
    order = [torch.cat([b[1] for b in make_loader(s, 8, seed=k)]) for k in (0, 0, 1)]
    assert torch.equal(order[0], order[1]) and not torch.equal(order[0], order[2])
    assert sorted(order[0].tolist()) == sorted(s.y.tolist())
    batches = list(make_loader(s, 8, shuffle=False, drop_last=True))
    assert len(batches) == 6 and torch.equal(batches[0][0], s.X[:8])
    with pytest.raises(ValueError, match=r"batch_size must be an integer in \[1"):
        make_loader(s, 0)
