"""The backend: array module (numpy | cupy), devices, default dtype, random generator, linalg and special functions.

Nothing outside this package imports cupy or branches on the device.
"""
from . import linalg
from .arrays import (
    Device,
    add_at,
    cuda_is_available,
    device,
    device_of,
    get_array_module,
    ndarray_types,
    to_device,
)
from .dtype import as_dtype, get_default_dtype, is_floating, set_default_dtype
from .random import as_generator, get_rng, set_rng_seed, spawn
from .special import special

__all__ = [
    "Device",
    "add_at",
    "as_dtype",
    "as_generator",
    "cuda_is_available",
    "device",
    "device_of",
    "get_array_module",
    "get_default_dtype",
    "get_rng",
    "is_floating",
    "linalg",
    "ndarray_types",
    "set_default_dtype",
    "set_rng_seed",
    "spawn",
    "special",
    "to_device",
]
