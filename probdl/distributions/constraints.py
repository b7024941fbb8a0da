"""Constraints: the support of a distribution or the domain of a parameter, and a check of membership.

A constraint is a small object with ``check(value)`` (also ``constraint(value)``), which returns
a boolean array with the value's batch shape: the last ``event_dim`` dims are reduced, so a
``simplex`` check of shape (10, 3) gives 10 answers. ``feasible_like(x)`` gives a point inside
the support with ``x``'s shape (used to initialise). The names and meanings are NumPyro's and
PyTorch's; ``biject_to`` (in ``transforms``) maps each to the unconstrained space.

Checks work on raw arrays (NumPy or CuPy) and never record a graph: they guard values, they are
not part of a model's density.
"""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from ..backend import get_array_module
from ..tensor import Tensor

__all__ = ["Constraint", "real", "real_vector", "positive", "nonnegative", "unit_interval", "interval",
           "open_interval", "greater_than", "greater_than_eq", "less_than", "simplex", "ordered_vector",
           "positive_ordered_vector", "lower_cholesky", "corr_cholesky", "corr_matrix", "positive_definite",
           "positive_semidefinite", "integer_interval", "nonnegative_integer", "positive_integer", "boolean",
           "circular", "independent"]

_SIMPLEX_TOL = 1e-6


def _array(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else np.asarray(x) if not hasattr(x, "shape") else x


class Constraint:
    """Base class. A subclass sets ``event_dim`` (how many rightmost dims one value spans) and
    ``is_discrete``, and defines ``_check`` on raw arrays (elementwise, before event dims are reduced)."""

    event_dim = 0
    is_discrete = False

    def check(self, value: Any) -> Any:
        """A boolean array of ``value``'s batch shape: whether each value lies in the support."""
        x = _array(value)
        ok = self._check(x)
        if self.event_dim and ok.ndim >= x.ndim:  # elementwise result: reduce the event dims
            ok = ok.all(axis=tuple(range(-self.event_dim, 0)))
        return ok

    def __call__(self, value: Any) -> Any:
        """``constraint(value)`` is ``constraint.check(value)``."""
        return self.check(value)

    def _check(self, x: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def feasible_like(self, prototype: Any) -> Any:
        """An array of ``prototype``'s shape and dtype inside the support."""
        x = _array(prototype)
        return get_array_module(x).zeros_like(x)

    def __repr__(self) -> str:
        """The constraint's name in snake case (``simplex``, ``lower_cholesky``)."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__.lstrip("_")).lower()


class _Real(Constraint):
    """Every finite real number (NaN and ±inf are outside)."""

    def _check(self, x):
        return get_array_module(x).isfinite(x)


class _GreaterThan(Constraint):
    def __init__(self, lower_bound: Any) -> None:
        self.lower_bound = lower_bound

    def _check(self, x):
        return x > _array(self.lower_bound)

    def feasible_like(self, prototype):
        x = _array(prototype)
        return get_array_module(x).zeros_like(x) + _array(self.lower_bound) + 1

    def __repr__(self) -> str:
        return f"greater_than(lower_bound={self.lower_bound})"


class _GreaterThanEq(_GreaterThan):
    def _check(self, x):
        return x >= _array(self.lower_bound)

    def __repr__(self) -> str:
        return f"greater_than_eq(lower_bound={self.lower_bound})"


class _Positive(_GreaterThan):
    def __init__(self) -> None:
        super().__init__(0.0)

    def __repr__(self) -> str:
        return "positive"


class _Nonnegative(_GreaterThanEq):
    def __init__(self) -> None:
        super().__init__(0.0)

    def __repr__(self) -> str:
        return "nonnegative"


class _LessThan(Constraint):
    def __init__(self, upper_bound: Any) -> None:
        self.upper_bound = upper_bound

    def _check(self, x):
        return x < _array(self.upper_bound)

    def feasible_like(self, prototype):
        x = _array(prototype)
        return get_array_module(x).zeros_like(x) + _array(self.upper_bound) - 1

    def __repr__(self) -> str:
        return f"less_than(upper_bound={self.upper_bound})"


class _Interval(Constraint):
    """The closed interval [lower_bound, upper_bound]."""

    def __init__(self, lower_bound: Any, upper_bound: Any) -> None:
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def _check(self, x):
        return (x >= _array(self.lower_bound)) & (x <= _array(self.upper_bound))

    def feasible_like(self, prototype):
        x = _array(prototype)
        mid = (_array(self.lower_bound) + _array(self.upper_bound)) / 2
        return get_array_module(x).zeros_like(x) + mid

    def __repr__(self) -> str:
        return f"{Constraint.__repr__(self)}(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _OpenInterval(_Interval):
    """The open interval (lower_bound, upper_bound)."""

    def _check(self, x):
        return (x > _array(self.lower_bound)) & (x < _array(self.upper_bound))


class _UnitInterval(_Interval):
    def __init__(self) -> None:
        super().__init__(0.0, 1.0)

    def __repr__(self) -> str:
        return "unit_interval"


class _Circular(_Interval):
    """Angles in [-π, π]."""

    def __init__(self) -> None:
        super().__init__(-math.pi, math.pi)

    def __repr__(self) -> str:
        return "circular"


class _IntegerInterval(Constraint):
    """Integers in [lower_bound, upper_bound] (integer-valued floats count)."""

    is_discrete = True

    def __init__(self, lower_bound: Any, upper_bound: Any) -> None:
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def _check(self, x):
        return (x == get_array_module(x).floor(x)) & (x >= _array(self.lower_bound)) & (
            x <= _array(self.upper_bound))

    def feasible_like(self, prototype):
        x = _array(prototype)
        return get_array_module(x).zeros_like(x) + _array(self.lower_bound)

    def __repr__(self) -> str:
        return f"integer_interval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _IntegerGreaterThanEq(Constraint):
    is_discrete = True

    def __init__(self, lower_bound: int) -> None:
        self.lower_bound = lower_bound

    def _check(self, x):
        return (x == get_array_module(x).floor(x)) & (x >= self.lower_bound)

    def feasible_like(self, prototype):
        x = _array(prototype)
        return get_array_module(x).zeros_like(x) + self.lower_bound

    def __repr__(self) -> str:
        return "nonnegative_integer" if self.lower_bound == 0 else "positive_integer" if self.lower_bound == 1 \
            else f"integer_greater_than_eq(lower_bound={self.lower_bound})"


class _Boolean(Constraint):
    is_discrete = True

    def _check(self, x):
        return (x == 0) | (x == 1)


class _Independent(Constraint):
    """``base`` with ``reinterpreted_batch_ndims`` more rightmost dims counted as one event."""

    def __init__(self, base: Constraint, reinterpreted_batch_ndims: int) -> None:
        if not isinstance(base, Constraint):
            raise TypeError(f"independent: base must be a Constraint, got {type(base).__name__}")
        if isinstance(reinterpreted_batch_ndims, bool) or not isinstance(reinterpreted_batch_ndims, int) \
                or reinterpreted_batch_ndims < 0:
            raise ValueError(f"independent: reinterpreted_batch_ndims must be a non-negative int, "
                             f"got {reinterpreted_batch_ndims!r}")
        self.base_constraint, self.reinterpreted_batch_ndims = base, reinterpreted_batch_ndims
        self.event_dim = base.event_dim + reinterpreted_batch_ndims
        self.is_discrete = base.is_discrete

    def check(self, value):
        ok = self.base_constraint.check(value)
        n = self.reinterpreted_batch_ndims
        return ok.all(axis=tuple(range(-n, 0))) if n else ok

    def feasible_like(self, prototype):
        return self.base_constraint.feasible_like(prototype)

    def __repr__(self) -> str:
        return f"independent({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


class _Simplex(Constraint):
    """Non-negative vectors summing to 1 (to within 1e-6)."""

    event_dim = 1

    def check(self, value):
        x = _array(value)
        xp = get_array_module(x)
        return (x >= 0).all(axis=-1) & (xp.abs(x.sum(axis=-1) - 1) < _SIMPLEX_TOL)

    def feasible_like(self, prototype):
        x = _array(prototype)
        return get_array_module(x).full_like(x, 1.0 / x.shape[-1])


class _OrderedVector(Constraint):
    """Real vectors whose entries strictly increase."""

    event_dim = 1

    def check(self, value):
        x = _array(value)
        xp = get_array_module(x)
        return xp.isfinite(x).all(axis=-1) & (x[..., 1:] > x[..., :-1]).all(axis=-1)

    def feasible_like(self, prototype):
        x = _array(prototype)
        xp = get_array_module(x)
        return xp.broadcast_to(xp.arange(x.shape[-1], dtype=x.dtype), x.shape).copy()


class _PositiveOrderedVector(_OrderedVector):
    """Positive vectors whose entries strictly increase."""

    def check(self, value):
        x = _array(value)
        return super().check(x) & (x > 0).all(axis=-1)

    def feasible_like(self, prototype):
        return super().feasible_like(prototype) + 1


class _LowerCholesky(Constraint):
    """Lower-triangular square matrices with a positive diagonal."""

    event_dim = 2

    def check(self, value):
        x = _array(value)
        xp = get_array_module(x)
        lower = (xp.triu(x, 1) == 0).all(axis=(-2, -1))
        return lower & (xp.diagonal(x, axis1=-2, axis2=-1) > 0).all(axis=-1) & xp.isfinite(x).all(axis=(-2, -1))

    def feasible_like(self, prototype):
        x = _array(prototype)
        xp = get_array_module(x)
        return xp.broadcast_to(xp.eye(x.shape[-1], dtype=x.dtype), x.shape).copy()


class _CorrCholesky(_LowerCholesky):
    """Lower Cholesky factors of correlation matrices: rows of unit Euclidean norm."""

    def check(self, value):
        x = _array(value)
        xp = get_array_module(x)
        unit_rows = (xp.abs(xp.sqrt((x * x).sum(axis=-1)) - 1) < _SIMPLEX_TOL).all(axis=-1)
        return super().check(x) & unit_rows


def _symmetric(x, xp):
    return (xp.abs(x - xp.swapaxes(x, -1, -2)) <= 1e-8 * (1 + xp.abs(x))).all(axis=(-2, -1))


class _PositiveDefinite(Constraint):
    """Symmetric matrices with positive eigenvalues."""

    event_dim = 2
    strict = True

    def check(self, value):
        x = _array(value)
        xp = get_array_module(x)
        sym = _symmetric(x, xp)
        eig = xp.linalg.eigvalsh(xp.where(xp.isfinite(x), x, 0))
        positive = (eig > 0).all(axis=-1) if self.strict else (eig >= -1e-10 * xp.abs(eig).max(axis=-1,
                                                                                          keepdims=True)).all(axis=-1)
        return sym & positive & xp.isfinite(x).all(axis=(-2, -1))

    def feasible_like(self, prototype):
        return _LowerCholesky.feasible_like(self, prototype)


class _PositiveSemidefinite(_PositiveDefinite):
    """Symmetric matrices with non-negative eigenvalues (to within rounding)."""

    strict = False


class _CorrMatrix(_PositiveDefinite):
    """Positive-definite matrices with a unit diagonal."""

    def check(self, value):
        x = _array(value)
        xp = get_array_module(x)
        return super().check(x) & (xp.abs(xp.diagonal(x, axis1=-2, axis2=-1) - 1) < _SIMPLEX_TOL).all(axis=-1)


# The singletons and factories, with NumPyro's and PyTorch's names.
real = _Real()
real_vector = _Independent(real, 1)
positive = _Positive()
nonnegative = _Nonnegative()
unit_interval = _UnitInterval()
circular = _Circular()
simplex = _Simplex()
ordered_vector = _OrderedVector()
positive_ordered_vector = _PositiveOrderedVector()
lower_cholesky = _LowerCholesky()
corr_cholesky = _CorrCholesky()
corr_matrix = _CorrMatrix()
positive_definite = _PositiveDefinite()
positive_semidefinite = _PositiveSemidefinite()
nonnegative_integer = _IntegerGreaterThanEq(0)
positive_integer = _IntegerGreaterThanEq(1)
boolean = _Boolean()
interval = _Interval
open_interval = _OpenInterval
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
integer_interval = _IntegerInterval
independent = _Independent
