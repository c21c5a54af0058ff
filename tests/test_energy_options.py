"""Energy figures as plain config values: ``[evaluate] energy`` in run configs and
``deploy.energy.*`` axes / ``[deploy] energy`` in sweep specs (issue 16: the sweeps drive every
option). The energy options change the cost metrics, never the network or its accuracy."""
import math

import pytest

from training.config import EvalConfig, RunConfig
from training.sweeps import load_spec, run
from training.sweeps.spec import SpecError
from training.sweeps.store import Store
from xbar.energy import EnergyConfig

ENERGY_STUDY = """
[study]
name = "energy_axes"

[base]
network = { hidden = [8], time_steps = 5 }
hardware = { mode = "noisy", family = "pcm" }
train = { epochs = 1 }
data = { eval_subset = 200 }

[deploy]
mode = "noisy"
energy = { sense_energy = 2e-12 }

[grid]
"deploy.energy.adc_fom" = [0.0, 1e-14, 2e-14]
"deploy.energy.t_read" = [1e-7, 2e-7]
"""


def test_run_config_energy_round_trips_and_reaches_the_energy_figures():
    config = RunConfig.from_dict({"evaluate": {"energy": {"adc_fom": 5e-15, "event_driven": False}}})
    assert RunConfig.from_dict(config.to_dict()) == config
    figures = config.evaluate.energy_config()
    assert figures == EnergyConfig(adc_fom=5e-15, event_driven=False)
    assert RunConfig().evaluate.energy_config() == EnergyConfig()  # empty table: the cited defaults


@pytest.mark.parametrize("energy, words", [
    ({"adc_fj": 1.0}, "unknown energy option(s) ['adc_fj']"),
    ({"adc_fom": -1e-15}, "adc_fom"),
    ({"t_read": 0.0}, "t_read"),
    ({"outputs_per_adc": 1.5}, "outputs_per_adc"),
    ({"event_driven": "yes"}, "event_driven"),
    ([1e-15], "evaluate.energy must be a table"),
])
def test_bad_energy_options_are_refused_by_name(energy, words):
    with pytest.raises(ValueError, match="evaluate.energy") as info:
        EvalConfig(energy=energy)
    assert words in str(info.value)


def test_bad_energy_axes_and_tables_are_refused_before_anything_runs():
    bad = ENERGY_STUDY.replace('"deploy.energy.t_read" = [1e-7, 2e-7]', '"deploy.energy.t_read" = [1e-7, -1.0]')
    with pytest.raises(SpecError, match="deploy.energy.t_read"):
        load_spec(bad)
    with pytest.raises(SpecError, match="allowed deploy.energy"):
        load_spec(ENERGY_STUDY.replace("deploy.energy.t_read", "deploy.energy.t_reed"))
    with pytest.raises(SpecError, match="sense_energy"):
        load_spec(ENERGY_STUDY.replace("sense_energy = 2e-12", "sense_energy = -2e-12"))


def test_spec_without_energy_options_keeps_its_point_keys():
    """Points that name no energy option have no ``energy`` entry: their keys (and the results
    of existing studies) are what they were before energy options existed."""
    plain = load_spec(ENERGY_STUDY.replace("energy = { sense_energy = 2e-12 }\n", "").split("[grid]")[0])
    assert all("energy" not in p.deploy for p in plain.points)
    spec = load_spec(ENERGY_STUDY)
    assert len(spec.points) == 6 and len({p.key for p in spec.points}) == 6
    assert len({p.train_key for p in spec.points}) == 1  # energy is a deployment option: one training
    assert all(p.deploy["energy"]["sense_energy"] == 2e-12 for p in spec.points)


def test_energy_axes_scale_the_cost_metrics_and_leave_accuracy_alone(tmp_path):
    summary = run(ENERGY_STUDY, tmp_path, workers=0, progress=False)
    assert summary["complete"] and summary["done"] == 6
    spec = load_spec(ENERGY_STUDY)
    with Store(tmp_path, create=False) as store:
        rows = {(r["axes"]["deploy.energy.adc_fom"], r["axes"]["deploy.energy.t_read"]): r["metrics"]
                for r in store.rows({p.key for p in spec.points})}
    assert len({m["accuracy"] for m in rows.values()}) == 1  # the same network, the same devices
    for t_read in (1e-7, 2e-7):
        e0, e1, e2 = (rows[(fom, t_read)]["energy_per_inference_J"] for fom in (0.0, 1e-14, 2e-14))
        # the ADC term is adc_fom * 2^bits per conversion: energy is affine in adc_fom
        assert e1 > e0 > 0 and math.isclose(e2 - e1, e1 - e0, rel_tol=1e-9)
    for fom in (0.0, 1e-14, 2e-14):
        # latency per step = reads per step * (t_read + outputs_per_adc / adc_sample_rate)
        adc_time = 1 / EnergyConfig().adc_sample_rate
        ratio = rows[(fom, 2e-7)]["latency_per_step_s"] / rows[(fom, 1e-7)]["latency_per_step_s"]
        assert math.isclose(ratio, (2e-7 + adc_time) / (1e-7 + adc_time), rel_tol=1e-12)
        # the array energy is t_read * sum(v i): a longer read pulse costs more
        assert rows[(fom, 2e-7)]["energy_per_inference_J"] > rows[(fom, 1e-7)]["energy_per_inference_J"]
    # the report tabulates the costs per value and does not rank energy figures as non-idealities
    from training.sweeps import report

    report(tmp_path)
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| energy per inference (J) | latency per step (s) |" in text
    assert "no non-ideality is ranked" in text and "The non-ideality that costs most" not in text
    assert "the same at every value" in text


def test_checkpoints_written_before_energy_options_existed_still_stand_for_their_model():
    """A study or run resumed after the upgrade: a checkpoint whose config has no
    ``evaluate.energy`` (the neutral default) is accepted by the sweep's loader and by a resumed
    run (``training.checkpoints.load_checkpoint`` compares with ``same_results_config``'s
    normalisation); one of another configuration is still refused (before: every evaluation of a model
    trained before the upgrade failed with "holds another configuration")."""
    import io

    import torch

    from training.checkpoints import same_results_config
    from training.sweeps.errors import CheckpointError
    from training.sweeps.workers import check_checkpoint

    config = RunConfig.from_dict({"network": {"hidden": [4], "time_steps": 3}, "train": {"epochs": 1}})
    old = config.to_dict()
    del old["evaluate"]["energy"]
    other = RunConfig.from_dict({"network": {"hidden": [5], "time_steps": 3}, "train": {"epochs": 1}}).to_dict()
    assert same_results_config(old, config.to_dict()) and not same_results_config(other, config.to_dict())
    changed = config.to_dict()
    changed["evaluate"]["energy"] = {"adc_fom": 1e-15}
    assert not same_results_config(changed, config.to_dict())  # a given energy option is an option

    def checkpoint(cfg: dict) -> bytes:
        buf = io.BytesIO()
        torch.save({"config": cfg, "model": {}, "epoch": 1, "history": []}, buf)
        return buf.getvalue()

    assert check_checkpoint(checkpoint(old), "old", config.to_dict())["config"] == old
    with pytest.raises(CheckpointError, match="another configuration"):
        check_checkpoint(checkpoint(other), "other", config.to_dict())
