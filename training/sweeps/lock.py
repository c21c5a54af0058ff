"""The exclusive lock of a study directory: one ``xbar sweep run`` at a time per ``--out``.

``DIR/.lock`` is locked with ``fcntl.flock`` (exclusive, non-blocking) for the whole run and
holds the holder's process id, host and start time (JSON) for the message a second run gets.
The kernel releases the lock when the holding process ends in any way (SIGKILL included), so a
killed run never leaves a stale lock behind; the file itself stays (removing a lock file races
with a new holder). Readers (``plan``, ``status``, ``report``) do not lock: the SQLite store is
safe to read while a run writes.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from .errors import StoreError, StudyLocked

LOCK_NAME = ".lock"

__all__ = ["StudyLock", "LOCK_NAME"]


class StudyLock:
    """Context manager holding the exclusive lock of study directory ``out`` (module docstring)."""

    def __init__(self, out):
        self.path = Path(out) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> "StudyLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise StoreError(f"cannot create the lock file {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StudyLocked(f"study directory {self.path.parent} is in use by another `xbar sweep run`"
                                  f"{holder}; wait for it to finish (or stop it) — two runs would train every model "
                                  "twice") from None
            raise StoreError(f"cannot lock {self.path}: {exc.strerror or exc} (file system without flock?)") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "StudyLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    """`` (pid N on HOST since TIME)`` from the lock file, or "" if unreadable."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode())
        return f" (pid {int(info['pid'])} on {str(info['host'])[:64]} since {str(info['started'])[:32]})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""
