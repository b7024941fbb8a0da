"""Sliding windows: :func:`unfold` (every window of a zero-padded input, as a strided view) and its adjoint
:func:`fold` (windows added back into place), the two primitives under convolution and pooling.

Both act on the last ``d`` dims of a tensor (the spatial dims) and leave the leading dims alone. With
kernel size k, stride s, dilation δ and padding p (before, after) along a spatial dim of length L,
there are ``floor((L + p_before + p_after - δ(k - 1) - 1) / s) + 1`` windows (PyTorch's formula), and
window ``o`` reads the padded positions ``o·s + j·δ`` for ``j = 0..k-1``. The layouts are::

    unfold: (*lead, L_1, ..., L_d)            -> (*lead, O_1, ..., O_d, k_1, ..., k_d)
    fold:   (*lead, O_1, ..., O_d, k_1, ..., k_d) -> (*lead, L_1, ..., L_d)

``Unfold`` is linear in its input (the padding is a constant), and ``Fold`` is its transpose, so
each one's backward is the other and derivatives of every order work. Unfold copies nothing but the
padding: without padding its output is a read-only view of the input's memory.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ...backend import get_array_module
from .base import Op, Tensor, apply, to_tensor

__all__ = ["unfold", "fold"]


def _padded_windows(x, kernel, stride, dilation, padding, fill):
    xp = get_array_module(x)
    d = len(kernel)
    if any(a or b for a, b in padding):
        x = xp.pad(x, ((0, 0),) * (x.ndim - d) + tuple(padding), constant_values=fill)
    span = tuple(dl * (k - 1) + 1 for k, dl in zip(kernel, dilation))
    view = xp.lib.stride_tricks.sliding_window_view(x, span, axis=tuple(range(x.ndim - d, x.ndim)))
    # view: (*lead, L_i - span_i + 1 ..., span_i ...); keep every s-th window and every δ-th element in it.
    return view[(Ellipsis,) + tuple(slice(None, None, s) for s in stride) + tuple(slice(None, None, dl)
                                                                              for dl in dilation)]


class Unfold(Op):
    """Every window of the input padded with ``fill``: (*lead, *spatial) -> (*lead, *out, *kernel), a view."""

    forward = staticmethod(_padded_windows)

    @staticmethod
    def backward(node, out, g):
        a = node.attrs
        return (apply(Fold, (g,), {"shape": node.inputs[0].data.shape, "kernel": a["kernel"], "stride": a["stride"],
                                   "dilation": a["dilation"], "padding": a["padding"]}),)


class Fold(Op):
    """Add every window back at its place in a zero array of the padded ``shape``, then crop the padding:
    the adjoint of :class:`Unfold`. One strided slice-add per kernel position, none per element."""

    @staticmethod
    def forward(w, shape, kernel, stride, dilation, padding):
        xp = get_array_module(w)
        d = len(kernel)
        out = w.shape[w.ndim - 2 * d: w.ndim - d]
        padded = tuple(shape[:-d]) + tuple(n + a + b for n, (a, b) in zip(shape[-d:], padding))
        z = xp.zeros(padded, dtype=w.dtype)
        for pos in itertools.product(*map(range, kernel)):
            dst = tuple(slice(j * dl, j * dl + s * (o - 1) + 1, s) for j, dl, s, o in zip(pos, dilation, stride, out))
            z[(Ellipsis,) + dst] += w[(Ellipsis,) + pos]
        if not any(a or b for a, b in padding):
            return z
        return z[(Ellipsis,) + tuple(slice(a, a + n) for n, (a, _) in zip(shape[-d:], padding))]

    @staticmethod
    def backward(node, out, g):
        a = node.attrs
        return (apply(Unfold, (g,), {"kernel": a["kernel"], "stride": a["stride"], "dilation": a["dilation"],
                                     "padding": a["padding"], "fill": 0.0}),)


# ------------------------------------------------------------------ argument checking
def is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def int_tuple(name: str, what: str, value: Any, d: int, minimum: int = 1) -> tuple[int, ...]:
    """An int or a sequence of ``d`` ints, each at least ``minimum``, as a ``d``-tuple."""
    vals = (value,) * d if is_int(value) else tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(vals) != d or not all(is_int(v) for v in vals):
        raise ValueError(f"{name}: {what} must be an int or a tuple of {d} ints, got {value!r}")
    vals = tuple(int(v) for v in vals)
    if any(v < minimum for v in vals):
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name}: {what} must be {kind}, got {value!r}")
    return vals


def pad_pairs(name: str, padding: Any, d: int) -> tuple[tuple[int, int], ...]:
    """Padding as one (before, after) pair per spatial dim, from an int, ``d`` ints, or ``d`` pairs."""
    if isinstance(padding, (tuple, list)) and len(padding) == d and not any(is_int(p) for p in padding):
        pairs = tuple(int_tuple(name, "padding", tuple(p), 2, minimum=0) for p in padding)
    else:
        pairs = tuple((p, p) for p in int_tuple(name, "padding", padding, d, minimum=0))
    return pairs


def window_args(name: str, shape: tuple[int, ...], kernel_size: Any, stride: Any, padding: Any, dilation: Any,
                d: int) -> dict[str, Any]:
    """Check and normalize window arguments for the last ``d`` dims of ``shape``: the attributes of
    :class:`Unfold` (without ``fill``) plus ``"out"``, the number of windows along each dim."""
    if len(shape) < d:
        raise ValueError(f"{name}: expected at least {d} dims (the spatial ones), got shape {shape}")
    kernel = int_tuple(name, "kernel_size", kernel_size, d)
    stride = int_tuple(name, "stride", stride, d)
    dilation = int_tuple(name, "dilation", dilation, d)
    pads = pad_pairs(name, padding, d)
    spatial = shape[len(shape) - d:]
    padded = tuple(n + a + b for n, (a, b) in zip(spatial, pads))
    span = tuple(dl * (k - 1) + 1 for k, dl in zip(kernel, dilation))
    if any(s > n for s, n in zip(span, padded)):
        raise ValueError(f"{name}: the kernel (size {kernel}, dilation {dilation}, so spanning {span}) is larger "
                         f"than the padded input {padded} (input {spatial}, padding {pads})")
    out = tuple((n - s) // st + 1 for n, s, st in zip(padded, span, stride))
    return {"kernel": kernel, "stride": stride, "dilation": dilation, "padding": pads, "out": out}


def _spatial_dims(name: str, x: Tensor, kernel_size: Any) -> int:
    if is_int(kernel_size):
        if x.ndim < 3:
            raise ValueError(f"{name}: with an int kernel_size the input must be (N, C, *spatial), got shape "
                             f"{x.shape}; give a tuple kernel_size to slide over the last len(kernel_size) dims")
        return x.ndim - 2
    return len(tuple(kernel_size))


def unfold(x: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1) -> Tensor:
    """Every sliding window of ``x`` zero-padded, as a strided view (no copy beyond the padding).

    Args:
        x: a tensor whose last ``d`` dims are spatial. With an int ``kernel_size`` the input is
            (N, C, *spatial) and every dim after the first two is spatial; with a tuple, the last
            ``len(kernel_size)`` dims are.
        kernel_size, stride, dilation: an int (the same along every spatial dim) or one per dim.
        padding: zeros added on both sides: an int, one int per dim, or one (before, after) pair per dim.

    Returns:
        A tensor of shape (*lead, O_1, ..., O_d, k_1, ..., k_d), where ``lead`` are the non-spatial dims
        and ``O_i = floor((L_i + 2 p_i - δ_i (k_i - 1) - 1) / s_i) + 1``; element
        ``[..., o_1, ..., o_d, j_1, ..., j_d]`` is the padded input at ``o_i s_i + j_i δ_i``.
        (PyTorch's ``F.unfold`` holds the same numbers as (N, C·k_1·k_2, O_1·O_2).)
    """
    x = to_tensor(x)
    d = _spatial_dims("unfold", x, kernel_size)
    a = window_args("unfold", x.shape, kernel_size, stride, padding, dilation, d)
    del a["out"]
    return apply(Unfold, (x,), {**a, "fill": 0.0})


def fold(x: Any, output_size: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1) -> Tensor:
    """The adjoint of :func:`unfold`: windows (*lead, O_1, ..., O_d, k_1, ..., k_d) added back into an input of
    spatial size ``output_size`` (overlaps add up; what falls on the padding is dropped)."""
    x = to_tensor(x)
    size = int_tuple("fold", "output_size", output_size, 1 if is_int(output_size) else len(output_size))
    d = len(size)
    lead = x.ndim - 2 * d
    if lead < 0:
        raise ValueError(f"fold: windows for {d} spatial dims need at least {2 * d} dims, got shape {x.shape}")
    a = window_args("fold", x.shape[:lead] + size, kernel_size, stride, padding, dilation, d)
    expected = x.shape[:lead] + a.pop("out") + a["kernel"]
    if x.shape != expected:
        raise ValueError(f"fold: windows of shape {x.shape} do not match output_size {size} with kernel "
                         f"{a['kernel']}, stride {a['stride']}, padding {a['padding']}, dilation {a['dilation']} "
                         f"(expected {expected})")
    return apply(Fold, (x,), {"shape": x.shape[:lead] + size, **a})

