"""Random draws from the seeded generator, returned as Tensors outside the graph.

Every function takes ``rng``: ``None`` for the global generator (:func:`probdl.set_rng_seed`),
an int seed, or a ``numpy.random.Generator`` that the caller owns.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...backend import as_generator, device_of, get_default_dtype, to_device
from ...backend.random import generator_for_replay
from ..autograd import Node, Op, is_tracing
from .base import Tensor, constant

__all__ = ["normal", "uniform", "gamma", "beta", "poisson", "binomial", "categorical", "multinomial",
           "permutation", "randint", "randn", "rand"]


def _arr(x: Any) -> Any:
    return x.numpy() if isinstance(x, Tensor) else x


class RandomDraw(Op):
    """Standard normal noise of a fixed shape, recorded while a function is traced for compilation so that
    each replay draws fresh noise from the same generator (``rng``: a Generator, or None for the global one,
    looked up at each draw)."""

    no_gradient = True

    @staticmethod
    def forward(rng: Any, shape: tuple[int, ...], dtype: Any, device: Any) -> Any:
        eps = generator_for_replay(rng).standard_normal(shape).astype(dtype, copy=False)
        return eps if device is None else to_device(eps, device)

    @staticmethod
    def backward(node, out, g):
        return ()


def standard_normal_like(shape: tuple[int, ...], like: Tensor, rng: Any = None) -> Tensor:
    """Standard normal noise of ``shape`` in ``like``'s dtype and on its device, from ``rng`` (None: the global
    generator): the noise of reparameterized samplers. While tracing, the draw is recorded (see RandomDraw)."""
    device = None if isinstance(like.data, np.ndarray) else device_of(like.data)
    return _draw(RandomDraw, {"rng": rng, "shape": tuple(shape), "dtype": like.data.dtype, "device": device})


def _draw(op: type[Op], attrs: dict) -> Tensor:
    """``op``'s draw; while a function is traced for compilation, a node of the graph (marked as requiring grad
    so that every op on it is recorded) that each replay draws afresh."""
    t = Tensor._wrap(op.forward(**attrs))
    if is_tracing():
        t.requires_grad = True
        t._node = Node(op, (), attrs)
    return t


class RandomSubsample(Op):
    """A plate's subsample: ``subsample_size`` distinct indices of ``range(size)``, sorted, from ``rng`` (as
    :class:`RandomDraw`: recorded while tracing, so that each replay draws a fresh subsample)."""

    no_gradient = True

    @staticmethod
    def forward(rng: Any, size: int, subsample_size: int) -> Any:
        return np.sort(generator_for_replay(rng).choice(size, subsample_size, replace=False))

    @staticmethod
    def backward(node, out, g):
        return ()


def subsample_indices(size: int, subsample_size: int, rng: Any = None) -> Tensor:
    """``subsample_size`` distinct sorted indices of ``range(size)`` from ``rng`` (None: the global generator).
    While tracing, the draw is recorded (see RandomSubsample) and indexing with it becomes an op of the graph."""
    return _draw(RandomSubsample, {"rng": rng, "size": int(size), "subsample_size": int(subsample_size)})


def _out(a: Any, dtype: Any, device: Any) -> Tensor:
    a = np.asarray(a)
    if dtype is not None:
        a = a.astype(dtype, copy=False)
    return constant(a if device is None else to_device(a, device))


def _size(size: Any) -> Any:
    return (size,) if isinstance(size, int) else (None if size is None else tuple(size))


def _float(dtype: Any) -> Any:
    return dtype or get_default_dtype()


def normal(loc: Any = 0.0, scale: Any = 1.0, size: Any = None, *, rng: Any = None, dtype: Any = None,
           device: Any = None) -> Tensor:
    """Draws from Normal(loc, scale); parameters broadcast with ``size``."""
    return _out(as_generator(rng).normal(_arr(loc), _arr(scale), _size(size)), _float(dtype), device)


def uniform(low: Any = 0.0, high: Any = 1.0, size: Any = None, *, rng: Any = None, dtype: Any = None,
            device: Any = None) -> Tensor:
    """Draws from Uniform[low, high)."""
    return _out(as_generator(rng).uniform(_arr(low), _arr(high), _size(size)), _float(dtype), device)


def gamma(concentration: Any, rate: Any = 1.0, size: Any = None, *, rng: Any = None, dtype: Any = None,
          device: Any = None) -> Tensor:
    """Draws from Gamma(concentration, rate) (mean concentration / rate)."""
    draws = as_generator(rng).gamma(_arr(concentration), 1.0 / np.asarray(_arr(rate), dtype=float), _size(size))
    return _out(draws, _float(dtype), device)


def beta(a: Any, b: Any, size: Any = None, *, rng: Any = None, dtype: Any = None, device: Any = None) -> Tensor:
    """Draws from Beta(a, b)."""
    return _out(as_generator(rng).beta(_arr(a), _arr(b), _size(size)), _float(dtype), device)


def poisson(rate: Any, size: Any = None, *, rng: Any = None, dtype: Any = np.int64, device: Any = None) -> Tensor:
    """Counts from Poisson(rate)."""
    return _out(as_generator(rng).poisson(_arr(rate), _size(size)), dtype, device)


def binomial(total_count: Any, probs: Any, size: Any = None, *, rng: Any = None, dtype: Any = np.int64,
             device: Any = None) -> Tensor:
    """Counts from Binomial(total_count, probs)."""
    return _out(as_generator(rng).binomial(_arr(total_count), _arr(probs), _size(size)), dtype, device)


def _probs(probs: Any, logits: Any, name: str) -> np.ndarray:
    if (probs is None) == (logits is None):
        raise ValueError(f"{name}: give exactly one of probs and logits")
    if logits is not None:
        z = np.asarray(_arr(logits), dtype=float)
        p = np.exp(z - z.max(axis=-1, keepdims=True))
    else:
        p = np.asarray(_arr(probs), dtype=float)
        if (p < 0).any() or not np.isfinite(p).all():
            raise ValueError(f"{name}: probs must be finite and non-negative")
    return p / p.sum(axis=-1, keepdims=True)


def categorical(probs: Any = None, logits: Any = None, size: Any = None, *, rng: Any = None,
                device: Any = None) -> Tensor:
    """Category indices drawn along the last dim of ``probs`` (or ``logits``); ``size`` is the sample
    shape in front of the batch shape ``probs.shape[:-1]``."""
    p = _probs(probs, logits, "categorical")
    shape = (_size(size) or ()) + p.shape[:-1]
    u = as_generator(rng).random(shape + (1,))
    cdf = np.cumsum(p, axis=-1)
    idx = (u > cdf[..., :-1]).sum(axis=-1)  # inverse CDF, vectorised over every draw
    return _out(idx, np.int64, device)


def multinomial(total_count: Any, probs: Any, size: Any = None, *, rng: Any = None, dtype: Any = np.int64,
                device: Any = None) -> Tensor:
    """Count vectors from Multinomial(total_count, probs) along the last dim of ``probs``."""
    p = _probs(probs, None, "multinomial")
    return _out(as_generator(rng).multinomial(_arr(total_count), p, _size(size)), dtype, device)


def permutation(x: Any, *, rng: Any = None, device: Any = None) -> Tensor:
    """A random permutation of ``range(x)`` for an int, or of a tensor's first dim."""
    if isinstance(x, (int, np.integer)):
        return _out(as_generator(rng).permutation(int(x)), np.int64, device)
    return _out(as_generator(rng).permutation(_arr(x)), None, device)


def randint(low: int, high: int | None = None, size: Any = None, *, rng: Any = None, dtype: Any = np.int64,
            device: Any = None) -> Tensor:
    """Integers from [low, high) (from [0, low) when ``high`` is omitted)."""
    if high is None:
        low, high = 0, low
    return _out(as_generator(rng).integers(low, high, _size(size)), dtype, device)


def randn(*size: Any, rng: Any = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal draws of the given shape."""
    t = normal(0.0, 1.0, _shape_args(size), rng=rng, dtype=dtype, device=device)
    return t.requires_grad_(requires_grad) if requires_grad else t


def rand(*size: Any, rng: Any = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) draws of the given shape."""
    t = uniform(0.0, 1.0, _shape_args(size), rng=rng, dtype=dtype, device=device)
    return t.requires_grad_(requires_grad) if requires_grad else t


def _shape_args(size: tuple) -> tuple[int, ...]:
    if len(size) == 1 and not isinstance(size[0], int):
        return tuple(size[0])
    return tuple(size)
