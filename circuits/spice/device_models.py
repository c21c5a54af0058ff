"""SPICE subcircuits of memxbar's stateful device models.

Pattern (as in the Yakopcic, Biolek and memdiode SPICE models): the internal state lives on a
1 F capacitor node, charged by a behavioural current source equal to the state's time
derivative, so ``d V(state)/dt = f(state, V)``; a second behavioural source carries the device
current. Both read only validated node names and formatted numbers (see
:mod:`circuits.spice.netlist`).

RRAM (Stanford–PKU gap model, :mod:`devices.rram_physics`), pins ``te be``, state node
``gap`` in nanometres (volts on the capacitor = gap/nm)::

    I(te→be) = I0·s·exp(-g/g0)·sinh(V/V0)
    x        = γ_eff·a0·V/(t_ox·kB·T/q)
    dg/dt    = -v0·r·[exp(x − Ea/(kB·T/q)) − exp(−x − Ea_r/(kB·T/q))]   (rate_law "generation_recombination")
    dg/dt    = -v0·r·exp(-Ea/(kB·T/q))·sinh(x)                          (rate_law "single_sinh")
    T        = T_amb + |V·I|·R_th,   γ = γ0 − β·(g/1 nm)³,   γ_eff = γ·u(γ|V|/t_ox − F_min) (γ if F_min = 0)

with the rate gated by ``u(g − gap_min)`` when the gap shrinks and ``u(gap_max − g)`` when it
grows (the clamp of the memxbar integrator). ``s`` and ``r`` are the device's D2D factors.
"""
from __future__ import annotations

import math

from devices.rram import RRAMParams
from devices.rram_physics import K_B, Q_E

from .netlist import Expr, Netlist, const, func, volt

NM = 1e-9


def _rram_rate_expr(p: RRAMParams, v_dev: Expr, current: Expr, gap_nm: Expr, gap_state: Expr,
                    rate_scale: float) -> Expr:
    """dg/dt in nm/s as an expression of the device voltage, current and gap (nm)."""
    temp = const(p.t_amb) + func("abs", v_dev * current) * const(p.r_th)
    v_th = const(K_B / Q_E) * temp
    gamma = const(p.gamma0) - const(p.beta_gamma) * gap_nm * gap_nm * gap_nm
    if p.f_min > 0:  # the minimum-field gate, exactly as devices.rram_physics.gap_velocity
        gamma = gamma * func("u", gamma * func("abs", v_dev) - const(p.f_min * p.t_ox))
    x = gamma * const(p.a0) * v_dev / (const(p.t_ox) * v_th)
    if getattr(p, "rate_law", "single_sinh") == "generation_recombination":
        rate = const(-p.vel0 * rate_scale / NM) * (func("exp", x - const(p.ea) / v_th)
                                                   - func("exp", -x - const(p.ea_r) / v_th))
    else:
        rate = const(-p.vel0 * rate_scale / NM) * func("exp", const(-p.ea) / v_th) * func("sinh", x)
    shrink = func("min", rate, const(0.0)) * func("u", gap_state - const(p.gap_min / NM))
    grow = func("max", rate, const(0.0)) * func("u", const(p.gap_max / NM) - gap_state)
    return shrink + grow


def rram_cell(net: Netlist, name: str, te: str, be: str, p: RRAMParams, gap0: float,
              i0_scale: float = 1.0, rate_scale: float = 1.0) -> str:
    """Add one RRAM device between ``te`` and ``be`` (flattened, no subcircuit, so every cell
    carries its own D2D factors as plain numbers). Returns the name of its state node, whose
    voltage is the gap in nm."""
    gap_node = f"gap_{name}"
    v_dev = volt(te, be)
    # the gap is confined to [gap_min, gap_max] as in memxbar; clamping inside the expressions
    # also keeps ngspice's Newton iterates from evaluating the model far outside its range
    gap_nm = func("min", func("max", volt(gap_node), const(p.gap_min / NM)), const(p.gap_max / NM))
    current = const(p.i0 * i0_scale) * func("exp", const(-NM / p.g0) * gap_nm) * func("sinh", v_dev / const(p.v0))
    net.bsource_current(f"mem_{name}", te, be, current)
    net.capacitor(f"state_{name}", gap_node, "0", 1.0, ic=gap0 / NM)
    net.bsource_current(f"rate_{name}", "0", gap_node, _rram_rate_expr(p, v_dev, current, gap_nm, volt(gap_node), rate_scale))
    # a huge resistor gives the floating state node a DC path (10^15 Ω: < 1e-24 nm/s leak)
    net.resistor(f"state_{name}", gap_node, "0", 1e15)
    return gap_node


def device_iv(device, index: tuple, v_dev: Expr) -> Expr:
    """Static I-V (A) of one cell of a ``devices`` object in its present state, as a SPICE
    expression of the device voltage ``v_dev``; the same closed form the family's
    ``current(v)`` evaluates (stuck-at cells are ohmic at g_max / g_min)."""
    stuck = int(device.stuck[index])
    if stuck == 1:
        return const(device.g_max) * v_dev
    if stuck == -1:
        return const(device.g_min) * v_dev
    family = device.family
    p = device.params
    if family == "rram":
        a = p.i0 * float(device.i0_scale[index]) * math.exp(-float(device.gap[index]) / p.g0)
        return const(a) * func("sinh", v_dev / const(p.v0))
    if family == "pcm":
        g = float(device._g[index])
        f_a = min(max(1.0 - (g - device.g_min) / (device.g_max - device.g_min), 0.0), 1.0)
        h_read = (1.0 - f_a) * p.v_read + f_a * p.v0 * math.sinh(p.v_read / p.v0)
        scale = g * p.v_read / h_read
        return const(scale * (1.0 - f_a)) * v_dev + const(scale * f_a * p.v0) * func("sinh", v_dev / const(p.v0))
    if family == "stt_mram":
        g_p = device._g_p[index]
        state = device.state[index]
        g_par = float(g_p[state == 0].sum())
        g_anti = float(g_p[state == 1].sum())
        tmr_v = const(p.tmr0) / (const(1.0) + v_dev * v_dev / const(p.v_h ** 2))
        return v_dev * (const(g_par) + const(g_anti) / (const(1.0) + tmr_v))
    if family == "floating_gate":
        i_pre = float(device._i_pre(device.q_fg)[index])
        return const(i_pre) * func("sgn", v_dev) * (const(1.0) - func("exp", -func("abs", v_dev) / const(p.u_t)))
    if family == "volatile":
        g = float(device.conductance()[index])
        return const(g) * v_dev
    raise ValueError(f"no SPICE I-V for device family {family!r}")


__all__ = ["rram_cell", "device_iv"]
