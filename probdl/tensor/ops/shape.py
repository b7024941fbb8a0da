"""Shape ops: reshape, transpose, squeeze, concatenate, stack, split, flip, pad, repeat, tile, diagonals, triangles.

Names and argument meanings follow PyTorch where it differs from NumPy (``transpose(x, 0, 1)``
swaps two dims, ``squeeze`` ignores dims that are not 1, ``split`` takes chunk sizes),
and NumPy otherwise.
"""
from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...backend import get_array_module
from .base import Op, Tensor, apply, broadcast_to, normalize_axes, to_tensor

__all__ = ["reshape", "transpose", "permute", "swapaxes", "moveaxis", "expand", "squeeze", "unsqueeze",
           "expand_dims", "flatten", "concatenate", "cat", "stack", "split", "chunk", "flip", "pad", "repeat",
           "repeat_interleave", "tile", "diagonal", "diag_embed", "tril", "triu", "matrix_transpose"]


class Reshape(Op):
    forward = staticmethod(lambda x, shape: x.reshape(shape))

    @staticmethod
    def backward(node, out, g):
        return (g.reshape(node.inputs[0].data.shape),)


def reshape(x: Any, *shape: Any) -> Tensor:
    """The same elements in a new shape (one dimension may be -1)."""
    x = to_tensor(x)
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = shape[0]
    shape = tuple(int(s) for s in shape)
    if shape == x.data.shape:
        return x
    if shape.count(-1) > 1:
        raise ValueError(f"reshape: only one unknown dimension (-1) is allowed, got shape {shape}")
    known = math.prod(s for s in shape if s != -1)
    size = x.data.size
    if any(s < -1 for s in shape) or (
            size != known if -1 not in shape else (known == 0 or size % known)):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.data.shape} (size {size}) "
                         f"into shape {shape}")
    return apply(Reshape, (x,), {"shape": shape})


class Transpose(Op):
    forward = staticmethod(lambda x, axes: x.transpose(axes))

    @staticmethod
    def backward(node, out, g):
        return (g.permute(tuple(np.argsort(node.attrs["axes"]))),)


def permute(x: Any, *dims: Any) -> Tensor:
    """Reorder the dimensions: the result's dim i is the input's dim ``dims[i]``."""
    x = to_tensor(x)
    if len(dims) == 1 and not isinstance(dims[0], int):
        dims = dims[0]
    axes = tuple(int(d) % x.ndim if x.ndim else 0 for d in dims)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"permute: {tuple(dims)} is not a permutation of the {x.ndim} dims of a tensor of shape "
                         f"{x.shape}")
    if axes == tuple(range(x.ndim)):
        return x
    return apply(Transpose, (x,), {"axes": axes})


def transpose(x: Any, *axes: Any) -> Tensor:
    """``transpose(x)`` reverses the dims (NumPy); ``transpose(x, perm)`` permutes them (NumPy);
    ``transpose(x, dim0, dim1)`` swaps two dims (PyTorch)."""
    x = to_tensor(x)
    if not axes or (len(axes) == 1 and axes[0] is None):
        return permute(x, tuple(reversed(range(x.ndim))))
    if len(axes) == 2 and all(isinstance(a, (int, np.integer)) for a in axes):
        return swapaxes(x, axes[0], axes[1])
    return permute(x, *axes)


def swapaxes(x: Any, axis1: int, axis2: int) -> Tensor:
    """Swap two dimensions."""
    x = to_tensor(x)
    a, b = (normalize_axes(axis1, x.ndim, "swapaxes")[0], normalize_axes(axis2, x.ndim, "swapaxes")[0])
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return permute(x, perm)


def matrix_transpose(x: Any) -> Tensor:
    """Swap the last two dimensions (a batch of matrices transposed)."""
    return swapaxes(x, -1, -2)


def moveaxis(x: Any, source: int, destination: int) -> Tensor:
    """Move one dimension to a new position."""
    x = to_tensor(x)
    src = normalize_axes(source, x.ndim, "moveaxis")[0]
    dst = normalize_axes(destination, x.ndim, "moveaxis")[0]
    perm = [d for d in range(x.ndim) if d != src]
    perm.insert(dst, src)
    return permute(x, perm)


def expand(x: Any, *shape: Any) -> Tensor:
    """Broadcast to a larger shape without copying (PyTorch's name; -1 keeps a dim)."""
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = shape[0]
    return broadcast_to(x, tuple(shape))


def squeeze(x: Any, axis: Any = None) -> Tensor:
    """Remove dims of size 1 (all of them, or those named in ``axis`` that have size 1)."""
    x = to_tensor(x)
    axes = normalize_axes(axis, x.ndim, "squeeze")
    shape = tuple(s for i, s in enumerate(x.shape) if not (i in axes and s == 1))
    return reshape(x, shape)


def unsqueeze(x: Any, dim: int) -> Tensor:
    """Insert a dim of size 1 at position ``dim`` (counted in the result, so -1 appends)."""
    x = to_tensor(x)
    nd = x.ndim + 1
    if not -nd <= dim < nd:
        raise ValueError(f"unsqueeze: dim {dim} is out of range for a result with {nd} dimensions")
    dim %= nd
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


expand_dims = unsqueeze


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge the dims from ``start_dim`` to ``end_dim`` (inclusive) into one."""
    x = to_tensor(x)
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = normalize_axes(start_dim, x.ndim, "flatten")[0], normalize_axes(end_dim, x.ndim, "flatten")[0]
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:])


# ------------------------------------------------------------------- joining and splitting
def _as_tensors(name: str, tensors: Sequence[Any]) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{name}: expected a list or tuple of tensors, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{name}: needs at least one tensor")
    return [to_tensor(t) for t in tensors]


class Concatenate(Op):
    forward = staticmethod(lambda *xs, axis: get_array_module(*xs).concatenate(xs, axis=axis))

    @staticmethod
    def backward(node, out, g):
        axis = node.attrs["axis"]
        grads, start = [], 0
        for x in node.inputs:
            n = x.data.shape[axis]
            grads.append(g[(slice(None),) * axis + (slice(start, start + n),)] if x.requires_grad else None)
            start += n
        return tuple(grads)


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing dim."""
    xs = _as_tensors("concatenate", tensors)
    (axis,) = normalize_axes(axis, xs[0].ndim, "concatenate")
    return apply(Concatenate, tuple(xs), {"axis": axis})


def cat(tensors: Sequence[Any], dim: int = 0) -> Tensor:
    """PyTorch's name for :func:`concatenate`."""
    return concatenate(tensors, dim)


class Stack(Op):
    forward = staticmethod(lambda *xs, axis: get_array_module(*xs).stack(xs, axis=axis))

    @staticmethod
    def backward(node, out, g):
        axis = node.attrs["axis"]
        pre = (slice(None),) * axis
        return tuple(g[pre + (i,)] if x.requires_grad else None for i, x in enumerate(node.inputs))


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new dim."""
    xs = _as_tensors("stack", tensors)
    nd = xs[0].ndim + 1
    if not -nd <= axis < nd:
        raise ValueError(f"stack: axis {axis} is out of range for a result with {nd} dimensions")
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have one shape, got {sorted(shapes)}")
    return apply(Stack, tuple(xs), {"axis": axis % nd})


def split(x: Any, split_size_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """Split into chunks of ``split_size_or_sections`` along ``axis`` (the last may be smaller), or into
    pieces of the listed sizes (PyTorch's meaning)."""
    x = to_tensor(x)
    (axis,) = normalize_axes(axis, x.ndim, "split")
    n = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError(f"split: chunk size must be positive, got {split_size_or_sections}")
        sizes = [split_size_or_sections] * (n // split_size_or_sections)
        if n % split_size_or_sections:
            sizes.append(n % split_size_or_sections)
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} add up to {builtins.sum(sizes)}, but dim {axis} has length {n}")
    pieces, start = [], 0
    for s in sizes:
        pieces.append(x[(slice(None),) * axis + (slice(start, start + s),)])
        start += s
    return pieces


def chunk(x: Any, chunks: int, axis: int = 0) -> list[Tensor]:
    """Split into ``chunks`` pieces of (nearly) equal size along ``axis``."""
    x = to_tensor(x)
    n = x.shape[normalize_axes(axis, x.ndim, "chunk")[0]]
    return split(x, max(1, -(-n // chunks)), axis)


class Flip(Op):
    forward = staticmethod(lambda x, axes: get_array_module(x).flip(x, axis=axes))

    @staticmethod
    def backward(node, out, g):
        return (g.flip(node.attrs["axes"]),)


def flip(x: Any, dims: Any = None) -> Tensor:
    """Reverse the order of elements along ``dims`` (all dims when ``None``)."""
    x = to_tensor(x)
    return apply(Flip, (x,), {"axes": normalize_axes(dims, x.ndim, "flip")})


class Pad(Op):
    forward = staticmethod(lambda x, pad_width, value: get_array_module(x).pad(x, pad_width, constant_values=value))

    @staticmethod
    def backward(node, out, g):
        pw = node.attrs["pad_width"]
        return (g[tuple(slice(b, g.data.shape[i] - a) for i, (b, a) in enumerate(pw))],)


def pad(x: Any, pad_width: Any, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad with a constant, ``pad_width`` as in NumPy: an int, a (before, after) pair, or one pair per dim."""
    x = to_tensor(x)
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    pw = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
    if (pw < 0).any():
        raise ValueError(f"pad: pad widths must be non-negative, got {pad_width}")
    return apply(Pad, (x,), {"pad_width": tuple(map(tuple, pw.tolist())), "value": value})


def repeat(x: Any, repeats: Any, axis: int | None = None) -> Tensor:
    """Repeat each element ``repeats`` times along ``axis`` (NumPy's repeat; of the flattened
    tensor when ``axis`` is ``None``). ``repeats`` may be an int or one count per element."""
    x = to_tensor(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    (axis,) = normalize_axes(axis, x.ndim, "repeat")
    idx = np.repeat(np.arange(x.shape[axis]), np.asarray(repeats))
    return x[(slice(None),) * axis + (get_array_module(x.data).asarray(idx),)]


def repeat_interleave(x: Any, repeats: Any, dim: int | None = None) -> Tensor:
    """PyTorch's name for NumPy's :func:`repeat`."""
    return repeat(x, repeats, dim)


def tile(x: Any, reps: Any) -> Tensor:
    """Repeat the whole tensor ``reps`` times along each dim (NumPy's tile, PyTorch's ``Tensor.repeat``)."""
    x = to_tensor(x)
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    nd = builtins.max(len(reps), x.ndim)
    reps = (1,) * (nd - len(reps)) + reps
    shape = (1,) * (nd - x.ndim) + x.shape
    # (s0, s1) -> (1, s0, 1, s1) -> broadcast (r0, s0, r1, s1) -> (r0*s0, r1*s1): no gradient code needed.
    interleaved = tuple(v for s in shape for v in (1, s))
    target = tuple(v for r, s in zip(reps, shape) for v in (r, s))
    return broadcast_to(x.reshape(interleaved), target).reshape(tuple(r * s for r, s in zip(reps, shape)))


# ------------------------------------------------------------------- diagonals and triangles
def _diagonal_index(shape, offset, axis1, axis2):
    """Index arrays of the diagonal of ``shape`` along (axis1, axis2), moved to the last position."""
    n1, n2 = shape[axis1], shape[axis2]
    length = builtins.max(0, builtins.min(n1 + builtins.min(offset, 0), n2 - builtins.max(offset, 0)))
    i = np.arange(length)
    return i + builtins.max(-offset, 0), i + builtins.max(offset, 0)


class Diagonal(Op):
    forward = staticmethod(lambda x, offset, axis1, axis2: get_array_module(x).diagonal(x, offset, axis1, axis2))

    @staticmethod
    def backward(node, out, g):
        a = node.attrs
        return (apply(DiagonalScatter, (g,), {"shape": node.inputs[0].data.shape, **a}),)


class DiagonalScatter(Op):
    """Place the last dim of the input on the diagonal of a zero tensor of ``shape``: the adjoint of Diagonal."""

    @staticmethod
    def forward(d, shape, offset, axis1, axis2):
        xp = get_array_module(d)
        z = xp.zeros(shape, dtype=d.dtype)
        r, c = _diagonal_index(shape, offset, axis1, axis2)
        view = xp.moveaxis(z, (axis1, axis2), (-2, -1))  # a view: writing into it fills z
        view[..., r, c] = d
        return z

    @staticmethod
    def backward(node, out, g):
        a = node.attrs
        return (apply(Diagonal, (g,), {k: a[k] for k in ("offset", "axis1", "axis2")}),)


def diagonal(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The diagonal along two dims, moved to the last dim (as in NumPy and PyTorch)."""
    x = to_tensor(x)
    a1 = normalize_axes(axis1, x.ndim, "diagonal")[0]
    a2 = normalize_axes(axis2, x.ndim, "diagonal")[0]
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 must differ, got {axis1} and {axis2}")
    return apply(Diagonal, (x,), {"offset": offset, "axis1": a1, "axis2": a2})


def diag_embed(x: Any, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices whose diagonal (along ``dim1``, ``dim2`` of the result) is the last dim of ``x``."""
    x = to_tensor(x)
    nd = x.ndim + 1
    a1, a2 = normalize_axes(dim1, nd, "diag_embed")[0], normalize_axes(dim2, nd, "diag_embed")[0]
    if a1 == a2:
        raise ValueError(f"diag_embed: dim1 and dim2 must differ, got {dim1} and {dim2}")
    m = x.shape[-1] + abs(offset)
    batch = list(x.shape[:-1])
    for a in sorted((a1, a2)):
        batch.insert(a, m)
    return apply(DiagonalScatter, (x,), {"shape": tuple(batch), "offset": offset, "axis1": a1, "axis2": a2})


class Tril(Op):
    forward = staticmethod(lambda x, k: get_array_module(x).tril(x, k))

    @staticmethod
    def backward(node, out, g):
        return (g.tril(node.attrs["k"]),)


class Triu(Op):
    forward = staticmethod(lambda x, k: get_array_module(x).triu(x, k))

    @staticmethod
    def backward(node, out, g):
        return (g.triu(node.attrs["k"]),)


def tril(x: Any, k: int = 0) -> Tensor:
    """The lower triangle of the last two dims (elements above diagonal ``k`` set to 0)."""
    x = to_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"tril: needs at least 2 dims, got shape {x.shape}")
    return apply(Tril, (x,), {"k": k})


def triu(x: Any, k: int = 0) -> Tensor:
    """The upper triangle of the last two dims (elements below diagonal ``k`` set to 0)."""
    x = to_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"triu: needs at least 2 dims, got shape {x.shape}")
    return apply(Triu, (x,), {"k": k})
