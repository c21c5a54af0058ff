"""Where every preset parameter comes from: measured (with its source), derived, a setting, or assumed.

A study's prediction is only as good as the parameters under it. Every preset of every family
carries a table ``{field: Provenance}`` that says, for each parameter value, one of

* ``"measured"`` — taken from a measured device or a fit to measured data; ``source`` names
  the paper / code that published the number;
* ``"derived"`` — computed from other parameters (e.g. an STT window from R_P and TMR);
* ``"setting"`` — an operating choice of the simulated chip (read voltage, pulse width,
  verify tolerances), not a device property;
* ``"assumed"`` — a typical or illustrative value that comes from no single measured device;
  ``source`` says why the value was chosen. Predictions that depend on these rest on
  assumptions.

``Device.to_config()`` carries the table of the device's preset (fields the user overrode are
marked ``"user"``), and :func:`provenance_table` renders it as Markdown (printed in
``notebooks/01_devices.ipynb``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping

__all__ = ["Provenance", "STATUSES", "measured", "derived", "setting", "assumed", "check_provenance",
           "provenance_of", "provenance_table"]

STATUSES = ("measured", "derived", "setting", "assumed", "user")


@dataclass(frozen=True)
class Provenance:
    """Status of one parameter value and the source (or the reason) behind it."""

    status: str
    source: str

    def as_dict(self) -> dict:
        return {"status": self.status, "source": self.source}


def measured(source: str) -> Provenance:
    return Provenance("measured", source)


def derived(source: str) -> Provenance:
    return Provenance("derived", source)


def setting(source: str) -> Provenance:
    return Provenance("setting", source)


def assumed(source: str) -> Provenance:
    return Provenance("assumed", source)


def check_provenance(params, table: Mapping[str, Provenance], name: str) -> None:
    """Every field of ``params`` has exactly one entry (a preset table that misses a field is a
    programming error, caught by the tests)."""
    fields = {f.name for f in dataclasses.fields(params)}
    missing, extra = sorted(fields - set(table)), sorted(set(table) - fields)
    if missing or extra:
        raise RuntimeError(f"provenance table of preset {name!r}: missing {missing}, unknown {extra}")
    bad = sorted(k for k, v in table.items() if not isinstance(v, Provenance) or v.status not in STATUSES[:4])
    if bad:
        raise RuntimeError(f"provenance table of preset {name!r}: bad entries {bad}")


def provenance_of(params, preset_params, table: Mapping[str, Provenance] | None) -> dict[str, dict]:
    """``{field: {"status", "source"}}`` for ``params``: the preset's entry where the value equals the
    preset's, ``"user"`` where it was overridden (or when there is no preset table)."""
    out = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        ref = getattr(preset_params, f.name) if preset_params is not None else None
        if table is not None and preset_params is not None and type(value) is type(ref) and value == ref:
            out[f.name] = table[f.name].as_dict()
        else:
            shown = "no preset" if preset_params is None else f"preset value {ref!r}"
            out[f.name] = {"status": "user", "source": f"set by the user ({shown})"}
    return out


def provenance_table(params, provenance: Mapping[str, Mapping[str, str]]) -> str:
    """A Markdown table ``parameter | value | status | source`` of ``params``."""
    lines = ["| parameter | value | status | source |", "|---|---|---|---|"]
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        text = f"{value:.4g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)
        if isinstance(value, tuple):
            text = "(" + ", ".join(f"{c:.4g}" for c in value) + ")"
        entry = provenance[f.name]
        lines.append(f"| {f.name} | {text} | {entry['status']} | {entry['source']} |")
    return "\n".join(lines)
