"""Test-suite settings.

* hypothesis runs derandomised so CI is repeatable (same examples every run);
* under pytest-xdist every worker gets an equal share of the cores for torch's intra-op pool
  (2 workers x 2 OpenMP threads on 2 cores would oversubscribe, and spinning OpenMP threads then
  slow small solves down by orders of magnitude).
"""
import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile("memxbar", derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("memxbar")

_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // _workers))


@pytest.fixture
def one_thread():
    """One intra-op torch thread for a test on tiny tensors (spinning OpenMP threads on a shared
    machine are slow); restores the previous count. Use with ``pytest.mark.usefixtures``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
