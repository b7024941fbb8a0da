"""Embedding: a lookup table of learned vectors, one row per index.

``embedding(indices, weight)`` is ``weight[indices]``; its gradient adds each output
row's gradient into the row it came from, so an index that repeats collects the sum.
A ``padding_idx`` row is looked up like any other but receives no gradient.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import get_array_module, get_default_dtype, to_device
from ..tensor import Tensor, where
from ..tensor.ops.base import constant, to_tensor
from . import init
from ._validation import positive_int
from .module import Module, Parameter

__all__ = ["embedding", "Embedding"]


def _padding_index(padding_idx: Any, num_embeddings: int, fn: str) -> int | None:
    """``padding_idx`` as a non-negative row number (a negative one counts from the end), or None."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
        raise TypeError(f"{fn}: padding_idx must be an int or None, got {type(padding_idx).__name__}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{fn}: padding_idx must be within num_embeddings ({num_embeddings}), got {padding_idx}")
    return int(padding_idx) % num_embeddings


def _indices(indices: Any, num_embeddings: int, device: Any) -> Any:
    """The indices as an integer array on ``device``, checked to lie in [0, num_embeddings)."""
    if isinstance(indices, Tensor):
        idx = indices.data
    elif isinstance(indices, (bool, float)):
        raise TypeError(f"embedding: indices must be integers, got {type(indices).__name__}")
    else:
        idx = np.asarray(indices) if get_array_module(indices) is np else indices
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be an integer tensor, got dtype {idx.dtype}")
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= num_embeddings:
            bad = lo if lo < 0 else hi
            raise IndexError(f"embedding: index {bad} is out of range for {num_embeddings} embeddings "
                             f"(valid indices are 0 to {num_embeddings - 1})")
    return to_device(idx, device)


def embedding(indices: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """The rows of ``weight`` (num_embeddings, embedding_dim) at ``indices``, of shape ``indices.shape + (dim,)``.

    Args:
        indices: an integer tensor, array or list with values in [0, num_embeddings).
        weight: the table.
        padding_idx: a row that gets no gradient (its value is returned as it is); negative counts from the end.
    """
    weight = to_tensor(weight)
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape {weight.shape}")
    pad = _padding_index(padding_idx, weight.shape[0], "embedding")
    idx = _indices(indices, weight.shape[0], weight.device)
    rows = weight[idx]
    if pad is None or not weight.requires_grad:
        return rows
    # Same values, but the padding positions read a constant copy of that row, so no gradient reaches it.
    return where(constant((idx == pad)[..., None]), constant(weight.data[pad]), rows)


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``, looked up by index.

    The weight starts as N(0, 1) draws, as in PyTorch, with the ``padding_idx`` row (if any) set to zero;
    that row then receives no gradient.

    Args:
        num_embeddings: the number of rows (the vocabulary size).
        embedding_dim: the size of each vector.
        padding_idx: a row that stays fixed in training (a negative value counts from the end).
        dtype: of the weight (the default floating dtype when ``None``).
        rng: ``None`` for the global generator, an int seed or a ``numpy.random.Generator``.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, *,
                 dtype: Any = None, rng: Any = None) -> None:
        super().__init__()
        self.num_embeddings = positive_int("num_embeddings", num_embeddings, "Embedding")
        self.embedding_dim = positive_int("embedding_dim", embedding_dim, "Embedding")
        self.padding_idx = _padding_index(padding_idx, self.num_embeddings, "Embedding")
        self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim), dtype=dtype or get_default_dtype()))
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """N(0, 1) entries, the padding row zero."""
        init.normal_(self.weight, rng=rng)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None) -> Embedding:
        """An Embedding holding a copy of ``embeddings`` (2-D); ``freeze`` turns its gradient off."""
        table = embeddings.data if isinstance(embeddings, Tensor) else np.asarray(embeddings)
        if table.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape {table.shape}")
        dtype = table.dtype if table.dtype.kind == "f" else None
        emb = cls(table.shape[0], table.shape[1], padding_idx, dtype=dtype, rng=0)
        emb.weight.data = table.astype(emb.weight.dtype, copy=True)
        emb.weight.requires_grad_(not freeze)
        return emb

    def forward(self, indices: Any) -> Tensor:
        return embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s if self.padding_idx is None else s + f", padding_idx={self.padding_idx}"
