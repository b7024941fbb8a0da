"""Bernoulli, Categorical, Poisson, Geometric against scipy.stats, with draws, enumeration and gradients."""
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logit

import probdl.distributions as dist
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
