"""Indexing: ``x[key]`` with basic and advanced keys, gathers, scatter-adds, one-hot.

The gradient of ``x[key]`` puts the incoming gradient back at the indexed places of a
zero tensor, adding where an index repeats (``xp.add.at``); that scatter is itself an
op whose gradient is indexing again, so indexing can be differentiated any number of times.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...backend import add_at, get_array_module, get_default_dtype
from .base import Op, Tensor, apply, constant, normalize_axes, to_tensor

__all__ = ["getitem", "take_along_axis", "gather", "index_select", "index_add", "scatter_add", "one_hot"]


def _is_basic(key: tuple) -> bool:
    return all(k is None or k is Ellipsis or isinstance(k, (int, slice)) for k in key)


def _normalize_key(key: Any, xp) -> tuple:
    """A tuple of ints, slices, None, Ellipsis and index arrays (Tensors and lists become arrays)."""
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if isinstance(k, Tensor):
            k = k.data
        elif isinstance(k, (list, np.ndarray)) or type(k).__module__.startswith("cupy"):
            k = xp.asarray(k)
            if k.dtype.kind == "f":
                raise IndexError(f"index arrays must be integer or boolean, got dtype {k.dtype}")
        elif isinstance(k, np.integer):
            k = int(k)
        if hasattr(k, "dtype") and k.dtype == np.bool_ and k.ndim > 0:
            out.extend(k.nonzero())  # a mask is the tuple of its true positions; add.at then needs no masks
            continue
        out.append(k)
    return tuple(out)


class GetItem(Op):
    forward = staticmethod(lambda x, key, basic: x[key])
    scatters = True

    @staticmethod
    def scatter_key(node):
        return node.attrs["key"], node.attrs["basic"]

    @staticmethod
    def backward(node, out, g):
        a = node.attrs
        return (apply(IndexScatter, (g,), {"key": a["key"], "basic": a["basic"], "shape": node.inputs[0].data.shape}),)


class IndexScatter(Op):
    """A zero tensor of ``shape`` with the input added at ``key`` (repeated indices add up)."""

    @staticmethod
    def forward(g, key, basic, shape):
        xp = get_array_module(g)
        z = xp.zeros(shape, dtype=g.dtype)
        if basic:
            z[key] = g
        else:
            add_at(z, key, g)
        return z

    @staticmethod
    def backward(node, out, g):
        a = node.attrs
        return (apply(GetItem, (g,), {"key": a["key"], "basic": a["basic"]}),)


class IndexSelect(Op):
    """``x[index]`` for an integer index that is itself a value of the graph (a plate's subsample drawn while a
    function is traced for compilation): the index is an input, so a replay indexes with each new draw."""

    forward = staticmethod(lambda x, index: x[index])

    @staticmethod
    def backward(node, out, g):
        x, index = node.inputs
        if not x.requires_grad:
            return None, None
        return apply(IndexScatter, (g,), {"key": (index.data,), "basic": False, "shape": x.data.shape}), None


def getitem(x: Any, key: Any) -> Tensor:
    """``x[key]`` with ints, slices, None, Ellipsis, integer arrays or Tensors, and boolean masks."""
    x = to_tensor(x)
    if isinstance(key, Tensor) and key._node is not None and key.data.dtype.kind in "iu":
        return apply(IndexSelect, (x, key))
    k = _normalize_key(key, get_array_module(x.data))
    return apply(GetItem, (x,), {"key": k, "basic": _is_basic(k)})


def _index_scatter(src: Tensor, key: tuple, shape: tuple[int, ...]) -> Tensor:
    return apply(IndexScatter, (src,), {"key": key, "basic": _is_basic(key), "shape": shape})


def _full_index(xp, index: Any, axis: int, shape: tuple[int, ...]) -> tuple:
    """The advanced-index tuple that picks ``index`` along ``axis`` and every position along the others."""
    nd = len(shape)
    key = []
    for d in range(nd):
        if d == axis:
            key.append(index)
        else:
            key.append(xp.arange(shape[d]).reshape((-1,) + (1,) * (nd - 1 - d)))
    return tuple(key)


def _int_index(index: Any, name: str, xp):
    idx = index.data if isinstance(index, Tensor) else xp.asarray(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name}: index must be an integer tensor, got dtype {idx.dtype}")
    return idx


def take_along_axis(x: Any, indices: Any, axis: int) -> Tensor:
    """NumPy's ``take_along_axis``: ``out[..., i, ...] = x[..., indices[..., i, ...], ...]``, the other dims
    broadcasting; repeated indices add their gradients."""
    x = to_tensor(x)
    xp = get_array_module(x.data)
    idx = _int_index(indices, "take_along_axis", xp)
    (axis,) = normalize_axes(axis, x.ndim, "take_along_axis")
    if idx.ndim != x.ndim:
        raise ValueError(f"take_along_axis: indices have {idx.ndim} dims but x has {x.ndim} (shapes {idx.shape}, "
                         f"{x.shape})")
    shape = tuple(max(a, b) if i != axis else b for i, (a, b) in enumerate(zip(x.shape, idx.shape)))
    return getitem(x, _full_index(xp, xp.broadcast_to(idx, shape), axis, shape))


def gather(x: Any, dim: int, index: Any) -> Tensor:
    """PyTorch's ``gather``: ``out[i][j] = x[index[i][j]][j]`` for ``dim=0``; ``index`` may be smaller than x."""
    x = to_tensor(x)
    xp = get_array_module(x.data)
    idx = _int_index(index, "gather", xp)
    (dim,) = normalize_axes(dim, x.ndim, "gather")
    if idx.ndim != x.ndim:
        raise ValueError(f"gather: index has {idx.ndim} dims but x has {x.ndim} (shapes {idx.shape}, {x.shape})")
    return getitem(x, _full_index(xp, idx, dim, idx.shape))


def index_select(x: Any, dim: int, index: Any) -> Tensor:
    """The slices of ``x`` at positions ``index`` (1-D) along ``dim``."""
    x = to_tensor(x)
    idx = _int_index(index, "index_select", get_array_module(x.data))
    (dim,) = normalize_axes(dim, x.ndim, "index_select")
    return getitem(x, (slice(None),) * dim + (idx,))


def index_add(x: Any, dim: int, index: Any, source: Any) -> Tensor:
    """``x`` with ``source[..., i, ...]`` added at position ``index[i]`` along ``dim`` (repeats add up)."""
    x, source = to_tensor(x), to_tensor(source)
    idx = _int_index(index, "index_add", get_array_module(x.data))
    (dim,) = normalize_axes(dim, x.ndim, "index_add")
    expected = x.shape[:dim] + (idx.shape[0],) + x.shape[dim + 1:]
    if idx.ndim != 1 or source.shape != expected:
        raise ValueError(f"index_add: expected a 1-D index and a source of shape {expected}, got index shape "
                         f"{idx.shape} and source shape {source.shape}")
    return x + _index_scatter(source, (slice(None),) * dim + (idx,), x.shape)


def scatter_add(x: Any, dim: int, index: Any, src: Any) -> Tensor:
    """PyTorch's ``scatter_add``: ``out[index[i][j]][j] += src[i][j]`` for ``dim=0`` (repeats add up)."""
    x, src = to_tensor(x), to_tensor(src)
    xp = get_array_module(x.data)
    idx = _int_index(index, "scatter_add", xp)
    (dim,) = normalize_axes(dim, x.ndim, "scatter_add")
    if idx.ndim != x.ndim or any(i > s for i, s in zip(idx.shape, src.shape)):
        raise ValueError(f"scatter_add: index of shape {idx.shape} must have x's {x.ndim} dims and fit in src of "
                         f"shape {src.shape}")
    if src.shape != idx.shape:
        src = src[tuple(slice(0, n) for n in idx.shape)]
    return x + _index_scatter(src, _full_index(xp, idx, dim, idx.shape), x.shape)


def one_hot(indices: Any, num_classes: int = -1, dtype: Any = None) -> Tensor:
    """One-hot vectors along a new last dim, in the default floating dtype unless ``dtype`` says otherwise."""
    xp = get_array_module(indices.data if isinstance(indices, Tensor) else indices)
    idx = _int_index(indices, "one_hot", xp)
    if num_classes < 0:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num_classes):
        raise ValueError(f"one_hot: indices must lie in [0, {num_classes}), got values from {int(idx.min())} "
                         f"to {int(idx.max())}")
    return constant((idx[..., None] == xp.arange(num_classes)).astype(dtype or get_default_dtype()))
