"""Bernoulli, Categorical, OneHotCategorical, DiscreteUniform, Poisson, Geometric against scipy.stats, with draws,
enumeration, gradients, devices and bad input."""
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logit

import probdl
import probdl.distributions as dist
from probdl.distributions.discrete import DiscreteUniform, OneHotCategorical
from probdl.testing import gradcheck


@pytest.fixture
def r():
    return np.random.default_rng(7)


def test_bernoulli_from_probs_and_logits(r):
    p = r.uniform(0.05, 0.95, size=(2, 3))
    x = (r.uniform(size=(4, 2, 3)) < 0.5).astype(float)
    for d in (dist.Bernoulli(probs=p), dist.Bernoulli(logits=logit(p))):
        np.testing.assert_allclose(d.log_prob(x).numpy(), st.bernoulli(p).logpmf(x), rtol=1e-10)
        np.testing.assert_allclose(d.entropy().numpy(), st.bernoulli(p).entropy(), rtol=1e-10)
        np.testing.assert_allclose(d.mean.numpy(), p, rtol=1e-12)
        np.testing.assert_allclose(d.variance.numpy(), p * (1 - p), rtol=1e-12)
    draws = dist.Bernoulli(probs=p).sample((20000,), rng=0).numpy()
    assert set(np.unique(draws)) <= {0.0, 1.0}
    assert np.all(np.abs(draws.mean(0) - p) < 5 * np.sqrt(p * (1 - p) / 20000))
    assert dist.Bernoulli(probs=1.0).log_prob(1.0).item() == 0.0  # no 0 * log 0 = NaN at the edges
    e = dist.Bernoulli(probs=p).enumerate_support()
    assert e.shape == (2, 2, 3) and dist.Bernoulli(probs=p).enumerate_support(expand=False).shape == (2, 1, 1)
    gradcheck(lambda q: dist.Bernoulli(probs=q).log_prob(x[0]), [p])
    gradcheck(lambda lg: dist.Bernoulli(logits=lg).log_prob(x[0]), [logit(p)])


def test_categorical(r):
    probs = r.dirichlet(np.ones(4), size=3)
    x = np.array([0, 3, 2])
    for d in (dist.Categorical(probs=probs), dist.Categorical(logits=np.log(probs) + 5.0)):
        np.testing.assert_allclose(d.log_prob(x).numpy(), np.log(probs[np.arange(3), x]), rtol=1e-10)
        np.testing.assert_allclose(d.entropy().numpy(), -(probs * np.log(probs)).sum(-1), rtol=1e-10)
        assert d.batch_shape == (3,) and d.support.check(x).all() and d.mode.tolist() == probs.argmax(-1).tolist()
    d = dist.Categorical(probs=probs)
    assert d.log_prob(np.zeros((5, 3), dtype=int)).shape == (5, 3)
    draws = d.sample((20000,), rng=1).numpy()
    freq = np.stack([np.bincount(draws[:, i], minlength=4) for i in range(3)]) / 20000
    assert np.all(np.abs(freq - probs) < 5 * np.sqrt(probs * (1 - probs) / 20000))
    assert d.enumerate_support().shape == (4, 3) and d.enumerate_support(False).shape == (4, 1)
    assert dist.Categorical(probs=np.array([0.5, 0.5, 0.0])).log_prob(np.array(1)).item() == pytest.approx(np.log(0.5))
    gradcheck(lambda lg: dist.Categorical(logits=lg).log_prob(x), [np.log(probs)])


def test_poisson_and_geometric(r):
    rate = r.uniform(0.5, 5.0, size=3)
    k = r.integers(0, 8, size=(4, 3)).astype(float)
    d = dist.Poisson(rate)
    np.testing.assert_allclose(d.log_prob(k).numpy(), st.poisson(rate).logpmf(k), rtol=1e-10)
    draws = d.sample((20000,), rng=2).numpy()
    assert np.all(np.abs(draws.mean(0) - rate) < 5 * np.sqrt(rate / 20000))
    gradcheck(lambda lam: dist.Poisson(lam).log_prob(k[0]), [rate])
    p = r.uniform(0.1, 0.9, size=3)
    g, ref = dist.Geometric(probs=p), st.geom(p, loc=-1)  # scipy counts trials; ours counts failures
    np.testing.assert_allclose(g.log_prob(k).numpy(), ref.logpmf(k), rtol=1e-10)
    np.testing.assert_allclose(g.mean.numpy(), ref.mean(), rtol=1e-12)
    np.testing.assert_allclose(g.variance.numpy(), ref.var(), rtol=1e-12)
    np.testing.assert_allclose(g.entropy().numpy(), ref.entropy(), rtol=1e-10)
    gd = g.sample((20000,), rng=3).numpy()
    assert gd.min() >= 0 and np.all(np.abs(gd.mean(0) - ref.mean()) < 5 * np.sqrt(ref.var() / 20000))


def test_discrete_validation():
    with pytest.raises(ValueError, match="Bernoulli: give exactly one of probs and logits"):
        dist.Bernoulli()
    with pytest.raises(ValueError, match="Bernoulli: parameter probs must satisfy the constraint unit_interval"):
        dist.Bernoulli(probs=1.5)
    with pytest.raises(ValueError, match="Categorical: parameter probs must satisfy the constraint simplex"):
        dist.Categorical(probs=np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="Poisson: value outside the support nonnegative_integer: got 1.5"):
        dist.Poisson(1.0).log_prob(1.5)
    with pytest.raises(ValueError, match="Categorical: value outside the support integer_interval"):
        dist.Categorical(probs=np.array([0.5, 0.5])).log_prob(np.array(2))


def _chisquare_pvalue(observed_counts, probs):
    """Chi-square of counts in K cells against cell probabilities (every cell expects at least 5 here)."""
    expected = observed_counts.sum() * probs
    assert expected.min() >= 5
    return st.chisquare(observed_counts, expected).pvalue


def test_one_hot_categorical(r):
    probs = r.dirichlet(np.ones(4), size=3)
    idx = np.array([[0, 3, 2], [1, 1, 0]])
    x = np.eye(4)[idx]  # (2, 3, 4)
    for d in (OneHotCategorical(probs=probs), OneHotCategorical(logits=np.log(probs) + 2.0)):
        assert d.batch_shape == (3,) and d.event_shape == (4,)
        np.testing.assert_allclose(d.log_prob(x).numpy(), np.log(probs[np.arange(3), idx]), rtol=1e-10)
        np.testing.assert_allclose(d.log_prob(x).numpy(), st.multinomial(1, probs).logpmf(x), rtol=1e-10)
        np.testing.assert_allclose(d.entropy().numpy(), st.multinomial(1, probs).entropy(), rtol=1e-10)
        np.testing.assert_allclose(d.mean.numpy(), probs, rtol=1e-10)
        np.testing.assert_allclose(d.variance.numpy(), probs * (1 - probs), rtol=1e-10)
        np.testing.assert_array_equal(d.mode.numpy(), np.eye(4)[probs.argmax(-1)])
    d = OneHotCategorical(probs=probs)
    draws = d.sample((20000,), rng=4).numpy()
    assert draws.shape == (20000, 3, 4) and d.support.check(draws).all() and draws.dtype == np.float64
    for i in range(3):
        assert _chisquare_pvalue(draws[:, i].sum(0), probs[i]) > 1e-3
    e = d.enumerate_support()
    assert e.shape == (4, 3, 4) and d.enumerate_support(expand=False).shape == (4, 1, 4)
    np.testing.assert_allclose(d.log_prob(e).numpy(), np.log(probs.T), rtol=1e-10)
    edge = OneHotCategorical(probs=np.array([0.5, 0.5, 0.0]))
    assert edge.log_prob(np.array([0.0, 1.0, 0.0])).item() == pytest.approx(np.log(0.5))
    assert edge.log_prob(np.array([0.0, 0.0, 1.0])).item() == -np.inf
    assert edge.entropy().item() == pytest.approx(np.log(2))
    gradcheck(lambda q: OneHotCategorical(probs=q, validate_args=False).log_prob(x), [probs])  # FD leaves the simplex
    gradcheck(lambda lg: OneHotCategorical(logits=lg).log_prob(x), [np.log(probs)])
    gradcheck(lambda lg: OneHotCategorical(logits=lg).entropy(), [np.log(probs)])


def test_discrete_uniform(r):
    low, high = np.array([0.0, -3.0, 2.0]), np.array([4.0, 3.0, 2.0])
    d, ref = DiscreteUniform(low, high), st.randint(low, high + 1)
    k = np.array([[0.0, -3.0, 2.0], [4.0, 1.0, 2.0]])
    np.testing.assert_allclose(d.log_prob(k).numpy(), ref.logpmf(k), rtol=1e-10)
    with np.errstate(divide="ignore"):  # scipy's kurtosis of the one-point member, computed alongside
        mean, var, entropy = ref.mean(), ref.var(), ref.entropy()
    np.testing.assert_allclose(d.mean.numpy(), mean, rtol=1e-10)
    np.testing.assert_allclose(d.variance.numpy(), var, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(d.entropy().numpy(), entropy, rtol=1e-10, atol=1e-15)
    draws = d.sample((20000,), rng=5).numpy()
    assert draws.shape == (20000, 3) and d.support.check(draws).all()
    for i in range(2):
        cells = np.arange(low[i], high[i] + 1)
        counts = (draws[:, i, None] == cells).sum(0)
        assert _chisquare_pvalue(counts, np.full(len(cells), 1 / len(cells))) > 1e-3
    assert np.all(draws[:, 2] == 2.0)
    assert DiscreteUniform().batch_shape == () and DiscreteUniform().enumerate_support().tolist() == [0.0, 1.0]
    u = DiscreteUniform(np.array([1, 1]), 3)
    assert u.enumerate_support().shape == (3, 2) and u.enumerate_support(expand=False).shape == (3, 1)
    np.testing.assert_allclose(u.log_prob(u.enumerate_support()).numpy(), np.log(1 / 3))
    assert u.log_prob(np.zeros((5, 1), dtype=float) + 2).shape == (5, 2)
    with pytest.raises(ValueError, match="DiscreteUniform: enumerate_support needs the same low and high across "
                                         "the batch"):
        d.enumerate_support()


def test_new_families_bad_input():
    with pytest.raises(ValueError, match="OneHotCategorical: give exactly one of probs and logits"):
        OneHotCategorical()
    with pytest.raises(ValueError, match="OneHotCategorical: parameter probs must satisfy the constraint simplex"):
        OneHotCategorical(probs=np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="OneHotCategorical: the parameter needs a class dim"):
        OneHotCategorical(logits=0.3)
    with pytest.raises(ValueError, match="OneHotCategorical: value outside the support one_hot"):
        OneHotCategorical(probs=np.array([0.5, 0.5])).log_prob(np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="OneHotCategorical: value outside the support one_hot"):
        OneHotCategorical(probs=np.array([0.5, 0.5])).log_prob(np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="DiscreteUniform: low must not exceed high; got low 5.0 > high 3.0 at index"):
        DiscreteUniform(np.array([0, 5]), 3)
    with pytest.raises(ValueError, match="DiscreteUniform: parameter high must be an integer; got 2.5"):
        DiscreteUniform(0, 2.5)
    with pytest.raises(ValueError, match="DiscreteUniform: value outside the support integer_interval"):
        DiscreteUniform(0, 3).log_prob(4.0)
    # with validation off, nothing is checked
    OneHotCategorical(probs=np.array([0.5, 0.6]), validate_args=False).log_prob(np.array([0.5, 0.5]))
    assert DiscreteUniform(0, 3, validate_args=False).log_prob(4.0).item() == pytest.approx(-np.log(4))


def test_on_device(device, r):
    p, probs = r.uniform(0.2, 0.8, size=3), r.dirichlet(np.ones(4), size=3)

    def dev(v):
        return probdl.tensor(v, device=device)

    cases = [
        (lambda t: dist.Bernoulli(probs=t(p)), np.array([0.0, 1.0, 1.0])),
        (lambda t: dist.Poisson(t(p)), np.array([0.0, 1.0, 3.0])),
        (lambda t: dist.Geometric(logits=t(p)), np.array([0.0, 1.0, 3.0])),
        (lambda t: dist.Categorical(probs=t(probs)), np.array([0, 3, 1])),
        (lambda t: OneHotCategorical(logits=t(np.log(probs))), np.eye(4)[[0, 3, 1]]),
        (lambda t: DiscreteUniform(t(np.array([0.0, 1.0, 2.0])), t(np.array([3.0, 3.0, 5.0]))),
         np.array([0.0, 2.0, 5.0])),
    ]
    for make, value in cases:
        d = make(dev)
        lp = d.log_prob(dev(value))
        assert lp.device == probdl.device(device) and d.sample((2,), rng=0).device == probdl.device(device)
        np.testing.assert_allclose(lp.numpy(), make(probdl.tensor).log_prob(value).numpy(), rtol=1e-12)
    assert OneHotCategorical(probs=dev(probs)).enumerate_support().device == probdl.device(device)
