"""Serialisable electrical and numerical options of a :class:`xbar.Crossbar`.

Every field is a plain float/int/str/bool (or None for "not given"), so the config round-trips
through ``dataclasses.asdict`` and a TOML/JSON file: ``CrossbarConfig(**asdict(cfg)) == cfg``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from devices.validation import check_bool, check_choice, check_int, check_real

_TOPOLOGIES = ("0T1R", "1T1R", "1S1R")
METHODS = ("auto", "block", "cg", "wire", "direct")
BACKENDS = ("auto", "cpu", "torch")


@dataclass(frozen=True)
class CrossbarConfig:
    """Electrical (SI units) and numerical options.

    Wires and terminals: ``r_row``/``r_col`` (Ohm per segment between adjacent cells),
    ``r_source`` (driver, Ohm), ``r_sense`` (sense/virtual ground, Ohm); 0 is exact (ideal).
    ``row_drive`` in {"first", "last", "both"}, ``col_sense`` in {"last", "first", "both"}.
    ``topology`` in {"0T1R", "1T1R", "1S1R"}.

    1T1R: ``transistor`` "linear" (``r_access_on`` Ohm when the row gate is on,
    ``r_access_off`` Ohm when off, ``inf`` = open) or "ekv" (``mos_beta`` A/V^2, ``mos_v_th`` V,
    slope factor ``mos_n``, thermal voltage ``mos_u_t`` V, gate voltage ``v_gate_on`` /
    ``v_gate_off`` V referred to the column-side terminal).

    1S1R: ``selector`` "sinh" (``I = I_s sinh(V/V_0)``) or "exp"
    (``I = sign(V) I_s (exp(|V|/V_0) - 1)``), with ``selector_i_s`` (A) and either
    ``selector_v_0`` (V) or the nonlinearity ``selector_nl = I(V_w)/I(V_w/2)`` (> 2) at
    ``selector_v_w`` (V).

    Numerics: ``method`` in {"auto", "block", "cg", "wire", "direct"} (see :mod:`xbar.crossbar`);
    CG stops at relative residual ``cg_rtol`` within ``cg_max_iter`` iterations; the block solver
    is used by "auto" while its dense blocks take <= ``block_max_bytes``; Newton stops at KCL
    residual <= ``newton_rtol`` times the largest line current within ``newton_max_iter`` steps.
    ``backend`` in {"auto", "cpu", "torch"}: "cpu" runs compiled (numba) kernels on float64 CPU
    tensors, "torch" batched torch kernels on the tensors' device (CUDA included), "auto" the first
    where it applies. ``cuda_graphs``: replay CG iterations as CUDA graphs on CUDA devices.
    ``grad_mode`` "exact" (adjoint) or "ideal" (straight-through: backward of ``v @ G``). ``solve``
    uses the cached transfer matrix when ``batch >= transfer_batch_ratio * rows`` (or when it is
    cached); on CPU the transfer matrix is computed in chunks of right-hand sides of about
    ``transfer_chunk_bytes`` (on CUDA in chunks sized to the free device memory).
    """

    r_row: float = 1.0
    r_col: float = 1.0
    r_source: float = 1.0
    r_sense: float = 1.0
    topology: str = "0T1R"
    row_drive: str = "first"
    col_sense: str = "last"
    r_access_on: float = 15e3
    r_access_off: float = math.inf
    transistor: str = "linear"
    mos_beta: float = 2e-4
    mos_v_th: float = 0.4
    mos_n: float = 1.3
    mos_u_t: float = 0.02585
    v_gate_on: float = 1.2
    v_gate_off: float = 0.0
    selector: str = "sinh"
    selector_i_s: float = 1e-7
    selector_v_0: float | None = 0.1
    selector_nl: float | None = None
    selector_v_w: float | None = None
    method: str = "auto"
    backend: str = "auto"
    cuda_graphs: bool = True
    cg_rtol: float = 1e-14
    cg_max_iter: int = 5000
    block_max_bytes: float = 6e8
    newton_rtol: float = 1e-12
    newton_max_iter: int = 60
    grad_mode: str = "exact"
    transfer_batch_ratio: float = 1.0
    transfer_chunk_bytes: float = 3.2e7

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and its allowed range (devices.validation)."""
        for name in ("r_row", "r_col", "r_source", "r_sense"):
            check_real(name, getattr(self, name), low=0.0)
        check_choice("topology", self.topology, _TOPOLOGIES)
        check_choice("row_drive", self.row_drive, ("first", "last", "both"))
        check_choice("col_sense", self.col_sense, ("first", "last", "both"))
        check_real("r_access_on", self.r_access_on, low=0.0, low_open=True)
        check_real("r_access_off", self.r_access_off, low=0.0, low_open=True, allow_inf=True)
        check_choice("transistor", self.transistor, ("linear", "ekv"))
        for name in ("mos_beta", "mos_n", "mos_u_t"):
            check_real(name, getattr(self, name), low=0.0, low_open=True)
        for name in ("mos_v_th", "v_gate_on", "v_gate_off"):
            check_real(name, getattr(self, name))
        check_choice("selector", self.selector, ("sinh", "exp"))
        check_real("selector_i_s", self.selector_i_s, low=0.0, low_open=True)
        if self.selector_nl is not None or self.selector_v_w is not None:
            if self.selector_nl is None or self.selector_v_w is None:
                raise ValueError("selector_nl and selector_v_w must be given together")
            check_real("selector_nl", self.selector_nl, low=2.0, low_open=True)
            check_real("selector_v_w", self.selector_v_w, low=0.0, low_open=True)
        elif self.selector_v_0 is None:
            raise ValueError("give selector_v_0 (V) or both selector_nl and selector_v_w")
        else:
            check_real("selector_v_0", self.selector_v_0, low=0.0, low_open=True)
        check_choice("method", self.method, METHODS)
        check_choice("backend", self.backend, BACKENDS)
        check_bool("cuda_graphs", self.cuda_graphs)
        check_real("cg_rtol", self.cg_rtol, low=0.0, low_open=True, high=1.0)
        check_real("newton_rtol", self.newton_rtol, low=0.0, low_open=True, high=1.0)
        check_real("block_max_bytes", self.block_max_bytes, low=0.0)
        check_real("transfer_chunk_bytes", self.transfer_chunk_bytes, low=1.0)
        check_real("transfer_batch_ratio", self.transfer_batch_ratio, low=0.0, allow_inf=True)
        for name in ("cg_max_iter", "newton_max_iter"):
            check_int(name, getattr(self, name), low=1)
        check_choice("grad_mode", self.grad_mode, ("exact", "ideal"))
