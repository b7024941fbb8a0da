"""Finite mixtures p(x) = Σₖ wₖ pₖ(x) with weights from a Categorical: ``MixtureSameFamily`` (the K
components are the last batch dim of one distribution) and ``MixtureGeneral`` (a list of K distributions,
of any families, with one event shape).

``log_prob`` is a logsumexp over components (each -inf where the value lies outside its support); draws pick
a component per batch member and gather its draw; mean and variance follow the law of total variance.
"""
from __future__ import annotations

import functools
import operator
from typing import Any

import numpy as np

from .. import tensor as T
from ..backend import as_generator
from ..tensor import Tensor
from ..tensor.ops.base import to_tensor
from . import constraints
from .combinators import log_prob_or_neg_inf
from .discrete import Categorical
from .distribution import Distribution, _describe, _shape

__all__ = ["MixtureSameFamily", "MixtureGeneral"]


def _stack(parts: list[Tensor], axis: int) -> Tensor:
    """Stack tensors of broadcastable shapes along a new ``axis``."""
    shape = np.broadcast_shapes(*(p.shape for p in parts))
    return T.stack([T.broadcast_to(p, shape) for p in parts], axis)


class _Mixture(Distribution):
    """Shared logic; a subclass gives per-component log-densities, draws, moments and support checks, each
    with the components along the axis just left of the event dims."""

    arg_constraints: dict = {}
    has_rsample = False

    def _init(self, mixing: Any, size: int, component_batch: tuple[int, ...], event_shape: tuple[int, ...],
              validate_args: bool | None) -> None:
        name = type(self).__name__
        if not isinstance(mixing, Categorical):
            raise TypeError(f"{name}: mixing_distribution must be a Categorical, got {type(mixing).__name__}")
        if mixing.num_categories != size:
            raise ValueError(f"{name}: the mixing distribution has {mixing.num_categories} categories but there are "
                             f"{size} components")
        try:
            batch_shape = np.broadcast_shapes(mixing.batch_shape, component_batch)
        except ValueError as e:
            raise ValueError(f"{name}: the mixing distribution's batch shape {mixing.batch_shape} does not broadcast "
                             f"with the components' batch shape {component_batch}") from e
        self.mixing_distribution = mixing
        super().__init__(batch_shape, event_shape, validate_args)

    @property
    def mixture_size(self) -> int:
        return self.mixing_distribution.num_categories

    @property
    def mixture_dim(self) -> int:
        """The axis of the components in per-component quantities: just left of the event dims."""
        return -self.event_dim - 1

    def _weights(self) -> Tensor:
        """The mixing probabilities shaped to broadcast against per-component means."""
        p = self.mixing_distribution.probs
        return p.reshape(p.shape + (1,) * self.event_dim)

    def _validate_sample(self, value: Any) -> None:
        """A value must lie in the support of at least one component."""
        if not self._validate_args:
            return
        ok = self._inside(value)
        if not bool(np.all(np.asarray(ok))):
            raise ValueError(f"{type(self).__name__}: value outside the support {self.support!r}: got "
                             f"{_describe(value, ok)}")

    def log_prob(self, value: Any) -> Tensor:
        x = to_tensor(value)
        self._validate_sample(x)
        return T.logsumexp(self._component_log_probs(x) + self.mixing_distribution.logits, -1)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        g = as_generator(rng)  # one generator for both draws, so that an int seed gives independent streams
        s = _shape(sample_shape)
        which = self.mixing_distribution.expand(self.batch_shape).sample(s, g)
        draws = self._component_draws(s, g)  # s + batch + (K,) + event
        index = which.data.reshape(which.shape + (1,) * (self.event_dim + 1))
        return T.take_along_axis(draws, index, self.mixture_dim).squeeze(self.mixture_dim)

    @property
    def mean(self) -> Tensor:
        means, _ = self._component_moments()
        return T.broadcast_to((self._weights() * means).sum(self.mixture_dim), self.batch_shape + self.event_shape)

    @property
    def variance(self) -> Tensor:
        """Var X = E[Var(X | k)] + Var(E[X | k]) = Σₖ wₖ (σₖ² + (μₖ - μ)²)."""
        means, variances = self._component_moments()
        w = self._weights()
        mean = T.expand_dims((w * means).sum(self.mixture_dim), self.mixture_dim)
        spread = (w * (variances + (means - mean) ** 2)).sum(self.mixture_dim)
        return T.broadcast_to(spread, self.batch_shape + self.event_shape)

    def cdf(self, value: Any) -> Tensor:
        """Σₖ wₖ Fₖ(x) for univariate components (each Fₖ clipped to [0, 1], so that a closed form used outside
        its component's support, as -expm1(-λx) for x < 0, cannot leak in)."""
        if self.event_shape:
            raise NotImplementedError(f"{type(self).__name__}: cdf is defined for univariate components only")
        cdfs = T.clip(self._component_cdfs(to_tensor(value)), 0.0, 1.0)
        return (self.mixing_distribution.probs * cdfs).sum(-1)


class MixtureSameFamily(_Mixture):
    """p(x) = Σₖ wₖ pₖ(x): ``mixing_distribution`` a Categorical over K components, ``component_distribution``
    one distribution whose last batch dim (of size K) indexes the components. The batch shape is the
    components' batch shape without that dim, broadcast with the mixing distribution's.
    """

    _repr_extra = ("mixing_distribution", "component_distribution")

    def __init__(self, mixing_distribution: Categorical, component_distribution: Distribution,
                 validate_args: bool | None = None) -> None:
        if not isinstance(component_distribution, Distribution):
            raise TypeError(f"MixtureSameFamily: component_distribution must be a Distribution, got "
                            f"{type(component_distribution).__name__}")
        b = component_distribution.batch_shape
        if not b:
            raise ValueError(f"MixtureSameFamily: component_distribution needs a batch dim indexing the components; "
                             f"{type(component_distribution).__name__} has batch shape ()")
        self.component_distribution = component_distribution
        self._init(mixing_distribution, b[-1], b[:-1], component_distribution.event_shape, validate_args)

    support = property(lambda self: self.component_distribution.support)

    def _pad(self, x: Tensor) -> Tensor:
        """x with a size-1 component axis, to broadcast against the components."""
        return T.expand_dims(x, x.ndim - self.event_dim)

    def _inside(self, x):
        return self.component_distribution.support.check(self._pad(to_tensor(x))).any(-1)

    def _component_log_probs(self, x):
        return log_prob_or_neg_inf(self.component_distribution, self._pad(x))

    def _component_cdfs(self, x):
        return self.component_distribution.cdf(self._pad(x))

    def _component_draws(self, sample_shape, g):
        return self.component_distribution.expand(self.batch_shape + (self.mixture_size,)).sample(sample_shape, g)

    def _component_moments(self):
        return self.component_distribution.mean, self.component_distribution.variance


class MixtureGeneral(_Mixture):
    """p(x) = Σₖ wₖ pₖ(x) with ``component_distributions`` a list of K distributions, possibly of different
    families, with one event shape and broadcastable batch shapes. ``support`` defaults to the components'
    common support; components with different supports (a Normal and a Gamma) need it given, and each
    component's density counts as 0 outside its own support.
    """

    _repr_extra = ("mixing_distribution", "component_distributions")

    def __init__(self, mixing_distribution: Categorical, component_distributions: list[Distribution],
                 support: constraints.Constraint | None = None, validate_args: bool | None = None) -> None:
        comps = list(component_distributions)
        if not comps or not all(isinstance(c, Distribution) for c in comps):
            raise TypeError("MixtureGeneral: component_distributions must be a non-empty list of Distributions")
        events = {c.event_shape for c in comps}
        if len(events) > 1:
            raise ValueError(f"MixtureGeneral: the components must share one event shape, got {sorted(events)}")
        try:
            batch = np.broadcast_shapes(*(c.batch_shape for c in comps))
        except ValueError as e:
            raise ValueError(f"MixtureGeneral: the components' batch shapes {[c.batch_shape for c in comps]} do not "
                             f"broadcast") from e
        if support is None:
            if len({repr(c.support) for c in comps}) > 1:
                raise ValueError(f"MixtureGeneral: the components have different supports "
                                 f"{[c.support for c in comps]}; give the mixture's support")
            support = comps[0].support
        self.component_distributions, self._support = comps, support
        self._init(mixing_distribution, len(comps), batch, comps[0].event_shape, validate_args)

    support = property(lambda self: self._support)

    def _inside(self, x):
        return functools.reduce(operator.or_, (c.support.check(x) for c in self.component_distributions))

    def _component_log_probs(self, x):
        return _stack([log_prob_or_neg_inf(c, x) for c in self.component_distributions], -1)

    def _component_cdfs(self, x):
        return _stack([c.cdf(x) for c in self.component_distributions], -1)

    def _component_draws(self, sample_shape, g):
        return T.stack([c.expand(self.batch_shape).sample(sample_shape, g) for c in self.component_distributions],
                       self.mixture_dim)

    def _component_moments(self):
        comps = self.component_distributions
        return _stack([c.mean for c in comps], self.mixture_dim), _stack([c.variance for c in comps], self.mixture_dim)
