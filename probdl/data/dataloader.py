"""DataLoader: iterate over a dataset in (shuffled) mini-batches, as PyTorch's ``DataLoader`` does.

Samples are fetched one at a time with ``dataset[i]`` and joined into a batch by ``collate_fn``
(:func:`default_collate` stacks them). When the dataset is a :class:`TensorDataset` (or a
:class:`Subset` of one, as :func:`random_split` makes) and the collate function is the default,
a batch is taken instead with one fancy-index per tensor, with no per-sample Python loop; the
result is the same.
"""
from __future__ import annotations

import collections.abc
import copy
import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..backend import as_generator
from ..tensor import Tensor, as_tensor, stack
from ..tensor import tensor as _tensor
from .dataset import Subset, TensorDataset

__all__ = ["DataLoader", "default_collate", "default_convert"]

_ERR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _is_str_or_object(dtype: np.dtype) -> bool:
    return dtype.kind in "SaUOV"


def _stack_arrays(batch: list[Any]) -> Tensor:
    shapes = {a.shape for a in batch}
    if len(shapes) > 1:
        raise ValueError(f"default_collate: samples must all have one shape to be stacked, got shapes "
                         f"{sorted(shapes)}")
    return stack([as_tensor(a) for a in batch])


def default_collate(batch: list[Any]) -> Any:
    """Join a list of samples into a batch, with a new leading batch dimension.

    By the type of the first sample (as PyTorch's ``default_collate``):

    * Tensor → the Tensors stacked; NumPy array → a stacked Tensor (string and object arrays are
      refused); NumPy scalar → a Tensor of its dtype;
    * ``float`` → a Tensor of the default floating dtype; ``int`` → int64; ``bool`` → bool;
    * ``str``, ``bytes`` → the list unchanged;
    * mapping → the same kind of mapping with each key's values collated;
    * namedtuple → the same namedtuple of collated fields; tuple → a tuple of collated fields
      (PyTorch gives a list here); list and other sequences → a list of collated fields.

    Example:
        >>> x, y = default_collate([(1.0, 0), (2.0, 1)])
        >>> x, y
        (tensor([1., 2.]), tensor([0, 1]))
    """
    if not isinstance(batch, collections.abc.Sequence) or isinstance(batch, (str, bytes)) or len(batch) == 0:
        raise TypeError(f"default_collate: expected a non-empty list of samples, got {type(batch).__name__}")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch))
    if isinstance(elem, np.ndarray):
        if _is_str_or_object(elem.dtype):
            raise TypeError(_ERR.format(f"numpy array of dtype {elem.dtype}"))
        return _stack_arrays(list(batch))
    if isinstance(elem, (np.bool_, np.number)):
        return as_tensor(np.asarray(batch))
    if isinstance(elem, (bool, int, float)):  # bool is an int; Python floats take the default dtype
        return _tensor(list(batch))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        for i, d in enumerate(batch):
            if not isinstance(d, collections.abc.Mapping) or d.keys() != elem.keys():
                got = list(d.keys()) if isinstance(d, collections.abc.Mapping) else type(d).__name__
                raise ValueError(f"default_collate: sample {i} has keys {got}, but sample 0 has "
                                 f"{list(elem.keys())}; every sample must have the same keys")
        return _rebuild_mapping(elem, {key: default_collate([d[key] for d in batch]) for key in elem})
    if isinstance(elem, collections.abc.Sequence):
        n = len(elem)
        for i, s in enumerate(batch):
            if not isinstance(s, collections.abc.Sequence) or len(s) != n:
                got = f"length {len(s)}" if isinstance(s, collections.abc.Sequence) else type(s).__name__
                raise ValueError(f"default_collate: sample {i} has {got}, but sample 0 has length {n}; "
                                 "each element in a batch of sequences should be of equal size")
        fields = [default_collate(list(samples)) for samples in zip(*batch)]
        if isinstance(elem, tuple):
            return type(elem)(*fields) if hasattr(elem, "_fields") else tuple(fields)
        return fields
    raise TypeError(_ERR.format(type(elem).__name__))


def _rebuild_mapping(like: Any, items: dict) -> Any:
    """A mapping of ``like``'s type holding ``items``, or a plain dict when that type cannot be rebuilt."""
    try:
        if isinstance(like, collections.abc.MutableMapping):
            out = copy.copy(like)
            out.update(items)
            return out
        return type(like)(items)
    except TypeError:
        return items


def default_convert(data: Any) -> Any:
    """Turn the NumPy arrays in one sample into Tensors, leaving everything else as it is.

    The collate function of a DataLoader with ``batch_size=None`` (no batching), as in PyTorch;
    tuples stay tuples (PyTorch makes them lists).
    """
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if _is_str_or_object(data.dtype) else as_tensor(data)
    if isinstance(data, (np.bool_, np.number)):
        return as_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        return _rebuild_mapping(data, {key: default_convert(data[key]) for key in data})
    if isinstance(data, tuple):
        fields = [default_convert(d) for d in data]
        return type(data)(*fields) if hasattr(data, "_fields") else tuple(fields)
    if isinstance(data, list):
        return [default_convert(d) for d in data]
    return data


def _length(dataset: Any) -> int | None:
    try:
        return len(dataset)
    except TypeError:
        return None


def _check_batch_size(batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"DataLoader: batch_size must be a positive int or None, got {type(batch_size).__name__} "
                        f"{batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"DataLoader: batch_size must be a positive int or None, got {batch_size}")
    return int(batch_size)


def _check_flag(name: str, value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"DataLoader: {name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


class DataLoader:
    """Iterate over a dataset in mini-batches, in order or shuffled.

    Args:
        dataset: a map-style dataset (``dataset[i]`` gives sample ``i``; ``len(dataset)`` its size),
            such as a :class:`TensorDataset`, a Tensor or a NumPy array. A dataset without ``__len__``
            is read in order from index 0 until it raises ``IndexError``.
        batch_size: samples per batch; ``None`` turns batching off, so that single samples come out
            (passed through ``collate_fn``, :func:`default_convert` by default).
        shuffle: draw a fresh random order at the start of every epoch (every ``iter(loader)``).
        drop_last: leave out the last batch when it has fewer than ``batch_size`` samples.
        collate_fn: joins a list of samples into a batch; :func:`default_collate` by default.
        rng: where shuffling draws from: ``None`` (the global generator, as
            :func:`probdl.set_rng_seed` sets it), an int seed (a generator made once, here, so that
            the sequence of epochs is reproducible and each epoch still gets its own order), or a
            ``numpy.random.Generator`` (used, and advanced, as it is).

    Example:
        >>> import probdl as pd
        >>> ds = TensorDataset(pd.arange(5.0), pd.arange(5))
        >>> [tuple(y.tolist()) for _, y in DataLoader(ds, batch_size=2)]
        [(0, 1), (2, 3), (4,)]
    """

    def __init__(self, dataset: Any, batch_size: int | None = 1, shuffle: bool = False, drop_last: bool = False,
                 collate_fn: Callable[[Any], Any] | None = None, rng: Any = None) -> None:
        if not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: dataset must support dataset[i], got {type(dataset).__name__}")
        self.batch_size = _check_batch_size(batch_size)
        self.shuffle = _check_flag("shuffle", shuffle)
        self.drop_last = _check_flag("drop_last", drop_last)
        if self.batch_size is None and self.drop_last:
            raise ValueError("DataLoader: batch_size=None turns batching off and cannot be combined with "
                             "drop_last=True")
        if self.shuffle and _length(dataset) is None:
            raise TypeError(f"DataLoader: shuffle=True needs a dataset with a length, and "
                            f"{type(dataset).__name__} defines no __len__")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        self.dataset = dataset
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_convert if self.batch_size is None else default_collate)
        self.rng = None if rng is None else as_generator(rng)

    def __len__(self) -> int:
        """The number of batches in one epoch."""
        n = _length(self.dataset)
        if n is None:
            raise TypeError(f"DataLoader: the dataset ({type(self.dataset).__name__}) has no length, so neither "
                            "has the loader")
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        """One epoch of batches; with ``shuffle=True`` its order is drawn now, from ``rng``."""
        n = _length(self.dataset)
        if n is None:
            return self._unsized()
        order = as_generator(self.rng).permutation(n) if self.shuffle else np.arange(n)
        if self.batch_size is None:
            return (self.collate_fn(self.dataset[int(i)]) for i in order)
        fast = self._fast_source() if self.collate_fn is default_collate else None
        return self._batches(order, fast)

    def _batches(self, order: np.ndarray, fast: tuple[tuple[Tensor, ...], np.ndarray | None] | None) -> Iterator[Any]:
        n, bs = len(order), self.batch_size
        stop = n - n % bs if self.drop_last else n
        for start in range(0, stop, bs):
            idx = order[start:start + bs]
            if fast is not None:
                tensors, base = fast
                rows = idx if base is None else base[idx]
                yield tuple(t[rows] for t in tensors)
            else:
                yield self.collate_fn([self.dataset[int(i)] for i in idx])

    def _fast_source(self) -> tuple[tuple[Tensor, ...], np.ndarray | None] | None:
        """The tensors behind a TensorDataset (seen through any Subsets) and the row of each sample.

        ``None`` when the dataset is something else, or a subclass that changes ``__getitem__``
        (a transform, say), which must then be called sample by sample.
        """
        ds, base = self.dataset, None
        while isinstance(ds, Subset) and type(ds).__getitem__ is Subset.__getitem__:
            idx = np.asarray(ds.indices, dtype=np.int64).reshape(-1)
            base = idx if base is None else idx[base]
            ds = ds.dataset
        if not (isinstance(ds, TensorDataset) and type(ds).__getitem__ is TensorDataset.__getitem__):
            return None
        return ds.tensors, base

    def _unsized(self) -> Iterator[Any]:
        """Read a dataset without ``__len__`` from index 0 until it raises IndexError."""
        batch: list[Any] = []
        for i in itertools.count():
            try:
                sample = self.dataset[i]
            except IndexError:
                break
            if self.batch_size is None:
                yield self.collate_fn(sample)
                continue
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last})")
