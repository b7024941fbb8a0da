"""DataLoader and default_collate: batching, shuffling, the TensorDataset fast path, errors, and torch parity."""
from collections import OrderedDict, namedtuple

import numpy as np
import pytest
from datasets_for_tests import Squares

import probdl as pd
from probdl.data import DataLoader, Dataset, Subset, TensorDataset, default_collate, default_convert, random_split

Point = namedtuple("Point", ["x", "y"])


class Unsized:
    """Indexable without a length: read until IndexError."""

    def __getitem__(self, i):
        if i >= 5:
            raise IndexError(i)
        return float(i)


def _data(n=10):
    rng = np.random.default_rng(0)
    X = pd.tensor(rng.normal(size=(n, 3)))
    y = pd.tensor(np.arange(n))
    mask = pd.tensor(rng.random(n) > 0.5)
    return X, y, mask


def _ids(loader):
    """The sample ids of one epoch over a dataset whose second tensor is arange(n)."""
    return [b[1].tolist() for b in loader]


def _assert_same_batches(a, b):
    assert len(a) == len(b)
    for ba, bb in zip(a, b):
        assert type(ba) is type(bb) and len(ba) == len(bb)
        for ta, tb in zip(ba, bb):
            assert isinstance(ta, pd.Tensor) and isinstance(tb, pd.Tensor)
            assert ta.dtype == tb.dtype and ta.shape == tb.shape
            np.testing.assert_array_equal(ta.numpy(), tb.numpy())


# ------------------------------------------------------------------------------------------------ batching
@pytest.mark.parametrize("n, bs, drop_last, sizes", [
    (10, 3, False, [3, 3, 3, 1]),
    (10, 3, True, [3, 3, 3]),
    (9, 3, False, [3, 3, 3]),
    (9, 3, True, [3, 3, 3]),
    (2, 5, False, [2]),
    (2, 5, True, []),
    (0, 4, False, []),
    (4, 1, False, [1, 1, 1, 1]),
])
def test_batch_sizes_and_len(n, bs, drop_last, sizes):
    X, y, _ = _data(max(n, 1))
    ds = TensorDataset(X[:n], y[:n])
    loader = DataLoader(ds, batch_size=bs, drop_last=drop_last)
    batches = list(loader)
    assert [len(b[0]) for b in batches] == sizes
    assert len(loader) == len(sizes)
    assert sum(_ids(loader), []) == list(range(sum(sizes)))  # in order without shuffle


def test_batches_hold_the_right_rows():
    X, y, mask = _data()
    loader = DataLoader(TensorDataset(X, y, mask), batch_size=4)
    xb, yb, mb = list(loader)[1]
    np.testing.assert_array_equal(xb.numpy(), X.numpy()[4:8])
    np.testing.assert_array_equal(yb.numpy(), [4, 5, 6, 7])
    assert mb.dtype == np.bool_ and xb.dtype == np.float64 and yb.dtype == np.int64


def test_default_batch_size_is_one():
    batches = list(DataLoader(TensorDataset(pd.arange(3.0))))
    assert len(batches) == 3 and batches[2][0].shape == (1,) and batches[2][0].item() == 2.0


def test_loader_over_plain_datasets():
    assert [b.tolist() for b in DataLoader(Squares(5), batch_size=2)] == [[0, 1], [4, 9], [16]]
    assert [b.tolist() for b in DataLoader(pd.arange(5.0), batch_size=3)] == [[0.0, 1.0, 2.0], [3.0, 4.0]]
    arr = np.arange(12, dtype=np.float32).reshape(6, 2)
    first = next(iter(DataLoader(arr, batch_size=4)))
    assert isinstance(first, pd.Tensor) and first.dtype == np.float32 and first.shape == (4, 2)


def test_unsized_dataset_is_read_until_index_error():
    loader = DataLoader(Unsized(), batch_size=2)
    assert [b.tolist() for b in loader] == [[0.0, 1.0], [2.0, 3.0], [4.0]]
    assert [b.tolist() for b in DataLoader(Unsized(), batch_size=2, drop_last=True)] == [[0.0, 1.0], [2.0, 3.0]]
    with pytest.raises(TypeError, match="has no length, so neither has the loader"):
        len(loader)


# ----------------------------------------------------------------------------------------------- shuffling
def test_shuffle_sees_every_sample_once_per_epoch():
    X, y, _ = _data(23)
    loader = DataLoader(TensorDataset(X, y), batch_size=5, shuffle=True, rng=0)
    for _ in range(3):
        ids = sum(_ids(loader), [])
        assert sorted(ids) == list(range(23))
        assert ids != list(range(23))


def test_shuffle_reproducible_with_int_seed_and_fresh_each_epoch():
    X, y, _ = _data(20)
    ds = TensorDataset(X, y)
    a = DataLoader(ds, batch_size=4, shuffle=True, rng=7)
    b = DataLoader(ds, batch_size=4, shuffle=True, rng=7)
    a1, a2 = _ids(a), _ids(a)
    b1, b2 = _ids(b), _ids(b)
    assert a1 == b1 and a2 == b2  # the same sequence of epochs, run after run
    assert a1 != a2  # each epoch draws its own order
    assert _ids(DataLoader(ds, batch_size=4, shuffle=True, rng=8)) != a1


def test_shuffle_with_generator_and_global_rng():
    X, y, _ = _data(20)
    ds = TensorDataset(X, y)
    g = np.random.default_rng(5)
    expected = [sum(_ids(DataLoader(ds, batch_size=20, shuffle=True, rng=g)), []) for _ in range(2)]
    g = np.random.default_rng(5)
    assert sum(_ids(DataLoader(ds, batch_size=20, shuffle=True, rng=g)), []) == expected[0]
    assert g.permutation(20).tolist() != expected[0]  # the loader advanced the caller's generator
    pd.set_rng_seed(3)
    first = _ids(DataLoader(ds, batch_size=3, shuffle=True))
    pd.set_rng_seed(3)
    assert _ids(DataLoader(ds, batch_size=3, shuffle=True)) == first


def test_no_shuffle_ignores_rng():
    X, y, _ = _data(7)
    assert sum(_ids(DataLoader(TensorDataset(X, y), batch_size=2, rng=1)), []) == list(range(7))


# ----------------------------------------------------------------------------------------------- fast path
@pytest.mark.parametrize("shuffle, drop_last", [(False, False), (True, False), (True, True)])
def test_fast_path_equals_slow_path(shuffle, drop_last):
    ds = TensorDataset(*_data(17))
    fast = list(DataLoader(ds, batch_size=4, shuffle=shuffle, drop_last=drop_last, rng=2))
    slow = list(DataLoader(ds, batch_size=4, shuffle=shuffle, drop_last=drop_last, rng=2,
                           collate_fn=lambda batch: default_collate(batch)))  # not the default: sample by sample
    _assert_same_batches(fast, slow)
    assert len(fast) == (4 if drop_last else 5)


def test_fast_path_through_subsets_equals_slow_path():
    ds = TensorDataset(*_data(30))
    train, _ = random_split(ds, [0.7, 0.3], rng=0)
    inner = Subset(train, list(range(len(train)))[::-1][:15])
    for d in (train, inner):
        fast = list(DataLoader(d, batch_size=4, shuffle=True, rng=9))
        slow = list(DataLoader(d, batch_size=4, shuffle=True, rng=9, collate_fn=lambda b: default_collate(b)))
        _assert_same_batches(fast, slow)
    ids = sum(_ids(DataLoader(inner, batch_size=4)), [])
    assert ids == [train.indices[j] for j in inner.indices]


def test_fast_path_does_not_call_getitem(monkeypatch):
    def per_sample(self, index):
        raise AssertionError("the fast path fetched a sample on its own")

    ds = TensorDataset(*_data(9))
    monkeypatch.setattr(TensorDataset, "__getitem__", per_sample)
    batches = list(DataLoader(ds, batch_size=4, shuffle=True, rng=0))
    assert [len(b[0]) for b in batches] == [4, 4, 1]
    with pytest.raises(AssertionError, match="fetched a sample"):  # the slow path does call it
        list(DataLoader(ds, batch_size=4, collate_fn=lambda b: default_collate(b)))


def test_fast_path_batches_are_copies():
    X = pd.arange(6.0)
    xb, = next(iter(DataLoader(TensorDataset(X), batch_size=3)))
    xb.data[0] = 100.0
    assert X[0].item() == 0.0


def test_subclass_that_changes_getitem_takes_the_slow_path():
    class Doubled(TensorDataset):
        def __getitem__(self, i):
            x, = super().__getitem__(i)
            return (x * 2,)

    batches = list(DataLoader(Doubled(pd.arange(4.0)), batch_size=2))
    assert [b[0].tolist() for b in batches] == [[0.0, 2.0], [4.0, 6.0]]


# ------------------------------------------------------------------------------------------- collate
def test_custom_collate_gets_the_list_of_samples():
    seen = []

    def collate(batch):
        seen.append(batch)
        return len(batch)

    ds = TensorDataset(pd.arange(5.0))
    assert list(DataLoader(ds, batch_size=2, collate_fn=collate)) == [2, 2, 1]
    assert isinstance(seen[0], list) and isinstance(seen[0][0], tuple) and seen[0][1][0].item() == 1.0


class DictData(Dataset):
    def __getitem__(self, i):
        return {"x": np.full(2, float(i)), "label": i % 2, "meta": {"name": f"s{i}", "w": 0.5 * i}}

    def __len__(self):
        return 5


def test_dict_collate():
    b = next(iter(DataLoader(DictData(), batch_size=3)))
    assert list(b) == ["x", "label", "meta"]
    assert b["x"].shape == (3, 2) and b["x"].dtype == np.float64
    assert b["label"].tolist() == [0, 1, 0] and b["label"].dtype == np.int64
    assert b["meta"]["name"] == ["s0", "s1", "s2"]
    np.testing.assert_allclose(b["meta"]["w"].numpy(), [0.0, 0.5, 1.0])


def test_tuple_list_namedtuple_collate():
    t = default_collate([(pd.ones(2), 1, 2.5), (pd.zeros(2), 0, 3.5)])
    assert isinstance(t, tuple) and len(t) == 3
    assert t[0].shape == (2, 2) and t[1].tolist() == [1, 0] and t[2].tolist() == [2.5, 3.5]
    lst = default_collate([[1, 2], [3, 4], [5, 6]])
    assert isinstance(lst, list) and [x.tolist() for x in lst] == [[1, 3, 5], [2, 4, 6]]
    p = default_collate([Point(1.0, np.zeros(3)), Point(2.0, np.ones(3))])
    assert isinstance(p, Point) and p.x.tolist() == [1.0, 2.0] and p.y.shape == (2, 3)
    od = default_collate([OrderedDict(b=1, a=2), OrderedDict(b=3, a=4)])
    assert isinstance(od, OrderedDict) and list(od) == ["b", "a"]


def test_number_collate_dtypes():
    assert default_collate([1, 2, 3]).dtype == np.int64
    assert default_collate([True, False]).dtype == np.bool_
    assert default_collate([1.0, 2.0]).dtype == np.float64
    assert default_collate([np.float32(1), np.float32(2)]).dtype == np.float32
    assert default_collate([np.int16(1), np.int16(2)]).dtype == np.int16
    pd.set_default_dtype(pd.float32)
    assert default_collate([1.0, 2.0]).dtype == np.float32  # Python floats take the default dtype
    pd.set_default_dtype(pd.float64)
    assert default_collate(["a", "b"]) == ["a", "b"]


def test_collate_errors():
    with pytest.raises(ValueError, match=r"one shape.*\(2,\), \(3,\)"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(ValueError, match="stack: all tensors must have one shape"):
        default_collate([pd.zeros(2), pd.zeros(3)])
    with pytest.raises(ValueError, match=r"sample 1 has keys \['x', 'z'\], but sample 0 has \['x', 'y'\]"):
        default_collate([{"x": 1, "y": 2}, {"x": 1, "z": 2}])
    with pytest.raises(ValueError, match="sample 1 has length 3, but sample 0 has length 2"):
        default_collate([(1, 2), (1, 2, 3)])
    with pytest.raises(TypeError, match="must contain tensors, numpy arrays, numbers, dicts or lists; found object"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="found NoneType"):
        default_collate([None])
    with pytest.raises(TypeError, match="found numpy array of dtype object"):
        default_collate([np.array([None]), np.array([None])])
    with pytest.raises(TypeError, match="non-empty list of samples"):
        default_collate([])


# ---------------------------------------------------------------------------------------- batch_size=None
def test_batch_size_none_yields_single_samples():
    ds = TensorDataset(*_data(4))
    loader = DataLoader(ds, batch_size=None)
    samples = list(loader)
    assert len(loader) == 4 and len(samples) == 4
    assert isinstance(samples[0], tuple) and samples[0][0].shape == (3,) and samples[2][1].item() == 2
    assert [s.item() if isinstance(s, pd.Tensor) else s for s in DataLoader(Squares(3), batch_size=None)] == [0, 1, 4]
    arrays = list(DataLoader(np.arange(6.0).reshape(3, 2), batch_size=None))
    assert all(isinstance(a, pd.Tensor) and a.shape == (2,) for a in arrays)  # default_convert makes Tensors
    shuffled = [s[1].item() for s in DataLoader(ds, batch_size=None, shuffle=True, rng=0)]
    assert sorted(shuffled) == [0, 1, 2, 3]


def test_default_convert():
    out = default_convert({"a": np.arange(2), "b": (np.float32(1.5), 3, "s"), "c": [np.zeros(1)]})
    assert isinstance(out["a"], pd.Tensor) and out["a"].dtype == np.int64
    assert isinstance(out["b"], tuple) and out["b"][0].dtype == np.float32 and out["b"][1] == 3
    assert isinstance(out["c"][0], pd.Tensor)
    assert default_convert(np.array(["x"])).dtype.kind == "U"  # string arrays stay arrays


# ------------------------------------------------------------------------------------------------- errors
def test_argument_errors():
    ds = TensorDataset(pd.arange(4.0))
    with pytest.raises(ValueError, match="batch_size must be a positive int or None, got 0"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="got -2"):
        DataLoader(ds, batch_size=-2)
    with pytest.raises(TypeError, match="batch_size must be a positive int or None, got float 2.5"):
        DataLoader(ds, batch_size=2.5)
    with pytest.raises(TypeError, match="got bool True"):
        DataLoader(ds, batch_size=True)
    with pytest.raises(TypeError, match="shuffle=True needs a dataset with a length, and Unsized defines no __len__"):
        DataLoader(Unsized(), shuffle=True)
    with pytest.raises(TypeError, match="shuffle must be True or False, got str 'yes'"):
        DataLoader(ds, shuffle="yes")
    with pytest.raises(ValueError, match="batch_size=None .* cannot be combined with drop_last=True"):
        DataLoader(ds, batch_size=None, drop_last=True)
    with pytest.raises(TypeError, match="collate_fn must be callable, got int"):
        DataLoader(ds, collate_fn=3)
    with pytest.raises(TypeError, match="dataset must support dataset\\[i\\], got int"):
        DataLoader(5)
    with pytest.raises(TypeError, match="rng must be None, an int seed or a numpy.random.Generator"):
        DataLoader(ds, shuffle=True, rng=1.5)
    assert DataLoader(ds, batch_size=np.int64(2)).batch_size == 2


# ------------------------------------------------------------------------------------------- torch parity
def _flatten(x, torch):
    """A comparable form: tensors as (dtype name, array); containers as lists/dicts; the rest as is."""
    if isinstance(x, pd.Tensor):
        return ("tensor", str(x.dtype), x.numpy().tolist())
    if isinstance(x, torch.Tensor):
        return ("tensor", str(x.dtype).removeprefix("torch."), x.numpy().tolist())
    if isinstance(x, dict):
        return {k: _flatten(v, torch) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [type(x).__name__ if hasattr(x, "_fields") else "seq", [_flatten(v, torch) for v in x]]
    return x


def _batches(to_tensor):
    rng = np.random.default_rng(0)
    arrs = [rng.normal(size=(2, 3)) for _ in range(3)]
    return {
        "tensors": [to_tensor(a) for a in arrs],
        "arrays": [a.astype(np.float32) for a in arrs],
        "ints": [3, 1, 4], "floats": [1.5, 2.5, -1.0], "bools": [True, False, True],
        "np scalars": [np.float32(1.5), np.float32(2.0)], "np ints": [np.int32(1), np.int32(7)],
        "strings": ["a", "bc"],
        "tuples": [(to_tensor(a), i, float(i)) for i, a in enumerate(arrs)],
        "dicts": [{"x": a[0], "y": i, "name": f"n{i}", "nested": {"t": to_tensor(a)}} for i, a in enumerate(arrs)],
        "lists": [[i, 2 * i] for i in range(3)],
        "namedtuples": [Point(float(i), a) for i, a in enumerate(arrs)],
    }


def test_default_collate_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    ours = _batches(pd.tensor)
    theirs = _batches(torch.from_numpy)
    for case in ours:
        a = _flatten(default_collate(ours[case]), torch)
        b = _flatten(torch_collate(theirs[case]), torch)
        assert a == b, case


def test_dataloader_matches_torch_batches():
    torch = pytest.importorskip("torch")
    X, y, mask = (t.numpy() for t in _data(11))
    ours = list(DataLoader(TensorDataset(X, y, mask), batch_size=4))
    theirs = list(torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(*(torch.from_numpy(a) for a in (X, y, mask))), batch_size=4))
    assert len(ours) == len(theirs) == 3
    for bo, bt in zip(ours, theirs):
        assert [_flatten(t, torch) for t in bo] == [_flatten(t, torch) for t in bt]


def test_docstring_examples():
    import doctest

    import probdl.data.dataloader
    import probdl.data.dataset

    for module in (probdl.data.dataset, probdl.data.dataloader):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, module.__name__
