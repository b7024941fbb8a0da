"""RelaxedBernoulli and RelaxedOneHotCategorical (the Concrete): densities against independent formulas and
numerical integration, draws against closed-form CDFs and the Gumbel-max property, gradients, shapes, validation."""
import math

import numpy as np
import pytest
import scipy.integrate as si
import scipy.stats as st
from scipy.special import expit, logit, logsumexp

import probdl as pd
from probdl.distributions.relaxed import RelaxedBernoulli, RelaxedOneHotCategorical
from probdl.testing import gradcheck

CASES = [(0.5, -1.0), (1.0, 0.3), (2.5, 2.0)]  # (temperature, logits)


def binary_concrete_pdf(x, t, lg):
    """Maddison et al. (2017): T α x^(-T-1) (1-x)^(-T-1) / (α x^(-T) + (1-x)^(-T))², α = e^logits."""
    a = np.exp(lg)
    return t * a * x ** (-t - 1) * (1 - x) ** (-t - 1) / (a * x ** (-t) + (1 - x) ** (-t)) ** 2


def concrete_log_pdf(x, t, lg):
    """Maddison et al. (2017), the Concrete density as written there:
    (K-1)! T^(K-1) Π αₖ xₖ^(-T-1) / (Σ αᵢ xᵢ^(-T))^K."""
    k = x.shape[-1]
    a = np.exp(lg)
    return (math.log(math.factorial(k - 1)) + (k - 1) * np.log(t) + np.log(a * x ** (-t - 1)).sum(-1)
            - k * np.log((a * x ** (-t)).sum(-1)))


@pytest.mark.parametrize("t,lg", CASES)
def test_relaxed_bernoulli_density_integrates_to_one_and_matches_the_concrete_formula(t, lg):
    d = RelaxedBernoulli(t, logits=lg)
    pdf = lambda x: math.exp(d.log_prob(x).item())
    total, err = si.quad(pdf, 0, 1, limit=200)
    assert abs(total - 1) < 1e-8 + 10 * err
    x = np.linspace(0.01, 0.99, 25)
    np.testing.assert_allclose(d.log_prob(x).numpy(), np.log(binary_concrete_pdf(x, t, lg)), rtol=1e-10)
    for v in (0.1, 0.5, 0.8):  # the closed-form CDF is the integral of the density
        np.testing.assert_allclose(d.cdf(v).item(), si.quad(pdf, 0, v, limit=200)[0], rtol=1e-8)
    np.testing.assert_allclose(d.icdf(d.cdf(x)).numpy(), x, rtol=1e-10)
    np.testing.assert_allclose(RelaxedBernoulli(t, probs=expit(lg)).log_prob(x).numpy(), d.log_prob(x).numpy(),
                               rtol=1e-10)


def test_relaxed_bernoulli_draws_follow_the_closed_form_cdf():
    t, lg = np.array([c[0] for c in CASES]), np.array([c[1] for c in CASES])
    d = RelaxedBernoulli(t, logits=lg)
    x = d.sample((20000,), rng=1).numpy()
    assert x.shape == (20000, 3) and d.support.check(x).all() and np.all((x > 0) & (x < 1))
    # P(X ≤ x) = σ(T logit(x) - logits): X = σ((L + logits)/T) with L standard logistic.
    for i in range(3):
        assert st.kstest(x[:, i], lambda v, i=i: expit(t[i] * logit(v) - lg[i])).pvalue > 1e-3
    # At a low temperature the draws approach Bernoulli(σ(logits)) draws.
    cold = RelaxedBernoulli(0.05, logits=lg).sample((20000,), rng=2).numpy()
    p = expit(lg)
    assert np.all(np.abs((cold > 0.5).mean(0) - p) < 5 * np.sqrt(p * (1 - p) / 20000))


def test_relaxed_bernoulli_gradients():
    t, lg, x = np.array([0.5, 1.0, 2.5]), np.array([-1.0, 0.3, 2.0]), np.array([0.2, 0.5, 0.9])
    gradcheck(lambda t, lg: RelaxedBernoulli(t, logits=lg).log_prob(x), [t, lg])
    gradcheck(lambda t, p: RelaxedBernoulli(t, probs=p).log_prob(x), [t, expit(lg)])
    gradcheck(lambda t, lg: RelaxedBernoulli(t, logits=lg).rsample((2,), rng=5), [t, lg])
    gradcheck(lambda t, lg: RelaxedBernoulli(t, logits=lg).cdf(x), [t, lg])


@pytest.mark.parametrize("t,lg", CASES)
def test_two_class_concrete_is_the_binary_concrete(t, lg):
    x1 = np.linspace(0.02, 0.98, 9)
    d = RelaxedOneHotCategorical(t, logits=np.array([0.4, 0.4 + lg]))
    np.testing.assert_allclose(d.log_prob(np.stack([1 - x1, x1], -1)).numpy(),
                               RelaxedBernoulli(t, logits=lg).log_prob(x1).numpy(), rtol=1e-10)
    draws = d.sample((20000,), rng=3).numpy()[:, 1]
    assert st.kstest(draws, lambda v: expit(t * logit(v) - lg)).pvalue > 1e-3


def test_concrete_density_matches_the_formula_and_integrates_to_one(rng):
    lg, t = np.array([0.1, 0.4, -0.5]), 1.5
    d = RelaxedOneHotCategorical(t, logits=lg, validate_args=False)
    x = rng.dirichlet(np.ones(3), size=20)
    np.testing.assert_allclose(d.log_prob(x).numpy(), concrete_log_pdf(x, t, lg), rtol=1e-10)
    np.testing.assert_allclose(RelaxedOneHotCategorical(t, probs=np.exp(lg) / np.exp(lg).sum()).log_prob(x).numpy(),
                               concrete_log_pdf(x, t, lg), rtol=1e-10)


@pytest.mark.parametrize("t", [0.7, 1.5])
def test_concrete_density_integrates_to_one(t):
    """∫ p(x) dx₁dx₂ over the simplex, in the coordinates zᵢ = T log(xᵢ/x₃) - (lgᵢ - lg₃) (i = 1, 2), which map
    the open simplex onto the plane; there x = softmax of ((z + lg - lg₃)/T, 0) and |∂(x₁, x₂)/∂z| = x₁x₂x₃/T².
    The integrand is smooth and decays like e^(-|z|), so the trapezoid rule converges geometrically."""
    lg = np.array([0.1, 0.4, -0.5])
    d = RelaxedOneHotCategorical(t, logits=lg, validate_args=False)
    h = 0.2
    g = np.arange(-40, 40 + h / 2, h)
    z1, z2 = np.meshgrid(g, g, indexing="ij")
    w = np.stack([(z1 + lg[0] - lg[2]) / t, (z2 + lg[1] - lg[2]) / t, np.zeros_like(z1)], -1)
    x = np.exp(w - logsumexp(w, -1, keepdims=True))
    total = (np.exp(d.log_prob(x).numpy()) * x.prod(-1) / t ** 2).sum() * h * h
    np.testing.assert_allclose(total, 1.0, rtol=1e-10)


@pytest.mark.slow
def test_concrete_density_integrates_to_one_by_dblquad():
    d = RelaxedOneHotCategorical(1.5, logits=np.array([0.1, 0.4, -0.5]), validate_args=False)
    pdf = lambda x2, x1: math.exp(d.log_prob(np.array([x1, x2, 1 - x1 - x2])).item())
    total, err = si.dblquad(pdf, 0, 1, 0, lambda x1: 1 - x1)
    assert abs(total - 1) < 1e-7 + 10 * err


def test_concrete_draws():
    lg = np.array([0.5, -0.3, 1.0, 0.0])
    probs = np.exp(lg - logsumexp(lg))
    n = 20000
    x = RelaxedOneHotCategorical(0.5, logits=lg).sample((n,), rng=4).numpy()
    assert x.shape == (n, 4) and np.all(x > 0) and np.allclose(x.sum(-1), 1)
    # Gumbel-max: whatever the temperature, the argmax of a draw is Categorical(probs).
    counts = np.bincount(x.argmax(-1), minlength=4)
    assert st.chisquare(counts, n * probs).pvalue > 1e-3
    # T log(xₖ / x_K) = lgₖ - lg_K + Gₖ - G_K, and a difference of two independent Gumbels is standard logistic.
    for k in range(3):
        z = 0.5 * np.log(x[:, k] / x[:, 3]) - (lg[k] - lg[3])
        assert st.kstest(z, st.logistic.cdf).pvalue > 1e-3


def test_concrete_gradients(rng):
    t, lg = np.array([0.7, 1.3]), rng.normal(size=(2, 3))
    x = rng.dirichlet(np.ones(3), size=2)
    gradcheck(lambda t, lg: RelaxedOneHotCategorical(t, logits=lg).log_prob(x), [t, lg])
    gradcheck(lambda t, lg: RelaxedOneHotCategorical(t, logits=lg).rsample((2,), rng=5), [t, lg])
    # Finite differences step off the simplex: the probs are renormalized, so skip their validation here.
    gradcheck(lambda p: RelaxedOneHotCategorical(0.8, probs=p, validate_args=False).log_prob(x),
              [rng.dirichlet(np.ones(3), size=2)])


def test_relaxed_shapes():
    d = RelaxedOneHotCategorical(np.array([[0.5], [1.0]]), logits=np.zeros((3, 4)))
    assert d.batch_shape == (2, 3) and d.event_shape == (4,) and d.has_rsample
    x = d.rsample((5,), rng=0)
    assert x.shape == (5, 2, 3, 4) and d.log_prob(x).shape == (5, 2, 3)
    assert d.expand((6, 2, 3)).sample((), rng=0).shape == (6, 2, 3, 4)
    b = RelaxedBernoulli(np.array([0.5, 1.0]), probs=np.array([[0.2], [0.7], [0.5]]))
    assert b.batch_shape == (3, 2) and b.sample((4,), rng=0).shape == (4, 3, 2) and b.log_prob(0.5).shape == (3, 2)
    assert b.to_event(1).log_prob(np.full((3, 2), 0.5)).shape == (3,) and b.to_event().log_prob(0.5).shape == ()


def test_relaxed_bad_input():
    with pytest.raises(ValueError, match="RelaxedBernoulli: parameter temperature must satisfy the constraint posit"):
        RelaxedBernoulli(np.array([1.0, 0.0]), logits=0.0)
    with pytest.raises(ValueError, match="RelaxedBernoulli: parameter probs must satisfy the constraint unit_interval"):
        RelaxedBernoulli(1.0, probs=1.5)
    with pytest.raises(ValueError, match="RelaxedBernoulli: give exactly one of probs and logits"):
        RelaxedBernoulli(1.0, probs=0.5, logits=0.0)
    with pytest.raises(ValueError, match="RelaxedBernoulli: value outside the support unit_interval: got 1.5"):
        RelaxedBernoulli(1.0, logits=0.0).log_prob(1.5)
    with pytest.raises(ValueError, match="RelaxedOneHotCategorical: parameter probs must satisfy the constraint simp"):
        RelaxedOneHotCategorical(1.0, probs=np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="RelaxedOneHotCategorical: parameter temperature must satisfy"):
        RelaxedOneHotCategorical(-1.0, logits=np.zeros(3))
    with pytest.raises(ValueError, match="RelaxedOneHotCategorical: value outside the support simplex"):
        RelaxedOneHotCategorical(1.0, logits=np.zeros(3)).log_prob(np.array([0.5, 0.6, 0.1]))
    with pytest.raises(ValueError, match="temperature of shape \\(2,\\) does not broadcast with the batch shape"):
        RelaxedOneHotCategorical(np.ones(2), logits=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="needs a class dim"):
        RelaxedOneHotCategorical(1.0, logits=0.0)
    free = RelaxedBernoulli(1.0, logits=0.0, validate_args=False)
    with np.errstate(invalid="ignore"):
        assert np.isnan(free.log_prob(1.5).item())


def test_relaxed_log_prob_on_device(device):
    t, lg, x = np.array([0.5, 2.0]), np.array([0.3, -1.0]), np.array([0.2, 0.7])
    on = RelaxedBernoulli(pd.tensor(t, device=device), logits=pd.tensor(lg, device=device))
    np.testing.assert_allclose(on.log_prob(pd.tensor(x, device=device)).numpy(),
                               RelaxedBernoulli(t, logits=lg).log_prob(x).numpy(), rtol=1e-12)
    y = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    lgs = np.array([[0.1, 0.2, -0.3], [1.0, 0.0, 0.5]])
    on = RelaxedOneHotCategorical(pd.tensor(t, device=device), logits=pd.tensor(lgs, device=device))
    np.testing.assert_allclose(on.log_prob(pd.tensor(y, device=device)).numpy(),
                               RelaxedOneHotCategorical(t, logits=lgs).log_prob(y).numpy(), rtol=1e-12)
