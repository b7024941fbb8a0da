"""Which array module holds an array, and the devices probdl knows.

probdl runs on NumPy (the ``"cpu"`` device) and, when CuPy and a GPU are present, on
CuPy (the ``"cuda"`` device). This module is the only place in probdl that imports
cupy; everything above it asks :func:`get_array_module` for ``xp`` and writes
``xp.exp(x)``, ``xp.zeros(...)``, as Chainer taught.
"""
from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["add_at", "Device", "device", "get_array_module", "cuda_is_available", "device_of", "to_device",
           "ndarray_types"]


@functools.cache
def _cupy() -> ModuleType | None:
    """Import cupy once; ``None`` when it is missing or sees no GPU."""
    try:
        import cupy  # noqa: PLC0415  (the one place cupy is imported)

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        return cupy
    except Exception:  # ImportError, or a CUDA runtime that cannot start
        return None


def cuda_is_available() -> bool:
    """True when CuPy is installed and at least one GPU answers."""
    return _cupy() is not None


def ndarray_types() -> tuple[type, ...]:
    """The array types a Tensor may hold: ``numpy.ndarray`` and, with a GPU, ``cupy.ndarray``."""
    cp = _cupy()
    return (np.ndarray,) if cp is None else (np.ndarray, cp.ndarray)


def get_array_module(*arrays: Any) -> ModuleType:
    """Return ``numpy`` or ``cupy``: cupy if any argument is a cupy array, else numpy."""
    for a in arrays:
        if type(a) is not np.ndarray and type(a).__module__.startswith("cupy"):
            return _cupy()
    return np


class Device:
    """A device a tensor lives on: ``Device("cpu")`` or ``Device("cuda", index)``.

    Compares equal to its string form, so ``t.device == "cpu"`` reads naturally.
    """

    __slots__ = ("type", "index")

    def __init__(self, type: str = "cpu", index: int | None = None) -> None:
        if isinstance(type, Device):
            type, index = type.type, type.index
        spec = type
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string such as 'cpu' or 'cuda:0', got {spec!r}")
        if ":" in type:
            type, _, idx = type.partition(":")
            if not idx.isdigit():
                raise ValueError(f"device: bad device index in {spec!r}; expected e.g. 'cuda:0'")
            index = int(idx)
        if type not in ("cpu", "cuda") or (type == "cpu" and index not in (None, 0)):
            raise ValueError(f"device: unknown device {spec!r}; expected 'cpu', 'cuda' or 'cuda:N'")
        if type == "cpu":
            index = None
        if type == "cuda" and index is None:
            index = 0
        self.type = type
        self.index = index

    def __repr__(self) -> str:
        return f"device('{self}')"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = Device(other)
        return isinstance(other, Device) and self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    @property
    def xp(self) -> ModuleType:
        """The array module of this device."""
        if self.type == "cpu":
            return np
        cp = _cupy()
        if cp is None:
            raise RuntimeError("device('cuda') needs CuPy and a GPU, and none was found; use device('cpu')")
        return cp


CPU = Device("cpu")


def device(spec: str | Device = "cpu") -> Device:
    """Make a device from ``"cpu"``, ``"cuda"`` or ``"cuda:1"``."""
    return spec if isinstance(spec, Device) else Device(spec)


def device_of(array: Any) -> Device:
    """The device an array lives on."""
    if type(array) is np.ndarray or get_array_module(array) is np:
        return CPU
    return Device("cuda", array.device.id)


def to_device(array: Any, dev: str | Device) -> Any:
    """Copy an array to a device (no copy when it is already there)."""
    dev = device(dev)
    if dev.type == "cpu":
        if get_array_module(array) is np:
            return array
        return array.get()
    cp = dev.xp
    with cp.cuda.Device(dev.index):
        return cp.asarray(array)


def add_at(target: Any, key: Any, values: Any) -> None:
    """``target[key] += values`` in place, adding up repeated indices (unlike plain ``+=``)."""
    if get_array_module(target) is np:
        np.add.at(target, key, values)
    else:
        import cupyx  # noqa: PLC0415  (cupy's name for add.at)

        cupyx.scatter_add(target, key, values)
