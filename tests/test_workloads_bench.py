"""bench/workloads.py: every row's label says what its recipe trains (time steps, layer widths),
and every recipe resolves to a valid run configuration."""
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import workloads  # noqa: E402
from training.config import RunConfig  # noqa: E402

INPUTS = {"yin_yang": 4, "mnist": 784, "fashion_mnist": 784}
CLASSES = {"yin_yang": 3, "mnist": 10, "fashion_mnist": 10}


@pytest.mark.parametrize("name", list(workloads.WORKLOADS))
def test_label_matches_the_recipe(name):
    w = workloads.WORKLOADS[name]
    cfg = RunConfig.from_dict(workloads.resolved_config(w, 0, None, False))
    steps = re.search(r"T=(\d+)", w.label)
    if steps:
        assert int(steps.group(1)) == cfg.network.time_steps, w.label
    widths = re.search(r"(\d+(?:-\d+)+)", w.label)
    if widths:
        dataset = cfg.data.dataset
        assert widths.group(1) == "-".join(map(str, [INPUTS[dataset], *cfg.network.hidden, CLASSES[dataset]])), w.label
    assert ("conv" in w.label) == (getattr(cfg.network, "kind", "mlp") == "conv"), w.label
    assert w.target is None or 0 < w.target <= 1
