"""Datasets: indexable collections of samples, with PyTorch's names and meanings.

A map-style dataset is any object with ``__getitem__(i)`` and ``__len__()``; :class:`Dataset`
is the base class to inherit from. :class:`TensorDataset` wraps tensors that share their first
dimension, :class:`Subset` views a dataset through a list of indices, :class:`ConcatDataset`
chains datasets end to end, and :func:`random_split` cuts a dataset into random, disjoint
subsets.
"""
from __future__ import annotations

import bisect
import itertools
import math
import numbers
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..backend import as_generator
from ..tensor import Tensor, as_tensor

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split"]


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


class Dataset:
    """A map-style dataset: subclasses define ``__getitem__(index)`` and ``__len__()``.

    ``a + b`` chains two datasets into a :class:`ConcatDataset`.
    """

    def __getitem__(self, index: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__ (a subclass of Dataset)")

    def __len__(self) -> int:
        # TypeError, as ``len()`` raises for an object without ``__len__``, so a dataset that does not
        # know its size reads as unsized everywhere (DataLoader, random_split).
        raise TypeError(f"{type(self).__name__} does not define __len__; a Dataset subclass defines "
                        "__getitem__ and __len__")

    def __add__(self, other: Any) -> ConcatDataset:
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are rows of tensors that share their first dimension: ``ds[i] == (t[i] for t in tensors)``.

    Args:
        *tensors: Tensors or arrays (NumPy arrays are wrapped without a copy), all with the
            same size in their first dimension.

    Indexing returns a tuple of Tensors, one per tensor, even when there is only one.
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        ts = []
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                try:
                    t = as_tensor(t)
                except TypeError as e:
                    raise TypeError(f"TensorDataset: argument {i} ({type(t).__name__}) is not a tensor or "
                                    f"array: {e}") from None
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: argument {i} is 0-dimensional; each tensor needs a first "
                                 "dimension that indexes the samples")
            ts.append(t)
        if len({t.shape[0] for t in ts}) > 1:
            shapes = ", ".join(str(tuple(t.shape)) for t in ts)
            raise ValueError(f"TensorDataset: all tensors must have the same size in the first dimension, "
                             f"got shapes {shapes}")
        self.tensors: tuple[Tensor, ...] = tuple(ts)

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __repr__(self) -> str:
        shapes = ", ".join(str(tuple(t.shape)) for t in self.tensors)
        return f"TensorDataset({shapes})"


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order: ``Subset(ds, idx)[i] == ds[idx[i]]``.

    A list of positions as the index is passed on as the list of the mapped positions,
    ``dataset[[idx[i] for i in positions]]``, as in PyTorch.
    """

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        if not hasattr(dataset, "__getitem__"):
            raise TypeError(f"Subset: dataset must be indexable, got {type(dataset).__name__}")
        if isinstance(indices, Tensor):
            indices = indices.numpy()
        if isinstance(indices, np.ndarray):
            if indices.ndim != 1 or indices.dtype.kind not in "iu":
                raise TypeError(f"Subset: indices must be a 1-d sequence of ints, got an array of shape "
                                f"{indices.shape} and dtype {indices.dtype}")
        elif not isinstance(indices, Sequence) or not all(_is_int(i) for i in indices):
            raise TypeError(f"Subset: indices must be a sequence of ints, got {type(indices).__name__}")
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, list):  # as PyTorch: one lookup of the mapped positions in the dataset
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Datasets chained end to end: the samples of the first, then those of the second, ...

    Attributes:
        datasets: the list of datasets.
        cumulative_sizes: the running totals of their lengths.
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        sizes = []
        for i, d in enumerate(self.datasets):
            try:
                sizes.append(len(d))
            except TypeError:
                raise TypeError(f"ConcatDataset: dataset {i} ({type(d).__name__}) has no length; "
                                "every dataset must define __len__") from None
        self.cumulative_sizes = list(itertools.accumulate(sizes))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: Any) -> Any:
        if not _is_int(index):
            raise TypeError(f"ConcatDataset indices must be integers, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"ConcatDataset index {index} is out of range for length {n}")
        index = int(index) % n
        k = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[k - 1] if k > 0 else 0
        return self.datasets[k][index - start]


def _split_lengths(n: int, lengths: Sequence[Any]) -> list[int]:
    """Integer lengths from ``lengths``: counts as given, or fractions of ``n`` as PyTorch rounds them."""
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, Sequence) or not lengths:
        raise TypeError(f"random_split: lengths must be a non-empty list of ints or fractions, got {lengths!r}")
    if all(_is_int(x) for x in lengths):
        counts = [int(x) for x in lengths]
        if any(c < 0 for c in counts):
            raise ValueError(f"random_split: lengths must be non-negative, got {counts}")
        if sum(counts) != n:
            raise ValueError(f"random_split: lengths {counts} sum to {sum(counts)}, but the dataset has "
                             f"{n} samples; give counts that sum to {n}, or fractions that sum to 1")
        return counts
    if not all(isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_)) for x in lengths):
        raise TypeError(f"random_split: lengths must be ints or fractions, got {list(lengths)!r}")
    fracs = [float(x) for x in lengths]
    for i, f in enumerate(fracs):
        if not 0.0 <= f <= 1.0:
            raise ValueError(f"random_split: fraction at index {i} is {f}, not between 0 and 1")
    if not math.isclose(sum(fracs), 1.0) or sum(fracs) > 1.0 + 1e-12:
        raise ValueError(f"random_split: fractions {fracs} sum to {sum(fracs)}, not 1")
    counts = [math.floor(n * f) for f in fracs]
    for i in range(n - sum(counts)):  # hand out the remainder one by one, round robin from the first split
        counts[i % len(counts)] += 1
    for i, c in enumerate(counts):
        if c == 0:
            warnings.warn(f"random_split: split {i} has length 0; it is an empty dataset", stacklevel=3)
    return counts


def random_split(dataset: Any, lengths: Sequence[Any], rng: Any = None) -> list[Subset]:
    """Split ``dataset`` into random, disjoint subsets (:class:`Subset`) that together cover it.

    Args:
        dataset: a dataset with ``__len__``.
        lengths: the sizes of the splits, as ints that sum to ``len(dataset)``, or as fractions
            that sum to 1; ``floor(n * fraction)`` samples each, and the remainder is handed out one
            at a time to the splits in order (as PyTorch does).
        rng: ``None`` (the global generator), an int seed, or a ``numpy.random.Generator``.

    Example:
        >>> train, val = random_split(range(10), [0.8, 0.2], rng=0)
        >>> len(train), len(val)
        (8, 2)
    """
    try:
        n = len(dataset)
    except TypeError:
        raise TypeError(f"random_split: the dataset ({type(dataset).__name__}) has no length") from None
    counts = _split_lengths(n, lengths)
    perm = as_generator(rng).permutation(n).tolist()
    return [Subset(dataset, perm[stop - c:stop]) for stop, c in zip(itertools.accumulate(counts), counts)]
