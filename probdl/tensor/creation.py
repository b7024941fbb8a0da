"""Making tensors: from data, filled with constants, ranges and identities."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import as_dtype, get_array_module, get_default_dtype
from ..backend import device as _device
from .tensor import Tensor, as_array

__all__ = ["tensor", "as_tensor", "zeros", "ones", "full", "empty", "arange", "linspace", "eye",
           "zeros_like", "ones_like", "full_like"]


def _shape(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _xp(device: Any):
    return np if device is None else _device(device).xp


def _finish(data: Any, requires_grad: bool) -> Tensor:
    t = Tensor._wrap(data)
    return t.requires_grad_(True) if requires_grad else t


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (a number, nested list, array or Tensor).

    Python floats take the default floating dtype (float64 unless changed), Python ints
    int64, and arrays keep their dtype.
    """
    arr = as_array(data, dtype, device)
    if arr is (data.data if isinstance(data, Tensor) else data):
        arr = arr.copy()
    return _finish(arr, requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like :func:`tensor` but shares memory with an array of the right dtype and device, and returns a
    Tensor unchanged."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return Tensor._wrap(as_array(data, dtype, device))


def _filled(fill: Any, shape: tuple, dtype: Any, device: Any, requires_grad: bool) -> Tensor:
    dt = get_default_dtype() if dtype is None else as_dtype(dtype)
    return _finish(_xp(device).full(_shape(shape), fill, dtype=dt), requires_grad)


def zeros(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _filled(0, shape, dtype, device, requires_grad)


def ones(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _filled(1, shape, dtype, device, requires_grad)


def empty(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor whose values are not set (cheaper than zeros when every element will be written)."""
    dt = get_default_dtype() if dtype is None else as_dtype(dtype)
    return _finish(_xp(device).empty(_shape(shape), dtype=dt), requires_grad)


def full(shape: Any, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``shape`` filled with ``fill_value``."""
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if dtype is None and isinstance(fill_value, (bool, int, np.integer, np.bool_)):  # as PyTorch: int fill, int tensor
        dtype = np.bool_ if isinstance(fill_value, (bool, np.bool_)) else np.int64
    return _filled(fill_value, (tuple(shape),), dtype, device, requires_grad)


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Evenly spaced values in [start, stop); integers when every argument is an int."""
    if stop is None:
        start, stop = 0, start
    if dtype is None and any(isinstance(v, float) for v in (start, stop, step)):
        dtype = get_default_dtype()
    return _finish(_xp(device).arange(start, stop, step, dtype=dtype), requires_grad)


def linspace(start: float, stop: float, num: int = 50, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``num`` evenly spaced values from ``start`` to ``stop`` inclusive."""
    dt = get_default_dtype() if dtype is None else as_dtype(dtype)
    return _finish(_xp(device).linspace(start, stop, num, dtype=dt), requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """The n × m identity (n × n by default)."""
    dt = get_default_dtype() if dtype is None else as_dtype(dtype)
    return _finish(_xp(device).eye(n, m, dtype=dt), requires_grad)


def _like(x: Any, fill: Any, dtype: Any, requires_grad: bool) -> Tensor:
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    xp = get_array_module(data)
    return _finish(xp.full(data.shape, fill, dtype=data.dtype if dtype is None else as_dtype(dtype)), requires_grad)


def zeros_like(x: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``x``'s shape, dtype and device."""
    return _like(x, 0, dtype, requires_grad)


def ones_like(x: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones of ``x``'s shape, dtype and device."""
    return _like(x, 1, dtype, requires_grad)


def full_like(x: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` in ``x``'s shape, dtype and device."""
    return _like(x, fill_value, dtype, requires_grad)
