"""Parameter initialisation, in place, with PyTorch's names and formulas.

Every function takes ``rng`` (``None`` for the global generator, an int seed or a
``numpy.random.Generator``) and returns the tensor it filled.

References:
    Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural networks", 2010.
    He et al., "Delving Deep into Rectifiers", 2015.
    Saxe et al., "Exact solutions to the nonlinear dynamics of learning in deep linear networks", 2013.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import as_generator, to_device
from ..tensor import Tensor

__all__ = ["calculate_gain", "uniform_", "normal_", "zeros_", "ones_", "constant_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "fan_in_and_fan_out"]


def _fill(t: Tensor, values: Any) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"init: expected a Tensor, got {type(t).__name__}")
    t.data[...] = to_device(np.asarray(values, dtype=t.data.dtype), t.device)
    return t


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (1 for linear/sigmoid, 5/3 tanh, √2 relu, ...)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def fan_in_and_fan_out(t: Tensor) -> tuple[int, int]:
    """Fan-in and fan-out of a weight laid out as PyTorch's: (out, in) or (out, in, *kernel)."""
    if t.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dims, got shape {t.shape}")
    receptive = math.prod(t.shape[2:])
    return t.shape[1] * receptive, t.shape[0] * receptive


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0, rng: Any = None) -> Tensor:
    """Fill with draws from U(a, b)."""
    return _fill(t, as_generator(rng).uniform(a, b, t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, rng: Any = None) -> Tensor:
    """Fill with draws from N(mean, std²)."""
    return _fill(t, as_generator(rng).normal(mean, std, t.shape))


def constant_(t: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    return _fill(t, np.full(t.shape, val))


def zeros_(t: Tensor) -> Tensor:
    return constant_(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    return constant_(t, 1.0)


def xavier_uniform_(t: Tensor, gain: float = 1.0, rng: Any = None) -> Tensor:
    """U(-a, a) with a = gain √(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = fan_in_and_fan_out(t)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a, rng)


def xavier_normal_(t: Tensor, gain: float = 1.0, rng: Any = None) -> Tensor:
    """N(0, σ²) with σ = gain √(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


def _kaiming_std(t: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     rng: Any = None) -> Tensor:
    """U(-b, b) with b = √3 · gain / √fan (He et al. 2015)."""
    bound = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity)
    return uniform_(t, -bound, bound, rng)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    rng: Any = None) -> Tensor:
    """N(0, σ²) with σ = gain / √fan (He et al. 2015)."""
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity), rng)


def orthogonal_(t: Tensor, gain: float = 1.0, rng: Any = None) -> Tensor:
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one, signs fixed by R's
    diagonal so the draw is uniform (Haar); trailing dims are flattened (Saxe et al. 2013)."""
    if t.ndim < 2:
        raise ValueError(f"orthogonal_: needs at least 2 dims, got shape {t.shape}")
    rows, cols = t.shape[0], math.prod(t.shape[1:])
    a = as_generator(rng).normal(size=(rows, cols))
    if rows < cols:
        a = a.T
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(t, gain * q.reshape(t.shape))
