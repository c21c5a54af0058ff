r"""Bring your own model: one call puts any torch model on crossbars, and model-wide hardware helpers.

:func:`convert_to_crossbar` (aihwkit's ``convert_to_analog``, simpler) returns the crossbar-backed
twin of any ``nn.Module``: every ``nn.Linear`` becomes a :class:`~training.CrossbarLinear` and every
``nn.Conv2d`` a :class:`~training.CrossbarConv2d` (subclasses included) with the same weights and
the given :class:`~training.HardwareConfig`; everything else — snnTorch ``Leaky``, Norse
``LIFCell``, BatchNorm, pooling, the user's own modules and ``forward`` — is left as it is and keeps
working, because a crossbar layer takes the same inputs (any leading shape) and returns the same
outputs as the layer it replaces::

    model = convert_to_crossbar(net, HardwareConfig(mode="noisy", family="pcm"),
                                overrides={"fc2": {"adc_bits": 6}, nn.Conv2d: {"tile_rows": 64}})
    clip_after_step(optimizer, model)          # one extra line in a plain training loop
    deploy(model, t=0.0)                       # program the chips once
    set_inference_time(model, 86400.0)         # read them one day later
    with hardware_mode(model, "circuit"):      # exact IR drop; the previous mode comes back after
        logits = model(x)

Layer ids (the device seed paths, :mod:`devices.seeding`) are the layers' order in
``model.named_modules()``, so two layers sharing a config draw different devices; a module that
appears twice in the model (weight tying) becomes one crossbar layer used twice.

Weights and the conductance window. A crossbar holds weights in ``[-w_max, w_max]`` (bias rows in
``[-w_max x_max, w_max x_max]``); ``w_max`` chooses how: ``None`` (default) keeps each layer's
``hardware.w_max`` and raises ``ValueError`` if a layer's weights exceed it (nothing is clipped
silently); ``"fit"`` sets each layer's ``w_max`` to its largest weight magnitude (the whole
conductance window is used, like aihwkit's weight scaling; the output stays in weight units);
a number sets it for every layer. Per-layer ``overrides`` map a qualified module name (an
``fnmatch`` pattern, e.g. ``"encoder.*"``) or a module type (matched with ``isinstance`` against
the *original* layer) to a ``HardwareConfig`` or a dict of field changes; type overrides apply
first, then name overrides.

Not converted (left as they are, listed in the docstring so nothing is dropped silently):
the projections inside ``nn.MultiheadAttention`` (it reads their weights directly, never calls
them), grouped or dilated convolutions and non-zero padding modes (:func:`convert_to_crossbar`
raises for those, naming the layer), and layers a user's ``forward`` bypasses by reading
``.weight`` directly (they would compute digitally).

State dicts: a plain ``nn.Linear`` state dict loads strictly into ``CrossbarLinear`` (the tracked
ADC range and the generators' state are optional); the converted ``CrossbarConv2d`` layers also
accept a plain ``nn.Conv2d`` state dict (``weight (out, in, kh, kw)``, ``bias``), so
``converted.load_state_dict(original.state_dict())`` works for the whole model.
"""
from __future__ import annotations

import contextlib
import copy
import fnmatch

import torch
from torch import nn

from devices.validation import check_choice, check_int, check_real, check_time

from .crossbar_conv import CrossbarConv2d
from .crossbar_linear import CrossbarLinear
from .hardware import MODES, HardwareConfig

__all__ = ["convert_to_crossbar", "crossbar_layers", "deploy", "set_inference_time", "undeploy", "set_mode",
           "hardware_mode", "get_hardware", "set_hardware", "use_hardware", "clip_weights_", "clip_after_step",
           "CROSSBAR_LAYERS"]

#: the crossbar-backed layer types the model-wide helpers act on
CROSSBAR_LAYERS = (CrossbarLinear, CrossbarConv2d)
W_MAX_CHOICES = ("None", "'fit'", "a number > 0")


# ============================================================================= conversion
def _hardware(value, what: str) -> HardwareConfig:
    if isinstance(value, HardwareConfig):
        return value
    if isinstance(value, dict):
        return HardwareConfig.from_dict(value)
    raise ValueError(f"{what} must be a HardwareConfig or a dict of its fields, got {type(value).__name__}")


def _apply_override(hw: HardwareConfig, value, what: str) -> HardwareConfig:
    if isinstance(value, HardwareConfig):
        return value
    if isinstance(value, dict):
        return HardwareConfig.from_dict({**hw.to_dict(), **value})
    raise ValueError(f"override {what} must be a HardwareConfig or a dict of field changes, got {type(value).__name__}")


def _check_overrides(overrides) -> list:
    if overrides is None:
        return []
    if not isinstance(overrides, dict):
        raise ValueError(f"overrides must be a dict {{module name pattern or module type: hardware}}, "
                         f"got {type(overrides).__name__}")
    for key in overrides:
        if not (isinstance(key, str) or (isinstance(key, type) and issubclass(key, nn.Module))):
            raise ValueError(f"overrides keys must be module names (fnmatch patterns) or nn.Module types, got {key!r}")
    return list(overrides.items())


def _layer_hardware(name: str, module: nn.Module, base: HardwareConfig, overrides: list) -> HardwareConfig:
    hw = base
    for key, value in overrides:  # types first, then names (more specific)
        if isinstance(key, type) and isinstance(module, key):
            hw = _apply_override(hw, value, f"for {key.__name__}")
    for key, value in overrides:
        if isinstance(key, str) and fnmatch.fnmatchcase(name, key):
            hw = _apply_override(hw, value, f"{key!r}")
    return hw


def _weight_bound(weight: torch.Tensor, bias: torch.Tensor | None, x_max: float) -> float:
    bound = float(weight.detach().abs().max()) if weight.numel() else 0.0
    if bias is not None and bias.numel():
        bound = max(bound, float(bias.detach().abs().max()) / x_max)
    return bound


def _fit_w_max(name: str, hw: HardwareConfig, weight, bias, w_max) -> HardwareConfig:
    bound = _weight_bound(weight, bias, hw.x_max)
    if w_max is None:
        if bound > hw.w_max * (1 + 1e-6):
            raise ValueError(f"layer {name!r}: weights up to {bound:.4g} exceed hardware.w_max = {hw.w_max:g} (bias "
                             f"rows up to w_max·x_max) and would be clipped; pass w_max='fit' (each layer's window "
                             f"fitted to its weights) or a larger w_max")
        return hw
    if w_max == "fit":
        return hw.replace(w_max=bound) if bound > 0 else hw
    return hw.replace(w_max=w_max)


def _conv_padding(name: str, conv: nn.Conv2d) -> tuple[int, int]:
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            return 0, 0
        if any(k % 2 == 0 for k in conv.kernel_size) or any(s != 1 for s in conv.stride):
            raise ValueError(f"layer {name!r}: padding='same' converts only for odd kernels with stride 1, got "
                             f"kernel {conv.kernel_size}, stride {conv.stride}")
        return conv.kernel_size[0] // 2, conv.kernel_size[1] // 2
    return tuple(conv.padding)


def _new_linear(name, child: nn.Linear, hw, layer_id) -> CrossbarLinear:
    layer = CrossbarLinear(child.in_features, child.out_features, bias=child.bias is not None, hardware=hw,
                           layer_id=layer_id, dtype=child.weight.dtype, device=child.weight.device)
    with torch.no_grad():
        layer.weight.copy_(child.weight)
        if child.bias is not None:
            layer.bias.copy_(child.bias)
    return layer


def _new_conv(name, child: nn.Conv2d, hw, layer_id) -> CrossbarConv2d:
    if child.groups != 1 or tuple(child.dilation) != (1, 1) or child.padding_mode != "zeros":
        raise ValueError(f"layer {name!r}: CrossbarConv2d maps convolutions with groups=1, dilation=1 and "
                         f"padding_mode='zeros', got groups={child.groups}, dilation={child.dilation}, "
                         f"padding_mode={child.padding_mode!r}")
    layer = CrossbarConv2d(child.in_channels, child.out_channels, child.kernel_size, stride=child.stride,
                           padding=_conv_padding(name, child), bias=child.bias is not None, hardware=hw,
                           layer_id=layer_id, dtype=child.weight.dtype, device=child.weight.device)
    with torch.no_grad():
        layer.linear.weight.copy_(child.weight.reshape(child.out_channels, -1))  # unfold order (C, kh, kw)
        if child.bias is not None:
            layer.linear.bias.copy_(child.bias)
    return layer


def _skipped(parent: nn.Module) -> bool:
    """Children that must stay plain layers (module docstring)."""
    return isinstance(parent, nn.MultiheadAttention)


def convert_to_crossbar(model: nn.Module, hardware: HardwareConfig | dict | None = None, *, overrides=None,
                        w_max=None, inplace: bool = False) -> nn.Module:
    """The crossbar-backed twin of ``model`` (module docstring).

    Args:
        model: any ``nn.Module`` (a bare ``nn.Linear`` / ``nn.Conv2d`` is converted itself).
        hardware: the :class:`HardwareConfig` (or its dict) of every converted layer (default:
            ``HardwareConfig()``, ideal PCM 128x128 tiles).
        overrides: per-layer hardware by qualified name pattern or module type.
        w_max: None, "fit" or a number (module docstring).
        inplace: convert ``model`` itself; by default a deep copy is converted and ``model`` is
            left unchanged.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    base = HardwareConfig() if hardware is None else _hardware(hardware, "hardware")
    rules = _check_overrides(overrides)
    if not (w_max is None or w_max == "fit"):
        w_max = check_real(f"w_max ({', '.join(W_MAX_CHOICES)})", w_max, low=0.0, low_open=True)
    if not isinstance(inplace, bool):
        raise ValueError(f"inplace must be a bool, got {inplace!r}")
    model = model if inplace else copy.deepcopy(model)
    convertible = (nn.Linear, nn.Conv2d)
    if isinstance(model, convertible):
        return _convert_one("(the model itself)", model, base, rules, w_max, 0)
    skip = {id(c) for m in model.modules() if _skipped(m) for c in m.modules() if c is not m}
    order = {}  # layer ids in named_modules() order (depth first), each module once
    for name, module in model.named_modules():
        if isinstance(module, convertible) and id(module) not in skip and id(module) not in order:
            order[id(module)] = (name, len(order))
    made: dict[int, nn.Module] = {}
    for parent in list(model.modules()):
        if id(parent) in skip or _skipped(parent) or isinstance(parent, CROSSBAR_LAYERS):
            continue
        for child_name, child in list(parent.named_children()):
            if id(child) not in order:
                continue
            if id(child) not in made:
                name, layer_id = order[id(child)]
                made[id(child)] = _convert_one(name, child, base, rules, w_max, layer_id)
            setattr(parent, child_name, made[id(child)])
    return model


def _convert_one(name: str, module: nn.Module, base: HardwareConfig, rules: list, w_max, layer_id: int) -> nn.Module:
    hw = _fit_w_max(name, _layer_hardware(name, module, base, rules), module.weight, module.bias, w_max)
    return (_new_linear if isinstance(module, nn.Linear) else _new_conv)(name, module, hw, layer_id)


# ============================================================================= model-wide helpers
def crossbar_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(qualified name, layer)`` of every crossbar layer of ``model`` (``CrossbarLinear`` and
    ``CrossbarConv2d``; the inner linear of a conv layer is not listed separately), each once."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    out, inner = [], set()
    for name, module in model.named_modules():
        if isinstance(module, CrossbarConv2d):
            inner.add(id(module.linear))
        if isinstance(module, CROSSBAR_LAYERS) and id(module) not in inner:
            out.append((name, module))
    return out


def _layers(model) -> list[nn.Module]:
    layers = [layer for _, layer in crossbar_layers(model)]
    if not layers:
        raise ValueError("the model has no crossbar layers: convert it first with convert_to_crossbar(model, hardware)")
    return layers


def deploy(model: nn.Module, t: float = 0.0, *, repeat: int = 0) -> list:
    """Program every crossbar layer's weights into devices once (one array per tile, device seeds
    hashed from ``(hardware.seed, layer, tile, repeat)``) and read them ``t`` s later; returns the
    layers' programming results. Weights changed afterwards need another ``deploy``."""
    t = check_time("t (inference time)", t)
    repeat = check_int("repeat", repeat, low=0)
    return [layer.deploy(t, repeat=repeat) for layer in _layers(model)]


def set_inference_time(model: nn.Module, t: float) -> None:
    """Read every deployed layer's devices ``t`` s after programming (drift, read noise)."""
    t = check_time("t (inference time)", t)
    layers = _layers(model)
    missing = [name for name, layer in crossbar_layers(model) if not layer.deployed]
    if missing:
        raise ValueError(f"layers {missing} are not deployed: call deploy(model) first")
    for layer in layers:
        layer.set_inference_time(t)


def undeploy(model: nn.Module) -> None:
    """Forget every layer's programmed devices (back to the training-time model)."""
    for layer in _layers(model):
        layer.undeploy()


def set_mode(model: nn.Module, mode: str) -> None:
    """Set every crossbar layer's forward mode (``"ideal"``, ``"noisy"``, ``"circuit"``)."""
    check_choice("mode", mode, MODES)
    for layer in _layers(model):
        layer.set_mode(mode)


def get_hardware(model: nn.Module) -> dict[str, HardwareConfig]:
    """``{qualified name: HardwareConfig}`` of every crossbar layer."""
    return {name: layer.hardware for name, layer in crossbar_layers(model)}


def set_hardware(model: nn.Module, hardware) -> None:
    """Set the layers' hardware: one ``HardwareConfig`` (or dict) for all, or ``{name: config}``
    as returned by :func:`get_hardware` (every name must be a crossbar layer). Deployed devices
    are kept unless the chip itself (device, array, programming options) changes."""
    layers = dict(crossbar_layers(model))
    if not layers:
        _layers(model)
    if isinstance(hardware, dict) and hardware and all(k in layers for k in hardware):
        for name, hw in hardware.items():
            layers[name].set_hardware(_hardware(hw, f"hardware[{name!r}]"))
        return
    hw = _hardware(hardware, "hardware")
    for layer in layers.values():
        layer.set_hardware(hw)


@contextlib.contextmanager
def use_hardware(model: nn.Module, hardware=None, **changes):
    """Temporarily change the layers' hardware: ``use_hardware(model, hw)`` sets ``hw`` on every
    layer, ``use_hardware(model, adc_bits=6)`` changes fields of each layer's own config; the
    previous configs come back on exit (deployments kept when only run-time options change)."""
    before = get_hardware(model)
    if not before:
        _layers(model)
    if hardware is not None and changes:
        raise ValueError("pass either a hardware config or field changes to use_hardware, not both")
    try:
        if hardware is not None:
            set_hardware(model, hardware)
        else:
            for name, layer in crossbar_layers(model):
                layer.set_hardware(HardwareConfig.from_dict({**before[name].to_dict(), **changes}))
        yield model
    finally:
        set_hardware(model, before)


@contextlib.contextmanager
def hardware_mode(model: nn.Module, mode: str):
    """Run in forward mode ``mode`` inside the block; every layer's previous mode (and backward
    option) comes back afterwards, deployments untouched."""
    check_choice("mode", mode, MODES)
    before = get_hardware(model)
    set_mode(model, mode)
    try:
        yield model
    finally:
        set_hardware(model, before)


def clip_weights_(model: nn.Module) -> None:
    """Clip every crossbar layer's master weights to what its pairs can hold."""
    for layer in _layers(model):
        layer.clip_weights_()


def clip_after_step(optimizer: torch.optim.Optimizer, model: nn.Module):
    """Clip ``model``'s crossbar weights after every ``optimizer.step()`` (a step post-hook);
    returns the hook handle (``handle.remove()`` stops it)."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    _layers(model)
    return optimizer.register_step_post_hook(lambda opt, args, kwargs: clip_weights_(model))
