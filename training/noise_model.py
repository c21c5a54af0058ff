r"""The device noise of hardware-aware training: calibration, a closed-form fit, cheap draws.

Calibration (once per configuration, on the CPU in float64). The device family's real
``program()`` + ``read(train_t_read)`` is run on a calibration array — ``calibration_devices``
devices at each of ``calibration_levels`` targets evenly spaced in ``[g_min, g_max]``, or at the
cell's discrete levels for multi-level cells (STT-MRAM: ``n + 1`` levels of ``n`` MTJs) — giving
the mean error ``mu_k`` and standard deviation ``sigma_k`` (S) of the realised conductance per
target (:class:`CalibrationTable`; stuck devices are left out, faults are injected separately).
The read clips at 0 S like the device models, so the table holds the moments of the clipped
distribution. With ``train_t_read > 0`` and ``drift_compensation`` (the deployment's global drift
compensation) the calibration array is read as a deployed tile is: a reference read right after
programming, then the read at ``train_t_read`` scaled by ``alpha = Σ G_ref / Σ G(t)`` over the
array, so the table holds the error that remains after compensation at that read time (drift-
exponent spread and 1/f read noise) rather than the uncompensated mean decay. The array's
levels are uniform in ``[g_min, g_max]``, so its ``alpha`` is that of a uniformly filled tile.

Closed form. ``mu`` and ``sigma`` are fitted once by polynomials in the normalised conductance
``x = (G - g_min)/(g_max - g_min)`` (weighted least squares with the table's standard errors;
the lowest degree <= 6 whose residuals are all within 4 standard errors; the maximum fit error
relative to ``max sigma`` is kept in ``fit_error``). For PCM the table follows aihwkit's quadratic
programming noise plus its read noise; a degree-2 fit is within ~7 % of the measured sigma, and
the selection usually picks 2-4. Multi-level cells first snap the target to the nearest level
(``round``, closed form) and fit through the levels.

Weight-level draw (:class:`WeightNoise`, the training forward pass). A weight ``w`` sits on a pair
``G+ = g_min + s·max(w, 0)``, ``G- = g_min + s·max(-w, 0)`` (``s`` S per unit weight) whose
devices err independently, so the realised weight ``(G~+ - G~-)/s`` is, to the same first two
moments, ::

    w~ = w + λ [ sign(w) (M(|w|) - M(0)) + sqrt(Q(|w|)^2 + Q(0)^2) ξ ],     ξ ~ N(0, 1)

with ``M = mu/s``, ``Q = sigma/s`` as polynomials in ``|w|`` and ``λ = train_noise``: one ``randn``
per weight in the working dtype and a few fused elementwise ops (Horner ``addcmul``), no table
gather, nothing for the padding of partly used tiles. Stuck-at faults (``p_stuck_on``,
``p_stuck_off`` of the preset) hit a sparse random set of devices: their number among the ``2n``
devices is drawn from ``Binomial(2n, p_on + p_off)`` (a CPU scalar, no device synchronisation),
their positions by ``randint``; each hit pair is then recomputed from its two devices with the
stuck one at ``g_max``/``g_min`` (a pair hit twice, probability ~p², keeps one of its faults).
Above ``p = 0.05`` a dense Bernoulli mask is used instead.

Device-level draw (:meth:`DeviceNoiseModel.sample`, circuit mode): ``G~ = G + λ (mu(G) + sigma(G) ξ)``
per device, clipped at 0 S (the circuit needs physical conductances), with the same faults.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from devices.seeding import derive_seed

Tensor = torch.Tensor

__all__ = ["CalibrationTable", "DeviceNoiseModel", "WeightNoise", "calibrate_noise", "fit_polynomial"]

MAX_DEGREE = 6
#: relative accuracy of the pair-spread polynomial (far below the sampling error of the calibration)
PAIR_FIT_RTOL = 1e-2
#: fault probability above which faults are drawn as a dense mask instead of sparse positions
DENSE_FAULTS = 0.05


@dataclass(frozen=True)
class CalibrationTable:
    """Measured programming statistics: targets ``g_levels`` (S), mean error ``mu`` and standard
    deviation ``sigma`` (S) per target, from ``n_devices`` healthy devices each (float64, CPU)."""

    g_levels: Tensor
    mu: Tensor
    sigma: Tensor
    n_devices: int


def fit_polynomial(x: np.ndarray, y: np.ndarray, se: np.ndarray, max_degree: int = MAX_DEGREE) -> tuple[float, ...]:
    """Coefficients (lowest power first) of the lowest-degree polynomial whose weighted least
    squares fit of ``y(x)`` is consistent with the standard errors ``se`` — reduced chi-square
    within 3 standard deviations of 1 (``chi2/dof <= 1 + 3 sqrt(2/dof)``) — or of the highest
    degree the points allow (at most ``max_degree``)."""
    se = np.maximum(se, 1e-3 * max(float(np.abs(y).max()), float(se.max()), 1e-300))
    top = min(max_degree, len(x) - 1)
    for degree in range(top + 1):
        coeffs = np.polynomial.polynomial.polyfit(x, y, degree, w=1.0 / se)
        dof = len(x) - degree - 1
        chi2 = float((((np.polynomial.polynomial.polyval(x, coeffs) - y) / se) ** 2).sum())
        if degree == top or chi2 / dof <= 1 + 3 * math.sqrt(2 / dof):
            return tuple(float(c) for c in coeffs)
    raise AssertionError("unreachable")


def _horner(coeffs, x: Tensor, out: Tensor | None = None) -> Tensor:
    """``Σ c_k x^k`` with 0-d tensor coefficients (highest power last): one fused op per degree,
    into ``out`` when given."""
    if len(coeffs) == 1:
        return coeffs[0].expand_as(x) if out is None else out.copy_(coeffs[0].expand_as(x))
    res = torch.addcmul(coeffs[-2], x, coeffs[-1], out=out) if out is not None else \
        torch.addcmul(coeffs[-2], x, coeffs[-1])
    for c in reversed(coeffs[:-2]):
        res = torch.addcmul(c, res, x, out=res)
    return res


@dataclass(frozen=True)
class DeviceNoiseModel:
    """Closed-form programming statistics of a device family over the window ``[g_min, g_max]`` (S)
    (module docstring).

    Attributes:
        g_min, g_max: the mapping window (S); ``x = (G - g_min)/(g_max - g_min)``.
        mu_coeffs, sigma_coeffs: polynomial coefficients in ``x`` (S, lowest power first).
        p_stuck_on, p_stuck_off: fault probabilities per device.
        states: ``(g_first, g_last, n_steps)`` for multi-level cells (targets snap to
            ``g_first + k (g_last - g_first)/n_steps``), None for analog devices.
        fit_error: max |fit - table| / max(sigma) of ``"mu"`` and ``"sigma"``.
        table: the calibration the fit was made from (None when built from coefficients).
    """

    g_min: float
    g_max: float
    mu_coeffs: tuple
    sigma_coeffs: tuple
    p_stuck_on: float = 0.0
    p_stuck_off: float = 0.0
    states: tuple | None = None
    fit_error: dict = field(default_factory=lambda: {"mu": 0.0, "sigma": 0.0})
    table: CalibrationTable | None = None
    _consts: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _coeffs(self, name: str, like: Tensor) -> list[Tensor]:
        """The polynomial ``name`` as 0-d tensors of ``like``'s dtype and device (made once per
        dtype/device: no host-to-device copy per call)."""
        key = (name, like.dtype, like.device)
        if key not in self._consts:
            self._consts[key] = list(torch.tensor(getattr(self, name), dtype=like.dtype, device=like.device))
        return self._consts[key]

    @classmethod
    def from_table(cls, table: CalibrationTable, *, g_min: float, g_max: float, p_stuck_on: float = 0.0,
                   p_stuck_off: float = 0.0, states: tuple | None = None) -> "DeviceNoiseModel":
        """Fit the closed form to a calibration table (module docstring)."""
        g = table.g_levels.double().cpu().numpy()
        mu, sigma = table.mu.double().cpu().numpy(), table.sigma.double().cpu().numpy()
        x = (g - g_min) / (g_max - g_min)
        n = max(int(table.n_devices), 2)
        mu_c = fit_polynomial(x, mu, sigma / math.sqrt(n))
        sigma_c = fit_polynomial(x, sigma, sigma / math.sqrt(2 * (n - 1)))
        scale = max(float(sigma.max()), 1e-300)
        err = {"mu": float(np.abs(np.polynomial.polynomial.polyval(x, mu_c) - mu).max() / scale),
               "sigma": float(np.abs(np.polynomial.polynomial.polyval(x, sigma_c) - sigma).max() / scale)}
        return cls(float(g_min), float(g_max), mu_c, sigma_c, float(p_stuck_on), float(p_stuck_off), states, err,
                   table)

    # ------------------------------------------------------------------ closed form (S)
    def _x(self, g: Tensor) -> Tensor:
        return (g - self.g_min) / (self.g_max - self.g_min)

    def snap(self, g: Tensor) -> Tensor:
        """Targets (S) moved to the nearest level of a multi-level cell (unchanged for analog devices)."""
        if self.states is None:
            return g
        first, last, steps = self.states
        step = (last - first) / steps
        return (first + step * torch.round((g - first) / step)).clamp(min(first, last), max(first, last))

    def mu(self, g: Tensor) -> Tensor:
        """Mean error (S) of a device programmed to ``g`` (after snapping)."""
        snapped = self.snap(g)
        return _horner(self._coeffs("mu_coeffs", g), self._x(snapped)) + (snapped - g)

    def sigma(self, g: Tensor) -> Tensor:
        """Standard deviation (S) of a device programmed to ``g``."""
        return _horner(self._coeffs("sigma_coeffs", g), self._x(self.snap(g))).abs()

    @property
    def p_fault(self) -> float:
        return self.p_stuck_on + self.p_stuck_off

    @functools.cached_property
    def pair_sigma(self) -> tuple[tuple, float]:
        """``(coefficients, max relative error)`` of ``sqrt(sigma(G)^2 + sigma(G_0)^2)`` as a polynomial
        in ``x`` (S): the spread of a pair whose other device sits at the zero-weight level ``G_0``
        (``g_min``, snapped), so the weight-level draw needs no square root. Fitted to the closed
        form on a dense grid (on the levels of a multi-level cell), to ``PAIR_FIT_RTOL``."""
        if self.states is None:
            x = np.linspace(0.0, 1.0, 257)
        else:
            first, last, steps = self.states
            g = first + (last - first) * np.arange(steps + 1) / steps
            x = (g - self.g_min) / (self.g_max - self.g_min)
        g0 = self.snap(torch.tensor([self.g_min], dtype=torch.float64))
        s0 = float(self.sigma(g0))
        sx = np.abs(np.polynomial.polynomial.polyval(x, self.sigma_coeffs))
        y = np.sqrt(sx**2 + s0**2)
        for degree in range(min(MAX_DEGREE, len(x) - 1) + 1):
            coeffs = np.polynomial.polynomial.polyfit(x, y, degree)
            err = float(np.abs(np.polynomial.polynomial.polyval(x, coeffs) - y).max() / max(float(y.max()), 1e-300))
            if err <= PAIR_FIT_RTOL:
                break
        return tuple(float(c) for c in coeffs), err

    def fault_positions(self, n: int, generator: torch.Generator, count_generator: torch.Generator,
                        device) -> tuple[Tensor, Tensor]:
        """Sparse stuck devices among ``n``: ``(index (k,) int64, stuck_on (k,) bool)`` on ``device``;
        the count ``k ~ Binomial(n, p_fault)`` is drawn on the CPU (no device synchronisation)."""
        k = int(torch.binomial(torch.tensor(float(n)), torch.tensor(self.p_fault), generator=count_generator))
        index = torch.randint(0, n, (k,), generator=generator, device=device)
        on = torch.rand(k, generator=generator, device=device) * self.p_fault < self.p_stuck_on
        return index, on

    def sample(self, g: Tensor, generator: torch.Generator, scale: float = 1.0,
               count_generator: torch.Generator | None = None) -> Tensor:
        """Noisy conductances (S, >= 0) of devices programmed to ``g`` (S); no gradient."""
        with torch.no_grad():
            xi = torch.randn(g.shape, generator=generator, dtype=g.dtype, device=g.device)
            out = (g + scale * torch.addcmul(self.mu(g), self.sigma(g), xi)).clamp_min(0.0)
            if self.p_fault > 0:
                flat = out.reshape(-1)
                if self.p_fault > DENSE_FAULTS or count_generator is None:
                    u = torch.rand(flat.shape, generator=generator, dtype=g.dtype, device=g.device)
                    flat = torch.where(u < self.p_fault, self.g_min + (u < self.p_stuck_on).to(flat.dtype)
                                       * (self.g_max - self.g_min), flat)
                else:
                    index, on = self.fault_positions(flat.numel(), generator, count_generator, g.device)
                    flat = flat.clone()
                    flat[index] = self.g_min + on.to(flat.dtype) * (self.g_max - self.g_min)
                out = flat.reshape(g.shape)
        return out

    def weight_noise(self, w_max: float, scale: float = 1.0, *, dtype=torch.float32, device="cpu") -> "WeightNoise":
        """The weight-level sampler for pairs on this window (constants on ``device`` in ``dtype``)."""
        return WeightNoise(self, w_max, scale, dtype=dtype, device=device)

    def report(self) -> str:
        """One line: the fit's degrees and errors."""
        return (f"noise fit: mu degree {len(self.mu_coeffs) - 1}, sigma degree {len(self.sigma_coeffs) - 1}, "
                f"max error {100 * self.fit_error['mu']:.1f} % / {100 * self.fit_error['sigma']:.1f} % of max sigma")


class WeightNoise:
    """Weight-level draw of a pair's realised weight (module docstring); all constants are 0-d
    tensors of one dtype on one device, computed once. With ``a = |w|`` and ``u = snap(a)``::

        delta = sign(w) (λ (u - a) + M(u) - m0) + S(u) ξ

    ``M`` the device mean error and ``S`` the pair spread (:attr:`DeviceNoiseModel.pair_sigma`) as
    polynomials in weight units (``λ`` folded in), ``m0`` the mean error of the zero-weight device."""

    def __init__(self, model: DeviceNoiseModel, w_max: float, scale: float = 1.0, *, dtype=torch.float32,
                 device="cpu"):
        self.model, self.w_max, self.scale = model, float(w_max), float(scale)
        self.dtype, self.device = dtype, torch.device(device)
        s = (model.g_max - model.g_min) / self.w_max  # S per unit weight
        const = lambda v: torch.tensor(float(v), dtype=dtype, device=self.device)  # noqa: E731
        # polynomials in a = |w| (weight units): P(a) = λ p(x)/s with x = a / w_max
        in_a = lambda coeffs: [self.scale * c / s / self.w_max**k for k, c in enumerate(coeffs)]  # noqa: E731
        mu, sd, pair = in_a(model.mu_coeffs), in_a(model.sigma_coeffs), in_a(model.pair_sigma[0])
        self._g_step, u0 = None, 0.0
        if model.states is not None:  # snap in weight units: u = a0 + d round((a - a0)/d), clamped
            first, last, steps = model.states
            a0, d = (first - model.g_min) / s, (last - first) / steps / s
            lo, hi = min(a0, a0 + d * steps), max(a0, a0 + d * steps)
            self._g_step = (const(a0), const(d), const(lo), const(hi))
            u0 = min(max(a0 + d * round(-a0 / d), lo), hi)  # the level of the zero-weight device
        m0 = float(np.polynomial.polynomial.polyval(u0, mu)) + self.scale * u0  # mean error of the zero-weight device
        self._mu_dev = [const(c) for c in mu]
        self._sd_dev = [const(c) for c in sd]
        mu_pair = [c - (m0 if k == 0 else 0.0) for k, c in enumerate(mu)]
        self._zero_mean = all(c == 0.0 for c in mu_pair)
        self._mu_pair = [const(c) for c in mu_pair]
        self._sd_pair = [const(c) for c in pair]
        self._w_max_t, self._scale_t = const(self.w_max), const(self.scale)
        self._scratch: dict[tuple, list[Tensor]] = {}

    def _snap(self, a: Tensor) -> Tensor:
        if self._g_step is None:
            return a
        a0, d, lo, hi = (c.to(a.dtype) for c in self._g_step)
        return torch.addcmul(a0, d, torch.round((a - a0) / d)).clamp(lo, hi)

    def _workspace(self, w: Tensor, n: int) -> list[Tensor]:
        """``n`` scratch tensors shaped like ``w``, kept between calls: fresh weight-sized tensors
        at every step cost the CPU allocator page faults that are dearer than the arithmetic."""
        ws = self._scratch.get(tuple(w.shape))
        if ws is None or len(ws) < n or ws[0].dtype != w.dtype or ws[0].device != w.device:
            ws = self._scratch[tuple(w.shape)] = [torch.empty_like(w, memory_format=torch.contiguous_format)
                                                  for _ in range(n)]
        return ws

    def __call__(self, w: Tensor, generator: torch.Generator, count_generator: torch.Generator | None = None) -> Tensor:
        """The noise ``w~ - w`` of the weights ``w`` (any shape, this sampler's dtype/device); no
        gradient. The result lives in a scratch buffer that the next call overwrites: use it at once."""
        with torch.no_grad():
            w = w.contiguous()
            a, spread, xi, mean = self._workspace(w, 4)
            torch.abs(w, out=a)
            x = a
            if self._g_step is not None:
                x = self._snap(a)
                _horner(self._mu_pair, x, out=mean)
                mean.add_((x - a).mul_(self._scale_t))
            elif not self._zero_mean:
                _horner(self._mu_pair, a, out=mean)
            xi.normal_(generator=generator)
            _horner(self._sd_pair, x, out=spread)
            if self._g_step is None and self._zero_mean:  # no systematic error (the fit found none)
                delta = xi.mul_(spread)
            else:  # the pair's mean error is odd in w: sign(w) times that of |w| (0 at w = 0)
                delta = torch.addcmul(mean.mul_(torch.sign(w, out=a)), spread, xi, out=xi)
            if self.model.p_fault > 0:
                delta = self._faults(w, delta, generator, count_generator)
        return delta

    def with_bias(self, w: Tensor, bias: Tensor, generator: torch.Generator,
                  count_generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """The noise of a layer's weights ``w (out, in)`` and bias-row weights ``bias (out,)`` in one
        draw (packed side by side in a scratch buffer: one set of kernels instead of two)."""
        with torch.no_grad():
            packed = self._pack(w, bias)
            delta = self(packed, generator, count_generator)
        return delta[:, :w.shape[1]], delta[:, w.shape[1]]

    def _pack(self, w: Tensor, bias: Tensor) -> Tensor:
        key = ("pack", *w.shape)
        buf = self._scratch.get(key)
        if buf is None or buf[0].dtype != w.dtype or buf[0].device != w.device:
            buf = self._scratch[key] = [torch.empty(w.shape[0], w.shape[1] + 1, dtype=w.dtype, device=w.device)]
        return torch.cat([w, bias[:, None]], dim=1, out=buf[0])

    def _device_value(self, a: Tensor, generator: torch.Generator) -> Tensor:
        """Realised ``(G - g_min)/s`` (weight units) of healthy devices programmed to ``a``."""
        u = self._snap(a)
        xi = torch.randn(a.shape, generator=generator, dtype=a.dtype, device=a.device)
        mean = _horner(self._mu_dev, u) + self.scale * (u - a) + a
        return torch.addcmul(mean, _horner(self._sd_dev, u).abs(), xi)

    def _faults(self, w: Tensor, delta: Tensor, generator, count_generator) -> Tensor:
        """Recompute the pairs with a stuck device: sparse positions, or (above DENSE_FAULTS, or
        without a count generator) a dense mask; neither synchronises with the device."""
        m = self.model
        if m.p_fault > DENSE_FAULTS or count_generator is None:
            u = torch.rand((2, *w.shape), generator=generator, dtype=w.dtype, device=w.device)
            stuck, on = (u < m.p_fault), (u < m.p_stuck_on).to(w.dtype) * self._w_max_t
            a_pos = torch.where(stuck[0], on[0], self._device_value(w.clamp_min(0), generator))
            a_neg = torch.where(stuck[1], on[1], self._device_value((-w).clamp_min(0), generator))
            return torch.where(stuck[0] | stuck[1], a_pos - a_neg - w, delta)
        flat_w, flat_d = w.reshape(-1), delta.reshape(-1).clone()
        index, on_k = m.fault_positions(2 * flat_w.numel(), generator, count_generator, w.device)
        pair, which = index // 2, index % 2
        wf = flat_w[pair]
        stuck_value = on_k.to(w.dtype) * self._w_max_t
        a_pos = torch.where(which == 0, stuck_value, self._device_value(wf.clamp_min(0), generator))
        a_neg = torch.where(which == 1, stuck_value, self._device_value((-wf).clamp_min(0), generator))
        flat_d[pair] = (a_pos - a_neg) - wf
        return flat_d.reshape(w.shape)


# ====================================================================== calibration
_CALIBRATION_KEYS = ("family", "preset", "device_params", "g_min", "g_max", "program_verify", "verify_tolerance",
                     "max_pulses", "seed", "train_t_read", "drift_compensation", "calibration_levels",
                     "calibration_devices")
_NOISE_CACHE: dict[str, DeviceNoiseModel] = {}


def _states(dev) -> tuple | None:
    """``(first, last, n_steps)`` of a multi-level cell with uniformly spaced ``levels`` (S), else None."""
    levels = getattr(dev, "levels", None)
    if not torch.is_tensor(levels) or levels.numel() < 2:
        return None
    levels = levels.double().cpu()
    steps = levels.numel() - 1
    first, last = float(levels[0]), float(levels[-1])
    uniform = torch.linspace(first, last, steps + 1, dtype=torch.float64)
    if not torch.allclose(levels, uniform, rtol=1e-9, atol=0):
        raise ValueError(f"the {dev.family} cell levels are not uniformly spaced: no closed-form snapping")
    return first, last, steps


def calibrate_noise(hw) -> DeviceNoiseModel:
    """Measure and fit :class:`DeviceNoiseModel` of ``hw``'s (a ``HardwareConfig``) device with its
    real ``program()``/``read()`` (module docstring). Deterministic for a given configuration
    (devices seeded by ``derive_seed(hw.seed, "calibration")``); memoised per configuration
    within the process (a pure function of the config, so no hidden state)."""
    key = json.dumps({k: v for k, v in hw.to_dict().items() if k in _CALIBRATION_KEYS}, sort_keys=True)
    if key in _NOISE_CACHE:
        return _NOISE_CACHE[key]
    g_lo, g_hi = hw.window()
    states = _states(hw.probe_device())
    if states is None:
        levels = torch.linspace(g_lo, g_hi, hw.calibration_levels, dtype=torch.float64)
    else:
        levels = torch.linspace(states[0], states[1], states[2] + 1, dtype=torch.float64)
    dev = hw.probe_device((len(levels), hw.calibration_devices), seed=derive_seed(hw.seed, "calibration"))
    target = levels[:, None].expand(-1, hw.calibration_devices).contiguous()
    dev.program(target.to(dev.dtype), verify=hw.program_verify, tolerance=hw.verify_tolerance,
                max_pulses=hw.max_pulses, clip=True)
    healthy = (dev.stuck == 0).to(torch.float64).cpu()
    if hw.drift_compensation and hw.train_t_read > 0:
        # as deployed: a calibration read right after programming, then the read at t scaled by
        # the global factor alpha = sum G_ref / sum G(t) over the array's healthy devices
        g_ref = dev.read(0.0).to(torch.float64).cpu()
        g_t = dev.read(hw.train_t_read).to(torch.float64).cpu()
        total = (g_t * healthy).sum()
        alpha = (g_ref * healthy).sum() / total if total > 0 else torch.ones((), dtype=torch.float64)
        err = alpha * g_t - target
    else:
        err = dev.read(hw.train_t_read).to(torch.float64).cpu() - target
    count = healthy.sum(1).clamp_min(1.0)
    mu = (err * healthy).sum(1) / count
    sigma = (((err - mu[:, None]) ** 2 * healthy).sum(1) / (count - 1).clamp_min(1.0)).sqrt()
    params = dev.params
    table = CalibrationTable(levels, mu, sigma, int(count.min()))
    model = DeviceNoiseModel.from_table(table, g_min=g_lo, g_max=g_hi,
                                        p_stuck_on=float(getattr(params, "p_stuck_on", 0.0)),
                                        p_stuck_off=float(getattr(params, "p_stuck_off", 0.0)), states=states)
    _NOISE_CACHE[key] = model
    return model
