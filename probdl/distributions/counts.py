"""Count families: Binomial, Multinomial, NegativeBinomial, GammaPoisson, BetaBinomial, DirichletMultinomial,
and the zero-inflated ones (ZeroInflatedDistribution, ZeroInflatedPoisson, ZeroInflatedNegativeBinomial).

Densities are written in probdl ops, differentiable in every floating parameter; ``probs`` enter through
their logits (``log_sigmoid``), and each ``k · log p`` term is dropped where its weight is 0, so probabilities
of exactly 0 or 1 give finite values inside the support. Draws are outside the graph (``has_rsample`` is
False), vectorized over the batch with NumPy's generator, and come back as floats in the parameters' dtype.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import tensor as T
from ..backend import as_generator
from ..tensor import Tensor
from ..tensor.ops.base import to_tensor
from . import constraints
from .discrete import Poisson, _Discrete, _probs_or_logits, _simplex_params, _weighted
from .distribution import Distribution, broadcast_params

__all__ = ["Binomial", "Multinomial", "NegativeBinomial", "GammaPoisson", "BetaBinomial", "DirichletMultinomial",
           "ZeroInflatedDistribution", "ZeroInflatedPoisson", "ZeroInflatedNegativeBinomial"]


def _log_binom(n: Any, k: Any) -> Tensor:
    """log C(n, k) = log n! - log k! - log (n - k)!."""
    return T.lgamma(n + 1) - T.lgamma(k + 1) - T.lgamma(n - k + 1)


def _log_beta(a: Any, b: Any) -> Tensor:
    return T.lgamma(a) + T.lgamma(b) - T.lgamma(a + b)


def _ints(t: Tensor) -> np.ndarray:
    return t.numpy().astype(np.int64)


class _Multinomial(constraints.Constraint):
    """Vectors of non-negative integers summing to ``upper_bound``: the values of Multinomial and
    DirichletMultinomial."""

    event_dim = 1
    is_discrete = True

    def __init__(self, upper_bound: Any) -> None:
        self.upper_bound = upper_bound

    def check(self, value):
        x, n = to_tensor(value).data, to_tensor(self.upper_bound).data
        return ((x >= 0) & (x % 1 == 0)).all(axis=-1) & (x.sum(axis=-1) == n)

    def feasible_like(self, prototype):
        x = to_tensor(prototype).data
        out = x * 0
        out[..., 0] = to_tensor(self.upper_bound).data
        return out

    def __repr__(self) -> str:
        n = to_tensor(self.upper_bound)
        return f"multinomial(upper_bound={n.item() if n.ndim == 0 else n.tolist()})"


def _total_count(total_count: Any, like: Tensor) -> Tensor:
    n = to_tensor(total_count)
    return n if n.dtype == like.dtype else n.astype(like.dtype)


class _BoundedCount(_Discrete):
    """Counts in 0, ..., total_count: the support, its enumeration, and the entropy summed over it.
    A subclass defines ``_log_pmf(k)`` (no validation)."""

    has_enumerate_support = True
    support = property(lambda self: constraints.integer_interval(0, self.total_count))

    def log_prob(self, value: Any) -> Tensor:
        return self._log_pmf(self._value(value))

    def _column(self, values: np.ndarray) -> Tensor:
        return self._draw(values.reshape((-1,) + (1,) * len(self.batch_shape)))

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """0, ..., total_count shaped (n + 1,) + (1,) * len(batch_shape); needs one total_count for the batch."""
        n = self.total_count.numpy()
        if np.any(n != n.flat[0]):
            raise ValueError(f"{type(self).__name__}: enumerate_support needs the same total_count across the batch; "
                             f"got {n.tolist()}")
        v = self._column(np.arange(n.flat[0] + 1))
        return T.broadcast_to(v, v.shape[:1] + self.batch_shape) if expand else v

    def entropy(self) -> Tensor:
        """-Σ P(k) log P(k) over k = 0, ..., max(total_count); terms past a member's total_count are dropped."""
        k = self._column(np.arange(self.total_count.numpy().max() + 1))
        inside = k.data <= self.total_count.data
        lp = self._log_pmf(T.where(inside, k, 0.0))  # evaluated at 0 outside the support, so no lgamma pole
        return T.broadcast_to(-_weighted(T.where(inside, T.exp(lp), 0.0), lp).sum(0), self.batch_shape)


class Binomial(_BoundedCount):
    """Binomial(total_count=1, probs | logits): P(k) = C(n, k) pᵏ (1 - p)ⁿ⁻ᵏ for k = 0, ..., n."""

    arg_constraints = {"total_count": constraints.nonnegative_integer, "probs": constraints.unit_interval,
                       "logits": constraints.real}

    def __init__(self, total_count: Any = 1, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:
        p, lg, given = _probs_or_logits("Binomial", probs, logits)
        (self.total_count, self.probs, self.logits), batch = broadcast_params(total_count, p, lg)
        self._given_args, self._like = ("total_count",) + given, self.probs
        super().__init__(batch, (), validate_args)

    def _log_pmf(self, k: Tensor) -> Tensor:
        n, lg = self.total_count, self.logits
        return _log_binom(n, k) + _weighted(k, T.log_sigmoid(lg)) + _weighted(n - k, T.log_sigmoid(-lg))

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        draws = as_generator(rng).binomial(_ints(self.total_count), self.probs.numpy(), self.shape(sample_shape))
        return self._draw(draws)

    mean = property(lambda self: T.broadcast_to(self.total_count * self.probs, self.batch_shape))
    variance = property(lambda self: T.broadcast_to(self.total_count * self.probs * (1 - self.probs), self.batch_shape))
    mode = property(lambda self: T.broadcast_to(T.minimum(T.floor((self.total_count + 1) * self.probs),
                                                          self.total_count), self.batch_shape))


class Multinomial(_Discrete):
    """Multinomial(total_count=1, probs | logits): P(x) = n! Π_k p_k^(x_k) / x_k! for count vectors x summing to n.

    The K classes lie along the last dim of the parameter; ``event_shape`` is (K,).
    """

    arg_constraints = {"total_count": constraints.nonnegative_integer, "probs": constraints.simplex,
                       "logits": constraints.real_vector}

    def __init__(self, total_count: Any = 1, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:
        self.probs, self.logits, given = _simplex_params("Multinomial", probs, logits)
        self.total_count = _total_count(total_count, self.probs)
        self._given_args, self._like = ("total_count",) + given, self.probs
        batch = np.broadcast_shapes(self.total_count.shape, self.probs.shape[:-1])
        super().__init__(batch, self.probs.shape[-1:], validate_args)

    support = property(lambda self: _Multinomial(self.total_count))

    def log_prob(self, value: Any) -> Tensor:
        x = self._value(value)
        return T.lgamma(self.total_count + 1) + (_weighted(x, self.logits) - T.lgamma(x + 1)).sum(-1)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        shape = self.shape(sample_shape)[:-1]
        p = np.exp(self.logits.numpy().astype(np.float64))
        n = np.broadcast_to(_ints(self.total_count), shape)
        return self._draw(as_generator(rng).multinomial(n, p / p.sum(-1, keepdims=True), shape))

    def _p(self) -> Tensor:
        return T.broadcast_to(T.exp(self.logits), self.batch_shape + self.event_shape)

    mean = property(lambda self: T.expand_dims(self.total_count, -1) * self._p())
    variance = property(lambda self: T.expand_dims(self.total_count, -1) * self._p() * (1 - self._p()))


class NegativeBinomial(_Discrete):
    """NegativeBinomial(total_count, probs | logits), PyTorch's: the number k of successes, each of probability p,
    before the r-th failure, P(k) = Γ(k + r) / (Γ(r) k!) · pᵏ (1 - p)ʳ; mean r p / (1 - p). r may be fractional."""

    arg_constraints = {"total_count": constraints.positive, "probs": constraints.unit_interval,
                       "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, total_count: Any, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:
        p, lg, given = _probs_or_logits("NegativeBinomial", probs, logits)
        (self.total_count, self.probs, self.logits), batch = broadcast_params(total_count, p, lg)
        self._given_args, self._like = ("total_count",) + given, self.probs
        super().__init__(batch, (), validate_args)

    def log_prob(self, value: Any) -> Tensor:
        k, r = self._value(value), self.total_count
        return (T.lgamma(k + r) - T.lgamma(r) - T.lgamma(k + 1) + _weighted(r, T.log_sigmoid(-self.logits))
                + _weighted(k, T.log_sigmoid(self.logits)))

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        # NumPy counts failures of probability 1 - q before n successes of probability q: q = 1 - p here.
        q = T.sigmoid(-self.logits).numpy()
        return self._draw(as_generator(rng).negative_binomial(self.total_count.numpy(), q, self.shape(sample_shape)))

    mean = property(lambda self: T.broadcast_to(self.total_count * T.exp(self.logits), self.batch_shape))
    variance = property(lambda self: self.mean / T.sigmoid(-self.logits))
    mode = property(lambda self: T.broadcast_to(T.clip(T.floor((self.total_count - 1) * T.exp(self.logits)), 0.0),
                                                self.batch_shape))


class GammaPoisson(_Discrete):
    """GammaPoisson(concentration, rate=1.), NumPyro's: Poisson counts whose rate is Gamma(α, β) distributed,
    P(k) = Γ(k + α) / (Γ(α) k!) · βᵅ / (1 + β)^(k + α); mean α / β, variance α (1 + β) / β²."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative_integer

    def __init__(self, concentration: Any, rate: Any = 1.0, validate_args: bool | None = None) -> None:
        (self.concentration, self.rate), batch = broadcast_params(concentration, rate)
        self._like = self.concentration
        super().__init__(batch, (), validate_args)

    def log_prob(self, value: Any) -> Tensor:
        k, a = self._value(value), self.concentration
        return (T.lgamma(k + a) - T.lgamma(a) - T.lgamma(k + 1) + a * T.log(self.rate)
                - (a + k) * T.log1p(self.rate))

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        gen = as_generator(rng)
        lam = gen.gamma(self.concentration.numpy(), 1 / self.rate.numpy(), self.shape(sample_shape))
        return self._draw(gen.poisson(lam))

    mean = property(lambda self: T.broadcast_to(self.concentration / self.rate, self.batch_shape))
    variance = property(lambda self: self.mean * (1 + self.rate) / self.rate)
    mode = property(lambda self: T.broadcast_to(T.clip(T.floor((self.concentration - 1) / self.rate), 0.0),
                                                self.batch_shape))


class BetaBinomial(_BoundedCount):
    """BetaBinomial(concentration1, concentration0, total_count=1), NumPyro's: Binomial(n, p) with p ~ Beta(α, β),
    P(k) = C(n, k) B(k + α, n - k + β) / B(α, β) for k = 0, ..., n."""

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive,
                       "total_count": constraints.nonnegative_integer}

    def __init__(self, concentration1: Any, concentration0: Any, total_count: Any = 1,
                 validate_args: bool | None = None) -> None:
        (self.concentration1, self.concentration0, self.total_count), batch = broadcast_params(
            concentration1, concentration0, total_count)
        self._like = self.concentration1
        super().__init__(batch, (), validate_args)

    def _log_pmf(self, k: Tensor) -> Tensor:
        a, b, n = self.concentration1, self.concentration0, self.total_count
        return _log_binom(n, k) + _log_beta(k + a, n - k + b) - _log_beta(a, b)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        gen, shape = as_generator(rng), self.shape(sample_shape)
        p = gen.beta(self.concentration1.numpy(), self.concentration0.numpy(), shape)
        return self._draw(gen.binomial(_ints(self.total_count), p, shape))

    @property
    def mean(self) -> Tensor:
        a, b, n = self.concentration1, self.concentration0, self.total_count
        return T.broadcast_to(n * a / (a + b), self.batch_shape)

    @property
    def variance(self) -> Tensor:
        a, b, n = self.concentration1, self.concentration0, self.total_count
        return T.broadcast_to(n * a * b * (a + b + n) / ((a + b) ** 2 * (a + b + 1)), self.batch_shape)


class DirichletMultinomial(_Discrete):
    """DirichletMultinomial(concentration, total_count=1), NumPyro's: Multinomial(n, p) with p ~ Dirichlet(α),
    P(x) = n! Γ(A) / Γ(n + A) · Π_k Γ(x_k + α_k) / (x_k! Γ(α_k)) for count vectors x summing to n, A = Σ_k α_k.

    Draws take p from Dirichlet(α) through log-Gamma variates, log G(α) = log G(α + 1) + log(U) / α, which stay
    finite for small α. References: Marsaglia & Tsang, "A simple method for generating gamma variables", ACM TOMS
    26(3), 2000 (the boost from α + 1 to α).
    """

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1),
                       "total_count": constraints.nonnegative_integer}

    def __init__(self, concentration: Any, total_count: Any = 1, validate_args: bool | None = None) -> None:
        (self.concentration,), _ = broadcast_params(concentration)
        if self.concentration.ndim < 1:
            raise ValueError(f"DirichletMultinomial: concentration needs a class dim, got shape "
                             f"{self.concentration.shape}")
        self.total_count = _total_count(total_count, self.concentration)
        self._like = self.concentration
        batch = np.broadcast_shapes(self.total_count.shape, self.concentration.shape[:-1])
        super().__init__(batch, self.concentration.shape[-1:], validate_args)

    support = property(lambda self: _Multinomial(self.total_count))

    def log_prob(self, value: Any) -> Tensor:
        x, alpha, n = self._value(value), self.concentration, self.total_count
        total = alpha.sum(-1)
        return (T.lgamma(n + 1) + T.lgamma(total) - T.lgamma(n + total)
                + (T.lgamma(x + alpha) - T.lgamma(alpha) - T.lgamma(x + 1)).sum(-1))

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        gen, shape = as_generator(rng), self.shape(sample_shape)
        alpha = np.broadcast_to(self.concentration.numpy().astype(np.float64), shape)
        log_g = np.log(gen.gamma(alpha + 1)) + np.log1p(-gen.random(shape)) / alpha  # log1p(-U): U = 0 is finite
        p = np.exp(log_g - log_g.max(-1, keepdims=True))
        n = np.broadcast_to(_ints(self.total_count), shape[:-1])
        return self._draw(gen.multinomial(n, p / p.sum(-1, keepdims=True)))

    def _p(self) -> Tensor:
        alpha = self.concentration
        return T.broadcast_to(alpha / alpha.sum(-1, keepdims=True), self.batch_shape + self.event_shape)

    mean = property(lambda self: T.expand_dims(self.total_count, -1) * self._p())

    @property
    def variance(self) -> Tensor:
        n, total = T.expand_dims(self.total_count, -1), self.concentration.sum(-1, keepdims=True)
        return n * self._p() * (1 - self._p()) * (n + total) / (1 + total)


class ZeroInflatedDistribution(_Discrete):
    """``base_dist`` with extra zeros: the value is 0 with probability g (the gate), a draw of ``base_dist`` otherwise,
    P(0) = g + (1 - g) P_base(0) and P(k) = (1 - g) P_base(k) for k ≠ 0. Give ``gate`` or ``gate_logits``."""

    arg_constraints = {"gate": constraints.unit_interval, "gate_logits": constraints.real}
    _base_args: tuple[str, ...] = ()  # the base's parameters a subclass stores on itself, validated with the gate

    def __init__(self, base_dist: Distribution, *, gate: Any = None, gate_logits: Any = None,
                 validate_args: bool | None = None) -> None:
        name = type(self).__name__
        if base_dist.event_shape:
            raise ValueError(f"{name}: base_dist must have event_shape (), got {base_dist.event_shape}")
        self.gate, self.gate_logits, given = _probs_or_logits(name, gate, gate_logits, ("gate", "gate_logits"))
        batch = np.broadcast_shapes(self.gate.shape, base_dist.batch_shape)
        self.base_dist = base_dist.expand(batch)
        self._given_args, self._like = given + self._base_args, self.gate
        super().__init__(batch, (), validate_args)

    support = property(lambda self: self.base_dist.support)

    def log_prob(self, value: Any) -> Tensor:
        x = self._value(value)
        log_kept = T.log_sigmoid(-self.gate_logits) + self.base_dist.log_prob(x)  # log (1 - g) P_base(x)
        return T.where(x.data == 0, T.logaddexp(T.log_sigmoid(self.gate_logits), log_kept), log_kept)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        gen = as_generator(rng)
        x = self.base_dist.sample(sample_shape, gen).numpy()
        return self._draw(np.where(gen.random(x.shape) < self.gate.numpy(), 0, x))

    mean = property(lambda self: (1 - self.gate) * self.base_dist.mean)

    @property
    def variance(self) -> Tensor:
        m = self.base_dist.mean
        return (1 - self.gate) * (self.base_dist.variance + self.gate * m * m)


class ZeroInflatedPoisson(ZeroInflatedDistribution):
    """ZeroInflatedPoisson(rate, *, gate | gate_logits), Pyro's signature: Poisson(rate) with extra zeros of
    probability gate, P(0) = g + (1 - g) e^(-rate), P(k) = (1 - g) rateᵏ e^(-rate) / k!."""

    arg_constraints = {"rate": constraints.positive, "gate": constraints.unit_interval,
                       "gate_logits": constraints.real}
    _base_args = ("rate",)

    def __init__(self, rate: Any, *, gate: Any = None, gate_logits: Any = None,
                 validate_args: bool | None = None) -> None:
        (self.rate,), _ = broadcast_params(rate)
        super().__init__(Poisson(self.rate, validate_args=False), gate=gate, gate_logits=gate_logits,
                         validate_args=validate_args)


class ZeroInflatedNegativeBinomial(ZeroInflatedDistribution):
    """ZeroInflatedNegativeBinomial(total_count, *, probs | logits, gate | gate_logits), Pyro's signature:
    NegativeBinomial(total_count, probs) (PyTorch's meaning of probs) with extra zeros of probability gate."""

    arg_constraints = {"total_count": constraints.positive, "probs": constraints.unit_interval,
                       "logits": constraints.real, "gate": constraints.unit_interval, "gate_logits": constraints.real}

    def __init__(self, total_count: Any, *, probs: Any = None, logits: Any = None, gate: Any = None,
                 gate_logits: Any = None, validate_args: bool | None = None) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("ZeroInflatedNegativeBinomial: give exactly one of probs and logits")
        base = NegativeBinomial(total_count, probs, logits, validate_args=False)
        self.total_count, self.probs, self.logits = base.total_count, base.probs, base.logits
        self._base_args = base._given_args
        super().__init__(base, gate=gate, gate_logits=gate_logits, validate_args=validate_args)
