"""The Normal distribution."""
from __future__ import annotations

import math
from typing import Any

from .. import tensor as T
from ..tensor import Tensor
from ..tensor.ops.base import to_tensor
from ..tensor.ops.random import standard_normal_like
from . import constraints
from .distribution import Distribution, broadcast_params

__all__ = ["Normal"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class Normal(Distribution):
    """Normal(loc, scale): density exp(-(x - loc)² / (2 scale²)) / (scale √(2π)); reparameterized."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc: Any = 0.0, scale: Any = 1.0, validate_args: bool | None = None) -> None:
        (self.loc, self.scale), batch_shape = broadcast_params(loc, scale)
        super().__init__(batch_shape, (), validate_args)

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self.loc + self.scale * standard_normal_like(self.shape(sample_shape), self.loc, rng)

    def log_prob(self, value: Any) -> Tensor:
        value = to_tensor(value)
        self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -0.5 * z * z - T.log(self.scale) - _LOG_SQRT_2PI

    def cdf(self, value: Any) -> Tensor:
        return T.ndtr((to_tensor(value) - self.loc) / self.scale)

    def icdf(self, q: Any) -> Tensor:
        return self.loc + self.scale * T.ndtri(to_tensor(q))

    def entropy(self) -> Tensor:
        return T.broadcast_to(0.5 + _LOG_SQRT_2PI + T.log(self.scale), self.batch_shape)

    @property
    def mean(self) -> Tensor:
        return T.broadcast_to(self.loc, self.batch_shape)

    @property
    def mode(self) -> Tensor:
        return self.mean

    @property
    def variance(self) -> Tensor:
        return T.broadcast_to(self.scale * self.scale, self.batch_shape)
