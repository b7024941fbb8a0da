"""Discrete families: Bernoulli, Categorical, Poisson, Geometric.

Bernoulli, Categorical and Geometric take ``probs`` or ``logits`` (exactly one); densities are
computed from the logits, which stays finite where probabilities round to 0 or 1. Draws are
outside the graph (``has_rsample`` is False); values are floats, as in Pyro and PyTorch, except
Categorical's, which are integer class indices.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import tensor as T
from ..backend import as_generator, get_default_dtype
from ..tensor import Tensor
from ..tensor.ops.base import to_tensor
from . import constraints
from .distribution import Distribution, _shape, broadcast_params

__all__ = ["Bernoulli", "Categorical", "Poisson", "Geometric"]


def _probs_or_logits(name: str, probs: Any, logits: Any) -> tuple[Tensor, Tensor, tuple[str]]:
    """(probs, logits, the one given) from exactly one of them; logits = log p - log(1 - p)."""
    if (probs is None) == (logits is None):
        raise ValueError(f"{name}: give exactly one of probs and logits")
    if logits is not None:
        (lg,), _ = broadcast_params(logits)
        return T.sigmoid(lg), lg, ("logits",)
    (p,), _ = broadcast_params(probs)
    with np.errstate(divide="ignore", invalid="ignore"):  # p in {0, 1}: infinite logits; p outside: validation
        return p, T.log(p) - T.log1p(-p), ("probs",)


def _weighted(w: Tensor, log_term: Tensor) -> Tensor:
    """w · log_term, taken as 0 where w is 0 (log_term may be -inf there)."""
    return T.where(w.data == 0, 0.0, w * T.where(w.data == 0, 0.0, log_term))


def _float(dtype: Any) -> Any:
    return dtype if np.dtype(dtype).kind == "f" else get_default_dtype()


class _Discrete(Distribution):
    def _value(self, value: Any) -> Tensor:
        value = to_tensor(value)
        self._validate_sample(value)
        return value

    def _draw(self, array: Any) -> Tensor:
        return Tensor._wrap(np.asarray(array).astype(_float(self._param_dtype), copy=False))


class Bernoulli(_Discrete):
    """Bernoulli(probs | logits) on {0, 1}."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: bool | None = None) -> None:
        self.probs, self.logits, self._given_args = _probs_or_logits("Bernoulli", probs, logits)
        self._param_dtype = self.probs.dtype
        super().__init__(self.probs.shape, (), validate_args)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        u = as_generator(rng).random(self.shape(sample_shape))
        return self._draw(u < self.probs.numpy())

    def log_prob(self, value):
        x = self._value(value)
        # x log p + (1 - x) log(1 - p), each term dropped where its weight is 0 (so p = 1, x = 1 gives 0, not NaN)
        return (_weighted(x, T.log_sigmoid(self.logits)) + _weighted(1 - x, T.log_sigmoid(-self.logits)))

    def entropy(self):
        p = self.probs
        return -(p * T.log_sigmoid(self.logits) + (1 - p) * T.log_sigmoid(-self.logits))

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """The values 0 and 1, shaped (2,) + (1,) * len(batch_shape), expanded to (2,) + batch_shape."""
        v = T.tensor(np.array([0.0, 1.0]).reshape((2,) + (1,) * len(self.batch_shape)), dtype=self._param_dtype)
        return T.broadcast_to(v, (2,) + self.batch_shape) if expand else v

    mean = property(lambda self: self.probs)
    mode = property(lambda self: (self.probs > 0.5).astype(self._param_dtype))
    variance = property(lambda self: self.probs * (1 - self.probs))


class Categorical(_Discrete):
    """Categorical(probs | logits) over {0, ..., K-1}, the classes along the last dim of the parameter."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_enumerate_support = True

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: bool | None = None) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("Categorical: give exactly one of probs and logits")
        raw = to_tensor(logits if logits is not None else probs)
        if raw.ndim < 1:
            raise ValueError(f"Categorical: the parameter needs a class dim, got shape {raw.shape}")
        if logits is not None:
            self.logits = raw - T.logsumexp(raw, -1, keepdims=True)
            self.probs = T.exp(self.logits)
            self._given_args = ("logits",)
        else:
            self.probs = raw
            with np.errstate(divide="ignore", invalid="ignore"):  # a zero probability is a -inf logit
                self.logits = T.log(raw) - T.log(raw.sum(-1, keepdims=True))
            self._given_args = ("probs",)
        self._param_dtype = self.probs.dtype
        super().__init__(raw.shape[:-1], (), validate_args)

    @property
    def num_categories(self) -> int:
        return self.probs.shape[-1]

    support = property(lambda self: constraints.integer_interval(0, self.num_categories - 1))

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return T.categorical(probs=self.probs.numpy(), size=_shape(sample_shape), rng=rng)

    def log_prob(self, value):
        x = self._value(value)
        idx = x.data.astype(np.int64)
        shape = np.broadcast_shapes(idx.shape, self.batch_shape)
        logits = T.broadcast_to(self.logits, shape + (self.num_categories,))
        return T.take_along_axis(logits, np.broadcast_to(idx, shape)[..., None], -1)[..., 0]

    def entropy(self):
        return -(self.probs * self.logits).sum(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        v = T.arange(self.num_categories).reshape((-1,) + (1,) * len(self.batch_shape))
        return T.broadcast_to(v, (self.num_categories,) + self.batch_shape) if expand else v

    mean = property(lambda self: T.full(self.batch_shape, np.nan, dtype=self._param_dtype))
    mode = property(lambda self: T.argmax(self.probs, -1))
    variance = property(lambda self: T.full(self.batch_shape, np.nan, dtype=self._param_dtype))


class Poisson(_Discrete):
    """Poisson(rate): P(k) = rateᵏ e^(-rate) / k!."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate: Any, validate_args: bool | None = None) -> None:
        (self.rate,), batch = broadcast_params(rate)
        self._param_dtype = self.rate.dtype
        super().__init__(batch, (), validate_args)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self._draw(as_generator(rng).poisson(self.rate.numpy(), self.shape(sample_shape)))

    def log_prob(self, value):
        k = self._value(value)
        return T.xlogy(k, self.rate) - self.rate - T.lgamma(k + 1)

    mean = property(lambda self: self.rate)
    variance = property(lambda self: self.rate)
    mode = property(lambda self: T.floor(self.rate))


class Geometric(_Discrete):
    """Geometric(probs | logits): the number of failures before the first success, P(k) = (1 - p)ᵏ p."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: bool | None = None) -> None:
        self.probs, self.logits, self._given_args = _probs_or_logits("Geometric", probs, logits)
        self._param_dtype = self.probs.dtype
        super().__init__(self.probs.shape, (), validate_args)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self._draw(as_generator(rng).geometric(self.probs.numpy(), self.shape(sample_shape)) - 1)

    def log_prob(self, value):
        k = self._value(value)
        return _weighted(k, T.log_sigmoid(-self.logits)) + T.log_sigmoid(self.logits)  # k log(1 - p) + log p

    def entropy(self):
        p = self.probs
        return -(p * T.log_sigmoid(self.logits) + (1 - p) * T.log_sigmoid(-self.logits)) / p

    mean = property(lambda self: (1 - self.probs) / self.probs)
    variance = property(lambda self: (1 - self.probs) / self.probs ** 2)
    mode = property(lambda self: T.zeros_like(self.probs))
