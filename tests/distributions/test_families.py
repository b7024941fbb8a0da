"""Every closed-form continuous family against scipy.stats: values, moments, draws, gradients.

One row per family: how to build it, the matching scipy distribution, and values inside its support.
"""
import numpy as np
import pytest
import scipy.stats as st

import probdl as pd
import probdl.distributions as dist
from probdl.distributions.location_scale import AsymmetricLaplace, Kumaraswamy, Pareto, SoftLaplace, Weibull
from probdl.distributions.truncated import TruncatedNormal
from probdl.testing import assert_matches_scipy, gradcheck


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
    ("Weibull", lambda r: (P(r, 3), r.uniform(0.6, 3.0, size=3)), Weibull, lambda s, k: st.weibull_min(k, scale=s),
     lambda r, s: r.exponential(size=s) + 0.01),
    ("Pareto", lambda r: (P(r, 3) / 2, r.uniform(4.5, 6.0, size=3)), Pareto,  # scale ≤ 1; α > 4: finite variance
     lambda s, a: st.pareto(a, scale=s), lambda r, s: 1 + r.exponential(size=s)),
    ("AsymmetricLaplace", lambda r: (r.normal(size=3), P(r, 3), r.uniform(0.4, 2.5, size=3)), AsymmetricLaplace,
     lambda m, s, k: st.laplace_asymmetric(k, m, s), lambda r, s: r.normal(size=s) * 2),  # scipy's kappa = asymmetry
    ("SoftLaplace", lambda r: (r.normal(size=3), P(r, 3)), SoftLaplace, lambda m, s: st.hypsecant(m, s),
     lambda r, s: r.normal(size=s) * 2),
    ("TruncatedNormal", lambda r: (r.normal(size=3) * 0.3, P(r, 3), r.uniform(-2.0, -0.6, size=3),
                                   r.uniform(0.6, 2.0, size=3)), TruncatedNormal,  # every bound outside [-0.5, 0.5]
     lambda m, s, lo, hi: st.truncnorm((lo - m) / s, (hi - m) / s, m, s), lambda r, s: r.uniform(-0.5, 0.5, size=s)),
]
IDS = [f[0] for f in FAMILIES]


@pytest.fixture
def r():
    return np.random.default_rng(2024)


@pytest.mark.parametrize("name,params,make,ref,values", FAMILIES, ids=IDS)
def test_values_against_scipy(name, params, make, ref, values, r):
    p = params(r)
    d = make(*p)
    assert_matches_scipy(d, ref(*p), values(r, (4, 3)), r.uniform(0.02, 0.98, size=(4, 3)), rtol=1e-10)
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


# ---------------------------------------------------------------- families without a scipy counterpart, and extras
QUAD_FAMILIES = [  # (builder, (lower, upper) of the support)
    (lambda: Kumaraswamy(np.array([0.7, 2.0, 3.0, 1.0]), np.array([2.5, 3.0, 0.6, 1.0])), (0.0, 1.0)),
    (lambda: SoftLaplace(np.array([0.3, -1.0]), np.array([1.7, 0.4])), (-np.inf, np.inf)),
]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # x^(a-1) at 0; the tolerances decide
@pytest.mark.parametrize("make,bounds", QUAD_FAMILIES, ids=["Kumaraswamy", "SoftLaplace"])
def test_density_cdf_moments_and_entropy_by_quadrature(make, bounds):
    import scipy.integrate as si  # noqa: PLC0415

    d = make()
    lo, hi = bounds
    for i in range(d.batch_shape[0]):
        def logpdf(t, i=i):
            return d.log_prob(np.full(d.batch_shape, t)).numpy()[i]

        def integral(f, upper=hi, logpdf=logpdf):
            return si.quad(lambda t: f(t) * np.exp(logpdf(t)), lo, upper, epsabs=1e-13, epsrel=1e-12, limit=200)[0]

        mean, var = d.mean.numpy()[i], d.variance.numpy()[i]
        assert integral(lambda t: 1.0) == pytest.approx(1.0, rel=1e-9)
        assert integral(lambda t: t) == pytest.approx(mean, rel=1e-9, abs=1e-12)
        assert integral(lambda t, m=mean: (t - m) ** 2) == pytest.approx(var, rel=1e-9)
        assert integral(lambda t: -logpdf(t)) == pytest.approx(d.entropy().numpy()[i], rel=1e-9, abs=1e-12)
        q = np.array([0.05, 0.3, 0.5, 0.8, 0.99])
        x = d.icdf(q[:, None]).numpy()[:, i]
        np.testing.assert_allclose([integral(lambda t: 1.0, upper=v) for v in x], q, rtol=1e-9)
        np.testing.assert_allclose(d.cdf(np.broadcast_to(x[:, None], (5,) + d.batch_shape)).numpy()[:, i], q,
                                   rtol=1e-12)


@pytest.mark.parametrize("make,bounds", QUAD_FAMILIES, ids=["Kumaraswamy", "SoftLaplace"])
def test_draws_and_gradients_without_scipy(make, bounds):
    d = make()
    n = 20000
    x = d.sample((n,), rng=1).numpy()
    assert x.shape == (n,) + d.batch_shape and d.support.check(x).all()
    mean, var = d.mean.numpy(), d.variance.numpy()
    assert np.all(np.abs(x.mean(0) - mean) < 5 * np.sqrt(var / n))
    for i in range(d.batch_shape[0]):  # KS against the CDF, itself checked by quadrature above
        assert st.kstest(x[:, i], lambda t, i=i: d.cdf(np.broadcast_to(t[:, None], t.shape + d.batch_shape))
                         .numpy()[:, i]).pvalue > 1e-3
    p = [a.numpy() for a in (getattr(d, k) for k in d.arg_constraints)]
    gradcheck(lambda *a: type(d)(*a).log_prob(x[:3]), p, order=2)
    gradcheck(lambda *a: type(d)(*a).rsample((2,), rng=5), p)
    gradcheck(lambda *a: type(d)(*a).cdf(x[:3]), p)
    gradcheck(lambda *a: type(d)(*a).entropy() + type(d)(*a).mean + type(d)(*a).variance, p)


def test_pathwise_gradient_of_the_mean_matches_the_closed_form():
    """d/dθ E[X]: the average of per-draw pathwise derivatives dx/dθ (one parameter copy per draw, so one backward
    pass gives them all) within 5 standard errors of the gradient of the closed-form mean."""
    n = 100_000
    for make, args in [(Weibull, (1.3, 1.7)), (Kumaraswamy, (2.0, 3.0)), (Pareto, (0.8, 5.0)),
                       (AsymmetricLaplace, (0.2, 1.1, 1.6)), (SoftLaplace, (0.2, 1.1)),
                       (TruncatedNormal, (0.3, 1.2, -0.5, 2.0))]:
        copies = [pd.tensor(np.full(n, a), requires_grad=True) for a in args]
        make(*copies).rsample(rng=3).sum().backward()
        exact = pd.grad(lambda *t, make=make: make(*t).mean, argnums=tuple(range(len(args))))(
            *(pd.tensor(a) for a in args))
        for c, e in zip(copies, exact):
            per_draw = c.grad.numpy()
            assert abs(per_draw.mean() - e.item()) < 5 * per_draw.std() / np.sqrt(n) + 1e-12, make.__name__


def test_modes_and_infinite_moments():
    np.testing.assert_allclose(Weibull(2.0, np.array([0.5, 1.0, 3.0])).mode.numpy(),
                               [0.0, 0.0, 2.0 * (2 / 3) ** (1 / 3)], rtol=1e-14)
    k = Kumaraswamy(np.array([2.0, 0.5, 3.0, 1.0]), np.array([3.0, 2.0, 1.0, 1.0]))
    np.testing.assert_allclose(k.mode.numpy(), [(1 / 5) ** 0.5, np.nan, 1.0, np.nan], rtol=1e-14)
    x = np.linspace(0.001, 0.999, 9999)  # the mode maximises the density
    assert abs(x[np.argmax(Kumaraswamy(2.0, 3.0).log_prob(x).numpy())] - (1 / 5) ** 0.5) < 1e-3
    p = Pareto(2.0, np.array([0.5, 1.0, 1.5, 2.0, 3.0]))
    np.testing.assert_array_equal(p.mean.numpy()[:2], np.inf)
    np.testing.assert_array_equal(p.variance.numpy()[:4], np.inf)
    np.testing.assert_allclose(p.mean.numpy()[2:], st.pareto([1.5, 2.0, 3.0], scale=2.0).mean(), rtol=1e-14)
    assert p.variance.numpy()[4] == pytest.approx(st.pareto(3.0, scale=2.0).var(), rel=1e-14)
    assert p.mode.numpy().tolist() == [2.0] * 5
    alpha = pd.tensor([0.5, 1.5], requires_grad=True)
    Pareto(2.0, alpha).mean.sum().backward()  # 0 where infinite, no NaN
    np.testing.assert_allclose(alpha.grad.numpy(), [0.0, -2.0 / 0.5 ** 2], rtol=1e-14)
    assert AsymmetricLaplace(0.4, 2.0, 3.0).mode.item() == 0.4 and SoftLaplace(-1.0, 2.0).mode.item() == -1.0
    # cdf outside the support is 0 or 1
    assert Weibull(1.0, 2.0).cdf(-1.0).item() == 0.0 and Pareto(2.0, 3.0).cdf(1.0).item() == 0.0
    with np.errstate(divide="ignore"):  # log 0 = -inf on the way to cdf(0) = 0
        cdf = Kumaraswamy(2.0, 3.0).cdf(np.array([-1.0, 0.0, 1.0, 2.0])).numpy()
    np.testing.assert_array_equal(cdf, [0, 0, 1, 1])


def test_tail_accuracy_of_the_new_quantiles_and_cdfs():
    q = np.array([1e-300, 1e-12, 1 - 1e-12])
    np.testing.assert_allclose(Weibull(1.5, 0.7).icdf(q).numpy(), st.weibull_min(0.7, scale=1.5).ppf(q), rtol=1e-10)
    exact = np.log(np.tan(np.pi / 2 * np.minimum(q, 1 - q))) * np.sign(0.5 - q)  # (scipy's ppf loses the upper tail)
    np.testing.assert_allclose(SoftLaplace(0.0, 1.0).icdf(q).numpy(), exact, rtol=1e-13)
    np.testing.assert_allclose(Kumaraswamy(2.0, 3.0).icdf(np.array([1e-20, 1 - 1e-12])).numpy(),
                               [np.sqrt(1e-20 / 3), (1 - 1e-4) ** 0.5], rtol=1e-8)  # 1 - (1-q)^(1/b) ≈ q/b
    x = np.array([-800.0, -40.0, 40.0, 800.0])
    np.testing.assert_allclose(SoftLaplace(0.0, 1.0).cdf(x).numpy(), st.hypsecant.cdf(x), rtol=1e-12)
    np.testing.assert_allclose(AsymmetricLaplace(0.0, 1.0, 2.0).log_prob(x).numpy(),
                               st.laplace_asymmetric(2.0).logpdf(x), rtol=1e-14)
    assert np.isfinite(Kumaraswamy(2.0, 3.0).log_prob(np.array([1e-300, 1 - 1e-16])).numpy()).all()


def test_new_families_validate_parameters_and_values():
    with pytest.raises(ValueError, match="Weibull: parameter concentration must satisfy the constraint positive"):
        Weibull(1.0, np.array([1.0, -2.0]))
    with pytest.raises(ValueError, match="Weibull: value outside the support positive: got -1.0"):
        Weibull(1.0, 2.0).log_prob(-1.0)
    with pytest.raises(ValueError, match="Pareto: parameter alpha must satisfy the constraint positive"):
        Pareto(1.0, 0.0)
    with pytest.raises(ValueError, match="Pareto: value outside the support greater_than_eq"):
        Pareto(2.0, 3.0).log_prob(1.5)
    with pytest.raises(ValueError, match="Kumaraswamy: parameter concentration0 must satisfy the constraint positive"):
        Kumaraswamy(1.0, np.nan)
    with pytest.raises(ValueError, match="Kumaraswamy: value outside the support unit_interval: got 1.5"):
        Kumaraswamy(1.0, 2.0).log_prob(1.5)
    with pytest.raises(ValueError, match="AsymmetricLaplace: parameter asymmetry must satisfy the constraint positive"):
        AsymmetricLaplace(0.0, 1.0, -1.0)
    with pytest.raises(ValueError, match="SoftLaplace: parameter scale must satisfy the constraint positive"):
        SoftLaplace(0.0, 0.0)
    with pytest.raises(ValueError, match="SoftLaplace: value outside the support real: got inf"):
        SoftLaplace(0.0, 1.0).log_prob(np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):  # no checks on the fast path
        assert np.isnan(Weibull(1.0, -2.0, validate_args=False).log_prob(1.0).item())
        assert Pareto(2.0, 3.0, validate_args=False).log_prob(1.5).shape == ()


def test_new_families_shapes():
    for d in (Weibull(np.ones((2, 1)), np.ones(3)), Pareto(np.ones((2, 1)), np.ones(3)),
              Kumaraswamy(np.ones((2, 1)), np.ones(3)), AsymmetricLaplace(0.0, np.ones((2, 1)), np.ones(3)),
              SoftLaplace(np.zeros((2, 1)), np.ones(3)), TruncatedNormal(np.zeros((2, 1)), 1.0, -np.ones(3), None)):
        assert d.batch_shape == (2, 3) and d.event_shape == ()
        x = d.sample((4,), rng=0)
        assert x.shape == (4, 2, 3) and d.log_prob(x).shape == (4, 2, 3) and d.rsample(rng=0).shape == (2, 3)
        assert d.mean.shape == d.variance.shape == d.entropy().shape == (2, 3)
        assert d.expand((5, 2, 3)).sample((4,), rng=0).shape == (4, 5, 2, 3)
        ind = d.to_event(1)
        assert ind.batch_shape == (2,) and ind.event_shape == (3,) and ind.log_prob(x).shape == (4, 2)
    assert AsymmetricLaplace(np.zeros(4)).batch_shape == (4,) and Weibull().batch_shape == ()


@pytest.mark.parametrize("make,args,x", [
    (Weibull, (np.array([1.0, 2.0]), np.array([0.7, 3.0])), np.array([0.5, 1.5])),
    (Pareto, (np.array([1.0, 0.5]), np.array([2.0, 3.0])), np.array([1.5, 2.5])),
    (Kumaraswamy, (np.array([1.0, 2.0]), np.array([0.7, 3.0])), np.array([0.3, 0.6])),
    (AsymmetricLaplace, (np.array([0.0, 1.0]), np.array([0.7, 3.0]), np.array([0.5, 2.0])), np.array([-0.3, 2.0])),
    (SoftLaplace, (np.array([0.0, 1.0]), np.array([0.7, 3.0])), np.array([-0.3, 2.0])),
    (TruncatedNormal, (np.array([0.0, 1.0]), np.array([0.7, 3.0]), np.array([-1.0, 0.0])), np.array([-0.3, 2.0])),
], ids=["Weibull", "Pareto", "Kumaraswamy", "AsymmetricLaplace", "SoftLaplace", "TruncatedNormal"])
def test_new_families_on_a_device(make, args, x, device):
    cpu = make(*args).log_prob(x).numpy()
    d = make(*(pd.tensor(a, device=device) for a in args))
    lp = d.log_prob(pd.tensor(x, device=device))
    assert lp.device == device
    np.testing.assert_allclose(lp.numpy(), cpu, rtol=1e-12)
    assert d.rsample((3,), rng=0).device == device
