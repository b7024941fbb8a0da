"""Continuous relaxations of discrete variables, reparameterized so that gradients pass through draws:
``RelaxedBernoulli`` (the binary Concrete) on (0, 1) and ``RelaxedOneHotCategorical`` (the Concrete, or
Gumbel-softmax) on the simplex. As the temperature goes to 0 the draws approach Bernoulli draws and one-hot
vectors; at high temperatures they spread towards the middle.

References: C. J. Maddison, A. Mnih and Y. W. Teh, "The Concrete Distribution: A Continuous Relaxation of
Discrete Random Variables", ICLR 2017; E. Jang, S. Gu and B. Poole, "Categorical Reparameterization with
Gumbel-Softmax", ICLR 2017.
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
from .discrete import _probs_or_logits
from .distribution import Distribution, broadcast_params

__all__ = ["RelaxedBernoulli", "RelaxedOneHotCategorical"]


def _uniform(shape: tuple[int, ...], rng: Any, dtype: Any) -> Tensor:
    """Uniform draws on [tiny, 1), so that their logs are finite."""
    return Tensor._wrap(as_generator(rng).uniform(np.finfo(dtype).tiny, 1.0, shape).astype(dtype, copy=False))


def _logit(x: Tensor) -> Tensor:
    return T.log(x) - T.log1p(-x)


class RelaxedBernoulli(Distribution):
    """RelaxedBernoulli(temperature, probs | logits) on (0, 1): X = σ((L + logits) / T) for L ~ Logistic(0, 1),
    the binary Concrete. With z = T·logit(x) - logits (a standard logistic variable),

        log p(x) = log T + log σ(z) + log σ(-z) - log x - log(1 - x),
        P(X ≤ x) = σ(T·logit(x) - logits);

    equivalently p(x) = T α x^(-T-1) (1-x)^(-T-1) / (α x^(-T) + (1-x)^(-T))² with α = e^logits.
    Draws are clamped to [tiny, 1 - eps] as in PyTorch, so that log_prob of a draw is finite.

    References: Maddison, Mnih & Teh (2017), the binary Concrete; Jang, Gu & Poole (2017).
    """

    arg_constraints = {"temperature": constraints.positive, "probs": constraints.unit_interval,
                       "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, temperature: Any, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:
        self.probs, self.logits, given = _probs_or_logits("RelaxedBernoulli", probs, logits)
        self._given_args = ("temperature",) + given
        (self.temperature, self.logits), batch_shape = broadcast_params(temperature, self.logits)
        super().__init__(batch_shape, (), validate_args)

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        dtype = self.temperature.dtype
        x = self.icdf(_uniform(self.shape(sample_shape), rng, dtype))
        return T.clip(x, np.finfo(dtype).tiny, 1 - np.finfo(dtype).eps)

    def log_prob(self, value: Any) -> Tensor:
        x = to_tensor(value)
        self._validate_sample(x)
        log_x, log_1mx = T.log(x), T.log1p(-x)
        z = self.temperature * (log_x - log_1mx) - self.logits
        return T.log(self.temperature) + T.log_sigmoid(z) + T.log_sigmoid(-z) - log_x - log_1mx

    def cdf(self, value: Any) -> Tensor:
        return T.sigmoid(self.temperature * _logit(to_tensor(value)) - self.logits)

    def icdf(self, q: Any) -> Tensor:
        return T.sigmoid((_logit(to_tensor(q)) + self.logits) / self.temperature)


class RelaxedOneHotCategorical(Distribution):
    """RelaxedOneHotCategorical(temperature, probs | logits) on the simplex of K classes (the last dim of the
    parameter): X = softmax((logits + G) / T) with G i.i.d. Gumbel(0, 1), the Concrete (Gumbel-softmax). Its
    density, with respect to Lebesgue measure on the first K - 1 coordinates, is

        p(x) = (K-1)! T^(K-1) Πₖ αₖ xₖ^(-T-1) / (Σᵢ αᵢ xᵢ^(-T))^K,   αₖ = e^logitsₖ,

    computed as log Γ(K) + (K-1) log T + Σₖ (sₖ - log xₖ) - K logsumexp(s) with sₖ = logitsₖ - T log xₖ.
    For K = 2 the first coordinate is RelaxedBernoulli(T, logits₁ - logits₀); for any T, the argmax of a draw
    is Categorical(probs).

    References: Maddison, Mnih & Teh (2017), eq. for the Concrete density; Jang, Gu & Poole (2017).
    """

    arg_constraints = {"temperature": constraints.positive, "probs": constraints.simplex,
                       "logits": constraints.real_vector}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, temperature: Any, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("RelaxedOneHotCategorical: give exactly one of probs and logits")
        (raw,), _ = broadcast_params(logits if logits is not None else probs)
        (self.temperature,), _ = broadcast_params(temperature)
        self.temperature = self.temperature.astype(raw.dtype)
        if raw.ndim < 1:
            raise ValueError(f"RelaxedOneHotCategorical: the parameter needs a class dim, got shape {raw.shape}")
        if logits is not None:
            self.logits = raw - T.logsumexp(raw, -1, keepdims=True)
            self.probs = T.exp(self.logits)
        else:
            self.probs = raw
            with np.errstate(divide="ignore", invalid="ignore"):  # a zero probability is a -inf logit
                self.logits = T.log(raw) - T.log(raw.sum(-1, keepdims=True))
        self._given_args = ("temperature", "logits" if logits is not None else "probs")
        try:
            batch_shape = np.broadcast_shapes(self.temperature.shape, raw.shape[:-1])
        except ValueError as e:
            raise ValueError(f"RelaxedOneHotCategorical: temperature of shape {self.temperature.shape} does not "
                             f"broadcast with the batch shape {raw.shape[:-1]} of the class parameter") from e
        super().__init__(batch_shape, raw.shape[-1:], validate_args)

    def _t(self) -> Tensor:
        """The temperature with a trailing class dim."""
        return T.expand_dims(self.temperature, self.temperature.ndim)

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        u = _uniform(self.shape(sample_shape), rng, self.logits.dtype)
        gumbel = -T.log(-T.log(u))
        return T.exp(T.log_softmax((self.logits + gumbel) / self._t(), -1))

    def log_prob(self, value: Any) -> Tensor:
        x = to_tensor(value)
        self._validate_sample(x)
        k = self.event_shape[0]
        log_x = T.log(x)
        score = self.logits - self._t() * log_x
        return (math.lgamma(k) + (k - 1) * T.log(self.temperature) + (score - log_x).sum(-1)
                - k * T.logsumexp(score, -1))
