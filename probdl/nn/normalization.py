"""Batch and layer normalization, with PyTorch's names, defaults and running-statistics rules.

Both standardize ``x`` over some axes and then scale and shift it per feature::

    y = (x - mean) / sqrt(var + eps) * weight + bias

with the *biased* variance (divide by n). Batch norm takes the statistics over the batch
and every axis but the channel axis (dim 1) while training, and keeps exponential moving
averages of them (``running_mean``, and ``running_var`` from the *unbiased* batch variance,
as PyTorch does) to use in evaluation mode. Layer norm takes them over the trailing
``normalized_shape`` axes of each sample, the same way in training and evaluation.

References:
    Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
    Internal Covariate Shift", 2015.
    Ba, Kiros & Hinton, "Layer Normalization", arXiv:1607.06450, 2016.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import get_default_dtype
from ..tensor import Tensor, mean
from ..tensor.ops.base import to_tensor
from ._validation import positive_int
from .module import Module, Parameter

__all__ = ["batch_norm", "layer_norm", "BatchNorm1d", "BatchNorm2d", "LayerNorm"]


def _standardize(x: Tensor, axes: tuple[int, ...], eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """(x - mean) / sqrt(var + eps) over ``axes`` with the biased variance; also the mean and variance."""
    mu = mean(x, axes, keepdims=True)
    d = x - mu
    var = mean(d * d, axes, keepdims=True)
    return d * (var + eps) ** -0.5, mu, var


def _check_stat(name: str, t: Any, c: int, x: Tensor, fn: str) -> None:
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{fn}: {name} must be a Tensor or None, got {type(t).__name__}")
    if t.shape != (c,):
        raise ValueError(f"{fn}: {name} has shape {t.shape}, but the input of shape {x.shape} has {c} channels "
                         f"in dim 1 (expected shape ({c},))")


def batch_norm(x: Any, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Batch normalization of ``x`` of shape (N, C, *) per channel (dim 1), as ``torch.nn.functional.batch_norm``.

    With ``training=True`` the statistics come from the batch (over N and every dim after C), and
    the running statistics, when given, are updated in place:
    ``running = (1 - momentum) · running + momentum · batch`` with the unbiased batch variance for
    ``running_var``. With ``training=False`` the running statistics normalize and stay unchanged.

    Args:
        x: input of shape (N, C) or (N, C, d1, d2, ...).
        running_mean, running_var: tensors of shape (C,), or ``None`` (training only).
        weight, bias: per-channel scale and shift of shape (C,), or ``None``.
        training: use batch statistics (and update the running ones) rather than the running ones.
        momentum: weight of the new batch in the running averages.
        eps: added to the variance before the square root.
    """
    x = to_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C, *) with at least 2 dims, got shape {x.shape}")
    c = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        _check_stat(name, t, c, x, "batch_norm")
    bshape = (1, c) + (1,) * (x.ndim - 2)
    if training:
        n = x.data.size // c if c else 0
        if n <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got an input of "
                             f"shape {x.shape}")
        axes = (0,) + tuple(range(2, x.ndim))
        y, mu, var = _standardize(x, axes, eps)
        # The running statistics are state outside the graph: update their arrays in place.
        if running_mean is not None:
            running_mean.data[...] = (1 - momentum) * running_mean.data + momentum * mu.data.reshape(c)
        if running_var is not None:
            unbiased = var.data.reshape(c) * (n / (n - 1))
            running_var.data[...] = (1 - momentum) * running_var.data + momentum * unbiased
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when training=False")
        y = (x - running_mean.reshape(bshape)) * (running_var.reshape(bshape) + eps) ** -0.5
    if weight is not None:
        y = y * weight.reshape(bshape)
    if bias is not None:
        y = y + bias.reshape(bshape)
    return y


def _as_shape(normalized_shape: Any, fn: str) -> tuple[int, ...]:
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if not shape or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in shape):
        raise ValueError(f"{fn}: normalized_shape must be a positive int or a non-empty tuple of them, "
                         f"got {normalized_shape!r}")
    return tuple(int(s) for s in shape)


def layer_norm(x: Any, normalized_shape: Any, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Layer normalization over the trailing ``normalized_shape`` dims, as ``torch.nn.functional.layer_norm``.

    Each sample is standardized over those dims (biased variance), then multiplied by ``weight`` and
    shifted by ``bias``, both of shape ``normalized_shape`` when given.
    """
    x = to_tensor(x)
    shape = _as_shape(normalized_shape, "layer_norm")
    k = len(shape)
    if x.shape[x.ndim - k:] != shape or x.ndim < k:
        raise ValueError(f"layer_norm: expected an input of shape (*, {', '.join(map(str, shape))}) "
                         f"(normalized_shape={shape}), got shape {x.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"layer_norm: {name} has shape {tuple(t.shape)}, expected normalized_shape {shape}")
    y = _standardize(x, tuple(range(x.ndim - k, x.ndim)), eps)[0]
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


class _BatchNorm(Module):
    """What BatchNorm1d and BatchNorm2d share; they differ only in the input ranks they accept."""

    _ranks: tuple[int, ...] = ()
    _layout: str = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, dtype: Any = None) -> None:
        super().__init__()
        cls = type(self).__name__
        self.num_features = positive_int("num_features", num_features, cls)
        if not eps > 0:
            raise ValueError(f"{cls}: eps must be positive, got {eps!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{cls}: momentum must be in [0, 1] or None (cumulative average), got {momentum!r}")
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dt = dtype or get_default_dtype()
        c = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(c, dtype=dt))
            self.bias = Parameter(np.zeros(c, dtype=dt))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(c, dtype=dt)))
            self.register_buffer("running_var", Tensor(np.ones(c, dtype=dt)))
            self.register_buffer("num_batches_tracked", Tensor(np.zeros((), dtype=np.int64)))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, batch count 0."""
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        """Running statistics reset, weight 1, bias 0."""
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            self.bias.data[...] = 0

    def _check_input(self, x: Tensor) -> None:
        cls = type(self).__name__
        if x.ndim not in self._ranks:
            raise ValueError(f"{cls}: expected {self._layout} input, got {x.ndim}-D input of shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{cls}: expected {self.num_features} channels (num_features) in dim 1, got input "
                             f"of shape {x.shape}")
        if self.training and math.prod(x.shape) // x.shape[1] <= 1:
            raise ValueError(f"{cls}: expected more than 1 value per channel when training, got input of shape "
                             f"{x.shape}")

    def forward(self, x: Any) -> Tensor:
        x = to_tensor(x)
        self._check_input(x)
        update = self.training and self.track_running_stats
        if update and self.momentum is None:  # cumulative moving average over all batches so far
            factor = 1.0 / (int(self.num_batches_tracked.data) + 1)
        else:
            factor = 0.0 if self.momentum is None else self.momentum
        # Batch statistics in training, and in evaluation too when no running statistics are kept.
        use_batch = self.training or self.running_mean is None
        stats = (self.running_mean, self.running_var) if not self.training or self.track_running_stats else (None, None)
        y = batch_norm(x, *stats, self.weight, self.bias, use_batch, factor, self.eps)
        if update:
            self.num_batches_tracked.data += 1
        return y

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization over a batch of vectors (N, C) or of sequences (N, C, L), per channel C.

    Args:
        num_features: C.
        eps: added to the variance before the square root.
        momentum: weight of each new batch in the running averages; ``None`` for a cumulative
            average over all batches seen (``num_batches_tracked``).
        affine: learn a per-channel ``weight`` (init 1) and ``bias`` (init 0).
        track_running_stats: keep ``running_mean`` and ``running_var`` buffers for evaluation; without
            them batch statistics are used in evaluation mode too.
        dtype: of the parameters and buffers (the default floating dtype when ``None``).
    """

    _ranks = (2, 3)
    _layout = "2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization over a batch of images (N, C, H, W), per channel C; arguments as :class:`BatchNorm1d`."""

    _ranks = (4,)
    _layout = "4-D (N, C, H, W)"


class LayerNorm(Module):
    """Layer normalization over the trailing ``normalized_shape`` dims of each sample.

    Args:
        normalized_shape: an int (the last dim) or a tuple (the last ``len(normalized_shape)`` dims).
        eps: added to the variance before the square root.
        elementwise_affine: learn ``weight`` (init 1) and, with ``bias``, ``bias`` (init 0), each of
            shape ``normalized_shape``.
        bias: learn the shift (only with ``elementwise_affine``).
        dtype: of the parameters (the default floating dtype when ``None``).
    """

    def __init__(self, normalized_shape: Any, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 *, dtype: Any = None) -> None:
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape, "LayerNorm")
        if not eps > 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps!r}")
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        dt = dtype or get_default_dtype()
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dt))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0

    def forward(self, x: Any) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
