"""Cholesky factorizations with automatic jitter, and the exact GP's log marginal likelihood as one op.

:func:`jittered_cholesky` factors :math:`A + \\epsilon I`, starting from the model's own jitter and, when
LAPACK reports the matrix is not positive definite, growing :math:`\\epsilon` tenfold from
:math:`10^{-8}` of the mean diagonal up to :math:`10^{-4}` of it, with a warning that names the jitter used
(GPyTorch's ``psd_safe_cholesky`` does the same; rounding makes large kernel matrices with close inputs
numerically singular).

:func:`gaussian_log_marginal` is :math:`\\log \\mathcal N(r; 0, K + \\sigma^2 I)
= -\\tfrac12 r^\\top \\alpha - \\sum_i \\log L_{ii} - \\tfrac n2 \\log 2\\pi` with :math:`L L^\\top = K + \\sigma^2 I`,
:math:`\\alpha = (K + \\sigma^2 I)^{-1} r`. Its backward is the classic closed form (Rasmussen & Williams 2006,
eq. 5.9): :math:`\\bar K = \\tfrac g2 (\\alpha\\alpha^\\top - (K + \\sigma^2 I)^{-1})`,
:math:`\\bar{\\sigma^2} = \\operatorname{tr} \\bar K`, :math:`\\bar r = -g\\alpha`, with the inverse from the
factor by LAPACK ``potri`` (n³/3 flops) and the rank-one term added in place, so the op holds ``L`` and
the backward one more n x n array: with the kernel matrix itself, three in all.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.linalg import blas, lapack

from ..backend import get_array_module
from ..backend.linalg import LinAlgError
from ..tensor import Tensor, eye, is_grad_enabled
from ..tensor import ops as T
from ..tensor.autograd import Op, apply, composite_backward

__all__ = ["jittered_cholesky", "gaussian_log_marginal", "LinAlgError"]

_JITTER_STEPS = tuple(10.0 ** -k for k in range(8, 3, -1))  # relative to the mean diagonal: 1e-8 ... 1e-4


def jitter_sequence(diag_mean: float, jitter: float) -> list[float]:
    """The jitters to try in turn: the model's own first, then the growing relative ones."""
    return [jitter] + [max(jitter, s * diag_mean) for s in _JITTER_STEPS]


def _warn_jitter(who: str, jitter: float, first: float) -> None:
    warnings.warn(f"{who}: the covariance matrix is not positive definite to working precision; added jitter "
                  f"{jitter:.3g} to its diagonal (the model's jitter is {first:.3g}). Consider larger noise or "
                  "fewer near-duplicate inputs.", RuntimeWarning, stacklevel=3)


def jittered_cholesky(A: Tensor, jitter: float = 0.0, who: str = "cholesky", grow: bool = True) -> Tensor:
    """The lower Cholesky factor of ``A + jitter I`` (a Tensor, differentiable), the jitter grown as the module
    docstring says when needed (unless ``grow=False``: inside a model sampled by MCMC a grown jitter would
    change the density, so there a failure is left to the sampler, which rejects the point); raises
    ``LinAlgError`` naming ``who`` and the largest jitter tried."""
    n = A.shape[-1]
    diag_mean = float(np.mean(np.diagonal(np.asarray(A.data), axis1=-2, axis2=-1)))
    tried = jitter_sequence(abs(diag_mean), jitter) if grow else [jitter]
    for eps in tried:
        try:
            L = T.cholesky(A + eps * eye(n, dtype=A.dtype) if eps else A)
        except LinAlgError:
            continue
        if eps != jitter:
            _warn_jitter(who, eps, jitter)
        return L
    raise LinAlgError(f"{who}: the {n} x {n} covariance matrix is not positive definite even with jitter "
                      f"{tried[-1]:.3g} on its diagonal (mean diagonal {diag_mean:.3g})")


def _symmetrize_lower(a: np.ndarray, block: int = 512) -> None:
    """Copy the lower triangle of square ``a`` onto its upper triangle in place (block by block, so the
    temporary is a strip, not a matrix)."""
    n = a.shape[0]
    for j0 in range(0, n, block):
        j1 = min(n, j0 + block)
        a[j0:j1, j1:] = a[j1:, j0:j1].T
        blk = a[j0:j1, j0:j1]
        blk[...] = np.tril(blk) + np.tril(blk, -1).T


class _GaussianLogMarginal(Op):
    """log N(r; 0, K + s I) given the factor L of K + s I and α, computed outside (``attrs``); inputs K, s, r."""

    @staticmethod
    def forward(K, s, r, L, alpha, jitter):
        n = r.shape[0]
        quad = float(r @ alpha)
        return np.asarray(-0.5 * quad - float(np.sum(np.log(np.diagonal(L)))) - 0.5 * n * math.log(2 * math.pi))

    @staticmethod
    def backward(node, out, g):
        K, s, r = node.inputs
        attrs = node.attrs
        if is_grad_enabled():  # create_graph: the differentiable composite
            return composite_backward(node.inputs, _composite(K, s, r, attrs["jitter"]), g)
        gd = float(g.data)
        L, alpha = attrs["L"], attrs["alpha"]
        gK = gs = None
        if K.requires_grad or s.requires_grad:
            inv, info = lapack.dpotri(L, lower=1, overwrite_c=0)
            if info != 0:
                raise LinAlgError(f"gaussian_log_marginal backward: potri failed (info {info})")
            _symmetrize_lower(inv)
            inv *= -0.5 * gd
            # in place (inv is Fortran-ordered); the transpose of the symmetric result is the same matrix in C order
            gK = blas.dger(0.5 * gd, alpha, alpha, a=inv, overwrite_a=1).T
            if s.requires_grad:
                gs = np.asarray(np.trace(gK)).reshape(s.data.shape)
        gr = np.asarray(-gd * alpha) if r.requires_grad else None
        wrap = Tensor._wrap
        return (wrap(gK) if K.requires_grad else None, wrap(gs) if gs is not None else None,
                wrap(gr) if gr is not None else None)


def _composite(K: Tensor, s: Tensor, r: Tensor, jitter: float) -> Tensor:
    """The same log density from Tensor ops (any array module, any order of derivatives)."""
    n = r.shape[0]
    L = T.cholesky(K + (s + jitter) * eye(n, dtype=K.dtype))
    a = T.solve_triangular(L, r.unsqueeze(-1), lower=True).squeeze(-1)
    return -0.5 * (a * a).sum() - T.log(T.diagonal(L, 0, -2, -1)).sum() - 0.5 * n * math.log(2 * math.pi)


def _factor_shifted(Kd: np.ndarray, shift: float, jitters: list[float]) -> tuple[np.ndarray, float] | None:
    """The lower factor of Kd + (shift + eps) I for the first eps in ``jitters`` that works, and that eps; one
    n x n working array, factored in place (in Fortran order, as LAPACK wants)."""
    for eps in jitters:
        A = np.array(Kd, order="F")
        np.einsum("ii->i", A)[...] += shift + eps
        L, info = lapack.dpotrf(A, lower=1, clean=1, overwrite_a=1)
        if info == 0:
            return L, eps
        del A, L
    return None


def gaussian_log_marginal(K: Tensor, noise: Tensor, r: Tensor, jitter: float = 0.0, who: str = "GP") -> Tensor:
    """log N(r; 0, K + (noise + jitter) I) for a kernel matrix K (n, n), a noise variance (a scalar Tensor) and
    residuals r (n,), the jitter grown as in :func:`jittered_cholesky` when needed (see the module docstring)."""
    if get_array_module(K.data) is not np or K.data.dtype != np.float64:
        return _composite(K, noise, r, jitter)
    Kd, sd, rd = K.data, float(noise.data), r.data
    n = Kd.shape[0]
    base = float(np.mean(np.diagonal(Kd)))
    tried = jitter_sequence(abs(base) + sd, jitter)
    found = _factor_shifted(Kd, sd, tried)
    if found is None:
        raise LinAlgError(f"{who}: the {n} x {n} matrix K + noise I is not positive definite even with jitter "
                          f"{tried[-1]:.3g} (noise {sd:.3g}, mean diagonal of K {base:.3g})")
    L, eps = found
    if eps != jitter:
        _warn_jitter(who, eps, jitter)
    alpha, info = lapack.dpotrs(L, rd, lower=1)
    attrs: dict[str, Any] = {"L": L, "alpha": alpha, "jitter": eps}
    return apply(_GaussianLogMarginal, (K, noise, r), attrs)
