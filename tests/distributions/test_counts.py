"""Count families against scipy.stats (or, for the zero-inflated ones, the mixture written out): values, moments,
draws (chi-square goodness of fit), gradients, shapes, enumeration, edge probabilities and bad input."""
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import expit

import probdl
from probdl.distributions.counts import (
    BetaBinomial,
    Binomial,
    DirichletMultinomial,
    GammaPoisson,
    Multinomial,
    NegativeBinomial,
    ZeroInflatedDistribution,
    ZeroInflatedNegativeBinomial,
    ZeroInflatedPoisson,
)
from probdl.distributions.discrete import Poisson
from probdl.testing import gradcheck

N_DRAWS = 20000


class ZeroInflatedRef:
    """The reference mixture: a point mass at 0 with weight g and ``base`` (a scipy distribution) with 1 - g."""

    def __init__(self, gate, base):
        self.g, self.base = gate, base

    def pmf(self, k):
        return np.where(k == 0, self.g, 0.0) + (1 - self.g) * self.base.pmf(k)

    def logpmf(self, k):
        return np.log(self.pmf(k))

    def mean(self):
        return (1 - self.g) * self.base.mean()

    def var(self):  # E[X²] - E[X]², with E[X²] = (1 - g) E_base[X²]
        return (1 - self.g) * (self.base.var() + self.base.mean() ** 2) - self.mean() ** 2


def U(r, lo, hi, *shape):
    return r.uniform(lo, hi, size=shape)


# name, params maker, probdl builder, scipy builder; every row has batch shape (3,) and float parameters first
FAMILIES = [
    ("Binomial", lambda r: (np.array([5.0, 8.0, 12.0]), U(r, 0.1, 0.9, 3)),
     lambda n, p: Binomial(n, probs=p), lambda n, p: st.binom(n, p)),
    ("BinomialLogits", lambda r: (np.array([5.0, 8.0, 12.0]), U(r, -2, 2, 3)),
     lambda n, lg: Binomial(n, logits=lg), lambda n, lg: st.binom(n, expit(lg))),
    ("NegativeBinomial", lambda r: (U(r, 0.5, 6, 3), U(r, 0.1, 0.7, 3)),  # scipy's p is our failure probability
     lambda n, p: NegativeBinomial(n, probs=p), lambda n, p: st.nbinom(n, 1 - p)),
    ("NegativeBinomialLogits", lambda r: (U(r, 0.5, 6, 3), U(r, -2, 1, 3)),
     lambda n, lg: NegativeBinomial(n, logits=lg), lambda n, lg: st.nbinom(n, expit(-lg))),
    ("GammaPoisson", lambda r: (U(r, 0.5, 6, 3), U(r, 0.3, 3, 3)),
     GammaPoisson, lambda a, b: st.nbinom(a, b / (1 + b))),
    ("BetaBinomial", lambda r: (U(r, 0.3, 4, 3), U(r, 0.3, 4, 3), np.array([4.0, 9.0, 15.0])),
     BetaBinomial, lambda a, b, n: st.betabinom(n, a, b)),
    ("ZeroInflatedPoisson", lambda r: (U(r, 0.5, 6, 3), U(r, 0.1, 0.6, 3)),
     lambda lam, g: ZeroInflatedPoisson(lam, gate=g), lambda lam, g: ZeroInflatedRef(g, st.poisson(lam))),
    ("ZeroInflatedPoissonLogits", lambda r: (U(r, 0.5, 6, 3), U(r, -2, 1, 3)),
     lambda lam, gl: ZeroInflatedPoisson(lam, gate_logits=gl),
     lambda lam, gl: ZeroInflatedRef(expit(gl), st.poisson(lam))),
    ("ZeroInflatedNegativeBinomial", lambda r: (U(r, 0.5, 6, 3), U(r, 0.1, 0.7, 3), U(r, 0.1, 0.6, 3)),
     lambda n, p, g: ZeroInflatedNegativeBinomial(n, probs=p, gate=g),
     lambda n, p, g: ZeroInflatedRef(g, st.nbinom(n, 1 - p))),
    ("ZeroInflatedNegativeBinomialLogits", lambda r: (U(r, 0.5, 6, 3), U(r, -2, 1, 3), U(r, -2, 1, 3)),
     lambda n, lg, gl: ZeroInflatedNegativeBinomial(n, logits=lg, gate_logits=gl),
     lambda n, lg, gl: ZeroInflatedRef(expit(gl), st.nbinom(n, expit(-lg)))),
]
IDS = [f[0] for f in FAMILIES]
# which parameters are continuous (differentiable); total_count of Binomial/BetaBinomial is an integer
FLOAT_PARAMS = {"Binomial": (1,), "BinomialLogits": (1,), "BetaBinomial": (0, 1)}


@pytest.fixture
def r():
    return np.random.default_rng(2025)


def chisquare_pvalue(x, pmf, upper):
    """Chi-square goodness of fit of integer draws ``x`` to ``pmf`` on 0, ..., upper: cells with expected count
    at least 5 each, everything else (both tails, rare values) in one more cell, merged into the smallest kept
    cell when it expects fewer than 5."""
    n = len(x)
    ks = np.arange(upper + 1)
    expected = n * pmf(ks)
    keep = expected >= 5
    obs = np.array([np.sum(x == k) for k in ks[keep]], dtype=float)
    exp = expected[keep].copy()
    rest_obs, rest_exp = n - obs.sum(), n - exp.sum()
    if rest_exp >= 5:
        obs, exp = np.append(obs, rest_obs), np.append(exp, rest_exp)
    else:
        i = np.argmin(exp)
        obs[i], exp[i] = obs[i] + rest_obs, exp[i] + rest_exp
    return st.chisquare(obs, exp).pvalue


@pytest.mark.parametrize("name,params,make,ref", FAMILIES, ids=IDS)
def test_values_against_scipy(name, params, make, ref, r):
    p = params(r)
    d, s = make(*p), ref(*p)
    k = r.integers(0, 5, size=(4, 3)).astype(float)
    np.testing.assert_allclose(d.log_prob(k).numpy(), s.logpmf(k), rtol=1e-10)
    np.testing.assert_allclose(d.mean.numpy(), s.mean(), rtol=1e-10)
    np.testing.assert_allclose(d.variance.numpy(), s.var(), rtol=1e-10)
    assert d.batch_shape == (3,) and d.event_shape == () and d.log_prob(k[0]).shape == (3,)
    if hasattr(d, "entropy"):
        np.testing.assert_allclose(d.entropy().numpy(), s.entropy(), rtol=1e-10)


@pytest.mark.parametrize("name,params,make,ref", FAMILIES, ids=IDS)
def test_draws_follow_the_distribution(name, params, make, ref, r):
    p = params(r)
    d, s = make(*p), ref(*p)
    x = d.sample((N_DRAWS,), rng=1).numpy()
    assert x.shape == (N_DRAWS, 3) and x.dtype == np.float64 and d.support.check(x).all()
    assert np.all(np.abs(x.mean(0) - s.mean()) < 5 * np.sqrt(s.var() / N_DRAWS))
    for i in range(3):
        si = ref(*(q[i] for q in p))
        # with a fixed seed, p > 1e-3 fails only when the sampler is wrong
        assert chisquare_pvalue(x[:, i], si.pmf, int(x[:, i].max()) + 5) > 1e-3
    np.testing.assert_array_equal(d.sample((5,), rng=3).numpy(), d.sample((5,), rng=3).numpy())


@pytest.mark.parametrize("name,params,make,ref", FAMILIES, ids=IDS)
def test_log_prob_gradients(name, params, make, ref, r):
    p = params(r)
    k = r.integers(0, 5, size=3).astype(float)
    for i in FLOAT_PARAMS.get(name, range(len(p))):
        def f(x, i=i):
            q = list(p)
            q[i] = x
            return make(*q).log_prob(k)
        gradcheck(f, [p[i]])


def test_binomial_and_beta_binomial_enumerate_and_entropy(r):
    p = U(r, 0.1, 0.9, 2, 3)
    d = Binomial(6, probs=p)
    e = d.enumerate_support()
    assert e.shape == (7, 2, 3) and d.enumerate_support(expand=False).shape == (7, 1, 1)
    np.testing.assert_allclose(np.exp(d.log_prob(e).numpy()).sum(0), 1.0, rtol=1e-12)
    b = BetaBinomial(U(r, 0.5, 2, 3), 1.5, total_count=4)
    assert b.enumerate_support().shape == (5, 3)
    np.testing.assert_allclose(np.exp(b.log_prob(b.enumerate_support()).numpy()).sum(0), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="Binomial: enumerate_support needs the same total_count across the batch"):
        Binomial(np.array([2.0, 3.0]), probs=0.5).enumerate_support()
    # entropy with a different total_count per member, and a member of total_count 0
    n = np.array([0.0, 3.0, 11.0])
    np.testing.assert_allclose(Binomial(n, probs=p[0]).entropy().numpy(), st.binom(n, p[0]).entropy(), atol=1e-14,
                               rtol=1e-10)
    np.testing.assert_allclose(BetaBinomial(1.5, p[0] + 1, n).entropy().numpy(),
                               st.betabinom(n, 1.5, p[0] + 1).entropy(), atol=1e-14, rtol=1e-10)
    gradcheck(lambda q: Binomial(n, probs=q).entropy(), [p[0]])
    mode = Binomial(n, probs=p[0]).mode.numpy()
    np.testing.assert_array_equal(mode, [st.binom(n[i], p[0, i]).pmf(np.arange(12)).argmax() for i in range(3)])


def test_negative_binomial_and_gamma_poisson_modes(r):
    n, p = np.array([0.5, 3.0, 7.5]), np.array([0.3, 0.55, 0.75])  # no ties: (r - 1) p / (1 - p) is not whole
    mode = NegativeBinomial(n, probs=p).mode.numpy()
    np.testing.assert_array_equal(mode, [st.nbinom(n[i], 1 - p[i]).pmf(np.arange(100)).argmax() for i in range(3)])
    a, b = np.array([0.5, 3.0, 7.5]), np.array([2.0, 0.7, 0.3])
    mode = GammaPoisson(a, b).mode.numpy()
    np.testing.assert_array_equal(mode, [st.nbinom(a[i], b[i] / (1 + b[i])).pmf(np.arange(100)).argmax()
                                         for i in range(3)])


def test_edge_probabilities_are_finite():
    assert Binomial(5, probs=0.0).log_prob(0.0).item() == 0.0
    assert Binomial(5, probs=1.0).log_prob(5.0).item() == 0.0
    assert Binomial(5, probs=1.0).log_prob(4.0).item() == -np.inf
    assert Binomial(0, probs=0.3).log_prob(0.0).item() == 0.0
    np.testing.assert_allclose(Binomial(4, probs=np.array([0.0, 1.0])).entropy().numpy(), 0.0, atol=0)
    assert NegativeBinomial(3.0, probs=0.0).log_prob(0.0).item() == 0.0
    assert np.isfinite(NegativeBinomial(3.0, logits=-40.0).log_prob(2.0).item())
    m = Multinomial(4, probs=np.array([0.5, 0.5, 0.0]))
    assert m.log_prob(np.array([2.0, 2.0, 0.0])).item() == pytest.approx(st.multinomial(4, [0.5, 0.5, 0]).logpmf(
        [2, 2, 0]), rel=1e-12)
    assert m.log_prob(np.array([2.0, 1.0, 1.0])).item() == -np.inf
    assert np.all(m.sample((100,), rng=0).numpy()[:, 2] == 0)
    lam = np.array([0.5, 2.0])
    np.testing.assert_allclose(ZeroInflatedPoisson(lam, gate=0.0).log_prob(np.array([0.0, 3.0])).numpy(),
                               st.poisson(lam).logpmf([0, 3]), rtol=1e-12)
    assert ZeroInflatedPoisson(2.0, gate=1.0).log_prob(0.0).item() == 0.0
    # gradients stay finite far out in logit space
    gradcheck(lambda lg: Binomial(7, logits=lg).log_prob(np.array([0.0, 7.0, 3.0])), [np.array([-30.0, 30.0, 25.0])])


def test_multinomial_against_scipy(r):
    probs = r.dirichlet(np.ones(4), size=3)
    x = np.stack([r.multinomial(9, probs[i], size=5) for i in range(3)], 1).astype(float)  # (5, 3, 4)
    ref = np.stack([st.multinomial(9, probs[i]).logpmf(x[:, i]) for i in range(3)], 1)
    for d in (Multinomial(9, probs=probs), Multinomial(9, logits=np.log(probs) + 3.0)):
        assert d.batch_shape == (3,) and d.event_shape == (4,)
        np.testing.assert_allclose(d.log_prob(x).numpy(), ref, rtol=1e-10)
        np.testing.assert_allclose(d.mean.numpy(), 9 * probs, rtol=1e-10)
        np.testing.assert_allclose(d.variance.numpy(), 9 * probs * (1 - probs), rtol=1e-10)
    # finite differences step off the simplex, so the check of probs is off there
    gradcheck(lambda q: Multinomial(9, probs=q, validate_args=False).log_prob(x[0]), [probs])
    gradcheck(lambda lg: Multinomial(9, logits=lg).log_prob(x[0]), [np.log(probs)])


def test_dirichlet_multinomial_against_scipy(r):
    alpha = U(r, 0.3, 3.0, 3, 4)
    x = np.stack([r.multinomial(9, r.dirichlet(alpha[i]), size=5) for i in range(3)], 1).astype(float)
    ref = np.stack([st.dirichlet_multinomial(alpha[i], 9).logpmf(x[:, i]) for i in range(3)], 1)
    d = DirichletMultinomial(alpha, 9)
    assert d.batch_shape == (3,) and d.event_shape == (4,)
    np.testing.assert_allclose(d.log_prob(x).numpy(), ref, rtol=1e-10)
    np.testing.assert_allclose(d.mean.numpy(), np.stack([st.dirichlet_multinomial(a, 9).mean() for a in alpha]),
                               rtol=1e-10)
    np.testing.assert_allclose(d.variance.numpy(), np.stack([st.dirichlet_multinomial(a, 9).var() for a in alpha]),
                               rtol=1e-10)
    gradcheck(lambda a: DirichletMultinomial(a, 9).log_prob(x[0]), [alpha])


@pytest.mark.parametrize("family", ["Multinomial", "DirichletMultinomial"])
def test_vector_draws_follow_the_distribution(family, r):
    n = 4
    if family == "Multinomial":
        probs = np.array([[0.1, 0.3, 0.6], [0.5, 0.45, 0.05]])
        d, refs = Multinomial(n, probs=probs), [st.multinomial(n, q) for q in probs]
    else:
        alpha = np.array([[0.2, 1.0, 3.0], [2.0, 0.5, 0.05]])  # small concentrations exercise the log-Gamma draws
        d, refs = DirichletMultinomial(alpha, n), [st.dirichlet_multinomial(a, n) for a in alpha]
    x = d.sample((N_DRAWS,), rng=4).numpy()
    assert x.shape == (N_DRAWS, 2, 3) and d.support.check(x).all()
    mean, var = d.mean.numpy(), d.variance.numpy()
    assert np.all(np.abs(x.mean(0) - mean) < 5 * np.sqrt(var / N_DRAWS))
    # every outcome: the 15 count vectors of 3 classes summing to 4, numbered 0..14
    grid = [(a, b, n - a - b) for a in range(n + 1) for b in range(n + 1 - a)]
    number = {g: j for j, g in enumerate(grid)}
    for i, ref in enumerate(refs):
        idx = np.array([number[tuple(v)] for v in x[:, i].astype(int).tolist()])
        pmf = ref.pmf(np.array(grid, dtype=float))
        assert chisquare_pvalue(idx, lambda ks, pmf=pmf: pmf[ks], len(grid) - 1) > 1e-3


def test_shapes_broadcasting_expand_to_event(r):
    d = Binomial(np.array([[3.0], [5.0]]), probs=U(r, 0.2, 0.8, 3))
    assert d.batch_shape == (2, 3) and d.sample((4,), rng=0).shape == (4, 2, 3)
    assert d.log_prob(np.zeros((7, 1, 1, 3))).shape == (7, 1, 2, 3)
    assert d.mean.shape == (2, 3) and d.variance.shape == (2, 3) and d.entropy().shape == (2, 3)
    e = d.expand((5, 2, 3))
    assert e.batch_shape == (5, 2, 3) and e.sample((2,), rng=0).shape == (2, 5, 2, 3)
    assert d.to_event(1).log_prob(np.ones((4, 2, 3))).shape == (4, 2)
    m = Multinomial(np.array([[2.0], [6.0]]), probs=r.dirichlet(np.ones(4), size=3))
    assert m.batch_shape == (2, 3) and m.event_shape == (4,)
    draws = m.sample((5,), rng=1).numpy()
    assert draws.shape == (5, 2, 3, 4) and np.all(draws.sum(-1) == np.array([[2.0], [6.0]]))
    assert m.log_prob(draws).shape == (5, 2, 3) and m.mean.shape == (2, 3, 4)
    dm = DirichletMultinomial(U(r, 0.5, 2.0, 4), np.array([1.0, 3.0, 5.0]))
    assert dm.batch_shape == (3,) and dm.sample((6,), rng=2).shape == (6, 3, 4) and dm.variance.shape == (3, 4)
    assert np.all(dm.sample((6,), rng=2).numpy().sum(-1) == [1, 3, 5])
    z = ZeroInflatedPoisson(U(r, 1, 2, 3), gate=np.array([[0.1], [0.5]]))
    assert z.batch_shape == (2, 3) and z.sample((4,), rng=0).shape == (4, 2, 3) and z.mean.shape == (2, 3)
    g = ZeroInflatedDistribution(Poisson(np.array([1.0, 4.0])), gate_logits=np.zeros((3, 1)))
    assert g.batch_shape == (3, 2) and g.sample((2,), rng=0).shape == (2, 3, 2)
    np.testing.assert_allclose(g.log_prob(np.array([0.0, 2.0])).numpy()[0],
                               ZeroInflatedRef(0.5, st.poisson([1.0, 4.0])).logpmf(np.array([0.0, 2.0])), rtol=1e-12)


def test_float32_parameters_give_float32():
    d = Binomial(4, probs=np.array([0.3, 0.6], dtype=np.float32))
    assert d.sample((3,), rng=0).dtype == np.float32
    assert d.log_prob(np.array([1.0, 2.0], np.float32)).dtype == np.float32


def test_on_device(device, r):
    p, n, a = U(r, 0.2, 0.8, 3), np.array([3.0, 5.0, 7.0]), U(r, 0.5, 2.0, 3, 4)
    k = np.array([1.0, 2.0, 3.0])
    x = np.array([[1.0, 0.0, 0.0, 2.0], [1.0, 1.0, 1.0, 0.0], [2.0, 0.0, 0.0, 1.0]])

    def dev(v):
        return probdl.tensor(v, device=device)

    cases = [
        (lambda t: Binomial(t(n), probs=t(p)), k),
        (lambda t: NegativeBinomial(t(n), logits=t(p)), k),
        (lambda t: GammaPoisson(t(n), t(p)), k),
        (lambda t: BetaBinomial(t(p), t(n), t(n)), k),
        (lambda t: ZeroInflatedPoisson(t(n), gate=t(p)), k),
        (lambda t: ZeroInflatedNegativeBinomial(t(n), probs=t(p), gate_logits=t(p)), k),
        (lambda t: Multinomial(3, probs=t(a / a.sum(-1, keepdims=True))), x),
        (lambda t: DirichletMultinomial(t(a), 3), x),
    ]
    for make, value in cases:
        d = make(dev)
        lp = d.log_prob(dev(value))
        assert lp.device == probdl.device(device) and d.sample((2,), rng=0).device == probdl.device(device)
        np.testing.assert_allclose(lp.numpy(), make(probdl.tensor).log_prob(value).numpy(), rtol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="Binomial: parameter total_count must satisfy the constraint "
                                         "nonnegative_integer; got 2.5"):
        Binomial(2.5, probs=0.3)
    with pytest.raises(ValueError, match="Binomial: parameter probs must satisfy the constraint unit_interval"):
        Binomial(3, probs=1.5)
    with pytest.raises(ValueError, match="Binomial: give exactly one of probs and logits"):
        Binomial(3)
    with pytest.raises(ValueError, match=r"Binomial: value outside the support integer_interval.*: got 4.0"):
        Binomial(3, probs=0.3).log_prob(4.0)
    with pytest.raises(ValueError, match="Binomial: value outside the support integer_interval.*: got 1.5"):
        Binomial(3, probs=0.3).log_prob(1.5)
    with pytest.raises(ValueError, match="Multinomial: parameter probs must satisfy the constraint simplex"):
        Multinomial(3, probs=np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="Multinomial: parameter total_count must satisfy the constraint "
                                         "nonnegative_integer; got -1"):
        Multinomial(-1, probs=np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"Multinomial: value outside the support multinomial\(upper_bound=3.0\)"):
        Multinomial(3, probs=np.array([0.5, 0.5])).log_prob(np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="NegativeBinomial: parameter total_count must satisfy the constraint posit"):
        NegativeBinomial(0.0, probs=0.5)
    with pytest.raises(ValueError, match="NegativeBinomial: value outside the support nonnegative_integer: got -1.0"):
        NegativeBinomial(2.0, probs=0.5).log_prob(-1.0)
    with pytest.raises(ValueError, match="GammaPoisson: parameter rate must satisfy the constraint positive"):
        GammaPoisson(1.0, -1.0)
    with pytest.raises(ValueError, match="BetaBinomial: parameter concentration1 must satisfy the constraint positive"):
        BetaBinomial(0.0, 1.0, 3)
    with pytest.raises(ValueError, match="BetaBinomial: value outside the support integer_interval"):
        BetaBinomial(1.0, 1.0, 3).log_prob(4.0)
    with pytest.raises(ValueError, match=r"DirichletMultinomial: parameter concentration must satisfy the constraint "
                                         r"independent\(positive, 1\)"):
        DirichletMultinomial(np.array([1.0, 0.0]), 3)
    with pytest.raises(ValueError, match="DirichletMultinomial: value outside the support multinomial"):
        DirichletMultinomial(np.array([1.0, 1.0]), 3).log_prob(np.array([4.0, -1.0]))
    with pytest.raises(ValueError, match="ZeroInflatedPoisson: parameter gate must satisfy the constraint "
                                         "unit_interval; got 1.2"):
        ZeroInflatedPoisson(1.0, gate=1.2)
    with pytest.raises(ValueError, match="ZeroInflatedPoisson: parameter rate must satisfy the constraint positive"):
        ZeroInflatedPoisson(-1.0, gate=0.2)
    with pytest.raises(ValueError, match="ZeroInflatedPoisson: give exactly one of gate and gate_logits"):
        ZeroInflatedPoisson(1.0, gate=0.2, gate_logits=0.0)
    with pytest.raises(ValueError, match="ZeroInflatedNegativeBinomial: give exactly one of probs and logits"):
        ZeroInflatedNegativeBinomial(1.0, gate=0.2)
    with pytest.raises(ValueError, match="ZeroInflatedNegativeBinomial: parameter probs must satisfy the constraint"):
        ZeroInflatedNegativeBinomial(1.0, probs=2.0, gate=0.2)
    with pytest.raises(ValueError, match="ZeroInflatedNegativeBinomial: value outside the support nonnegative_integer"):
        ZeroInflatedNegativeBinomial(1.0, logits=0.0, gate=0.2).log_prob(0.5)
    # with validation off, nothing is checked
    assert np.isfinite(Binomial(2.5, probs=0.3, validate_args=False).log_prob(1.0).item())
    Binomial(3, probs=1.5, validate_args=False).log_prob(1.0)
    Multinomial(3, probs=np.array([0.5, 0.5]), validate_args=False).log_prob(np.array([1.0, 1.0]))
    ZeroInflatedPoisson(1.0, gate=0.2, validate_args=False).log_prob(0.5)
