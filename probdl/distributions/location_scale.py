"""Continuous families with closed-form CDF and quantile, reparameterized through the quantile:
x = icdf(u) for u ~ Uniform(0, 1), so gradients reach the parameters through ``rsample``.

Exponential, Uniform, Laplace, Cauchy, HalfCauchy, Logistic, Gumbel, HalfNormal, LogNormal.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import tensor as T
from ..backend import as_generator
from ..tensor import Tensor
from ..tensor.ops.base import to_tensor
from . import constraints
from .distribution import Distribution, broadcast_params

__all__ = ["Exponential", "Uniform", "Laplace", "Cauchy", "HalfCauchy", "Logistic", "Gumbel", "HalfNormal",
           "LogNormal"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_EULER = 0.57721566490153286061


class _QuantileSampled(Distribution):
    """A family sampled as ``icdf(u)``; subclasses define ``icdf`` in probdl ops."""

    has_rsample = True

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        dtype = getattr(self, next(iter(self.arg_constraints))).dtype  # broadcast_params gave all one dtype
        tiny = np.finfo(dtype).tiny
        u = as_generator(rng).uniform(tiny, 1.0, self.shape(sample_shape)).astype(dtype, copy=False)
        return self.icdf(Tensor._wrap(u))

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
