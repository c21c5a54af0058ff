"""Exact transfer (port admittance) matrix of a linear two-layer grid by one forward block sweep.

Ports (notation of :mod:`xbar._nodal` and :mod:`xbar._linear`): every P line ``k`` is a port
(its source ``s_p[k]`` behind the end conductances ``p_first``/``p_last``), every Q line ``l``
likewise (``q_first``/``q_last``). The wanted matrix is ::

    M[k, l] = current (A) into Q port l, held at 0 V, when P port k is at 1 V and the others at 0 V.

By reciprocity of the SPD nodal matrix (``A = O J^-1 B``, ``A^T = B^T J^-1 O^T``, with the output
map ``O`` of a port equal to the transpose of its input map ``B``), ``M[k, l]`` is also the current
into P port ``k`` when Q port ``l`` is at 1 V. So a crossbar's transfer matrix is ``M`` when its
rows drive the P lines and ``M^T`` when they drive the Q lines.

Method. With unit P sources ``x0 = T_p^-1 b_p(1)`` (line k only feels source k), the Schur
right-hand side of input k is the single block ``u_k = Pi_q D_k x0_k``. The current into Q port
l is read at a Q end of line l::

    finite end (conductance g_e, block e):   i = g_e x_q(e, l)
    ideal end (Dirichlet block e, x_q = 0):   i = g_q x_q(e', l) + D(e, l) x_p(e, l)

with ``e'`` the neighbouring block and ``x_p(e) = x0_e`` for input e (direct term). Either way
only the first or last *free* block ``f`` of ``z = S^-1 c`` is needed: ``(S^-1)_{f,k} u_k`` for
every k. For ``f`` = last free block, forward block elimination gives it without any backward
sweep (``A_k`` = Schur diagonal blocks, off-diagonal blocks ``-g_q I``)::

    S~_k = A_k - g_q^2 W_{k-1},   W_k = S~_k^-1                       (block Cholesky, potrf + potri)
    Y_k  = g_q Y_{k-1} W_{k-1}  (rows = inputs i < k),   row k of Y = u_k^T
    (S^-1)_{f,k} u_k = (Y W_f)[k]                                     (W symmetric)

The first free block uses the same sweep in reversed block order (the reversed chain has the
same blocks). Work ``O(K L^3 + K^2 L^2)`` BLAS-3, memory ``O(L^2 + K L)``: no ``W_k`` is stored.

On the torch backend (CUDA) the same rows come from *block cyclic reduction* instead
(:func:`_sweep_torch`): all diagonal blocks at once from explicit P-line inverses, then
``ceil(log2 K)`` levels that each eliminate every other block with batched Cholesky inverses and
matrix products, so a GPU runs a few dozen large BLAS-3 kernels rather than ``K`` dependent small
steps. Memory ``O(K L max(K, L))``.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from scipy.linalg import blas, lapack

try:  # a declared dependency; bench/gpu.py also runs where memxbar is not installed
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    def threadpool_limits(*args, **kwargs):
        return contextlib.nullcontext()

from ._lines import DenseLines, PCRLines, line_diag, line_off, line_rhs
from ._methods import AUTO_WIRE_ROUNDING, nodal_rounding
from ._nodal import Grid

Tensor = torch.Tensor


def _free_range(grid: Grid) -> range:
    """Blocks k whose Q nodes are free (not tied to an ideal Q-end source)."""
    k0 = 1 if math.isinf(grid.q_first) else 0
    k1 = grid.K - 1 if math.isinf(grid.q_last) else grid.K
    return range(k0, max(k0, k1))


class _Lines:
    """The P lines of a shared ``(K, L)`` grid: LAPACK ``dpttrf``/``dpttrs`` on CPU (one long
    tridiagonal whose lines are separated by zero couplings), parallel cyclic reduction elsewhere.
    ``diag`` ``(K, L)`` has identity rows at Dirichlet nodes; ``off`` ``(L - 1,)`` is shared."""

    def __init__(self, diag: Tensor, off: Tensor, backend: str):
        K, L = diag.shape
        self.L = L
        if backend == "auto":
            backend = "lapack" if diag.device.type == "cpu" and diag.dtype == torch.float64 else "torch"
        if K * L == 1:  # f2py rejects the empty off-diagonal of a single node
            backend = "torch"
        self.backend = backend
        if backend == "lapack":
            e = torch.nn.functional.pad(off.expand(K, L - 1), (0, 1)).reshape(-1)[:-1]
            d, e, info = lapack.dpttrf(diag.reshape(-1).numpy().copy(), e.numpy().copy())
            if info != 0:
                raise ValueError("line matrix not positive definite: cell conductances must be finite and >= 0 S")
            self._lapack = (d, e)
        else:
            self._pcr = PCRLines(diag.unsqueeze(0), off, axis=-1)

    def solve(self, rhs: Tensor) -> Tensor:
        """``T^-1 rhs`` for ``rhs`` ``(C, K, L)``."""
        if self.backend == "lapack":
            C = rhs.shape[0]
            x, _ = lapack.dpttrs(*self._lapack, rhs.detach().reshape(C, -1).numpy().T)
            return torch.from_numpy(np.ascontiguousarray(x.T)).reshape(rhs.shape)
        return self._pcr.solve(rhs)

    def solve_line(self, j: int, rhs: Tensor) -> Tensor:
        """``T_j^-1 rhs`` for line j; ``rhs`` ``(C, L)`` holds C right-hand sides (torch backend)."""
        return self._pcr.line(j).solve(rhs.unsqueeze(1))[:, 0]

    def solve_line_numpy(self, j: int, rhs: np.ndarray) -> np.ndarray:
        """``T_j^-1 rhs`` for a C-ordered ``rhs`` ``(C, L)`` on the LAPACK backend (overwritten)."""
        L = self.L
        if self.backend != "lapack":
            return self.solve_line(j, torch.from_numpy(rhs)).numpy()
        d, e = self._lapack
        if L == 1:  # f2py rejects the empty off-diagonal
            return rhs / float(d[j])
        x, _ = lapack.dpttrs(d[j * L:(j + 1) * L], e[j * L:j * L + L - 1], rhs.T, overwrite_b=1)
        return x.T


class _SchurBlocks:
    """Diagonal blocks ``A_k = diag(T_q)_k - D_k Pi T_p,k^-1 Pi D_k`` (L x L) of the Schur system,
    each from one tridiagonal solve of line k with the L right-hand sides ``Pi D_k``."""

    def __init__(self, grid: Grid, d: Tensor, backend: str):
        dir_p = grid.dirichlet_p(d.device)
        self.dp = d * ~dir_p  # Pi_p D: zero rows/columns of A_k's correction at ideal P ends
        self.diag_p = line_diag(d, grid.g_wire_p, grid.p_first, grid.p_last).masked_fill_(dir_p, 1.0)
        self.off_p = line_off(grid.L, grid.g_wire_p, math.isinf(grid.p_first), math.isinf(grid.p_last), d)
        self.lines_p = _Lines(self.diag_p, self.off_p, backend)
        self.diag_q = line_diag(d.T, grid.g_wire_q, grid.q_first, grid.q_last).T  # (K, L)

    def torch_block(self, k: int) -> Tensor:
        """``A_k`` as a fresh tensor."""
        dp = self.dp[k]
        a = self.lines_p.solve_line(k, torch.diag_embed(dp)).mul_(-dp)  # -(T^-1)_{ic} d_c d_i
        a.diagonal().add_(self.diag_q[k])
        return a

    def numpy_block(self, k: int) -> np.ndarray:
        """``A_k`` as a fresh Fortran-ordered array; numpy elementwise work (single-threaded)."""
        dp = self.dp[k].numpy()
        # numpy only: torch's OpenMP pool and OpenBLAS's threads fight for cores when interleaved
        a = self.lines_p.solve_line_numpy(k, np.diag(dp))  # (c, i) = (T^-1)_{ic} d_c
        a *= -dp  # symmetric now, so the C-ordered (c, i) array read as Fortran is A_k itself
        a.flat[::a.shape[0] + 1] += self.diag_q[k].numpy()
        return a.T


def _all_blocks(blocks: _SchurBlocks, order: list[int]) -> Tensor:
    """The diagonal blocks ``A_k`` for k in ``order`` at once ``(len(order), L, L)``: explicit P-line
    inverses (:class:`xbar._lines.DenseLines`, one batched cyclic reduction of the identity)."""
    inv = DenseLines(blocks.diag_p.unsqueeze(0), blocks.off_p, axis=-1).inv  # (K, i, c) = (T_k^-1)_ic
    idx = torch.as_tensor(order, device=inv.device)
    dp = blocks.dp[idx]
    a = inv[idx].mul_(dp.unsqueeze(-1)).mul_(dp.unsqueeze(-2)).neg_()  # -d_i (T^-1)_ic d_c
    a.diagonal(dim1=-2, dim2=-1).add_(blocks.diag_q[idx])
    return a


def _sweep_torch(blocks: _SchurBlocks, g_q: float, u: Tensor, order: list[int]) -> Tensor:
    """Rows ``(S^-1)_{f,k} u_k`` for k in ``order``, f = ``order[-1]``, by block cyclic reduction
    (batched torch ops, any device; the GPU path).

    ``S`` restricted to ``order`` is block tridiagonal (diagonal ``A_k``, couplings ``E = -g_q I``).
    Solve ``S Z = C`` with ``C[k]`` = ``u_k`` in input column k: each level eliminates every other
    block counted from the last one (``z_j = A_j^-1 (C_j - E_(j-1)^T z_(j-1) - E_j z_(j+1))``) and
    updates its two surviving neighbours and their new coupling ``-E_(j-1) A_j^-1 E_j``, all
    eliminated blocks at once (batched Cholesky inverse and matrix products). After
    ``ceil(log2 K)`` levels the last block stands alone: ``Z_f = A_f^-1 C_f``, whose column k is the
    wanted row (no back substitution). Work ``O(K L^3 + K^2 L^2)`` in about ``12 log2 K`` batched
    BLAS-3 kernels, against ``K`` sequential steps for the sweep.
    """
    a = _all_blocks(blocks, order)
    m, L = a.shape[0], a.shape[1]
    idx = torch.as_tensor(order, device=u.device)
    c = torch.zeros(m, L, m, dtype=u.dtype, device=u.device)  # (block, node, input)
    c[torch.arange(m, device=u.device), :, torch.arange(m, device=u.device)] = u[idx]
    e = (-g_q * torch.eye(L, dtype=u.dtype, device=u.device)).expand(max(m - 1, 0), L, L)  # e[i]: i -> i+1
    while a.shape[0] > 1:
        m = a.shape[0]
        j = torch.arange(m - 2, -1, -2, device=u.device).flip(0)  # eliminated, the last block survives
        chol, info = torch.linalg.cholesky_ex(a[j])
        if bool((info != 0).any()):
            raise torch.linalg.LinAlgError("Schur block of the transfer reduction is not positive definite")
        w = torch.cholesky_inverse(chol)
        a, c = a.clone(), c.clone()
        r = e[j].transpose(-1, -2) @ w  # E_j^T W_j: updates of the right neighbours j + 1
        a[j + 1] -= r @ e[j]
        c[j + 1] -= r @ c[j]
        has_left = j >= 1
        jl = j[has_left]
        e_new = None
        if jl.numel():
            lf = e[jl - 1] @ w[has_left]  # E_(j-1) W_j: updates of the left neighbours j - 1
            a[jl - 1] -= lf @ e[jl - 1].transpose(-1, -2)
            c[jl - 1] -= lf @ c[jl]
            e_new = -(lf @ e[jl])  # new couplings (j-1) -> (j+1), in survivor order
        keep = torch.arange(m - 1, -1, -2, device=u.device).flip(0)
        a, c = a[keep], c[keep]
        e = e_new if e_new is not None else e[:0]
    chol, info = torch.linalg.cholesky_ex(a[0])
    if int(info) != 0:
        raise torch.linalg.LinAlgError("Schur block of the transfer reduction is not positive definite")
    return torch.cholesky_solve(c[0], chol).T  # row k: (S^-1)_{f,k} u_k


def _sweep_lapack(blocks: _SchurBlocks, g_q: float, u: Tensor, order: list[int]) -> Tensor:
    """As :func:`_sweep_torch` with LAPACK ``dpotrf``/``dpotri`` and BLAS ``dsymm`` on CPU
    (lower triangles only). ``yt`` holds the inputs' vectors ``y`` as columns, Fortran order."""
    L = u.shape[1]
    yt, yt_next = np.zeros((L, len(order)), order="F"), np.empty((L, len(order)), order="F")
    gw = None  # g_q W_{k-1}, valid in the lower triangle
    for p, k in enumerate(order):
        a = blocks.numpy_block(k)
        if gw is not None:
            a -= g_q * gw  # A_k - g_q^2 W_{k-1} (lower triangles)
            blas.dsymm(1.0, gw, yt[:, :p], beta=0.0, c=yt_next[:, :p], side=0, lower=1, overwrite_c=1)
            yt, yt_next = yt_next, yt
        # clean=1 zeroes the upper triangle, which dpotri leaves alone: a stale upper triangle
        # would be scaled by -g_q^2 at every block and overflow (inf * 0 warnings) at low wire
        # resistance, although only lower triangles are ever read
        chol, info = lapack.dpotrf(a, lower=1, clean=1, overwrite_a=1)
        if info == 0:
            gw, info = lapack.dpotri(chol, lower=1, overwrite_c=1)
        if info != 0:
            raise torch.linalg.LinAlgError("Schur block of the transfer sweep is not positive definite")
        gw *= g_q
        yt[:, p] = u[k].numpy()
    out = blas.dsymm(1.0 / g_q, gw, yt, side=0, lower=1)  # W_f y
    return torch.from_numpy(np.ascontiguousarray(out.T))


def port_transfer(grid: Grid, d_cell: Tensor, *, backend: str = "auto") -> Tensor:
    """Exact port transfer matrix ``M`` (S), ``(K, L)``, of a linear grid (module docstring).

    ``d_cell``: cell conductances (S) in grid layout, ``(K, L)`` or ``(1, K, L)``; both wires
    must be finite (``grid.structured``). ``backend``: tridiagonal line solves, as in
    :class:`_Lines` (``"lapack"`` on float64 CPU tensors, else parallel cyclic reduction).
    """
    if not grid.structured:
        raise ValueError("port_transfer needs finite wire conductances")
    d = d_cell.detach().reshape(grid.K, grid.L).to(torch.float64)
    blocks = _SchurBlocks(grid, d, backend)
    dir_p = grid.dirichlet_p(d.device)
    ones = torch.ones(1, grid.K, dtype=d.dtype, device=d.device)
    b_p = line_rhs(torch.zeros_like(d).unsqueeze(0), ones, grid.g_wire_p, grid.p_first, grid.p_last, dir_p)
    x0 = blocks.lines_p.solve(b_p)[0]  # P voltages for unit P sources: line k feels source k only
    u = d * x0 * ~grid.dirichlet_q(d.device)  # Schur right-hand side of input k: block k only

    free = list(_free_range(grid))
    terms, direct = _end_terms(grid, free)
    m = torch.zeros_like(d)
    for e in direct:  # ideal Q end at block e: cell current of line e into the sense node
        m[e] += d[e] * x0[e]
    sweep = _sweep_lapack if d.device.type == "cpu" and backend != "torch" else _sweep_torch
    # one BLAS thread: the blocks are small, and idle OpenBLAS threads spin-waiting between the
    # many short calls slow the sweep down several-fold on a busy machine
    with threadpool_limits(1, user_api="blas"):
        for f, gamma in terms:  # f is the first or the last free block
            order = free if f == free[-1] else free[::-1]
            m[order] += gamma * sweep(blocks, grid.g_wire_q, u, order)
    return m


def _end_terms(grid: Grid, free: list[int]) -> tuple[list[tuple[int, float]], set[int]]:
    """Read-out of the Q-port current: ``[(free block f, gamma)]`` with ``i += gamma z_f`` and the
    Dirichlet blocks e whose direct cell current ``D_e x0_e`` adds to row e of ``M``."""
    terms, direct = [], set()
    for e, nb, g_end in ((0, 1, grid.q_first), (grid.K - 1, grid.K - 2, grid.q_last)):
        if g_end == 0.0:
            continue
        if math.isinf(g_end):
            direct.add(e)
            if nb in free:
                terms.append((nb, grid.g_wire_q))
        elif e in free:
            terms.append((e, g_end))
    return terms, direct


# ------------------------------------------------------------------ a crossbar's transfer matrix
def transfer_matrix(xb, g: Tensor, ge: Tensor) -> Tensor:
    """Transfer matrix ``A`` (S, ``(rows, cols)``) of the linear crossbar ``xb`` (no autograd).

    Finite wires, method ``auto``/``block`` (and no precision risk, :mod:`xbar._methods`): the exact
    block elimination of :func:`port_transfer`, as the sequential LAPACK sweep on CPU and as the
    batched block cyclic reduction on the torch backend (CUDA) while its dense blocks fit in
    memory. Otherwise (other methods, 0-Ohm or tiny wires, too large): ``A`` row by row from solves
    with unit inputs, batched in chunks (:func:`transfer_by_solves`).
    """
    grid = xb._grid()
    c = xb.config
    if grid.structured and c.method in ("auto", "block") and nodal_rounding(grid) <= AUTO_WIRE_ROUNDING:
        torch_path = ge.device.type != "cpu" or c.backend == "torch"
        if not torch_path or _reduction_fits(xb):
            m = port_transfer(grid, xb._t(ge), backend="torch" if torch_path else "lapack")
            return (m.T if xb._transposed() else m).contiguous()
    return transfer_by_solves(xb, g, ge)


def _reduction_fits(xb) -> bool:
    """The block cyclic reduction holds about ten arrays of ``K L max(K, L)`` doubles: within half the
    free device memory (CUDA) or 2 GB (CPU)."""
    K, L = (xb.cols, xb.rows) if xb._transposed() else (xb.rows, xb.cols)
    need = 10 * 8 * K * L * max(K, L)
    if xb.torch_device.type == "cuda":
        return need <= torch.cuda.mem_get_info(xb.torch_device)[0] // 2
    return need <= 2 * 2**30


def _chunk(xb) -> int:
    """Inputs solved together: CPU chunks of about ``transfer_chunk_bytes`` per node-voltage array
    (cache-sized temporaries); CUDA chunks sized to a quarter of the free device memory (about 24
    arrays of that size live during a batched CG solve)."""
    cells = xb.rows * xb.cols
    if xb.torch_device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(xb.torch_device)
        return max(1, min(xb.rows, int(free // (4 * 24 * 8 * cells))))
    return max(1, int(xb.config.transfer_chunk_bytes // (16 * cells)))


def transfer_by_solves(xb, g: Tensor, ge: Tensor) -> Tensor:
    """``A`` row by row from solves with unit inputs, in chunks of inputs (one factorisation)."""
    dev = xb.torch_device
    eye = torch.eye(xb.rows, dtype=torch.float64, device=dev)
    zero = torch.zeros(xb.rows, xb.cols, dtype=torch.float64, device=dev)
    chunk = _chunk(xb)
    parts = []
    xb._cached_linear(g, xb.rows)  # factorise once for all chunks
    for start in range(0, xb.rows, chunk):
        _, _, u = xb.nodes(eye[start:start + chunk], zero[start:start + chunk], g)
        v_cell = (-1.0 if xb._transposed() else 1.0) * xb._t(u)
        parts.append((ge * v_cell).sum(-2))
    return torch.cat(parts, 0)
