"""memxbar training: spiking neurons, encoders, data sets, crossbar-backed layers, the CLI.

Bring your own model: :func:`convert_to_crossbar` and the model-wide helpers (:mod:`training.convert`),
energy per inference (:mod:`training.energy`), NIR export/import (:func:`to_nir`, :func:`from_nir`,
:mod:`training.nir_io`; needs the ``nir`` package). Training API: :func:`train`, :func:`run`,
:func:`accuracy` (:mod:`training.loop`), :func:`deployment_study`, :func:`summarise`
(:mod:`training.evaluate`); the submodules ``training.loop``, ``training.evaluate``, ... are
reachable as attributes after ``import training``.
"""
import importlib

from training.data import (YIN_YANG_CLASS_NAMES, DataSplits, Split, digits, load_idx, load_idx_split,
                           make_loader, tensor_dataset, yin_yang, yin_yang_class, yin_yang_splits)
from training.encoding import direct_encode, latency_encode, rate_encode
from training.neurons import (IF, LIF, IFCell, IFParameters, IFState, LeakyIntegrator, LIFCell, LIFParameters,
                              LIFState, LIParameters, LIState, if_initial_state, if_sequence, if_step,
                              li_initial_state, li_sequence, li_step, lif_initial_state, lif_sequence, lif_step,
                              membrane_max, membrane_mean, spike_count)
from training.surrogate import DERIVATIVES, SMOOTH, SURROGATES, get_surrogate
from training.hardware import HardwareConfig, DeviceNoiseModel, calibrate_noise
from training.crossbar_linear import CrossbarLinear
from training.crossbar_conv import CrossbarConv2d
from training.model import NetworkConfig, SpikingMLP
from training.config import DataConfig, EvalConfig, RunConfig, TrainConfig
from training.convert import (clip_after_step, clip_weights_, convert_to_crossbar, crossbar_layers, deploy,
                              get_hardware, hardware_mode, set_hardware, set_inference_time, set_mode, undeploy,
                              use_hardware)
from training.energy import EnergyMeter, EnergyReport, measure_energy
from xbar.energy import EnergyConfig

#: names loaded on first use (``training.loop`` pulls in the checkpoint and plotting code; NIR is an
#: optional extra)
_LAZY = {"train": "training.loop", "run": "training.loop", "accuracy": "training.loop",
         "resolve_data": "training.loop", "deployment_study": "training.evaluate", "summarise": "training.evaluate",
         "to_nir": "training.nir_io", "from_nir": "training.nir_io", "NIRNetwork": "training.nir_io"}
_SUBMODULES = ("loop", "evaluate", "nir_io", "convert", "energy", "sweeps", "cli", "study", "conversion",
               "checkpoints", "report", "images", "memristive", "conv_model", "noise_model", "threads")


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"training.{name}")
    raise AttributeError(f"module 'training' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
