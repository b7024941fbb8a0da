"""Loss functions and their modules, with PyTorch's names, arguments and reductions.

Every function takes ``reduction`` = ``"mean"`` (default), ``"sum"`` or ``"none"``. Class
dimensions follow PyTorch: logits of shape (N, C) or (N, C, d1, ...), or (C,) for one sample.
"""
from __future__ import annotations

import math
from typing import Any

from .. import tensor as T
from ..backend import get_array_module
from ..tensor import Tensor
from ..tensor.ops.base import to_tensor
from .module import Module

__all__ = ["mse_loss", "l1_loss", "huber_loss", "cross_entropy", "nll_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "gaussian_nll_loss", "kl_div", "MSELoss", "L1Loss", "HuberLoss",
           "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "GaussianNLLLoss", "KLDivLoss"]

_REDUCTIONS = ("mean", "sum", "none")
_EXP_M100 = math.exp(-100.0)


def _reduce(loss: Tensor, reduction: str, name: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _same_shape(name: str, x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape:
        raise ValueError(f"{name}: input of shape {x.shape} and target of shape {y.shape} differ")


def _pair(name: str, x: Any, y: Any) -> tuple[Tensor, Tensor]:
    x, y = to_tensor(x), to_tensor(y)
    _same_shape(name, x, y)
    if y.dtype != x.dtype and y.dtype.kind in "biuf":
        y = y.astype(x.dtype)
    return x, y


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """(input - target)²."""
    x, y = _pair("mse_loss", input, target)
    d = x - y
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """|input - target|."""
    x, y = _pair("l1_loss", input, target)
    return _reduce(T.abs(x - y), reduction, "l1_loss")


def huber_loss(input: Any, target: Any, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """½d² where |d| ≤ δ, δ(|d| - ½δ) beyond (d = input - target)."""
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    x, y = _pair("huber_loss", input, target)
    a = T.abs(x - y)
    quad = T.minimum(a, delta)
    return _reduce(0.5 * quad * quad + delta * (a - quad), reduction, "huber_loss")


def _class_targets(name: str, logp: Tensor, target: Tensor) -> None:
    expected = logp.shape[:1] + logp.shape[2:] if logp.ndim > 1 else ()
    if target.shape != expected:
        raise ValueError(f"{name}: target of shape {target.shape} does not match input of shape {logp.shape} "
                         f"(expected class indices of shape {expected})")


def nll_loss(input: Any, target: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """-input[n, target[n]] · weight[target[n]] for log-probabilities ``input`` (N, C, ...) and class indices.

    With weights, ``"mean"`` divides by the total weight of the non-ignored targets (as PyTorch).
    """
    logp, t = to_tensor(input), to_tensor(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold integer class indices, got dtype {t.dtype}")
    _class_targets("nll_loss", logp, t)
    xp = get_array_module(logp.data)
    n_classes = logp.shape[1] if logp.ndim > 1 else logp.shape[0]
    keep = t.data != ignore_index
    idx = xp.where(keep, t.data, 0)
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n_classes):
        raise IndexError(f"nll_loss: target indices must lie in [0, {n_classes}) (or equal ignore_index "
                         f"{ignore_index}), got values from {int(idx.min())} to {int(idx.max())}")
    if logp.ndim == 1:
        picked = logp[idx]
    elif logp.ndim == 2:
        picked = logp[xp.arange(logp.shape[0]), idx]
    else:
        picked = T.take_along_axis(logp, xp.expand_dims(idx, 1), 1).squeeze(1)
    if weight is None and bool(keep.all()):  # the common case: one gather and one reduction
        return _reduce(-picked, reduction, "nll_loss")
    w = xp.asarray(keep, dtype=logp.dtype)
    if weight is not None:
        wt = to_tensor(weight)
        if wt.shape != (n_classes,):
            raise ValueError(f"nll_loss: weight must have shape ({n_classes},), got {wt.shape}")
        w = w * wt.data[idx]
    loss = -picked * T.Tensor._wrap(w)
    if reduction == "mean":
        return loss.sum() / float(w.sum())
    return _reduce(loss, reduction, "nll_loss")


def cross_entropy(input: Any, target: Any, weight: Any = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy from logits (N, C, ...), against class indices or class probabilities.

    With ``label_smoothing`` ε the target becomes (1 - ε)·one-hot + ε/C, as in PyTorch
    (Szegedy et al., "Rethinking the Inception Architecture", 2016).
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must lie in [0, 1], got {label_smoothing}")
    x, t = to_tensor(input), to_tensor(target)
    class_axis = 1 if x.ndim > 1 else 0
    logp = T.log_softmax(x, class_axis)
    n_classes = x.shape[class_axis]
    wt = None if weight is None else to_tensor(weight)
    w_shape = (n_classes,) + (1,) * (x.ndim - class_axis - 1)
    if t.dtype.kind == "f":  # class probabilities
        _same_shape("cross_entropy", x, t)
        probs = t * (1 - label_smoothing) + label_smoothing / n_classes if label_smoothing else t
        terms = probs * logp if wt is None else probs * logp * wt.reshape(w_shape)
        return _reduce(-terms.sum(class_axis), reduction if reduction != "mean" else "mean", "cross_entropy")
    nll = nll_loss(logp, t, wt, ignore_index, reduction)
    if not label_smoothing:
        return nll
    xp = get_array_module(logp.data)
    keep = T.Tensor._wrap(xp.asarray(t.data != ignore_index, dtype=logp.dtype))
    smooth = -(logp if wt is None else logp * wt.reshape(w_shape)).sum(class_axis) * keep
    if reduction == "mean":
        if wt is None:
            smooth = smooth.sum() / float(keep.data.sum())
        else:
            idx = xp.where(t.data != ignore_index, t.data, 0)
            smooth = smooth.sum() / float((wt.data[idx] * keep.data).sum())
    else:
        smooth = _reduce(smooth, reduction, "cross_entropy")
    return (1 - label_smoothing) * nll + smooth * (label_smoothing / n_classes)


def binary_cross_entropy(input: Any, target: Any, weight: Any = None, reduction: str = "mean") -> Tensor:
    """-[y log p + (1 - y) log(1 - p)] for probabilities p; each log is clamped at -100 as in PyTorch."""
    p, y = _pair("binary_cross_entropy", input, target)
    if p.data.size and (float(p.data.min()) < 0 or float(p.data.max()) > 1):
        raise ValueError("binary_cross_entropy: input must hold probabilities in [0, 1]; for logits use "
                         "binary_cross_entropy_with_logits")
    # log clamped at -100 as PyTorch, by clamping its argument at e^-100: same values and gradients, no log(0).
    loss = -(y * T.log(T.maximum(p, _EXP_M100)) + (1 - y) * T.log(T.maximum(1 - p, _EXP_M100)))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input: Any, target: Any, weight: Any = None, reduction: str = "mean",
                                     pos_weight: Any = None) -> Tensor:
    """-[w⁺ y log σ(x) + (1 - y) log σ(-x)], computed stably from logits x."""
    x, y = _pair("binary_cross_entropy_with_logits", input, target)
    if pos_weight is None:  # one fused op: y x - softplus(x)
        loss = -T.bernoulli_log_likelihood(x, y)
    else:
        loss = -(y * T.log_sigmoid(x) * pos_weight + (1 - y) * T.log_sigmoid(-x))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def gaussian_nll_loss(input: Any, target: Any, var: Any, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """½[log max(var, eps) + (input - target)² / max(var, eps)] (+ ½ log 2π with ``full``).

    ``var`` has the input's shape, or one fewer trailing dim of size 1, or is a scalar (as PyTorch).
    """
    x, y = _pair("gaussian_nll_loss", input, target)
    v = to_tensor(var)
    if v.ndim and v.shape != x.shape and v.shape + (1,) != x.shape and v.shape != x.shape[:-1] + (1,):
        raise ValueError(f"gaussian_nll_loss: var of shape {v.shape} does not match input of shape {x.shape}")
    if v.shape + (1,) == x.shape and v.shape != x.shape[:-1] + (1,):
        v = v.unsqueeze(-1)
    if v.data.size and float(v.data.min()) < 0:
        raise ValueError("gaussian_nll_loss: var has negative entries")
    with T.no_grad():
        clamped = T.maximum(v, eps).data
    v = v + T.Tensor._wrap(clamped - v.data)  # clamp the value, keep the gradient (as PyTorch)
    d = x - y
    loss = 0.5 * (T.log(v) + d * d / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction, "gaussian_nll_loss")


def kl_div(input: Any, target: Any, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Σ target (log target - input) for log-probabilities ``input``; ``"batchmean"`` divides by the batch
    size (the true KL per sample), ``"mean"`` by the number of elements (as PyTorch)."""
    x, t = _pair("kl_div", input, target)
    loss = T.exp(t) * (t - x) if log_target else T.xlogy(t, t) - t * x
    if reduction == "batchmean":
        return loss.sum() / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in _REDUCTIONS + ("batchmean",):
            raise ValueError(f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    def forward(self, input: Any, target: Any) -> Tensor:
        return mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    def forward(self, input: Any, target: Any) -> Tensor:
        return l1_loss(input, target, self.reduction)


class HuberLoss(_Loss):
    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: Any, target: Any) -> Tensor:
        return huber_loss(input, target, self.reduction, self.delta)


class CrossEntropyLoss(_Loss):
    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(reduction)
        self.weight = None if weight is None else to_tensor(weight)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input: Any, target: Any) -> Tensor:
        return cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)


class NLLLoss(_Loss):
    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight = None if weight is None else to_tensor(weight)
        self.ignore_index = ignore_index

    def forward(self, input: Any, target: Any) -> Tensor:
        return nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class BCELoss(_Loss):
    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input: Any, target: Any) -> Tensor:
        return binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, input: Any, target: Any) -> Tensor:
        return binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)


class GaussianNLLLoss(_Loss):
    def __init__(self, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.full, self.eps = full, eps

    def forward(self, input: Any, target: Any, var: Any) -> Tensor:
        return gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)


class KLDivLoss(_Loss):
    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input: Any, target: Any) -> Tensor:
        return kl_div(input, target, self.reduction, self.log_target)


