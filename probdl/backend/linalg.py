"""Dense linear algebra on raw arrays, chosen for the array module at hand.

The tensor ops in ``probdl.tensor.ops.linalg`` call these; they hide the difference
between NumPy/SciPy/LAPACK on the CPU and CuPy on the GPU, and give the
fast path for each case (LAPACK ``trtrs`` for one triangular system, a
vectorised batched solve for stacks of small ones).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import get_lapack_funcs

from .arrays import get_array_module

__all__ = ["LinAlgError", "cholesky", "solve_triangular", "solve", "inv", "slogdet", "det", "eigh"]

LinAlgError = np.linalg.LinAlgError


def cholesky(a: Any) -> Any:
    """Lower Cholesky factor of a (batch of) symmetric positive-definite matrices."""
    xp = get_array_module(a)
    try:
        out = xp.linalg.cholesky(a)
    except np.linalg.LinAlgError as e:
        raise LinAlgError(f"cholesky: matrix of shape {tuple(a.shape)} is not positive definite") from e
    if xp is not np and not bool(xp.isfinite(out).all()):  # cupy returns NaN instead of raising
        raise LinAlgError(f"cholesky: matrix of shape {tuple(a.shape)} is not positive definite")
    return out


def _triangle(xp, a, lower: bool, unit_diagonal: bool):
    a = xp.tril(a) if lower else xp.triu(a)
    if unit_diagonal:
        n = a.shape[-1]
        a = a * (1 - xp.eye(n, dtype=a.dtype)) + xp.eye(n, dtype=a.dtype)
    return a


def solve_triangular(a: Any, b: Any, lower: bool, trans: bool, unit_diagonal: bool = False) -> Any:
    """Solve ``op(A) X = B`` for X, with ``op(A) = A`` or ``A^T`` and A triangular.

    ``a`` has shape ``(..., n, n)`` and ``b`` shape ``(..., n, k)``, the batch dims
    broadcasting. Only the named triangle of ``a`` is read.
    """
    xp = get_array_module(a, b)
    if xp is np and a.ndim == 2 and b.ndim == 2:
        trtrs = get_lapack_funcs("trtrs", (a, b))
        x, info = trtrs(a, b, lower=int(lower), trans=int(trans), unitdiag=int(unit_diagonal))
        if info > 0:
            raise LinAlgError(f"solve_triangular: matrix of shape {a.shape} is singular (zero at diagonal {info - 1})")
        return x
    if xp is not np and a.ndim == 2 and b.ndim == 2:
        from cupyx.scipy.linalg import solve_triangular as cp_solve_triangular  # noqa: PLC0415

        return cp_solve_triangular(a, b, trans=int(trans), lower=lower, unit_diagonal=unit_diagonal)
    # A stack: one vectorised LU solve of the masked triangle beats a Python loop of triangular solves.
    t = _triangle(xp, a, lower, unit_diagonal)
    if trans:
        t = xp.swapaxes(t, -1, -2)
    batch = np.broadcast_shapes(t.shape[:-2], b.shape[:-2])
    t = xp.broadcast_to(t, batch + t.shape[-2:])
    b = xp.broadcast_to(b, batch + b.shape[-2:])
    try:
        return xp.linalg.solve(t, b)
    except np.linalg.LinAlgError as e:
        raise LinAlgError(f"solve_triangular: a matrix in the batch of shape {a.shape} is singular") from e


def solve(a: Any, b: Any) -> Any:
    """Solve ``A X = B`` for a (batch of) square A; ``b`` has shape ``(..., n, k)``."""
    xp = get_array_module(a, b)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    try:
        return xp.linalg.solve(xp.broadcast_to(a, batch + a.shape[-2:]), xp.broadcast_to(b, batch + b.shape[-2:]))
    except np.linalg.LinAlgError as e:
        raise LinAlgError(f"solve: matrix of shape {a.shape} is singular") from e


def inv(a: Any) -> Any:
    """Inverse of a (batch of) square matrices."""
    try:
        return get_array_module(a).linalg.inv(a)
    except np.linalg.LinAlgError as e:
        raise LinAlgError(f"inv: matrix of shape {a.shape} is singular") from e


def slogdet(a: Any) -> tuple[Any, Any]:
    """Sign and log of the absolute determinant."""
    return get_array_module(a).linalg.slogdet(a)


def det(a: Any) -> Any:
    """Determinant."""
    return get_array_module(a).linalg.det(a)


def eigh(a: Any) -> tuple[Any, Any]:
    """Eigenvalues (ascending) and eigenvectors of a (batch of) symmetric matrices; reads the lower triangle."""
    return get_array_module(a).linalg.eigh(a)
