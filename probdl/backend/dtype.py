"""The default floating dtype: float64 unless :func:`set_default_dtype` says otherwise."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["get_default_dtype", "set_default_dtype", "as_dtype", "is_floating"]

_default_dtype: np.dtype = np.dtype(np.float64)


def get_default_dtype() -> np.dtype:
    """The floating dtype that Python floats and new tensors get."""
    return _default_dtype


def set_default_dtype(dtype: Any) -> None:
    """Set the default floating dtype (``float32`` or ``float64``)."""
    global _default_dtype
    dt = as_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype such as float32 or float64, got {dt}")
    _default_dtype = dt


def as_dtype(dtype: Any) -> np.dtype:
    """Normalise ``"float32"``, ``np.float32`` or a dtype to a ``numpy.dtype``."""
    try:
        return np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"not a dtype: {dtype!r}") from e


def is_floating(dtype: np.dtype) -> bool:
    """True for real and complex floating dtypes, the ones gradients are defined for."""
    return dtype.kind in "fc"
