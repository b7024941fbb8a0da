"""Covariance functions k(x, z) for Gaussian processes.

Every kernel is a :class:`~probdl.gp.parameterized.Parameterized` module: its hyperparameters (``variance``,
``lengthscale``, ...) are positive, stored unconstrained, and may carry priors. ``kernel(X, Z=None)`` (also
``kernel.K``) is the n x m covariance matrix, ``kernel.Kdiag(X)`` its diagonal at Z = X. Inputs are 2-D
``(n, input_dim)`` (a 1-D X is n points of one dimension); ``active_dims`` selects the columns a kernel reads.
A vector ``lengthscale`` gives one lengthscale per input dimension (ARD, automatic relevance determination).

Kernels compose: ``k1 + k2`` (:class:`Sum`), ``k1 * k2`` (:class:`Product`), ``c * k`` for a fixed positive
number c (:class:`Scale`).

Stationary kernels depend on the scaled distance :math:`r^2 = \\sum_d (x_d - z_d)^2 / \\ell_d^2`:

================  ============================================================================
RBF               :math:`\\sigma^2 \\exp(-r^2/2)`
Matern12          :math:`\\sigma^2 e^{-r}`
Matern32          :math:`\\sigma^2 (1 + \\sqrt3 r) e^{-\\sqrt3 r}`
Matern52          :math:`\\sigma^2 (1 + \\sqrt5 r + 5r^2/3) e^{-\\sqrt5 r}`
RationalQuadratic :math:`\\sigma^2 (1 + r^2 / (2\\alpha))^{-\\alpha}`
Periodic          :math:`\\sigma^2 \\exp(-2 \\sin^2(\\pi \\lVert x - z \\rVert / p) / \\ell^2)`
Cosine            :math:`\\sigma^2 \\cos(2\\pi \\sum_d (x_d - z_d)/\\ell_d)` (the lengthscales are periods)
================  ============================================================================

and the others are Linear :math:`\\sigma^2 x^\\top z`, Polynomial :math:`\\sigma^2 (c + x^\\top z)^p`,
Constant :math:`\\sigma^2` and White :math:`\\sigma^2 \\delta_{x=z}` (on ``K(X)`` only; ``K(X, Z)`` is 0).

RBF and the Matérn kernels are computed by one fused op (:class:`StationaryCovariance`) whose backward
recomputes the distances instead of keeping them: the graph of ``K`` holds no n x m matrix but ``K`` itself,
which is what lets an exact GP's gradient fit in about three n x n matrices. Reference: Rasmussen & Williams,
*Gaussian Processes for Machine Learning* (2006), ch. 4.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..tensor import Tensor, eye, is_grad_enabled, ones, zeros
from ..tensor import ops as T
from ..tensor.autograd import Op, apply, composite_backward
from ..tensor.ops.base import to_tensor
from .parameterized import Parameterized

__all__ = ["Kernel", "Sum", "Product", "Scale", "Stationary", "RBF", "Matern12", "Matern32", "Matern52",
           "RationalQuadratic", "Periodic", "Cosine", "Linear", "Polynomial", "Constant", "White",
           "StationaryCovariance"]


def as_inputs(X: Any, name: str = "X") -> Tensor:
    """``X`` as a 2-D float Tensor ``(n, d)`` (1-D: n points of one dimension), checked finite."""
    X = to_tensor(X)
    if X.data.dtype.kind not in "fc":
        X = X.astype(np.float64)
    if X.ndim == 1:
        X = X.unsqueeze(-1)
    if X.ndim != 2:
        raise ValueError(f"{name} must have shape (n, input_dim) or (n,), got shape {tuple(X.shape)}")
    if not np.all(np.isfinite(X.data)):
        raise ValueError(f"{name} holds {int(np.sum(~np.isfinite(X.data)))} NaN or infinite value(s)")
    return X


# ------------------------------------------------------------------ the fused stationary covariance op
class _Profile:
    """k as a function of r² (the squared scaled distance), with dk/dr², on arrays and on Tensors."""

    __slots__ = ()

    @staticmethod
    def k(r2: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def dk(r2: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def k_tensor(r2: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


_TINY = 1e-300


class _RBFProfile(_Profile):
    k = staticmethod(lambda r2: np.exp(np.multiply(r2, -0.5, out=r2), out=r2))
    dk = staticmethod(lambda r2: np.multiply(np.exp(np.multiply(r2, -0.5, out=r2), out=r2), -0.5, out=r2))
    k_tensor = staticmethod(lambda r2: T.exp(-0.5 * r2))


def _matern12_dk(r2):
    r = np.sqrt(r2, out=r2)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.exp(-r) / (-2.0 * r)
    out[r == 0] = 0.0  # a cusp: the subgradient 0 (every pair at distance 0 contributes (x - z) = 0 anyway)
    return out


class _Matern12Profile(_Profile):
    k = staticmethod(lambda r2: np.exp(-np.sqrt(r2, out=r2), out=r2))
    dk = staticmethod(_matern12_dk)
    k_tensor = staticmethod(lambda r2: T.exp(-T.sqrt(T.clip(r2, _TINY, None))))


_S3, _S5 = math.sqrt(3.0), math.sqrt(5.0)


def _one_plus_sr_exp(r2, s, c):
    """c (1 + s r) e^(-s r) with r = √r², in place in r2: Matérn-3/2's k (s = √3, c = 1) and Matérn-5/2's
    dk/dr² (s = √5, c = -5/6)."""
    r = np.sqrt(r2, out=r2)
    e = np.exp(-s * r)
    r *= s
    r += 1.0
    r *= e
    r *= c
    return r


def _matern52_k(r2):
    """(1 + √5 r + 5r²/3) e^(-√5 r), in place in r2."""
    r = np.sqrt(r2)
    e = np.exp(-_S5 * r)
    r *= _S5
    r += 1.0
    r2 *= 5.0 / 3.0
    r2 += r
    r2 *= e
    return r2


class _Matern32Profile(_Profile):
    k = staticmethod(lambda r2: _one_plus_sr_exp(r2, _S3, 1.0))
    dk = staticmethod(lambda r2: np.multiply(np.exp(np.multiply(np.sqrt(r2, out=r2), -_S3, out=r2), out=r2), -1.5,
                                             out=r2))

    @staticmethod
    def k_tensor(r2):
        r = T.sqrt(T.clip(r2, _TINY, None))
        return (1.0 + _S3 * r) * T.exp(-_S3 * r)


class _Matern52Profile(_Profile):
    k = staticmethod(_matern52_k)
    dk = staticmethod(lambda r2: _one_plus_sr_exp(r2, _S5, -5.0 / 6.0))

    @staticmethod
    def k_tensor(r2):
        r = T.sqrt(T.clip(r2, _TINY, None))
        return (1.0 + _S5 * r + (5.0 / 3.0) * r2) * T.exp(-_S5 * r)


def _scaled_sqdist(xs: np.ndarray, zs: np.ndarray, same: bool) -> np.ndarray:
    """r²_ij = |xs_i - zs_j|², a fresh n x m array: by exact differences for a few dimensions, by
    |x|² + |z|² - 2 x·z (one GEMM) otherwise, clamped at 0 and with an exact zero diagonal when Z is X."""
    d = xs.shape[1]
    if d <= 4:
        n, m = xs.shape[0], zs.shape[0]
        r2 = np.empty((n, m))
        rows = max(1, min(n, (1 << 17) // max(m, 1)))  # a strip of about 1 MB for the per-dimension differences
        diff = np.empty((rows, m))
        for i0 in range(0, n, rows):
            i1 = min(n, i0 + rows)
            out, tmp = r2[i0:i1], diff[: i1 - i0]
            np.subtract.outer(xs[i0:i1, 0], zs[:, 0], out=out)
            np.square(out, out=out)
            for j in range(1, d):
                np.subtract.outer(xs[i0:i1, j], zs[:, j], out=tmp)
                np.square(tmp, out=tmp)
                out += tmp
        return r2
    r2 = xs @ zs.T
    r2 *= -2.0
    r2 += np.einsum("ij,ij->i", xs, xs)[:, None]
    r2 += np.einsum("ij,ij->i", zs, zs)[None, :]
    np.maximum(r2, 0.0, out=r2)
    if same:
        np.fill_diagonal(r2, 0.0)
    return r2


def _stationary_composite(x: Tensor, z: Tensor, lengthscale: Tensor, variance: Tensor, profile: type[_Profile]
                          ) -> Tensor:
    """The same covariance built from differentiable Tensor ops (n x m x d memory): the path for higher-order
    derivatives, and the reference the fused op is tested against."""
    xs, zs = x / lengthscale, z / lengthscale
    diff = xs.unsqueeze(1) - zs.unsqueeze(0)
    return variance * profile.k_tensor((diff * diff).sum(-1))


class StationaryCovariance(Op):
    """K_ij = σ² k(|x_i - z_j|²_ℓ) in one op. Inputs X (n, d), Z (m, d), lengthscale (d,) or (), variance ();
    attribute ``profile`` (k and dk/dr² on arrays).

    Backward, with :math:`G'_{ij} = g_{ij}\\,\\sigma^2 k'(r^2_{ij})`, :math:`\\tilde x = x / \\ell`:
    :math:`\\partial/\\partial \\tilde x_i = 2(\\sum_j G'_{ij} \\tilde x_i - (G' \\tilde Z)_i)` (and the same for
    :math:`\\tilde z_j` with :math:`G'^\\top`), :math:`\\bar\\ell = -(\\sum_i \\bar{\\tilde x}_i \\tilde x_i +
    \\sum_j \\bar{\\tilde z}_j \\tilde z_j) / \\ell`, :math:`\\bar\\sigma^2 = \\sum g \\circ K / \\sigma^2`. The
    distances are recomputed, so the op keeps nothing but its inputs; one n x m temporary at a time. When the
    backward itself is recorded (``create_graph``), it differentiates :func:`_stationary_composite` instead.
    """

    @staticmethod
    def forward(x, z, lengthscale, variance, profile):
        r2 = _scaled_sqdist(x / lengthscale, z / lengthscale, x is z)
        K = profile.k(r2)
        K *= variance
        return K

    @staticmethod
    def backward(node, out, g):
        x, z, ls, var = node.inputs
        profile = node.attrs["profile"]
        if is_grad_enabled():  # create_graph: a differentiable backward
            return composite_backward(node.inputs, _stationary_composite(x, z, ls, var, profile), g)
        xd, zd, lsd, vard = x.data, z.data, ls.data, var.data
        gd = g.data
        xs, zs = xd / lsd, zd / lsd
        gp = profile.dk(_scaled_sqdist(xs, zs, xd is zd))
        gp *= gd
        gp *= vard
        g_var = None
        if var.requires_grad:
            if float(vard) != 0.0:
                g_var = np.asarray(np.einsum("ij,ij->", gd, out.data) / vard)
            else:
                g_var = np.asarray(np.einsum("ij,ij->", gd, profile.k(_scaled_sqdist(xs, zs, xd is zd))))
        need_ls = ls.requires_grad
        gxs = gzs = None
        if x.requires_grad or need_ls:
            gxs = 2.0 * (gp.sum(1)[:, None] * xs - gp @ zs)
        if z.requires_grad or need_ls:
            gzs = 2.0 * (gp.sum(0)[:, None] * zs - gp.T @ xs)
        g_ls = None
        if need_ls:
            per_dim = -(np.einsum("ij,ij->j", gxs, xs) + np.einsum("ij,ij->j", gzs, zs)) / lsd
            g_ls = per_dim.reshape(lsd.shape) if lsd.ndim else np.asarray(per_dim.sum())
        wrap = Tensor._wrap
        return (wrap(gxs / lsd) if x.requires_grad else None, wrap(gzs / lsd) if z.requires_grad else None,
                wrap(g_ls) if need_ls else None, wrap(g_var) if g_var is not None else None)


# ------------------------------------------------------------------ base and combinators
class Kernel(Parameterized):
    """Base of the covariance functions. Subclasses define ``_K(X, Z)`` (Z is None for K(X, X)) and
    ``_Kdiag(X)`` on the active columns."""

    def __init__(self, active_dims: Any = None) -> None:
        super().__init__()
        if active_dims is not None:
            active_dims = [int(i) for i in np.atleast_1d(active_dims)]
            if not active_dims or min(active_dims) < 0:
                raise ValueError(f"{type(self).__name__}: active_dims must be non-negative column indices, "
                                 f"got {active_dims}")
        self.active_dims = active_dims

    def _slice(self, X: Tensor, name: str) -> Tensor:
        if self.active_dims is None:
            return X
        if max(self.active_dims) >= X.shape[1]:
            raise ValueError(f"{type(self).__name__}: active_dims {self.active_dims} out of range for {name} with "
                             f"{X.shape[1]} columns")
        return X[:, self.active_dims]

    def forward(self, X: Any, Z: Any = None) -> Tensor:
        """The covariance matrix K(X, Z), shape (n, m); K(X, X) when Z is None."""
        X = self._slice(as_inputs(X), "X")
        if Z is not None:
            Z = self._slice(as_inputs(Z, "Z"), "Z")
            if Z.shape[1] != X.shape[1]:
                raise ValueError(f"{type(self).__name__}: X has {X.shape[1]} columns and Z has {Z.shape[1]}")
        return self._K(X, Z)

    def K(self, X: Any, Z: Any = None) -> Tensor:
        """The covariance matrix K(X, Z); the same as calling the kernel."""
        return self(X, Z)

    def Kdiag(self, X: Any) -> Tensor:
        """The diagonal of K(X, X), shape (n,), without forming the matrix."""
        return self._Kdiag(self._slice(as_inputs(X), "X"))

    def _K(self, X: Tensor, Z: Tensor | None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _Kdiag(self, X: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __add__(self, other: Kernel) -> Sum:
        if not isinstance(other, Kernel):
            return NotImplemented
        return Sum(self, other)

    def __mul__(self, other: Any) -> Kernel:
        if isinstance(other, Kernel):
            return Product(self, other)
        if isinstance(other, (int, float, np.floating, np.integer)):
            return Scale(self, float(other))
        return NotImplemented

    __rmul__ = __mul__


class _Combination(Kernel):
    def __init__(self, k1: Kernel, k2: Kernel) -> None:
        super().__init__()
        if not isinstance(k1, Kernel) or not isinstance(k2, Kernel):
            raise TypeError(f"{type(self).__name__}: both operands must be Kernels, got {type(k1).__name__} and "
                            f"{type(k2).__name__}")
        self.k1, self.k2 = k1, k2

    def forward(self, X: Any, Z: Any = None) -> Tensor:
        return self._combine(self.k1(X, Z), self.k2(X, Z))

    def Kdiag(self, X: Any) -> Tensor:
        return self._combine(self.k1.Kdiag(X), self.k2.Kdiag(X))


class Sum(_Combination):
    """k1(x, z) + k2(x, z)."""

    _combine = staticmethod(lambda a, b: a + b)


class Product(_Combination):
    """k1(x, z) k2(x, z) (elementwise)."""

    _combine = staticmethod(lambda a, b: a * b)


class Scale(Kernel):
    """c k(x, z) for a fixed number c > 0 (not a hyperparameter; use ``Constant() * k`` for a learned one)."""

    def __init__(self, kernel: Kernel, c: float) -> None:
        super().__init__()
        if not c > 0 or not math.isfinite(c):
            raise ValueError(f"Scale: the factor must be a positive finite number, got {c!r}")
        self.kernel, self.c = kernel, c

    def forward(self, X: Any, Z: Any = None) -> Tensor:
        return self.c * self.kernel(X, Z)

    def Kdiag(self, X: Any) -> Tensor:
        return self.c * self.kernel.Kdiag(X)


# ------------------------------------------------------------------ stationary kernels
class Stationary(Kernel):
    """Kernels of the scaled distance; ``lengthscale`` a positive number or one per input dim (ARD)."""

    profile: type[_Profile] | None = None

    def __init__(self, variance: Any = 1.0, lengthscale: Any = 1.0, active_dims: Any = None) -> None:
        super().__init__(active_dims)
        self.register_hyperparameter("variance", variance)
        self.register_hyperparameter("lengthscale", lengthscale)
        if np.ndim(self.lengthscale.data) > 1:
            raise ValueError(f"{type(self).__name__}: lengthscale must be a number or a vector (ARD), got shape "
                             f"{np.shape(self.lengthscale.data)}")

    def _check_dims(self, X: Tensor) -> None:
        ls = self.lengthscale
        if ls.ndim == 1 and ls.shape[0] != X.shape[1]:
            raise ValueError(f"{type(self).__name__}: {ls.shape[0]} lengthscales (ARD) for inputs with "
                             f"{X.shape[1]} dimensions")

    def _scaled_sqdist(self, X: Tensor, Z: Tensor | None) -> Tensor:
        """r² as a Tensor (through Tensor ops), for the kernels without a fused op."""
        self._check_dims(X)
        xs = X / self.lengthscale
        zs = xs if Z is None else Z / self.lengthscale
        diff = xs.unsqueeze(1) - zs.unsqueeze(0)
        return (diff * diff).sum(-1)

    def _K(self, X: Tensor, Z: Tensor | None) -> Tensor:
        self._check_dims(X)
        return apply(StationaryCovariance, (X, X if Z is None else Z, self.lengthscale, self.variance),
                     {"profile": self.profile})

    def _Kdiag(self, X: Tensor) -> Tensor:
        return self.variance * ones(X.shape[0], dtype=X.dtype)


class RBF(Stationary):
    """Squared exponential σ² exp(-r²/2)."""

    profile = _RBFProfile


class Matern12(Stationary):
    """Matérn ν = 1/2 (exponential): σ² exp(-r)."""

    profile = _Matern12Profile


class Matern32(Stationary):
    """Matérn ν = 3/2: σ² (1 + √3 r) exp(-√3 r)."""

    profile = _Matern32Profile


class Matern52(Stationary):
    """Matérn ν = 5/2: σ² (1 + √5 r + 5r²/3) exp(-√5 r)."""

    profile = _Matern52Profile


class RationalQuadratic(Stationary):
    """σ² (1 + r² / (2α))^(-α), a scale mixture of RBFs; ``scale_mixture`` is α > 0."""

    def __init__(self, variance: Any = 1.0, lengthscale: Any = 1.0, scale_mixture: float = 1.0,
                 active_dims: Any = None) -> None:
        super().__init__(variance, lengthscale, active_dims)
        self.register_hyperparameter("scale_mixture", scale_mixture)

    def _K(self, X, Z):
        alpha = self.scale_mixture
        return self.variance * T.exp(-alpha * T.log1p(self._scaled_sqdist(X, Z) / (2.0 * alpha)))


class Cosine(Stationary):
    """σ² cos(2π Σ_d (x_d - z_d) / ℓ_d): a sinusoid of period ℓ_d along each dimension. The projection onto
    Σ_d x_d / ℓ_d (rather than the Euclidean distance, whose cosine is not positive semi-definite beyond one
    dimension) keeps the kernel valid: cos(a - b) = cos a cos b + sin a sin b."""

    def _K(self, X, Z):
        self._check_dims(X)
        u = (X / self.lengthscale).sum(-1)
        v = u if Z is None else (Z / self.lengthscale).sum(-1)
        return self.variance * T.cos((2.0 * math.pi) * (u.unsqueeze(1) - v.unsqueeze(0)))


class Periodic(Kernel):
    """σ² exp(-2 sin²(π |x - z| / p) / ℓ²) (scikit-learn's ExpSineSquared, MacKay 1998), with the Euclidean
    distance |x - z|, period p and lengthscale ℓ. Positive semi-definite on one input dimension (as scikit-learn's,
    it is not in general on several: take a product of one-dimensional ones with ``active_dims`` there)."""

    def __init__(self, variance: Any = 1.0, lengthscale: Any = 1.0, period: Any = 1.0, active_dims: Any = None
                 ) -> None:
        super().__init__(active_dims)
        self.register_hyperparameter("variance", variance)
        self.register_hyperparameter("lengthscale", lengthscale)
        self.register_hyperparameter("period", period)

    def _K(self, X, Z):
        zs = X if Z is None else Z
        diff = X.unsqueeze(1) - zs.unsqueeze(0)
        r = T.sqrt(T.clip((diff * diff).sum(-1), _TINY, None))
        s = T.sin((math.pi / self.period) * r)
        return self.variance * T.exp(-2.0 * s * s / (self.lengthscale * self.lengthscale))

    def _Kdiag(self, X):
        return self.variance * ones(X.shape[0], dtype=X.dtype)


# ------------------------------------------------------------------ dot-product and constant kernels
class Linear(Kernel):
    """σ² x·z."""

    def __init__(self, variance: Any = 1.0, active_dims: Any = None) -> None:
        super().__init__(active_dims)
        self.register_hyperparameter("variance", variance)

    def _K(self, X, Z):
        return self.variance * (X @ (X if Z is None else Z).mT)

    def _Kdiag(self, X):
        return self.variance * (X * X).sum(-1)


class Polynomial(Kernel):
    """σ² (c + x·z)^p with bias c >= 0 (a hyperparameter) and a fixed positive integer degree p."""

    def __init__(self, variance: Any = 1.0, bias: Any = 1.0, degree: int = 2, active_dims: Any = None) -> None:
        super().__init__(active_dims)
        if int(degree) != degree or degree < 1:
            raise ValueError(f"Polynomial: degree must be a positive integer, got {degree!r}")
        self.degree = int(degree)
        self.register_hyperparameter("variance", variance)
        self.register_hyperparameter("bias", bias)

    def _K(self, X, Z):
        return self.variance * (self.bias + X @ (X if Z is None else Z).mT) ** self.degree

    def _Kdiag(self, X):
        return self.variance * (self.bias + (X * X).sum(-1)) ** self.degree


class Constant(Kernel):
    """σ² everywhere."""

    def __init__(self, variance: Any = 1.0, active_dims: Any = None) -> None:
        super().__init__(active_dims)
        self.register_hyperparameter("variance", variance)

    def _K(self, X, Z):
        m = X.shape[0] if Z is None else Z.shape[0]
        return self.variance * ones((X.shape[0], m), dtype=X.dtype)

    def _Kdiag(self, X):
        return self.variance * ones(X.shape[0], dtype=X.dtype)


class White(Kernel):
    """σ² I on K(X) (independent noise at each input); K(X, Z) with Z given is 0, as in scikit-learn's
    WhiteKernel and Pyro's WhiteNoise."""

    def __init__(self, variance: Any = 1.0, active_dims: Any = None) -> None:
        super().__init__(active_dims)
        self.register_hyperparameter("variance", variance)

    def _K(self, X, Z):
        if Z is None:
            return self.variance * eye(X.shape[0], dtype=X.dtype)
        return 0.0 * self.variance * zeros((X.shape[0], Z.shape[0]), dtype=X.dtype)

    def _Kdiag(self, X):
        return self.variance * ones(X.shape[0], dtype=X.dtype)
