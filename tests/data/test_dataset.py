"""Dataset, TensorDataset, Subset, ConcatDataset and random_split."""
import numpy as np
import pytest
from datasets_for_tests import Squares

import probdl as pd
from probdl.data import ConcatDataset, Dataset, Subset, TensorDataset, random_split


def _xy(n=6):
    X = pd.tensor(np.arange(2.0 * n).reshape(n, 2))
    y = pd.tensor(np.arange(n) % 3)
    return X, y


# ----------------------------------------------------------------------------------------------- Dataset
def test_dataset_base_is_abstract():
    with pytest.raises(NotImplementedError, match="must define __getitem__"):
        Dataset()[0]
    with pytest.raises(TypeError, match="does not define __len__"):
        len(Dataset())


def test_dataset_add_gives_concat():
    both = Squares(3) + Squares(2)
    assert isinstance(both, ConcatDataset)
    assert [both[i] for i in range(len(both))] == [0, 1, 4, 0, 1]


# ------------------------------------------------------------------------------------------ TensorDataset
def test_tensor_dataset_len_and_indexing():
    X, y = _xy()
    ds = TensorDataset(X, y)
    assert len(ds) == 6
    x3, y3 = ds[3]
    assert isinstance(x3, pd.Tensor) and isinstance(y3, pd.Tensor)
    np.testing.assert_array_equal(x3.numpy(), [6.0, 7.0])
    assert y3.item() == 0 and y3.dtype == np.int64
    xl, yl = ds[-1]
    np.testing.assert_array_equal(xl.numpy(), [10.0, 11.0])
    xs, ys = ds[[0, 2]]
    assert xs.shape == (2, 2)
    np.testing.assert_array_equal(ys.numpy(), [0, 2])
    assert ds.tensors[0] is X


def test_tensor_dataset_single_tensor_gives_one_tuple():
    ds = TensorDataset(pd.arange(4.0))
    sample = ds[1]
    assert isinstance(sample, tuple) and len(sample) == 1 and sample[0].item() == 1.0


def test_tensor_dataset_accepts_arrays_and_keeps_dtype():
    a = np.arange(5, dtype=np.float32)
    b = np.array([True, False, True, True, False])
    ds = TensorDataset(a, b)
    x, m = ds[0]
    assert isinstance(x, pd.Tensor) and x.dtype == np.float32
    assert m.dtype == np.bool_ and bool(m)


def test_tensor_dataset_out_of_range():
    ds = TensorDataset(*_xy())
    with pytest.raises(IndexError):
        ds[6]


def test_tensor_dataset_size_mismatch_names_the_shapes():
    with pytest.raises(ValueError, match=r"same size in the first dimension.*\(5, 2\), \(4,\)"):
        TensorDataset(pd.zeros(5, 2), pd.zeros(4))


def test_tensor_dataset_bad_arguments():
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()
    with pytest.raises(ValueError, match="argument 1 is 0-dimensional"):
        TensorDataset(pd.zeros(3), pd.tensor(1.0))
    with pytest.raises(TypeError, match="argument 0 .* not a tensor or array"):
        TensorDataset(["a", "b"])


# ----------------------------------------------------------------------------------------------- Subset
def test_subset_indexing_and_len():
    sub = Subset(Squares(10), [7, 2, 2, 9])
    assert len(sub) == 4
    assert [sub[i] for i in range(4)] == [49, 4, 4, 81]
    assert sub[-1] == 81


def test_subset_of_tensor_dataset_and_array_indices():
    ds = TensorDataset(*_xy())
    sub = Subset(ds, np.array([5, 1]))
    x, y = sub[0]
    np.testing.assert_array_equal(x.numpy(), [10.0, 11.0])
    assert y.item() == 2
    xs, ys = sub[[1, 0]]  # a list of positions: one lookup of the mapped rows
    assert xs.shape == (2, 2) and ys.tolist() == [1, 2]


def test_subset_bad_indices():
    with pytest.raises(TypeError, match="indices must be a sequence of ints"):
        Subset(Squares(3), [0, 1.5])
    with pytest.raises(TypeError, match="1-d sequence of ints"):
        Subset(Squares(3), np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="dataset must be indexable"):
        Subset(42, [0])


# ---------------------------------------------------------------------------------------- ConcatDataset
def test_concat_dataset_indexes_across_boundaries():
    cat = ConcatDataset([Squares(3), Squares(0), Squares(2)])
    assert len(cat) == 5
    assert cat.cumulative_sizes == [3, 3, 5]
    assert [cat[i] for i in range(5)] == [0, 1, 4, 0, 1]
    assert cat[-1] == 1 and cat[-5] == 0 and cat[np.int64(3)] == 0


def test_concat_dataset_errors():
    cat = ConcatDataset([Squares(3), Squares(2)])
    with pytest.raises(IndexError, match="index 5 is out of range for length 5"):
        cat[5]
    with pytest.raises(IndexError, match="index -6 is out of range"):
        cat[-6]
    with pytest.raises(TypeError, match="indices must be integers"):
        cat[1.0]
    with pytest.raises(ValueError, match="empty iterable"):
        ConcatDataset([])
    with pytest.raises(TypeError, match="dataset 1 .* has no length"):
        ConcatDataset([Squares(2), Dataset()])


def test_concat_of_tensor_datasets_and_chained_add():
    a, b = TensorDataset(pd.arange(3.0)), TensorDataset(pd.arange(10.0, 12.0))
    cat = a + b + a
    assert len(cat) == 8
    assert [cat[i][0].item() for i in range(8)] == [0.0, 1.0, 2.0, 10.0, 11.0, 0.0, 1.0, 2.0]


# ------------------------------------------------------------------------------------------ random_split
def _check_partition(splits, n):
    seen = [i for s in splits for i in s.indices]
    assert sorted(seen) == list(range(n))  # disjoint and covering


def test_random_split_counts_are_disjoint_and_cover():
    ds = Squares(20)
    splits = random_split(ds, [5, 0, 15], rng=0)
    assert [len(s) for s in splits] == [5, 0, 15]
    assert all(isinstance(s, Subset) and s.dataset is ds for s in splits)
    _check_partition(splits, 20)
    assert splits[0].indices != list(range(5))  # shuffled, not a plain slice (probability 1 - 1/C(20, 5))
    assert [splits[2][i] for i in range(3)] == [ds[j] for j in splits[2].indices[:3]]


def test_random_split_reproducible():
    ds = Squares(50)
    a = [s.indices for s in random_split(ds, [10, 40], rng=3)]
    b = [s.indices for s in random_split(ds, [10, 40], rng=3)]
    c = [s.indices for s in random_split(ds, [10, 40], rng=4)]
    d = [s.indices for s in random_split(ds, [10, 40], rng=np.random.default_rng(3))]
    assert a == b == d
    assert a != c
    pd.set_rng_seed(11)
    e = [s.indices for s in random_split(ds, [10, 40])]
    pd.set_rng_seed(11)
    f = [s.indices for s in random_split(ds, [10, 40])]
    assert e == f


def test_random_split_generator_advances():
    g = np.random.default_rng(0)
    first = random_split(Squares(30), [15, 15], rng=g)[0].indices
    second = random_split(Squares(30), [15, 15], rng=g)[0].indices
    assert first != second


@pytest.mark.parametrize("n, fracs, expected", [
    (10, [0.8, 0.2], [8, 2]),
    (11, [0.3, 0.3, 0.4], [4, 3, 4]),      # floors 3, 3, 4 sum to 10; the one left goes to the first
    (7, [0.5, 0.5], [4, 3]),
    (10, [0.1] * 10, [1] * 10),            # the fractions sum to 0.9999999999999999
    (5, [1 / 3, 1 / 3, 1 / 3], [2, 2, 1]),
])
def test_random_split_fractions(n, fracs, expected):
    splits = random_split(Squares(n), fracs, rng=0)
    assert [len(s) for s in splits] == expected
    _check_partition(splits, n)


@pytest.mark.filterwarnings("ignore::UserWarning")  # both libraries warn about the empty splits of n = 1
def test_random_split_fractions_match_torch():
    torch = pytest.importorskip("torch")
    for n in (1, 7, 10, 11, 101):
        for fracs in ([0.8, 0.2], [0.3, 0.3, 0.4], [0.25] * 4, [1 / 3] * 3, [0.05, 0.95]):
            ours = [len(s) for s in random_split(Squares(n), fracs, rng=0)]
            theirs = [len(s) for s in torch.utils.data.random_split(range(n), fracs)]
            assert ours == theirs, (n, fracs)


def test_random_split_zero_length_fraction_warns():
    with pytest.warns(UserWarning) as record:
        splits = random_split(Squares(2), [0.6, 0.2, 0.2], rng=0)
    assert [len(s) for s in splits] == [2, 0, 0]  # floors 1, 0, 0; the one left goes to the first
    assert [str(w.message) for w in record] == [f"random_split: split {i} has length 0; it is an empty dataset"
                                                for i in (1, 2)]


def test_random_split_errors():
    with pytest.raises(ValueError, match=r"lengths \[3, 3\] sum to 6, but the dataset has 5 samples"):
        random_split(Squares(5), [3, 3])
    with pytest.raises(ValueError, match="must be non-negative"):
        random_split(Squares(5), [6, -1])
    with pytest.raises(ValueError, match="fraction at index 1 is 1.5"):
        random_split(Squares(5), [0.5, 1.5])
    with pytest.raises(ValueError, match="sum to 0.8, not 1"):
        random_split(Squares(5), [0.5, 0.3])
    with pytest.raises(TypeError, match="non-empty list"):
        random_split(Squares(5), [])
    with pytest.raises(TypeError, match="ints or fractions"):
        random_split(Squares(5), [0.5, "half"])
    with pytest.raises(TypeError, match="has no length"):
        random_split(Dataset(), [1])
    with pytest.raises(TypeError, match="rng must be None, an int seed or a numpy.random.Generator"):
        random_split(Squares(5), [5], rng="seed")
