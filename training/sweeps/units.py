"""Readable axis labels and values for sweep reports: units, SI prefixes, human times, escaping.

* :func:`axis_label` — ``"hardware.crossbar.r_row"`` -> ``"row-wire resistance r_row (Ω per
  segment)"``; unknown axes keep their name (with a unit guessed from a suffix such as ``_s``,
  ``_J``, ``_V``, ``_ohm``);
* :func:`format_value` — an axis value in its unit: ``deploy.t = 86400.0`` -> ``"1 day"``,
  ``r_row = 30.0`` -> ``"30 Ω"``, ``g_max = 2.5e-5`` -> ``"25 µS"``, ``adc_bits = "none"`` ->
  ``"ideal (none)"``;
* :func:`human_duration` — seconds as ``"1 s"``, ``"2.5 h"``, ``"1 day"``, ``"1 year"`` (365 d);
* :func:`si` — a number with an SI prefix and unit (``si(2.5e-5, "S") == "25 µS"``);
* :func:`md` — text copied from a study database into Markdown, escaped: Markdown syntax and
  HTML cannot inject links, images, tables or tags into ``report.md``.
"""
from __future__ import annotations

import html
import math
import re

__all__ = ["axis_label", "axis_unit", "format_value", "human_duration", "si", "md", "metric_label"]

#: (label, unit) of known axes; unit "" = dimensionless, "time" = human durations
AXES = {
    "deploy.t": ("time after programming", "time"),
    "deploy.time_steps": ("inference time steps", "steps"),
    "deploy.adc_bits": ("ADC resolution at deployment", "bits"),
    "deploy.mode": ("deployment model", ""),
    "deploy.family": ("device family at deployment", ""),
    "deploy.repeat": ("deployment repeat (independent device draw)", ""),
    "deploy.energy.t_read": ("read pulse duration", "time"),
    "deploy.energy.adc_fom": ("ADC figure of merit", "J"),
    "deploy.energy.adc_sample_rate": ("ADC sample rate", "Hz"),
    "deploy.energy.outputs_per_adc": ("column pairs per ADC", ""),
    "deploy.energy.dac_energy_per_bit": ("DAC energy per bit", "J"),
    "deploy.energy.sense_energy": ("sense energy per read", "J"),
    "deploy.energy.partial_sum_energy": ("partial-sum energy", "J"),
    "deploy.energy.neuron_update_energy": ("neuron update energy", "J"),
    "deploy.energy.neuron_spike_energy": ("neuron spike energy", "J"),
    "deploy.energy.spike_route_energy": ("spike routing energy", "J"),
    "deploy.energy.event_driven": ("event-driven row drive", ""),
    "network.time_steps": ("time steps", "steps"),
    "hardware.family": ("device family", ""),
    "hardware.adc_bits": ("ADC resolution", "bits"),
    "hardware.dac_bits": ("DAC resolution", "bits"),
    "hardware.tile_rows": ("tile rows", "rows"),
    "hardware.tile_cols": ("tile columns", "columns"),
    "hardware.g_min": ("g_min", "S"),
    "hardware.g_max": ("g_max", "S"),
    "hardware.v_read": ("read voltage", "V"),
    "hardware.r_tia": ("TIA feedback resistance", "Ω"),
    "hardware.train_noise": ("training noise scale", ""),
    "hardware.train_t_read": ("training read time", "time"),
    "hardware.crossbar.r_row": ("row-wire resistance r_row", "Ω per segment"),
    "hardware.crossbar.r_col": ("column-wire resistance r_col", "Ω per segment"),
    "hardware.crossbar.r_source": ("driver resistance r_source", "Ω"),
    "hardware.crossbar.r_sense": ("sense resistance r_sense", "Ω"),
    "hardware.crossbar.r_access_on": ("access-transistor on resistance", "Ω"),
    "hardware.device_params.d2d_sigma": ("device-to-device variation σ", "lognormal"),
    "hardware.device_params.c2c_sigma": ("cycle-to-cycle variation σ", ""),
    "hardware.device_params.t_read": ("device read time", "time"),
    "hardware.device_params.g_min": ("device g_min", "S"),
    "hardware.device_params.g_max": ("device g_max", "S"),
    "train.lr": ("learning rate", ""),
    "train.epochs": ("training epochs", "epochs"),
    "data.batch_size": ("batch size", "samples"),
    "seed": ("replicate seed", ""),
}
#: unit suffixes of names (axes or metric columns) without an entry above
SUFFIXES = (("_s", "time"), ("_J", "J"), ("_W", "W"), ("_V", "V"), ("_A", "A"), ("_ohm", "Ω"), ("_S", "S"),
            ("_Hz", "Hz"))
#: units printed with SI prefixes
SI_UNITS = ("S", "V", "A", "J", "W", "Ω", "Hz", "Ω per segment")
PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"),
            (1e-12, "p"), (1e-15, "f"))
TIME_UNITS = ((365 * 86400.0, "year"), (86400.0, "day"), (3600.0, "h"), (60.0, "min"), (1.0, "s"), (1e-3, "ms"),
              (1e-6, "µs"), (1e-9, "ns"))


def _unit(name: str) -> str:
    if name in AXES:
        return AXES[name][1]
    leaf = name.rsplit(".", 1)[-1]
    for suffix, unit in SUFFIXES:
        if leaf.endswith(suffix):
            return unit
    return ""


def axis_unit(name: str) -> str:
    """The unit of axis ``name`` ("" if dimensionless or unknown; "time" for durations)."""
    return _unit(name)


def axis_label(name: str) -> str:
    """A plot/table label of axis ``name`` with its unit (durations need none: their values are
    written as durations)."""
    label = AXES.get(name, (name, ""))[0]
    unit = _unit(name)
    return f"{label} ({unit})" if unit and unit != "time" else label


def metric_label(column: str) -> str:
    """A label of a metric column with its unit (``energy_per_inference_J`` -> ``energy per
    inference (J)``)."""
    unit = _unit(column)
    base = column
    for suffix, _ in SUFFIXES:
        if column.endswith(suffix):
            base = column[: -len(suffix)]
            break
    text = base.replace("_", " ")
    return f"{text} ({'s' if unit == 'time' else unit})" if unit else text


def _number(value: float, digits: int = 3) -> str:
    text = f"{value:.{digits}g}"
    if "e" in text:
        return text
    return text


def si(value: float, unit: str, digits: int = 3) -> str:
    """``value`` with an SI prefix: ``si(2.5e-5, "S") == "25 µS"``, ``si(30, "Ω") == "30 Ω"``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return f"{value} {unit}"
    if value == 0:
        return f"0 {unit}"
    head, _, tail = unit.partition(" ")
    for scale, prefix in PREFIXES:
        if abs(value) >= scale * 0.9995:
            return f"{_number(value / scale, digits)} {prefix}{head}" + (f" {tail}" if tail else "")
    return f"{value:.{digits}g} {unit}"


def human_duration(seconds: float) -> str:
    """Seconds as a human duration: ``1.0`` -> ``"1 s"``, ``86400`` -> ``"1 day"``, ``31536000``
    -> ``"1 year"`` (365 days), ``9000`` -> ``"2.5 h"``, ``0`` -> ``"0 s"``."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds):
        return f"{seconds} s"
    if seconds == 0:
        return "0 s"
    for scale, unit in TIME_UNITS:
        if abs(seconds) >= scale * 0.9995:
            amount = seconds / scale
            text = _number(amount, 3)
            plural = unit in ("year", "day") and text not in ("1", "-1")
            return f"{text} {unit}{'s' if plural else ''}"
    return f"{seconds:.3g} s"


def format_value(name: str, value) -> str:
    """Axis value ``value`` of axis ``name`` in its unit (module docstring)."""
    unit = _unit(name)
    if isinstance(value, str):
        if value.lower() == "none" and unit == "bits":
            return "ideal (none)"
        number = _parse_number(value)
        if number is None:
            return value
        value = number
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if unit == "time":
        return human_duration(float(value))
    if unit in SI_UNITS:
        return si(float(value), unit.split(" ")[0])
    if unit in ("bits", "steps", "rows", "columns", "epochs", "samples") and float(value).is_integer():
        return f"{int(value)} {unit}" if unit != "bits" else f"{int(value)} bit{'s' if int(value) != 1 else ''}"
    return _number(float(value), 4) if isinstance(value, float) else str(value)


def _parse_number(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            value = float(text)
            return value if math.isfinite(value) else None
        except ValueError:
            return None


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~!#])")


def md(value, limit: int = 300) -> str:
    """``value`` as inert Markdown text: HTML-escaped (``<``, ``>``, ``&``), the characters that
    start Markdown constructs (emphasis, code, links, images, table cells, headings)
    backslash-escaped, line breaks as spaces, cut to ``limit`` characters."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = html.escape(text, quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)
