"""Automatic guides (probdl.infer.autoguide): sites, supports and densities, fits against analytic posteriors.

Fits with stochastic gradients are judged by the theory of averaged SGD iterates (Polyak & Juditsky 1992):
after a warm-up, T more plain-SGD steps are taken and the unconstrained parameters are averaged. On a
quadratic objective with Hessian H and per-step gradient noise covariance S, the average of T stationary
iterates has covariance H⁻¹ S H⁻¹ / T whatever the step size. For a Gaussian target p and a Gaussian guide at
the optimum, the reparameterized ELBO gradient from K particles has, for the location, S = P/K and H = P
(P the posterior precision), so the averaged location has covariance Σ/(K T): each coordinate is off by
sd_i / √(K T) in standard error. For a log-scale coordinate S = 2/K and H = 2, so the scale's relative error
has standard error 1/√(2 K T), and a covariance entry Σ_ij (quadratic in the factor) about
√(2/(K T)) √(Σ_ii Σ_jj). Tolerances are 5 such standard errors.
"""
import math

import numpy as np
import pytest
from scipy import stats

import probdl
import probdl.distributions as dist
from probdl.distributions import constraints
from probdl.distributions.transforms import transform_to
from probdl.handlers import seed, substitute, trace
from probdl.infer.autoguide import (
    AutoDelta,
    AutoDiagonalNormal,
    AutoLaplaceApproximation,
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
    AutoNormal,
)
from probdl.infer.elbo import Trace_ELBO, TraceMeanField_ELBO, get_importance_trace
from probdl.infer.initialization import init_to_value
from probdl.infer.svi import SVI
from probdl.optim import SGD, Adam

ALL_GUIDES = [AutoDelta, AutoNormal, AutoDiagonalNormal, AutoMultivariateNormal, AutoLowRankMultivariateNormal,
              AutoLaplaceApproximation]
FLAT_GUIDES = [AutoDiagonalNormal, AutoMultivariateNormal, AutoLowRankMultivariateNormal, AutoLaplaceApproximation]


@pytest.fixture(autouse=True)
def _clean_store():
    probdl.clear_param_store()
    yield
    probdl.clear_param_store()


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """These fits make thousands of LAPACK calls on 2×2 to 13×13 matrices, where extra BLAS threads are pure
    overhead (ten times slower on a busy two-core machine); threadpoolctl comes with scikit-learn (the test extra)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(1):
        yield


def store_value(name):
    """A copy of the constrained value of parameter ``name`` (for a real parameter the store hands out the leaf
    itself, which the optimizer updates in place)."""
    with probdl.no_grad():
        return np.array(probdl.get_param_store()[name].numpy(), copy=True)


def fit_and_average(model, guide, args, *, warmup=300, burn=100, average=600, lr=0.05, particles=16, rng_seed=0):
    """Adam for ``warmup`` steps, then plain SGD (step ``lr``): ``burn`` steps, then the mean of the unconstrained
    parameters over ``average`` more steps, returned constrained, by name (see the module docstring)."""
    elbo = Trace_ELBO(num_particles=particles, vectorize_particles=True)
    SVI(model, guide, Adam(lr=lr), elbo, rng_seed=rng_seed).run(warmup, *args, progress_bar=False)
    svi = SVI(model, guide, SGD(lr=lr), elbo, rng_seed=rng_seed + 1)
    svi.run(burn, *args, progress_bar=False)
    store = probdl.get_param_store()
    sums = {name: 0.0 for name in store.keys()}
    for _ in range(average):
        svi.step(*args)
        for name in sums:
            sums[name] = sums[name] + store.unconstrained(name).numpy()
    with probdl.no_grad():
        return {name: transform_to(store.constraint(name))(probdl.tensor(s / average)).numpy()
                for name, s in sums.items()}


# ---------------------------------------------------------------------------- sites, shapes, supports
def support_model(y=None):
    loc = probdl.sample("loc", dist.Normal(0.0, 1.0))
    scale = probdl.sample("scale", dist.LogNormal(0.0, 0.5))
    probdl.sample("frac", dist.Beta(2.0, 3.0))
    probdl.sample("bounded", dist.Uniform(-1.0, 2.0))
    probdl.sample("probs", dist.Dirichlet(probdl.tensor([1.0, 2.0, 3.0])))
    probdl.sample("chol", dist.LKJCholesky(3, 2.0))
    with probdl.plate("N", 4):
        z = probdl.sample("z", dist.Normal(loc, scale))
        probdl.sample("y", dist.Normal(z, 1.0), obs=y)


Y4 = probdl.tensor([0.5, -0.2, 1.3, 0.1])
LATENTS = ["loc", "scale", "frac", "bounded", "probs", "chol", "z"]


@pytest.mark.parametrize("Guide", ALL_GUIDES)
def test_guide_sites_shapes_and_supports_match_the_model(Guide):
    guide = Guide(support_model)
    guide_tr = trace(seed(guide, 0)).get_trace(Y4)
    model_tr = trace(seed(support_model, 1)).get_trace(Y4)
    sampled = [n for n, s in guide_tr.items() if s["type"] == "sample"]
    if Guide in FLAT_GUIDES:
        assert sampled[0] == "_auto_latent" and guide_tr["_auto_latent"]["infer"]["is_auxiliary"]
        assert guide_tr["_auto_latent"]["value"].shape == (1 + 1 + 1 + 1 + 2 + 3 + 4,)
        sampled = sampled[1:]
    assert sampled == LATENTS
    for name in LATENTS:
        g, m = guide_tr[name], model_tr[name]
        assert g["value"].shape == m["value"].shape, name
        assert g["fn"].event_shape == m["fn"].event_shape, name
        assert g["fn"].batch_shape == m["fn"].batch_shape, name
        assert bool(np.all(np.asarray(m["fn"].support.check(g["value"])))), name
    if Guide in (AutoNormal, AutoDelta):  # per-site guides sample local latents inside the model's plates
        assert [f.name for f in guide_tr["z"]["cond_indep_stack"]] == ["N"]
    # the model replayed against the guide has a finite log density
    loss = Trace_ELBO().loss(support_model, seed(guide, 2), Y4)
    assert np.isfinite(loss)


@pytest.mark.parametrize("Guide", ALL_GUIDES)
def test_guides_broadcast_over_an_outer_plate(Guide):
    # vectorized particles and parallel Predictive run the guide inside an extra plate left of the model's plates
    guide = Guide(support_model)
    seed(guide, 0)(Y4)
    with probdl.plate("particles", 3, dim=-2):
        tr = trace(seed(guide, 0)).get_trace(Y4)
    shapes = {n: tr[n]["value"].shape for n in LATENTS}
    assert shapes == {"loc": (3, 1), "scale": (3, 1), "frac": (3, 1), "bounded": (3, 1), "probs": (3, 1, 3),
                      "chol": (3, 1, 3, 3), "z": (3, 4)}
    # one vectorized particle draws the same numbers as one unvectorized particle: the same loss
    vectorized = Trace_ELBO(vectorize_particles=True).loss(support_model, seed(guide, 3), Y4)
    assert vectorized == pytest.approx(Trace_ELBO().loss(support_model, seed(guide, 3), Y4), rel=1e-12)


def test_parameter_names_follow_numpyro():
    names = {}
    for Guide in ALL_GUIDES:
        probdl.clear_param_store()
        seed(Guide(support_model), 0)(Y4)
        names[Guide] = set(probdl.get_param_store().keys())
    assert names[AutoDelta] == {f"{s}_auto_loc" for s in LATENTS}
    assert names[AutoNormal] == {f"{s}_auto_{p}" for s in LATENTS for p in ("loc", "scale")}
    assert names[AutoDiagonalNormal] == {"auto_loc", "auto_scale"}
    assert names[AutoMultivariateNormal] == {"auto_loc", "auto_scale_tril"}
    assert names[AutoLowRankMultivariateNormal] == {"auto_loc", "auto_cov_factor", "auto_scale"}
    assert names[AutoLaplaceApproximation] == {"auto_loc"}
    probdl.clear_param_store()
    seed(AutoNormal(support_model, prefix="q"), 0)(Y4)
    assert "loc_q_loc" in probdl.get_param_store()
    assert store_value("z_q_loc").shape == (4,) and store_value("chol_q_scale").shape == (3,)


def test_guides_are_built_from_init_loc_fn():
    init = init_to_value(values={"loc": 0.25, "scale": 2.0, "z": [1.0, 2.0, 3.0, 4.0]})
    for Guide in ALL_GUIDES:
        probdl.clear_param_store()
        guide = Guide(support_model, init_loc_fn=init)
        seed(guide, 0)(Y4)
        med = guide.median()
        assert med["loc"].item() == pytest.approx(0.25) and med["scale"].item() == pytest.approx(2.0), Guide
        np.testing.assert_allclose(med["z"].numpy(), [1.0, 2.0, 3.0, 4.0], err_msg=Guide.__name__)


# ---------------------------------------------------------------------------- guide log densities
def _log_jacobians(guide, u):
    """Σ_sites log|det ∂x/∂u| computed directly: closed forms for the scalar maps, and for the vector maps the
    log-determinant of the Jacobian (by autodiff) of the map onto the free coordinates."""
    sig = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    total = u["scale"].item()  # exp
    total += math.log(sig(u["frac"].item()) * sig(-u["frac"].item()))  # sigmoid
    total += math.log(3.0 * sig(u["bounded"].item()) * sig(-u["bounded"].item()))  # -1 + 3 sigmoid
    for name, free in (("probs", lambda x: x[:-1]), ("chol", lambda x: x[..., [1, 2, 2], [0, 0, 1]])):
        t = guide.latent_sites[name].transform
        jac = probdl.jacobian(lambda v, t=t, free=free: free(t(v)))(u[name]).numpy()
        total += np.linalg.slogdet(jac)[1]
    return total


@pytest.mark.parametrize("Guide", FLAT_GUIDES)
def test_flat_guide_log_density_is_the_packed_density_minus_the_log_jacobian(Guide):
    guide = Guide(support_model)
    tr = trace(seed(guide, 3)).get_trace(Y4)
    latent = tr["_auto_latent"]["value"]
    u = guide._unpack_latent(latent)
    if Guide is AutoDiagonalNormal:
        log_q = stats.norm(store_value("auto_loc"), store_value("auto_scale")).logpdf(latent.numpy()).sum()
    elif Guide is AutoMultivariateNormal:
        L = store_value("auto_scale_tril")
        log_q = stats.multivariate_normal(store_value("auto_loc"), L @ L.T).logpdf(latent.numpy())
    elif Guide is AutoLowRankMultivariateNormal:
        s, W = store_value("auto_scale"), store_value("auto_cov_factor")
        cov = (W * s[:, None]) @ (W * s[:, None]).T + np.diag(s ** 2)
        log_q = stats.multivariate_normal(store_value("auto_loc"), cov).logpdf(latent.numpy())
    else:  # Laplace: a point mass during SVI
        np.testing.assert_array_equal(latent.numpy(), store_value("auto_loc"))
        log_q = 0.0
    want = log_q - _log_jacobians(guide, u)
    assert tr.log_prob_sum().item() == pytest.approx(want, rel=1e-10)
    for name in LATENTS:  # each site's value is its packed block pushed onto the support
        np.testing.assert_allclose(tr[name]["value"].numpy(), guide.latent_sites[name].transform(u[name]).numpy())


def test_autonormal_log_density_per_site():
    guide = AutoNormal(support_model)
    tr = trace(seed(guide, 4)).get_trace(Y4)
    u = {n: guide.latent_sites[n].transform.inv(tr[n]["value"]) for n in LATENTS}
    log_q = sum(stats.norm(store_value(f"{n}_auto_loc"), store_value(f"{n}_auto_scale")).logpdf(u[n].numpy()).sum()
                for n in LATENTS)
    assert tr.log_prob_sum().item() == pytest.approx(log_q - _log_jacobians(guide, u), rel=1e-8)
    assert isinstance(tr["loc"]["fn"], dist.Normal)  # a real site gets the Normal itself (analytic KL applies)


def test_autodelta_is_a_point_mass_at_constrained_params():
    guide = AutoDelta(support_model)
    tr = trace(seed(guide, 0)).get_trace(Y4)
    assert tr.log_prob_sum().item() == 0.0
    for name in LATENTS:
        np.testing.assert_array_equal(tr[name]["value"].numpy(), store_value(f"{name}_auto_loc"))
    assert probdl.get_param_store().constraint("probs_auto_loc") is constraints.simplex


# ---------------------------------------------------------------------------- median, quantiles, draws
def test_autonormal_median_and_quantiles_values():
    def model():
        probdl.sample("a", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
        probdl.sample("b", dist.LogNormal(0.0, 1.0))
        probdl.sample("c", dist.Uniform(-1.0, 2.0))
        probdl.sample("d", dist.ImproperUniform(constraints.less_than(1.0)))  # a decreasing bijection: 1 - exp(u)

    guide = AutoNormal(model)
    seed(guide, 0)()
    params = {"a_auto_loc": np.array([0.5, -1.0]), "a_auto_scale": np.array([2.0, 0.5]),
              "b_auto_loc": 0.3, "b_auto_scale": 0.2, "c_auto_loc": -0.4, "c_auto_scale": 0.7,
              "d_auto_loc": 0.1, "d_auto_scale": 0.3}
    q = [0.05, 0.5, 0.9]
    z = stats.norm.ppf(q)
    got = guide.quantiles(q, params=params)
    assert {k: v.shape for k, v in got.items()} == {"a": (3, 2), "b": (3,), "c": (3,), "d": (3,)}
    np.testing.assert_allclose(got["a"].numpy(), np.array([0.5, -1.0]) + np.array([2.0, 0.5]) * z[:, None])
    np.testing.assert_allclose(got["b"].numpy(), np.exp(0.3 + 0.2 * z))
    np.testing.assert_allclose(got["c"].numpy(), -1 + 3 / (1 + np.exp(-(-0.4 + 0.7 * z))))
    np.testing.assert_allclose(got["d"].numpy(), 1 - np.exp(0.1 + 0.3 * stats.norm.ppf(1 - np.array(q))))
    assert np.all(np.diff(got["d"].numpy()) > 0)  # quantiles increase with q for decreasing maps too
    med = guide.median(params=params)
    for k in med:
        np.testing.assert_allclose(med[k].numpy(), got[k].numpy()[1], err_msg=k)
    # without params: the param store
    assert guide.median()["b"].item() == pytest.approx(math.exp(store_value("b_auto_loc")))


@pytest.mark.parametrize("Guide", [AutoDiagonalNormal, AutoMultivariateNormal, AutoLowRankMultivariateNormal])
def test_flat_guide_quantiles_use_the_marginals(Guide):
    guide = Guide(support_model)
    seed(guide, 0)(Y4)
    post = guide.get_posterior()
    assert post.event_shape == (guide.latent_dim,)
    mean, sd = post.mean.numpy(), np.sqrt(post.variance.numpy())
    with pytest.warns(UserWarning, match="left out 'probs'"):
        got = guide.quantiles([0.25, 0.75])
    assert set(got) == {"loc", "scale", "frac", "bounded", "z"}  # simplex and Cholesky sites have no such quantiles
    assert got["z"].shape == (2, 4) and got["scale"].shape == (2,)
    i = guide._layout.index(("scale", (), 1))
    np.testing.assert_allclose(got["scale"].numpy(), np.exp(mean[i] + sd[i] * stats.norm.ppf([0.25, 0.75])))
    med = guide.median()
    assert med["chol"].shape == (3, 3) and med["probs"].numpy().sum() == pytest.approx(1.0)


@pytest.mark.parametrize("Guide", ALL_GUIDES)
def test_sample_posterior_shapes_and_supports(Guide):
    guide = Guide(support_model)
    draws = guide.sample_posterior(0, None, Y4, sample_shape=(7,))  # builds the guide from the model's args
    model_tr = trace(seed(support_model, 0)).get_trace(Y4)
    assert list(draws) == LATENTS
    for name, x in draws.items():
        assert x.shape == (7,) + model_tr[name]["value"].shape, name
        assert bool(np.all(np.asarray(model_tr[name]["fn"].support.check(x)))), name
    again = guide.sample_posterior(0, None, Y4, sample_shape=(7,))
    np.testing.assert_array_equal(again["loc"].numpy(), draws["loc"].numpy())


def test_sample_posterior_follows_params():
    guide = AutoNormal(support_model)
    seed(guide, 0)(Y4)
    params = {"loc_auto_loc": 3.0, "loc_auto_scale": 0.5}
    draws = guide.sample_posterior(1, params, sample_shape=(4000,))["loc"].numpy()
    # mean of 4000 draws of N(3, 0.5²): standard error 0.5/√4000
    assert abs(draws.mean() - 3.0) < 5 * 0.5 / math.sqrt(4000)
    assert draws.std() == pytest.approx(0.5, rel=5 / math.sqrt(2 * 4000))


# ---------------------------------------------------------------------------- fits against analytic posteriors
Y_NN = probdl.tensor([1.3, 0.2, 2.1, 0.9])


def normal_normal(y):
    mu = probdl.sample("mu", dist.Normal(0.0, 1.0))
    with probdl.plate("N", 4):
        probdl.sample("y", dist.Normal(mu, 2.0), obs=y)


NN_VAR = 1 / (1 + 4 / 4.0)  # posterior precision: prior 1 + n/σ² = 2
NN_MEAN = NN_VAR * float(Y_NN.numpy().sum()) / 4.0


@pytest.mark.parametrize("Guide,loc_name,scale_name", [(AutoNormal, "mu_auto_loc", "mu_auto_scale"),
                                                         (AutoDiagonalNormal, "auto_loc", "auto_scale")])
def test_normal_guides_recover_the_normal_normal_posterior(Guide, loc_name, scale_name):
    K, T = 16, 600
    p = fit_and_average(normal_normal, Guide(normal_normal), (Y_NN,), particles=K, average=T)
    sd = math.sqrt(NN_VAR)
    assert abs(np.squeeze(p[loc_name]) - NN_MEAN) < 5 * sd / math.sqrt(K * T)
    assert abs(np.squeeze(p[scale_name]) / sd - 1) < 5 / math.sqrt(2 * K * T)


def test_autodelta_finds_the_map():
    # Exponential(rate b) prior, Poisson counts: the posterior is Gamma(1 + Σx, b + n), its mode Σx / (b + n).
    # (A MAP in the unconstrained space would find (1 + Σx) / (b + n) instead.)
    counts = probdl.tensor([3.0, 1.0, 4.0, 2.0, 5.0])
    b = 0.5

    def model(x):
        lam = probdl.sample("lam", dist.Exponential(b))
        with probdl.plate("N", 5):
            probdl.sample("x", dist.Poisson(lam), obs=x)

    guide = AutoDelta(model)
    # the objective is deterministic (a point-mass guide): gradient descent on log λ, curvature Σx at the mode
    SVI(model, guide, SGD(lr=0.5 / 15), Trace_ELBO()).run(300, counts, progress_bar=False)
    assert guide.median()["lam"].item() == pytest.approx(15 / (b + 5), rel=1e-10)

    probdl.clear_param_store()  # Normal-Normal: the MAP is the posterior mean
    guide = AutoDelta(normal_normal)
    SVI(normal_normal, guide, SGD(lr=0.25), Trace_ELBO()).run(200, Y_NN, progress_bar=False)
    assert guide.median()["mu"].item() == pytest.approx(NN_MEAN, rel=1e-10)


RNG = np.random.default_rng(3)
N_REG, D_REG, SIGMA_REG = 12, 3, 2.0
X_REG = RNG.normal(size=(N_REG, D_REG))
Y_REG = X_REG @ np.array([1.0, -1.0, 0.5]) + SIGMA_REG * RNG.normal(size=N_REG)
PREC_REG = np.eye(D_REG) + X_REG.T @ X_REG / SIGMA_REG ** 2  # eigenvalues about 3.0, 3.1, 7.2
COV_REG = np.linalg.inv(PREC_REG)
MEAN_REG = COV_REG @ X_REG.T @ Y_REG / SIGMA_REG ** 2


def regression(X, y):
    """Bayesian linear regression with known noise: w ~ N(0, I), y ~ N(X w, σ² I); the posterior is
    N(Σ Xᵀy/σ², Σ), Σ = (I + XᵀX/σ²)⁻¹."""
    w = probdl.sample("w", dist.Normal(0.0, 1.0).expand([D_REG]).to_event(1))
    with probdl.plate("N", N_REG):
        probdl.sample("y", dist.Normal((X * w).sum(-1), SIGMA_REG), obs=y)


def _check_mvn_fit(K, T, **kw):
    p = fit_and_average(regression, AutoMultivariateNormal(regression), (probdl.tensor(X_REG), probdl.tensor(Y_REG)),
                        particles=K, average=T, **kw)
    L = p["auto_scale_tril"]
    sd = np.sqrt(np.diag(COV_REG))
    mean_err = np.abs(p["auto_loc"] - MEAN_REG) / sd * math.sqrt(K * T)
    cov_err = np.abs(L @ L.T - COV_REG) / np.outer(sd, sd) * math.sqrt(K * T / 2)
    assert mean_err.max() < 5, mean_err
    assert cov_err.max() < 5, cov_err


def test_multivariate_normal_recovers_the_regression_posterior():
    _check_mvn_fit(K=16, T=600)


@pytest.mark.slow
def test_multivariate_normal_recovers_the_regression_posterior_tightly():
    # standard errors 1/√(64·4000) ≈ 0.002 posterior sds for the mean, ≈ 0.003 relative for the covariance
    _check_mvn_fit(K=64, T=4000, warmup=600, burn=200)


def test_laplace_approximation_is_exact_for_a_gaussian_posterior():
    X, y = probdl.tensor(X_REG), probdl.tensor(Y_REG)
    guide = AutoLaplaceApproximation(regression)
    # during SVI the guide is a point mass, so the loss is the potential U(u) exactly: plain gradient descent with
    # step 1/λ_max(P) contracts the error by 1 - λ_min/λ_max ≈ 0.6 per step
    lr = 1 / np.linalg.eigvalsh(PREC_REG).max()
    SVI(regression, guide, SGD(lr=lr), Trace_ELBO()).run(150, X, y, progress_bar=False)
    post = guide.get_posterior(X, y)
    assert isinstance(post, dist.MultivariateNormal)
    np.testing.assert_allclose(post.mean.numpy(), MEAN_REG, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(post.covariance_matrix.numpy(), COV_REG, rtol=1e-6, atol=1e-9)
    q = guide.quantiles([0.1, 0.9], X, y)["w"].numpy()
    np.testing.assert_allclose(q, MEAN_REG + np.sqrt(np.diag(COV_REG)) * stats.norm.ppf([0.1, 0.9])[:, None],
                               rtol=1e-6)
    np.testing.assert_allclose(guide.median(X, y)["w"].numpy(), MEAN_REG, rtol=1e-6)
    draws = guide.sample_posterior(0, None, X, y, sample_shape=(20000,))["w"].numpy()
    se = np.sqrt(np.diag(COV_REG) / 20000)
    assert np.all(np.abs(draws.mean(0) - MEAN_REG) < 5 * se)


def test_laplace_takes_the_hessian_in_the_unconstrained_space():
    # x ~ LogNormal(m, s): in u = log x the posterior is N(m, s²) exactly, whatever loc the guide holds
    def model():
        probdl.sample("x", dist.LogNormal(0.7, 0.4))

    guide = AutoLaplaceApproximation(model)
    seed(guide, 0)()
    post = guide.get_posterior(params={"auto_loc": np.array([0.7])})
    assert post.covariance_matrix.item() == pytest.approx(0.4 ** 2, rel=1e-10)
    assert guide.median(params={"auto_loc": np.array([0.7])})["x"].item() == pytest.approx(math.exp(0.7))


def test_low_rank_rank_one_on_a_correlated_gaussian():
    # Σ = [[1, 0.8·1.5], [0.8·1.5, 2.25]] = w wᵀ + D with rank-1 w: in the family, so the optimum is exact
    cov = np.array([[1.0, 1.2], [1.2, 2.25]])
    mean = np.array([1.0, -2.0])

    def model():
        probdl.sample("x", dist.MultivariateNormal(probdl.tensor(mean), covariance_matrix=probdl.tensor(cov)))

    guide = AutoLowRankMultivariateNormal(model, rank=1)
    K, T = 16, 600
    elbo = Trace_ELBO(num_particles=K, vectorize_particles=True)
    SVI(model, guide, Adam(lr=0.05), elbo, rng_seed=0).run(300, progress_bar=False)
    # SGD's slowest relaxation time is 1/(lr λ_min(Σ⁻¹)) ≈ 60 steps: burn in for 5 of them
    svi = SVI(model, guide, SGD(lr=0.05), elbo, rng_seed=1)
    svi.run(300, progress_bar=False)
    means, covs = [], []
    for _ in range(T):
        svi.step()
        s, W = store_value("auto_scale"), store_value("auto_cov_factor") * store_value("auto_scale")[:, None]
        means.append(store_value("auto_loc"))
        covs.append(W @ W.T + np.diag(s ** 2))
    sd = np.sqrt(np.diag(cov))
    assert store_value("auto_cov_factor").shape == (2, 1)
    # (W, D) has one flat direction, so the covariance iterates are averaged, not the parameters (a bias of order
    # the step size times the iterate spread, well below the 5-standard-error band)
    assert np.all(np.abs(np.mean(means, 0) - mean) / sd < 5 / math.sqrt(K * T))
    assert np.all(np.abs(np.mean(covs, 0) - cov) / np.outer(sd, sd) < 5 * math.sqrt(2 / (K * T)))


def test_elbos_at_the_exact_posterior_with_autonormal():
    guide = AutoNormal(normal_normal)
    seed(guide, 0)(Y_NN)
    params = {"mu_auto_loc": NN_MEAN, "mu_auto_scale": math.sqrt(NN_VAR)}
    exact = substitute(guide, data=params)
    log_evidence = stats.multivariate_normal(np.zeros(4), np.eye(4) * 4.0 + 1.0).logpdf(Y_NN.numpy())
    # at the exact posterior log p(y, μ) - log q(μ) = log p(y) for every draw: Trace_ELBO has no variance
    for s in range(3):
        assert Trace_ELBO().loss(normal_normal, seed(exact, s), Y_NN) == pytest.approx(-log_evidence, rel=1e-12)
    # TraceMeanField_ELBO uses the analytic KL(q ‖ prior) of the Normal site and a draw of log p(y | μ) =
    # -(n/8)(μ - ȳ)² + c, whose sd under q = N(m, v) is (n/8) √(2v² + 4v(m - ȳ)²): unbiased within 5 standard errors
    K = 4000
    ybar = float(Y_NN.numpy().mean())
    se = 0.5 * math.sqrt(2 * NN_VAR ** 2 + 4 * NN_VAR * (NN_MEAN - ybar) ** 2) / math.sqrt(K)
    loss = TraceMeanField_ELBO(num_particles=K, vectorize_particles=True).loss(normal_normal, seed(exact, 1), Y_NN)
    assert abs(loss + log_evidence) < 5 * se


# ---------------------------------------------------------------------------- plates and subsampling
Y20 = probdl.tensor(np.linspace(-2.0, 2.0, 20))


def local_model(y):
    """z_i ~ N(0, 1), y_i ~ N(z_i, 0.5²), mini-batches of 5: z_i | y_i ~ N(0.8 y_i, 0.2)."""
    with probdl.plate("N", 20, subsample_size=5) as idx:
        z = probdl.sample("z", dist.Normal(0.0, 1.0))
        probdl.sample("y", dist.Normal(z, 0.5), obs=y[idx])


def _mark_locs(guide, *args):
    """Params of the local site set to loc_i = i with a tiny scale, so a draw names the rows it used."""
    seed(guide, 0)(*args)
    store = probdl.get_param_store()
    with probdl.no_grad():
        store.unconstrained("z_auto_loc").data[...] = np.arange(20.0)
        store.unconstrained("z_auto_scale").data[...] = math.log(1e-9)


def test_autonormal_slices_local_params_with_the_subsample():
    guide = AutoNormal(local_model)
    _mark_locs(guide, Y20)
    assert store_value("z_auto_loc").shape == (20,)  # the full size, not the subsample's
    with seed(rng_seed=5):
        model_tr, guide_tr = get_importance_trace(local_model, guide, (Y20,), {})
    rows = np.round(guide_tr["z"]["value"].numpy()).astype(int)
    assert guide_tr["z"]["value"].shape == (5,) and len(set(rows)) == 5
    # the model's plate got the guide's subsample, so each z_i meets its own y_i
    np.testing.assert_array_equal(model_tr["y"]["value"].numpy(), Y20.numpy()[rows])
    assert guide_tr["z"]["scale"] == 4.0 and model_tr["z"]["scale"] == 4.0


def test_autonormal_with_create_plates():
    def model(y, idx):
        with probdl.plate("N", 20, subsample=idx):
            z = probdl.sample("z", dist.Normal(0.0, 1.0))
            probdl.sample("y", dist.Normal(z, 0.5), obs=y[idx])

    idx = probdl.tensor([3, 7, 11])
    guide = AutoNormal(model, create_plates=lambda y, idx: probdl.plate("N", 20, subsample=idx))
    _mark_locs(guide, Y20, idx)
    tr = trace(seed(guide, 1)).get_trace(Y20, idx)
    np.testing.assert_allclose(tr["z"]["value"].numpy(), [3.0, 7.0, 11.0], atol=1e-6)
    assert tr["z"]["scale"] == pytest.approx(20 / 3)
    delta = AutoDelta(model, create_plates=lambda y, idx: probdl.plate("N", 20, subsample=idx))
    seed(delta, 0)(Y20, idx)
    assert store_value("z_auto_loc").shape == (20,)
    assert trace(seed(delta, 0)).get_trace(Y20, idx)["z"]["value"].shape == (3,)
    bad = AutoNormal(model, create_plates=lambda y, idx: probdl.plate("N", 30, subsample=idx))
    with pytest.raises(ValueError, match="plate 'N' of size 30"):
        seed(bad, 0)(Y20, idx)


@pytest.mark.slow
def test_autonormal_fits_local_latents_from_mini_batches():
    # each z_i is in a mini-batch a quarter of the time with its gradient scaled by 4: gradient noise 4 times that
    # of the full-batch fit, so standard errors are twice the module docstring's
    K, T = 16, 4000
    p = fit_and_average(local_model, AutoNormal(local_model), (Y20,), particles=K, average=T, warmup=1500,
                        burn=300, lr=0.02)
    sd = math.sqrt(0.2)
    assert np.all(np.abs(p["z_auto_loc"] - 0.8 * Y20.numpy()) < 5 * 2 * sd / math.sqrt(K * T))
    assert np.all(np.abs(p["z_auto_scale"] / sd - 1) < 5 * 2 / math.sqrt(2 * K * T))


@pytest.mark.parametrize("Guide", FLAT_GUIDES)
def test_flat_guides_refuse_subsampled_local_latents(Guide):
    with pytest.raises(ValueError, match="site 'z' is in plate 'N', which subsamples 5 of 20"):
        seed(Guide(local_model), 0)(Y20)


# ---------------------------------------------------------------------------- bad input
def discrete_model():
    probdl.sample("k", dist.Categorical(probdl.tensor([0.3, 0.7])))
    probdl.sample("x", dist.Normal(0.0, 1.0))


@pytest.mark.parametrize("Guide", ALL_GUIDES)
def test_discrete_latents_are_rejected(Guide):
    with pytest.raises(ValueError, match="site 'k'.*discrete support"):
        seed(Guide(discrete_model), 0)()


def test_unknown_site_in_init_to_value_warns():
    guide = AutoNormal(normal_normal, init_loc_fn=init_to_value(values={"sigma": 1.0, "mu": 0.5}))
    with pytest.warns(UserWarning, match="'sigma', which is not a latent site"):
        seed(guide, 0)(Y_NN)
    assert guide.median()["mu"].item() == 0.5


def test_rank_is_checked():
    guide = AutoLowRankMultivariateNormal(support_model, rank=20)
    with pytest.raises(ValueError, match="rank 20 exceeds the dimension 13"):
        seed(guide, 0)(Y4)
    for rank in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="rank must be a positive int"):
            AutoLowRankMultivariateNormal(support_model, rank=rank)
    guide = AutoLowRankMultivariateNormal(support_model)
    seed(guide, 0)(Y4)
    assert guide.rank == round(math.sqrt(13))


def test_constructor_arguments_are_checked():
    with pytest.raises(TypeError, match="model must be callable"):
        AutoNormal("model")
    with pytest.raises(ValueError, match="prefix must be a non-empty str"):
        AutoDelta(support_model, prefix="")
    with pytest.raises(TypeError, match="init_loc_fn must be an init strategy"):
        AutoNormal(support_model, init_loc_fn=3)
    with pytest.raises(ValueError, match="init_scale must be a positive number"):
        AutoMultivariateNormal(support_model, init_scale=0.0)
    with pytest.raises(ValueError, match="init_scale must be a positive number"):
        AutoNormal(support_model, init_scale=float("nan"))
    with pytest.raises(TypeError, match="create_plates must be callable"):
        AutoNormal(support_model, create_plates=[probdl.plate("N", 4)])


def test_bad_quantiles_and_models_without_latents():
    guide = AutoNormal(normal_normal)
    seed(guide, 0)(Y_NN)
    for q in ([0.0, 0.5], [1.5], [[0.1, 0.2]], []):
        with pytest.raises(ValueError, match="quantiles"):
            guide.quantiles(q)

    def observed_only(y):
        probdl.sample("y", dist.Normal(0.0, 1.0), obs=y)

    with pytest.raises(ValueError, match="no latent sample sites"):
        seed(AutoDiagonalNormal(observed_only), 0)(probdl.tensor(1.0))


def test_laplace_away_from_a_mode_is_a_clear_error():
    def model():
        probdl.sample("x", dist.Cauchy(0.0, 1.0))  # U(x) = log(1 + x²): negative curvature for |x| > 1

    guide = AutoLaplaceApproximation(model)
    seed(guide, 0)()
    with pytest.raises(ValueError, match="not positive definite"):
        guide.get_posterior(params={"auto_loc": np.array([10.0])})
    with pytest.raises(ValueError, match="packed latent has last dim 1"):
        guide._unpack_latent(probdl.tensor([1.0, 2.0]))
