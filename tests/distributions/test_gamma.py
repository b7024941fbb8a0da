"""Gamma, InverseGamma, Chi2, Beta, Dirichlet, StudentT, and the implicit reparameterization gradient they share.

The implicit gradient dx/dα = -(∂P(α, x)/∂α)/p(x; α) is checked three ways: against high-precision references
(mpmath, computed offline), against Richardson-extrapolated finite differences of scipy's incomplete gamma
function, and by the Monte Carlo gradients of expectations with closed forms.
"""
import math

import numpy as np
import pytest
import scipy.special as sc
import scipy.stats as st

import probdl
from probdl import tensor as T
from probdl.distributions.gamma import Beta, Chi2, Dirichlet, Gamma, InverseGamma, StudentT
from probdl.distributions.implicit_reparam import (
    _dlogx_dalpha,
    gammainc,
    gammainc_grad_a,
    gammaincc,
    gammainccinv,
    gammaincinv,
    log_standard_gamma,
    standard_gamma,
    standard_gamma_grad,
)
from probdl.distributions.kl import kl_divergence
from probdl.testing import assert_kl_matches_monte_carlo, assert_matches_scipy, gradcheck

# (α, log x, d log x/dα) from mpmath at 50 digits: -(d/dα P(α, x)) / (x p(x; α)), P by mp.gammainc(regularized=True)
# and d/dα by mp.diff. x runs over the quantiles 1e-12 ... 1 - 1e-12 (those that are floats), plus points far below
# the smallest float (log x = -1000, -1e5), which only the log-space path can reach.
MPMATH = [
    (0.001, -693.7235741582292, 693148.0022264189),
    (0.001, -105.93690925610966, 105361.33732429935),
    (0.001, -1.328892733731185, 1304.237450496584),
    (0.001, 1.6331593382122587, 167.3636617400666),
    (0.001, 2.8789595184195953, 53.53087746873254),
    (0.01, -691.3445586928206, 69078.36732349519),
    (0.01, -230.8275400940115, 23026.66546361428),
    (0.01, -69.88374885060146, 6932.28633927328),
    (0.01, -11.105067473379146, 1054.4353728448368),
    (0.01, 0.4115029421108485, 45.3769118751183),
    (0.01, 1.9672876529608931, 12.766018081955146),
    (0.01, 2.996664835723223, 4.941646510524195),
    (0.5, -55.50360670712759, 111.08019336221233),
    (0.5, -27.872585591198515, 55.81815113038411),
    (0.5, -14.057074509635768, 28.187144424119687),
    (0.5, -4.841476608193014, 9.814500637922027),
    (0.5, -1.4807447797617284, 3.773570991998182),
    (0.5, 0.3021556188034876, 1.5854589381031163),
    (0.5, 1.6889481248799285, 0.6501706672324521),
    (0.5, 2.4819074473768024, 0.3636976548831738),
    (0.5, 3.2356183106341105, 0.20214426442295255),
    (1.0, -27.63102111592805, 28.05380545104079),
    (1.0, -13.815510057964065, 14.238301762215926),
    (1.0, -6.907255070523716, 7.333957746415921),
    (1.0, -2.2503673273124445, 2.846988800186167),
    (1.0, -0.366512920581664, 1.3965934762369347),
    (1.0, 0.834032445247956, 0.753564335738052),
    (1.0, 1.9326447339160655, 0.3818918426641459),
    (1.0, 2.6257919144739295, 0.23674695200194257),
    (1.0, 3.3189398956562393, 0.14227196142042656),
    (10.0, -1.2260126630788377, 0.36781444292328414),
    (10.0, 0.24437166241122948, 0.23938807932371492),
    (10.0, 1.0853650544872997, 0.17566616250062664),
    (10.0, 1.8279796283632836, 0.12769217108365427),
    (10.0, 2.268895375574469, 0.10340442775212666),
    (10.0, 2.6536637272129195, 0.08487201236292345),
    (10.0, 3.120485331363824, 0.06568575109248648),
    (10.0, 3.4876912516913015, 0.0530263533996716),
    (10.0, 3.917605619719493, 0.040719495107668965),
    (1000.0, 6.676376948018979, 0.0011203328924820157),
    (1000.0, 6.753221618986626, 0.0010794358422139708),
    (1000.0, 6.8080684054398946, 0.0010508464929022947),
    (1000.0, 6.866614413553825, 0.0010208816019334726),
    (1000.0, 6.907421909847787, 0.0010003334049339134),
    (1000.0, 6.947681808386293, 0.0009803329453135043),
    (1000.0, 7.003590864639643, 0.0009530062375839516),
    (1000.0, 7.054085093421951, 0.0009287735001757649),
    (1000.0, 7.12195057913075, 0.0008968719738570021),
    (10000.0, 9.13912671170378, 0.00010360466742753565),
    (10000.0, 9.162392540250078, 0.00010241825596866835),
    (10000.0, 9.179244300481349, 0.00010156455416852843),
    (10000.0, 9.197463912561503, 0.00010064688208777993),
    (10000.0, 9.210307038284826, 0.00010000333340493784),
    (10000.0, 9.2230954167982, 9.936525958270244e-05),
    (10000.0, 9.24105144452056, 9.847394716920466e-05),
    (10000.0, 9.25746831395642, 9.76637385048487e-05),
    (10000.0, 9.279837712167279, 9.656698793385673e-05),
    (0.001, -1000.0, 999424.4280681896),
    (0.001, -744.0, 743424.4280681896),
    (0.01, -700.0, 69943.91145421313),
    (0.1, -300.0, 2995.7624505958893),
    (0.001, -100000.0, 99999424.42806819),
]


def test_implicit_gradient_matches_high_precision_references():
    a, log_x, ref = np.array(MPMATH).T
    np.testing.assert_allclose(_dlogx_dalpha(a, log_x), ref, rtol=1e-11)


def _richardson(f, a, h):
    d = lambda h: (f(a + h) - f(a - h)) / (2 * h)  # noqa: E731
    return (4 * d(h / 2) - d(h)) / 3


@pytest.mark.parametrize("a", [1e-3, 1e-2, 0.5, 1.0, 10.0, 1e3])
def test_gammainc_grad_a_matches_finite_differences(a):
    q = np.array([1e-6, 1e-3, 0.1, 0.5, 0.9, 1 - 1e-3, 1 - 1e-6])
    x = np.where(q < 0.5, sc.gammaincinv(a, q), sc.gammainccinv(a, 1 - q))
    q, x = q[x > 0], x[x > 0]  # tiny α: low quantiles underflow (the log-space references above cover them)
    h = 1e-3 * min(a, math.sqrt(a))
    # differentiate P below the median and -Q above it, so that neither loses digits to 1 - P
    fd = np.where(q < 0.5, _richardson(lambda t: sc.gammainc(t, x), a, h),
                  -_richardson(lambda t: sc.gammaincc(t, x), a, h))
    np.testing.assert_allclose(gammainc_grad_a(a, x), fd, rtol=1e-8)  # the differences, not the method, limit this


def test_implicit_gradient_at_zero_and_below_the_smallest_float():
    a = np.array([1e-3, 0.5, 2.0])
    assert np.array_equal(standard_gamma_grad(a, np.zeros(3)), np.zeros(3))
    tiny = np.array([5e-324, 1e-310, 1e-300])
    g = standard_gamma_grad(a, tiny)
    assert np.all(np.isfinite(g)) and np.all(g >= 0)
    # as x → 0, P(α, x) → x^α/Γ(α+1), so d log x/dα → (ψ(α+1) - log x)/α, exact to O(x)
    log_x = np.array([-1e4, -800.0, -745.0])
    np.testing.assert_allclose(_dlogx_dalpha(a, log_x), (sc.digamma(a + 1) - log_x) / a, rtol=1e-13)


def test_standard_gamma_gradient_per_draw_is_the_implicit_one():
    # for fixed draws x, the op's dx/dα equals -(∂F/∂α)/f with F, f scipy's CDF (or survival function) and density
    alpha = np.repeat([0.01, 0.3, 1.0, 4.5, 50.0], 8)
    a = probdl.tensor(alpha, requires_grad=True)
    x = standard_gamma(a, alpha.shape, rng=3)
    x.sum().backward()
    xs = x.numpy()
    upper = st.gamma.cdf(xs, alpha) > 0.5
    fd = np.where(upper, -_richardson(lambda t: st.gamma.sf(xs, t), alpha, 1e-4 * alpha),
                  _richardson(lambda t: st.gamma.cdf(xs, t), alpha, 1e-4 * alpha))
    expected = -fd / st.gamma.pdf(xs, alpha)
    ok = xs > 1e-300  # draws that underflowed: the gradient is x·(...) = 0 to double precision
    np.testing.assert_allclose(a.grad.numpy()[ok], expected[ok], rtol=1e-6)
    assert np.all(np.abs(a.grad.numpy()[~ok]) < 1e-290)


@pytest.mark.parametrize("make", [lambda a: Gamma(a, T(2.0)), lambda a: InverseGamma(a, T(2.0)),
                                  lambda a: Chi2(a), lambda a: Beta(a, T(1.5)), lambda a: StudentT(a)])
def test_scalar_rsample_is_a_differentiable_scalar(make):
    # numpy's standard_gamma gives a Python float for a 0-d shape; the draw must still be a 0-d Tensor
    a = probdl.tensor(2.5, requires_grad=True)
    x = make(a).rsample(rng=0)
    assert x.shape == ()
    x.backward()
    assert np.isfinite(a.grad.numpy()) and a.grad.numpy() != 0.0


def test_log_standard_gamma_draws_and_gradient():
    alpha = np.array([1e-3, 0.2, 3.0])
    a = probdl.tensor(np.broadcast_to(alpha, (20000, 3)).copy(), requires_grad=True)
    lx = log_standard_gamma(a, (20000, 3), rng=4)
    assert np.all(np.isfinite(lx.numpy()))
    # KS against the law of log X, P(log X ≤ t) = P(α, e^t), which is e^(αt)/Γ(α+1)·(1 - α e^t/(α+1) + O(e^2t))
    # where e^t underflows
    def cdf(t, al):
        return np.where(t < -30, np.exp(al * t - sc.gammaln(al + 1)), sc.gammainc(al, np.exp(t)))

    for i, al in enumerate(alpha):
        assert st.kstest(lx.numpy()[:, i], lambda t, al=al: cdf(t, al)).pvalue > 1e-3
    lx.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), _dlogx_dalpha(a.numpy(), lx.numpy()), rtol=1e-12)
    assert np.all(np.isfinite(a.grad.numpy())) and np.all(a.grad.numpy() > 0)


def test_incomplete_gamma_ops_values_and_gradients():
    a = np.array([0.3, 2.0, 15.0])
    x = np.array([[0.2, 1.5, 20.0], [0.01, 3.0, 10.0]])
    q = np.array([0.1, 0.5, 0.97])
    np.testing.assert_allclose(gammainc(a, x).numpy(), sc.gammainc(a, x), rtol=1e-14)
    np.testing.assert_allclose(gammaincc(a, x).numpy(), sc.gammaincc(a, x), rtol=1e-14)
    np.testing.assert_allclose(gammaincinv(a, q).numpy(), sc.gammaincinv(a, q), rtol=1e-14)
    np.testing.assert_allclose(gammainccinv(a, q).numpy(), sc.gammainccinv(a, q), rtol=1e-14)
    for f, v in [(gammainc, x), (gammaincc, x), (gammaincinv, q), (gammainccinv, q)]:
        gradcheck(f, [a, v])
        gradcheck(lambda v, f=f: f(a, v), [v], order=2)  # any order in the value


def test_float32_draws_and_gradients():
    a = probdl.tensor(np.array([1e-3, 0.5, 4.0], dtype=np.float32), requires_grad=True)
    for x in (standard_gamma(a, (50, 3), rng=0), log_standard_gamma(a, (50, 3), rng=0)):
        assert x.dtype == np.float32
        x.sum().backward()
        assert a.grad.dtype == np.float32 and np.all(np.isfinite(a.grad.numpy()))
        a.grad = None
    d = Beta(a, a)
    assert d.rsample((4,), rng=0).dtype == np.float32
    assert standard_gamma(probdl.tensor([1, 2]), (3, 2), rng=0).dtype == probdl.get_default_dtype()  # ints: floats
    with pytest.raises(ValueError, match=r"standard_gamma: concentration of shape \(2,\) does not broadcast"):
        standard_gamma(probdl.tensor([1.0, 2.0]), (3,), rng=0)


# ------------------------------------------------------------------ the families against scipy
def P(r, *shape):
    return r.uniform(0.5, 3.0, size=shape)


# name, params maker, probdl builder, scipy builder, support sampler
FAMILIES = [
    ("Gamma", lambda r: (P(r, 3), P(r, 3)), Gamma, lambda a, b: st.gamma(a, scale=1 / b),
     lambda r, s: r.exponential(size=s) + 0.01),
    ("InverseGamma", lambda r: (P(r, 3) + 2.0, P(r, 3)), InverseGamma, lambda a, b: st.invgamma(a, scale=b),
     lambda r, s: r.exponential(size=s) + 0.05),
    ("Chi2", lambda r: (P(r, 3) * 2,), Chi2, lambda df: st.chi2(df), lambda r, s: r.exponential(size=s) + 0.01),
    ("Beta", lambda r: (P(r, 3), P(r, 3)), Beta, lambda a, b: st.beta(a, b), lambda r, s: r.uniform(0.01, 0.99, s)),
    ("StudentT", lambda r: (P(r, 3) + 2.0, r.normal(size=3), P(r, 3)), StudentT, lambda df, m, s: st.t(df, m, s),
     lambda r, s: r.normal(size=s) * 3),
]
IDS = [f[0] for f in FAMILIES]


@pytest.fixture
def r():
    return np.random.default_rng(2024)


@pytest.mark.parametrize("name,params,make,ref,values", FAMILIES, ids=IDS)
def test_values_against_scipy(name, params, make, ref, values, r):
    p = params(r)
    d = make(*p)
    assert_matches_scipy(d, ref(*p), values(r, (4, 3)), r.uniform(0.001, 0.999, size=(4, 3)), rtol=1e-8)
    assert d.batch_shape == (3,) and d.sample((2,), rng=0).shape == (2, 3)
    assert d.mean.shape == d.variance.shape == d.mode.shape == d.entropy().shape == (3,)


@pytest.mark.parametrize("name,params,make,ref,values", FAMILIES, ids=IDS)
def test_draws_follow_the_distribution(name, params, make, ref, values, r):
    p = params(r)
    d, s = make(*p), ref(*p)
    x = d.sample((20000,), rng=1).numpy()
    assert d.support.check(x).all()
    # Kolmogorov-Smirnov on each batch member; with a fixed seed, p > 1e-3 fails only if the sampler is wrong.
    assert min(st.kstest(x[:, i], ref(*(q[i] for q in p)).cdf).pvalue for i in range(3)) > 1e-3
    assert np.all(np.abs(x.mean(0) - s.mean()) < 5 * np.sqrt(s.var() / 20000))


@pytest.mark.parametrize("make,ref,upper", [
    (lambda: Gamma(np.array([0.01, 0.1]), 2.0), lambda i: st.gamma([0.01, 0.1][i], scale=0.5), np.inf),
    (lambda: Beta(np.array([0.02, 0.3]), np.array([0.05, 0.02])), lambda i: st.beta([0.02, 0.3][i], [0.05, 0.02][i]),
     1 - np.finfo(float).epsneg),
    (lambda: InverseGamma(np.array([0.05, 0.5]), 1.0), lambda i: st.invgamma([0.05, 0.5][i]), np.inf),
], ids=["Gamma", "Beta", "InverseGamma"])
def test_draws_with_small_concentrations(make, ref, upper):
    # draws stay inside the support with a finite log_prob even where Gamma draws underflow. As in PyTorch, draws are
    # clamped to [tiny, upper] (for Beta(0.3, 0.02), half the mass lies above 1 - 1e-16): the atoms at the clamps must
    # hold the mass F(tiny) and 1 - F(upper), and the draws between them follow the law of X given tiny < X < upper.
    d, n, tiny = make(), 20000, np.finfo(float).tiny
    x = d.sample((n,), rng=2).numpy()
    assert d.support.check(x).all() and np.all(np.isfinite(d.log_prob(x).numpy()))
    for i in range(2):
        s = ref(i)
        for at, mass in ((tiny, s.cdf(tiny)), (upper, s.sf(upper))):
            assert abs(np.mean(x[:, i] == at) - mass) <= 5 * np.sqrt(mass * (1 - mass) / n) + 1 / n
        inside = x[(x[:, i] > tiny) & (x[:, i] < upper), i]
        lo, hi = s.cdf(tiny), s.cdf(upper)
        assert st.kstest(inside, lambda t, s=s, lo=lo, hi=hi: (s.cdf(t) - lo) / (hi - lo)).pvalue > 1e-3


@pytest.mark.parametrize("name,params,make,ref,values", FAMILIES, ids=IDS)
def test_log_prob_gradients(name, params, make, ref, values, r):
    p = params(r)
    x = values(r, (3,))
    gradcheck(lambda *a: make(*a).log_prob(x), list(p))
    gradcheck(lambda v: make(*p).log_prob(v), [x])


def test_cdf_and_icdf_gradients():
    a, b = np.array([0.7, 2.0, 9.0]), np.array([0.5, 1.5, 3.0])
    x, q = np.array([0.3, 1.2, 2.5]), np.array([0.05, 0.5, 0.99])
    for make in (Gamma, InverseGamma):
        gradcheck(lambda a, b, x, make=make: make(a, b).cdf(x), [a, b, x])
        gradcheck(lambda a, b, q, make=make: make(a, b).icdf(q), [a, b, q])
    gradcheck(lambda df, x: Chi2(df).cdf(x), [a, x])
    # Beta and StudentT: differentiable in the value (and loc, scale), not in the shape parameters
    gradcheck(lambda x: Beta(a, b).cdf(x), [q])
    gradcheck(lambda q: Beta(a, b).icdf(q), [q])
    gradcheck(lambda loc, scale, x: StudentT(a + 1, loc, scale).cdf(x), [b, b, x])
    gradcheck(lambda loc, scale, q: StudentT(a + 1, loc, scale).icdf(q), [b, b, q])
    df = probdl.tensor(a, requires_grad=True)
    with pytest.raises(RuntimeError, match="stdtr: the gradient with respect to the shape parameters"):
        StudentT(df).cdf(x).sum().backward()


def test_rsample_gradients_in_location_and_scale_parameters(r):
    # with a fixed rng a draw is a smooth map of rate, loc and scale; not of the concentrations, whose pathwise
    # gradient is the implicit one (not that of NumPy's rejection sampler): those are checked below by expectations
    a, b = P(r, 3), P(r, 3)
    gradcheck(lambda b: Gamma(a, b).rsample((2,), rng=5), [b])
    gradcheck(lambda b: InverseGamma(a, b).rsample((2,), rng=5), [b])
    gradcheck(lambda m, s: StudentT(a, m, s).rsample((2,), rng=5), [b, b])


# ------------------------------------------------------------------ pathwise gradients of expectations
N = 100_000


def _per_draw(values, make, f):
    """Per-draw pathwise gradients of f(x) for the parameters ``values`` (each tiled to N independent copies)."""
    ts = [probdl.tensor(np.tile(v, (N,) + (1,) * np.ndim(v)), requires_grad=True) for v in values]
    f(make(*ts).rsample(rng=11)).sum().backward()
    return [t.grad.numpy() for t in ts]


def _assert_within_5se(grads, expected):
    for g, e in zip(grads, expected):
        mean, se = g.mean(0), g.std(0) / np.sqrt(len(g))
        assert np.all(np.abs(mean - e) < 5 * se), (mean, e, se)


@pytest.mark.parametrize("a,b", [(0.05, 2.0), (2.5, 1.5)])
def test_gamma_expectation_gradients(a, b):
    _assert_within_5se(_per_draw([a, b], Gamma, lambda x: x), [1 / b, -a / b ** 2])       # E X = a/b
    _assert_within_5se(_per_draw([a, b], Gamma, lambda x: x * x), [(2 * a + 1) / b ** 2,  # E X² = a(a+1)/b²
                                                                    -2 * a * (a + 1) / b ** 3])


def test_chi2_and_inverse_gamma_expectation_gradients():
    _assert_within_5se(_per_draw([3.0], Chi2, lambda x: x * x), [2 * 3.0 + 2])            # E X² = df(df+2)
    a, b = 5.0, 2.0
    _assert_within_5se(_per_draw([a, b], InverseGamma, lambda x: x), [-b / (a - 1) ** 2, 1 / (a - 1)])


@pytest.mark.parametrize("a,b", [(0.3, 0.8), (2.0, 5.0)])
def test_beta_expectation_gradients(a, b):
    s = a + b  # E X = a/(a+b)
    _assert_within_5se(_per_draw([a, b], Beta, lambda x: x), [b / s ** 2, -a / s ** 2])


def test_dirichlet_expectation_gradients():
    c = np.array([0.4, 1.5, 3.0])
    c0 = c.sum()
    (g,) = _per_draw([c], Dirichlet, lambda x: x[..., 0])  # E X_0 = c_0/c0: d/dc_j = (δ_0j c0 - c_0)/c0²
    _assert_within_5se([g], [(np.eye(3)[0] * c0 - c[0]) / c0 ** 2])


def test_student_t_expectation_gradients():
    df, m, s = 7.0, 0.5, 2.0  # E X² = m² + s² df/(df - 2)
    grads = _per_draw([df, m, s], StudentT, lambda x: x * x)
    _assert_within_5se(grads, [-2 * s ** 2 / (df - 2) ** 2, 2 * m, 2 * s * df / (df - 2)])


def test_second_order_graph_through_a_draw_builds():
    # the backward treats dx/dα as a constant array, so a second derivative is defined (without d²x/dα²)
    a = probdl.tensor(np.array([1.5, 3.0]), requires_grad=True)
    g = T.grad(lambda a: (Gamma(a, 2.0).rsample(rng=0) ** 2).sum())(a)
    assert g.shape == (2,)
    x = standard_gamma(a, (2,), rng=0)
    (ga,) = T.vjp(lambda a: standard_gamma(a, (2,), rng=0) ** 2, a)[1](T.ones(2))
    np.testing.assert_allclose(ga.numpy(), 2 * x.numpy() * standard_gamma_grad(a.numpy(), x.numpy()), rtol=1e-12)


# ------------------------------------------------------------------ Dirichlet
def test_dirichlet_against_scipy(r):
    c = P(r, 2, 4)
    d = Dirichlet(c)
    assert d.batch_shape == (2,) and d.event_shape == (4,)
    x = r.dirichlet(np.ones(4), size=(5, 2))
    ref = np.array([[st.dirichlet(c[i]).logpdf(x[j, i]) for i in range(2)] for j in range(5)])
    np.testing.assert_allclose(d.log_prob(x).numpy(), ref, rtol=1e-8)
    np.testing.assert_allclose(d.entropy().numpy(), [st.dirichlet(ci).entropy() for ci in c], rtol=1e-8)
    np.testing.assert_allclose(d.mean.numpy(), c / c.sum(-1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(d.variance.numpy(), [st.dirichlet(ci).var() for ci in c], rtol=1e-8)
    cm1 = np.clip(c - 1, 0, None)  # PyTorch's convention: (α - 1)₊ normalized
    np.testing.assert_allclose(d.mode.numpy(), cm1 / cm1.sum(-1, keepdims=True), rtol=1e-12)
    gradcheck(lambda c: Dirichlet(c).log_prob(x), [c])
    draws = d.sample((20000,), rng=6).numpy()
    assert draws.shape == (20000, 2, 4) and d.support.check(draws).all()
    for i in range(2):  # each coordinate is Beta(c_k, c0 - c_k)
        for k in range(4):
            marginal = st.beta(c[i, k], c[i].sum() - c[i, k])
            assert st.kstest(draws[:, i, k], marginal.cdf).pvalue > 1e-3
            assert abs(draws[:, i, k].mean() - marginal.mean()) < 5 * marginal.std() / np.sqrt(20000)


def test_dirichlet_small_concentrations_and_mode_conventions():
    d = Dirichlet(np.array([0.01, 0.02, 0.05]))
    x = d.sample((1000,), rng=0).numpy()
    assert d.support.check(x).all() and np.all(np.isfinite(d.log_prob(x).numpy()))
    assert d.mode.tolist() == [0.0, 0.0, 1.0]                     # every α < 1: the vertex of the largest
    assert Dirichlet(np.array([0.5, 3.0, 2.0])).mode.tolist() == [0.0, 2 / 3, 1 / 3]
    assert Beta(0.5, 2.0).mode.item() == 0.0 and Beta(2.0, 0.5).mode.item() == 1.0
    assert Beta(3.0, 2.0).mode.item() == pytest.approx(2 / 3, rel=1e-15)
    assert Gamma(0.5, 1.0).mode.item() == 0.0 and Gamma(3.0, 2.0).mode.item() == 1.0


def test_undefined_moments_follow_pytorch():
    t = StudentT(np.array([0.5, 1.5, 3.0]))
    assert np.isnan(t.mean.numpy()[0]) and t.mean.numpy()[1:].tolist() == [0.0, 0.0]
    v = t.variance.numpy()
    assert np.isnan(v[0]) and np.isinf(v[1]) and v[2] == pytest.approx(3.0)
    ig = InverseGamma(np.array([0.5, 1.5, 3.0]), 1.0)
    assert ig.mean.numpy()[0] == math.inf and ig.variance.numpy()[:2].tolist() == [math.inf, math.inf]


# ------------------------------------------------------------------ shapes, validation, KL, devices
def test_shapes_broadcasting_expand_and_to_event():
    d = Gamma(np.ones((2, 1)), np.ones(3))
    assert d.batch_shape == (2, 3) and d.rsample((4,), rng=0).shape == (4, 2, 3)
    assert d.log_prob(np.ones(3)).shape == (2, 3)
    e = d.expand((5, 2, 3))
    assert e.batch_shape == (5, 2, 3) and e.sample((2,), rng=0).shape == (2, 5, 2, 3)
    i = StudentT(3.0, np.zeros((2, 3))).to_event(1)
    assert i.batch_shape == (2,) and i.event_shape == (3,) and i.log_prob(np.zeros((4, 2, 3))).shape == (4, 2)
    dd = Dirichlet(np.ones((2, 3, 4)))
    assert dd.rsample((5,), rng=0).shape == (5, 2, 3, 4) and dd.log_prob(np.full(4, 0.25)).shape == (2, 3)
    assert dd.expand((7, 2, 3)).sample(rng=0).shape == (7, 2, 3, 4)
    assert Beta(np.ones(3), 2.0).batch_shape == (3,) and Chi2(np.ones((2, 2))).rsample(rng=0).shape == (2, 2)
    assert InverseGamma(np.ones(2), np.ones((3, 1))).sample((1,), rng=0).shape == (1, 3, 2)


def test_parameter_and_support_validation():
    with pytest.raises(ValueError, match="Gamma: parameter concentration must satisfy the constraint positive"):
        Gamma(np.array([1.0, 0.0]), 1.0)
    with pytest.raises(ValueError, match="Chi2: parameter df must satisfy the constraint positive"):
        Chi2(-1.0)
    with pytest.raises(ValueError, match="Beta: parameter concentration0 must satisfy the constraint positive"):
        Beta(1.0, -2.0)
    with pytest.raises(ValueError, match="StudentT: parameter scale must satisfy the constraint positive"):
        StudentT(3.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="Dirichlet: parameter concentration must satisfy the constraint indep"):
        Dirichlet(np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="Dirichlet: parameter concentration must have at least one dimension"):
        Dirichlet(1.0)
    with pytest.raises(ValueError, match="Gamma: value outside the support positive: got -1.0"):
        Gamma(1.0, 1.0).log_prob(-1.0)
    with pytest.raises(ValueError, match="InverseGamma: value outside the support positive"):
        InverseGamma(1.0, 1.0).log_prob(np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="Beta: value outside the support unit_interval"):
        Beta(1.0, 1.0).log_prob(1.5)
    with pytest.raises(ValueError, match="Dirichlet: value outside the support simplex"):
        Dirichlet(np.ones(3)).log_prob(np.array([0.5, 0.5, 0.5]))
    assert Gamma(-1.0, 1.0, validate_args=False).log_prob(1.0).shape == ()
    assert Beta(1.0, 1.0, validate_args=False).log_prob(1.5).shape == ()


PAIRS = [
    ("Gamma", Gamma(np.array([0.5, 3.0]), np.array([1.0, 2.0])), Gamma(np.array([1.5, 2.0]), 0.7)),
    ("Chi2-Gamma", Chi2(np.array([3.0, 5.0])), Gamma(2.0, np.array([0.4, 1.0]))),
    ("Beta", Beta(np.array([0.7, 3.0]), np.array([2.0, 1.5])), Beta(np.array([1.0, 2.5]), np.array([1.2, 4.0]))),
    ("Dirichlet", Dirichlet(np.array([[0.7, 2.0, 3.0], [5.0, 1.0, 1.5]])), Dirichlet(np.array([1.0, 1.5, 2.5]))),
]


@pytest.mark.parametrize("name,p,q", PAIRS, ids=[x[0] for x in PAIRS])
def test_kl_matches_monte_carlo(name, p, q):
    assert_kl_matches_monte_carlo(p, q, kl_divergence(p, q))
    assert np.allclose(kl_divergence(p, p).numpy(), 0.0, atol=1e-12)


def test_on_device_matches_cpu(device):
    r = np.random.default_rng(1)
    a, b, x = P(r, 3), P(r, 3), r.uniform(0.1, 0.9, 3)
    on = lambda v: probdl.tensor(v, device=device)  # noqa: E731
    for make, args in [(Gamma, (a, b)), (InverseGamma, (a, b)), (Chi2, (a,)), (Beta, (a, b)),
                       (StudentT, (a, b, a)), (Dirichlet, (a,))]:
        value = x / x.sum() if make is Dirichlet else x
        dev = make(*map(on, args))
        np.testing.assert_allclose(dev.log_prob(on(value)).numpy(), make(*args).log_prob(value).numpy(), rtol=1e-12)
        draw = dev.rsample((2,), rng=0)
        assert draw.device == device and draw.shape == dev.shape((2,))
    alpha = probdl.tensor(a, device=device, requires_grad=True)
    standard_gamma(alpha, (4, 3), rng=0).sum().backward()
    assert alpha.grad.device == device and np.all(alpha.grad.numpy() > 0)
    np.testing.assert_allclose(Gamma(on(a), on(b)).cdf(on(x)).numpy(), st.gamma(a, scale=1 / b).cdf(x), rtol=1e-12)
