"""Convolutions: :func:`conv1d`, :func:`conv2d` and the layers ``Conv1d``, ``Conv2d``, with PyTorch's layouts.

A convolution (PyTorch's, i.e. a cross-correlation) is :func:`~probdl.tensor.ops.conv.unfold` (every window of
the padded input, a strided view) followed by one matrix product with the weight. Groups split the channels
into (groups, C/groups), so every group goes through the same batched product, with no loop over groups::

    x (N, C, *L) -> (N, G, C/G, *L) -unfold-> (N, G, C/G, *O, *k) -> cols (N, G, (C/G)·∏k, ∏O)
    weight (C_out, C/G, *k) -> (G, C_out/G, (C/G)·∏k);   weight @ cols -> (N, G, C_out/G, ∏O) -> (N, C_out, *O)

The gradient needs no code here: the matrix product's backward is matrix products, and unfold's is fold.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import as_generator, get_default_dtype
from ..tensor import Tensor
from ..tensor.autograd import apply
from ..tensor.ops.base import to_tensor
from ..tensor.ops.conv import Unfold, int_tuple, is_int, pad_pairs, window_args
from . import init
from ._validation import positive_int
from .module import Module, Parameter

__all__ = ["conv1d", "conv2d", "Conv1d", "Conv2d"]

_LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)"}
_WEIGHT = {1: "(out_channels, in_channels/groups, k)", 2: "(out_channels, in_channels/groups, kH, kW)"}


def _padding_pairs(name: str, padding: Any, kernel: tuple[int, ...], stride: Any, dilation: Any,
                   d: int) -> tuple[tuple[int, int], ...]:
    """PyTorch's padding argument as (before, after) pairs: an int, one int per dim, "valid" or "same"
    ("same" puts the odd element of an even total on the right, as PyTorch does; stride 1 only)."""
    if not isinstance(padding, str):
        return pad_pairs(name, padding, d)
    if padding == "valid":
        return ((0, 0),) * d
    if padding != "same":
        raise ValueError(f"{name}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    if any(s != 1 for s in int_tuple(name, "stride", stride, d)):
        raise ValueError(f"{name}: padding='same' is not supported for strided convolutions (stride={stride!r})")
    totals = (dl * (k - 1) for dl, k in zip(int_tuple(name, "dilation", dilation, d), kernel))
    return tuple((t // 2, t - t // 2) for t in totals)


def _conv(name: str, d: int, x: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
          groups: Any) -> Tensor:
    x, weight = to_tensor(x), to_tensor(weight)
    if weight.ndim != d + 2:
        raise ValueError(f"{name}: weight must have shape {_WEIGHT[d]}, got shape {weight.shape}")
    if x.ndim not in (d + 1, d + 2):
        raise ValueError(f"{name}: expected a {d + 2}-D input {_LAYOUT[d]} or a {d + 1}-D unbatched one, got shape "
                         f"{x.shape}")
    unbatched = x.ndim == d + 1
    if unbatched:
        x = x.reshape((1,) + x.shape)
    if not is_int(groups) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    n, c = x.shape[:2]
    c_out, c_group = weight.shape[:2]
    kernel = weight.shape[2:]
    if c_out % groups:
        raise ValueError(f"{name}: out_channels (weight.shape[0] = {c_out}) must be divisible by groups={groups}")
    if c != c_group * groups:
        raise ValueError(f"{name}: the input has {c} channels but a weight of shape {weight.shape} with "
                         f"groups={groups} expects {c_group * groups} (input shape {x.shape})")
    if bias is not None:
        bias = to_tensor(bias)
        if bias.shape != (c_out,):
            raise ValueError(f"{name}: bias must have shape ({c_out},) to match the weight's out_channels, "
                             f"got {bias.shape}")
    pads = _padding_pairs(name, padding, kernel, stride, dilation, d)
    a = window_args(name, x.shape, kernel, stride, pads, dilation, d)
    out = a.pop("out")
    windows = apply(Unfold, (x.reshape((n, groups, c_group) + x.shape[2:]),), {**a, "fill": 0.0})
    # (N, G, C/G, *O, *k) -> (N, G, C/G, *k, *O) -> (N, G, (C/G)·∏k, ∏O): the reshape is the one im2col copy.
    # A matrix product beats one einsum over the same windows: forward+backward, 64x1x28x28 -> 32 3x3, 24 ms vs
    # 38 ms; 128x16x8x8 -> 32 3x3 pad 1, 27 ms vs 39 ms; 64x8x8x8 -> 16 3x3, 6 ms vs 33 ms (NumPy 2.4, 2 cores).
    perm = (0, 1, 2) + tuple(range(3 + d, 3 + 2 * d)) + tuple(range(3, 3 + d))
    cols = windows.permute(perm).reshape(n, groups, c_group * math.prod(kernel), math.prod(out))
    y = weight.reshape(groups, c_out // groups, -1) @ cols
    if bias is not None:  # added while the positions are one long axis: NumPy broadcasts that faster
        y = y + bias.reshape(groups, c_out // groups, 1)
    return y.reshape(((n,) if not unbatched else ()) + (c_out,) + out)


def conv1d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> Tensor:
    """1-D convolution (cross-correlation, as PyTorch's): x (N, C_in, L) or (C_in, L), weight
    (C_out, C_in/groups, k), bias (C_out,). ``padding`` is an int, a 1-tuple, "valid" or "same"."""
    return _conv("conv1d", 1, x, weight, bias, stride, padding, dilation, groups)


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch's): x (N, C_in, H, W) or (C_in, H, W), weight
    (C_out, C_in/groups, kH, kW), bias (C_out,).

    ``stride`` and ``dilation`` are an int or a pair; ``padding`` an int, a pair, "valid" (none) or "same"
    (output as large as the input; stride 1 only). The output has
    ``floor((L + 2p - dilation·(k - 1) - 1) / stride) + 1`` positions along each spatial dim.
    """
    return _conv("conv2d", 2, x, weight, bias, stride, padding, dilation, groups)


class _ConvNd(Module):
    """The layers' shared constructor: validation, PyTorch's default initialisation and ``extra_repr``."""

    _d: int
    _fn: staticmethod

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, dtype: Any = None, rng: Any = None) -> None:
        super().__init__()
        name, d = type(self).__name__, self._d
        for what, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            positive_int(what, v, name)
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels={in_channels} must be divisible by groups={groups}")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels={out_channels} must be divisible by groups={groups}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = int_tuple(name, "kernel_size", kernel_size, d)
        self.stride = int_tuple(name, "stride", stride, d)
        self.dilation = int_tuple(name, "dilation", dilation, d)
        _padding_pairs(name, padding, self.kernel_size, self.stride, self.dilation, d)  # validates
        self.padding = padding if isinstance(padding, str) else int_tuple(name, "padding", padding, d, minimum=0)
        dt = dtype or get_default_dtype()
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dt))
        self.bias = Parameter(np.empty(self.out_channels, dtype=dt)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """PyTorch's default: weight U(-1/√fan_in, 1/√fan_in) (``kaiming_uniform_`` with a = √5), bias the same
        bound, where fan_in = in_channels/groups · ∏kernel_size."""
        gen = as_generator(rng)  # one stream for weight and bias: an int seed must not restart between them
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), rng=gen)
        if self.bias is not None:
            bound = 1 / math.sqrt(init.fan_in_and_fan_out(self.weight)[0])
            init.uniform_(self.bias, -bound, bound, rng=gen)

    def forward(self, x: Any) -> Tensor:
        return type(self)._fn(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        d = self._d
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * d:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * d:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """1-D convolution layer: (N, in_channels, L) -> (N, out_channels, L_out); weight
    (out_channels, in_channels/groups, kernel_size), bias (out_channels,), initialised as in PyTorch."""

    _d = 1
    _fn = staticmethod(conv1d)


class Conv2d(_ConvNd):
    """2-D convolution layer: (N, in_channels, H, W) -> (N, out_channels, H_out, W_out); weight
    (out_channels, in_channels/groups, kH, kW), bias (out_channels,), initialised as in PyTorch."""

    _d = 2
    _fn = staticmethod(conv2d)
