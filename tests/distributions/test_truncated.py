"""TruncatedNormal against scipy.stats.truncnorm, at ordinary bounds and far in the tails; one- and two-sided."""
import numpy as np
import pytest
import scipy.integrate as si
import scipy.stats as st

import probdl as pd
from probdl.distributions import constraints
from probdl.distributions.truncated import TruncatedNormal
from probdl.testing import gradcheck

# (α, β) in standard units: ordinary, far in the upper tail (Φ(8) rounds to 1), its mirror, one-sided far tails,
# one-sided near the mean.
BOUNDS = [(-1.0, 2.0), (8.0, 9.0), (-9.0, -8.0), (10.0, np.inf), (-np.inf, -10.0), (-np.inf, 0.5), (-0.3, np.inf),
          (-np.inf, np.inf)]
IDS = ["ordinary", "upper-tail", "lower-tail", "one-sided-upper", "one-sided-lower", "below", "above", "none"]


@pytest.fixture
def loc_scale():
    r = np.random.default_rng(3)
    return r.normal(size=3), r.uniform(0.5, 2.0, size=3)


def build(loc, scale, a, b):
    """Ours with bounds loc + a·scale and loc + b·scale (None for an infinite one), and scipy's."""
    low = None if np.isinf(a) else loc + a * scale
    high = None if np.isinf(b) else loc + b * scale
    return TruncatedNormal(loc, scale, low, high), st.truncnorm(a, b, loc, scale)


def entropy_by_quadrature(a, b):
    """The entropy of the standard truncation to [a, b] (a scale of 1, as scipy's entropy fails at infinite
    bounds and loses Z at (8, 9))."""
    lo = a if np.isfinite(a) else (b if np.isfinite(b) else 20.0) - 40  # the mass beyond 40 scales is nil
    hi = b if np.isfinite(b) else lo + 40
    d = TruncatedNormal(0.0, 1.0, a if np.isfinite(a) else None, b if np.isfinite(b) else None)

    def integrand(t):
        lp = d.log_prob(t).item()
        return -lp * np.exp(lp)

    return si.quad(integrand, lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0]


@pytest.mark.parametrize("a,b", BOUNDS, ids=IDS)
def test_values_against_scipy(a, b, loc_scale):
    loc, scale = loc_scale
    d, s = build(loc, scale, a, b)
    q = np.array([0.02, 0.1, 0.5, 0.9, 0.98])[:, None]
    x = s.ppf(q)
    np.testing.assert_allclose(d.log_prob(x).numpy(), s.logpdf(x), rtol=1e-10)
    np.testing.assert_allclose(d.cdf(x).numpy(), s.cdf(x), rtol=1e-10)
    np.testing.assert_allclose(d.icdf(q).numpy(), x, rtol=1e-10)
    np.testing.assert_allclose(d.mean.numpy(), s.mean(), rtol=1e-10)
    np.testing.assert_allclose(d.variance.numpy(), s.var(), rtol=1e-8)  # 1 + αr - r² cancels ~α⁴ ulps far out
    np.testing.assert_allclose(d.entropy().numpy() - np.log(scale), entropy_by_quadrature(a, b), rtol=1e-10)
    assert np.all(np.isfinite(d.log_prob(x).numpy()))


def test_the_mirror_image_agrees_and_scipy_entropy_where_it_is_accurate():
    up, down = TruncatedNormal(0.0, 1.0, 8.0, 9.0), TruncatedNormal(0.0, 1.0, -9.0, -8.0)
    x = np.linspace(8.0, 9.0, 11)
    np.testing.assert_allclose(up.log_prob(x).numpy(), down.log_prob(-x).numpy(), rtol=1e-14)
    np.testing.assert_allclose(up.cdf(x[1:-1]).numpy(), 1 - down.cdf(-x[1:-1]).numpy(), rtol=1e-10)
    assert up.entropy().item() == pytest.approx(st.truncnorm(-9, -8).entropy(), rel=1e-10)
    assert up.mean.item() == pytest.approx(-down.mean.item(), rel=1e-14)
    d = TruncatedNormal(np.zeros(2), 1.0, np.array([-1.0, 0.0]), np.array([2.0, 3.0]))
    np.testing.assert_allclose(d.entropy().numpy(), st.truncnorm([-1.0, 0.0], [2.0, 3.0]).entropy(), rtol=1e-12)
    assert TruncatedNormal(0.0, 1.0, 8.0, 9.0).cdf(np.array([7.0, 8.0, 9.0, 10.0])).tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("a,b", BOUNDS[:6], ids=IDS[:6])
def test_draws_follow_the_distribution(a, b, loc_scale):
    loc, scale = loc_scale
    d, s = build(loc, scale, a, b)
    n = 100_000
    x = d.sample((n,), rng=4).numpy()
    assert x.shape == (n, 3) and d.support.check(x).all()
    assert np.all(np.abs(x.mean(0) - s.mean()) < 5 * np.sqrt(s.var() / n))
    for i in range(3):
        assert st.kstest(x[:, i], st.truncnorm(a, b, loc[i], scale[i]).cdf).pvalue > 1e-3


@pytest.mark.parametrize("a,b", BOUNDS, ids=IDS)
def test_gradients(a, b, loc_scale):
    loc, scale = loc_scale
    low, high = loc + a * scale, loc + b * scale
    d, _ = build(loc, scale, a, b)
    x = d.sample((2,), rng=1).numpy()
    given = [v for v in (low, high) if np.isfinite(v).all()]

    def make(m, s, *bounds):
        it = iter(bounds)
        return TruncatedNormal(m, s, next(it) if np.isfinite(a) else None, next(it) if np.isfinite(b) else None)

    args = [loc, scale, *given]
    gradcheck(lambda *p: make(*p).log_prob(x), args, order=2)
    gradcheck(lambda *p: make(*p).rsample((2,), rng=5), args)
    gradcheck(lambda *p: make(*p).cdf(x), args)
    gradcheck(lambda *p: make(*p).mean + make(*p).variance + make(*p).entropy(), args)


def test_mixed_infinite_bounds_in_one_batch():
    """±inf entries in a bound array mean 'no bound here', with finite values and zero, not NaN, gradients."""
    low, high = np.array([-np.inf, 0.0, 8.0]), np.array([0.5, np.inf, 9.0])
    d = TruncatedNormal(0.0, 1.0, low, high)
    x = np.array([-1.0, 1.0, 8.5])
    np.testing.assert_allclose(d.log_prob(x).numpy(), st.truncnorm(low, high).logpdf(x), rtol=1e-10)
    np.testing.assert_allclose(d.mean.numpy(), st.truncnorm(low, high).mean(), rtol=1e-10)
    lo = pd.tensor(low, requires_grad=True)
    TruncatedNormal(0.0, 1.0, lo, high).log_prob(x).sum().backward()
    assert np.isfinite(lo.grad.numpy()).all() and lo.grad.numpy()[0] == 0.0


def test_pathwise_gradient_of_the_mean():
    """Per-draw derivatives dx/dθ (one parameter copy per draw) average to the gradient of the closed-form mean."""
    n = 100_000
    args = (0.3, 1.2, 8.0, 9.5)
    copies = [pd.tensor(np.full(n, v), requires_grad=True) for v in args]
    TruncatedNormal(*copies).rsample(rng=3).sum().backward()
    exact = pd.grad(lambda *t: TruncatedNormal(*t).mean, argnums=(0, 1, 2, 3))(*(pd.tensor(v) for v in args))
    for c, e in zip(copies, exact):
        g = c.grad.numpy()
        assert abs(g.mean() - e.item()) < 5 * g.std() / np.sqrt(n) + 1e-12


def test_support_shapes_and_mode():
    assert isinstance(TruncatedNormal(0.0, 1.0, -1.0, 1.0).support, constraints._Interval)
    assert repr(TruncatedNormal(0.0, 1.0, low=-1.0).support) == "greater_than(lower_bound=-1.0)"
    assert repr(TruncatedNormal(0.0, 1.0, high=2.0).support) == "less_than(upper_bound=2.0)"
    assert TruncatedNormal().support is constraints.real
    d = TruncatedNormal(np.zeros((2, 1)), np.ones(3), -1.0, None)
    assert d.batch_shape == (2, 3) and d.sample((4,), rng=0).shape == (4, 2, 3)
    assert d.log_prob(np.zeros(3)).shape == (2, 3) and d.mean.shape == d.entropy().shape == (2, 3)
    assert d.expand((5, 2, 3)).sample(rng=0).shape == (5, 2, 3) and d.to_event(1).event_shape == (3,)
    np.testing.assert_array_equal(TruncatedNormal(0.0, 1.0, np.array([-1.0, 1.0, -3.0]),
                                                  np.array([1.0, 2.0, -2.0])).mode.numpy(), [0.0, 1.0, -2.0])


def test_validation():
    with pytest.raises(ValueError, match=r"TruncatedNormal: parameter low must be below high; got low=\[0.0, 2.0\]"):
        TruncatedNormal(0.0, 1.0, np.array([0.0, 2.0]), 1.0)
    with pytest.raises(ValueError, match="TruncatedNormal: parameter low must be below high"):
        TruncatedNormal(0.0, 1.0, np.nan)
    with pytest.raises(ValueError, match="TruncatedNormal: parameter scale must satisfy the constraint positive"):
        TruncatedNormal(0.0, -1.0, 0.0)
    with pytest.raises(ValueError, match=r"TruncatedNormal: value outside the support interval\(lower_bound=-1.0"):
        TruncatedNormal(0.0, 1.0, -1.0, 1.0).log_prob(1.5)
    with pytest.raises(ValueError, match="TruncatedNormal: value outside the support greater_than"):
        TruncatedNormal(0.0, 1.0, low=1.0).log_prob(0.5)
    lp = TruncatedNormal(0.0, 1.0, -1.0, 1.0, validate_args=False).log_prob(np.array([0.0, 1.5])).numpy()
    assert np.isfinite(lp[0]) and lp[1] == -np.inf  # no density outside the truncation


def test_on_a_device(device):
    args = (np.array([0.0, 1.0]), np.array([0.7, 3.0]), np.array([8.0 * 0.7, -5.0]), np.array([9.0 * 0.7, 2.0]))
    x = np.array([5.9, 0.0])
    cpu = TruncatedNormal(*args).log_prob(x).numpy()
    d = TruncatedNormal(*(pd.tensor(a, device=device) for a in args))
    lp = d.log_prob(pd.tensor(x, device=device))
    assert lp.device == device
    np.testing.assert_allclose(lp.numpy(), cpu, rtol=1e-12)
    assert d.rsample((3,), rng=0).device == device
