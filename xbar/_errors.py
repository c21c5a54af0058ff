"""Exceptions of the crossbar solvers."""
from __future__ import annotations


class ConvergenceError(RuntimeError):
    """An iterative solve (CG or Newton) did not reach its tolerance within its budget."""

    def __init__(self, what: str, residual: float, iterations: int, tolerance: float):
        self.residual = residual
        self.iterations = iterations
        self.tolerance = tolerance
        super().__init__(f"{what} did not converge: residual {residual:.3e} after {iterations} "
                         f"iterations (tolerance {tolerance:.3e})")
