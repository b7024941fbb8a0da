"""Pooling over the last two dims: :func:`max_pool2d`, :func:`avg_pool2d`, :func:`adaptive_avg_pool2d` and their
layers, with PyTorch's arguments and output sizes.

Max and average pooling reduce the windows of :func:`~probdl.tensor.ops.conv.unfold` (a strided view) over the
kernel dims, so their gradients come from the reductions and from unfold's adjoint, fold; no gradient code here.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import get_array_module
from ..tensor import Tensor
from ..tensor.autograd import apply
from ..tensor.ops.base import constant, to_tensor
from ..tensor.ops.conv import Unfold, int_tuple, is_int, window_args
from ..tensor.ops.shape import concatenate
from .module import Module

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"]


def _pool_args(name: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
               ceil_mode: bool) -> dict[str, Any]:
    """Checked window arguments for pooling (N, C, H, W) or (C, H, W). With ``ceil_mode`` the last window
    may run past the padded input (PyTorch's rule: it must start inside the input or the left padding);
    the overhang becomes extra padding on the right."""
    if x.ndim not in (3, 4):
        raise ValueError(f"{name}: expected a 4-D input (N, C, H, W) or a 3-D unbatched one (C, H, W), "
                         f"got shape {x.shape}")
    kernel = int_tuple(name, "kernel_size", kernel_size, 2)
    stride = kernel if stride is None else int_tuple(name, "stride", stride, 2)
    pads = int_tuple(name, "padding", padding, 2, minimum=0)
    if any(p > k // 2 for p, k in zip(pads, kernel)):
        raise ValueError(f"{name}: padding must be at most half of the kernel size, got padding={padding!r} "
                         f"and kernel_size={kernel_size!r}")
    a = window_args(name, x.shape, kernel, stride, pads, dilation, 2)
    if not ceil_mode:
        return a
    extra = []
    for n, k, s, p, dl in zip(x.shape[-2:], kernel, stride, pads, a["dilation"]):
        span = dl * (k - 1) + 1
        out = -(-(n + 2 * p - span) // s) + 1
        if (out - 1) * s >= n + p:
            out -= 1
        extra.append(max(0, (out - 1) * s + span - (n + 2 * p)))
    return window_args(name, x.shape, kernel, stride, tuple((p, p + e) for p, e in zip(pads, extra)),
                       a["dilation"], 2)


def _windows(x: Tensor, a: dict[str, Any], fill: float) -> Tensor:
    return apply(Unfold, (x,), {k: a[k] for k in ("kernel", "stride", "dilation", "padding")} | {"fill": fill})


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """The maximum of each window over the last two dims of (N, C, H, W) or (C, H, W).

    ``stride`` defaults to ``kernel_size``; ``padding`` (at most half the kernel) pads with -inf, so it is
    never the maximum of a window that holds an input element. ``ceil_mode`` rounds the output size up.
    With ``return_indices`` it also returns, as PyTorch does, the position of each maximum in its input
    plane (row · W + column; the first one at a tie), an int64 tensor outside the graph.

    The gradient goes to the window's maximum; where several elements tie for it, they share the
    gradient equally (as the ``max`` reduction does). PyTorch instead gives all of it to one of them
    (the one whose index it returns), so the two differ at ties, and only there.
    """
    x = to_tensor(x)
    a = _pool_args("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    fill = -math.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    windows = _windows(x, a, fill)
    out = windows.max(axis=(-2, -1))
    if not return_indices:
        return out
    xp = get_array_module(x.data)
    flat = windows.data.reshape(windows.shape[:-2] + (-1,)).argmax(axis=-1)
    kw = a["kernel"][1]
    (sh, sw), (dh, dw) = a["stride"], a["dilation"]
    (ph, _), (pw, _) = a["padding"]
    oh, ow = a["out"]
    rows = xp.arange(oh).reshape(-1, 1) * sh - ph + (flat // kw) * dh
    cols = xp.arange(ow) * sw - pw + (flat % kw) * dw
    return out, constant(rows * x.shape[-1] + cols)


def _counts(n: int, k: int, s: int, p: int, out: int, include_pad: bool) -> np.ndarray:
    """PyTorch's divisor along one dim: the window's length inside [-p, n + p), or inside [0, n)."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, n + p)
    if not include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, n)
    return end - start


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """The mean of each window over the last two dims of (N, C, H, W) or (C, H, W), zero-padded.

    The divisor is PyTorch's: the window's size counting the padding (``count_include_pad``, the default)
    or counting only input elements; windows that ``ceil_mode`` lets run past the padding count only
    up to its end. ``divisor_override`` replaces it with a fixed number.
    """
    x = to_tensor(x)
    a = _pool_args("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    total = _windows(x, a, 0.0).sum(axis=(-2, -1))
    if divisor_override is not None:
        if not is_int(divisor_override) or divisor_override == 0:
            raise ValueError(f"avg_pool2d: divisor_override must be a non-zero int, got {divisor_override!r}")
        return total / divisor_override
    ch, cw = (_counts(n, k, s, p, o, count_include_pad)
              for n, k, s, (p, _), o in zip(x.shape[-2:], a["kernel"], a["stride"], a["padding"], a["out"]))
    xp = get_array_module(x.data)
    return total * constant(xp.asarray(1.0 / np.outer(ch, cw), dtype=total.dtype))


def _adaptive_mean(x: Tensor, axis: int, out: int) -> Tensor:
    """Mean over the cells [floor(i·L/out), ceil((i+1)·L/out)) along ``axis``: one reshape when ``out``
    divides L, else one slice per output cell."""
    n = x.shape[axis]
    if n % out == 0:
        return x.reshape(x.shape[:axis] + (out, n // out) + x.shape[axis + 1:]).mean(axis=axis + 1)
    pre = (slice(None),) * axis
    cells = [x[pre + (slice(i * n // out, -(-(i + 1) * n // out)),)].mean(axis=axis, keepdims=True)
             for i in range(out)]
    return concatenate(cells, axis=axis)


def adaptive_avg_pool2d(x: Any, output_size: Any) -> Tensor:
    """Average pooling to a fixed output size (oH, oW) over the last two dims of (N, C, H, W) or (C, H, W).

    Output cell i along a dim of length L averages the input positions floor(i·L/o) to ceil((i+1)·L/o) - 1
    (PyTorch's cells). ``output_size`` is an int or a pair; ``None`` in the pair keeps the input's size.
    A cell is a rectangle, so its mean is a mean along H of means along W: the two dims are pooled one
    after the other, with a loop over output cells only where o does not divide L.
    """
    x = to_tensor(x)
    if x.ndim not in (3, 4):
        raise ValueError(f"adaptive_avg_pool2d: expected a 4-D input (N, C, H, W) or a 3-D unbatched one "
                         f"(C, H, W), got shape {x.shape}")
    sizes = (output_size,) * 2 if is_int(output_size) or output_size is None else tuple(output_size)
    if len(sizes) != 2 or not all(s is None or (is_int(s) and s > 0) for s in sizes):
        raise ValueError(f"adaptive_avg_pool2d: output_size must be a positive int or a pair of positive ints "
                         f"(or None), got {output_size!r}")
    if any(n == 0 for n in x.shape[-2:]):
        raise ValueError(f"adaptive_avg_pool2d: the input's spatial dims must be non-empty, got shape {x.shape}")
    for axis, out in zip((x.ndim - 2, x.ndim - 1), sizes):
        if out is not None:
            x = _adaptive_mean(x, axis, int(out))
    return x


class MaxPool2d(Module):
    """Max pooling over the last two dims; see :func:`max_pool2d` (ties share the gradient)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        int_tuple("MaxPool2d", "kernel_size", kernel_size, 2)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = bool(return_indices), bool(ceil_mode)

    def forward(self, x: Any) -> Tensor | tuple[Tensor, Tensor]:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                          self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Average pooling over the last two dims; see :func:`avg_pool2d`."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__()
        int_tuple("AvgPool2d", "kernel_size", kernel_size, 2)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, bool(ceil_mode)
        self.count_include_pad, self.divisor_override = bool(count_include_pad), divisor_override

    def forward(self, x: Any) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                          self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size; see :func:`adaptive_avg_pool2d`."""

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Any) -> Tensor:
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
