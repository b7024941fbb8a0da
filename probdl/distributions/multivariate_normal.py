"""Multivariate Gaussian families and their relatives: MultivariateNormal, LowRankMultivariateNormal,
MultivariateStudentT and GaussianRandomWalk, with the KL divergences between the Gaussian kinds
(including a diagonal Normal, ``Normal(loc, scale).to_event(1)``).

Densities come from a Cholesky factor through triangular solves, never an explicit inverse. When many
vectors share one matrix (a million draws, or a batch of locations with one covariance), they are laid
side by side as the columns of one right-hand side, so the work is one BLAS-3 call rather than one small
solve per vector against a copy of the matrix (``_columnwise``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from .. import tensor as T
from ..backend import as_generator, get_default_dtype
from ..tensor import Tensor
from ..tensor.ops.base import to_tensor
from ..tensor.ops.random import standard_normal_like
from . import constraints
from .combinators import Independent
from .distribution import Distribution
from .implicit_reparam import standard_gamma
from .kl import register_kl
from .normal import Normal

__all__ = ["MultivariateNormal", "LowRankMultivariateNormal", "MultivariateStudentT", "GaussianRandomWalk"]

_LOG_2PI = math.log(2 * math.pi)


# ------------------------------------------------------------------ helpers
def _floats(*xs: Any) -> list[Tensor]:
    """The arguments as Tensors of one floating dtype (the default float when none is floating)."""
    ts = [to_tensor(x) for x in xs]
    floating = [t.dtype for t in ts if t.dtype.kind == "f"]
    dtype = np.result_type(*floating) if floating else get_default_dtype()
    return [t if t.dtype == dtype else t.astype(dtype) for t in ts]


def _square(family: str, name: str, m: Tensor) -> int:
    if m.ndim < 2 or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"{family}: {name} must be a square matrix or a batch of them (..., d, d); "
                         f"got shape {m.shape}")
    return m.shape[-1]


def _check_loc(family: str, loc: Tensor, d: int, other: str) -> None:
    """``loc`` is a scalar (broadcast to every coordinate) or a (batch of) vector(s) of size d."""
    if loc.ndim and loc.shape[-1] != d:
        raise ValueError(f"{family}: loc of shape {loc.shape} does not match {other}: event sizes {loc.shape[-1]} "
                         f"and {d} differ")


def _batch(family: str, **batch_shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*batch_shapes.values()))
    except ValueError as e:
        shown = ", ".join(f"{k} {v}" for k, v in batch_shapes.items())
        raise ValueError(f"{family}: the batch shapes do not broadcast: {shown}") from e


def _vector_value(dist: Distribution, value: Any) -> Tensor:
    value = to_tensor(value)
    if value.ndim == 0 or value.shape[-1] != dist.event_shape[0]:
        raise ValueError(f"{type(dist).__name__}: a value of shape {value.shape} does not end in the event shape "
                         f"{dist.event_shape}")
    dist._validate_sample(value)
    return value


def _standard_normal(shape: tuple[int, ...], like: Tensor, rng: Any) -> Tensor:
    """Standard normal noise of ``shape`` in ``like``'s dtype, on its device (recorded when traced)."""
    return standard_normal_like(shape, like, rng)


def _eye(n: int, like: Tensor) -> Tensor:
    return T.eye(n, dtype=like.dtype, device=like.device)


def _columnwise(fn: Callable[[Tensor], Tensor], nb: int, v: Tensor) -> Tensor:
    """``fn`` applied to every vector of ``v`` at once, the vectors laid out as matrix columns.

    ``v`` has shape lead + mb + (k,), where mb are its last ``nb`` batch dims, the ones the matrices
    inside ``fn`` carry. ``fn`` receives mb + (k, n) with n = prod(lead) and returns mb + rest + (n,);
    the result has shape lead + mb + rest. With unbatched matrices (nb = 0) this is one (k, n)
    right-hand side for a single LAPACK/BLAS call, and the matrix is never copied per vector.
    """
    split = v.ndim - 1 - nb
    lead, mb = v.shape[:split], v.shape[split:-1]
    cols = T.moveaxis(v.reshape((math.prod(lead),) + v.shape[split:]), 0, -1)
    out = fn(cols)
    return T.moveaxis(out, -1, 0).reshape(lead + mb + out.shape[len(mb):-1])


def _solve_lower(L: Tensor, B: Tensor) -> Tensor:
    """L⁻¹ B for lower-triangular L (..., d, d) and matrices B (..., d, n), batch dims broadcasting
    (B is broadcast to L's batch first, so it is never mistaken for a batch of vectors)."""
    batch = tuple(np.broadcast_shapes(L.shape[:-2], B.shape[:-2]))
    return T.solve_triangular(L, T.broadcast_to(B, batch + B.shape[-2:]), lower=True)


def _col_sq_norm(x: Tensor) -> Tensor:
    """The squared norm of each column of x (..., d, n): one pass, no temporary the size of x."""
    return T.einsum("...ij,...ij->...j", x, x)


def _tril_inv_quad(L: Tensor, B: Tensor) -> Tensor:
    """bᵀ (L Lᵀ)⁻¹ b = ‖L⁻¹ b‖² for each column b of B: shape (..., n)."""
    return _col_sq_norm(_solve_lower(L, B))


def _half_log_det(L: Tensor) -> Tensor:
    """½ log det (L Lᵀ) = Σ log L_ii."""
    return T.log(T.diagonal(L, axis1=-2, axis2=-1)).sum(-1)


def _precision_to_scale_tril(P: Tensor) -> Tensor:
    """The lower Cholesky factor of Σ = P⁻¹, from one Cholesky factorization and one triangular solve.

    With J the exchange matrix (J = Jᵀ = J⁻¹; J X J reverses the rows and the columns of X), let C be
    the lower Cholesky factor of J P J. Then P = U Uᵀ with U = J C J upper triangular, so
    Σ = U⁻ᵀ U⁻¹ and L = U⁻ᵀ = J C⁻ᵀ J is lower triangular with a positive diagonal: it is Σ's Cholesky
    factor (which is unique). C⁻ᵀ is one triangular solve of Cᵀ against the identity; Σ is never formed.
    """
    C = T.cholesky(T.flip(P, (-2, -1)))
    eye = T.broadcast_to(_eye(P.shape[-1], P), C.shape)
    return T.flip(T.solve_triangular(C, eye, trans=1, lower=True), (-2, -1))


# ------------------------------------------------------------------ families
class MultivariateNormal(Distribution):
    """MultivariateNormal(loc, covariance_matrix | precision_matrix | scale_tril) on ℝᵈ:

        p(x) = (2π)^(-d/2) det(Σ)^(-1/2) exp(-½ (x - μ)ᵀ Σ⁻¹ (x - μ)),    Σ = L Lᵀ.

    Exactly one of the three matrices is given; batch dims of ``loc`` and the matrix broadcast, and a
    scalar ``loc`` is the same for every coordinate. All three reduce to the Cholesky factor L (from a
    precision matrix without inverting it, see ``_precision_to_scale_tril``); the other two matrices
    are computed on first use. ``log_prob`` takes the Mahalanobis term ‖L⁻¹(x - μ)‖² by one triangular
    solve; draws are μ + L ε.
    """

    arg_constraints = {"loc": constraints.real_vector, "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite, "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: Any = 0.0, covariance_matrix: Any = None, precision_matrix: Any = None,
                 scale_tril: Any = None, validate_args: bool | None = None) -> None:
        given = {k: v for k, v in (("covariance_matrix", covariance_matrix), ("precision_matrix", precision_matrix),
                                   ("scale_tril", scale_tril)) if v is not None}
        if len(given) != 1:
            raise ValueError("MultivariateNormal: give exactly one of covariance_matrix, precision_matrix and "
                             f"scale_tril; got {', '.join(given) or 'none'}")
        ((name, matrix),) = given.items()
        loc, matrix = _floats(loc, matrix)
        d = _square("MultivariateNormal", name, matrix)
        _check_loc("MultivariateNormal", loc, d, f"{name} of shape {matrix.shape}")
        batch = _batch("MultivariateNormal", loc=loc.shape[:-1], **{name: matrix.shape[:-2]})
        self.loc = T.broadcast_to(loc, batch + (d,))
        setattr(self, name, T.broadcast_to(matrix, batch + (d, d)))  # shadows the lazy property of that name
        self._given_args = ("loc", name)
        super().__init__(batch, (d,), validate_args)
        # only the lower triangle of scale_tril is read, by the draws and moments as by the solves (so no
        # gradient reaches the upper one)
        self._unbroadcasted_scale_tril = T.tril(matrix) if name == "scale_tril" else (
            T.cholesky(matrix) if name == "covariance_matrix" else _precision_to_scale_tril(matrix))

    @cached_property
    def scale_tril(self) -> Tensor:
        return T.broadcast_to(self._unbroadcasted_scale_tril, self.batch_shape + self.event_shape * 2)

    @cached_property
    def covariance_matrix(self) -> Tensor:
        L = self._unbroadcasted_scale_tril
        return T.broadcast_to(L @ T.matrix_transpose(L), self.batch_shape + self.event_shape * 2)

    @cached_property
    def precision_matrix(self) -> Tensor:
        L = self._unbroadcasted_scale_tril
        eye = T.broadcast_to(_eye(L.shape[-1], L), L.shape)
        return T.broadcast_to(T.cholesky_solve(eye, L), self.batch_shape + self.event_shape * 2)

    def _inv_quad_cols(self, B: Tensor) -> Tensor:
        return _tril_inv_quad(self._unbroadcasted_scale_tril, B)

    @property
    def _half_log_det(self) -> Tensor:
        return _half_log_det(self._unbroadcasted_scale_tril)

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        L = self._unbroadcasted_scale_tril
        eps = _standard_normal(self.shape(sample_shape), self.loc, rng)
        return self.loc + _columnwise(lambda cols: L @ cols, L.ndim - 2, eps)

    def log_prob(self, value: Any) -> Tensor:
        diff = _vector_value(self, value) - self.loc
        m = _columnwise(self._inv_quad_cols, self._unbroadcasted_scale_tril.ndim - 2, diff)
        return -0.5 * (self.event_shape[0] * _LOG_2PI + m) - self._half_log_det

    def entropy(self) -> Tensor:
        return T.broadcast_to(0.5 * self.event_shape[0] * (1 + _LOG_2PI) + self._half_log_det, self.batch_shape)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        L = self._unbroadcasted_scale_tril
        return T.broadcast_to((L * L).sum(-1), self.batch_shape + self.event_shape)


class LowRankMultivariateNormal(Distribution):
    """LowRankMultivariateNormal(loc, cov_factor, cov_diag): a normal on ℝᵈ with covariance
    Σ = W Wᵀ + D, W = cov_factor (d × r) and D = diag(cov_diag) > 0.

    With the r × r capacitance K = I + Wᵀ D⁻¹ W = L_K L_Kᵀ, the matrix determinant lemma gives
    log det Σ = log det K + Σᵢ log Dᵢ, and Woodbury's identity gives
    xᵀ Σ⁻¹ x = xᵀ D⁻¹ x - ‖L_K⁻¹ Wᵀ D⁻¹ x‖², so density and draws (μ + W ε_r + √D ε_d) cost
    O(d r²) per batch member instead of O(d³).
    """

    arg_constraints = {"loc": constraints.real_vector, "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: Any, cov_factor: Any, cov_diag: Any, validate_args: bool | None = None) -> None:
        name = "LowRankMultivariateNormal"
        loc, W, D = _floats(loc, cov_factor, cov_diag)
        if W.ndim < 2:
            raise ValueError(f"{name}: cov_factor must have shape (..., d, r); got shape {W.shape}")
        d, r = W.shape[-2:]
        if D.ndim < 1 or D.shape[-1] != d:
            raise ValueError(f"{name}: cov_diag of shape {D.shape} does not match cov_factor of shape {W.shape}: "
                             f"it needs {d} entries in its last dim")
        _check_loc(name, loc, d, f"cov_factor of shape {W.shape}")
        batch = _batch(name, loc=loc.shape[:-1], cov_factor=W.shape[:-2], cov_diag=D.shape[:-1])
        self.loc = T.broadcast_to(loc, batch + (d,))
        self.cov_factor = T.broadcast_to(W, batch + (d, r))
        self.cov_diag = T.broadcast_to(D, batch + (d,))
        super().__init__(batch, (d,), validate_args)
        mb = tuple(np.broadcast_shapes(W.shape[:-2], D.shape[:-1]))  # the batch dims the matrices carry
        self._W, self._D = T.broadcast_to(W, mb + (d, r)), T.broadcast_to(D, mb + (d,))
        self._Wt_Dinv = T.matrix_transpose(self._W / T.unsqueeze(self._D, -1))  # Wᵀ D⁻¹, (r, d)
        self._capacitance_tril = T.cholesky(_eye(r, W) + self._Wt_Dinv @ self._W)

    def _inv_quad_cols(self, B: Tensor) -> Tensor:
        """bᵀ Σ⁻¹ b for each column b of B (..., d, n), by Woodbury's identity."""
        A = _solve_lower(self._capacitance_tril, self._Wt_Dinv @ B)
        return T.einsum("...ij,...ij->...j", B / T.unsqueeze(self._D, -1), B) - _col_sq_norm(A)

    @property
    def _half_log_det(self) -> Tensor:
        return _half_log_det(self._capacitance_tril) + 0.5 * T.log(self._D).sum(-1)

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        shape = self.shape(sample_shape)
        eps_r = _standard_normal(shape[:-1] + (self._W.shape[-1],), self.loc, rng)
        eps_d = _standard_normal(shape, self.loc, rng)
        W = self._W
        return self.loc + _columnwise(lambda cols: W @ cols, W.ndim - 2, eps_r) + T.sqrt(self.cov_diag) * eps_d

    def log_prob(self, value: Any) -> Tensor:
        diff = _vector_value(self, value) - self.loc
        m = _columnwise(self._inv_quad_cols, self._D.ndim - 1, diff)
        return -0.5 * (self.event_shape[0] * _LOG_2PI + m) - self._half_log_det

    def entropy(self) -> Tensor:
        return T.broadcast_to(0.5 * self.event_shape[0] * (1 + _LOG_2PI) + self._half_log_det, self.batch_shape)

    @cached_property
    def covariance_matrix(self) -> Tensor:
        cov = self._W @ T.matrix_transpose(self._W) + T.diag_embed(self._D)
        return T.broadcast_to(cov, self.batch_shape + self.event_shape * 2)

    @cached_property
    def precision_matrix(self) -> Tensor:
        A = _solve_lower(self._capacitance_tril, self._Wt_Dinv)  # Σ⁻¹ = D⁻¹ - Aᵀ A
        return T.broadcast_to(T.diag_embed(1 / self._D) - T.matrix_transpose(A) @ A,
                              self.batch_shape + self.event_shape * 2)

    @cached_property
    def scale_tril(self) -> Tensor:
        return T.cholesky(self.covariance_matrix)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return T.broadcast_to((self._W * self._W).sum(-1) + self._D, self.batch_shape + self.event_shape)


class MultivariateStudentT(Distribution):
    """MultivariateStudentT(df, loc, scale_tril) on ℝᵈ, with ν = df and Σ = L Lᵀ:

        p(x) = Γ((ν+d)/2) / (Γ(ν/2) (νπ)^(d/2) det(L)) · (1 + ‖L⁻¹(x - μ)‖²/ν)^(-(ν+d)/2).

    A scalar ``scale_tril`` is that multiple of the identity (of ``loc``'s size). Draws are
    μ + L z √(ν/χ²) with z standard normal and χ² = 2·Gamma(ν/2, 1), reparameterized in ``df``
    through the implicit gradient of the Gamma draw.

    References: Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018.
    """

    arg_constraints = {"df": constraints.positive, "loc": constraints.real_vector,
                       "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, df: Any, loc: Any = 0.0, scale_tril: Any = 1.0, validate_args: bool | None = None) -> None:
        name = "MultivariateStudentT"
        df, loc, L = _floats(df, loc, scale_tril)
        if L.ndim == 0:
            L = L * _eye(loc.shape[-1] if loc.ndim else 1, L)
        d = _square(name, "scale_tril", L)
        _check_loc(name, loc, d, f"scale_tril of shape {L.shape}")
        batch = _batch(name, df=df.shape, loc=loc.shape[:-1], scale_tril=L.shape[:-2])
        self.df = T.broadcast_to(df, batch)
        self.loc = T.broadcast_to(loc, batch + (d,))
        self.scale_tril = T.broadcast_to(L, batch + (d, d))
        self._unbroadcasted_scale_tril = T.tril(L)  # only the lower triangle is read (as by MultivariateNormal)
        super().__init__(batch, (d,), validate_args)

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        gen = as_generator(rng)
        shape = self.shape(sample_shape)
        L = self._unbroadcasted_scale_tril
        z = _columnwise(lambda cols: L @ cols, L.ndim - 2, _standard_normal(shape, self.loc, gen))
        chi2 = 2 * standard_gamma(0.5 * self.df, shape[:-1], gen)
        return self.loc + z * T.unsqueeze(T.sqrt(self.df / chi2), -1)

    def log_prob(self, value: Any) -> Tensor:
        L, d, df = self._unbroadcasted_scale_tril, self.event_shape[0], self.df
        diff = _vector_value(self, value) - self.loc
        m = _columnwise(lambda cols: _tril_inv_quad(L, cols), L.ndim - 2, diff)
        half = 0.5 * (df + d)
        return (T.lgamma(half) - T.lgamma(0.5 * df) - 0.5 * d * T.log(math.pi * df) - _half_log_det(L)
                - half * T.log1p(m / df))

    def entropy(self) -> Tensor:
        L, d, df = self._unbroadcasted_scale_tril, self.event_shape[0], self.df
        half = 0.5 * (df + d)
        return (T.lgamma(0.5 * df) - T.lgamma(half) + 0.5 * d * T.log(math.pi * df) + _half_log_det(L)
                + half * (T.digamma(half) - T.digamma(0.5 * df)))

    @property
    def mean(self) -> Tensor:
        """``loc`` where df > 1, NaN elsewhere (the mean does not exist)."""
        return T.where(T.unsqueeze(self.df, -1).data > 1, self.loc, math.nan)

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        """diag(Σ)·ν/(ν-2) where ν > 2, +inf where 1 < ν ≤ 2, NaN where ν ≤ 1 (as PyTorch's StudentT)."""
        L, df = self._unbroadcasted_scale_tril, T.unsqueeze(self.df, -1)
        finite = df.data > 2
        v = T.broadcast_to((L * L).sum(-1), self.batch_shape + self.event_shape) * df / T.where(finite, df - 2, 1.0)
        return T.where(finite, v, T.where(df.data > 1, math.inf, math.nan))


class GaussianRandomWalk(Distribution):
    """GaussianRandomWalk(scale, num_steps): x_1 = scale·ε_1, x_t = x_{t-1} + scale·ε_t for
    t = 2..num_steps, with ε_t iid standard normal; the event is the path (num_steps,).

    The density is the product of the Normal(0, scale) densities of the increments x_t - x_{t-1}
    (with x_0 = 0); draws are cumulative sums. Var(x_t) = scale²·t.
    """

    arg_constraints = {"scale": constraints.positive}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, scale: Any = 1.0, num_steps: int = 1, validate_args: bool | None = None) -> None:
        if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
            raise ValueError(f"GaussianRandomWalk: num_steps must be a positive int; got {num_steps!r}")
        (self.scale,) = _floats(scale)
        self.num_steps = int(num_steps)
        super().__init__(self.scale.shape, (self.num_steps,), validate_args)

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        eps = _standard_normal(self.shape(sample_shape), self.scale, rng)
        return T.cumsum(eps, -1) * T.unsqueeze(self.scale, -1)

    def log_prob(self, value: Any) -> Tensor:
        x = _vector_value(self, value)
        z = T.cat([x[..., :1], x[..., 1:] - x[..., :-1]], -1) / T.unsqueeze(self.scale, -1)
        return -0.5 * (z * z).sum(-1) - self.num_steps * (T.log(self.scale) + 0.5 * _LOG_2PI)

    def entropy(self) -> Tensor:
        """The increments' entropy: the map from increments to the path has unit Jacobian."""
        return self.num_steps * (0.5 + 0.5 * _LOG_2PI + T.log(self.scale))

    @property
    def mean(self) -> Tensor:
        return T.zeros(self.batch_shape + self.event_shape, dtype=self.scale.dtype, device=self.scale.device)

    @property
    def variance(self) -> Tensor:
        steps = T.arange(1, self.num_steps + 1, dtype=self.scale.dtype, device=self.scale.device)
        return T.unsqueeze(self.scale * self.scale, -1) * steps


# ------------------------------------------------------------------ KL divergences
class _Gaussian(NamedTuple):
    """What the Gaussian KL needs from any of the Gaussian kinds."""

    loc: Tensor                              # μ, batch + (d,)
    sqrt_cov: Tensor                         # any S with S Sᵀ = Σ, (..., d, k)
    half_log_det: Tensor                     # ½ log det Σ
    inv_quad: Callable[[Tensor], Tensor]     # B (..., d, n) ↦ bᵀ Σ⁻¹ b for each column b, (..., n)


def _gaussian(p: Distribution) -> _Gaussian:
    if isinstance(p, MultivariateNormal):
        return _Gaussian(p.loc, p._unbroadcasted_scale_tril, p._half_log_det, p._inv_quad_cols)
    if isinstance(p, LowRankMultivariateNormal):
        return _Gaussian(p.loc, T.cat([p._W, T.diag_embed(T.sqrt(p._D))], -1), p._half_log_det, p._inv_quad_cols)
    if isinstance(p, Independent) and isinstance(p.base_dist, Normal) and p.reinterpreted_batch_ndims == 1:
        scale = T.broadcast_to(p.base_dist.scale, p.base_dist.batch_shape)
        s = T.unsqueeze(scale, -1)
        return _Gaussian(p.base_dist.mean, T.diag_embed(scale), T.log(scale).sum(-1),
                         lambda B: ((B / s) ** 2).sum(-2))
    raise NotImplementedError(f"kl_divergence: {p!r} is not a Gaussian with a vector event (an Independent needs a "
                              "Normal base and reinterpreted_batch_ndims=1)")


def _kl_gaussian(p: Distribution, q: Distribution) -> Tensor:
    """KL(p ‖ q) = ½ [tr(Σq⁻¹ Σp) + (μq - μp)ᵀ Σq⁻¹ (μq - μp) - d] + ½ log det Σq - ½ log det Σp, with
    tr(Σq⁻¹ Σp) = tr(Spᵀ Σq⁻¹ Sp) for any square root Sp of Σp: every term is a solve against q's factor."""
    gp, gq = _gaussian(p), _gaussian(q)
    if p.event_shape != q.event_shape:
        raise ValueError(f"kl_divergence: the event shapes {p.event_shape} and {q.event_shape} differ")
    trace = gq.inv_quad(gp.sqrt_cov).sum(-1)
    maha = gq.inv_quad(T.unsqueeze(gq.loc - gp.loc, -1))[..., 0]
    return gq.half_log_det - gp.half_log_det + 0.5 * (trace + maha - p.event_shape[0])


_MVN, _LOW_RANK = MultivariateNormal, LowRankMultivariateNormal
for _p, _q in [(_MVN, _MVN), (_LOW_RANK, _LOW_RANK), (_LOW_RANK, _MVN), (_MVN, _LOW_RANK),
               (Independent, _MVN), (_MVN, Independent), (Independent, _LOW_RANK), (_LOW_RANK, Independent)]:
    register_kl(_p, _q)(_kl_gaussian)  # Independent ‖ Independent stays kl.py's (it reduces to the bases)
