"""Dropout: zero each element with probability ``p`` while training, scaling the rest by 1/(1 - p).

The scaling ("inverted dropout") keeps the expected value of every element unchanged, so
evaluation needs no rescaling: there dropout is the identity. The mask is drawn from a
NumPy generator and enters the graph as a constant; the gradient is the same mask.

References:
    Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR 2014.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import as_generator, to_device
from ..tensor import Tensor
from ..tensor.ops.base import constant, to_tensor
from .module import Module

__all__ = ["dropout", "Dropout"]


def _check_p(p: Any, fn: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{fn}: dropout probability has to be between 0 and 1, but got {p!r}")
    return float(p)


def dropout(x: Any, p: float = 0.5, training: bool = True, rng: Any = None) -> Tensor:
    """Zero each element of ``x`` with probability ``p`` and scale the others by 1/(1 - p), when ``training``.

    Args:
        x: input of any shape.
        p: probability of zeroing an element, in [0, 1]; ``p = 1`` gives zeros.
        training: apply dropout; when False, ``x`` is returned unchanged.
        rng: ``None`` for the global generator (:func:`probdl.set_rng_seed`), an int seed (the same
            mask on every call) or a ``numpy.random.Generator``.
    """
    p = _check_p(p, "dropout")
    x = to_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"dropout: expected a floating input, got dtype {x.dtype}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = as_generator(rng).random(x.shape) >= p  # kept with probability 1 - p
    scale = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return x * constant(to_device(scale, x.device))


class Dropout(Module):
    """During training, zero each element with probability ``p`` and scale the rest by 1/(1 - p);
    in evaluation mode (``eval()``), the identity.

    Args:
        p: probability of zeroing an element, in [0, 1].
        rng: where the masks come from: ``None`` for the global generator, or an int seed or a
            ``numpy.random.Generator`` that this module then owns (its masks differ call by call).
    """

    def __init__(self, p: float = 0.5, *, rng: Any = None) -> None:
        super().__init__()
        self.p = _check_p(p, "Dropout")
        self.rng = None if rng is None else as_generator(rng)

    def forward(self, x: Any) -> Tensor:
        return dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"
