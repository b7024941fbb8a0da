"""The Gamma family and the families built from Gamma draws: Gamma, InverseGamma, Chi2, Beta, Dirichlet, StudentT.

Every family here is reparameterized (``has_rsample``) through Gamma draws carrying the implicit gradient
of :mod:`.implicit_reparam`: Gamma = G/rate, InverseGamma = rate/G, Chi2 = 2 G(df/2), Beta = G₁/(G₁ + G₂),
Dirichlet = G/ΣG, StudentT = loc + scale·Z·√(df/(2 G(df/2))). Beta, Dirichlet, InverseGamma and StudentT
are built from log G, which stays finite where G underflows (concentrations ≪ 1).

CDFs and quantiles: Gamma, Chi2 and InverseGamma are differentiable in the value and (first order) in
every parameter; Beta and StudentT use scipy's incomplete beta and Student t functions, differentiable
in the value (and so in loc and scale) but not in the shape parameters: a gradient with respect to
those raises. KL closed forms for Gamma‖Gamma, Beta‖Beta and Dirichlet‖Dirichlet are registered here.

References: M. Figurnov, S. Mohamed, A. Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.special as sc

from .. import tensor as T
from ..backend import as_generator, device_of, get_array_module, to_device
from ..tensor import Tensor
from ..tensor.ops.base import Op, apply, to_tensor
from . import constraints
from .distribution import Distribution, broadcast_params
from .implicit_reparam import gammainc, gammaincc, gammainccinv, gammaincinv, log_standard_gamma, standard_gamma
from .kl import register_kl

__all__ = ["Gamma", "InverseGamma", "Chi2", "Beta", "Dirichlet", "StudentT"]


def _lbeta(a: Tensor, b: Tensor) -> Tensor:
    return T.lgamma(a) + T.lgamma(b) - T.lgamma(a + b)


def _fill_where(cond: Any, value: Tensor, fill: float) -> Tensor:
    return T.where(cond, fill, value)


# ------------------------------------------------------------------ CDFs differentiable in the value only
def _beta_log_density(a, b, x):
    return T.xlogy(a - 1, x) + T.xlogy(b - 1, 1 - x) - _lbeta(a, b)


def _t_log_density(df, t):
    return (T.lgamma((df + 1) / 2) - T.lgamma(df / 2) - 0.5 * T.log(df * math.pi)
            - (df + 1) / 2 * T.log1p(t * t / df))


# scipy function name → d out/d value in Tensor ops (params..., value, out)
_VALUE_DERIVATIVE = {
    "betainc": lambda a, b, x, out: T.exp(_beta_log_density(a, b, x)),
    "betaincinv": lambda a, b, q, out: T.exp(-_beta_log_density(a, b, out)),
    "stdtr": lambda df, t, out: T.exp(_t_log_density(df, t)),
    "stdtrit": lambda df, q, out: T.exp(-_t_log_density(df, out)),
}


class SpecialOfValue(Op):
    """``scipy.special.<fn>(*params, value)`` computed on the host, differentiable in the value (last input):
    its derivative is the density (a CDF) or the reciprocal density at the output (a quantile). The
    derivative in the shape parameters is not available, and asking for it raises."""

    @staticmethod
    def forward(*arrays, fn):
        out = getattr(sc, fn)(*(to_device(a, "cpu") for a in arrays)).astype(arrays[-1].dtype, copy=False)
        return to_device(out, device_of(arrays[-1]))

    @staticmethod
    def backward(node, out, g):
        *params, value = node.inputs
        for p in params:
            if p.requires_grad:
                raise RuntimeError(f"{node.attrs['fn']}: the gradient with respect to the shape parameters is not "
                                   "implemented; detach them (the value, loc and scale are differentiable)")
        gv = T.sum_to(g * _VALUE_DERIVATIVE[node.attrs["fn"]](*params, value, out), value.data.shape)
        return (*(None for _ in params), gv)


def _special_of_value(fn: str, *args: Any) -> Tensor:
    ts, shape = broadcast_params(*args)
    return apply(SpecialOfValue, tuple(ts), {"fn": fn})


# ------------------------------------------------------------------ Gamma family
class Gamma(Distribution):
    """Gamma(concentration α, rate β): density β^α x^(α-1) e^(-βx) / Γ(α) on x > 0 (mean α/β).

    ``rsample`` is G/β with G ~ Gamma(α, 1) carrying the implicit gradient in α; as in PyTorch, draws
    that underflow are raised to the smallest normal float, so ``log_prob`` of a draw is finite.
    ``cdf``/``icdf`` are differentiable in the value and in both parameters (first order in α).

    References: Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018.
    """

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, concentration: Any, rate: Any = 1.0, validate_args: bool | None = None) -> None:
        (self.concentration, self.rate), batch_shape = broadcast_params(concentration, rate)
        super().__init__(batch_shape, (), validate_args)

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        x = standard_gamma(self.concentration, self.shape(sample_shape), rng) / self.rate
        return T.clip(x, float(np.finfo(x.dtype).tiny))

    def log_prob(self, value: Any) -> Tensor:
        value = to_tensor(value)
        self._validate_sample(value)
        a, b = self.concentration, self.rate
        return T.xlogy(a, b) + T.xlogy(a - 1, value) - b * value - T.lgamma(a)

    def cdf(self, value: Any) -> Tensor:
        return gammainc(self.concentration, self.rate * to_tensor(value))

    def icdf(self, q: Any) -> Tensor:
        return gammaincinv(self.concentration, to_tensor(q)) / self.rate

    def entropy(self) -> Tensor:
        a = self.concentration
        return T.broadcast_to(a - T.log(self.rate) + T.lgamma(a) + (1 - a) * T.digamma(a), self.batch_shape)

    mean = property(lambda self: T.broadcast_to(self.concentration / self.rate, self.batch_shape))
    variance = property(lambda self: T.broadcast_to(self.concentration / self.rate ** 2, self.batch_shape))
    mode = property(lambda self: T.broadcast_to(T.clip((self.concentration - 1) / self.rate, 0.0),
                                                self.batch_shape))


class Chi2(Gamma):
    """Chi2(df): Gamma(df/2, rate 1/2), the sum of df squared standard normals (df > 0 need not be whole)."""

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df: Any, validate_args: bool | None = None) -> None:
        (self.df,), _ = broadcast_params(df)
        super().__init__(self.df * 0.5, T.full_like(self.df, 0.5), validate_args)


class InverseGamma(Distribution):
    """InverseGamma(concentration α, rate β): 1/X for X ~ Gamma(α, β); density β^α x^(-α-1) e^(-β/x) / Γ(α).

    Mean β/(α - 1) (inf for α ≤ 1), variance β²/((α-1)²(α-2)) (inf for α ≤ 2), as in NumPyro.
    """

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, concentration: Any, rate: Any = 1.0, validate_args: bool | None = None) -> None:
        (self.concentration, self.rate), batch_shape = broadcast_params(concentration, rate)
        super().__init__(batch_shape, (), validate_args)

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self.rate * T.exp(-log_standard_gamma(self.concentration, self.shape(sample_shape), rng))

    def log_prob(self, value: Any) -> Tensor:
        value = to_tensor(value)
        self._validate_sample(value)
        a, b = self.concentration, self.rate
        return T.xlogy(a, b) - (a + 1) * T.log(value) - b / value - T.lgamma(a)

    def cdf(self, value: Any) -> Tensor:
        return gammaincc(self.concentration, self.rate / to_tensor(value))

    def icdf(self, q: Any) -> Tensor:
        return self.rate / gammainccinv(self.concentration, to_tensor(q))

    def entropy(self) -> Tensor:
        a = self.concentration
        return T.broadcast_to(a + T.log(self.rate) + T.lgamma(a) - (1 + a) * T.digamma(a), self.batch_shape)

    @property
    def mean(self) -> Tensor:
        a = self.concentration
        return T.broadcast_to(_fill_where(a.data <= 1, self.rate / (a - 1), math.inf), self.batch_shape)

    @property
    def variance(self) -> Tensor:
        a = self.concentration
        v = self.rate ** 2 / ((a - 1) ** 2 * (a - 2))
        return T.broadcast_to(_fill_where(a.data <= 2, v, math.inf), self.batch_shape)

    mode = property(lambda self: T.broadcast_to(self.rate / (self.concentration + 1), self.batch_shape))


# ------------------------------------------------------------------ Beta and Dirichlet
def _dirichlet_mode(c: Tensor) -> Tensor:
    """PyTorch's convention: (α - 1)₊ / Σ(α - 1)₊, and the vertex of the largest α when every α < 1."""
    cm1 = T.clip(c - 1, 0.0)
    xp = get_array_module(c.data)
    vertex = (xp.arange(c.shape[-1]) == xp.argmax(c.data, -1)[..., None]).astype(c.dtype)
    all_small = (c.data < 1).all(-1, keepdims=True)
    return T.where(all_small, Tensor._wrap(vertex), cm1 / T.where(all_small, 1.0, cm1.sum(-1, keepdims=True)))


class Beta(Distribution):
    """Beta(concentration1 a, concentration0 b): density x^(a-1) (1-x)^(b-1) / B(a, b) on [0, 1].

    ``rsample`` is G₁/(G₁ + G₂) = sigmoid(log G₁ - log G₂) with Gᵢ ~ Gamma(·, 1) drawn in log space (finite for
    tiny concentrations), clamped to [tiny, 1 - eps] as in PyTorch so that ``log_prob`` of a draw is finite.
    ``cdf``/``icdf`` (scipy's betainc/betaincinv) are differentiable in the value only.
    """

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1: Any, concentration0: Any, validate_args: bool | None = None) -> None:
        (self.concentration1, self.concentration0), batch_shape = broadcast_params(concentration1, concentration0)
        super().__init__(batch_shape, (), validate_args)

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        gen, shape = as_generator(rng), self.shape(sample_shape)
        x = T.sigmoid(log_standard_gamma(self.concentration1, shape, gen)
                      - log_standard_gamma(self.concentration0, shape, gen))
        info = np.finfo(x.dtype)
        return T.clip(x, float(info.tiny), 1.0 - float(info.epsneg))

    def log_prob(self, value: Any) -> Tensor:
        value = to_tensor(value)
        self._validate_sample(value)
        return _beta_log_density(self.concentration1, self.concentration0, value)

    def cdf(self, value: Any) -> Tensor:
        return _special_of_value("betainc", self.concentration1, self.concentration0, value)

    def icdf(self, q: Any) -> Tensor:
        return _special_of_value("betaincinv", self.concentration1, self.concentration0, q)

    def entropy(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        h = _lbeta(a, b) - (a - 1) * T.digamma(a) - (b - 1) * T.digamma(b) + (a + b - 2) * T.digamma(a + b)
        return T.broadcast_to(h, self.batch_shape)

    mean = property(lambda self: T.broadcast_to(self.concentration1 / (self.concentration1 + self.concentration0),
                                                self.batch_shape))

    @property
    def variance(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        return T.broadcast_to(a * b / ((a + b) ** 2 * (a + b + 1)), self.batch_shape)

    @property
    def mode(self) -> Tensor:
        c = T.stack([T.broadcast_to(self.concentration1, self.batch_shape),
                     T.broadcast_to(self.concentration0, self.batch_shape)], -1)
        return _dirichlet_mode(c)[..., 0]


class Dirichlet(Distribution):
    """Dirichlet(concentration α) on the simplex (event dim 1): density Γ(Σα) ∏ x_i^(α_i-1) / ∏ Γ(α_i).

    ``rsample`` is softmax(log G) with G_i ~ Gamma(α_i, 1) drawn in log space, floored at the smallest
    normal float as in PyTorch.
    """

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration: Any, validate_args: bool | None = None) -> None:
        (self.concentration,), shape = broadcast_params(concentration)
        if len(shape) < 1:
            raise ValueError(f"Dirichlet: parameter concentration must have at least one dimension; got shape {shape}")
        super().__init__(shape[:-1], shape[-1:], validate_args)

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        x = T.softmax(log_standard_gamma(self.concentration, self.shape(sample_shape), rng), -1)
        return T.clip(x, float(np.finfo(x.dtype).tiny))

    def log_prob(self, value: Any) -> Tensor:
        value = to_tensor(value)
        self._validate_sample(value)
        c = self.concentration
        return T.xlogy(c - 1, value).sum(-1) + T.lgamma(c.sum(-1)) - T.lgamma(c).sum(-1)

    def entropy(self) -> Tensor:
        c = self.concentration
        c0, k = c.sum(-1), c.shape[-1]
        h = T.lgamma(c).sum(-1) - T.lgamma(c0) + (c0 - k) * T.digamma(c0) - ((c - 1) * T.digamma(c)).sum(-1)
        return T.broadcast_to(h, self.batch_shape)

    @property
    def mean(self) -> Tensor:
        return T.broadcast_to(self.concentration / self.concentration.sum(-1, keepdims=True), self.shape())

    @property
    def variance(self) -> Tensor:
        c = self.concentration
        c0 = c.sum(-1, keepdims=True)
        return T.broadcast_to(c * (c0 - c) / (c0 ** 2 * (c0 + 1)), self.shape())

    mode = property(lambda self: T.broadcast_to(_dirichlet_mode(self.concentration), self.shape()))


# ------------------------------------------------------------------ Student t
class StudentT(Distribution):
    """StudentT(df ν, loc μ, scale σ): density Γ((ν+1)/2) / (Γ(ν/2) √(νπ) σ) · (1 + z²/ν)^(-(ν+1)/2),
    z = (x - μ)/σ.

    ``rsample`` is μ + σ·Z·√(ν/(2 G)), Z ~ Normal(0, 1), G ~ Gamma(ν/2, 1) (implicit gradient in ν).
    Mean μ for ν > 1 (nan otherwise); variance σ²ν/(ν-2) for ν > 2, inf for 1 < ν ≤ 2, nan for ν ≤ 1
    (PyTorch's convention). ``cdf``/``icdf`` are differentiable in the value, loc and scale, not in df.
    """

    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df: Any, loc: Any = 0.0, scale: Any = 1.0, validate_args: bool | None = None) -> None:
        (self.df, self.loc, self.scale), batch_shape = broadcast_params(df, loc, scale)
        super().__init__(batch_shape, (), validate_args)

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        gen, shape = as_generator(rng), self.shape(sample_shape)
        z = Tensor._wrap(to_device(gen.standard_normal(shape).astype(self.loc.dtype), device_of(self.loc.data)))
        log_g = log_standard_gamma(self.df * 0.5, shape, gen)
        return self.loc + self.scale * z * T.exp(0.5 * (T.log(self.df * 0.5) - log_g))

    def log_prob(self, value: Any) -> Tensor:
        value = to_tensor(value)
        self._validate_sample(value)
        return _t_log_density(self.df, (value - self.loc) / self.scale) - T.log(self.scale)

    def cdf(self, value: Any) -> Tensor:
        return _special_of_value("stdtr", self.df, (to_tensor(value) - self.loc) / self.scale)

    def icdf(self, q: Any) -> Tensor:
        return self.loc + self.scale * _special_of_value("stdtrit", self.df, q)

    def entropy(self) -> Tensor:
        df = self.df
        h = ((df + 1) / 2 * (T.digamma((df + 1) / 2) - T.digamma(df / 2)) + 0.5 * T.log(df)
             + _lbeta(df / 2, T.full_like(df, 0.5)) + T.log(self.scale))
        return T.broadcast_to(h, self.batch_shape)

    @property
    def mean(self) -> Tensor:
        return T.broadcast_to(_fill_where(self.df.data <= 1, self.loc, math.nan), self.batch_shape)

    @property
    def variance(self) -> Tensor:
        df = self.df
        v = _fill_where(df.data <= 2, self.scale ** 2 * df / (df - 2), math.inf)
        return T.broadcast_to(_fill_where(df.data <= 1, v, math.nan), self.batch_shape)

    mode = property(lambda self: T.broadcast_to(self.loc, self.batch_shape))


# ------------------------------------------------------------------ KL divergences
@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p, q):
    a, b, c, d = p.concentration, p.rate, q.concentration, q.rate
    return ((a - c) * T.digamma(a) - T.lgamma(a) + T.lgamma(c) + c * (T.log(b) - T.log(d))
            + a * (d - b) / b)


@register_kl(Beta, Beta)
def _kl_beta_beta(p, q):
    a1, b1, a2, b2 = p.concentration1, p.concentration0, q.concentration1, q.concentration0
    return (_lbeta(a2, b2) - _lbeta(a1, b1) + (a1 - a2) * T.digamma(a1) + (b1 - b2) * T.digamma(b1)
            + (a2 - a1 + b2 - b1) * T.digamma(a1 + b1))


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p, q):
    a, b = p.concentration, q.concentration
    a0 = a.sum(-1)
    return (T.lgamma(a0) - T.lgamma(a).sum(-1) - T.lgamma(b.sum(-1)) + T.lgamma(b).sum(-1)
            + ((a - b) * (T.digamma(a) - T.digamma(a0).unsqueeze(-1))).sum(-1))
