"""Seeds derived by hashing their path: one helper for the whole package.

Every random draw of memxbar comes from a ``torch.Generator`` whose seed is derived from a
user seed and the *path* of the thing it seeds, e.g. ``(seed, "layer", 2, "tile", 5, "repeat",
1)``. The path is hashed with numpy's :class:`~numpy.random.SeedSequence` (a well-mixed hash
designed for exactly this), so

* different paths give statistically independent streams (``(repeat 1, tile 0)`` and
  ``(repeat 0, tile 1)`` no longer collide, as they did when seeds were formed by addition);
* the same path always gives the same seed, on every machine and Python version (strings are
  hashed with SHA-256, not Python's salted ``hash``).

Path items are non-negative integers or strings; use string labels to name each level so that
``(seed, "tile", 3)`` and ``(seed, "layer", 3)`` differ.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from .validation import check_seed

__all__ = ["derive_seed", "make_generator"]


def _item(value) -> int:
    if isinstance(value, str):
        return int.from_bytes(hashlib.sha256(value.encode()).digest()[:16], "little")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"seed path items must be integers >= 0 or strings, got {value!r}")
    return int(value)


def derive_seed(seed: int, *path) -> int:
    """A 63-bit seed for ``path`` under the user ``seed`` (module docstring)."""
    seed = check_seed("seed", seed)
    # a tag item keeps the entropy list of (seed,) distinct from an empty path's padding
    entropy = [seed, 0x6D656D78, *(_item(p) for p in path)]
    words = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return (int(words[0]) | (int(words[1]) << 32)) & ((1 << 63) - 1)


def make_generator(seed: int, *path, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`derive_seed` ``(seed, *path)``."""
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(derive_seed(seed, *path))
    return gen
