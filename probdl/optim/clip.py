"""Gradient clipping: by the total norm of all gradients, or elementwise by value."""
from __future__ import annotations

import math
from collections.abc import Iterable

from ..backend import get_array_module
from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    r"""Scale the gradients so that their total norm is at most ``max_norm``, as PyTorch does.

    The total norm is the ``norm_type``-norm of all gradients taken together, as one
    vector: :math:`n = \lVert (\lVert g_1 \rVert_p, \ldots, \lVert g_k \rVert_p) \rVert_p`
    (the largest absolute element for ``norm_type=inf``). Every gradient is then multiplied
    by :math:`\min(1, \text{max\_norm} / (n + 10^{-6}))`; parameters whose ``grad`` is
    ``None`` are ignored. Each ``p.grad`` gets a new, clipped array.

    Args:
        parameters: a Tensor or an iterable of Tensors whose gradients to clip.
        max_norm: the largest total norm allowed (>= 0).
        norm_type: :math:`p > 0`, or ``inf``.
        error_if_nonfinite: raise ``RuntimeError`` when the total norm is NaN or infinite
            (otherwise the gradients are scaled by the non-finite factor, as in PyTorch).

    Returns:
        the total norm of the gradients before clipping, as a 0-d Tensor.
    """
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: invalid max_norm={max_norm!r}; expected a number >= 0")
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: invalid norm_type={norm_type!r}; expected a number > 0 or inf")
    grads = _grads(parameters)
    if not grads:
        return Tensor(0.0)
    xp = get_array_module(grads[0].data)
    arrays = [g.data.ravel() for g in grads if g.data.size]
    if not arrays:
        return Tensor(0.0)
    if norm_type == math.inf:
        total = xp.max(xp.stack([xp.max(xp.abs(a)) for a in arrays]))
    else:
        total = xp.linalg.norm(xp.stack([xp.linalg.norm(a, norm_type) for a in arrays]), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {float(total)}, "
                           "so they cannot be clipped; pass error_if_nonfinite=False to scale them by the "
                           "non-finite factor anyway")
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g.data = g.data * coef.astype(g.data.dtype)
    return Tensor(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clip every gradient element to ``[-clip_value, clip_value]``, as PyTorch does.

    Parameters whose ``grad`` is ``None`` are ignored; each ``p.grad`` gets a new, clipped array.

    Args:
        parameters: a Tensor or an iterable of Tensors whose gradients to clip.
        clip_value: the bound (>= 0).
    """
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: invalid clip_value={clip_value!r}; expected a number >= 0")
    for g in _grads(parameters):
        g.data = get_array_module(g.data).clip(g.data, -clip_value, clip_value)
