"""Dropout: mask statistics for fixed seeds, scaling, train/eval, gradients and errors."""
import numpy as np
import pytest

import probdl as pd
from probdl.nn.dropout import Dropout, dropout
from probdl.testing import gradcheck


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_fraction_zeroed_and_mean_within_five_sigma(p):
    n = 200_000
    out = dropout(pd.ones(n), p, rng=2024).numpy()
    zeroed = np.mean(out == 0)
    assert abs(zeroed - p) < 5 * np.sqrt(p * (1 - p) / n)
    # Each output is 0 or 1/(1-p): mean 1, variance p/(1-p).
    assert abs(out.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)
    np.testing.assert_allclose(np.unique(out), [0.0, 1.0 / (1 - p)], rtol=1e-15)


def test_kept_elements_are_scaled_and_gradient_is_the_mask(rng):
    x = pd.tensor(rng.normal(size=(50, 40)), requires_grad=True)
    out = dropout(x, 0.3, rng=5)
    kept = out.numpy() != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(out.numpy()[kept], x.numpy()[kept] / 0.7, rtol=1e-15)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.7, rtol=1e-15)


def test_gradcheck_with_a_fixed_mask(rng):
    # An int seed gives the same mask on every call, so finite differences see one function.
    gradcheck(lambda x: dropout(x, 0.4, rng=11), [rng.normal(size=(4, 5))], order=2)


def test_identity_when_not_training_or_p_zero(rng):
    x = pd.tensor(rng.normal(size=(3, 4)))
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    m = Dropout(0.5).eval()
    assert m(x) is x


def test_p_one_gives_zeros_and_zero_gradient(rng):
    x = pd.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    out = dropout(x, 1.0)
    np.testing.assert_array_equal(out.numpy(), np.zeros((3, 4)))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 4)))


def test_randomness_comes_from_the_given_or_global_generator():
    x = pd.ones(1000)
    pd.set_rng_seed(3)
    a = dropout(x, 0.5).numpy()
    b = dropout(x, 0.5).numpy()
    pd.set_rng_seed(3)
    np.testing.assert_array_equal(dropout(x, 0.5).numpy(), a)
    assert not np.array_equal(a, b)
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    np.testing.assert_array_equal(dropout(x, 0.5, rng=g1).numpy(), dropout(x, 0.5, rng=g2).numpy())


def test_module_follows_training_mode_and_owns_its_generator():
    x = pd.ones(2000)
    m = Dropout(0.25, rng=1)
    first, second = m(x).numpy(), m(x).numpy()
    assert not np.array_equal(first, second)  # the module's generator moves on
    np.testing.assert_array_equal(Dropout(0.25, rng=1)(x).numpy(), first)  # and is reproducible
    assert np.any(first == 0)
    np.testing.assert_array_equal(m.eval()(x).numpy(), np.ones(2000))
    assert np.any(m.train()(x).numpy() == 0)
    assert repr(m) == "Dropout(p=0.25)"
    assert list(m.state_dict()) == []


def test_float32_stays_float32():
    assert dropout(pd.ones(10, dtype=pd.float32), 0.5).dtype == np.float32


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", True, None])
def test_bad_p(p):
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        dropout(pd.ones(3), p)
    with pytest.raises(ValueError, match="Dropout: dropout probability has to be between 0 and 1"):
        Dropout(p)


def test_integer_input_is_an_error():
    with pytest.raises(TypeError, match="dropout: expected a floating input, got dtype int64"):
        dropout(pd.tensor([1, 2, 3]), 0.5)
