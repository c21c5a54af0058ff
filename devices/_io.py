"""Atomic file writes shared by every layer (an interrupted write never leaves a half file)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same directory, flushed
    and fsync'ed, then ``os.replace`` (readers see the old file or the new one, never half).
    The file gets the usual permissions (0666 minus the umask), not mkstemp's private 0600."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path must be a file name, got the directory {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~umask)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (the directory a write would start in)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def check_writable(path: str | os.PathLike, what: str = "output", *, directory: bool = False) -> Path:
    """Check, before any long work, that ``path`` can be written; return it as a ``Path``.

    ``directory=False``: ``path`` is a file to be written by :func:`atomic_write_bytes` (it must
    not be a directory); ``True``: a directory to be created or filled. Missing parents are fine
    (they are created on writing), but the closest existing ancestor must be a directory in
    which a file can actually be created: a probe file is created there and removed at once
    (``os.access`` would say yes to root on a read-only mount). Raises ``ValueError`` naming
    ``what``, the path and the reason (permission denied, read-only file system, a parent that
    is a file, ...).
    """
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{what} must be a path, got {path!r}")
    path = Path(path)
    if not str(path) or "\0" in str(path):
        raise ValueError(f"{what} must be a non-empty path without NUL characters, got {str(path)!r}")
    if directory and path.exists() and not path.is_dir():
        raise ValueError(f"{what} {str(path)!r} exists and is not a directory")
    if not directory and path.is_dir():
        raise ValueError(f"{what} must be a file name, got the directory {str(path)!r}")
    start = _nearest_existing(path if directory else path.parent)
    if not start.is_dir():
        raise ValueError(f"{what} {str(path)!r} cannot be created: {str(start)!r} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(dir=start, prefix=".memxbar-write-test-")
    except OSError as exc:
        raise ValueError(f"{what} {str(path)!r} is not writable: cannot create files in {str(start)!r} "
                         f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)
    return path
