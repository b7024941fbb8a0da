"""Helpers every op module shares: argument conversion and the one ``sum_to`` that undoes broadcasting."""
from __future__ import annotations

import math
from typing import Any

from ...backend import get_array_module, get_default_dtype
from ..autograd import Op, apply, is_tracing
from ..tensor import Tensor, as_array, as_tensor_like

__all__ = ["Tensor", "Op", "apply", "pair", "to_tensor", "sum_to", "broadcast_to", "constant", "xp_of",
           "normalize_axes", "identity", "expand_reduced", "DataFunction", "data_function"]


def xp_of(t: Tensor):
    """The array module of a tensor's data."""
    return get_array_module(t.data)


def to_tensor(x: Any) -> Tensor:
    """A Tensor as it is, anything else as a constant Tensor (Python floats take the default dtype)."""
    return x if isinstance(x, Tensor) else Tensor._wrap(as_array(x))


def pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors; a Python number adopts the other operand's dtype."""
    if isinstance(a, Tensor):
        if type(b) is float and a.data.dtype.kind in "biu":  # as PyTorch: int tensor op float -> default float
            a = Tensor._wrap(a.data.astype(get_default_dtype()))
        return a, as_tensor_like(b, a)
    if isinstance(b, Tensor):
        if type(a) is float and b.data.dtype.kind in "biu":
            b = Tensor._wrap(b.data.astype(get_default_dtype()))
        return as_tensor_like(a, b), b
    a = to_tensor(a)
    return a, as_tensor_like(b, a)


def constant(array: Any) -> Tensor:
    """Wrap an array computed from data (a mask, an index) as a Tensor outside the graph."""
    return Tensor._wrap(array)


class DataFunction(Op):
    """A non-differentiable function of the inputs' data (a comparison, a mask, an argmax), recorded only while
    a function is traced for compilation, so that the replay recomputes it instead of freezing its value."""

    no_gradient = True

    @staticmethod
    def forward(*arrays: Any, fn: Any, elementwise: bool = False) -> Any:
        return fn(*arrays)

    @staticmethod
    def backward(node, out, g):
        return (None,) * len(node.inputs)


def data_function(fn: Any, *inputs: Tensor, elementwise: bool = False) -> Tensor:
    """``fn`` of the inputs' arrays as a constant Tensor outside the graph (recorded while tracing).
    ``elementwise``: ``fn`` works element by element with NumPy's broadcasting (a comparison, a cast), which
    lets a batched replay give it inputs with an extra leading dim."""
    if is_tracing():
        for t in inputs:
            if t.requires_grad:
                return apply(DataFunction, inputs, {"fn": fn, "elementwise": True} if elementwise else {"fn": fn})
    return Tensor._wrap(fn(*[t.data for t in inputs]))


def normalize_axes(axis: Any, ndim: int, op: str) -> tuple[int, ...]:
    """``None`` → every axis; an int or a sequence → a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))


def _sum_to_array(a: Any, shape: tuple[int, ...]) -> Any:
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and a.shape[lead + i] != 1)
    return a.sum(axis=axes, keepdims=True).reshape(shape) if axes else a.reshape(shape)


class SumTo(Op):
    """Sum a broadcast array back down to ``shape``: the adjoint of :class:`BroadcastTo`."""

    forward = staticmethod(_sum_to_array)

    @staticmethod
    def backward(node, out, g):
        return (broadcast_to(g, node.inputs[0].data.shape),)


_MATERIALIZE = 1 << 14  # below this many elements a copy is cheaper than NumPy's broadcast_to view


def _broadcast_array(x: Any, shape: tuple[int, ...], scale: float | None = None) -> Any:
    """``x`` (times ``scale``) broadcast to ``shape``: a fresh array when small (fast to make,
    writable) or scaled, a read-only view when large (no copy)."""
    xp = get_array_module(x)
    if scale is not None:
        out = xp.empty(shape, dtype=x.dtype)
        xp.multiply(x, x.dtype.type(scale), out=out)
        return out
    if math.prod(shape) <= _MATERIALIZE:
        out = xp.empty(shape, dtype=x.dtype)
        xp.copyto(out, x)
        return out
    return xp.broadcast_to(x, shape)


class BroadcastTo(Op):
    """Broadcast to ``shape``, after reshaping to ``kept`` when given (undoing a reduction without
    keepdims) and multiplying by ``scale`` when given (a mean's 1/n); its adjoint is :class:`SumTo`."""

    @staticmethod
    def forward(x, shape, kept=None, scale=None):
        return _broadcast_array(x if kept is None else x.reshape(kept), shape, scale)

    @staticmethod
    def backward(node, out, g):
        x, attrs = node.inputs[0], node.attrs
        kept, scale = attrs.get("kept"), attrs.get("scale")
        gx = sum_to(g, x.data.shape if kept is None else kept)
        if kept is not None:
            gx = gx.reshape(x.data.shape)
        return (gx if scale is None else gx * scale,)


def expand_reduced(g: Tensor, shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool,
                   scale: float | None = None) -> Tensor:
    """Broadcast the result of a reduction over ``axes`` back to the input's ``shape``, times ``scale``
    (one op)."""
    kept = None if keepdims else tuple(1 if i in axes else s for i, s in enumerate(shape))
    if kept is None and scale is None and g.data.shape == shape:
        return g
    return apply(BroadcastTo, (g,), {"shape": shape, "kept": kept, "scale": scale})


def sum_to(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Reduce a gradient to ``shape`` by summing the dimensions that broadcasting added or stretched."""
    if g.data.shape == shape:
        return g
    return apply(SumTo, (g,), {"shape": shape})


def broadcast_to(x: Any, shape: Any) -> Tensor:
    """Broadcast ``x`` to ``shape`` (PyTorch's ``expand``; ``-1`` keeps a dimension)."""
    x = to_tensor(x)
    shape = tuple(shape) if not isinstance(shape, int) else (shape,)
    if -1 in shape:
        lead = len(shape) - x.ndim
        shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    if x.data.shape == shape:
        return x
    return apply(BroadcastTo, (x,), {"shape": shape})


class Identity(Op):
    """A new tensor over the same array, linked to its input in the graph (gradient passes through)."""

    forward = staticmethod(lambda x: x)

    @staticmethod
    def backward(node, out, g):
        return (g,)


def identity(x: Tensor) -> Tensor:
    """``x`` as a distinct graph node: what ``grad`` differentiates with respect to when nested."""
    return apply(Identity, (x,))
