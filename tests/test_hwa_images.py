"""bench/hwa_images.py: the statistics of the headline HWA study, its hardware setting, resumable fine-tuning."""
import dataclasses
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import hwa_images as hwa  # noqa: E402
from training.config import RunConfig  # noqa: E402
from training.data import DataSplits, Split  # noqa: E402
from training.model import SpikingMLP  # noqa: E402


def test_t_interval_matches_tabulated_quantiles():
    # Student t quantiles t_{0.975, dof} (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.2)
    assert hwa.t_quantile(2) == pytest.approx(12.706, abs=1e-3)
    assert hwa.t_quantile(3) == pytest.approx(4.303, abs=1e-3)
    assert hwa.t_quantile(5) == pytest.approx(2.776, abs=1e-3)
    mean, half = hwa.mean_ci([0.80, 0.82, 0.84])
    assert mean == pytest.approx(0.82)
    assert half == pytest.approx(4.303 * 0.02 / math.sqrt(3), rel=1e-3)
    assert math.isnan(hwa.mean_ci([0.5])[1])


def _rows():
    """Two training seeds x two device seeds; HWA = none + 5 points (+-1 by seed)."""
    rows = []
    for seed, shift in ((0, 0.04), (1, 0.06)):
        for dev, jitter in ((0, -0.01), (1, 0.01)):
            for regime, base in (("none", 0.70), ("noise", 0.70 + shift)):
                rows.append({"regime": regime, "family": "pcm", "train_seed": seed, "device_seed": dev,
                             "ideal": 0.90, "accuracy": {1.0: base + jitter + 0.1, 31536000.0: base + jitter}})
    return rows


def test_summary_nested_ci_and_paired_gain():
    entries = hwa.summary(_rows(), (1.0, 31536000.0))
    year = {e["regime"]: e for e in entries if e["t"] == 31536000.0}
    # per-seed means: none 0.70, 0.70; noise 0.74, 0.76 (device jitter cancels within each seed)
    assert year["none"]["mean"] == pytest.approx(0.70) and year["none"]["ci95"] == pytest.approx(0.0, abs=1e-12)
    assert year["noise"]["mean"] == pytest.approx(0.75)
    assert year["noise"]["ci95"] == pytest.approx(12.706 * 0.01414214 / math.sqrt(2), rel=1e-4)
    assert year["noise"]["gain_mean"] == pytest.approx(0.05)
    assert year["noise"]["device_sd"] == pytest.approx(0.01414214, rel=1e-4)
    assert (year["noise"]["n_train"], year["noise"]["n_device"]) == (2, 2)
    text = hwa.table(entries, (1.0, 31536000.0))
    assert "| pcm    | noise" in text and "+5.00 ±" in text
    lines = hwa.verdicts(entries, (1.0, 31536000.0))
    assert any("noise vs none at 1 year: +5.00" in line and "PASS" in line for line in lines)


def test_setting_is_the_cited_hardware():
    s = hwa.SETTINGS["default"]
    hw = s.hardware("rram", "circuit", seed=3)
    assert hw.crossbar == {"r_row": 2.46, "r_col": 2.46}
    # NeuroSim 22 nm: rho = 5.41e-8 Ohm m, aspect ratio 2, one cell = 2F: R = 2 rho / (AR F)
    assert 2 * 5.41e-8 / (2.0 * 22e-9) == pytest.approx(hwa.WIRE_RESISTANCE_22NM, rel=2e-3)
    assert (hw.tile_rows, hw.tile_cols, hw.dac_bits, hw.adc_bits) == (256, 256, 8, 8)
    assert hw.device_params == {"retention_beyond_data": "extend"} and hw.drift_compensation and hw.seed == 3
    hw.probe_device().read(31536000.0)  # RRAM reads a year after programming (refused without the choice)
    assert s.hardware("pcm", "noisy", 0).train_noise == s.train_noise
    assert s.hardware("pcm", "noisy", 0).train_t_read == 0.0


def test_calibrated_setting_trains_on_the_noise_left_at_its_read_time():
    s = hwa.SETTINGS["calibrated_1day"]
    hw = s.hardware("rram", "noisy", seed=1)
    assert (hw.train_t_read, hw.train_noise) == (86400.0, 1.0)
    # the same deployed hardware as the default setting: only the training recipe differs
    d = hwa.SETTINGS["default"].hardware("rram", "noisy", seed=1)
    assert (hw.crossbar, hw.device_params, hw.dac_bits, hw.adc_bits) == (d.crossbar, d.device_params,
                                                                        d.dac_bits, d.adc_bits)


def _tiny():
    torch.manual_seed(0)
    X = torch.rand(64, 6)
    y = (X[:, 0] > X[:, 1]).long()
    splits = DataSplits(Split(X, y), None, Split(X, y))
    cfg = RunConfig.from_dict({"seed": 0, "data": {"dataset": "digits", "batch_size": 16},
                               "network": {"hidden": [8], "time_steps": 3}, "train": {"epochs": 1}})
    return SpikingMLP(6, 2, cfg.network, cfg.hardware), cfg, splits


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("regime", ["noise", "circuit"])
def test_finetune_resumes_bit_identically(tmp_path, regime):
    base, cfg, splits = _tiny()
    setting = dataclasses.replace(hwa.SETTINGS["default"], tile=8, finetune_epochs=2, circuit_refresh=2)
    straight, hist = hwa.finetune(base, cfg, setting, regime, "pcm", tmp_path / "a", splits)
    assert len(hist) == 2 and all(math.isfinite(h["loss"]) for h in hist)
    # an interrupted run: only the first epoch's checkpoint exists, then it resumes
    hwa.finetune(base, cfg, dataclasses.replace(setting, finetune_epochs=2), regime, "pcm", tmp_path / "b", splits)
    (tmp_path / "b" / "checkpoints" / "epoch_0002.pt").unlink()
    resumed, _ = hwa.finetune(base, cfg, setting, regime, "pcm", tmp_path / "b", splits)
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        if torch.is_tensor(p):
            assert torch.equal(p, q), name
    assert not torch.equal(straight.layers[0].weight, base.layers[0].weight)  # it did train
    with pytest.raises(ValueError, match="another fine-tuning"):
        hwa.finetune(base, cfg, dataclasses.replace(setting, finetune_lr=5e-3), regime, "pcm", tmp_path / "b", splits)


@pytest.mark.usefixtures("one_thread")
def test_finetune_resumes_a_checkpoint_written_before_an_option_existed(tmp_path):
    """A fine-tuning checkpoint whose base config predates ``evaluate.energy`` (an option with a
    neutral default) resumes, as a resumed training run does; a real difference is named."""
    base, cfg, splits = _tiny()
    setting = dataclasses.replace(hwa.SETTINGS["default"], tile=8, finetune_epochs=1)
    first, _ = hwa.finetune(base, cfg, setting, "noise", "pcm", tmp_path, splits)
    path = tmp_path / "checkpoints" / "epoch_0001.pt"
    state = torch.load(path, weights_only=True)
    assert state["meta"]["base"]["evaluate"].pop("energy") == {}
    torch.save(state, path)
    again, _ = hwa.finetune(base, cfg, setting, "noise", "pcm", tmp_path, splits)
    assert torch.equal(first.layers[0].weight, again.layers[0].weight)
    state["meta"]["base"]["train"]["lr"] = 0.5
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"another fine-tuning \(differs in base\.train\.lr"):
        hwa.finetune(base, cfg, setting, "noise", "pcm", tmp_path, splits)
