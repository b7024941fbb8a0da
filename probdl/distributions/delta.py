"""Degenerate and improper distributions used by inference machinery: ``Delta`` (a point mass, for MAP guides
and deterministic sites), ``ImproperUniform`` (a flat log-density over a support, for priors left to the
data) and ``Unit`` (an empty value carrying a log-factor, behind ``factor`` statements); with
KL(Delta ‖ q) = -log q(v).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import tensor as T
from ..backend import get_default_dtype
from ..tensor import Tensor
from ..tensor.ops.base import to_tensor
from . import constraints
from .distribution import Distribution, _shape
from .kl import register_kl

__all__ = ["Delta", "ImproperUniform", "Unit"]


def _float(t: Tensor) -> Tensor:
    return t if t.dtype.kind == "f" else t.astype(get_default_dtype())


class Delta(Distribution):
    """Delta(v, log_density=0, event_dim=0): all mass at ``v``. The rightmost ``event_dim`` dims of ``v`` form
    one event; ``log_prob(x)`` is ``log_density`` where x = v (all of the event) and -inf elsewhere.
    ``log_density`` carries a weight, such as the log-Jacobian when a point estimate is transformed.
    ``rsample`` returns ``v`` itself, so gradients reach ``v``; mean v, variance 0.
    """

    _repr_extra = ("v",)
    arg_constraints = {"log_density": constraints.real}
    has_rsample = True

    def __init__(self, v: Any = 0.0, log_density: Any = 0.0, event_dim: int = 0,
                 validate_args: bool | None = None) -> None:
        self.v = _float(to_tensor(v))
        if isinstance(event_dim, bool) or not isinstance(event_dim, int) or not 0 <= event_dim <= self.v.ndim:
            raise ValueError(f"Delta: event_dim must be an int in [0, {self.v.ndim}] for v of shape {self.v.shape}, "
                             f"got {event_dim!r}")
        cut = self.v.ndim - event_dim
        batch_shape = self.v.shape[:cut]
        log_density = _float(to_tensor(log_density))
        try:
            self.log_density = T.broadcast_to(log_density, batch_shape)
        except ValueError as e:
            raise ValueError(f"Delta: log_density of shape {log_density.shape} does not broadcast to the batch shape "
                             f"{batch_shape}") from e
        super().__init__(batch_shape, self.v.shape[cut:], validate_args)

    support = property(lambda self: constraints.independent(constraints.real, self.event_dim) if self.event_dim
                       else constraints.real)

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return T.broadcast_to(self.v, self.shape(sample_shape))

    def log_prob(self, value: Any) -> Tensor:
        x = to_tensor(value)
        self._validate_sample(x)
        hit = x.data == self.v.data
        if self.event_dim:
            hit = hit.all(axis=tuple(range(-self.event_dim, 0)))
        return T.where(hit, self.log_density, -math.inf)

    def entropy(self) -> Tensor:
        return T.zeros_like(self.log_density)

    mean = property(lambda self: self.v)
    mode = property(lambda self: self.v)
    variance = property(lambda self: T.zeros_like(self.v))


class ImproperUniform(Distribution):
    """A flat log-density, 0 everywhere in ``support``, that integrates to no finite total: a prior that
    leaves the posterior to the likelihood. ``batch_shape`` and ``event_shape`` are given; the event must
    span at least the support's event dims (extra ones are reinterpreted with ``independent``).

    It has no draws (``sample`` raises): give its site a value, or start inference from an init strategy
    that draws in the unconstrained space of ``biject_to(support)`` (``init_to_uniform``) or takes a value
    (``init_to_value``).
    """

    _repr_extra = ("support",)
    arg_constraints: dict = {}

    def __init__(self, support: constraints.Constraint, batch_shape: Any = (), event_shape: Any = (),
                 validate_args: bool | None = None) -> None:
        if not isinstance(support, constraints.Constraint):
            raise TypeError(f"ImproperUniform: support must be a Constraint, got {type(support).__name__}")
        event_shape = _shape(event_shape)
        extra = len(event_shape) - support.event_dim
        if extra < 0:
            raise ValueError(f"ImproperUniform: event_shape {event_shape} has fewer dims than the support {support!r} "
                             f"({support.event_dim})")
        self.support = constraints.independent(support, extra) if extra else support
        super().__init__(batch_shape, event_shape, validate_args)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        raise NotImplementedError("ImproperUniform has no draws: its density does not integrate to a probability "
                                  "distribution. Give its site a value (condition or init_to_value), or initialise "
                                  "inference with an init strategy that draws in the unconstrained space "
                                  "(init_to_uniform).")

    rsample = sample

    def log_prob(self, value: Any) -> Tensor:
        x = to_tensor(value)
        self._validate_sample(x)
        shape = np.broadcast_shapes(x.shape[:x.ndim - self.event_dim], self.batch_shape)
        return T.zeros(shape, dtype=_float(x).dtype, device=x.device)


class Unit(Distribution):
    """Unit(log_factor): an empty value (event shape (0,)) whose ``log_prob`` is ``log_factor`` whatever the
    value, broadcast to the value's batch shape. A ``factor`` statement adds its term to a model's log
    density as the observed site of a Unit. ``log_factor`` may be -inf (a rejected state), not NaN or +inf.
    """

    arg_constraints = {"log_factor": constraints.less_than(math.inf)}
    support = constraints.real

    def __init__(self, log_factor: Any, validate_args: bool | None = None) -> None:
        self.log_factor = _float(to_tensor(log_factor))
        super().__init__(self.log_factor.shape, (0,), validate_args)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return T.zeros(self.shape(sample_shape), dtype=self.log_factor.dtype, device=self.log_factor.device)

    def log_prob(self, value: Any) -> Tensor:
        x = to_tensor(value)
        self._validate_sample(x)
        shape = np.broadcast_shapes(x.shape[:-1] if x.ndim else (), self.batch_shape)
        return T.broadcast_to(self.log_factor, shape)


@register_kl(Delta, Distribution)
def _kl_delta(p, q):
    """KL(Delta(v) ‖ q) = -log q(v), NumPyro's and Pyro's convention (the point mass's own log_density is a
    weight, not a density, and is left out)."""
    return -q.log_prob(p.v)
