"""GP likelihoods: log densities against scipy.stats, expectations under N(m, v) against adaptive quadrature,
closed forms against Gauss-Hermite, derivatives against finite differences, and the checks on bad input.

Tolerances for Gauss-Hermite results come from its error bound: for an integrand analytic in the strip
|Im f| < c, the K-node rule's error under N(m, v) falls like exp(-2 d √(2K)) with d = c / √(2v). The strip
half-widths are π for log-sigmoid and sigmoid (poles at ±iπ), 2.8 for log Φ (the first complex zeros of Φ
are at f ≈ 1.92 ± 2.82i) and scale·√df for the Student-t log density (branch points at y ± i·scale·√df). Each
check allows 20x the bound plus 1e-9 for the quadrature reference (asked for 1e-12). The constant in front of
the bound grows with the strength of the singularities, a conjugate pair of logarithms whose coefficient is 1
for the Bernoulli links and (df + 1)/2 = 2.5 for the Student-t; wherever the error is above rounding it
measures 0.1 to 8.4 times the bound at the points below.
"""
import math

import numpy as np
import pytest
from scipy import integrate, special, stats

import probdl
import probdl.distributions as dist
from probdl.gp.likelihoods import Bernoulli, Gaussian, Likelihood, Poisson, StudentT, gauss_hermite_expectation
from probdl.handlers import substitute
from probdl.testing import gradcheck

K = 20  # the default number of Gauss-Hermite nodes

# (m, v): a narrow, a moderate and a wide Gaussian on f
MOMENTS = [(-1.5, 0.05), (0.3, 0.5), (2.0, 2.0)]


def normal_expectation(g, m, v):
    """E_{f ~ N(m, v)}[g(f)] by adaptive quadrature over m ± 14 sd (the mass beyond is below 1e-44)."""
    s = math.sqrt(v)
    value, err = integrate.quad(lambda z: g(m + s * z) * stats.norm.pdf(z), -14, 14, epsabs=1e-13, epsrel=1e-12,
                                limit=200)
    assert err < 1e-9
    return value


def gh_tolerance(c, v, num_points=K):
    """20x the Gauss-Hermite error bound exp(-2 d √(2K)), d = c / √(2v), plus 1e-9 for the reference."""
    d = c / np.sqrt(2 * np.asarray(v))
    return 20 * np.exp(-2 * d * math.sqrt(2 * num_points)) + 1e-9


# name -> (likelihood, scipy log p(y | f), E[y | f], Var[y | f], observations, strip half-width c or None)
#   c is None where the answer is in closed form (tolerance 1e-10: rounding in the closed form and the reference)
CASES = {
    "gaussian": (lambda: Gaussian(variance=0.7), lambda y, f: stats.norm.logpdf(y, f, math.sqrt(0.7)),
                 lambda f: f, lambda f: 0.7, [-0.4, 2.5], None),
    "logit": (lambda: Bernoulli("logit"), lambda y, f: special.log_expit((2 * y - 1) * f),
              special.expit, lambda f: special.expit(f) * special.expit(-f), [0.0, 1.0], math.pi),
    "probit": (lambda: Bernoulli("probit"), lambda y, f: special.log_ndtr((2 * y - 1) * f),
               special.ndtr, lambda f: special.ndtr(f) * special.ndtr(-f), [0.0, 1.0], 2.8),
    "poisson": (lambda: Poisson(), lambda y, f: stats.poisson.logpmf(y, np.exp(f)),
                np.exp, np.exp, [0.0, 3.0], None),
    "studentt": (lambda: StudentT(df=4.0, scale=0.8), lambda y, f: stats.t.logpdf(y, 4.0, f, 0.8),
                 lambda f: f, lambda f: 0.8 ** 2 * 4.0 / 2.0, [-0.4, 2.5], 0.8 * 2.0),
}


def _grid(ys):
    """Every (m, v) of MOMENTS with every y, as three flat arrays."""
    m, v, y = zip(*[(m, v, y) for m, v in MOMENTS for y in ys])
    return np.array(m), np.array(v), np.array(y)


# --- log_prob ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_log_prob_matches_scipy_and_distribution(name):
    make, _, _, _, ys, _ = CASES[name]
    lik = make()
    f = np.linspace(-4, 4, 7)[:, None]  # broadcast against y: shape (7, 2)
    y = np.array(ys)
    reference = {  # through scipy's own distributions, not the log-link forms used for the quadrature references
        "gaussian": lambda: stats.norm.logpdf(y, f, math.sqrt(0.7)),
        "logit": lambda: stats.bernoulli.logpmf(y, special.expit(f)),
        "probit": lambda: stats.bernoulli.logpmf(y, special.ndtr(f)),
        "poisson": lambda: stats.poisson.logpmf(y, np.exp(f)),
        "studentt": lambda: stats.t.logpdf(y, 4.0, f, 0.8),
    }[name]()
    got = lik.log_prob(f, y)
    assert got.shape == (7, 2)
    # scipy's Bernoulli goes through p and 1 - p, whose log is off by up to eps / min(p, 1 - p): 7e-12 at |f| ≤ 4
    # for the probit link (Φ(-4) = 3.2e-5), hence atol 1e-11; the tail is checked separately below
    np.testing.assert_allclose(got.numpy(), reference, rtol=1e-11, atol=1e-11)
    d = lik.distribution(np.broadcast_to(f, (7, 2)))
    assert d.batch_shape == (7, 2)
    np.testing.assert_allclose(d.log_prob(np.broadcast_to(y, (7, 2))).numpy(), got.numpy(), rtol=1e-11, atol=1e-12)


def test_log_prob_is_finite_far_in_the_tails():
    # log σ(-40) = -40 - log1p(e^-40); log Φ(-40) ≈ -804.608 (scipy); Poisson at rate e^-800: y·f - e^f - log y!
    np.testing.assert_allclose(Bernoulli("logit").log_prob(40.0, 0.0).numpy(), -40.0, rtol=1e-15)
    np.testing.assert_allclose(Bernoulli("probit").log_prob(-40.0, 1.0).numpy(), special.log_ndtr(-40.0), rtol=1e-14)
    np.testing.assert_allclose(Bernoulli("probit").distribution(40.0).log_prob(0.0).numpy(), special.log_ndtr(-40.0),
                               rtol=1e-12)
    np.testing.assert_allclose(Poisson().log_prob(-800.0, 2.0).numpy(), -1600.0 - math.log(2.0), rtol=1e-15)


# --- variational expectations --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_variational_expectations_match_quadrature(name):
    make, logpdf, _, _, ys, c = CASES[name]
    m, v, y = _grid(ys)
    got = make().variational_expectations(m, v, y).numpy()  # all points in one vectorized call
    reference = np.array([normal_expectation(lambda f, yi=yi: logpdf(yi, f), mi, vi) for mi, vi, yi in zip(m, v, y)])
    tol = 1e-10 if c is None else gh_tolerance(c, v)
    assert np.all(np.abs(got - reference) <= tol + 1e-10 * np.abs(reference)), (got - reference, tol)


class _Quadrature:
    """Mixin that restores the generic quadrature defaults in place of a likelihood's closed forms."""

    _variational_expectations = Likelihood._variational_expectations
    _predictive = Likelihood._predictive


class QuadratureGaussian(_Quadrature, Gaussian):
    pass


class QuadraturePoisson(_Quadrature, Poisson):
    pass


@pytest.mark.parametrize("closed, quadrature", [(Gaussian(0.7), QuadratureGaussian(0.7)),
                                                (Poisson(), QuadraturePoisson(num_points=60))])
def test_closed_forms_match_the_quadrature_defaults(closed, quadrature):
    # Gaussian: the integrands are polynomials of degree ≤ 4, integrated exactly by 20 nodes, so only rounding
    # differs. Poisson: exp is entire, and 60 nodes leave an error below (2v)^60 / 120! ≈ 1e-181 at v = 2.
    m, v, y = _grid([0.0, 3.0])
    for a, b in [(closed.variational_expectations(m, v, y), quadrature.variational_expectations(m, v, y)),
                 *zip(closed.predictive_mean_and_variance(m, v), quadrature.predictive_mean_and_variance(m, v))]:
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("make, y, logpdf, c", [
    (lambda k: StudentT(4.0, 0.5, num_points=k), 2.0, lambda f: stats.t.logpdf(2.0, 4.0, f, 0.5), 0.5 * 2.0),
    (lambda k: Bernoulli("logit", num_points=k), 1.0, special.log_expit, math.pi),
    (lambda k: Bernoulli("probit", num_points=k), 1.0, special.log_ndtr, 2.8),
], ids=["studentt", "logit", "probit"])
def test_wide_gaussians_need_more_nodes_and_converge(make, y, logpdf, c):
    # v = 10 is wide next to every strip half-width here: 20 nodes are off by 1e-5 to 1e-1 and more nodes help
    m, v = 0.5, 10.0
    reference = normal_expectation(logpdf, m, v)
    errors = [abs(make(k).variational_expectations(m, v, y).item() - reference) for k in (20, 80, 200)]
    for k, err in zip((20, 80, 200), errors):
        assert err <= gh_tolerance(c, v, k), (k, err)
    assert errors[2] < errors[0] / 50


# --- predictive moments -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_predictive_moments_match_quadrature(name):
    make, _, cond_mean, cond_var, _, c = CASES[name]
    m, v, _ = _grid([0.0])
    mean, var = make().predictive_mean_and_variance(m, v)
    ref_mean = np.array([normal_expectation(cond_mean, mi, vi) for mi, vi in zip(m, v)])
    ref_var = np.array([normal_expectation(lambda f: cond_var(f) + cond_mean(f) ** 2, mi, vi)
                        for mi, vi in zip(m, v)]) - ref_mean ** 2
    # the probit predictive is in closed form; the logit one is Gauss-Hermite on the sigmoid (poles at ±iπ)
    tol = gh_tolerance(c, v) if name == "logit" else 1e-10
    for got, ref in [(mean.numpy(), ref_mean), (var.numpy(), ref_var)]:
        assert np.all(np.abs(got - ref) <= tol + 1e-10 * np.abs(ref)), (got - ref, tol)


@pytest.mark.parametrize("name", CASES)
def test_outputs_take_the_broadcast_shape(name):
    lik = CASES[name][0]()
    m, v, y = np.zeros((3, 1)), 0.5, np.zeros((1, 2))
    assert [t.shape for t in lik.predictive_mean_and_variance(m, v)] == [(3, 1), (3, 1)]
    assert lik.variational_expectations(m, v, y).shape == (3, 2)
    assert lik.variational_expectations(0.0, np.full(4, 0.5), 0.0).shape == (4,)


def test_studentt_predictive_variance_is_infinite_for_df_at_most_two():
    mean, var = StudentT(df=1.5).predictive_mean_and_variance(0.3, 0.2)
    assert mean.item() == 0.3 and var.item() == math.inf
    _, var = StudentT(df=3.0, scale=0.5).predictive_mean_and_variance(0.3, 0.2)
    np.testing.assert_allclose(var.item(), 0.2 + 0.25 * 3.0, rtol=1e-14)


@pytest.mark.parametrize("name", CASES)
def test_predictive_moments_match_sampling_through_distribution(name):
    # f ~ N(m, v), then y ~ lik.distribution(f): the mean of n = 200,000 draws is within 5 standard errors of the
    # predictive mean (a false alarm about once in 1.7 million runs); the seed is fixed, so this does not flake
    make = CASES[name][0]
    lik = StudentT(df=12.0, scale=0.8) if name == "studentt" else make()  # df > 8: the variance estimate's SE exists
    rng = np.random.default_rng(7)
    m, v, n = 0.3, 0.5, 200_000
    f = m + math.sqrt(v) * rng.standard_normal(n)
    y = lik.distribution(f).sample(rng=rng).numpy()
    mean, var = (t.item() for t in lik.predictive_mean_and_variance(m, v))
    assert abs(y.mean() - mean) < 5 * math.sqrt(var / n)
    se_var = math.sqrt(np.mean((y - y.mean()) ** 4) - y.var() ** 2) / math.sqrt(n)
    assert abs(y.var() - var) < 5 * se_var


# --- gradients ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_variational_expectations_gradients(name):
    make, _, _, _, ys, _ = CASES[name]
    lik = make()
    y = np.array(ys * 2)[:3]
    assert gradcheck(lambda m, v: lik.variational_expectations(m, v, y),
                     [np.array([-1.0, 0.2, 1.5]), np.array([0.1, 0.6, 2.0])])


@pytest.mark.parametrize("lik", [Bernoulli("logit"), Bernoulli("probit"), Poisson(), StudentT(3.0, 0.5)])
def test_predictive_moment_gradients(lik):
    assert gradcheck(lambda m, v: probdl.stack(list(lik.predictive_mean_and_variance(m, v))),
                     [np.array([-1.0, 0.2, 1.5]), np.array([0.1, 0.6, 2.0])])


def test_hyperparameter_gradients():
    # The constrained value goes in as a Tensor: each hyperparameter gets a prior, and substitute gives its
    # sample site the value, which reading the attribute then returns, so gradcheck differentiates through it.
    m, v, y = np.array([-1.0, 0.2, 1.5]), np.array([0.1, 0.6, 2.0]), np.array([0.3, -0.5, 2.5])
    gaussian = Gaussian()
    gaussian.set_prior("variance", dist.LogNormal(0.0, 1.0))

    def gaussian_ve(m, v, variance):
        with substitute(data={"variance": variance}), gaussian.sample_hyperparameters():
            return gaussian.variational_expectations(m, v, y)

    assert gradcheck(gaussian_ve, [m, v, 0.7])

    studentt = StudentT()
    studentt.set_prior("df", dist.LogNormal(1.0, 1.0))
    studentt.set_prior("scale", dist.LogNormal(0.0, 1.0))

    def studentt_ve(m, v, df, scale):
        with substitute(data={"df": df, "scale": scale}), studentt.sample_hyperparameters():
            return studentt.variational_expectations(m, v, y)

    assert gradcheck(studentt_ve, [m, v, 5.0, 0.8])


def test_gradients_reach_the_unconstrained_parameters():
    # the same derivative as above, through the stored parameter: d/d raw = d/d variance · softplus'(raw)
    lik = Gaussian(variance=0.7)
    raw = lik.variance_unconstrained
    lik.variational_expectations(0.2, 0.5, 1.0).backward()
    h = 1e-6
    values = []
    for shift in (h, -h):
        lik.variance = 0.7
        raw.data[...] += shift
        values.append(lik.variational_expectations(0.2, 0.5, 1.0).item())
    np.testing.assert_allclose(raw.grad.numpy(), (values[0] - values[1]) / (2 * h), rtol=1e-7)


# --- Gauss-Hermite ------------------------------------------------------------------------------------------------


def test_gauss_hermite_is_exact_for_polynomials_below_degree_2k():
    # with K = 3 nodes: exact up to degree 5; x⁶ is the first power it gets wrong
    m, v = probdl.tensor([0.7, -1.2]), probdl.tensor([0.5, 2.0])
    mn, vn = m.numpy(), v.numpy()
    exact = {4: mn ** 4 + 6 * mn ** 2 * vn + 3 * vn ** 2, 5: mn ** 5 + 10 * mn ** 3 * vn + 15 * mn * vn ** 2,
             6: mn ** 6 + 15 * mn ** 4 * vn + 45 * mn ** 2 * vn ** 2 + 15 * vn ** 3}
    def moment(k, num_points):
        return gauss_hermite_expectation(lambda x: x ** k, m, v, num_points).numpy()

    for k in (4, 5):
        np.testing.assert_allclose(moment(k, 3), exact[k], rtol=1e-13)
    assert np.all(np.abs(moment(6, 3) - exact[6]) > 1e-3)
    np.testing.assert_allclose(moment(6, 4), exact[6], rtol=1e-13)


def test_gauss_hermite_broadcasts_and_handles_zero_variance():
    out = gauss_hermite_expectation(probdl.exp, np.zeros((2, 1)), np.array([0.0, 1.0, 2.0]))
    assert out.shape == (2, 3)
    # E[e^f] = e^(m + v/2); at v = 0 the nodes all sit at m
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(np.exp([0.0, 0.5, 1.0]), (2, 3)), rtol=1e-13)


# --- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lik, y, message", [
    (Gaussian(), [0.0, np.nan, np.inf], r"Gaussian likelihood: y must be finite, got 2 non-finite value\(s\) of 3"),
    (StudentT(), [np.inf], "StudentT likelihood: y must be finite, got 1 non-finite"),
    (Bernoulli(), [0.0, 0.5, 1.0], r"Bernoulli likelihood: y must be 0 or 1, got 0.5 \(1 value"),
    (Bernoulli("probit"), [1.0, 2.0, -1.0], r"Bernoulli likelihood: y must be 0 or 1, got 2.0 \(2 value"),
    (Bernoulli(), [np.nan], "Bernoulli likelihood: y must be finite"),
    (Poisson(), [3.0, -1.0], "Poisson likelihood: y must be a non-negative integer, got -1.0"),
    (Poisson(), [1.5], "Poisson likelihood: y must be a non-negative integer, got 1.5"),
])
def test_bad_observations_raise(lik, y, message):
    for call in (lambda: lik.log_prob(0.0, y), lambda: lik.variational_expectations(0.0, 1.0, y)):
        with pytest.raises(ValueError, match=message):
            call()


def test_integer_observations_are_accepted():
    y = np.array([0, 2, 5])
    np.testing.assert_allclose(Poisson().log_prob(0.3, y).numpy(), stats.poisson.logpmf(y, math.exp(0.3)), rtol=1e-13)


@pytest.mark.parametrize("make, message", [
    (lambda: Bernoulli(link="tanh"), "link must be 'logit' or 'probit', got 'tanh'"),
    (lambda: Bernoulli(num_points=0), "Bernoulli: num_points must be a positive int, got 0"),
    (lambda: StudentT(num_points=2.5), "StudentT: num_points must be a positive int, got 2.5"),
    (lambda: Poisson(num_points=True), "Poisson: num_points must be a positive int, got True"),
    (lambda: Gaussian(variance=-1.0), "hyperparameter 'variance' must satisfy"),
    (lambda: StudentT(df=0.0), "hyperparameter 'df' must satisfy"),
])
def test_bad_settings_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_negative_variance_and_too_many_nodes_raise():
    with pytest.raises(ValueError, match="Gaussian likelihood: f_var must be non-negative, got minimum -0.1"):
        Gaussian().variational_expectations(0.0, [0.5, -0.1], 0.0)
    with pytest.raises(ValueError, match="Poisson likelihood: f_var must be non-negative"):
        Poisson().predictive_mean_and_variance(0.0, -1.0)
    with pytest.raises(ValueError, match="num_points=400 is too many"):
        gauss_hermite_expectation(probdl.exp, 0.0, 1.0, 400)
    with pytest.raises(ValueError, match="num_points must be a positive int, got -3"):
        gauss_hermite_expectation(probdl.exp, 0.0, 1.0, -3)
