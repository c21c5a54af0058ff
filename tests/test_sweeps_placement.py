"""Sweep workers on GPUs (issue 13) and hashed seeds (issue 15).

GPU placement is a pure function of the worker index and the GPU count, tested without a GPU;
the local pool hands each worker its index and CUDA_VISIBLE_DEVICES entry (tested on the CPU
with made-up GPU ids: nothing touches CUDA); one test uses real GPUs and skips cleanly without.
"""
import os
import sys
import time

import pytest
import torch

from devices.seeding import derive_seed
from training.sweeps import load_spec
from training.sweeps.errors import PlacementError
from training.sweeps.executors import _local_pool, cpu_count, gpu_count, placement
from training.sweeps.spec import derived_seed
from training.sweeps.workers import _WORKER, deployment_hardware, visible_gpu, worker_device, worker_gpu

from test_sweeps import TINY


# ---------------------------------------------------------------------------- placement
def test_worker_gpu_is_round_robin():
    assert [worker_gpu(i, 4) for i in range(6)] == [0, 1, 2, 3, 0, 1]
    assert [worker_device(i, 2) for i in range(3)] == ["cuda:0", "cuda:1", "cuda:0"]
    assert [visible_gpu(i, ["3", "5"]) for i in range(3)] == ["3", "5", "3"]
    for bad in (-1, 1.0, True, "0"):
        with pytest.raises(ValueError, match="index must be an integer >= 0"):
            worker_gpu(bad, 2)
    with pytest.raises(ValueError, match="n_gpus must be an integer >= 1"):
        worker_gpu(0, 0)


def test_placement_defaults_and_refusals(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    cpu = placement({"cpu"}, None, 4)
    assert cpu.workers == cpu_count() and cpu.gpus == () and not cpu.gpu_study
    gpu = placement({"cuda"}, None, 4)  # one worker per GPU by default
    assert gpu.workers == 4 and gpu.gpus == ("0", "1", "2", "3") and not gpu.pin
    assert placement({"auto"}, 3, 2).gpus == ("0", "1")  # 3 workers share 2 GPUs round robin
    assert placement({"auto"}, None, 0).gpus == ()  # auto without GPUs: the CPU, by definition of auto
    assert placement({"cuda:1"}, None, 2).pin  # a config naming its GPU keeps every GPU visible
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert placement({"cuda"}, None, 2).gpus == ("2", "5")
    with pytest.raises(PlacementError, match="torch sees no GPU"):  # nothing falls back to the CPU silently
        placement({"cuda"}, None, 0)
    with pytest.raises(PlacementError, match="has 2 GPU"):
        placement({"cpu", "cuda:3"}, None, 2)
    with pytest.raises(ValueError, match="workers must be an integer"):
        placement({"cpu"}, -1, 0)
    assert not placement({"cuda"}, None, 0, local=False).gpus  # Dask: the workers bring their own GPUs


def test_dask_gpu_studies_ask_for_a_gpu_resource_only_where_workers_declare_one():
    from training.sweeps.executors import _dask_resources

    class Client:
        def __init__(self, resources):
            self.resources = resources

        def scheduler_info(self):
            return {"workers": {f"tcp://w{i}": {"resources": r} for i, r in enumerate(self.resources)}}

    assert _dask_resources(Client([{"GPU": 1}, {"GPU": 1}]), gpu_study=True) == {"resources": {"GPU": 1}}
    assert _dask_resources(Client([{"GPU": 1}, {}]), gpu_study=True) == {}  # a task could never run there
    assert _dask_resources(Client([{"GPU": 1}]), gpu_study=False) == {}


def _worker_place() -> tuple:
    time.sleep(1.0)  # keep this worker busy so that the pool starts the other one
    return _WORKER["index"], os.environ.get("CUDA_VISIBLE_DEVICES"), os.getpid(), "torch.cuda" in sys.modules and \
        torch.cuda.is_initialized()


def test_pool_workers_get_their_own_gpu_without_touching_cuda():
    pool = _local_pool(2, ("7", "9"))
    try:
        results = [f.result(timeout=120) for f in [pool.submit(_worker_place) for _ in range(2)]]
    finally:
        pool.shutdown(wait=True)
    assert len({pid for _, _, pid, _ in results}) == 2
    assert sorted((index, visible) for index, visible, _, _ in results) == [(0, "7"), (1, "9")]
    assert not any(initialised for *_, initialised in results)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_pool_workers_on_real_gpus():
    n = gpu_count()
    place = placement({"cuda"}, None, n)
    pool = _local_pool(place.workers, place.gpus)
    try:
        results = [pool.submit(_cuda_name).result(timeout=300) for _ in range(2 * n)]
    finally:
        pool.shutdown(wait=True)
    assert all(count == 1 for count, _ in results)  # each worker sees exactly its own GPU
    assert {name for _, name in results} <= {torch.cuda.get_device_name(i) for i in range(n)}


def _cuda_name() -> tuple:
    return torch.cuda.device_count(), torch.cuda.get_device_name(0)


# ---------------------------------------------------------------------------- seeds
def test_seeds_are_derived_by_hashing():
    """Run, device and evaluation seeds come from devices.seeding.derive_seed of the point's
    hash path (not from sums of integers)."""
    spec = load_spec(TINY)
    for p in spec.points:
        assert p.train["seed"] == derive_seed(0, "sweeps", p.train_key, "run") % 2 ** 31
        assert p.train["hardware"]["seed"] == derive_seed(0, "sweeps", p.train_key, "device") % 2 ** 20
        assert derived_seed(p.key, "evaluate") == derive_seed(0, "sweeps", p.key, "evaluate") % 2 ** 31
    assert len({p.train["hardware"]["seed"] for p in spec.points}) == spec.trainings


def test_deployment_repeats_are_independent_device_draws():
    """deploy.repeat r is part of the point and programs the weights with model.deploy(t,
    repeat=r) (devices from the hashed path (seed, layer, tile, repeat r)): different repeats
    give different chips (different outputs of the same trained weights), the same repeat the
    same chip, and the device seed itself does not move with the repeat (no additive seeds)."""
    from training.config import RunConfig
    from training.loop import build_model

    spec = load_spec(TINY.replace('"deploy.t" = [1.0, 86400.0]', '"deploy.repeat" = [0, 1]'))
    points = [p for p in spec.points if p.train["hardware"]["family"] == "pcm"]
    assert len({p.key for p in points}) == 2 and {p.deploy["repeat"] for p in points} == {0, 1}
    cfg = RunConfig.from_dict(points[0].train)
    assert {deployment_hardware(cfg.hardware, p.deploy).seed for p in points} == {cfg.hardware.seed}
    x = torch.rand(64, 4, generator=torch.Generator().manual_seed(0))

    def outputs(point):
        model = build_model(cfg, 4, 3)
        model.set_hardware(deployment_hardware(cfg.hardware, point.deploy))
        model.deploy(0.0, repeat=point.deploy["repeat"])
        model.set_mode("noisy")
        torch.manual_seed(0)
        with torch.no_grad():
            return model(x)

    first, again, other = outputs(points[0]), outputs(points[0]), outputs(points[1])
    assert torch.equal(first, again) and not torch.equal(first, other)
