"""Predictive and log_likelihood: prior, posterior-sample and guide predictive draws against analytic moments,
site selection, vectorized vs looped draws, per-draw log likelihoods against scipy, and bad input.

Statistical checks compare a sample mean (variance, covariance) with its exact value, with a tolerance of
``Z`` standard errors of that estimate; every test has a fixed seed.
"""
import math
import warnings

import numpy as np
import pytest
from scipy import stats

import probdl as pd
from probdl import distributions as dist
from probdl import nn
from probdl.handlers import mask, scale
from probdl.infer.predictive import Predictive, log_likelihood

Z = 4.0  # standard errors allowed for a Monte Carlo estimate (two-sided p ≈ 6e-5 under the null)
N = 4000


@pytest.fixture(autouse=True)
def _fresh_param_store():
    pd.clear_param_store()
    yield
    pd.clear_param_store()


def assert_mean(draws, mean, var, what=""):
    """The sample mean of i.i.d. ``draws`` is within Z standard errors of ``mean`` (true variance ``var``)."""
    draws = np.asarray(draws)
    se = math.sqrt(var / len(draws))
    assert abs(draws.mean() - mean) < Z * se, f"{what}: mean {draws.mean():.4f}, expected {mean:.4f} ± {Z * se:.4f}"


def assert_var(draws, var, what=""):
    """The sample variance of i.i.d. Normal ``draws`` is within Z standard errors (sqrt(2/(n-1)) var) of ``var``."""
    draws = np.asarray(draws)
    se = var * math.sqrt(2.0 / (len(draws) - 1))
    got = draws.var(ddof=1)
    assert abs(got - var) < Z * se, f"{what}: variance {got:.4f}, expected {var:.4f} ± {Z * se:.4f}"


# ---------------------------------------------------------------------------- models
PRIOR_LOC, PRIOR_SCALE, NOISE = 1.0, 2.0, 0.5


def normal_model(n, y=None):
    """mu ~ N(1, 2²); y_i | mu ~ N(mu, 0.5²) for i < n; a deterministic site 2 mu."""
    mu = pd.sample("mu", dist.Normal(PRIOR_LOC, PRIOR_SCALE))
    pd.deterministic("two_mu", 2 * mu)
    with pd.plate("data", n):
        return pd.sample("y", dist.Normal(mu, NOISE), obs=y)


def conjugate_posterior(y):
    """The exact posterior N(m, s²) of mu in normal_model given data y."""
    prec = 1 / PRIOR_SCALE**2 + len(y) / NOISE**2
    m = (PRIOR_LOC / PRIOR_SCALE**2 + y.sum() / NOISE**2) / prec
    return m, 1 / math.sqrt(prec)


def hand_guide(n, y=None):
    loc = pd.param("q_loc", 1.5)
    sd = pd.param("q_scale", 0.3, constraint=dist.constraints.positive)
    pd.sample("mu", dist.Normal(loc, sd))


# ---------------------------------------------------------------------------- prior predictive
@pytest.mark.parametrize("parallel", [False, True])
def test_prior_predictive_moments(parallel):
    out = Predictive(normal_model, num_samples=N, parallel=parallel)(0, 3)
    assert set(out) == {"mu", "two_mu", "y"}
    assert out["mu"].shape == (N,) and out["y"].shape == (N, 3) and out["two_mu"].shape == (N,)
    mu, y = out["mu"].numpy(), out["y"].numpy()
    assert_mean(mu, PRIOR_LOC, PRIOR_SCALE**2, "mu")
    assert_var(mu, PRIOR_SCALE**2, "mu")
    marginal = PRIOR_SCALE**2 + NOISE**2
    for i in range(3):
        assert_mean(y[:, i], PRIOR_LOC, marginal, f"y[{i}]")
        assert_var(y[:, i], marginal, f"y[{i}]")
    # y[0] and y[1] share mu: their covariance is the prior variance
    c = (y[:, 0] - y[:, 0].mean()) * (y[:, 1] - y[:, 1].mean())
    assert_mean(c, PRIOR_SCALE**2, (marginal**2 + PRIOR_SCALE**4), "cov(y0, y1)")
    np.testing.assert_allclose(out["two_mu"].numpy(), 2 * mu)
    assert not out["y"].requires_grad


def test_prior_predictive_is_reproducible_and_advances_a_generator():
    pred = Predictive(normal_model, num_samples=5)
    a, b = pred(7, 2), pred(7, 2)
    np.testing.assert_array_equal(a["y"].numpy(), b["y"].numpy())
    assert not np.array_equal(pred(8, 2)["y"].numpy(), a["y"].numpy())
    g = np.random.default_rng(7)
    first, second = pred(g, 2), pred(g, 2)
    np.testing.assert_array_equal(first["y"].numpy(), a["y"].numpy())
    assert not np.array_equal(first["y"].numpy(), second["y"].numpy())


def test_prior_predictive_global_generator():
    pd.set_rng_seed(3)
    a = Predictive(normal_model, num_samples=4)(None, 2)
    pd.set_rng_seed(3)
    b = Predictive(normal_model, num_samples=4)(None, 2)
    np.testing.assert_array_equal(a["y"].numpy(), b["y"].numpy())


# ---------------------------------------------------------------------------- posterior predictive
@pytest.mark.parametrize("parallel", [False, True])
def test_posterior_predictive_matches_the_analytic_predictive(parallel):
    rng = np.random.default_rng(1)
    data = rng.normal(0.7, NOISE, size=20)
    m, s = conjugate_posterior(data)
    samples = {"mu": rng.normal(m, s, size=N)}  # exact posterior draws
    out = Predictive(normal_model, samples, parallel=parallel)(2, 2)
    assert set(out) == {"two_mu", "y"}  # mu came from the samples: not returned by default
    np.testing.assert_allclose(out["two_mu"].numpy(), 2 * samples["mu"])
    y = out["y"].numpy()
    for i in range(2):
        assert_mean(y[:, i], m, s**2 + NOISE**2, f"y_new[{i}]")
        assert_var(y[:, i], s**2 + NOISE**2, f"y_new[{i}]")
    # given mu, y_new - mu ~ N(0, noise²) exactly: a check that each draw used its own posterior sample
    resid = y[:, 0] - samples["mu"]
    assert_mean(resid, 0.0, NOISE**2, "y_new - mu")
    assert_var(resid, NOISE**2, "y_new - mu")


def test_posterior_samples_can_be_returned_and_batch_ndims():
    mu = np.arange(6.0).reshape(2, 3)
    out = Predictive(normal_model, {"mu": mu}, batch_ndims=2, return_sites=["mu", "two_mu", "y"])(0, 4)
    assert out["mu"].shape == (2, 3) and out["two_mu"].shape == (2, 3) and out["y"].shape == (2, 3, 4)
    np.testing.assert_array_equal(out["mu"].numpy(), mu)
    np.testing.assert_array_equal(out["two_mu"].numpy(), 2 * mu)


def test_deterministic_and_extra_sites_in_samples_are_ignored():
    """MCMC output carries deterministic sites too: they are recomputed, and names the model lacks are ignored."""
    samples = {"mu": np.array([1.0, 2.0]), "two_mu": np.array([100.0, 100.0]), "not_a_site": np.zeros(2)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = Predictive(normal_model, samples)(0, 1)
    np.testing.assert_array_equal(out["two_mu"].numpy(), [2.0, 4.0])


def test_observed_site_is_returned_only_when_asked():
    data = np.array([0.1, 0.2, 0.3])
    out = Predictive(normal_model, {"mu": np.zeros(4)})(0, 3, data)
    assert set(out) == {"two_mu"}
    out = Predictive(normal_model, {"mu": np.zeros(4)}, return_sites=["y"])(0, 3, data)
    np.testing.assert_array_equal(out["y"].numpy(), np.broadcast_to(data, (4, 3)))
    par = Predictive(normal_model, {"mu": np.zeros(4)}, return_sites=["y"], parallel=True)(0, 3, data)
    np.testing.assert_array_equal(par["y"].numpy(), out["y"].numpy())


def test_empty_posterior_samples_with_num_samples():
    out = Predictive(normal_model, {}, num_samples=3)(0, 2)
    assert out["y"].shape == (3, 2) and out["mu"].shape == (3,)


# ---------------------------------------------------------------------------- guides
@pytest.mark.parametrize("parallel", [False, True])
def test_hand_written_guide(parallel):
    pred = Predictive(normal_model, guide=hand_guide, num_samples=N, parallel=parallel)
    out = pred(0, 2)
    assert set(out) == {"two_mu", "y"}
    y = out["y"].numpy()
    assert_mean(y[:, 0], 1.5, 0.3**2 + NOISE**2, "y from the guide")
    assert_var(y[:, 0], 0.3**2 + NOISE**2, "y from the guide")
    mu = out["two_mu"].numpy() / 2
    assert_mean(mu, 1.5, 0.3**2, "mu from the guide")
    assert_var(mu, 0.3**2, "mu from the guide")


@pytest.mark.parametrize("parallel", [False, True])
def test_guide_params_override_the_param_store(parallel):
    hand_guide(1)  # creates q_loc = 1.5, q_scale = 0.3 in the store
    pred = Predictive(normal_model, guide=hand_guide, params={"q_loc": -2.0, "q_scale": 0.1}, num_samples=N,
                      return_sites=["mu"], parallel=parallel)
    mu = pred(0, 2)["mu"].numpy()
    assert_mean(mu, -2.0, 0.01, "mu with substituted params")
    assert_var(mu, 0.01, "mu with substituted params")
    assert pd.get_param_store()["q_loc"].item() == pytest.approx(1.5)  # the store is untouched


def test_guide_with_plates_and_a_vector_site():
    def model(x, y=None):
        w = pd.sample("w", dist.Normal(pd.zeros(2), 1.0).to_event(1))
        with pd.plate("groups", 3):
            b = pd.sample("b", dist.Normal(0.0, 1.0))
        with pd.plate("data", len(x)):
            mean = pd.deterministic("mean", (x * w).sum(-1) + b.sum(-1, keepdims=True))
            return pd.sample("y", dist.Normal(mean, 1.0), obs=y)

    def guide(x, y=None):
        pd.sample("w", dist.Normal(pd.tensor([1.0, -1.0]), 0.1).to_event(1))
        with pd.plate("groups", 3):
            pd.sample("b", dist.Normal(0.5, 0.1))

    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    n = 1000
    loop = Predictive(model, guide=guide, num_samples=n, return_sites=["w", "b", "mean", "y"])(0, x)
    par = Predictive(model, guide=guide, num_samples=n, return_sites=["w", "b", "mean", "y"], parallel=True)(0, x)
    for out in (loop, par):
        assert out["w"].shape == (n, 2) and out["b"].shape == (n, 3) and out["mean"].shape == (n, 3)
        assert out["y"].shape == (n, 3)
        np.testing.assert_allclose(out["mean"].numpy(), out["w"].numpy() @ x.T + out["b"].numpy().sum(-1)[:, None])
        assert_mean(out["mean"].numpy()[:, 0], 1.0 + 1.5, 0.01 + 3 * 0.01, "mean[0]")
        assert_mean(out["y"].numpy()[:, 2], 0.0 + 1.5, 0.02 + 0.03 + 1.0, "y[2]")


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("name", ["AutoNormal", "AutoMultivariateNormal"])
def test_autoguide(name, parallel):
    autoguide = pytest.importorskip("probdl.infer.autoguide")
    data = np.random.default_rng(0).normal(0.7, NOISE, size=20)
    guide = getattr(autoguide, name)(normal_model)
    guide(20, data)  # creates its parameters
    n = 1500
    out = Predictive(normal_model, guide=guide, num_samples=n, return_sites=["mu", "y"], parallel=parallel)(0, 20)
    assert out["mu"].shape == (n,) and out["y"].shape == (n, 20)
    mu, y = out["mu"].numpy(), out["y"].numpy()
    # q(mu) is Normal: its median and its 16% / 84% quantiles give its mean and standard deviation
    median = float(guide.median(20, data)["mu"].item())
    lo, hi = np.asarray(guide.quantiles([stats.norm.cdf(-1), stats.norm.cdf(1)], 20, data)["mu"]).ravel()
    sd = (hi - lo) / 2
    assert_mean(mu, median, sd**2, f"mu from {name}")
    assert_var(mu, sd**2, f"mu from {name}")
    resid = y[:, 0] - mu
    assert_mean(resid, 0.0, NOISE**2, "y - mu")
    assert_var(resid, NOISE**2, "y - mu")


# ---------------------------------------------------------------------------- parallel vs loop
def test_parallel_equals_loop_on_what_the_samples_determine():
    """Sites that are functions of the posterior draws are identical in both modes; the random ones are drawn in a
    different order (see test_parallel_and_loop_agree_in_distribution)."""
    samples = {"mu": np.linspace(-1, 1, 7)}
    loop = Predictive(normal_model, samples, return_sites=["mu", "two_mu"])(11, 5)
    par = Predictive(normal_model, samples, return_sites=["mu", "two_mu"], parallel=True)(11, 5)
    for name in ("mu", "two_mu"):
        np.testing.assert_array_equal(loop[name].numpy(), par[name].numpy())


def test_parallel_and_loop_agree_in_distribution():
    """With several random sites the draws differ, but both are draws from the same distribution."""
    loop = Predictive(normal_model, num_samples=N)(0, 1)["y"].numpy()[:, 0]
    par = Predictive(normal_model, num_samples=N, parallel=True)(0, 1)["y"].numpy()[:, 0]
    assert not np.array_equal(loop, par)
    var = PRIOR_SCALE**2 + NOISE**2
    diff = loop.mean() - par.mean()
    assert abs(diff) < Z * math.sqrt(2 * var / N)
    assert stats.ks_2samp(loop, par).pvalue > 1e-4


def test_random_module_network():
    net = nn.Linear(3, 2, rng=0)
    bnn = pd.random_module("net", net, dist.Normal(0.0, 1.0))
    x = np.ones((4, 3))

    def model(x):
        out = bnn(pd.tensor(x))
        return pd.deterministic("out", out)

    out = Predictive(model, num_samples=300)(0, x)
    assert out["net.weight"].shape == (300, 2, 3) and out["out"].shape == (300, 4, 2)
    expected = out["net.weight"].numpy().sum(-1)[:, None, :] + out["net.bias"].numpy()[:, None, :]
    np.testing.assert_allclose(out["out"].numpy(), np.broadcast_to(expected, (300, 4, 2)))
    assert_mean(out["out"].numpy()[:, 0, 0], 0.0, 4.0, "prior network output")  # sum of 3 weights + bias


# ---------------------------------------------------------------------------- log_likelihood
def two_site_model(y=None, z=None):
    mu = pd.sample("mu", dist.Normal(0.0, 1.0))
    sigma = pd.sample("sigma", dist.HalfNormal(1.0))
    with pd.plate("data", 3):
        pd.sample("y", dist.Normal(mu, sigma), obs=y)
    pd.sample("z", dist.Poisson(pd.exp(mu)), obs=z)


@pytest.mark.parametrize("parallel", [False, True])
def test_log_likelihood_against_scipy(parallel):
    mu, sigma = np.array([0.0, 0.5, -1.0, 2.0]), np.array([1.0, 0.3, 2.0, 0.7])
    y, z = np.array([0.1, -0.4, 1.3]), 3.0
    ll = log_likelihood(two_site_model, {"mu": mu, "sigma": sigma}, y, z, parallel=parallel)
    assert set(ll) == {"y", "z"}
    assert ll["y"].shape == (4, 3) and ll["z"].shape == (4,)
    np.testing.assert_allclose(ll["y"].numpy(), stats.norm.logpdf(y, mu[:, None], sigma[:, None]), rtol=1e-12)
    np.testing.assert_allclose(ll["z"].numpy(), stats.poisson.logpmf(3, np.exp(mu)), rtol=1e-12)


def test_log_likelihood_batch_ndims_mask_and_scale():
    def model(y):
        mu = pd.sample("mu", dist.Normal(0.0, 1.0))
        with pd.plate("data", 3), scale(scale=10.0), mask(mask=np.array([True, False, True])):
            pd.sample("y", dist.Normal(mu, 1.0), obs=y)

    mu = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    y = np.array([0.5, 1.5, 2.5])
    ll = log_likelihood(model, {"mu": mu}, y, batch_ndims=2)
    assert ll["y"].shape == (3, 2, 3)
    expected = stats.norm.logpdf(y, mu[..., None], 1.0)  # unscaled ...
    expected[..., 1] = 0.0  # ... and zero where masked
    np.testing.assert_allclose(ll["y"].numpy(), expected, rtol=1e-12)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, error, match", [
    ({}, ValueError, "num_samples is required"),
    ({"num_samples": 0}, ValueError, "num_samples must be a positive int"),
    ({"num_samples": 2.5}, ValueError, "num_samples must be a positive int"),
    ({"posterior_samples": {"mu": np.zeros(3)}, "num_samples": 5}, ValueError, "disagrees with the 3 draws"),
    ({"posterior_samples": {"mu": np.zeros(3), "s": np.zeros(4)}}, ValueError, "inconsistent numbers of draws"),
    ({"posterior_samples": {"mu": np.float64(1.0)}}, ValueError, "fewer than batch_ndims"),
    ({"posterior_samples": {"mu": np.zeros((3, 2))}, "batch_ndims": 3}, ValueError, "fewer than batch_ndims"),
    ({"posterior_samples": {"mu": np.array([0.0, np.nan])}}, ValueError, "NaN"),
    ({"posterior_samples": [1.0, 2.0]}, TypeError, "must be a dict"),
    ({"posterior_samples": {}}, ValueError, "posterior_samples is empty"),
    ({"posterior_samples": {"mu": np.zeros(2)}, "batch_ndims": 0}, ValueError, "batch_ndims must be a positive"),
    ({"num_samples": 3, "batch_ndims": 2}, ValueError, "batch_ndims=2 needs posterior_samples"),
    ({"posterior_samples": {"mu": np.zeros(2)}, "guide": hand_guide}, ValueError, "not both"),
    ({"guide": hand_guide}, ValueError, "num_samples is required to draw from the guide"),
    ({"guide": "guide", "num_samples": 2}, TypeError, "guide must be callable"),
    ({"num_samples": 2, "return_sites": "y"}, TypeError, "return_sites must be a list"),
    ({"num_samples": 2, "return_sites": ["y", 3]}, TypeError, "site names"),
    ({"num_samples": 2, "params": [1.0]}, TypeError, "params must be a dict"),
])
def test_bad_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        Predictive(normal_model, **kwargs)


def test_bad_model_rng_and_return_sites():
    with pytest.raises(TypeError, match="model must be callable"):
        Predictive("model", num_samples=2)
    pred = Predictive(normal_model, num_samples=2)
    for rng in ("seed", 1.5, True):
        with pytest.raises(TypeError, match="rng must be"):
            pred(rng, 2)
    for parallel in (False, True):
        with pytest.raises(ValueError, match=r"'yy', not a site of the model; its sites are \['mu', 'two_mu', 'y'\]"):
            Predictive(normal_model, num_samples=2, return_sites=["yy"], parallel=parallel)(0, 2)


def test_non_vectorizable_model_in_parallel_mode():
    def model():
        mu = pd.sample("mu", dist.Normal(0.0, 1.0))
        pd.deterministic("pair", pd.stack([mu, 2 * mu]))  # stacks in front of the draws' dim when vectorized

    assert Predictive(model, num_samples=3)(0)["pair"].shape == (3, 2)
    with pytest.raises(ValueError, match="does not broadcast over a new batch dim.*parallel=False"):
        Predictive(model, num_samples=3, parallel=True)(0)


def test_model_whose_sites_change_between_draws():
    def model():
        mu = pd.sample("mu", dist.Normal(0.0, 1.0))
        if mu.item() > 0:
            pd.sample("pos", dist.Normal(0.0, 1.0))
        else:
            pd.sample("pos", dist.Normal(pd.zeros(2), 1.0).to_event(1))

    with pytest.raises(ValueError, match="site 'pos' has different shapes in different draws"):
        Predictive(model, {"mu": np.array([1.0, -1.0])})(0)


def test_log_likelihood_bad_input():
    with pytest.raises(TypeError, match="model must be callable"):
        log_likelihood(None, {"mu": np.zeros(2)})
    with pytest.raises(TypeError, match="must be a dict"):
        log_likelihood(two_site_model, np.zeros(2))
    with pytest.raises(ValueError, match="posterior_samples is empty"):
        log_likelihood(two_site_model, {})
    with pytest.raises(ValueError, match="inconsistent numbers of draws"):
        log_likelihood(two_site_model, {"mu": np.zeros(2), "sigma": np.ones(3)}, np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="log_likelihood: site 'z'"):
        log_likelihood(two_site_model, {"mu": np.zeros(2), "sigma": np.ones(2)}, np.zeros(3), -1.0)
