"""HMC building blocks (metric, leapfrog, step-size search, dual averaging, Welford, Stan's windows) and the HMC and
NUTS kernels on targets with known answers.

Monte Carlo checks allow z = 4.5 standard errors, with the standard error of a mean from ArviZ's bulk ESS
(sd / sqrt(ESS)), and of a variance from its normal approximation sqrt(2 / ESS) var (Gaussian targets);
every run has a fixed seed.
"""
import math

import numpy as np
import pytest
import scipy.linalg

import probdl as pd
import probdl.distributions as dist
from probdl.infer.hmc import HMC, NUTS, FlatModel
from probdl.infer.hmc_util import (
    DualAveraging,
    IntegratorState,
    Metric,
    WelfordCovariance,
    find_reasonable_step_size,
    leapfrog,
    regularize,
    warmup_windows,
)
from probdl.infer.initialization import init_to_value
from probdl.infer.util import initialize_model
from probdl.primitives import sample

Z = 4.5


def ess(x):
    import arviz as az
    return float(az.ess(np.asarray(x)[None], method="bulk"))


def gaussian_potential(cov):
    precision = pd.tensor(np.linalg.inv(cov))

    def potential(z):
        return 0.5 * (z @ (precision @ z))

    def numpy_potential(z):
        p = precision.numpy()
        return 0.5 * z @ p @ z, p @ z

    return potential, numpy_potential


def run_kernel(kernel, num_warmup, num_samples, init, seed=0):
    state = kernel.init(seed, num_warmup, init_params=init)
    draws, states = [], []
    for i in range(num_warmup + num_samples):
        state = kernel.sample(state)
        if i >= num_warmup:
            draws.append(state.z)
            states.append(state)
    return np.array(draws), states


def assert_gaussian_moments(draws, mean, cov):
    for j in range(draws.shape[1]):
        n_eff = ess(draws[:, j])
        sd = math.sqrt(cov[j, j])
        assert abs(draws[:, j].mean() - mean[j]) < Z * sd / math.sqrt(n_eff), (j, draws[:, j].mean(), n_eff)
        var = draws[:, j].var(ddof=1)
        assert abs(var - cov[j, j]) < Z * math.sqrt(2.0 / n_eff) * cov[j, j], (j, var, n_eff)


# ---------------------------------------------------------------------------- building blocks
def test_metric_momentum_has_the_mass_matrix_as_covariance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    inv_mass = a @ a.T + 3 * np.eye(3)
    metric = Metric(inv_mass)
    r = np.array([metric.sample_momentum(rng) for _ in range(40000)])
    mass = np.linalg.inv(inv_mass)
    # each covariance entry's standard error is about sqrt((M_ii M_jj + M_ij²) / n)
    se = np.sqrt((np.outer(np.diag(mass), np.diag(mass)) + mass ** 2) / len(r))
    assert np.all(np.abs(np.cov(r.T) - mass) < Z * se)
    v = rng.normal(size=3)
    np.testing.assert_allclose(metric.velocity(v), inv_mass @ v, rtol=1e-14)
    assert metric.kinetic(v) == pytest.approx(0.5 * v @ inv_mass @ v, rel=1e-14)
    diag = Metric(np.array([1.0, 4.0]))
    r = np.array([diag.sample_momentum(rng) for _ in range(40000)])
    np.testing.assert_allclose(r.var(0), [1.0, 0.25], rtol=Z * math.sqrt(2 / 40000))


def test_leapfrog_is_second_order_and_reversible():
    cov = np.array([[1.0, 0.3], [0.3, 0.5]])
    _, numpy_potential = gaussian_potential(cov)
    metric = Metric(np.array([1.0, 2.0]))
    z0, r0 = np.array([0.7, -0.4]), np.array([0.2, 0.9])
    u0, g0 = numpy_potential(z0)
    h0 = u0 + metric.kinetic(r0)
    errors = []
    for eps in (0.1, 0.05, 0.025):
        point = IntegratorState(z0, r0, u0, g0)
        for _ in range(int(round(1.0 / eps))):
            point = leapfrog(numpy_potential, metric, point, eps)
        errors.append(abs(point.potential_energy + metric.kinetic(point.r) - h0))
        back = IntegratorState(point.z, point.r, point.potential_energy, point.grad)
        for _ in range(int(round(1.0 / eps))):
            back = leapfrog(numpy_potential, metric, back, -eps)
        np.testing.assert_allclose(back.z, z0, atol=1e-12)
        np.testing.assert_allclose(back.r, r0, atol=1e-12)
    # the energy error of velocity Verlet over a fixed time is O(ε²): halving ε quarters it
    assert 3.0 < errors[0] / errors[1] < 5.0 and 3.0 < errors[1] / errors[2] < 5.0


def test_step_size_search_crosses_the_acceptance_threshold():
    _, numpy_potential = gaussian_potential(np.diag([1.0, 0.01]))
    metric = Metric(np.ones(2))
    z = np.array([0.5, 0.05])
    u, g = numpy_potential(z)
    eps = find_reasonable_step_size(numpy_potential, metric, z, u, g, 1.0, np.random.default_rng(0))
    assert 0.01 < eps < 0.5  # a stable step for the narrow direction (sd 0.1) is below 2·0.1
    flat = find_reasonable_step_size(numpy_potential, metric, z, u, g, 1e-6, np.random.default_rng(0))
    assert flat > 1e-3  # grown from a tiny start
    with pytest.raises(RuntimeError, match="grew past 1e7"):
        find_reasonable_step_size(lambda z: (0.0, np.zeros(2)), metric, z, 0.0, np.zeros(2), 1.0,
                                  np.random.default_rng(0))


def test_dual_averaging_finds_the_step_size_of_the_target_acceptance():
    # a smooth, decreasing acceptance curve a(ε) = exp(-ε²): the target 0.8 is met at ε* = sqrt(-log 0.8)
    da = DualAveraging(1.0, target=0.8)
    eps = 1.0
    for _ in range(2000):
        eps = da.update(math.exp(-eps ** 2))
    assert da.final_step_size == pytest.approx(math.sqrt(-math.log(0.8)), rel=0.02)
    da.restart(0.1)
    assert da.count == 0 and da.mu == pytest.approx(math.log(1.0))


def test_welford_matches_numpy_and_stans_regularisation():
    x = np.random.default_rng(1).normal(size=(50, 3)) @ np.array([[1, 0, 0], [0.5, 1, 0], [0, 0.2, 2.0]])
    dense, diag = WelfordCovariance(3, dense=True), WelfordCovariance(3, dense=False)
    for row in x:
        dense.update(row)
        diag.update(row)
    n = len(x)
    np.testing.assert_allclose(dense.covariance(), (n / (n + 5)) * np.cov(x.T) + 1e-3 * 5 / (n + 5) * np.eye(3),
                               rtol=1e-12)
    np.testing.assert_allclose(diag.covariance(), regularize(x.var(0, ddof=1), n), rtol=1e-12)


def test_warmup_windows_follow_stan():
    assert warmup_windows(1000) == [(75, 100), (100, 150), (150, 250), (250, 450), (450, 950)]
    assert warmup_windows(100) == [(15, 90)]   # buffers shrink to 15% / 10% when the defaults do not fit
    assert warmup_windows(10) == []


# ---------------------------------------------------------------------------- kernels on known targets
CORRELATED = np.array([[1.0, 0.95 * math.sqrt(10)], [0.95 * math.sqrt(10), 10.0]])


@pytest.mark.parametrize("kernel", [
    lambda pot: NUTS(potential_fn=pot),
    lambda pot: NUTS(potential_fn=pot, dense_mass=True),
    lambda pot: HMC(potential_fn=pot, num_steps=10),
], ids=["nuts-diag", "nuts-dense", "hmc"])
def test_correlated_gaussian(kernel):
    potential, _ = gaussian_potential(CORRELATED)
    draws, states = run_kernel(kernel(potential), 500, 1500, np.zeros(2), seed=3)
    assert_gaussian_moments(draws, np.zeros(2), CORRELATED)
    corr = np.corrcoef(draws.T)[0, 1]
    assert abs(corr - 0.95) < 0.03
    assert not any(s.diverging for s in states)


def test_dense_mass_matrix_adapts_to_the_covariance():
    potential, _ = gaussian_potential(CORRELATED)
    kernel = NUTS(potential_fn=potential, dense_mass=True)
    _, states = run_kernel(kernel, 1000, 200, np.zeros(2), seed=4)
    inv_mass = states[-1].inverse_mass_matrix
    # the last window's estimate from 500 draws: each entry within a few standard errors of the covariance
    np.testing.assert_allclose(inv_mass, CORRELATED, rtol=0.3)
    assert np.mean([s.tree_depth for s in states]) < 3  # a whitened target needs short trajectories


def test_100_dimensional_iid_gaussian():
    scales = np.linspace(0.5, 2.0, 100)

    def model():
        sample("x", dist.Normal(pd.zeros(100), pd.tensor(scales)).to_event(1))

    kernel = NUTS(model)
    state = kernel.init(5, 500)
    draws = []
    for i in range(1500):
        state = kernel.sample(state)
        if i >= 500:
            draws.append(kernel.postprocess(state.z)["x"])
    draws = np.array(draws)
    # 100 coordinates: the standardized means are ~ N(0, 1) each; their mean square is ~ 1 (chi-square / 100)
    z = np.array([draws[:, j].mean() / (scales[j] / math.sqrt(ess(draws[:, j]))) for j in range(100)])
    assert np.mean(z ** 2) < 1.0 + Z * math.sqrt(2 / 100)
    ratio = draws.std(0, ddof=1) / scales
    assert abs(ratio.mean() - 1.0) < 0.05


def test_a_step_size_that_is_too_large_diverges():
    potential, _ = gaussian_potential(np.diag([1.0, 1e-4]))
    kernel = NUTS(potential_fn=potential, step_size=1.0, adapt_step_size=False, adapt_mass_matrix=False)
    _, states = run_kernel(kernel, 0, 50, np.array([0.1, 0.01]))
    assert sum(s.diverging for s in states) > 25


def test_a_failed_cholesky_along_a_trajectory_is_a_divergence_not_a_crash():
    # the correlation r has a flat prior on (-1.5, 1.5), but the covariance is positive definite only for |r| < 1
    def model():
        r = sample("r", dist.Uniform(-1.5, 1.5))
        cov = pd.stack([pd.stack([pd.ones(()), r]), pd.stack([r, pd.ones(())])])
        sample("y", dist.MultivariateNormal(pd.zeros(2), covariance_matrix=cov), obs=pd.tensor([0.5, 0.4]))

    kernel = NUTS(model, init_strategy=init_to_value(values={"r": 0.0}))
    state = kernel.init(0, 50)
    rs = []
    for _ in range(120):
        state = kernel.sample(state)
        rs.append(kernel.postprocess(state.z)["r"])
    assert np.all(np.abs(rs) < 1)


def test_flat_model_packs_sites_in_model_order():
    def model():
        sample("a", dist.Normal(0.0, 1.0))
        sample("b", dist.HalfNormal(pd.ones((2, 3))).to_event(2))
        sample("c", dist.Dirichlet(pd.ones(4)))

    flat = FlatModel(initialize_model(model, rng=0))
    assert flat.names == ["a", "b", "c"] and flat.size == 1 + 6 + 3
    z = np.arange(10.0) / 10
    np.testing.assert_array_equal(flat.pack(flat.unpack(z)), z)
    values = flat.constrain(z)
    np.testing.assert_allclose(values["b"], np.exp(z[1:7]).reshape(2, 3), rtol=1e-14)
    assert values["c"].sum() == pytest.approx(1.0, abs=1e-14)
    u, grad = flat(z)
    eps = 1e-6
    for j in range(10):
        dz = np.zeros(10)
        dz[j] = eps
        fd = (flat(z + dz)[0] - flat(z - dz)[0]) / (2 * eps)
        assert grad[j] == pytest.approx(fd, rel=1e-6, abs=1e-8)


# ---------------------------------------------------------------------------- bad input
def test_bad_kernel_arguments():
    def model():
        sample("x", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="exactly one of model and potential_fn"):
        NUTS()
    with pytest.raises(ValueError, match="exactly one of model and potential_fn"):
        NUTS(model, potential_fn=lambda z: z.sum())
    with pytest.raises(ValueError, match="step_size must be a positive number, got -1"):
        NUTS(model, step_size=-1)
    with pytest.raises(ValueError, match="max_tree_depth must be a positive int, got 0"):
        NUTS(model, max_tree_depth=0)
    with pytest.raises(ValueError, match=r"target_accept_prob must be in \(0, 1\), got 1.5"):
        HMC(model, target_accept_prob=1.5)
    with pytest.raises(ValueError, match="needs init_params"):
        NUTS(potential_fn=lambda z: (z ** 2).sum()).init(0, 10)


def test_a_discrete_latent_site_is_refused_by_name():
    def model():
        k = sample("k", dist.Poisson(3.0))
        sample("y", dist.Normal(k, 1.0), obs=pd.tensor(2.0))

    with pytest.raises(ValueError, match=r"site 'k': Poisson has the discrete support .*HMC/NUTS"):
        NUTS(model).init(0, 10)


def test_non_finite_start_names_the_site():
    def model():
        x = sample("x", dist.Normal(0.0, 1.0))
        sample("y", dist.Normal(x, pd.tensor(0.0)), obs=pd.tensor(1.0))  # a zero scale: log density is not finite

    dist.enable_validation(False)
    try:
        with pytest.raises(RuntimeError, match="log density of observed site 'y'"):
            NUTS(model).init(0, 10)
    finally:
        dist.enable_validation(True)


def test_momentum_solve_uses_no_inverse():
    # r = L^-T ξ for M^-1 = L L^T: check against the explicit formula once
    inv_mass = np.array([[2.0, 0.3], [0.3, 1.0]])
    metric = Metric(inv_mass)
    xi = np.random.default_rng(0).standard_normal(2)
    expected = scipy.linalg.solve_triangular(np.linalg.cholesky(inv_mass).T, xi, lower=False)
    np.testing.assert_allclose(metric.sample_momentum(np.random.default_rng(0)), expected, rtol=1e-14)
