"""Reductions along axes (``axis`` and ``keepdims`` as in NumPy), cumulative sums, norms and softmax."""
from __future__ import annotations

import builtins
import itertools
import math
from typing import Any

import numpy as np

from ...backend import get_array_module
from .base import Op, Tensor, apply, constant, data_function, expand_reduced, normalize_axes, to_tensor
from .elementwise import abs, exp, sqrt, where

__all__ = ["sum", "mean", "prod", "max", "min", "amax", "amin", "logsumexp", "var", "std", "cumsum", "norm",
           "argmax", "argmin", "softmax", "log_softmax", "any", "all", "count_nonzero"]


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _expand(g: Tensor, x: Tensor, axes: tuple[int, ...], keepdims: bool) -> Tensor:
    """Broadcast a reduced gradient back over the reduced axes of ``x``."""
    return expand_reduced(g, x.data.shape, axes, keepdims)


def _reduce(op: type[Op], x: Any, axis: Any, keepdims: bool, name: str, **extra) -> Tensor:
    x = to_tensor(x)
    axes = normalize_axes(axis, x.data.ndim, name)
    return apply(op, (x,), {"axes": axes, "keepdims": keepdims, **extra})


_SMALL_EXTENT, _LARGE_ARRAY = 16, 4096


def _reduce_array(x: Any, axes: tuple[int, ...], keepdims: bool, kind: str) -> Any:
    """``x.sum`` / ``x.max`` / ``x.min`` over ``axes``. When few elements are reduced (a pooling window)
    in a large array, NumPy's multi-axis reduce of a strided view is slow; an elementwise ufunc over
    the ≤ 16 reduced positions is 10-20x faster, so that case takes a loop over positions (never over
    elements)."""
    xp = get_array_module(x)
    extent = math.prod(x.shape[i] for i in axes)
    if not (1 < extent <= _SMALL_EXTENT and x.size >= _LARGE_ARRAY and len(axes) < x.ndim):
        return getattr(x, kind)(axis=axes, keepdims=keepdims)
    ufunc = {"sum": xp.add, "max": xp.maximum, "min": xp.minimum}[kind]
    moved = xp.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))  # a view
    positions = itertools.product(*(range(x.shape[i]) for i in axes))
    out = moved[(Ellipsis, *next(positions))].copy()
    for pos in positions:
        ufunc(out, moved[(Ellipsis, *pos)], out=out)
    return out.reshape(_kept_shape(x.shape, axes)) if keepdims else out


class Sum(Op):
    forward = staticmethod(lambda x, axes, keepdims: _reduce_array(x, axes, keepdims, "sum"))

    @staticmethod
    def backward(node, out, g):
        a = node.attrs
        return (_expand(g, node.inputs[0], a["axes"], a["keepdims"]),)


class Mean(Op):
    @staticmethod
    def forward(x, axes, keepdims):
        if x.dtype.kind != "f":
            return x.mean(axis=axes, keepdims=keepdims)
        return _reduce_array(x, axes, keepdims, "sum") / math.prod(x.shape[i] for i in axes)

    @staticmethod
    def backward(node, out, g):
        x, a = node.inputs[0], node.attrs
        n = math.prod(x.data.shape[i] for i in a["axes"])
        return (expand_reduced(g, x.data.shape, a["axes"], a["keepdims"], scale=1.0 / n),)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (all axes when ``None``)."""
    return _reduce(Sum, x, axis, keepdims, "sum")


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (all axes when ``None``)."""
    return _reduce(Mean, x, axis, keepdims, "mean")


class Prod(Op):
    """Product; the gradient is the product of the other elements, right also where some are zero."""

    forward = staticmethod(lambda x, axes, keepdims: x.prod(axis=axes, keepdims=keepdims))

    @staticmethod
    def backward(node, out, g):
        x, a = node.inputs[0], node.attrs
        axes, keepdims = a["axes"], a["keepdims"]
        is_zero = x.data == 0
        nonzero = where(is_zero, 1, x)
        # With no zero: out / x. With exactly one zero: the product of the rest at that place, 0 elsewhere.
        prod_nonzero = _expand(prod(nonzero, axes, keepdims=True), x, axes, True)
        one_zero = constant((is_zero.sum(axis=axes, keepdims=True) == 1).astype(x.data.dtype))
        others = where(is_zero, prod_nonzero * one_zero, _expand(out, x, axes, keepdims) / nonzero)
        return (_expand(g, x, axes, keepdims) * others,)


def prod(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Product over ``axis``."""
    return _reduce(Prod, x, axis, keepdims, "prod")


class Max(Op):
    """Max over axes; ties share the gradient evenly."""

    forward = staticmethod(lambda x, axes, keepdims: _reduce_array(x, axes, keepdims, "max"))

    @staticmethod
    def backward(node, out, g):
        return (_extremum_grad(node, out, g),)


class Min(Op):
    """Min over axes; ties share the gradient evenly."""

    forward = staticmethod(lambda x, axes, keepdims: _reduce_array(x, axes, keepdims, "min"))

    @staticmethod
    def backward(node, out, g):
        return (_extremum_grad(node, out, g),)


def _extremum_grad(node, out, g):
    x, a = node.inputs[0], node.attrs
    axes, keepdims = a["axes"], a["keepdims"]
    o = out.data if keepdims else out.data.reshape(_kept_shape(x.data.shape, axes))
    hit = x.data == o
    share = hit / _reduce_array(hit.view(np.uint8) if hit.dtype == np.bool_ else hit, axes, True, "sum")
    return _expand(g, x, axes, keepdims) * constant(share.astype(x.data.dtype))


def _check_nonempty(x: Tensor, axes: tuple[int, ...], name: str) -> None:
    if builtins.any(x.data.shape[i] == 0 for i in axes) or x.data.size == 0:
        raise ValueError(f"{name}: reduction over an empty axis of a tensor of shape {x.data.shape}")


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis`` (values only, as NumPy; use :func:`argmax` for positions)."""
    x = to_tensor(x)
    _check_nonempty(x, normalize_axes(axis, x.ndim, "max"), "max")
    return _reduce(Max, x, axis, keepdims, "max")


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over ``axis``."""
    x = to_tensor(x)
    _check_nonempty(x, normalize_axes(axis, x.ndim, "min"), "min")
    return _reduce(Min, x, axis, keepdims, "min")


amax, amin = max, min


class Logsumexp(Op):
    """log Σ exp(x), shifted by the max so that nothing overflows; the gradient is softmax(x)."""

    @staticmethod
    def forward(x, axes, keepdims):
        xp = get_array_module(x)
        m = x.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        with xp.errstate(divide="ignore"):  # all -inf along an axis: log(0) = -inf is the right answer
            out = xp.log(xp.exp(x - m).sum(axis=axes, keepdims=True)) + m
        return out if keepdims else out.reshape(tuple(s for i, s in enumerate(x.shape) if i not in axes))

    @staticmethod
    def backward(node, out, g):
        x, a = node.inputs[0], node.attrs
        return (_expand(g, x, a["axes"], a["keepdims"]) * exp(x - _expand(out, x, a["axes"], a["keepdims"])),)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x), axis)), stable for inputs of any magnitude."""
    return _reduce(Logsumexp, x, axis, keepdims, "logsumexp")


def _centered_sum_of_squares(x: Any, axis: Any, ddof: int, keepdims: bool, name: str) -> Tensor:
    x = to_tensor(x)
    axes = normalize_axes(axis, x.ndim, name)
    n = int(np.prod([x.data.shape[i] for i in axes]))
    if n - ddof <= 0:
        raise ValueError(f"{name}: ddof={ddof} leaves no degrees of freedom over {n} elements")
    d = x - mean(x, axes, keepdims=True)
    return sum(d * d, axes, keepdims=keepdims) * (1.0 / (n - ddof))


def var(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """Variance over ``axis`` with ``ddof`` as in NumPy (0: divide by n; 1: the unbiased estimate)."""
    return _centered_sum_of_squares(x, axis, ddof, keepdims, "var")


def std(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """Standard deviation: sqrt(var(x, axis, ddof))."""
    return sqrt(_centered_sum_of_squares(x, axis, ddof, keepdims, "std"))


class Cumsum(Op):
    forward = staticmethod(lambda x, axis: get_array_module(x).cumsum(x, axis=axis))

    @staticmethod
    def backward(node, out, g):
        axis = node.attrs["axis"]
        return (g.flip(axis).cumsum(axis).flip(axis),)


def cumsum(x: Any, axis: int | None = None) -> Tensor:
    """Cumulative sum along ``axis`` (over the flattened tensor when ``None``)."""
    x = to_tensor(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    (axis,) = normalize_axes(axis, x.ndim, "cumsum")
    return apply(Cumsum, (x,), {"axis": axis})


class L2Norm(Op):
    """sqrt(Σ x²) over axes, with gradient x / norm (taken as 0 where the norm is 0)."""

    @staticmethod
    def forward(x, axes, keepdims):
        return get_array_module(x).sqrt((x * x).sum(axis=axes, keepdims=keepdims))

    @staticmethod
    def backward(node, out, g):
        x, a = node.inputs[0], node.attrs
        axes, keepdims = a["axes"], a["keepdims"]
        safe = where(out.data == 0, 1, out)
        return (x * _expand(g / safe, x, axes, keepdims),)


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A002
    """Vector p-norm over ``axis`` (``ord`` = 2 by default, 1, inf, -inf, 0 or any p > 0), or the
    Frobenius norm (``ord=None`` or ``"fro"``) over all axes or a pair of axes.
    """
    x = to_tensor(x)
    axes = normalize_axes(axis, x.ndim, "norm")
    if ord in (None, 2, "fro"):
        if ord == 2 and len(axes) == 2 and axis is not None:
            raise ValueError("norm: the matrix 2-norm (largest singular value) is not supported; use ord='fro'")
        return apply(L2Norm, (x,), {"axes": axes, "keepdims": keepdims})
    if ord == "fro" or ord == "nuc" or len(axes) > 1 and axis is not None:
        raise ValueError(f"norm: ord={ord!r} is supported for vectors only (one axis); use ord='fro' for matrices")
    if ord == 1:
        return sum(abs(x), axes, keepdims)
    if ord == np.inf:
        return max(abs(x), axes, keepdims)
    if ord == -np.inf:
        return min(abs(x), axes, keepdims)
    if ord == 0:
        return count_nonzero(x, axes, keepdims).astype(x.dtype)
    if isinstance(ord, (int, float)) and ord > 0:
        return sum(abs(x) ** ord, axes, keepdims) ** (1.0 / ord)
    raise ValueError(f"norm: unsupported ord {ord!r}")


class Softmax(Op):
    @staticmethod
    def forward(x, axis):
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        return e

    @staticmethod
    def backward(node, out, g):
        return (apply(SoftmaxBackward, (g, out), node.attrs),)


class SoftmaxBackward(Op):
    """The gradient of softmax, fused: y = s ∘ (g - Σ g s) for s = softmax(x). As a primitive it
    costs one op instead of four; its own gradient makes second derivatives work."""

    @staticmethod
    def forward(g, s, axis):
        gs = g * s
        gs -= s * gs.sum(axis=axis, keepdims=True)
        return gs

    @staticmethod
    def backward(node, y, c):
        g, s = node.inputs
        axis = node.attrs["axis"]
        cs = c * s
        gg = cs - s * sum(cs, axis, keepdims=True) if g.requires_grad else None
        gs = None
        if s.requires_grad:  # ∂y/∂s: c ∘ (g - Σ g s) - g Σ c s
            gs = c * (g - sum(g * s, axis, keepdims=True)) - g * sum(cs, axis, keepdims=True)
        return gg, gs


class LogSoftmax(Op):
    @staticmethod
    def forward(x, axis):
        xp = get_array_module(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        shifted -= xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        return shifted

    @staticmethod
    def backward(node, out, g):
        return (apply(LogSoftmaxBackward, (g, out), node.attrs),)


class LogSoftmaxBackward(Op):
    """The gradient of log-softmax, fused: y = g - exp(o) Σ g for o = log_softmax(x); one op instead of four."""

    @staticmethod
    def forward(g, o, axis):
        return g - get_array_module(g).exp(o) * g.sum(axis=axis, keepdims=True)

    @staticmethod
    def backward(node, y, c):
        g, o = node.inputs
        axis = node.attrs["axis"]
        p = exp(o)
        gg = c - sum(c * p, axis, keepdims=True) if g.requires_grad else None
        go = -(c * p) * sum(g, axis, keepdims=True) if o.requires_grad else None
        return gg, go


def softmax(x: Any, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x), axis), shifted by the max for stability."""
    x = to_tensor(x)
    (axis,) = normalize_axes(axis, x.ndim, "softmax")
    return apply(Softmax, (x,), {"axis": axis})


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """x - logsumexp(x, axis): log-probabilities from logits, stable."""
    x = to_tensor(x)
    (axis,) = normalize_axes(axis, x.ndim, "log_softmax")
    return apply(LogSoftmax, (x,), {"axis": axis})


# ---------------------------------------------------------------- no gradient
def argmax(x: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the maximum along ``axis`` (of the flattened tensor when ``None``); not differentiable."""
    x = to_tensor(x)
    return data_function(lambda a: get_array_module(a).argmax(a, axis=axis, keepdims=keepdims), x)


def argmin(x: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the minimum along ``axis``; not differentiable."""
    x = to_tensor(x)
    return data_function(lambda a: get_array_module(a).argmin(a, axis=axis, keepdims=keepdims), x)


def any(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Whether any element along ``axis`` is true (non-zero)."""
    x = to_tensor(x)
    return data_function(lambda a: a.any(axis=axis, keepdims=keepdims), x)


def all(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Whether every element along ``axis`` is true (non-zero)."""
    x = to_tensor(x)
    return data_function(lambda a: a.all(axis=axis, keepdims=keepdims), x)


def count_nonzero(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Number of non-zero elements along ``axis``."""
    x = to_tensor(x)
    return data_function(lambda a: get_array_module(a).count_nonzero(a, axis=axis, keepdims=keepdims), x)
