"""Continuous families with closed-form CDF and quantile, reparameterized through the quantile:
x = icdf(u) for u ~ Uniform(0, 1), so gradients reach the parameters through ``rsample``.

Exponential, Uniform, Laplace, Cauchy, HalfCauchy, Logistic, Gumbel, HalfNormal, LogNormal, Weibull, Pareto,
Kumaraswamy, AsymmetricLaplace, SoftLaplace.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import tensor as T
from ..backend import as_generator, device_of, to_device
from ..tensor import Tensor
from ..tensor.ops.base import to_tensor
from . import constraints
from .distribution import Distribution, broadcast_params

__all__ = ["Exponential", "Uniform", "Laplace", "Cauchy", "HalfCauchy", "Logistic", "Gumbel", "HalfNormal",
           "LogNormal", "Weibull", "Pareto", "Kumaraswamy", "AsymmetricLaplace", "SoftLaplace"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_EULER = 0.57721566490153286061
_LN2 = math.log(2)


def _log1mexp(t: Tensor) -> Tensor:
    """log(1 - e^t) for t ≤ 0 without cancellation: log(-expm1(t)) near 0, log1p(-e^t) below -log 2."""
    near = t.data > -_LN2  # each branch sees a safe stand-in where unused, so neither feeds a NaN gradient back
    return T.where(near, T.log(-T.expm1(T.where(near, t, -1.0))), T.log1p(-T.exp(T.where(near, -1.0, t))))


class _QuantileSampled(Distribution):
    """A family sampled as ``icdf(u)``; subclasses define ``icdf`` in probdl ops."""

    has_rsample = True

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        param = getattr(self, next(iter(self.arg_constraints)))  # broadcast_params gave all one dtype
        tiny = np.finfo(param.dtype).tiny
        u = as_generator(rng).uniform(tiny, 1.0, self.shape(sample_shape)).astype(param.dtype, copy=False)
        return self.icdf(Tensor._wrap(to_device(u, device_of(param.data))))

    def _value(self, value: Any) -> Tensor:
        value = to_tensor(value)
        self._validate_sample(value)
        return value


class Exponential(_QuantileSampled):
    """Exponential(rate): density rate·e^(-rate·x) on x ≥ 0."""

    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative

    def __init__(self, rate: Any = 1.0, validate_args: bool | None = None) -> None:
        (self.rate,), batch = broadcast_params(rate)
        super().__init__(batch, (), validate_args)

    def log_prob(self, value):
        return T.log(self.rate) - self.rate * self._value(value)

    def cdf(self, value):
        return -T.expm1(-self.rate * to_tensor(value))

    def icdf(self, q):
        return -T.log1p(-to_tensor(q)) / self.rate

    def entropy(self):
        return T.broadcast_to(1 - T.log(self.rate), self.batch_shape)

    mean = property(lambda self: T.broadcast_to(1 / self.rate, self.batch_shape))
    mode = property(lambda self: T.zeros_like(self.mean))
    variance = property(lambda self: T.broadcast_to(self.rate ** -2, self.batch_shape))


class Uniform(_QuantileSampled):
    """Uniform(low, high) on [low, high)."""

    arg_constraints = {"low": constraints.real, "high": constraints.real}

    def __init__(self, low: Any = 0.0, high: Any = 1.0, validate_args: bool | None = None) -> None:
        (self.low, self.high), batch = broadcast_params(low, high)
        super().__init__(batch, (), validate_args)

    def _check_parameters(self):
        super()._check_parameters()
        if not bool((self.low.data < self.high.data).all()):
            raise ValueError(f"Uniform: parameter low must be below high; got low={self.low.tolist()}, "
                             f"high={self.high.tolist()}")

    support = property(lambda self: constraints.interval(self.low.data, self.high.data))

    def log_prob(self, value):
        value = self._value(value)
        return T.broadcast_to(-T.log(self.high - self.low), np.broadcast_shapes(value.shape, self.batch_shape))

    def cdf(self, value):
        return T.clip((to_tensor(value) - self.low) / (self.high - self.low), 0.0, 1.0)

    def icdf(self, q):
        return self.low + to_tensor(q) * (self.high - self.low)

    def entropy(self):
        return T.broadcast_to(T.log(self.high - self.low), self.batch_shape)

    mean = property(lambda self: T.broadcast_to((self.low + self.high) / 2, self.batch_shape))
    variance = property(lambda self: T.broadcast_to((self.high - self.low) ** 2 / 12, self.batch_shape))


class _LocScale(_QuantileSampled):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real

    def __init__(self, loc: Any = 0.0, scale: Any = 1.0, validate_args: bool | None = None) -> None:
        (self.loc, self.scale), batch = broadcast_params(loc, scale)
        super().__init__(batch, (), validate_args)

    def _z(self, value):
        return (self._value(value) - self.loc) / self.scale

    mean = property(lambda self: T.broadcast_to(self.loc, self.batch_shape))
    mode = property(lambda self: T.broadcast_to(self.loc, self.batch_shape))


class Laplace(_LocScale):
    """Laplace(loc, scale): density e^(-|x - loc|/scale) / (2 scale)."""

    def log_prob(self, value):
        return -T.abs(self._z(value)) - T.log(2 * self.scale)

    def cdf(self, value):
        z = (to_tensor(value) - self.loc) / self.scale
        return 0.5 - 0.5 * T.sign(z) * T.expm1(-T.abs(z))

    def icdf(self, q):
        t = to_tensor(q) - 0.5
        return self.loc - self.scale * T.sign(t) * T.log1p(-2 * T.abs(t))

    def entropy(self):
        return T.broadcast_to(1 + T.log(2 * self.scale), self.batch_shape)

    variance = property(lambda self: T.broadcast_to(2 * self.scale ** 2, self.batch_shape))


class Cauchy(_LocScale):
    """Cauchy(loc, scale): density 1 / (π scale (1 + z²)); no mean or variance."""

    def log_prob(self, value):
        return -math.log(math.pi) - T.log(self.scale) - T.log1p(self._z(value) ** 2)

    def cdf(self, value):
        return 0.5 + T.arctan((to_tensor(value) - self.loc) / self.scale) / math.pi

    def icdf(self, q):
        a = math.pi * (to_tensor(q) - 0.5)
        return self.loc + self.scale * T.sin(a) / T.cos(a)

    def entropy(self):
        return T.broadcast_to(math.log(4 * math.pi) + T.log(self.scale), self.batch_shape)

    mean = property(lambda self: T.full(self.batch_shape, np.nan, dtype=self.loc.dtype))
    variance = property(lambda self: T.full(self.batch_shape, np.inf, dtype=self.loc.dtype))


class Logistic(_LocScale):
    """Logistic(loc, scale): CDF σ((x - loc)/scale)."""

    def log_prob(self, value):
        z = self._z(value)
        return -z - 2 * T.softplus(-z) - T.log(self.scale)

    def cdf(self, value):
        return T.sigmoid((to_tensor(value) - self.loc) / self.scale)

    def icdf(self, q):
        q = to_tensor(q)
        return self.loc + self.scale * (T.log(q) - T.log1p(-q))

    def entropy(self):
        return T.broadcast_to(2 + T.log(self.scale), self.batch_shape)

    variance = property(lambda self: T.broadcast_to(self.scale ** 2 * math.pi ** 2 / 3, self.batch_shape))


class Gumbel(_LocScale):
    """Gumbel(loc, scale) (maximum): CDF exp(-e^(-z))."""

    def log_prob(self, value):
        z = self._z(value)
        return -(z + T.exp(-z)) - T.log(self.scale)

    def cdf(self, value):
        return T.exp(-T.exp(-(to_tensor(value) - self.loc) / self.scale))

    def icdf(self, q):
        return self.loc - self.scale * T.log(-T.log(to_tensor(q)))

    def entropy(self):
        return T.broadcast_to(T.log(self.scale) + 1 + _EULER, self.batch_shape)

    mean = property(lambda self: T.broadcast_to(self.loc + self.scale * _EULER, self.batch_shape))
    variance = property(lambda self: T.broadcast_to(self.scale ** 2 * math.pi ** 2 / 6, self.batch_shape))


class _Half(_QuantileSampled):
    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative

    def __init__(self, scale: Any = 1.0, validate_args: bool | None = None) -> None:
        (self.scale,), batch = broadcast_params(scale)
        super().__init__(batch, (), validate_args)


class HalfNormal(_Half):
    """|X| for X ~ Normal(0, scale)."""

    def log_prob(self, value):
        z = self._value(value) / self.scale
        return math.log(2) - _LOG_SQRT_2PI - T.log(self.scale) - 0.5 * z * z

    def cdf(self, value):
        return T.erf(to_tensor(value) / (self.scale * math.sqrt(2)))

    def icdf(self, q):
        return self.scale * T.ndtri((to_tensor(q) + 1) / 2)

    def entropy(self):
        return T.broadcast_to(0.5 * math.log(math.pi / 2) + 0.5 + T.log(self.scale), self.batch_shape)

    mean = property(lambda self: T.broadcast_to(self.scale * math.sqrt(2 / math.pi), self.batch_shape))
    variance = property(lambda self: T.broadcast_to(self.scale ** 2 * (1 - 2 / math.pi), self.batch_shape))


class HalfCauchy(_Half):
    """|X| for X ~ Cauchy(0, scale)."""

    def log_prob(self, value):
        z = self._value(value) / self.scale
        return math.log(2 / math.pi) - T.log(self.scale) - T.log1p(z * z)

    def cdf(self, value):
        return 2 * T.arctan(to_tensor(value) / self.scale) / math.pi

    def icdf(self, q):
        a = math.pi * to_tensor(q) / 2
        return self.scale * T.sin(a) / T.cos(a)

    def entropy(self):
        return T.broadcast_to(math.log(2 * math.pi) + T.log(self.scale), self.batch_shape)

    mean = property(lambda self: T.full(self.batch_shape, np.inf, dtype=self.scale.dtype))
    variance = property(lambda self: T.full(self.batch_shape, np.inf, dtype=self.scale.dtype))


class LogNormal(_QuantileSampled):
    """exp(X) for X ~ Normal(loc, scale)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive

    def __init__(self, loc: Any = 0.0, scale: Any = 1.0, validate_args: bool | None = None) -> None:
        (self.loc, self.scale), batch = broadcast_params(loc, scale)
        super().__init__(batch, (), validate_args)

    def log_prob(self, value):
        value = self._value(value)
        y = T.log(value)
        z = (y - self.loc) / self.scale
        return -0.5 * z * z - T.log(self.scale) - _LOG_SQRT_2PI - y

    def cdf(self, value):
        return T.ndtr((T.log(to_tensor(value)) - self.loc) / self.scale)

    def icdf(self, q):
        return T.exp(self.loc + self.scale * T.ndtri(to_tensor(q)))

    def entropy(self):
        return T.broadcast_to(self.loc + 0.5 + _LOG_SQRT_2PI + T.log(self.scale), self.batch_shape)

    mean = property(lambda self: T.broadcast_to(T.exp(self.loc + self.scale ** 2 / 2), self.batch_shape))
    variance = property(lambda self: T.broadcast_to(T.expm1(self.scale ** 2) * T.exp(2 * self.loc + self.scale ** 2),
                                                    self.batch_shape))


class Weibull(_QuantileSampled):
    """Weibull(scale λ, concentration k): density (k/λ) (x/λ)^(k-1) e^(-(x/λ)^k) on x > 0; CDF 1 - e^(-(x/λ)^k)."""

    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}
    support = constraints.positive

    def __init__(self, scale: Any = 1.0, concentration: Any = 1.0, validate_args: bool | None = None) -> None:
        (self.scale, self.concentration), batch = broadcast_params(scale, concentration)
        super().__init__(batch, (), validate_args)

    def log_prob(self, value):
        z, k = self._value(value) / self.scale, self.concentration
        return T.log(k / self.scale) + T.xlogy(k - 1, z) - z ** k

    def cdf(self, value):
        return -T.expm1(-T.clip(to_tensor(value) / self.scale, 0.0) ** self.concentration)

    def icdf(self, q):
        return self.scale * (-T.log1p(-to_tensor(q))) ** (1 / self.concentration)

    def entropy(self):
        k = self.concentration
        return T.broadcast_to(_EULER * (1 - 1 / k) + T.log(self.scale / k) + 1, self.batch_shape)

    def _moment(self, n):
        return self.scale ** n * T.exp(T.lgamma(1 + n / self.concentration))

    mean = property(lambda self: T.broadcast_to(self._moment(1), self.batch_shape))
    variance = property(lambda self: T.broadcast_to(self._moment(2) - self._moment(1) ** 2, self.batch_shape))

    @property
    def mode(self):
        """λ ((k - 1)/k)^(1/k) for k > 1, else 0."""
        k = self.concentration
        peaked = k.data > 1
        base = T.where(peaked, (k - 1) / k, 1.0)  # a safe base where the branch is unused
        return T.broadcast_to(T.where(peaked, self.scale * base ** (1 / k), 0.0), self.batch_shape)


class Pareto(_QuantileSampled):
    """Pareto(scale s, alpha α): density α s^α / x^(α+1) on x ≥ s; CDF 1 - (s/x)^α.

    The mean is infinite for α ≤ 1 and the variance for α ≤ 2 (returned as inf, as PyTorch)."""

    arg_constraints = {"scale": constraints.positive, "alpha": constraints.positive}

    def __init__(self, scale: Any = 1.0, alpha: Any = 1.0, validate_args: bool | None = None) -> None:
        (self.scale, self.alpha), batch = broadcast_params(scale, alpha)
        super().__init__(batch, (), validate_args)

    support = property(lambda self: constraints.greater_than_eq(self.scale.data))

    def log_prob(self, value):
        value = self._value(value)
        return T.log(self.alpha) + self.alpha * T.log(self.scale) - (self.alpha + 1) * T.log(value)

    def cdf(self, value):
        return -T.expm1(self.alpha * T.log(self.scale / T.maximum(to_tensor(value), self.scale)))

    def icdf(self, q):
        return self.scale * T.exp(-T.log1p(-to_tensor(q)) / self.alpha)

    def entropy(self):
        return T.broadcast_to(T.log(self.scale / self.alpha) + 1 / self.alpha + 1, self.batch_shape)

    @property
    def mean(self):
        finite = self.alpha.data > 1
        a = T.where(finite, self.alpha, 2.0)
        return T.broadcast_to(T.where(finite, a * self.scale / (a - 1), np.inf), self.batch_shape)

    @property
    def variance(self):
        finite = self.alpha.data > 2
        a = T.where(finite, self.alpha, 3.0)
        return T.broadcast_to(T.where(finite, self.scale ** 2 * a / ((a - 1) ** 2 * (a - 2)), np.inf),
                              self.batch_shape)

    mode = property(lambda self: T.broadcast_to(self.scale, self.batch_shape))


class Kumaraswamy(_QuantileSampled):
    """Kumaraswamy(concentration1 a, concentration0 b): density a b x^(a-1) (1 - x^a)^(b-1) on (0, 1);
    CDF 1 - (1 - x^a)^b. Moments E[X^n] = b B(1 + n/a, b); entropy (1 - 1/b) + (1 - 1/a) H_b - log(ab) with the
    harmonic number H_b = ψ(b + 1) + γ."""

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval

    def __init__(self, concentration1: Any = 1.0, concentration0: Any = 1.0,
                 validate_args: bool | None = None) -> None:
        (self.concentration1, self.concentration0), batch = broadcast_params(concentration1, concentration0)
        super().__init__(batch, (), validate_args)

    def log_prob(self, value):
        value = self._value(value)
        a, b = self.concentration1, self.concentration0
        log_x = T.log(value)
        return T.log(a * b) + (a - 1) * log_x + (b - 1) * _log1mexp(a * log_x)  # log(1 - x^a), accurate near 0 and 1

    def cdf(self, value):
        log_x = T.log(T.clip(to_tensor(value), 0.0, 1.0))
        return -T.expm1(self.concentration0 * _log1mexp(self.concentration1 * log_x))

    def icdf(self, q):
        # (1 - (1 - q)^(1/b))^(1/a), in logs
        return T.exp(_log1mexp(T.log1p(-to_tensor(q)) / self.concentration0) / self.concentration1)

    def entropy(self):
        a, b = self.concentration1, self.concentration0
        harmonic_b = T.digamma(b + 1) + _EULER
        return T.broadcast_to((1 - 1 / b) + (1 - 1 / a) * harmonic_b - T.log(a * b), self.batch_shape)

    def _moment(self, n):
        a, b = self.concentration1, self.concentration0
        return T.exp(T.log(b) + T.lgamma(1 + n / a) + T.lgamma(b) - T.lgamma(1 + n / a + b))

    mean = property(lambda self: T.broadcast_to(self._moment(1), self.batch_shape))
    variance = property(lambda self: T.broadcast_to(self._moment(2) - self._moment(1) ** 2, self.batch_shape))

    @property
    def mode(self):
        """((a - 1)/(ab - 1))^(1/a) for a ≥ 1, b ≥ 1 (not both 1); nan otherwise, as PyTorch."""
        a, b = self.concentration1, self.concentration0
        unimodal = (a.data >= 1) & (b.data >= 1) & ((a.data > 1) | (b.data > 1))
        base = T.where(unimodal, (a - 1) / T.where(unimodal, a * b - 1, 1.0), 0.5)
        return T.broadcast_to(T.where(unimodal, base ** (1 / a), np.nan), self.batch_shape)


class AsymmetricLaplace(_QuantileSampled):
    """AsymmetricLaplace(loc μ, scale s, asymmetry κ), NumPyro's parameterization: with left scale l = s κ and
    right scale r = s / κ, density exp(-|x - μ| / (l if x < μ else r)) / (l + r). Left of μ it is μ minus an
    exponential of mean l, right of μ plus one of mean r; P(X < μ) = l / (l + r)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive, "asymmetry": constraints.positive}
    support = constraints.real

    def __init__(self, loc: Any = 0.0, scale: Any = 1.0, asymmetry: Any = 1.0,
                 validate_args: bool | None = None) -> None:
        (self.loc, self.scale, self.asymmetry), batch = broadcast_params(loc, scale, asymmetry)
        super().__init__(batch, (), validate_args)

    left_scale = property(lambda self: self.scale * self.asymmetry)
    right_scale = property(lambda self: self.scale / self.asymmetry)

    def log_prob(self, value):
        z = self._value(value) - self.loc
        left, right = self.left_scale, self.right_scale
        return -T.abs(z) / T.where(z.data < 0, left, right) - T.log(left + right)

    def cdf(self, value):
        z = to_tensor(value) - self.loc
        left, right = self.left_scale, self.right_scale
        below = left / (left + right) * T.exp(T.clip(z, None, 0.0) / left)
        above = 1 - right / (left + right) * T.exp(-T.clip(z, 0.0) / right)
        return T.where(z.data < 0, below, above)

    def icdf(self, q):
        q = to_tensor(q)
        left, right = self.left_scale, self.right_scale
        p_left = left / (left + right)  # both branches are finite for any q in (0, 1)
        return T.where(q.data < p_left.data, self.loc + left * T.log(q / p_left),
                       self.loc - right * T.log((1 - q) / (1 - p_left)))

    def entropy(self):
        return T.broadcast_to(1 + T.log(self.left_scale + self.right_scale), self.batch_shape)

    mean = property(lambda self: T.broadcast_to(self.loc + self.right_scale - self.left_scale, self.batch_shape))
    mode = property(lambda self: T.broadcast_to(self.loc, self.batch_shape))
    variance = property(lambda self: T.broadcast_to(self.left_scale ** 2 + self.right_scale ** 2, self.batch_shape))


class SoftLaplace(_LocScale):
    """SoftLaplace(loc, scale) (NumPyro): density 1 / (π scale cosh(z)), z = (x - loc)/scale, a smooth
    log-concave Laplace look-alike (the hyperbolic secant law, scipy's ``hypsecant``). CDF (2/π) arctan(e^z);
    variance (π scale / 2)²; entropy log(2π scale) (E[log cosh z] = log 2)."""

    def log_prob(self, value):
        z = self._z(value)
        return math.log(2 / math.pi) - T.log(self.scale) - T.logaddexp(z, -z)

    def cdf(self, value):
        z = (to_tensor(value) - self.loc) / self.scale  # arctan of e^(-|z|) only: no overflow
        return T.where(z.data < 0, 2 / math.pi * T.arctan(T.exp(T.clip(z, None, 0.0))),
                       1 - 2 / math.pi * T.arctan(T.exp(-T.clip(z, 0.0))))

    def icdf(self, q):
        q = to_tensor(q)
        w = math.pi / 2 * T.minimum(q, 1 - q)  # log tan(π q / 2), from the nearer end for accuracy
        log_tan = T.log(T.sin(w)) - T.log(T.cos(w))
        return self.loc + self.scale * T.where(q.data < 0.5, log_tan, -log_tan)

    def entropy(self):
        return T.broadcast_to(T.log(2 * math.pi * self.scale), self.batch_shape)

    variance = property(lambda self: T.broadcast_to((math.pi / 2 * self.scale) ** 2, self.batch_shape))
