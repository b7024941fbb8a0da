"""Embedding: lookups, gradient accumulation for repeated indices, padding_idx, initialisation, errors,
and PyTorch as an oracle when it is installed."""
import numpy as np
import pytest

import probdl as pd
from probdl.nn.embedding import Embedding, embedding
from probdl.testing import gradcheck


def test_lookup_values_and_shape(rng):
    emb = Embedding(7, 3, rng=0)
    idx = np.array([[0, 6, 2], [2, 2, 5]])
    out = emb(pd.tensor(idx))
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[idx])
    np.testing.assert_array_equal(emb([4, 1]).numpy(), emb.weight.numpy()[[4, 1]])  # lists and arrays work too
    np.testing.assert_array_equal(emb(np.int64(3)).numpy(), emb.weight.numpy()[3])


def test_repeated_indices_accumulate_gradient(rng):
    emb = Embedding(5, 4, rng=1)
    idx = np.array([1, 3, 1, 1, 0, 3])
    probe = rng.normal(size=(6, 4))
    (emb(idx) * pd.tensor(probe)).sum().backward()
    expected = np.zeros((5, 4))
    np.add.at(expected, idx, probe)
    np.testing.assert_allclose(emb.weight.grad.numpy(), expected, rtol=1e-15)


def test_gradcheck(rng):
    idx = np.array([[0, 2], [2, 2], [1, 3]])
    gradcheck(lambda w: embedding(idx, w), [rng.normal(size=(4, 3))], order=2)


@pytest.mark.parametrize("padding_idx", [2, -3])
def test_padding_row_starts_at_zero_and_gets_no_gradient(padding_idx, rng):
    emb = Embedding(5, 3, padding_idx=padding_idx, rng=2)
    assert emb.padding_idx == 2
    np.testing.assert_array_equal(emb.weight.numpy()[2], np.zeros(3))
    assert np.all(np.delete(emb.weight.numpy(), 2, axis=0) != 0)
    emb.weight.data[2] = [1.0, 2.0, 3.0]  # a padding row changed by hand is still looked up as it is
    idx = np.array([0, 2, 4, 2, 0])
    out = emb(idx)
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[idx])
    probe = rng.normal(size=(5, 3))
    (out * pd.tensor(probe)).sum().backward()
    expected = np.zeros((5, 3))
    np.add.at(expected, idx, probe)
    expected[2] = 0
    np.testing.assert_allclose(emb.weight.grad.numpy(), expected, rtol=1e-15)
    assert repr(emb) == "Embedding(5, 3, padding_idx=2)"


def test_init_is_standard_normal():
    w = Embedding(400, 50, rng=3).weight.numpy()
    n = w.size
    assert abs(w.mean()) < 5 / np.sqrt(n)
    assert abs(w.var() - 1) < 5 * np.sqrt(2 / n)
    np.testing.assert_array_equal(Embedding(400, 50, rng=3).weight.numpy(), w)


def test_state_dict_and_from_pretrained(rng):
    assert list(Embedding(3, 2).state_dict()) == ["weight"]
    table = rng.normal(size=(4, 2))
    frozen = Embedding.from_pretrained(pd.tensor(table))
    np.testing.assert_array_equal(frozen([3, 0]).numpy(), table[[3, 0]])
    assert not frozen.weight.requires_grad and not frozen([1]).requires_grad
    trainable = Embedding.from_pretrained(table, freeze=False, padding_idx=0)
    assert trainable.weight.requires_grad and trainable.padding_idx == 0
    np.testing.assert_array_equal(trainable.weight.numpy(), table)  # the given padding row is kept


def test_errors(rng):
    emb = Embedding(4, 2)
    with pytest.raises(IndexError, match=r"index 4 is out of range for 4 embeddings \(valid indices are 0 to 3\)"):
        emb([0, 4])
    with pytest.raises(IndexError, match="index -1 is out of range"):
        emb(np.array([-1, 2]))
    with pytest.raises(TypeError, match="indices must be an integer tensor, got dtype float64"):
        emb(pd.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="indices must be an integer tensor, got dtype bool"):
        emb(np.array([True, False]))
    with pytest.raises(TypeError, match="indices must be integers, got float"):
        emb(1.0)
    with pytest.raises(ValueError, match=r"weight must be 2-D \(num_embeddings, embedding_dim\), got shape \(4,\)"):
        embedding([0], pd.ones(4))
    with pytest.raises(ValueError, match=r"padding_idx must be within num_embeddings \(4\), got 4"):
        Embedding(4, 2, padding_idx=4)
    with pytest.raises(ValueError, match="embedding_dim must be a positive int"):
        Embedding(4, 0)


def test_matches_torch(rng):
    torch = pytest.importorskip("torch")
    ours = Embedding(6, 3, padding_idx=1, rng=4)
    theirs = torch.nn.Embedding(6, 3, padding_idx=1).double()
    theirs.load_state_dict({"weight": torch.from_numpy(ours.weight.numpy().copy())})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    idx = np.array([[1, 0, 5], [0, 0, 1], [3, 2, 5]])
    probe = rng.normal(size=(3, 3, 3))
    yo, yt = ours(idx), theirs(torch.from_numpy(idx))
    (yo * pd.tensor(probe)).sum().backward()
    (yt * torch.from_numpy(probe)).sum().backward()
    np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-10, atol=1e-10)
