"""Metrics for the Trainer: functions of (output, target) that return a number."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor

__all__ = ["accuracy"]


def _array(x: Any) -> np.ndarray:
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


def accuracy(output: Any, target: Any) -> float:
    """Fraction of correct predictions: the arg-max class of logits (N, C) against class indices,
    or ``output > 0`` for a single logit per example against 0/1 labels."""
    out, t = _array(output), _array(target)
    if out.ndim >= 2 and out.shape[-1] > 1 and t.shape == out.shape[:-1]:
        pred = out.argmax(-1)
    elif out.reshape(t.shape if out.size == t.size else out.shape).shape == t.shape:
        pred = (out.reshape(t.shape) > 0).astype(t.dtype)
    else:
        raise ValueError(f"accuracy: output of shape {out.shape} does not fit target of shape {t.shape} "
                         "(expected logits (N, C) with indices (N,), or one logit per example)")
    return float((pred == t).mean()) if t.size else float("nan")
