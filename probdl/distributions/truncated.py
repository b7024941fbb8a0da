"""TruncatedNormal: a Normal restricted to [low, high], either bound optional, computed stably far into the tails."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import tensor as T
from ..tensor import Tensor
from ..tensor.ops.base import to_tensor
from . import constraints
from .distribution import broadcast_params
from .location_scale import _log1mexp, _QuantileSampled

__all__ = ["TruncatedNormal"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class TruncatedNormal(_QuantileSampled):
    """TruncatedNormal(loc μ, scale σ, low=None, high=None): Normal(μ, σ) conditioned on low ≤ x ≤ high, density
    φ(z) / (σ Z) with z = (x - μ)/σ, Z = Φ(β) - Φ(α), α = (low - μ)/σ, β = (high - μ)/σ. A bound that is None
    (or ±inf) is absent: one-sided truncation, support greater_than(low) or less_than(high), as NumPyro.

    Every probability is a difference of two normal tail probabilities held in logs: Φ(ξ) - Φ(α) = e^U - e^L,
    and where α > 0 (both bounds above the mean) the mirror image Φ(-α) - Φ(-ξ) is used instead, so that
    neither term is a number close to 1. Then log Z = U + log(1 - e^(L - U)) keeps full relative accuracy
    for bounds many scales into a tail (α = 8, β = 9: Z ≈ 6e-16 while Φ(8) rounds to 1). Sampling is by the
    quantile, reparameterized: Φ(ξ) = Φ(α) + q Z, or on the mirror Φ(-ξ) = Φ(-β) + (1 - q) Z; the quantile is
    accurate while the nearer bound's tail probability is a normal float (bounds within about 37 scales of loc).
    """

    _repr_extra = ("low", "high")
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}

    def __init__(self, loc: Any = 0.0, scale: Any = 1.0, low: Any = None, high: Any = None,
                 validate_args: bool | None = None) -> None:
        self._low_given, self._high_given = low is not None, high is not None
        (self.loc, self.scale, self.low, self.high), batch = broadcast_params(
            loc, scale, -np.inf if low is None else low, np.inf if high is None else high)
        super().__init__(batch, (), validate_args)

    def _check_parameters(self):
        super()._check_parameters()
        if not bool((self.low.data < self.high.data).all()):
            raise ValueError(f"TruncatedNormal: parameter low must be below high; got low={self.low.tolist()}, "
                             f"high={self.high.tolist()}")

    @property
    def support(self):
        if self._low_given and self._high_given:
            return constraints.interval(self.low.data, self.high.data)
        if self._low_given:
            return constraints.greater_than(self.low.data)
        return constraints.less_than(self.high.data) if self._high_given else constraints.real

    def _bounds(self):
        """α and β with an absent bound replaced by 0 (no infinity enters the graph), the masks of the absent
        bounds, and ``mirror`` (α > 0: work with -X)."""
        lo_out, hi_out = ~T.isfinite(self.low).data, ~T.isfinite(self.high).data
        a = (T.where(lo_out, self.loc, self.low) - self.loc) / self.scale
        b = (T.where(hi_out, self.loc, self.high) - self.loc) / self.scale
        return a, b, lo_out, hi_out, a.data > 0

    def _tails(self, xi, xi_out=False):
        """(U, L) with Φ(ξ) - Φ(α) = e^U - e^L; ``xi_out`` marks ξ = +∞ (an absent upper bound)."""
        a, _, lo_out, _, mirror = self._bounds()
        upper = T.where(~mirror & xi_out, 0.0, T.log_ndtr(T.where(mirror, -a, xi)))
        lower = T.where((mirror & xi_out) | (~mirror & lo_out), -np.inf, T.log_ndtr(T.where(mirror, -xi, a)))
        return upper, lower

    def _log_z(self):
        _, b, _, hi_out, _ = self._bounds()
        upper, lower = self._tails(b, hi_out)
        return upper + _log1mexp(lower - upper)

    def _clip(self, xi):
        """ξ clamped into [α, β] (rounding may step just outside)."""
        a, b, lo_out, hi_out, _ = self._bounds()
        xi = T.where(lo_out, xi, T.maximum(xi, a))
        return T.where(hi_out, xi, T.minimum(xi, b))

    def log_prob(self, value):
        value = self._value(value)
        z = (value - self.loc) / self.scale
        lp = -0.5 * z * z - _LOG_SQRT_2PI - T.log(self.scale) - self._log_z()
        outside = (value.data < self.low.data) | (value.data > self.high.data)
        return T.where(outside, -np.inf, lp)

    def cdf(self, value):
        upper, lower = self._tails(self._clip((to_tensor(value) - self.loc) / self.scale))
        return T.clip(T.exp(upper - self._log_z()) * -T.expm1(lower - upper), 0.0, 1.0)  # rounding at the ends

    def icdf(self, q):
        q = to_tensor(q)
        _, b, _, hi_out, mirror = self._bounds()
        _, lower = self._tails(b, hi_out)  # log Φ(α), or log Φ(-β) on the mirror
        log_p = T.logaddexp(lower, T.where(mirror, T.log1p(-q), T.log(q)) + self._log_z())
        xi = T.ndtri(T.exp(log_p))
        return self.loc + self.scale * self._clip(T.where(mirror, -xi, xi))

    def _ratios(self):
        """φ(α)/Z and φ(β)/Z (0 at an absent bound), with α and β."""
        a, b, lo_out, hi_out, _ = self._bounds()
        log_z = self._log_z()
        r_a = T.where(lo_out, 0.0, T.exp(-0.5 * a * a - _LOG_SQRT_2PI - log_z))
        r_b = T.where(hi_out, 0.0, T.exp(-0.5 * b * b - _LOG_SQRT_2PI - log_z))
        return a, b, r_a, r_b

    def entropy(self):
        a, b, r_a, r_b = self._ratios()
        return T.broadcast_to(0.5 + _LOG_SQRT_2PI + T.log(self.scale) + self._log_z() + (a * r_a - b * r_b) / 2,
                              self.batch_shape)

    @property
    def mean(self) -> Tensor:
        _, _, r_a, r_b = self._ratios()
        return T.broadcast_to(self.loc + self.scale * (r_a - r_b), self.batch_shape)

    @property
    def variance(self) -> Tensor:
        a, b, r_a, r_b = self._ratios()
        return T.broadcast_to(self.scale ** 2 * (1 + a * r_a - b * r_b - (r_a - r_b) ** 2), self.batch_shape)

    @property
    def mode(self) -> Tensor:
        return T.broadcast_to(T.minimum(T.maximum(self.loc, self.low), self.high), self.batch_shape)
