"""Bind the op functions to :class:`Tensor` as operators and PyTorch-style methods.

Methods mean what PyTorch's do: ``x.transpose(0, 1)`` swaps two dims, ``x.repeat(2, 3)`` tiles
(use ``x.repeat_interleave`` for NumPy's ``repeat``), ``x.max(axis)`` returns the values only.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import Device, get_array_module
from ..backend import device as _device
from . import ops
from .autograd import is_grad_enabled
from .tensor import Tensor, as_tensor_like


def _reflected(fn):
    return lambda self, other: fn(other, self)


def _to(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """``x.to("cuda")``, ``x.to(float32)``, or both (``x.to("cpu", dtype=float32)``)."""
    out = self
    dtype = kwargs.pop("dtype", None)
    dev = kwargs.pop("device", None)
    if kwargs:
        raise TypeError(f"to: unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, (str, Device)):
            dev = a
        else:
            dtype = a
    if dtype is not None:
        out = ops.astype(out, dtype)
    if dev is not None:
        out = ops.to(out, _device(dev))
    return out


def _inplace(symbol: str, ufunc: str):
    """``x op= y``: updates ``x.data`` in place, as PyTorch does for a parameter update under ``no_grad``."""

    def method(self: Tensor, other: Any) -> Tensor:
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError(
                f"in-place '{symbol}=' on a tensor that requires grad while the graph is recorded; write "
                f"x = x {symbol} y, or update it inside probdl.no_grad() (as optimizers do)")
        other = other.data if isinstance(other, Tensor) else as_tensor_like(other, self).data
        xp = get_array_module(self.data)
        try:
            getattr(xp, ufunc)(self.data, other, out=self.data)
        except (TypeError, ValueError) as e:
            raise type(e)(f"in-place '{symbol}=': {e} (tensor {self.data.shape} {self.data.dtype}, "
                          f"operand {getattr(other, 'shape', ())} {getattr(other, 'dtype', type(other).__name__)})"
                          ) from None
        return self

    method.__name__ = f"__i{ufunc}__"
    return method


def _repeat_torch(self: Tensor, *sizes: Any) -> Tensor:
    """PyTorch's ``Tensor.repeat``: tile the tensor ``sizes`` times along each dim."""
    if len(sizes) == 1 and not isinstance(sizes[0], int):
        sizes = tuple(sizes[0])
    return ops.tile(self, sizes)


_operators = {
    "__add__": ops.add, "__radd__": _reflected(ops.add),
    "__sub__": ops.sub, "__rsub__": _reflected(ops.sub),
    "__mul__": ops.mul, "__rmul__": _reflected(ops.mul),
    "__truediv__": ops.div, "__rtruediv__": _reflected(ops.div),
    "__pow__": ops.pow, "__rpow__": _reflected(ops.pow),
    "__matmul__": ops.matmul, "__rmatmul__": _reflected(ops.matmul),
    "__neg__": ops.neg, "__pos__": lambda self: self, "__abs__": ops.abs,
    "__eq__": ops.eq, "__ne__": ops.ne, "__lt__": ops.lt, "__le__": ops.le, "__gt__": ops.gt, "__ge__": ops.ge,
    "__and__": ops.logical_and, "__or__": ops.logical_or, "__invert__": ops.logical_not,
    "__getitem__": ops.getitem,
    "__iadd__": _inplace("+", "add"), "__isub__": _inplace("-", "subtract"),
    "__imul__": _inplace("*", "multiply"), "__itruediv__": _inplace("/", "true_divide"),
}

_same_name = [
    "exp", "log", "log1p", "expm1", "sqrt", "square", "abs", "tanh", "sigmoid", "relu", "sin", "cos", "arctan",
    "maximum", "minimum", "logaddexp", "lgamma", "digamma", "erf", "erfc", "xlogy", "floor", "ceil", "round",
    "sign", "neg", "reciprocal", "pow", "sum", "mean", "prod", "max", "min", "amax", "amin", "logsumexp", "var",
    "std", "cumsum", "norm", "argmax", "argmin", "softmax", "log_softmax", "reshape", "transpose", "permute",
    "swapaxes", "moveaxis", "expand", "broadcast_to", "squeeze", "unsqueeze", "flatten", "split", "chunk", "flip",
    "repeat_interleave", "tile", "diagonal", "diag_embed", "tril", "triu", "gather", "index_select", "index_add",
    "scatter_add", "take_along_axis", "matmul", "outer", "det", "logdet", "slogdet", "trace", "cholesky",
    "astype", "clone", "any", "all", "isnan", "isfinite", "clip", "eq", "ne", "lt", "le", "gt", "ge",
    "count_nonzero", "logical_not", "logical_and", "logical_or",
]

_aliases = {
    "view": ops.reshape, "clamp": ops.clip, "atan": ops.arctan, "arctan": ops.arctan, "inverse": ops.inv,
    "transpose": ops.transpose, "to": _to, "repeat": _repeat_torch, "log_ndtr": ops.log_ndtr, "ndtr": ops.ndtr,
    "cpu": lambda self: ops.to(self, "cpu"), "cuda": lambda self, index=0: ops.to(self, f"cuda:{index}"),
    "float": lambda self: ops.astype(self, np.float32), "double": lambda self: ops.astype(self, np.float64),
    "polygamma": lambda self, n: ops.polygamma(n, self),
    "where": lambda self, cond, other: ops.where(cond, self, other),
    "softplus": ops.softplus, "log_sigmoid": ops.log_sigmoid, "contiguous": lambda self: self,
}


def install() -> None:
    for name, fn in _operators.items():
        setattr(Tensor, name, fn)
    for name in _same_name:
        setattr(Tensor, name, getattr(ops, name))
    for name, fn in _aliases.items():
        setattr(Tensor, name, fn)
    Tensor.T = property(lambda self: ops.transpose(self), doc="All dims reversed (the transpose of a matrix).")
    Tensor.mT = property(ops.matrix_transpose, doc="The last two dims swapped (a batch of matrices transposed).")
    Tensor.__hash__ = object.__hash__  # == is elementwise, so identity hashing


install()
