"""The shipped study specs (studies/*.toml) parse, validate and expand as their comments say."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from training.sweeps.plan import plan
from training.sweeps.spec import load_spec

STUDIES = Path(__file__).resolve().parents[1] / "studies"


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_study_validates(path):
    spec = load_spec(path)
    assert spec.points and len({p.key for p in spec.points}) == len(spec.points)


def test_quick_study_is_the_main_job_size():
    spec = load_spec(STUDIES / "quick.toml")
    assert 24 <= len(spec.points) <= 100  # "a few dozen points"
    assert {"hardware.family", "hardware.device_params.d2d_sigma", "hardware.crossbar.r_row",
            "deploy.t"} <= set(spec.axes)
    assert len({p.train_key for p in spec.points}) * 3 == len(spec.points)  # drift time reuses the models


def test_quick_study_comments_agree_with_the_readme():
    """The comments say where `make report` writes (results/quick, as the README and Makefile),
    state a measured run time, and cite no issue numbers."""
    comments = "\n".join(line for line in (STUDIES / "quick.toml").read_text().splitlines()
                         if line.lstrip().startswith("#"))
    assert "make report" in comments and "--out results/quick" in comments and "results/quick/report/" in comments
    assert "results/sweeps" not in comments
    assert not re.search(r"issue\s*#?\s*\d+|#\d+", comments, flags=re.IGNORECASE)
    assert re.search(r"Run time, measured: about \d+ minutes on 2 cores", comments)
    makefile = (STUDIES.parent / "Makefile").read_text()
    assert "sweep run studies/quick.toml --out results/quick" in makefile


def test_timesteps_study_compares_training_methods_on_both_datasets():
    spec = load_spec(STUDIES / "timesteps.toml")
    assert {"data.dataset", "train.method", "network.time_steps"} <= set(spec.axes)
    values = {a: {p.axes[a] for p in spec.points} for a in ("data.dataset", "train.method")}
    assert values == {"data.dataset": {"yin_yang", "digits"}, "train.method": {"surrogate", "conversion"}}
    assert "to do: 40 point(s)" in _plan_text(STUDIES / "timesteps.toml")


def _plan_text(path) -> str:
    from training.sweeps.plan import format_plan

    return format_plan(plan(path, None), workers=2, show_points=0)


def test_convolutional_network_fields_are_sweepable_axes():
    spec = load_spec({"study": {"name": "conv-axis"},
                      "base": {"data": {"dataset": "fashion_mnist", "train_subset": 256},
                               "network": {"kind": "conv", "channels": [4, 8], "hidden": [16], "time_steps": 2}},
                      "grid": {"network.channels": [[4, 8], [6, 8]], "network.kernel_size": [3, 5]}})
    assert len({p.train_key for p in spec.points}) == 4
    with pytest.raises(ValueError, match="channels"):  # a conv field on an MLP network names itself
        load_spec({"study": {"name": "bad"}, "base": {}, "grid": {"network.channels": [[4, 8]]}})


def test_presets_impact_rows_change_one_preset_choice_each():
    """Each zipped row of presets_impact.toml is a family's default preset with at most the one
    choice its comment names changed: PCM g_min, RRAM retention beyond data, RRAM digitisation."""
    import devices

    spec = load_spec(STUDIES / "presets_impact.toml")
    assert len(spec.points) == 60 and len({p.train_key for p in spec.points}) == 20
    keys = ("hardware.family", "hardware.preset", "hardware.device_params.g_min",
            "hardware.device_params.retention_beyond_data")
    rows = sorted({tuple(p.axes[k] for k in keys) for p in spec.points}, key=str)
    assert len(rows) == 5
    for family, preset, g_min, _ in rows:
        default = devices.make(family, (1, 1), seed=0, preset=preset)
        if (family, g_min) != ("pcm", 1e-7):  # every row but the old PCM window keeps the preset's g_min
            assert float(default.g_min) == g_min
    assert float(devices.make("pcm", (1, 1), seed=0).g_min) == 2.5e-7  # the corrected default
    for family, preset in (("pcm", "joshi2020_pcm"), ("rram", "wan2022_neurram")):  # rows 1 and 3: the defaults
        assert devices.make(family, (1, 1), seed=0).to_config() == devices.make(family, (1, 1), seed=0,
                                                                                preset=preset).to_config()
    assert ("rram", "wan2022_crosssim", 1e-6, "extend") in rows
    assert ("rram", "wan2022_neurram", 1e-6, "hold") in rows and ("pcm", "joshi2020_pcm", 1e-7, "extend") in rows


def test_plan_estimate_counts_convolutions_subsets_and_conversion():
    """The cost model sees a conv network's convolutions (analytic MAC count), the data subsets,
    and that conversion trains a ReLU twin once per batch (before: the time-steps image study
    was estimated at 495 CPU-s and took about 2.5 h)."""
    from training.sweeps.plan import conv_macs, data_sizes, training_seconds

    conv = {"kind": "conv", "channels": [14, 32], "kernel_size": 3}
    assert conv_macs(conv) == 28 * 28 * 14 * 1 * 9 + 14 * 14 * 32 * 14 * 9
    assert conv_macs({"hidden": [128]}) == 0.0
    assert data_sizes({"dataset": "fashion_mnist", "train_subset": 10000, "eval_subset": 2000}) == (10000, 2000)
    assert data_sizes({"dataset": "yin_yang", "train_subset": 0, "eval_subset": 0}) == (5000, 1000)
    spec = load_spec(STUDIES / "timesteps_images.toml")
    cost = {(p.axes["train.method"], p.axes["network.time_steps"]): training_seconds(p.train) for p in spec.points}
    assert 20 < cost[("surrogate", 4)] < 100  # measured 35 s
    assert cost[("surrogate", 64)] > 10 * cost[("surrogate", 4)]  # BPTT cost grows with T
    assert cost[("conversion", 64)] == cost[("conversion", 4)] < cost[("surrogate", 4)]
    total = plan(STUDIES / "timesteps_images.toml", None)
    assert total["train_cpu_s"] + total["eval_cpu_s"] > 2000  # CPU-s; measured about 8000 on a busy 2-core machine
