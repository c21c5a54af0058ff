"""memxbar training: spiking neurons, encoders, data sets, crossbar-backed layers, the CLI."""
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
