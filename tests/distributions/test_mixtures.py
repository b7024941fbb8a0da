"""MixtureSameFamily and MixtureGeneral against hand-computed mixture densities, with draws, gradients,
shapes and validation."""
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logsumexp

import probdl as pd
import probdl.distributions as dist
from probdl.distributions.mixtures import MixtureGeneral, MixtureSameFamily
from probdl.testing import gradcheck


@pytest.fixture
def r():
    return np.random.default_rng(7)


def normal_mixture(r):
    """A batch of 2 mixtures of 3 Normals."""
    w = r.dirichlet(np.ones(3), size=2)
    loc, scale = r.normal(size=(2, 3)) * 2, r.uniform(0.5, 1.5, size=(2, 3))
    return w, loc, scale, MixtureSameFamily(dist.Categorical(probs=w), dist.Normal(loc, scale))


def test_normal_mixture_density_cdf_and_moments(r):
    w, loc, scale, d = normal_mixture(r)
    assert d.batch_shape == (2,) and d.event_shape == () and d.mixture_size == 3 and not d.has_rsample
    x = r.normal(size=(4, 2)) * 2
    ref = st.norm(loc, scale)
    np.testing.assert_allclose(d.log_prob(x).numpy(), logsumexp(np.log(w) + ref.logpdf(x[..., None]), -1), rtol=1e-12)
    np.testing.assert_allclose(d.cdf(x).numpy(), (w * ref.cdf(x[..., None])).sum(-1), rtol=1e-12)
    mean = (w * loc).sum(-1)
    np.testing.assert_allclose(d.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(d.variance.numpy(), (w * (scale ** 2 + loc ** 2)).sum(-1) - mean ** 2, rtol=1e-12)


def test_normal_mixture_draws(r):
    w, loc, scale, d = normal_mixture(r)
    n = 100_000
    x = d.sample((n,), rng=1).numpy()
    assert x.shape == (n, 2)
    mean, var = d.mean.numpy(), d.variance.numpy()
    assert np.all(np.abs(x.mean(0) - mean) < 5 * np.sqrt(var / n))
    fourth = (w * st.norm(loc - mean[:, None], scale).moment(4)).sum(-1)  # E(X - μ)⁴ for the SE of the variance
    assert np.all(np.abs(x.var(0) - var) < 5 * np.sqrt((fourth - var ** 2) / n))
    for b in range(2):
        cdf = lambda v, b=b: (w[b] * st.norm(loc[b], scale[b]).cdf(np.asarray(v)[..., None])).sum(-1)
        assert st.kstest(x[:20000, b], cdf).pvalue > 1e-3


def test_mixture_of_vector_components(r):
    """Components Independent Normals with events of 2: log p(x) = logsumexp_k(log w_k + Σ_d log N(x_d))."""
    w = r.dirichlet(np.ones(3))
    loc, scale = r.normal(size=(4, 3, 2)), r.uniform(0.5, 1.5, size=(4, 3, 2))
    d = MixtureSameFamily(dist.Categorical(probs=w), dist.Normal(loc, scale).to_event(1))
    assert d.batch_shape == (4,) and d.event_shape == (2,) and d.support.event_dim == 1
    x = r.normal(size=(5, 4, 2))
    expected = logsumexp(np.log(w) + st.norm(loc, scale).logpdf(x[:, :, None, :]).sum(-1), -1)
    np.testing.assert_allclose(d.log_prob(x).numpy(), expected, rtol=1e-12)
    mean = (w[:, None] * loc).sum(-2)
    np.testing.assert_allclose(d.mean.numpy(), mean, rtol=1e-12)
    var = (w[:, None] * (scale ** 2 + loc ** 2)).sum(-2) - mean ** 2
    np.testing.assert_allclose(d.variance.numpy(), var, rtol=1e-12)
    n = 40_000
    draws = d.sample((n,), rng=2).numpy()
    assert draws.shape == (n, 4, 2)
    assert np.all(np.abs(draws.mean(0) - mean) < 5 * np.sqrt(var / n))
    # Both coordinates of a draw come from the same component: their covariance is that of the component means.
    cov = (w * (loc[0, :, 0] - mean[0, 0]) * (loc[0, :, 1] - mean[0, 1])).sum()
    prod = (draws[:, 0, 0] - mean[0, 0]) * (draws[:, 0, 1] - mean[0, 1])
    assert abs(prod.mean() - cov) < 5 * prod.std() / np.sqrt(n)


def test_mixture_gradients(r):
    logits, loc, scale = r.normal(size=(2, 3)), r.normal(size=(2, 3)), r.uniform(0.5, 1.5, size=(2, 3))
    x = r.normal(size=(4, 2))
    gradcheck(lambda lg, m, s: MixtureSameFamily(dist.Categorical(logits=lg), dist.Normal(m, s)).log_prob(x),
              [logits, loc, scale])
    gradcheck(lambda lg, m, s: MixtureSameFamily(dist.Categorical(logits=lg), dist.Normal(m, s)).variance,
              [logits, loc, scale])
    gradcheck(lambda lg, m: MixtureGeneral(dist.Categorical(logits=lg), [dist.Normal(m, 1.0), dist.Laplace(0.0, 2.0)]
                                           ).log_prob(x[:, 0]), [r.normal(size=2), np.array(0.3)])


def test_mixture_shapes_and_broadcasting(r):
    # Mixing weights shared across a batch of component sets.
    d = MixtureSameFamily(dist.Categorical(probs=np.array([0.3, 0.7])), dist.Normal(np.zeros((4, 2)), 1.0))
    assert d.batch_shape == (4,) and d.sample((3,), rng=0).shape == (3, 4) and d.log_prob(0.0).shape == (4,)
    # One set of components, a batch of mixing weights.
    d = MixtureSameFamily(dist.Categorical(probs=r.dirichlet(np.ones(2), size=5)), dist.Normal(np.zeros(2), 1.0))
    assert d.batch_shape == (5,) and d.sample((3,), rng=0).shape == (3, 5) and d.mean.shape == (5,)
    e = d.expand((2, 5))
    assert e.batch_shape == (2, 5) and e.sample((3,), rng=0).shape == (3, 2, 5) and e.log_prob(0.0).shape == (2, 5)
    assert d.to_event(1).log_prob(np.zeros(5)).shape == ()
    g = MixtureGeneral(dist.Categorical(probs=np.array([0.5, 0.5])),
                       [dist.Normal(np.zeros(3), 1.0), dist.Cauchy(0.0, 1.0)])
    assert g.batch_shape == (3,) and g.sample((2,), rng=0).shape == (2, 3)
    assert g.log_prob(np.zeros((2, 1))).shape == (2, 3)
    assert np.all(np.isnan(g.mean.numpy())) and np.all(np.isnan(g.variance.numpy()))  # a Cauchy has no moments


def test_mixture_general_of_different_families(r):
    w = np.array([0.2, 0.5, 0.3])
    comps = [dist.Normal(-1.0, 0.5), dist.Laplace(1.0, 0.7), dist.Exponential(0.8)]
    d = MixtureGeneral(dist.Categorical(probs=w), comps, support=dist.constraints.real)
    refs = [st.norm(-1.0, 0.5), st.laplace(1.0, 0.7), st.expon(scale=1 / 0.8)]
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    pdf = sum(wk * rk.pdf(x) for wk, rk in zip(w, refs))
    np.testing.assert_allclose(d.log_prob(x).numpy(), np.log(pdf), rtol=1e-12)
    np.testing.assert_allclose(d.cdf(x).numpy(), sum(wk * rk.cdf(x) for wk, rk in zip(w, refs)), rtol=1e-12)
    mean = sum(wk * rk.mean() for wk, rk in zip(w, refs))
    var = sum(wk * (rk.var() + rk.mean() ** 2) for wk, rk in zip(w, refs)) - mean ** 2
    np.testing.assert_allclose(d.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(d.variance.numpy(), var, rtol=1e-12)
    n = 50_000
    draws = d.sample((n,), rng=3).numpy()
    assert abs(draws.mean() - mean) < 5 * np.sqrt(var / n)
    assert st.kstest(draws, lambda v: sum(wk * rk.cdf(v) for wk, rk in zip(w, refs))).pvalue > 1e-3
    # Outside one component's support the others still count; outside all of them the value is invalid.
    assert np.isfinite(d.log_prob(-3.0).item())
    same = MixtureGeneral(dist.Categorical(probs=w[:2] / w[:2].sum()), comps[:2])
    assert repr(same.support) == "real"


def test_mixture_bad_input():
    cat = dist.Categorical(probs=np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="MixtureSameFamily: the mixing distribution has 2 categories but there are 3"):
        MixtureSameFamily(cat, dist.Normal(np.zeros(3), 1.0))
    with pytest.raises(TypeError, match="MixtureSameFamily: mixing_distribution must be a Categorical, got Normal"):
        MixtureSameFamily(dist.Normal(0.0, 1.0), dist.Normal(np.zeros(2), 1.0))
    with pytest.raises(ValueError, match="needs a batch dim indexing the components"):
        MixtureSameFamily(cat, dist.Normal(0.0, 1.0))
    with pytest.raises(ValueError, match="shape \\(3,\\) does not broadcast with the components' batch shape \\(4,\\)"):
        MixtureSameFamily(dist.Categorical(probs=np.full((3, 2), 0.5)), dist.Normal(np.zeros((4, 2)), 1.0))
    with pytest.raises(ValueError, match="MixtureGeneral: the components have different supports"):
        MixtureGeneral(cat, [dist.Normal(0.0, 1.0), dist.Exponential(1.0)])
    with pytest.raises(ValueError, match="must share one event shape"):
        MixtureGeneral(cat, [dist.Normal(0.0, 1.0), dist.Normal(np.zeros(2), 1.0).to_event(1)])
    with pytest.raises(ValueError, match="MixtureGeneral: the mixing distribution has 2 categories but there are 3"):
        MixtureGeneral(cat, [dist.Normal(0.0, 1.0)] * 3)
    with pytest.raises(TypeError, match="non-empty list of Distributions"):
        MixtureGeneral(cat, [])
    positive = MixtureGeneral(cat, [dist.Exponential(1.0), dist.HalfNormal(1.0)])
    with pytest.raises(ValueError, match="MixtureGeneral: value outside the support nonnegative: got -1.0"):
        positive.log_prob(np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="MixtureSameFamily: value outside the support nonnegative"):
        MixtureSameFamily(cat, dist.Exponential(np.ones(2))).log_prob(-1.0)
    free = MixtureGeneral(cat, [dist.Exponential(1.0), dist.HalfNormal(1.0)], validate_args=False)
    assert free.log_prob(-1.0).item() == -np.inf


def test_mixture_of_uniforms_with_different_supports():
    """Each component's density is 0 outside its own interval; the mixture's support is their union."""
    cat = dist.Categorical(probs=np.array([0.25, 0.75]))
    d = MixtureSameFamily(cat, dist.Uniform(np.array([0.0, 2.0]), np.array([1.0, 4.0])))
    np.testing.assert_allclose(d.log_prob(np.array([0.5, 3.0])).numpy(), np.log([0.25, 0.75 / 2]), rtol=1e-14)
    with pytest.raises(ValueError, match="MixtureSameFamily: value outside the support"):
        d.log_prob(1.5)
    x = d.sample((20000,), rng=4).numpy()
    assert abs((x < 1).mean() - 0.25) < 5 * np.sqrt(0.25 * 0.75 / 20000)


def test_mixture_log_prob_on_device(device, r):
    w, loc, scale, cpu = normal_mixture(r)
    on = MixtureSameFamily(dist.Categorical(probs=pd.tensor(w, device=device)),
                           dist.Normal(pd.tensor(loc, device=device), pd.tensor(scale, device=device)))
    x = r.normal(size=(3, 2))
    np.testing.assert_allclose(on.log_prob(pd.tensor(x, device=device)).numpy(), cpu.log_prob(x).numpy(), rtol=1e-12)
    np.testing.assert_allclose(on.variance.numpy(), cpu.variance.numpy(), rtol=1e-12)
