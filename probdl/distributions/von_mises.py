"""VonMises: the circular analogue of the Normal, on angles in [-π, π)."""
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

__all__ = ["VonMises"]

_LOG_2PI = math.log(2 * math.pi)


def _best_fisher(kappa: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Angles θ ∈ [-π, π] from VonMises(0, κ), one per entry of ``kappa`` (a float64 array), by Best and Fisher's
    wrapped-Cauchy envelope; all entries propose at once and only the rejected ones propose again."""
    kappa = np.maximum(kappa, 1e-300)  # below this the law is uniform to within rounding; keeps r finite
    tau = 1 + np.sqrt(1 + 4 * kappa ** 2)
    rho = 2 * kappa / (tau + np.sqrt(2 * tau))  # = (tau - sqrt(2 tau)) / (2 kappa), without cancellation at small κ
    r = (1 + rho ** 2) / (2 * rho)
    theta = np.empty_like(kappa)
    pending = np.arange(kappa.size)
    while pending.size:
        u1, u2, u3 = gen.uniform(size=(3, pending.size))
        k, rk = kappa[pending], r[pending]
        z = np.cos(np.pi * u1)
        f = (1 + rk * z) / (rk + z)
        c = k * (rk - f)
        with np.errstate(divide="ignore"):
            accept = (c * (2 - c) > u2) | (np.log(c / u2) + 1 - c >= 0)
        theta[pending[accept]] = (np.sign(u3 - 0.5) * np.arccos(np.clip(f, -1.0, 1.0)))[accept]
        pending = pending[~accept]
    return theta


class VonMises(Distribution):
    """VonMises(loc μ, concentration κ): density e^(κ cos(x - μ)) / (2π I0(κ)) on the circle [-π, π).

    log I0(κ) = log i0e(κ) + κ, with the exponentially scaled Bessel function, so large κ does not overflow.
    ``mean`` and ``mode`` are μ; ``variance`` is the circular variance 1 - I1(κ)/I0(κ), as PyTorch. No
    reparameterized sampler (has_rsample False, as NumPyro): draws are by rejection.

    References: Best, D. J. and Fisher, N. I. (1979). Efficient simulation of the von Mises distribution.
    Journal of the Royal Statistical Society C (Applied Statistics) 28(2), 152-157.
    """

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.circular

    def __init__(self, loc: Any = 0.0, concentration: Any = 1.0, validate_args: bool | None = None) -> None:
        (self.loc, self.concentration), batch = broadcast_params(loc, concentration)
        super().__init__(batch, (), validate_args)

    def log_prob(self, value: Any) -> Tensor:
        value = to_tensor(value)
        self._validate_sample(value)
        k = self.concentration
        return k * (T.cos(value - self.loc) - 1) - _LOG_2PI - T.log(T.i0e(k))

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        shape = self.shape(sample_shape)
        dtype, where = self.loc.dtype, device_of(self.loc.data)
        kappa = np.broadcast_to(to_device(self.concentration.data, "cpu").astype(np.float64), shape)
        theta = _best_fisher(np.ascontiguousarray(kappa).ravel(), as_generator(rng)).reshape(shape)
        x = np.mod(to_device(self.loc.data, "cpu") + theta + np.pi, 2 * np.pi) - np.pi  # wrap into [-π, π)
        return Tensor._wrap(to_device(x.astype(dtype, copy=False), where))

    def entropy(self) -> Tensor:
        """log(2π I0(κ)) - κ I1(κ)/I0(κ)."""
        k = self.concentration
        return T.broadcast_to(_LOG_2PI + T.log(T.i0e(k)) + k * (1 - T.i1e(k) / T.i0e(k)), self.batch_shape)

    @property
    def mean(self) -> Tensor:
        return T.broadcast_to(self.loc, self.batch_shape)

    @property
    def mode(self) -> Tensor:
        return self.mean

    @property
    def variance(self) -> Tensor:
        k = self.concentration
        return T.broadcast_to(1 - T.i1e(k) / T.i0e(k), self.batch_shape)
