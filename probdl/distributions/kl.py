"""KL divergences KL(p ‖ q) = E_p[log p(x) - log q(x)], by a registry of closed forms.

``register_kl(P, Q)`` decorates a function of (p, q); ``kl_divergence(p, q)`` finds the most
specific registered pair for the two types (walking their MROs) and raises NotImplementedError
naming both types when there is none.
"""
from __future__ import annotations

import math
from collections.abc import Callable

from .. import tensor as T
from ..tensor import Tensor
from .combinators import Independent
from .discrete import Bernoulli, Categorical, Poisson
from .distribution import Distribution
from .location_scale import Exponential, Laplace, Uniform
from .normal import Normal

__all__ = ["kl_divergence", "register_kl"]

_KL: dict[tuple[type, type], Callable[[Distribution, Distribution], Tensor]] = {}


def register_kl(type_p: type, type_q: type) -> Callable:
    """Register a closed form for KL(p ‖ q) with p of ``type_p`` and q of ``type_q``."""
    def decorator(fn: Callable) -> Callable:
        _KL[(type_p, type_q)] = fn
        return fn
    return decorator


def kl_divergence(p: Distribution, q: Distribution) -> Tensor:
    """KL(p ‖ q), with the broadcast batch shape of p and q."""
    for tp in type(p).__mro__:
        for tq in type(q).__mro__:
            fn = _KL.get((tp, tq))
            if fn is not None:
                return fn(p, q)
    raise NotImplementedError(f"kl_divergence: no closed form is registered for {type(p).__name__} ‖ "
                              f"{type(q).__name__}; estimate it by Monte Carlo, or register one with register_kl")


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    ratio = p.scale / q.scale
    return 0.5 * (ratio * ratio + ((p.loc - q.loc) / q.scale) ** 2 - 1) - T.log(ratio)


@register_kl(Exponential, Exponential)
def _kl_exponential(p, q):
    ratio = q.rate / p.rate
    return ratio - 1 - T.log(ratio)


@register_kl(Laplace, Laplace)
def _kl_laplace(p, q):
    ratio = p.scale / q.scale
    diff = T.abs(p.loc - q.loc)
    return -T.log(ratio) + diff / q.scale + ratio * T.exp(-diff / p.scale) - 1


@register_kl(Uniform, Uniform)
def _kl_uniform(p, q):
    inside = (q.low.data <= p.low.data) & (p.high.data <= q.high.data)
    return T.where(inside, T.log((q.high - q.low) / (p.high - p.low)), math.inf)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli(p, q):
    lp1, lp0 = T.log_sigmoid(p.logits), T.log_sigmoid(-p.logits)
    return p.probs * (lp1 - T.log_sigmoid(q.logits)) + (1 - p.probs) * (lp0 - T.log_sigmoid(-q.logits))


@register_kl(Categorical, Categorical)
def _kl_categorical(p, q):
    return (p.probs * T.where(p.probs.data == 0, 0.0, p.logits - q.logits)).sum(-1)


@register_kl(Poisson, Poisson)
def _kl_poisson(p, q):
    return T.xlogy(p.rate, p.rate) - T.xlogy(p.rate, q.rate) - p.rate + q.rate


@register_kl(Independent, Independent)
def _kl_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError("kl_divergence: Independent distributions with different reinterpreted_batch_ndims "
                                  f"({p.reinterpreted_batch_ndims} and {q.reinterpreted_batch_ndims})")
    kl = kl_divergence(p.base_dist, q.base_dist)
    n = p.reinterpreted_batch_ndims
    return kl.sum(tuple(range(-n, 0))) if n else kl


