"""Every closed-form continuous family against scipy.stats: values, moments, draws, gradients.

One row per family: how to build it, the matching scipy distribution, and values inside its support.
"""
import numpy as np
import pytest
import scipy.stats as st

import probdl.distributions as dist
from probdl.testing import gradcheck


def P(r, *shape):
    return r.uniform(0.5, 2.0, size=shape)


# name, params maker, probdl builder, scipy builder, support sampler
FAMILIES = [
    ("Exponential", lambda r: (P(r, 3),), dist.Exponential, lambda rate: st.expon(scale=1 / rate),
     lambda r, s: r.exponential(size=s)),
    ("Uniform", lambda r: (np.array([-1.0, 0.0, 0.5]), np.array([1.0, 1.0, 3.5])), dist.Uniform,  # all hold [0.5, 1]
     lambda lo, hi: st.uniform(lo, hi - lo), lambda r, s: r.uniform(0.5, 1.0, size=s)),
    ("Laplace", lambda r: (r.normal(size=3), P(r, 3)), dist.Laplace, lambda m, s: st.laplace(m, s),
     lambda r, s: r.normal(size=s) * 2),
    ("Cauchy", lambda r: (r.normal(size=3), P(r, 3)), dist.Cauchy, lambda m, s: st.cauchy(m, s),
     lambda r, s: r.normal(size=s) * 3),
    ("HalfCauchy", lambda r: (P(r, 3),), dist.HalfCauchy, lambda s: st.halfcauchy(scale=s),
     lambda r, s: r.exponential(size=s) * 2),
    ("Logistic", lambda r: (r.normal(size=3), P(r, 3)), dist.Logistic, lambda m, s: st.logistic(m, s),
     lambda r, s: r.normal(size=s) * 2),
    ("Gumbel", lambda r: (r.normal(size=3), P(r, 3)), dist.Gumbel, lambda m, s: st.gumbel_r(m, s),
     lambda r, s: r.normal(size=s) * 2),
    ("HalfNormal", lambda r: (P(r, 3),), dist.HalfNormal, lambda s: st.halfnorm(scale=s),
     lambda r, s: r.exponential(size=s)),
    ("LogNormal", lambda r: (r.normal(size=3) * 0.3, P(r, 3) * 0.5), dist.LogNormal,
     lambda m, s: st.lognorm(s, scale=np.exp(m)), lambda r, s: r.exponential(size=s) + 0.05),
    ("Normal", lambda r: (r.normal(size=3), P(r, 3)), dist.Normal, lambda m, s: st.norm(m, s),
     lambda r, s: r.normal(size=s) * 2),
]
IDS = [f[0] for f in FAMILIES]


@pytest.fixture
def r():
    return np.random.default_rng(2024)


@pytest.mark.parametrize("name,params,make,ref,values", FAMILIES, ids=IDS)
def test_values_against_scipy(name, params, make, ref, values, r):
    p = params(r)
    d, s = make(*p), ref(*p)
    x = values(r, (4, 3))
    np.testing.assert_allclose(d.log_prob(x).numpy(), s.logpdf(x), rtol=1e-10)
    np.testing.assert_allclose(d.cdf(x).numpy(), s.cdf(x), rtol=1e-10, atol=1e-300)
    q = r.uniform(0.02, 0.98, size=(4, 3))
    np.testing.assert_allclose(d.icdf(q).numpy(), s.ppf(q), rtol=1e-10)
    np.testing.assert_allclose(d.entropy().numpy(), s.entropy(), rtol=1e-10)
    if np.all(np.isfinite(s.mean())):
        np.testing.assert_allclose(d.mean.numpy(), s.mean(), rtol=1e-10)
    if np.all(np.isfinite(s.var())):
        np.testing.assert_allclose(d.variance.numpy(), s.var(), rtol=1e-10)
    assert d.batch_shape == (3,) and d.sample((2,), rng=0).shape == (2, 3)


@pytest.mark.parametrize("name,params,make,ref,values", FAMILIES, ids=IDS)
def test_draws_follow_the_distribution(name, params, make, ref, values, r):
    p = params(r)
    d, s = make(*p), ref(*p)
    x = d.sample((20000,), rng=1).numpy()
    assert d.support.check(x).all()
    # Kolmogorov-Smirnov on each batch member; with a fixed seed, p > 1e-3 fails only if the sampler is wrong.
    assert min(st.kstest(x[:, i], ref(*(q[i] for q in p)).cdf).pvalue for i in range(3)) > 1e-3
    if np.all(np.isfinite(s.var())):
        assert np.all(np.abs(x.mean(0) - s.mean()) < 5 * np.sqrt(s.var() / 20000))


@pytest.mark.parametrize("name,params,make,ref,values", FAMILIES, ids=IDS)
def test_log_prob_and_rsample_gradients(name, params, make, ref, values, r):
    p = params(r)
    x = values(r, (3,))
    gradcheck(lambda *a: make(*a).log_prob(x), list(p))
    gradcheck(lambda *a: make(*a).rsample((2,), rng=5), list(p))  # a fixed rng makes rsample a smooth map


def test_parameter_and_support_validation():
    with pytest.raises(ValueError, match="Exponential: parameter rate must satisfy the constraint positive"):
        dist.Exponential(np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="Uniform: parameter low must be below high"):
        dist.Uniform(1.0, 1.0)
    with pytest.raises(ValueError, match="HalfNormal: value outside the support nonnegative: got -1.0"):
        dist.HalfNormal(1.0).log_prob(-1.0)
    with pytest.raises(ValueError, match="LogNormal: value outside the support positive"):
        dist.LogNormal(0.0, 1.0).log_prob(np.array([1.0, 0.0]))
