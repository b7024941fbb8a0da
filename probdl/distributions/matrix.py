"""Distributions over matrices: LKJ priors on correlation matrices (``LKJ``) and on their Cholesky
factors (``LKJCholesky``), and the Wishart distribution of positive-definite matrices (``Wishart``)
and of their Cholesky factors (``WishartCholesky``).

Every density is computed from Cholesky factors with triangular solves, never an explicit inverse.
An event is a d×d matrix, so ``event_shape`` is ``(d, d)``; moments have shape
``batch_shape + (d, d)``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import tensor as T
from ..backend import as_generator, device_of, get_default_dtype, to_device
from ..tensor import Tensor
from ..tensor.ops.base import to_tensor
from . import constraints
from .distribution import Distribution, _describe, _shape, broadcast_params
from .implicit_reparam import standard_gamma
from .multivariate_normal import _precision_to_scale_tril
from .transforms import partial_corr_to_cholesky

__all__ = ["LKJCholesky", "LKJ", "Wishart", "WishartCholesky"]

_LOG_PI, _LOG_2 = math.log(math.pi), math.log(2.0)


def _mvlgamma(a: Tensor, d: int) -> Tensor:
    """The log multivariate gamma function log Γ_d(a) = d(d-1)/4 log π + Σ_{j<d} log Γ(a - j/2)."""
    return T.lgamma(T.unsqueeze(a, -1) - (np.arange(d) / 2.0).astype(a.dtype)).sum(-1) + d * (d - 1) / 4.0 * _LOG_PI


def _mvdigamma(a: Tensor, d: int) -> Tensor:
    """d/da log Γ_d(a) = Σ_{j<d} ψ(a - j/2)."""
    return T.digamma(T.unsqueeze(a, -1) - (np.arange(d) / 2.0).astype(a.dtype)).sum(-1)


def _log_diag(m: Tensor) -> Tensor:
    return T.log(T.diagonal(m, 0, -2, -1))


def _on_device_of(array: np.ndarray, like: Tensor) -> Tensor:
    """A host draw as a constant in ``like``'s dtype, on its device."""
    return Tensor._wrap(to_device(array.astype(like.dtype, copy=False), device_of(like.data)))


# ---------------------------------------------------------------------------- LKJ
class _LKJBase(Distribution):
    _repr_extra = ("dimension",)
    arg_constraints = {"concentration": constraints.positive}

    def __init__(self, dimension: int, concentration: Any = 1.0, sample_method: str = "onion",
                 validate_args: bool | None = None) -> None:
        name = type(self).__name__
        if isinstance(dimension, bool) or not isinstance(dimension, (int, np.integer)) or dimension < 2:
            raise ValueError(f"{name}: dimension must be an int ≥ 2, got {dimension!r}")
        if sample_method not in ("onion", "cvine"):
            raise ValueError(f"{name}: sample_method must be 'onion' or 'cvine', got {sample_method!r}")
        self.dimension, self.sample_method = int(dimension), sample_method
        (self.concentration,), batch = broadcast_params(concentration)
        super().__init__(batch, (self.dimension, self.dimension), validate_args)

    def _log_normalizer(self) -> Tensor:
        """log ∫ det(Ω)^(η-1) dΩ over d×d correlation matrices, from the vine construction:
        Σ_{k=1}^{d-1} (d-k) [(2η - 2 + d - k) log 2 + log B(b_k, b_k)] with b_k = η + (d - k - 1)/2."""
        d = self.dimension
        k = np.arange(1.0, d).astype(self.concentration.dtype)
        eta = T.unsqueeze(self.concentration, -1)
        b = eta + (d - k - 1) / 2.0
        log_beta = 2 * T.lgamma(b) - T.lgamma(2 * b)
        return ((d - k) * ((2 * eta - 2 + d - k) * _LOG_2 + log_beta)).sum(-1)

    def _sample_cholesky(self, sample_shape: Any, rng: Any) -> Tensor:
        gen = as_generator(rng)
        shape = _shape(sample_shape) + self.batch_shape
        eta = np.broadcast_to(to_device(self.concentration.data, "cpu"), shape)[..., None].astype(np.float64)
        d = self.dimension
        if self.sample_method == "onion":
            # Row i ≥ 1 of L is (√yᵢ uᵢ, √(1 - yᵢ)) with yᵢ ~ Beta(i/2, η + (d-1-i)/2) and uᵢ uniform on the
            # unit sphere of Rⁱ: the onion method, written for the Cholesky factor.
            i = np.arange(1.0, d)
            y = gen.beta(i / 2, eta + (d - 1 - i) / 2, size=shape + (d - 1,))
            z = np.tril(gen.standard_normal(shape + (d - 1, d - 1)))  # row i-1 keeps its first i entries
            u = z / np.linalg.norm(z, axis=-1, keepdims=True)
            L = np.zeros(shape + (d, d))
            L[..., 0, 0] = 1.0
            L[..., 1:, :-1] = np.sqrt(y)[..., None] * u
            L[..., np.arange(1, d), np.arange(1, d)] = np.sqrt(1 - y)
            return _on_device_of(L, self.concentration)
        # C-vine: the partial correlation in column j is 2 Beta(b, b) - 1 with b = η + (d - 2 - j)/2.
        strict = np.tril(np.ones((d, d), dtype=bool), -1)
        b = np.where(strict, eta[..., None] + (d - 2 - np.arange(d)) / 2, 1.0)  # 1: a placeholder off the triangle
        beta = gen.beta(b, b, size=shape + (d, d))
        z = np.where(strict, 2 * beta - 1, 0.0)
        log1m_z2 = np.where(strict, math.log(4.0) + np.log(beta) + np.log1p(-beta), 0.0)
        return partial_corr_to_cholesky(_on_device_of(z, self.concentration),
                                        _on_device_of(log1m_z2, self.concentration))


class LKJCholesky(_LKJBase):
    """LKJCholesky(dimension, concentration=1, sample_method='onion'): the distribution of the lower
    Cholesky factor L of an LKJ(η) correlation matrix Ω = L Lᵀ (density ∝ det(Ω)^(η-1)).

    On the free (strict lower) entries of L, with 0-based i,
    log p(L) = Σ_{i=1}^{d-1} (d - 1 - i + 2(η - 1)) log L_ii - log c_d(η),
    the LKJ density times the Jacobian ∏ L_jj^(d-1-j) of L ↦ Ω, where c_d(η) is the LKJ normalizer.
    η = 1 is uniform over correlation matrices; η > 1 concentrates at the identity. Draws by the onion
    method or ('cvine') by Beta partial correlations; not reparameterized.

    References: Lewandowski, Kurowicka & Joe (2009), "Generating random correlation matrices based on vines
    and extended onion method", J. Multivariate Analysis 100 (normalizer: their eq. 16; onion: section 3.2).
    """

    support = constraints.corr_cholesky

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self._sample_cholesky(sample_shape, rng)

    def log_prob(self, value: Any) -> Tensor:
        value = to_tensor(value)
        self._validate_sample(value)
        d = self.dimension
        order = 2 * (T.unsqueeze(self.concentration, -1) - 1) + np.arange(d - 2, -1, -1, dtype=self.concentration.dtype)
        return (order * _log_diag(value)[..., 1:]).sum(-1) - self._log_normalizer()


class LKJ(_LKJBase):
    """LKJ(dimension, concentration=1, sample_method='onion'): correlation matrices Ω with density
    det(Ω)^(η-1) / c_d(η). Draws are L Lᵀ for L ~ LKJCholesky; log det Ω = 2 Σ log L_ii from the Cholesky
    factor. Off-diagonal entries are marginally 2 Beta(η - 1 + d/2, η - 1 + d/2) - 1, so the mean is the
    identity and their variance 1/(2η + d - 1).

    References: Lewandowski, Kurowicka & Joe (2009), J. Multivariate Analysis 100.
    """

    support = constraints.corr_matrix

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        L = self._sample_cholesky(sample_shape, rng)
        return T.matmul(L, T.swapaxes(L, -1, -2))

    def log_prob(self, value: Any) -> Tensor:
        value = to_tensor(value)
        self._validate_sample(value)
        log_det = 2 * _log_diag(T.cholesky(value)).sum(-1)
        return (self.concentration - 1) * log_det - self._log_normalizer()

    @property
    def mean(self) -> Tensor:
        eye = T.eye(self.dimension, dtype=self.concentration.dtype, device=self.concentration.device)
        return T.broadcast_to(eye, self.batch_shape + self.event_shape)

    @property
    def variance(self) -> Tensor:
        off = 1.0 - T.eye(self.dimension, dtype=self.concentration.dtype, device=self.concentration.device)
        var = off / (2 * self.concentration + (self.dimension - 1))[..., None, None]
        return T.broadcast_to(var, self.batch_shape + self.event_shape)


# ---------------------------------------------------------------------------- Wishart
_MATRIX_ARGS = ("covariance_matrix", "precision_matrix", "scale_tril")


class _WishartBase(Distribution):
    """What Wishart and WishartCholesky share: the three parameterizations and their validation, the
    Bartlett draw and the density of W computed from its Cholesky factor."""

    arg_constraints = {"df": constraints.positive, "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite, "scale_tril": constraints.lower_cholesky}
    has_rsample = True

    def __init__(self, df: Any, covariance_matrix: Any = None, precision_matrix: Any = None, scale_tril: Any = None,
                 validate_args: bool | None = None) -> None:
        name = type(self).__name__
        given = {k: v for k, v in zip(_MATRIX_ARGS, (covariance_matrix, precision_matrix, scale_tril)) if v is not None}
        if len(given) != 1:
            raise ValueError(f"{name}: give exactly one of covariance_matrix, precision_matrix, scale_tril; got "
                             f"{sorted(given) or 'none'}")
        (arg, matrix), = given.items()
        df, matrix = to_tensor(df), to_tensor(matrix)
        if matrix.ndim < 2 or matrix.shape[-1] != matrix.shape[-2]:
            raise ValueError(f"{name}: {arg} must be a (batch of) square matrices, got shape {matrix.shape}")
        floating = [t.dtype for t in (df, matrix) if t.dtype.kind == "f"]
        dtype = np.result_type(*floating) if floating else get_default_dtype()
        self.df, matrix = (t if t.dtype == dtype else t.astype(dtype) for t in (df, matrix))
        self._given, self._given_args = {arg: matrix}, ("df", arg)
        try:
            batch = np.broadcast_shapes(self.df.shape, matrix.shape[:-2])
        except ValueError as e:
            raise ValueError(f"{name}: df of shape {self.df.shape} and {arg} of shape {matrix.shape} do not "
                             "broadcast") from e
        self._d = matrix.shape[-1]
        super().__init__(batch, (self._d, self._d), validate_args)
        self._scale_tril = matrix if arg == "scale_tril" else T.cholesky(matrix) if arg == "covariance_matrix" \
            else _precision_to_scale_tril(matrix)

    def _check_parameters(self) -> None:
        super()._check_parameters()
        ok = self.df.data > self._d - 1
        if not bool(ok.all()):
            raise ValueError(f"{type(self).__name__}: parameter df must be greater than dimension - 1 = {self._d - 1}; "
                             f"got {_describe(self.df, ok)}")

    @property
    def scale_tril(self) -> Tensor:
        return self._given.get("scale_tril", self.__dict__.get("_scale_tril"))

    @property
    def covariance_matrix(self) -> Tensor:
        if "covariance_matrix" in self._given:
            return self._given["covariance_matrix"]
        return T.matmul(self.scale_tril, T.swapaxes(self.scale_tril, -1, -2))

    @property
    def precision_matrix(self) -> Tensor:
        if "precision_matrix" in self._given:
            return self._given["precision_matrix"]
        eye = T.eye(self._d, dtype=self.df.dtype, device=self.df.device)
        return T.cholesky_solve(T.broadcast_to(eye, self.scale_tril.shape), self.scale_tril)

    def _bartlett(self, sample_shape: Any, rng: Any) -> Tensor:
        """L A, the Cholesky factor of a draw."""
        gen = as_generator(rng)
        shape = _shape(sample_shape) + self.batch_shape
        d = self._d
        chi2 = 2 * standard_gamma((T.unsqueeze(self.df, -1) - np.arange(d, dtype=self.df.dtype)) / 2,
                                  shape + (d,), gen)
        below = _on_device_of(np.tril(gen.standard_normal(shape + (d, d)), -1), self.df)
        return T.matmul(self.scale_tril, T.diag_embed(T.sqrt(chi2)) + below)

    def _log_prob_of_cholesky(self, Lw: Tensor) -> Tensor:
        """log p(W) for W = Lw Lwᵀ, from Lw: tr(V⁻¹W) = ‖L⁻¹ Lw‖²_F by one triangular solve."""
        n, d, L = self.df, self._d, self.scale_tril
        shape = np.broadcast_shapes(Lw.shape, L.shape)
        # both operands with the full shape: a (d, d) Lw against a batch of L is never read as vectors
        M = T.solve_triangular(T.broadcast_to(L, shape), T.broadcast_to(Lw, shape), lower=True)
        trace = (M * M).sum((-2, -1))
        return ((n - d - 1) * _log_diag(Lw).sum(-1) - 0.5 * trace - n * (d / 2 * _LOG_2)
                - n * _log_diag(L).sum(-1) - _mvlgamma(n / 2, d))

    def _wishart_entropy(self) -> Tensor:
        n, d = self.df, self._d
        return ((d + 1) * _log_diag(self.scale_tril).sum(-1) + d * (d + 1) / 2 * _LOG_2 + _mvlgamma(n / 2, d)
                - (n - d - 1) / 2 * _mvdigamma(n / 2, d) + n * d / 2)

    def _full(self, x: Tensor) -> Tensor:
        return T.broadcast_to(x, self.batch_shape + self.event_shape)

    def _nan_unless(self, x: Tensor, ok: Tensor) -> Tensor:
        return T.where(ok, x, T.full_like(x, math.nan))


class Wishart(_WishartBase):
    """Wishart(df, covariance_matrix | precision_matrix | scale_tril): positive-definite d×d W with density

    p(W) = |W|^((n-d-1)/2) exp(-tr(V⁻¹W)/2) / (2^(nd/2) |V|^(n/2) Γ_d(n/2)),

    n = df > d - 1 degrees of freedom, scale V = covariance_matrix = L Lᵀ (give one of V, V⁻¹ or L).
    tr(V⁻¹W) = ‖L⁻¹ L_W‖²_F with L_W = chol(W). Reparameterized by the Bartlett decomposition
    W = (L A)(L A)ᵀ, A lower triangular with A_ii = √χ²(n - i) (0-based i) and N(0, 1) below the
    diagonal; the χ² draws carry implicit gradients in n. Mean n V, Var W_ij = n (V_ij² + V_ii V_jj),
    mode (n - d - 1) V for n ≥ d + 1.

    References: M. S. Bartlett (1933), "On the theory of statistical regression", Proc. Royal Soc.
    Edinburgh 53; A. K. Gupta & D. K. Nagar (2000), *Matrix Variate Distributions*, ch. 3.
    """

    support = constraints.positive_definite

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        LA = self._bartlett(sample_shape, rng)
        return T.matmul(LA, T.swapaxes(LA, -1, -2))

    def log_prob(self, value: Any) -> Tensor:
        value = to_tensor(value)
        self._validate_sample(value)
        return self._log_prob_of_cholesky(T.cholesky(value))

    @property
    def mean(self) -> Tensor:
        return self._full(self.df[..., None, None] * self.covariance_matrix)

    @property
    def variance(self) -> Tensor:
        V = self.covariance_matrix
        diag = T.diagonal(V, 0, -2, -1)
        return self._full(self.df[..., None, None] * (V * V + T.unsqueeze(diag, -1) * T.unsqueeze(diag, -2)))

    @property
    def mode(self) -> Tensor:
        """(n - d - 1) V, defined for n ≥ d + 1 (nan below, as PyTorch)."""
        factor = self.df - (self._d + 1)
        return self._full(self._nan_unless(factor, factor >= 0)[..., None, None] * self.covariance_matrix)

    def entropy(self) -> Tensor:
        return T.broadcast_to(self._wishart_entropy(), self.batch_shape)


class WishartCholesky(_WishartBase):
    """WishartCholesky(df, covariance_matrix | precision_matrix | scale_tril): the distribution of the
    lower Cholesky factor L_W of W ~ Wishart(df, ...).

    log p(L_W) = log p_Wishart(L_W L_Wᵀ) + d log 2 + Σᵢ (d - i) log (L_W)_ii (0-based i), the second part the
    log-Jacobian of L_W ↦ W on the lower triangle. A draw is L A from the Bartlett decomposition, so
    E[L_W] = L diag(mⱼ) with mⱼ = E√χ²(n - j) = √2 Γ((n-j+1)/2)/Γ((n-j)/2), the entries' variances follow
    from the independent entries of A, and the mode is L diag(√(n - 1 - j)) for n > d (with B = L⁻¹L_W,
    log p = Σ (n - 1 - j) log B_jj - ‖B‖²_F/2 + const).

    References: M. S. Bartlett (1933), Proc. Royal Soc. Edinburgh 53.
    """

    support = constraints.lower_cholesky

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self._bartlett(sample_shape, rng)

    def _log_jacobian(self, value: Tensor) -> Tensor:
        """log|det ∂W/∂L_W| = d log 2 + Σᵢ (d - i) log (L_W)_ii on the lower triangle."""
        return self._d * _LOG_2 + (_log_diag(value) * np.arange(self._d, 0, -1, dtype=value.dtype)).sum(-1)

    def log_prob(self, value: Any) -> Tensor:
        value = to_tensor(value)
        self._validate_sample(value)
        return self._log_prob_of_cholesky(value) + self._log_jacobian(value)

    def _chi(self) -> tuple[Tensor, Tensor]:
        """The mean and variance of √χ²(n - j), j = 0..d-1 (last axis)."""
        k = T.unsqueeze(self.df, -1) - np.arange(self._d, dtype=self.df.dtype)
        m = math.sqrt(2.0) * T.exp(T.lgamma((k + 1) / 2) - T.lgamma(k / 2))
        return m, k - m * m

    @property
    def mean(self) -> Tensor:
        return self._full(self.scale_tril * T.unsqueeze(self._chi()[0], -2))

    @property
    def variance(self) -> Tensor:
        # Var (L A)_ij = Σ_k L_ik² Var A_kj, with Var A_jj = Var √χ²(n - j) and Var A_kj = 1 for k > j.
        below = np.tril(np.ones((self._d, self._d)), -1).astype(self.df.dtype)
        return self._full(T.matmul(self.scale_tril * self.scale_tril, T.diag_embed(self._chi()[1]) + below))

    @property
    def mode(self) -> Tensor:
        """L diag(√(n - 1 - j)), defined for n > d (nan otherwise)."""
        k = T.unsqueeze(self.df, -1) - np.arange(1, self._d + 1, dtype=self.df.dtype)  # n - 1 - j
        mode = self.scale_tril * T.unsqueeze(T.sqrt(T.where(k > 0, k, T.ones_like(k))), -2)
        return self._full(self._nan_unless(mode, (self.df > self._d)[..., None, None]))

    def entropy(self) -> Tensor:
        """H(L_W) = H(W) - E log|∂W/∂L_W|, with E log (L_W)_ii = log L_ii + (ψ((n-i)/2) + log 2)/2."""
        n, d = self.df, self._d
        k = T.unsqueeze(n, -1) - np.arange(d, dtype=n.dtype)
        e_log_diag = _log_diag(self.scale_tril) + 0.5 * (T.digamma(k / 2) + _LOG_2)
        e_log_jac = d * _LOG_2 + (e_log_diag * np.arange(d, 0, -1, dtype=n.dtype)).sum(-1)
        return T.broadcast_to(self._wishart_entropy() - e_log_jac, self.batch_shape)
