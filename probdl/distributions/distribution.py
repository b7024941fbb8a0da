"""The ``Distribution`` base: shapes, argument validation and the interface every family fills in.

Shapes follow Pyro and NumPyro: a draw has shape ``sample_shape + batch_shape + event_shape``;
``log_prob`` reduces the event dims and returns ``sample_shape + batch_shape``. A family declares
``arg_constraints``, ``support`` and ``has_rsample`` as class attributes, fixes its shapes in
``__init__``, and writes ``log_prob``, ``rsample`` (or ``sample``) and its moments in probdl ops, so
gradients flow through parameters and reparameterized draws.

Randomness is explicit: ``sample``/``rsample`` take ``rng`` (``None`` for the global generator
seeded by ``probdl.set_rng_seed``, an int seed, or a ``numpy.random.Generator`` that a handler or an
MCMC chain owns).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor, no_grad
from ..tensor.ops.base import to_tensor
from . import constraints

__all__ = ["Distribution", "enable_validation", "is_validation_enabled"]

_validate_default = True


def enable_validation(enabled: bool = True) -> None:
    """Turn argument and support checks on (the default) or off for distributions created afterwards
    without an explicit ``validate_args`` (off is the fast path)."""
    global _validate_default
    _validate_default = bool(enabled)


def is_validation_enabled() -> bool:
    return _validate_default


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def _describe(value: Any, bad: Any) -> str:
    """The first offending entry of an array, for an error message."""
    v = np.asarray(value.numpy() if isinstance(value, Tensor) else value)
    b = np.asarray(bad)
    if v.ndim == 0 or b.ndim == 0:
        return repr(v.item() if v.size == 1 else v)
    idx = np.argwhere(~np.broadcast_to(b, b.shape))
    if not len(idx):
        return "?"
    where = tuple(int(i) for i in idx[0])
    try:
        bad_value = v[where[-v.ndim:] if len(where) > v.ndim else where]
    except IndexError:
        return repr(v)
    shown = bad_value.item() if np.ndim(bad_value) == 0 else bad_value.tolist()
    return f"{shown!r} at index {where}"


class Distribution:
    """Base class of probability distributions.

    Subclasses set the class attributes ``arg_constraints`` (parameter name → constraint),
    ``support`` and ``has_rsample``, call ``super().__init__(batch_shape, event_shape, validate_args)``
    after storing their parameters, and implement ``log_prob`` and ``rsample`` or ``sample``.
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    support: constraints.Constraint | None = None
    has_rsample = False
    has_enumerate_support = False

    def __init__(self, batch_shape: Any = (), event_shape: Any = (), validate_args: bool | None = None) -> None:
        self._batch_shape = _shape(batch_shape)
        self._event_shape = _shape(event_shape)
        self._validate_args = _validate_default if validate_args is None else bool(validate_args)
        if self._validate_args:
            self._check_parameters()

    # ------------------------------------------------------------------ shapes
    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self._batch_shape

    @property
    def event_shape(self) -> tuple[int, ...]:
        return self._event_shape

    @property
    def event_dim(self) -> int:
        return len(self._event_shape)

    def shape(self, sample_shape: Any = ()) -> tuple[int, ...]:
        """The shape of a draw: ``sample_shape + batch_shape + event_shape``."""
        return _shape(sample_shape) + self._batch_shape + self._event_shape

    # ------------------------------------------------------------------ validation
    def _check_parameters(self) -> None:
        """Check each parameter the user gave (``_given_args`` when a family derives the others, as
        ``logits`` from ``probs``) against its constraint."""
        name = type(self).__name__
        given = self.__dict__.get("_given_args")
        for arg, constraint in self.arg_constraints.items():
            if given is not None and arg not in given:
                continue
            if arg not in self.__dict__ and not hasattr(type(self), arg):
                continue  # an alternative parameterization that was not given
            value = getattr(self, arg)
            if value is None:
                continue
            ok = constraint.check(value)
            if not bool(np.all(np.asarray(ok))):
                raise ValueError(f"{name}: parameter {arg} must satisfy the constraint {constraint!r}; got "
                                 f"{_describe(value, ok)}")

    def _validate_sample(self, value: Any) -> None:
        """Raise a ValueError naming the distribution and the support when ``value`` lies outside it."""
        if not self._validate_args or self.support is None:
            return
        ok = self.support.check(value)
        if not bool(np.all(np.asarray(ok))):
            raise ValueError(f"{type(self).__name__}: value outside the support {self.support!r}: got "
                             f"{_describe(value, ok)}")

    # ------------------------------------------------------------------ sampling
    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        """A reparameterized draw: differentiable with respect to the parameters."""
        raise NotImplementedError(f"{type(self).__name__} has no reparameterized sampler (has_rsample=False); "
                                  "use sample()")

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        """A draw of shape ``shape(sample_shape)``, outside the graph."""
        with no_grad():
            return self.rsample(sample_shape, rng).detach()

    # ------------------------------------------------------------------ densities and moments
    def log_prob(self, value: Any) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not define log_prob")

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no closed-form mean")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no closed-form variance")

    @property
    def stddev(self) -> Tensor:
        return self.variance ** 0.5

    # ------------------------------------------------------------------ reshaping
    def expand(self, batch_shape: Any) -> Distribution:
        """This distribution broadcast to ``batch_shape`` (new draws along stretched dims)."""
        from .combinators import ExpandedDistribution  # noqa: PLC0415  (combinators subclass this module's class)

        batch_shape = _shape(batch_shape)
        return self if batch_shape == self.batch_shape else ExpandedDistribution(self, batch_shape)

    def to_event(self, reinterpreted_batch_ndims: int | None = None) -> Distribution:
        """Treat the rightmost batch dims (all of them by default) as event dims: ``Independent``."""
        from .combinators import Independent  # noqa: PLC0415

        n = len(self.batch_shape) if reinterpreted_batch_ndims is None else reinterpreted_batch_ndims
        return self if n == 0 else Independent(self, n)

    def mask(self, mask: Any) -> Distribution:
        """The same distribution with ``log_prob`` zeroed where ``mask`` is False."""
        from .combinators import MaskedDistribution  # noqa: PLC0415

        if mask is True:
            return self
        return MaskedDistribution(self, mask)

    _repr_extra: tuple[str, ...] = ()  # attributes shown by repr besides the given parameters

    def __repr__(self) -> str:
        given = self.__dict__.get("_given_args")
        names = [a for a in self.arg_constraints if given is None or a in given] + list(self._repr_extra)
        args = []
        for name in names:
            v = getattr(self, name, None)
            if isinstance(v, Tensor):
                args.append(f"{name}: {v.shape if v.ndim else v.item()}")
            elif isinstance(v, (Distribution, constraints.Constraint, list, int, float, str)):
                args.append(f"{name}: {v!r}")
        return f"{type(self).__name__}({', '.join(args)})"


def broadcast_params(*params: Any) -> tuple[list[Tensor], tuple[int, ...]]:
    """The parameters as Tensors of one floating dtype, and their broadcast batch shape."""
    ts = [to_tensor(p) for p in params]
    floating = [t.dtype for t in ts if t.dtype.kind == "f"]
    dtype = np.result_type(*floating) if floating else None
    if dtype is not None:
        ts = [t if t.dtype == dtype else t.astype(dtype) for t in ts]
    try:
        shape = np.broadcast_shapes(*(t.shape for t in ts))
    except ValueError as e:
        raise ValueError(f"parameters of shapes {[t.shape for t in ts]} do not broadcast") from e
    return ts, shape
