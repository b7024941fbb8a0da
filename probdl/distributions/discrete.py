"""Discrete families: Bernoulli, Categorical, OneHotCategorical, DiscreteUniform, Poisson, Geometric.

Bernoulli, Categorical, OneHotCategorical and Geometric take ``probs`` or ``logits`` (exactly one);
densities are computed from the logits, which stays finite where probabilities round to 0 or 1.
Draws are outside the graph (``has_rsample`` is False) and land on the parameters' device; values
are floats, as in Pyro and PyTorch, except Categorical's, which are integer class indices. The
count families (Binomial, Multinomial, negative binomials, zero-inflated ones) are in ``counts``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import tensor as T
from ..backend import as_generator, device_of, get_default_dtype, to_device
from ..tensor import Tensor
from ..tensor.ops.base import data_function, to_tensor
from . import constraints
from .distribution import Distribution, _describe, _shape, broadcast_params

__all__ = ["Bernoulli", "Categorical", "OneHotCategorical", "DiscreteUniform", "Poisson", "Geometric"]


def _probs_or_logits(name: str, probs: Any, logits: Any,
                     names: tuple[str, str] = ("probs", "logits")) -> tuple[Tensor, Tensor, tuple[str]]:
    """(probs, logits, the one given) from exactly one of them; logits = log p - log(1 - p)."""
    if (probs is None) == (logits is None):
        raise ValueError(f"{name}: give exactly one of {names[0]} and {names[1]}")
    if logits is not None:
        (lg,), _ = broadcast_params(logits)
        return T.sigmoid(lg), lg, (names[1],)
    (p,), _ = broadcast_params(probs)
    with np.errstate(divide="ignore", invalid="ignore"):  # p in {0, 1}: infinite logits; p outside: validation
        return p, T.log(p) - T.log1p(-p), (names[0],)


def _simplex_params(name: str, probs: Any, logits: Any) -> tuple[Tensor, Tensor, tuple[str]]:
    """(probs as given, normalized logits, the one given) for a parameter whose last dim holds the classes."""
    if (probs is None) == (logits is None):
        raise ValueError(f"{name}: give exactly one of probs and logits")
    raw = to_tensor(logits if logits is not None else probs)
    if raw.ndim < 1:
        raise ValueError(f"{name}: the parameter needs a class dim, got shape {raw.shape}")
    if raw.dtype.kind != "f":
        raw = raw.astype(get_default_dtype())
    if logits is not None:
        lg = raw - T.logsumexp(raw, -1, keepdims=True)
        return T.exp(lg), lg, ("logits",)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero probability is a -inf logit
        return raw, T.log(raw) - T.log(raw.sum(-1, keepdims=True)), ("probs",)


def _weighted(w: Tensor, log_term: Tensor) -> Tensor:
    """w · log_term, taken as 0 where w is 0 (log_term may be -inf there). The mask is a recorded comparison, so
    that a replay of a compiled step recomputes it for values of the graph (a replayed subsample's counts)."""
    zero = data_function(_is_zero, w, elementwise=True)
    return T.where(zero, 0.0, w * T.where(zero, 0.0, log_term))


def _is_zero(a: Any) -> Any:
    return a == 0


def _float(dtype: Any) -> Any:
    return dtype if np.dtype(dtype).kind == "f" else get_default_dtype()


class _Discrete(Distribution):
    """Shared by the discrete families: ``_like`` is a parameter whose dtype and device draws take."""

    _like: Tensor

    @property
    def _param_dtype(self) -> Any:
        return self._like.dtype

    def _value(self, value: Any) -> Tensor:
        value = to_tensor(value)
        self._validate_sample(value)
        return value

    def _draw(self, array: Any) -> Tensor:
        """Values (a draw, an enumerated support) as a constant in the parameters' floating dtype and device."""
        a = np.asarray(array).astype(_float(self._param_dtype), copy=False)
        return Tensor._wrap(to_device(a, device_of(self._like.data)))


class Bernoulli(_Discrete):
    """Bernoulli(probs | logits) on {0, 1}."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: bool | None = None) -> None:
        self.probs, self.logits, self._given_args = _probs_or_logits("Bernoulli", probs, logits)
        self._like = self.probs
        super().__init__(self.probs.shape, (), validate_args)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        u = as_generator(rng).random(self.shape(sample_shape))
        return self._draw(u < self.probs.numpy())

    def log_prob(self, value: Any) -> Tensor:
        # x log p + (1 - x) log(1 - p) = x l - softplus(l), each term dropped where its weight is 0 (so p = 1,
        # x = 1 gives 0, not NaN)
        return T.bernoulli_log_likelihood(self.logits, self._value(value))

    def entropy(self) -> Tensor:
        p = self.probs
        return -(p * T.log_sigmoid(self.logits) + (1 - p) * T.log_sigmoid(-self.logits))

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """The values 0 and 1, shaped (2,) + (1,) * len(batch_shape), expanded to (2,) + batch_shape."""
        v = self._draw(np.array([0.0, 1.0]).reshape((2,) + (1,) * len(self.batch_shape)))
        return T.broadcast_to(v, (2,) + self.batch_shape) if expand else v

    mean = property(lambda self: self.probs)
    mode = property(lambda self: (self.probs > 0.5).astype(self._param_dtype))
    variance = property(lambda self: self.probs * (1 - self.probs))


class Categorical(_Discrete):
    """Categorical(probs | logits) over {0, ..., K-1}, the classes along the last dim of the parameter."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_enumerate_support = True

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: bool | None = None) -> None:
        self.probs, self.logits, self._given_args = _simplex_params("Categorical", probs, logits)
        self._like = self.probs
        super().__init__(self.probs.shape[:-1], (), validate_args)

    @property
    def num_categories(self) -> int:
        return self.probs.shape[-1]

    support = property(lambda self: constraints.integer_interval(0, self.num_categories - 1))

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return T.categorical(probs=self.probs.numpy(), size=_shape(sample_shape), rng=rng, device=self.probs.device)

    def log_prob(self, value: Any) -> Tensor:
        x = self._value(value)
        if x._node is not None:
            # a value of the graph (a subsample's labels while a step is traced for compilation): picked by a
            # recorded mask, not by its data as an index, so that a replay picks each new subsample's labels.
            # Σ_k [x = k] logits_k adds zeros to the one term: the same value and gradient as the index
            mask = T.eq(x[..., None], T.arange(self.num_categories, dtype=x.data.dtype))
            return T.where(mask, self.logits, 0.0).sum(-1)
        idx = x.data.astype(np.int64)
        shape = np.broadcast_shapes(idx.shape, self.batch_shape)
        logits = T.broadcast_to(self.logits, shape + (self.num_categories,))
        return T.take_along_axis(logits, np.broadcast_to(idx, shape)[..., None], -1)[..., 0]

    def entropy(self) -> Tensor:
        return -(self.probs * self.logits).sum(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        v = T.arange(self.num_categories, device=self.probs.device).reshape((-1,) + (1,) * len(self.batch_shape))
        return T.broadcast_to(v, (self.num_categories,) + self.batch_shape) if expand else v

    mean = property(lambda self: T.full(self.batch_shape, np.nan, dtype=self._param_dtype))
    mode = property(lambda self: T.argmax(self.probs, -1))
    variance = property(lambda self: T.full(self.batch_shape, np.nan, dtype=self._param_dtype))


class _OneHot(constraints.Constraint):
    """Vectors of zeros with a single one: the values of OneHotCategorical."""

    event_dim = 1
    is_discrete = True

    def check(self, value):
        x = to_tensor(value).data
        return ((x == 0) | (x == 1)).all(axis=-1) & (x.sum(axis=-1) == 1)

    def feasible_like(self, prototype):
        x = to_tensor(prototype).data
        out = x * 0
        out[..., 0] = 1
        return out


class OneHotCategorical(_Discrete):
    """OneHotCategorical(probs | logits): a Categorical class k written as the one-hot vector e_k of length K.

    P(x) = Π_k p_k^(x_k) for x one-hot; ``event_shape`` is (K,), the classes along the last dim of the parameter.
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = _OneHot()
    has_enumerate_support = True

    def __init__(self, probs: Any = None, logits: Any = None, validate_args: bool | None = None) -> None:
        self.probs, self.logits, self._given_args = _simplex_params("OneHotCategorical", probs, logits)
        self._like = self.probs
        super().__init__(self.probs.shape[:-1], self.probs.shape[-1:], validate_args)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        idx = T.categorical(logits=self.logits.numpy(), size=_shape(sample_shape), rng=rng).numpy()
        return self._draw(np.eye(self.event_shape[0])[idx])

    def log_prob(self, value: Any) -> Tensor:
        return _weighted(self._value(value), self.logits).sum(-1)

    def entropy(self) -> Tensor:
        return -_weighted(T.exp(self.logits), self.logits).sum(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """The K one-hot vectors, shaped (K,) + (1,) * len(batch_shape) + (K,), expanded to (K,) + batch + (K,)."""
        k = self.event_shape[0]
        v = self._draw(np.eye(k).reshape((k,) + (1,) * len(self.batch_shape) + (k,)))
        return T.broadcast_to(v, (k,) + self.batch_shape + (k,)) if expand else v

    mean = property(lambda self: T.exp(self.logits))
    variance = property(lambda self: T.exp(self.logits) * (1 - T.exp(self.logits)))
    mode = property(lambda self: T.one_hot(T.argmax(self.logits, -1), self.event_shape[0], dtype=self._param_dtype))


class DiscreteUniform(_Discrete):
    """DiscreteUniform(low=0, high=1): P(k) = 1 / (high - low + 1) on the integers k = low, ..., high (NumPyro's)."""

    arg_constraints = {"low": constraints.real, "high": constraints.real}
    has_enumerate_support = True

    def __init__(self, low: Any = 0, high: Any = 1, validate_args: bool | None = None) -> None:
        (self.low, self.high), batch = broadcast_params(low, high)
        if self.low.dtype.kind != "f":
            self.low, self.high = self.low.astype(get_default_dtype()), self.high.astype(get_default_dtype())
        self._like = self.low
        super().__init__(batch, (), validate_args)

    def _check_parameters(self) -> None:
        super()._check_parameters()
        lo, hi = self.low.numpy(), self.high.numpy()
        for arg, v in (("low", lo), ("high", hi)):
            whole = v == np.floor(v)
            if not np.all(whole):
                raise ValueError(f"DiscreteUniform: parameter {arg} must be an integer; got {_describe(v, whole)}")
        ok = np.broadcast_to(lo <= hi, self.batch_shape)
        if not np.all(ok):
            i = tuple(int(j) for j in np.argwhere(~ok)[0])
            raise ValueError(f"DiscreteUniform: low must not exceed high; got low {np.broadcast_to(lo, ok.shape)[i]} > "
                             f"high {np.broadcast_to(hi, ok.shape)[i]} at index {i}")

    support = property(lambda self: constraints.integer_interval(self.low, self.high))

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        lo, hi = self.low.numpy().astype(np.int64), self.high.numpy().astype(np.int64)
        return self._draw(as_generator(rng).integers(lo, hi + 1, self.shape(sample_shape)))

    def log_prob(self, value: Any) -> Tensor:
        x = self._value(value)
        return T.broadcast_to(-T.log(self.high - self.low + 1), np.broadcast_shapes(x.shape, self.batch_shape))

    def entropy(self) -> Tensor:
        return T.broadcast_to(T.log(self.high - self.low + 1), self.batch_shape)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """low, ..., high shaped (n,) + (1,) * len(batch_shape); needs the same low and high across the batch."""
        lo, hi = self.low.numpy(), self.high.numpy()
        if np.any(lo != lo.flat[0]) or np.any(hi != hi.flat[0]):
            raise ValueError("DiscreteUniform: enumerate_support needs the same low and high across the batch; got "
                             f"low {lo.tolist()}, high {hi.tolist()}")
        v = np.arange(lo.flat[0], hi.flat[0] + 1)
        v = self._draw(v.reshape((-1,) + (1,) * len(self.batch_shape)))
        return T.broadcast_to(v, v.shape[:1] + self.batch_shape) if expand else v

    mean = property(lambda self: T.broadcast_to((self.low + self.high) / 2, self.batch_shape))
    variance = property(lambda self: T.broadcast_to(((self.high - self.low + 1) ** 2 - 1) / 12, self.batch_shape))


class Poisson(_Discrete):
    """Poisson(rate): P(k) = rateᵏ e^(-rate) / k!."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate: Any, validate_args: bool | None = None) -> None:
        (self.rate,), batch = broadcast_params(rate)
        self._like = self.rate
        super().__init__(batch, (), validate_args)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self._draw(as_generator(rng).poisson(self.rate.numpy(), self.shape(sample_shape)))

    def log_prob(self, value: Any) -> Tensor:
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
        self._like = self.probs
        super().__init__(self.probs.shape, (), validate_args)

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self._draw(as_generator(rng).geometric(self.probs.numpy(), self.shape(sample_shape)) - 1)

    def log_prob(self, value: Any) -> Tensor:
        k = self._value(value)
        return _weighted(k, T.log_sigmoid(-self.logits)) + T.log_sigmoid(self.logits)  # k log(1 - p) + log p

    def entropy(self) -> Tensor:
        p = self.probs
        return -(p * T.log_sigmoid(self.logits) + (1 - p) * T.log_sigmoid(-self.logits)) / p

    mean = property(lambda self: (1 - self.probs) / self.probs)
    variance = property(lambda self: (1 - self.probs) / self.probs ** 2)
    mode = property(lambda self: T.zeros_like(self.probs))
