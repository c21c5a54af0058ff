"""Test-suite settings.

* hypothesis runs derandomised so CI is repeatable (same examples every run);
* under pytest-xdist every worker gets an equal share of the cores for torch's intra-op pool
  (2 workers x 2 OpenMP threads on 2 cores would oversubscribe, and spinning OpenMP threads then
  slow small solves down by orders of magnitude).
"""
import os

import torch
from hypothesis import HealthCheck, settings

settings.register_profile("memxbar", derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("memxbar")

_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // _workers))
