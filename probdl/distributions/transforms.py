"""Bijective transforms with log-Jacobians, the bridge between a support and the real line.

A transform maps ``domain`` to ``codomain``; ``t(x)`` applies it, ``t.inv`` is the inverse
transform (so ``t.inv(y)`` inverts), and ``t.log_abs_det_jacobian(x, y)`` gives
log |det ∂y/∂x| summed over the transform's event dims. Every map is written in probdl ops, so
it is differentiable and ``log_abs_det_jacobian`` can be checked against autograd.

Public methods wrap the private ``_forward``, ``_inverse`` and ``_log_abs_det_jacobian`` (TFP's
pattern), so a new transform fills in three small methods.

The file holds the elementwise maps (Exp, Softplus, Sigmoid, Tanh, Affine, Power, Abs), the
combinators (``ComposeTransform``, ``IndependentTransform``), the vector maps (stick breaking onto
the simplex, ordered and positive-ordered vectors, ``PermuteTransform``, ``ReshapeTransform``), the
matrix maps (vectors onto lower Cholesky factors and onto Cholesky factors of correlation matrices,
and the Cholesky factorization of positive-definite and correlation matrices), and the
``biject_to`` registry that maps every continuous constraint to a bijection from the reals. A
matrix map's log-Jacobian is taken on the free coordinates: the lower triangle of a symmetric
matrix, the strict lower triangle of a correlation matrix or of its Cholesky factor.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import tensor as T
from ..tensor import Tensor
from ..tensor.ops.base import to_tensor
from ..tensor.ops.indexing import _index_scatter  # the adjoint of indexing: fills a triangle, differentiably
from . import constraints
from .distribution import _shape

__all__ = ["Transform", "ExpTransform", "SoftplusTransform", "SigmoidTransform", "TanhTransform",
           "AffineTransform", "PowerTransform", "AbsTransform", "IdentityTransform", "ComposeTransform"]


class Transform:
    """Base class: ``domain``, ``codomain``, ``bijective``, ``sign`` (+1 increasing, -1 decreasing,
    0 unknown) and the three private maps."""

    domain: constraints.Constraint = constraints.real
    codomain: constraints.Constraint = constraints.real
    bijective = True
    sign = 1

    @property
    def event_dim(self) -> int:
        return self.domain.event_dim

    def __call__(self, x: Any) -> Tensor:
        return self._forward(to_tensor(x))

    @property
    def inv(self) -> Transform:
        """The inverse transform: ``t.inv(y)`` maps back, ``t.inv.inv`` is ``t``."""
        return _InverseTransform(self)

    def log_abs_det_jacobian(self, x: Any, y: Any) -> Tensor:
        """log |det ∂y/∂x| for y = self(x), summed over the event dims."""
        return self._log_abs_det_jacobian(to_tensor(x), to_tensor(y))

    def forward_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def inverse_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def _forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _inverse(self, y: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _InverseTransform(Transform):
    def __init__(self, base: Transform) -> None:
        self.base = base

    domain = property(lambda self: self.base.codomain)
    codomain = property(lambda self: self.base.domain)
    sign = property(lambda self: self.base.sign)

    @property
    def inv(self) -> Transform:
        return self.base

    def _forward(self, y):
        return self.base._inverse(y)

    def _inverse(self, x):
        return self.base._forward(x)

    def _log_abs_det_jacobian(self, y, x):
        return -self.base._log_abs_det_jacobian(x, y)

    def forward_shape(self, shape):
        return self.base.inverse_shape(shape)

    def inverse_shape(self, shape):
        return self.base.forward_shape(shape)

    def __repr__(self) -> str:
        return f"{self.base!r}.inv"


class IdentityTransform(Transform):
    """y = x."""

    def _forward(self, x):
        return x

    _inverse = _forward

    def _log_abs_det_jacobian(self, x, y):
        return T.zeros_like(x)


class ExpTransform(Transform):
    """y = exp(x): real → positive; log|dy/dx| = x."""

    codomain = constraints.positive

    def _forward(self, x):
        return T.exp(x)

    def _inverse(self, y):
        return T.log(y)

    def _log_abs_det_jacobian(self, x, y):
        return x


class SoftplusTransform(Transform):
    """y = log(1 + eˣ): real → positive; log|dy/dx| = log σ(x) = -softplus(-x)."""

    codomain = constraints.positive

    def _forward(self, x):
        return T.softplus(x)

    def _inverse(self, y):
        return y + T.log(-T.expm1(-y))  # log(eʸ - 1), stable for large and small y

    def _log_abs_det_jacobian(self, x, y):
        return -T.softplus(-x)


class SigmoidTransform(Transform):
    """y = σ(x): real → unit interval; log|dy/dx| = log σ(x) + log σ(-x)."""

    codomain = constraints.unit_interval

    def _forward(self, x):
        return T.sigmoid(x)

    def _inverse(self, y):
        return T.log(y) - T.log1p(-y)

    def _log_abs_det_jacobian(self, x, y):
        return -T.softplus(-x) - T.softplus(x)


class TanhTransform(Transform):
    """y = tanh(x): real → (-1, 1); log|dy/dx| = 2 (log 2 - x - softplus(-2x))."""

    codomain = constraints.open_interval(-1.0, 1.0)

    def _forward(self, x):
        return T.tanh(x)

    def _inverse(self, y):
        return 0.5 * (T.log1p(y) - T.log1p(-y))

    def _log_abs_det_jacobian(self, x, y):
        return 2.0 * (math.log(2.0) - x - T.softplus(-2.0 * x))


class AffineTransform(Transform):
    """y = loc + scale · x, elementwise (``event_dim`` > 0 sums the log-Jacobian over that many dims)."""

    def __init__(self, loc: Any, scale: Any, event_dim: int = 0) -> None:
        self.loc, self.scale = to_tensor(loc), to_tensor(scale)
        self._event_dim = event_dim
        self.domain = constraints.independent(constraints.real, event_dim) if event_dim else constraints.real
        self.codomain = self.domain

    @property
    def sign(self):
        s = self.scale.data
        return 1 if (s > 0).all() else -1 if (s < 0).all() else 0

    def _forward(self, x):
        return self.loc + self.scale * x

    def _inverse(self, y):
        return (y - self.loc) / self.scale

    def _log_abs_det_jacobian(self, x, y):
        out = T.broadcast_to(T.log(T.abs(self.scale)), x.shape)
        return out.sum(tuple(range(-self._event_dim, 0))) if self._event_dim else out

    def __repr__(self) -> str:
        return f"AffineTransform(loc={self.loc.tolist()}, scale={self.scale.tolist()})"


class PowerTransform(Transform):
    """y = x^p on the positive reals; log|dy/dx| = log|p y / x|."""

    domain = constraints.positive
    codomain = constraints.positive

    def __init__(self, exponent: Any) -> None:
        self.exponent = to_tensor(exponent)

    @property
    def sign(self):
        e = self.exponent.data
        return 1 if (e > 0).all() else -1 if (e < 0).all() else 0

    def _forward(self, x):
        return x ** self.exponent

    def _inverse(self, y):
        return y ** (1.0 / self.exponent)

    def _log_abs_det_jacobian(self, x, y):
        return T.log(T.abs(self.exponent * y / x))


class AbsTransform(Transform):
    """y = |x|, not bijective: its ``inv`` maps y ≥ 0 back to y (the non-negative branch)."""

    codomain = constraints.nonnegative
    bijective = False

    def _forward(self, x):
        return T.abs(x)

    def _inverse(self, y):
        return y

    def _log_abs_det_jacobian(self, x, y):
        return T.zeros_like(x)


class ComposeTransform(Transform):
    """Apply ``parts`` left to right: y = parts[-1](...parts[0](x)); log-Jacobians add up."""

    def __init__(self, parts: list[Transform]) -> None:
        if not parts or not all(isinstance(p, Transform) for p in parts):
            raise TypeError("ComposeTransform: parts must be a non-empty list of Transforms")
        self.parts = list(parts)

    domain = property(lambda self: self.parts[0].domain)
    codomain = property(lambda self: self.parts[-1].codomain)
    bijective = property(lambda self: all(p.bijective for p in self.parts))

    @property
    def sign(self):
        s = 1
        for p in self.parts:
            s *= p.sign
        return s

    def _forward(self, x):
        for p in self.parts:
            x = p._forward(x)
        return x

    def _inverse(self, y):
        for p in reversed(self.parts):
            y = p._inverse(y)
        return y

    @property
    def event_dim(self) -> int:
        """The input's event dims: read back from the last codomain, as a later part may span more dims
        than an earlier one (Exp then a vector Affine) or change their number (vector → matrix)."""
        e = self.parts[-1].codomain.event_dim
        for p in reversed(self.parts):
            e = p.domain.event_dim + max(e - p.codomain.event_dim, 0)
        return e

    def _log_abs_det_jacobian(self, x, y):
        batch_ndim = x.ndim - self.event_dim  # every term is summed down to the composition's batch shape
        total = None
        for p in self.parts:
            y_p = p._forward(x)
            term = p._log_abs_det_jacobian(x, y_p)
            if term.ndim > batch_ndim:
                term = term.sum(tuple(range(batch_ndim - term.ndim, 0)))
            total = term if total is None else total + term
            x = y_p
        return total

    def forward_shape(self, shape):
        for p in self.parts:
            shape = p.forward_shape(shape)
        return shape

    def inverse_shape(self, shape):
        for p in reversed(self.parts):
            shape = p.inverse_shape(shape)
        return shape

    def __repr__(self) -> str:
        return "ComposeTransform([" + ", ".join(map(repr, self.parts)) + "])"


class IndependentTransform(Transform):
    """``base`` with ``reinterpreted_batch_ndims`` more rightmost dims in one event: the log-Jacobian
    is summed over them."""

    def __init__(self, base: Transform, reinterpreted_batch_ndims: int) -> None:
        if not isinstance(base, Transform):
            raise TypeError(f"IndependentTransform: base must be a Transform, got {type(base).__name__}")
        self.base, self.reinterpreted_batch_ndims = base, int(reinterpreted_batch_ndims)

    domain = property(lambda self: constraints.independent(self.base.domain, self.reinterpreted_batch_ndims))
    codomain = property(lambda self: constraints.independent(self.base.codomain, self.reinterpreted_batch_ndims))
    sign = property(lambda self: self.base.sign)

    def _forward(self, x):
        return self.base._forward(x)

    def _inverse(self, y):
        return self.base._inverse(y)

    def _log_abs_det_jacobian(self, x, y):
        out = self.base._log_abs_det_jacobian(x, y)
        n = self.reinterpreted_batch_ndims
        return out.sum(tuple(range(-n, 0))) if n else out

    def __repr__(self) -> str:
        return f"IndependentTransform({self.base!r}, {self.reinterpreted_batch_ndims})"


class StickBreakingTransform(Transform):
    """Real vectors of length K-1 → the K-simplex by stick breaking: zᵢ = σ(xᵢ - log(K-1-i)),
    yᵢ = zᵢ ∏_{j<i}(1 - zⱼ), y_K = ∏(1 - zⱼ). The offsets make x = 0 the uniform point. Computed in log
    space, so it stays finite for any x; log|J| = Σ [log zᵢ + log(1 - zᵢ) + Σ_{j<i} log(1 - zⱼ)].

    References: Stan Reference Manual, "Unit simplex" transform.
    """

    domain = constraints.real_vector
    codomain = constraints.simplex

    @staticmethod
    def _offset(k: int, like: Tensor) -> Tensor:
        return T.log(T.arange(float(k), 0.0, -1.0, dtype=like.dtype))  # log(K-1-i), i = 0..K-2

    def _pieces(self, x):
        t = x - self._offset(x.shape[-1], x)
        log_z, log_1mz = T.log_sigmoid(t), T.log_sigmoid(-t)
        cum = T.cumsum(log_1mz, -1)
        before = T.pad(cum[..., :-1], [(0, 0)] * (x.ndim - 1) + [(1, 0)])  # Σ_{j<i} log(1 - zⱼ)
        return log_z, log_1mz, cum, before

    def _forward(self, x):
        log_z, _, cum, before = self._pieces(x)
        return T.exp(T.concatenate([log_z + before, cum[..., -1:]], -1))

    def _inverse(self, y):
        head = y[..., :-1]
        remainder = 1 - T.pad(T.cumsum(head, -1)[..., :-1], [(0, 0)] * (y.ndim - 1) + [(1, 0)])
        z = head / remainder
        return T.log(z) - T.log1p(-z) + self._offset(head.shape[-1], y)

    def _log_abs_det_jacobian(self, x, y):
        log_z, log_1mz, _, before = self._pieces(x)
        return (log_z + log_1mz + before).sum(-1)

    def forward_shape(self, shape):
        return shape[:-1] + (shape[-1] + 1,)

    def inverse_shape(self, shape):
        return shape[:-1] + (shape[-1] - 1,)


class OrderedTransform(Transform):
    """Real vectors → increasing vectors: y₀ = x₀, yᵢ = yᵢ₋₁ + exp(xᵢ); log|J| = Σ_{i≥1} xᵢ."""

    domain = constraints.real_vector
    codomain = constraints.ordered_vector

    def _forward(self, x):
        return T.cumsum(T.concatenate([x[..., :1], T.exp(x[..., 1:])], -1), -1)

    def _inverse(self, y):
        return T.concatenate([y[..., :1], T.log(y[..., 1:] - y[..., :-1])], -1)

    def _log_abs_det_jacobian(self, x, y):
        return x[..., 1:].sum(-1)


class PositiveOrderedTransform(Transform):
    """Real vectors → positive increasing vectors: y = cumsum(exp(x)); log|J| = Σ xᵢ. (Exponentiating an
    ordered vector instead would exponentiate twice and overflow.)

    References: Stan Reference Manual, "Positive ordered vector" transform.
    """

    domain = constraints.real_vector
    codomain = constraints.positive_ordered_vector

    def _forward(self, x):
        return T.cumsum(T.exp(x), -1)

    def _inverse(self, y):
        return T.log(T.concatenate([y[..., :1], y[..., 1:] - y[..., :-1]], -1))

    def _log_abs_det_jacobian(self, x, y):
        return x.sum(-1)


def _tril_size(m: int, name: str) -> int:
    """n such that n(n+1)/2 = m."""
    n = int(round((math.sqrt(8 * m + 1) - 1) / 2))
    if n * (n + 1) // 2 != m:
        raise ValueError(f"{name}: a vector of length {m} is not n(n+1)/2 for any n")
    return n


class LowerCholeskyTransform(Transform):
    """Real vectors of length n(n+1)/2 → lower-triangular n×n matrices with a positive diagonal:
    the first n(n-1)/2 entries fill the strict lower triangle row by row, the last n are the logs
    of the diagonal. log|J| = Σ (the last n entries)."""

    domain = constraints.real_vector
    codomain = constraints.lower_cholesky

    def _positive(self, d: Tensor) -> Tensor:
        return T.exp(d)

    def _positive_inv(self, d: Tensor) -> Tensor:
        return T.log(d)

    def _positive_log_det(self, d: Tensor) -> Tensor:
        return d

    def _forward(self, x):
        m = x.shape[-1]
        n = _tril_size(m, type(self).__name__)
        rows, cols = np.tril_indices(n, -1)
        strict = _index_scatter(x[..., :m - n], (Ellipsis, rows, cols), x.shape[:-1] + (n, n))
        return strict + T.diag_embed(self._positive(x[..., m - n:]))

    def _inverse(self, y):
        n = y.shape[-1]
        rows, cols = np.tril_indices(n, -1)
        return T.concatenate([y[..., rows, cols], self._positive_inv(T.diagonal(y, 0, -2, -1))], -1)

    def _log_abs_det_jacobian(self, x, y):
        n = _tril_size(x.shape[-1], type(self).__name__)
        return self._positive_log_det(x[..., x.shape[-1] - n:]).sum(-1)

    def forward_shape(self, shape):
        n = _tril_size(shape[-1], type(self).__name__)
        return shape[:-1] + (n, n)

    def inverse_shape(self, shape):
        return shape[:-2] + (shape[-1] * (shape[-1] + 1) // 2,)


class SoftplusLowerCholeskyTransform(LowerCholeskyTransform):
    """As :class:`LowerCholeskyTransform` with a softplus diagonal (gentler than exp far from 0);
    log|J| = Σ log σ(dᵢ)."""

    def _positive(self, d):
        return T.softplus(d)

    def _positive_inv(self, d):
        return SoftplusTransform()._inverse(d)

    def _positive_log_det(self, d):
        return -T.softplus(-d)


def _log1m_tanh2(x: Tensor) -> Tensor:
    """log(1 - tanh²x) = 2 (log 2 - x - softplus(-2x)), finite for any x."""
    return 2.0 * (math.log(2.0) - x - T.softplus(-2.0 * x))


def _exclusive_cumsum(x: Tensor) -> Tensor:
    """Σ_{k<j} x_k along the last axis (0 in the first slot)."""
    return T.pad(T.cumsum(x, -1)[..., :-1], [(0, 0)] * (x.ndim - 1) + [(1, 0)])


def partial_corr_to_cholesky(z: Any, log1m_z2: Any) -> Tensor:
    """The Cholesky factor of a correlation matrix from its canonical partial correlations.

    ``z`` (…, d, d) holds the partial correlations z_ij ∈ (-1, 1) in its strict lower triangle and 0
    elsewhere, ``log1m_z2`` holds log(1 - z_ij²) there (passed in so that callers keep it finite
    where z rounds to ±1). Row i is a broken stick: with sᵢⱼ = ∏_{k<j} (1 - z_ik²) the squared length
    left, L_ij = z_ij √sᵢⱼ for j < i and L_ii = √sᵢᵢ, so every row has unit norm. The product is a
    cumulative sum of logs, so the whole batch is one vectorized expression.

    References: Lewandowski, Kurowicka & Joe (2009), "Generating random correlation matrices based on
    vines and extended onion method", J. Multivariate Analysis 100; Stan Reference Manual, "Cholesky
    factors of correlation matrices".
    """
    z, log1m_z2 = to_tensor(z), to_tensor(log1m_z2)
    eye = T.eye(z.shape[-1], dtype=z.dtype, device=z.device)
    return (z + eye) * T.exp(0.5 * _exclusive_cumsum(log1m_z2))


def _corr_size(m: int, name: str) -> int:
    """d such that d(d-1)/2 = m."""
    return _tril_size(m, name) + 1


class CorrCholeskyTransform(Transform):
    """Real vectors of length d(d-1)/2 → Cholesky factors of d×d correlation matrices: zᵢ = tanh(xᵢ) fill
    the strict lower triangle row by row as canonical partial correlations, and each row is a broken
    stick (see :func:`partial_corr_to_cholesky`). x = 0 gives the identity.

    The Jacobian onto the strict lower triangle of L is triangular in row-major order, with
    ∂L_ij/∂x_ij = (1 - z_ij²) ∏_{k<j} (1 - z_ik²)^½, so
    log|J| = Σ_{i>j} [log(1 - z_ij²) + ½ Σ_{k<j} log(1 - z_ik²)] = Σ_{i>k} (i - k + 1)/2 · log(1 - z_ik²).

    References: Stan Reference Manual, "Cholesky factors of correlation matrices"; Lewandowski,
    Kurowicka & Joe (2009), J. Multivariate Analysis 100.
    """

    domain = constraints.real_vector
    codomain = constraints.corr_cholesky

    def _forward(self, x):
        d = _corr_size(x.shape[-1], type(self).__name__)
        key, shape = (Ellipsis, *np.tril_indices(d, -1)), x.shape[:-1] + (d, d)
        return partial_corr_to_cholesky(_index_scatter(T.tanh(x), key, shape),
                                        _index_scatter(_log1m_tanh2(x), key, shape))

    def _inverse(self, y):
        rows, cols = np.tril_indices(y.shape[-1], -1)
        used = _exclusive_cumsum(y * y)[..., rows, cols]  # Σ_{k<j} L_ik²: the part of row i's stick spent
        z = y[..., rows, cols] / T.sqrt(1 - used)
        return 0.5 * (T.log1p(z) - T.log1p(-z))

    def _log_abs_det_jacobian(self, x, y):
        rows, cols = np.tril_indices(_corr_size(x.shape[-1], type(self).__name__), -1)
        return (_log1m_tanh2(x) * ((rows - cols + 1) / 2.0).astype(x.dtype)).sum(-1)

    def forward_shape(self, shape):
        d = _corr_size(shape[-1], type(self).__name__)
        return shape[:-1] + (d, d)

    def inverse_shape(self, shape):
        return shape[:-2] + (shape[-1] * (shape[-1] - 1) // 2,)


class CholeskyTransform(Transform):
    """Positive-definite M → its lower Cholesky factor L; the inverse is L ↦ L Lᵀ.

    On the free coordinates (the lower triangles of M and of L) the map L ↦ M is triangular in
    row-major order with ∂M_ij/∂L_ij = L_jj (j < i) and ∂M_ii/∂L_ii = 2 L_ii, so with 0-based i
    log|det ∂M/∂L| = d log 2 + Σᵢ (d - i) log L_ii, and log|det ∂L/∂M| is its negative.
    """

    domain = constraints.positive_definite
    codomain = constraints.lower_cholesky

    def _forward(self, x):
        return T.cholesky(x)

    def _inverse(self, y):
        return T.matmul(y, T.swapaxes(y, -1, -2))

    def _diag_weights(self, d: int) -> np.ndarray:
        return np.arange(d, 0, -1.0)

    def _log_abs_det_jacobian(self, x, y):
        d = y.shape[-1]
        log_diag = T.log(T.diagonal(y, 0, -2, -1))
        return -(log_diag * self._diag_weights(d).astype(y.dtype)).sum(-1) - self._constant(d)

    def _constant(self, d: int) -> float:
        return d * math.log(2.0)


class CorrMatrixCholeskyTransform(CholeskyTransform):
    """Correlation matrix Ω → its Cholesky factor L (rows of unit norm); the inverse is L ↦ L Lᵀ.

    Only the strict lower triangles are free. Ω_ij (i > j) depends on L in rows ≤ i, and on L_ij
    through L_ij L_jj alone (L_jj is fixed by row j), so log|det ∂Ω/∂L| = Σⱼ (d - 1 - j) log L_jj
    (0-based j), and this transform's log|J| is its negative.
    """

    domain = constraints.corr_matrix
    codomain = constraints.corr_cholesky

    def _diag_weights(self, d):
        return np.arange(d - 1, -1, -1.0)

    def _constant(self, d):
        return 0.0


class PermuteTransform(Transform):
    """y = x[..., permutation]: reorders a vector's entries; log|J| = 0."""

    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, permutation: Any) -> None:
        p = np.asarray(permutation.numpy() if isinstance(permutation, Tensor) else permutation)
        if p.ndim != 1 or p.dtype.kind not in "iu" or not np.array_equal(np.sort(p), np.arange(p.size)):
            raise ValueError(f"PermuteTransform: permutation must be a permutation of 0..n-1, got {p.tolist()}")
        self.permutation, self._inv_permutation = p, np.argsort(p)

    def _forward(self, x):
        return x[..., self.permutation]

    def _inverse(self, y):
        return y[..., self._inv_permutation]

    def _log_abs_det_jacobian(self, x, y):
        return T.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)

    def __repr__(self) -> str:
        return f"PermuteTransform({self.permutation.tolist()})"


class ReshapeTransform(Transform):
    """Reshape the rightmost dims from ``inverse_shape`` to ``forward_shape`` (same number of entries);
    log|J| = 0. (NumPyro's arguments; PyTorch calls them out_shape and in_shape.)"""

    def __init__(self, forward_shape: Any, inverse_shape: Any) -> None:
        self._forward_shape, self._inverse_shape = _shape(forward_shape), _shape(inverse_shape)
        if math.prod(self._forward_shape) != math.prod(self._inverse_shape):
            raise ValueError(f"ReshapeTransform: forward_shape {self._forward_shape} and inverse_shape "
                             f"{self._inverse_shape} hold different numbers of entries")
        self.domain = constraints.independent(constraints.real, len(self._inverse_shape))
        self.codomain = constraints.independent(constraints.real, len(self._forward_shape))

    def _forward(self, x):
        return x.reshape(self.forward_shape(x.shape))

    def _inverse(self, y):
        return y.reshape(self.inverse_shape(y.shape))

    def _log_abs_det_jacobian(self, x, y):
        return T.zeros(x.shape[:x.ndim - len(self._inverse_shape)], dtype=x.dtype, device=x.device)

    def _swap(self, shape, old, new):
        shape = tuple(shape)
        if shape[len(shape) - len(old):] != old:
            raise ValueError(f"ReshapeTransform: shape {shape} does not end in {old}")
        return shape[:len(shape) - len(old)] + new

    def forward_shape(self, shape):
        return self._swap(shape, self._inverse_shape, self._forward_shape)

    def inverse_shape(self, shape):
        return self._swap(shape, self._forward_shape, self._inverse_shape)

    def __repr__(self) -> str:
        return f"ReshapeTransform(forward_shape={self._forward_shape}, inverse_shape={self._inverse_shape})"


# ---------------------------------------------------------------------------- biject_to
class ConstraintRegistry:
    """Maps a constraint (by its type) to a factory of the transform from the reals onto it."""

    def __init__(self) -> None:
        self._factories: dict[type, Any] = {}

    def register(self, constraint: Any, factory: Any = None) -> Any:
        """Register ``factory(constraint) -> Transform`` for a constraint's type (usable as a decorator)."""
        if factory is None:
            return lambda f: self.register(constraint, f)
        key = constraint if isinstance(constraint, type) else type(constraint)
        self._factories[key] = factory
        return factory

    def __call__(self, constraint: constraints.Constraint) -> Transform:
        if not isinstance(constraint, constraints.Constraint):
            raise TypeError(f"biject_to: expected a Constraint, got {type(constraint).__name__}")
        factory = self._factories.get(type(constraint))
        if factory is None:
            kind = "discrete " if constraint.is_discrete else ""
            raise NotImplementedError(f"biject_to: no transform to the {kind}constraint {constraint!r}"
                                      + (" (a discrete support has no bijection from the reals)" if kind else ""))
        return factory(constraint)


biject_to = ConstraintRegistry()
transform_to = biject_to  # every registered transform is a bijection, so the two registries coincide for now

C = constraints
biject_to.register(C._Real, lambda c: IdentityTransform())
biject_to.register(C._Positive, lambda c: ExpTransform())
biject_to.register(C._Nonnegative, lambda c: ExpTransform())
biject_to.register(C._GreaterThan, lambda c: ComposeTransform([ExpTransform(), AffineTransform(c.lower_bound, 1.0)]))
biject_to.register(C._GreaterThanEq, lambda c: ComposeTransform([ExpTransform(),
                                                                 AffineTransform(c.lower_bound, 1.0)]))
biject_to.register(C._LessThan, lambda c: ComposeTransform([ExpTransform(), AffineTransform(c.upper_bound, -1.0)]))
biject_to.register(C._UnitInterval, lambda c: SigmoidTransform())


def _to_interval(c):
    lo, hi = to_tensor(c.lower_bound), to_tensor(c.upper_bound)
    return ComposeTransform([SigmoidTransform(), AffineTransform(lo, hi - lo)])


for _cls in (C._Interval, C._OpenInterval, C._Circular):
    biject_to.register(_cls, _to_interval)
biject_to.register(C._Independent, lambda c: IndependentTransform(biject_to(c.base_constraint),
                                                                  c.reinterpreted_batch_ndims))
biject_to.register(C._Simplex, lambda c: StickBreakingTransform())
biject_to.register(C._OrderedVector, lambda c: OrderedTransform())
biject_to.register(C._LowerCholesky, lambda c: LowerCholeskyTransform())
biject_to.register(C._PositiveOrderedVector, lambda c: PositiveOrderedTransform())
biject_to.register(C._CorrCholesky, lambda c: CorrCholeskyTransform())
biject_to.register(C._CorrMatrix, lambda c: ComposeTransform([CorrCholeskyTransform(),
                                                              CorrMatrixCholeskyTransform().inv]))
for _cls in (C._PositiveDefinite, C._PositiveSemidefinite):
    biject_to.register(_cls, lambda c: ComposeTransform([LowerCholeskyTransform(), CholeskyTransform().inv]))
del _cls, C

__all__ += ["IndependentTransform", "StickBreakingTransform", "OrderedTransform", "PositiveOrderedTransform",
            "LowerCholeskyTransform", "SoftplusLowerCholeskyTransform", "CorrCholeskyTransform",
            "CholeskyTransform", "CorrMatrixCholeskyTransform", "PermuteTransform", "ReshapeTransform",
            "partial_corr_to_cholesky",
            "ConstraintRegistry", "biject_to",
            "transform_to"]
