"""Distributions built from others: ``Independent`` (``to_event``), ``ExpandedDistribution`` (``expand``)
and ``MaskedDistribution`` (``mask``), and ``log_prob_or_neg_inf`` for combinators whose values may leave
one part's support (mixtures, folding). ``TransformedDistribution`` is in ``transformed``, mixtures in
``mixtures``."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import tensor as T
from ..tensor import Tensor
from ..tensor.ops.base import to_tensor
from . import constraints
from .distribution import Distribution, _shape

__all__ = ["Independent", "ExpandedDistribution", "MaskedDistribution", "log_prob_or_neg_inf"]


def log_prob_or_neg_inf(d: Distribution, value: Any) -> Tensor:
    """``d.log_prob(value)``, and -inf where ``value`` lies outside ``d.support`` instead of a validation
    error or a NaN: there the density is evaluated at a point inside the support (so its gradient is finite)
    and replaced by -inf. For a mixture whose components have different supports, say."""
    x = to_tensor(value)
    if d.support is None:
        return d.log_prob(x)
    ok = d.support.check(x)
    if bool(ok.all()):
        return d.log_prob(x)
    inside = ok.reshape(ok.shape + (1,) * len(d.event_shape))
    return T.where(ok, d.log_prob(T.where(inside, x, d.support.feasible_like(x))), -math.inf)


class Independent(Distribution):
    """Reinterpret the rightmost ``reinterpreted_batch_ndims`` batch dims of ``base`` as event dims:
    ``log_prob`` sums over them (a diagonal Normal as one multivariate event, say)."""

    arg_constraints: dict = {}

    def __init__(self, base: Distribution, reinterpreted_batch_ndims: int, validate_args: bool | None = None) -> None:
        n = reinterpreted_batch_ndims
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(base.batch_shape):
            raise ValueError(f"Independent: reinterpreted_batch_ndims must be an int in [0, {len(base.batch_shape)}] "
                             f"for a base of batch shape {base.batch_shape}, got {n!r}")
        self.base_dist, self.reinterpreted_batch_ndims = base, n
        cut = len(base.batch_shape) - n
        super().__init__(base.batch_shape[:cut], base.batch_shape[cut:] + base.event_shape,
                         base._validate_args if validate_args is None else validate_args)

    has_rsample = property(lambda self: self.base_dist.has_rsample)
    support = property(lambda self: constraints.independent(self.base_dist.support, self.reinterpreted_batch_ndims))

    def _sum(self, t: Tensor) -> Tensor:
        n = self.reinterpreted_batch_ndims
        return t.sum(tuple(range(-n, 0))) if n else t

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self.base_dist.rsample(sample_shape, rng)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self.base_dist.sample(sample_shape, rng)

    def log_prob(self, value: Any) -> Tensor:
        return self._sum(self.base_dist.log_prob(value))

    def entropy(self) -> Tensor:
        return self._sum(self.base_dist.entropy())

    mean = property(lambda self: self.base_dist.mean)
    variance = property(lambda self: self.base_dist.variance)

    def __repr__(self) -> str:
        return f"Independent({self.base_dist!r}, {self.reinterpreted_batch_ndims})"


class ExpandedDistribution(Distribution):
    """``base`` broadcast to a larger ``batch_shape``; dims stretched from size 1 get independent draws."""

    arg_constraints: dict = {}

    def __init__(self, base: Distribution, batch_shape: Any, validate_args: bool | None = None) -> None:
        batch_shape = _shape(batch_shape)
        b = base.batch_shape
        if len(batch_shape) < len(b) or any(o != 1 and o != n for o, n in zip(b, batch_shape[len(batch_shape) -
                                                                                              len(b):])):
            raise ValueError(f"expand: cannot expand batch shape {b} of {type(base).__name__} to {batch_shape}")
        self.base_dist = base
        lead = len(batch_shape) - len(b)
        self._lead = batch_shape[:lead]
        self._stretched = [i for i, (o, n) in enumerate(zip(b, batch_shape[lead:])) if o == 1 and n != 1]
        super().__init__(batch_shape, base.event_shape, base._validate_args if validate_args is None
                         else validate_args)

    has_rsample = property(lambda self: self.base_dist.has_rsample)
    support = property(lambda self: self.base_dist.support)

    def _draw(self, sample_shape: Any, rng: Any, reparameterized: bool) -> Tensor:
        s = _shape(sample_shape)
        lead = len(self.batch_shape) - len(self.base_dist.batch_shape)
        sizes = tuple(self.batch_shape[lead + i] for i in self._stretched)
        draw = (self.base_dist.rsample if reparameterized else self.base_dist.sample)(s + self._lead + sizes, rng)
        # draw: s + lead + sizes + base_batch + event. Put each stretched size where its size-1 dim is.
        n_front, n_sizes, nb = len(s) + len(self._lead), len(sizes), len(self.base_dist.batch_shape)
        batch_axes = [n_front + n_sizes + i for i in range(nb)]
        order = list(range(n_front))
        for i in range(nb):
            order.append(n_front + self._stretched.index(i) if i in self._stretched else batch_axes[i])
        order += [batch_axes[i] for i in self._stretched]  # the size-1 axes, dropped by the reshape below
        order += list(range(n_front + n_sizes + nb, draw.ndim))
        draw = draw.permute(order).reshape(s + self._lead + tuple(
            self.batch_shape[lead + i] if i in self._stretched else self.base_dist.batch_shape[i] for i in range(nb))
            + self.event_shape)
        return T.broadcast_to(draw, self.shape(s))

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self._draw(sample_shape, rng, True)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self._draw(sample_shape, rng, False)

    def _broadcast(self, out: Tensor) -> Tensor:
        return T.broadcast_to(out, np.broadcast_shapes(out.shape, self.batch_shape))

    def log_prob(self, value: Any) -> Tensor:
        return self._broadcast(self.base_dist.log_prob(value))

    def cdf(self, value: Any) -> Tensor:
        return self._broadcast(self.base_dist.cdf(value))

    def icdf(self, q: Any) -> Tensor:
        return self._broadcast(self.base_dist.icdf(q))

    def entropy(self) -> Tensor:
        return T.broadcast_to(self.base_dist.entropy(), self.batch_shape)

    mean = property(lambda self: T.broadcast_to(self.base_dist.mean, self.batch_shape + self.event_shape))
    variance = property(lambda self: T.broadcast_to(self.base_dist.variance, self.batch_shape + self.event_shape))

    def __repr__(self) -> str:
        return f"ExpandedDistribution({self.base_dist!r}, batch_shape={self.batch_shape})"


class MaskedDistribution(Distribution):
    """``base`` whose ``log_prob`` is 0 where ``mask`` is False (a bool array broadcasting with the batch
    shape), as for missing observations."""

    arg_constraints: dict = {}

    def __init__(self, base: Distribution, mask: Any, validate_args: bool | None = None) -> None:
        m = to_tensor(mask)
        if m.dtype != np.bool_:
            raise TypeError(f"mask: expected a boolean mask, got dtype {m.dtype}")
        try:
            batch_shape = np.broadcast_shapes(base.batch_shape, m.shape)
        except ValueError as e:
            raise ValueError(f"mask: a mask of shape {m.shape} does not broadcast with batch shape "
                             f"{base.batch_shape}") from e
        self.base_dist, self._mask = base, m
        super().__init__(batch_shape, base.event_shape, base._validate_args if validate_args is None
                         else validate_args)

    has_rsample = property(lambda self: self.base_dist.has_rsample)
    support = property(lambda self: self.base_dist.support)

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self.base_dist.rsample(sample_shape, rng)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self.base_dist.sample(sample_shape, rng)

    def log_prob(self, value: Any) -> Tensor:
        lp = self.base_dist.log_prob(value)
        return T.where(self._mask.data, lp, 0.0)

    mean = property(lambda self: self.base_dist.mean)
    variance = property(lambda self: self.base_dist.variance)
