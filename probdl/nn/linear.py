"""``Linear``, ``Identity`` and ``Flatten``, with :func:`linear` as the function behind ``Linear``."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import as_generator, get_default_dtype
from ..tensor import Tensor
from ..tensor.autograd import apply
from ..tensor.ops.base import to_tensor
from ..tensor.ops.linalg import MatMul
from . import init
from ._validation import positive_int
from .module import Module, Parameter

__all__ = ["linear", "Linear", "Identity", "Flatten"]


def linear(x: Any, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weightᵀ + bias`` with PyTorch's layout: ``weight`` has shape (out, in), ``x`` (..., in).

    The transpose is a flag of the matrix product, not a separate op.
    """
    x = to_tensor(x)
    if x.shape[-1:] != weight.shape[1:]:
        raise ValueError(f"linear: input of shape {x.shape} does not match a weight of shape {weight.shape} "
                         f"(expected last dim {weight.shape[1]})")
    flat = x.reshape(1, -1) if x.ndim == 1 else x
    out = apply(MatMul, (flat, weight), {"ta": False, "tb": True})
    if x.ndim == 1:
        out = out.reshape(-1)
    return out if bias is None else out + bias


class Linear(Module):
    """y = x Wᵀ + b. Weight (out_features, in_features) and bias start as PyTorch's do:
    U(-1/√in, 1/√in) (``kaiming_uniform_`` with a = √5, and the bias bound to match)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = None,
                 rng: Any = None) -> None:
        super().__init__()
        self.in_features = positive_int("in_features", in_features, "Linear")
        self.out_features = positive_int("out_features", out_features, "Linear")
        dt = dtype or get_default_dtype()
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dt))
        self.bias = Parameter(np.empty(out_features, dtype=dt)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        gen = as_generator(rng)  # one stream for weight and bias: an int seed must not restart between them
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), rng=gen)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound, rng=gen)

    def forward(self, x: Any) -> Tensor:
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """Returns its input unchanged (a placeholder in a Sequential)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


class Flatten(Module):
    """Merge dims ``start_dim`` to ``end_dim`` (by default all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return to_tensor(x).flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
