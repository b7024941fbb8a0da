"""MultivariateNormal (three parameterizations), LowRankMultivariateNormal, MultivariateStudentT and
GaussianRandomWalk against scipy.stats, by their draws and by finite differences; the Gaussian KL
divergences against Monte Carlo.

One row per family: it builds a distribution of batch shape (3,) and event shape (D,) together with,
per batch member, the scipy distribution, the mean, the covariance, and the law of the squared
Mahalanobis distance (x - μ)ᵀ S⁻¹ (x - μ) of a draw, S the scale matrix.
"""
from typing import NamedTuple

import numpy as np
import pytest
import scipy.stats as st

import probdl
import probdl.tensor as T
from probdl.distributions import Laplace, Normal, kl_divergence
from probdl.distributions.multivariate_normal import (
    GaussianRandomWalk,
    LowRankMultivariateNormal,
    MultivariateNormal,
    MultivariateStudentT,
)
from probdl.testing import assert_kl_matches_monte_carlo, gradcheck

D = 4


def spd(r, *batch):
    a = r.normal(size=batch + (D, D))
    return a @ np.swapaxes(a, -1, -2) + D * np.eye(D)


class Case(NamedTuple):
    dist: object
    refs: list            # the scipy distribution of each batch member
    mean: np.ndarray      # (3, D)
    cov: np.ndarray       # (3, D, D)
    scale: np.ndarray     # (3, D, D): the matrix of the Mahalanobis distance
    maha: object          # scipy law of the squared Mahalanobis distance of a draw, per member: i -> dist


def mvn(kind):
    def make(r):
        loc, cov = r.normal(size=(3, D)), spd(r, 3)
        matrix = {"covariance_matrix": cov, "precision_matrix": np.linalg.inv(cov),
                  "scale_tril": np.linalg.cholesky(cov)}[kind]
        refs = [st.multivariate_normal(loc[i], cov[i]) for i in range(3)]
        return Case(MultivariateNormal(loc, **{kind: matrix}), refs, loc, cov, cov, lambda i: st.chi2(D))
    return make


def low_rank(r):
    loc, W, diag = r.normal(size=(3, D)), r.normal(size=(3, D, 2)), r.uniform(0.5, 2.0, size=(3, D))
    cov = W @ np.swapaxes(W, -1, -2) + np.stack([np.diag(x) for x in diag])
    return Case(LowRankMultivariateNormal(loc, W, diag), [st.multivariate_normal(loc[i], cov[i]) for i in range(3)],
                loc, cov, cov, lambda i: st.chi2(D))


def student_t(r):
    # df > 8 so that the empirical standard errors of the sample covariance (8th moments) are consistent
    df, loc, shape = np.array([9.0, 12.0, 15.0]), r.normal(size=(3, D)), spd(r, 3)
    cov = shape * (df / (df - 2))[:, None, None]
    return Case(MultivariateStudentT(df, loc, np.linalg.cholesky(shape)),
                [st.multivariate_t(loc[i], shape[i], df=df[i]) for i in range(3)], loc, cov, shape,
                lambda i: st.f(D, df[i], scale=D))  # (x-μ)ᵀS⁻¹(x-μ)/D ~ F(D, ν)


def random_walk(r):
    scale = r.uniform(0.5, 2.0, size=3)
    steps = np.arange(1, D + 1)
    cov = scale[:, None, None] ** 2 * np.minimum.outer(steps, steps)
    return Case(GaussianRandomWalk(scale, D), [st.multivariate_normal(np.zeros(D), cov[i]) for i in range(3)],
                np.zeros((3, D)), cov, cov, lambda i: st.chi2(D))


FAMILIES = [("MVN-covariance", mvn("covariance_matrix")), ("MVN-precision", mvn("precision_matrix")),
            ("MVN-scale_tril", mvn("scale_tril")), ("LowRankMVN", low_rank), ("MultivariateStudentT", student_t),
            ("GaussianRandomWalk", random_walk)]
IDS = [f[0] for f in FAMILIES]


@pytest.fixture
def r():
    return np.random.default_rng(2024)


@pytest.mark.parametrize("name,make", FAMILIES, ids=IDS)
def test_values_against_scipy(name, make, r):
    c = make(r)
    d = c.dist
    assert d.batch_shape == (3,) and d.event_shape == (D,)
    x = c.mean + 2 * r.normal(size=(5, 3, D))
    expected = np.stack([c.refs[i].logpdf(x[:, i]) for i in range(3)], 1)
    np.testing.assert_allclose(d.log_prob(x).numpy(), expected, rtol=1e-8)
    np.testing.assert_allclose(d.entropy().numpy(), [s.entropy() for s in c.refs], rtol=1e-8)
    np.testing.assert_allclose(d.mean.numpy(), c.mean, rtol=1e-8, atol=1e-300)
    np.testing.assert_allclose(d.variance.numpy(), np.diagonal(c.cov, axis1=-2, axis2=-1), rtol=1e-8)
    if hasattr(d, "covariance_matrix"):
        np.testing.assert_allclose(d.covariance_matrix.numpy(), c.cov, rtol=1e-8)
        np.testing.assert_allclose(d.precision_matrix.numpy(), np.linalg.inv(c.cov), rtol=1e-8, atol=1e-12)
    if hasattr(d, "scale_tril"):
        np.testing.assert_allclose(d.scale_tril.numpy(), np.linalg.cholesky(c.scale), rtol=1e-8, atol=1e-14)
    assert d.sample((2,), rng=0).shape == (2, 3, D)


@pytest.mark.parametrize("name,make", FAMILIES, ids=IDS)
def test_draws_follow_the_distribution(name, make, r):
    c = make(r)
    n = 100_000
    x = c.dist.sample((n,), rng=1).numpy()
    for i in range(3):
        xi = x[:, i] - c.mean[i]
        # mean and covariance within 5 standard errors (the covariance's from the spread of the products)
        assert np.all(np.abs(xi.mean(0)) < 5 * np.sqrt(np.diag(c.cov[i]) / n))
        prod = xi[:, :, None] * xi[:, None, :]
        assert np.all(np.abs(prod.mean(0) - c.cov[i]) < 5 * prod.std(0) / np.sqrt(n))
        # Kolmogorov-Smirnov of the squared Mahalanobis distance; a fixed seed, p > 1e-3 fails only if wrong
        z = np.linalg.solve(np.linalg.cholesky(c.scale[i]), xi.T)
        assert st.kstest((z * z).sum(0), c.maha(i).cdf).pvalue > 1e-3


def test_parameterizations_agree(r):
    loc, cov = r.normal(size=(3, D)), spd(r, 3)
    x = r.normal(size=(7, 3, D))
    ds = [MultivariateNormal(loc, covariance_matrix=cov), MultivariateNormal(loc, precision_matrix=np.linalg.inv(cov)),
          MultivariateNormal(loc, scale_tril=np.linalg.cholesky(cov))]
    lps = [d.log_prob(x).numpy() for d in ds]
    np.testing.assert_allclose(lps[1], lps[0], rtol=1e-12)
    np.testing.assert_allclose(lps[2], lps[0], rtol=1e-12)
    for d in ds:  # the scale_tril derived from each one is the Cholesky factor of the covariance
        np.testing.assert_allclose(d.scale_tril.numpy(), np.linalg.cholesky(cov), rtol=1e-10, atol=1e-14)
    # a low-rank covariance with the same matrix gives the same density
    W, diag = r.normal(size=(D, 2)), r.uniform(0.5, 2.0, size=D)
    lr = LowRankMultivariateNormal(loc, W, diag)
    full = MultivariateNormal(loc, covariance_matrix=W @ W.T + np.diag(diag))
    np.testing.assert_allclose(lr.log_prob(x).numpy(), full.log_prob(x).numpy(), rtol=1e-12)


# ------------------------------------------------------------------ gradients
def test_log_prob_gradients(r):
    loc, cov, x = r.normal(size=(2, 3)), spd(r)[:3, :3], r.normal(size=(4, 2, 3))
    L = np.linalg.cholesky(cov)
    gradcheck(lambda m, L: MultivariateNormal(m, scale_tril=T.tril(L)).log_prob(x), [loc, L])
    a = np.linalg.cholesky(cov) + 0.1 * np.triu(r.normal(size=(3, 3)), 1)
    eye = np.eye(3)
    gradcheck(lambda m, a: MultivariateNormal(m, covariance_matrix=a @ a.T + eye).log_prob(x), [loc, a])
    gradcheck(lambda m, a: MultivariateNormal(m, precision_matrix=a @ a.T + eye).log_prob(x), [loc, a])
    gradcheck(lambda m, L: MultivariateNormal(m, scale_tril=T.tril(L)).entropy(), [loc, L])
    W, diag = r.normal(size=(2, 3, 2)), r.uniform(0.5, 2.0, size=3)
    gradcheck(lambda m, W, dg: LowRankMultivariateNormal(m, W, dg).log_prob(x), [loc, W, diag])
    gradcheck(lambda m, W, dg: LowRankMultivariateNormal(m, W, dg).entropy(), [loc, W, diag])
    df = np.array([3.0, 7.5])
    gradcheck(lambda df, m, L: MultivariateStudentT(df, m, T.tril(L)).log_prob(x), [df, loc, L])
    gradcheck(lambda df, m, L: MultivariateStudentT(df, m, T.tril(L)).entropy(), [df, loc, L])
    gradcheck(lambda s: GaussianRandomWalk(s, 3).log_prob(x), [np.array([0.7, 1.5])])


def test_second_order_gradient_through_the_precision_parameterization(r):
    a, x = np.linalg.cholesky(spd(r)), r.normal(size=(3, D))
    gradcheck(lambda a: MultivariateNormal(0.0, precision_matrix=a @ a.T).log_prob(x), [a], order=2)


def test_rsample_gradients(r):
    loc, L = r.normal(size=(2, 3)), np.linalg.cholesky(spd(r)[:3, :3])
    W, diag = r.normal(size=(2, 3, 2)), r.uniform(0.5, 2.0, size=3)
    gradcheck(lambda m, L: MultivariateNormal(m, scale_tril=T.tril(L)).rsample((4,), rng=5), [loc, L])
    gradcheck(lambda m, W, dg: LowRankMultivariateNormal(m, W, dg).rsample((4,), rng=5), [loc, W, diag])
    df = np.array([3.0, 7.5])
    gradcheck(lambda m, L: MultivariateStudentT(df, m, T.tril(L)).rsample((4,), rng=5), [loc, L])
    gradcheck(lambda s: GaussianRandomWalk(s, 3).rsample((4,), rng=5), [np.array([0.7, 1.5])])


def test_student_t_df_gradient_matches_the_closed_form(r):
    # E‖x - μ‖² = tr(S) ν/(ν - 2), so d/dν = -2 tr(S)/(ν - 2)²; one df per draw gives per-draw gradients
    n, nu = 20_000, 10.0
    L = np.linalg.cholesky(spd(r))
    df = T.tensor(np.full(n, nu), requires_grad=True)
    x = MultivariateStudentT(df, 0.0, L).rsample(rng=3)
    ((x * x).sum()).backward()
    g = df.grad.numpy()
    expected = -2 * np.trace(L @ L.T) / (nu - 2) ** 2
    assert abs(g.mean() - expected) < 5 * g.std() / np.sqrt(n), (g.mean(), expected)


def test_rsample_gradient_of_the_mean_square(r):
    # E‖x‖² = ‖μ‖² + tr(L Lᵀ) has gradient 2μ in μ and 2L in L; per draw the gradients are 2x and 2 x εᵀ (lower part)
    n = 20_000
    loc, L0 = r.normal(size=D), np.linalg.cholesky(spd(r))
    m, L = T.tensor(loc, requires_grad=True), T.tensor(L0, requires_grad=True)
    x = MultivariateNormal(m, scale_tril=L).rsample((n,), rng=4)
    ((x * x).sum() / n).backward()
    xs = x.numpy()
    eps = np.linalg.solve(L0, (xs - loc).T).T
    per_draw = np.tril(2 * xs[:, :, None] * eps[:, None, :])
    np.testing.assert_allclose(m.grad.numpy(), 2 * xs.mean(0), rtol=1e-10)
    np.testing.assert_allclose(L.grad.numpy(), per_draw.mean(0), rtol=1e-10, atol=1e-12)
    assert np.all(np.abs(m.grad.numpy() - 2 * loc) < 5 * (2 * xs).std(0) / np.sqrt(n))
    assert np.all(np.abs(L.grad.numpy() - 2 * L0) <= 5 * per_draw.std(0) / np.sqrt(n))


# ------------------------------------------------------------------ shapes
def test_batched_loc_with_unbatched_matrix_and_vice_versa(r):
    cov, locs = spd(r), r.normal(size=(5, D))
    x = r.normal(size=(2, 5, D))
    d = MultivariateNormal(locs, covariance_matrix=cov)
    assert d.batch_shape == (5,) and d.scale_tril.shape == (5, D, D) and d.rsample((2,), rng=0).shape == (2, 5, D)
    expected = np.stack([st.multivariate_normal(locs[i], cov).logpdf(x[:, i]) for i in range(5)], 1)
    np.testing.assert_allclose(d.log_prob(x).numpy(), expected, rtol=1e-10)
    # a batch of D matrices with one loc: the batch size equals the event size, which must not confuse the solves
    covs, loc = spd(r, D), r.normal(size=D)
    d = MultivariateNormal(loc, precision_matrix=np.linalg.inv(covs))
    assert d.batch_shape == (D,) and d.loc.shape == (D, D)
    expected = np.stack([st.multivariate_normal(loc, covs[i]).logpdf(x[:, 0]) for i in range(D)], 1)
    np.testing.assert_allclose(d.log_prob(x[:, :1]).numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(d.precision_matrix.numpy(), np.linalg.inv(covs), rtol=1e-8)
    # batch dims of loc and matrix broadcast; a scalar loc is the same for every coordinate
    d = MultivariateNormal(r.normal(size=(2, 1, D)), scale_tril=np.linalg.cholesky(spd(r, 3)))
    assert d.batch_shape == (2, 3) and d.sample((4,), rng=0).shape == (4, 2, 3, D)
    assert d.log_prob(np.zeros(D)).shape == (2, 3) and d.entropy().shape == (2, 3) and d.variance.shape == (2, 3, D)
    d = MultivariateNormal(1.5, covariance_matrix=cov)
    assert d.batch_shape == () and np.all(d.mean.numpy() == 1.5)


def test_low_rank_and_student_t_batch_shapes(r):
    x = r.normal(size=(2, 5, D))
    d = LowRankMultivariateNormal(r.normal(size=(5, D)), r.normal(size=(D, 2)), r.uniform(0.5, 2.0, size=D))
    assert d.batch_shape == (5,) and d.cov_factor.shape == (5, D, 2) and d.rsample((2,), rng=0).shape == (2, 5, D)
    d2 = MultivariateNormal(d.loc, covariance_matrix=d.covariance_matrix)
    np.testing.assert_allclose(d.log_prob(x).numpy(), d2.log_prob(x).numpy(), rtol=1e-10)
    d = LowRankMultivariateNormal(np.zeros(D), r.normal(size=(5, D, 1)), 1.0 + np.zeros(D))
    assert d.batch_shape == (5,) and d.log_prob(x).shape == (2, 5)
    t = MultivariateStudentT(np.array([2.5, 4.0, 6.0]), np.zeros(D), 2.0)  # a scalar scale: 2·I
    assert t.batch_shape == (3,) and t.event_shape == (D,) and t.rsample((2,), rng=0).shape == (2, 3, D)
    np.testing.assert_allclose(t.log_prob(np.ones(D)).numpy(),
                               [st.multivariate_t(np.zeros(D), 4 * np.eye(D), df=v).logpdf(np.ones(D))
                                for v in (2.5, 4.0, 6.0)], rtol=1e-10)
    g = GaussianRandomWalk(np.ones((2, 3)), 5)
    assert g.batch_shape == (2, 3) and g.event_shape == (5,) and g.sample((4,), rng=0).shape == (4, 2, 3, 5)


def test_expand_and_to_event(r):
    d = MultivariateNormal(r.normal(size=(3, D)), covariance_matrix=spd(r))
    e = d.expand((2, 3))
    x = e.sample((4,), rng=0)
    assert x.shape == (4, 2, 3, D) and e.log_prob(x).shape == (4, 2, 3)
    np.testing.assert_allclose(e.log_prob(x).numpy(), d.log_prob(x).numpy())
    ind = d.to_event(1)
    assert ind.event_shape == (3, D) and ind.log_prob(x).shape == (4, 2)
    np.testing.assert_allclose(ind.log_prob(x).numpy(), d.log_prob(x).numpy().sum(-1))


def test_student_t_moments_where_they_do_not_exist():
    t = MultivariateStudentT(np.array([0.5, 1.5, 3.0]), np.ones(2), 1.0)
    mean, var = t.mean.numpy(), t.variance.numpy()
    assert np.all(np.isnan(mean[0])) and np.all(mean[1:] == 1.0)
    assert np.all(np.isnan(var[0])) and np.all(np.isinf(var[1])) and np.allclose(var[2], 3.0)
    assert np.all(t.mode.numpy() == 1.0)


# ------------------------------------------------------------------ bad input
def test_bad_input(r):
    cov = spd(r)
    not_pd = np.diag([1.0, -1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="MultivariateNormal: parameter covariance_matrix must satisfy the constraint "
                                         "positive_definite"):
        MultivariateNormal(np.zeros(D), covariance_matrix=not_pd)
    with pytest.raises(ValueError, match="parameter precision_matrix must satisfy the constraint positive_definite"):
        MultivariateNormal(np.zeros(D), precision_matrix=not_pd)
    with pytest.raises(ValueError, match="parameter scale_tril must satisfy the constraint lower_cholesky"):
        MultivariateNormal(np.zeros(D), scale_tril=cov)
    with pytest.raises(ValueError, match="give exactly one of covariance_matrix, precision_matrix and scale_tril; "
                                         "got covariance_matrix, scale_tril"):
        MultivariateNormal(np.zeros(D), covariance_matrix=cov, scale_tril=np.eye(D))
    with pytest.raises(ValueError, match="give exactly one .* got none"):
        MultivariateNormal(np.zeros(D))
    with pytest.raises(ValueError, match=r"loc of shape \(3,\) does not match covariance_matrix of shape \(4, 4\)"):
        MultivariateNormal(np.zeros(3), covariance_matrix=cov)
    with pytest.raises(ValueError, match=r"scale_tril must be a square matrix .*got shape \(4, 3\)"):
        MultivariateNormal(np.zeros(D), scale_tril=np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"batch shapes do not broadcast: loc \(2,\), covariance_matrix \(3,\)"):
        MultivariateNormal(np.zeros((2, D)), covariance_matrix=spd(r, 3))
    d = MultivariateNormal(np.zeros(D), covariance_matrix=cov)
    with pytest.raises(ValueError, match=r"MultivariateNormal: a value of shape \(3,\) does not end in the event "
                                         r"shape \(4,\)"):
        d.log_prob(np.zeros(3))
    with pytest.raises(ValueError, match="MultivariateNormal: value outside the support"):
        d.log_prob(np.array([0.0, np.inf, 0.0, 0.0]))
    assert np.isnan(MultivariateNormal(np.zeros(D), covariance_matrix=cov, validate_args=False).log_prob(
        np.array([0.0, np.nan, 0.0, 0.0])).item())
    with pytest.raises(ValueError, match="LowRankMultivariateNormal: parameter cov_diag must satisfy the constraint "
                                         r"independent\(positive, 1\)"):
        LowRankMultivariateNormal(np.zeros(D), np.ones((D, 1)), np.array([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"cov_diag of shape \(3,\) does not match cov_factor of shape \(4, 1\)"):
        LowRankMultivariateNormal(np.zeros(D), np.ones((D, 1)), np.ones(3))
    with pytest.raises(ValueError, match=r"LowRankMultivariateNormal: loc of shape \(3,\) does not match"):
        LowRankMultivariateNormal(np.zeros(3), np.ones((D, 1)), np.ones(D))
    with pytest.raises(ValueError, match="MultivariateStudentT: parameter df must satisfy the constraint positive"):
        MultivariateStudentT(np.array([1.0, 0.0]), np.zeros(D), np.eye(D))
    with pytest.raises(ValueError, match="MultivariateStudentT: parameter scale_tril must satisfy the constraint "
                                         "lower_cholesky"):
        MultivariateStudentT(3.0, np.zeros(D), -1.0)
    with pytest.raises(ValueError, match="GaussianRandomWalk: parameter scale must satisfy the constraint positive"):
        GaussianRandomWalk(-1.0, 3)
    with pytest.raises(ValueError, match="GaussianRandomWalk: num_steps must be a positive int; got 0"):
        GaussianRandomWalk(1.0, 0)
    with pytest.raises(ValueError, match=r"GaussianRandomWalk: a value of shape \(2,\) does not end in the event"):
        GaussianRandomWalk(1.0, 3).log_prob(np.zeros(2))


# ------------------------------------------------------------------ KL divergences
def _kl_pairs():
    r = np.random.default_rng(7)
    loc = lambda *b: r.normal(size=b + (D,))  # noqa: E731
    mvn_cov = MultivariateNormal(loc(2), covariance_matrix=spd(r, 2))
    mvn_prec = MultivariateNormal(loc(2), precision_matrix=np.linalg.inv(spd(r, 2)))
    mvn_tril = MultivariateNormal(loc(), scale_tril=np.linalg.cholesky(spd(r)))
    low = lambda: LowRankMultivariateNormal(loc(2), r.normal(size=(2, D, 2)), r.uniform(1.0, 3.0, size=D))  # noqa
    diag = lambda: Normal(loc(2), r.uniform(1.0, 3.0, size=(2, D))).to_event(1)  # noqa: E731
    return [("MVN-MVN", mvn_cov, mvn_prec), ("MVN-MVN-unbatched-q", mvn_prec, mvn_tril),
            ("LowRank-LowRank", low(), low()), ("LowRank-MVN", low(), mvn_cov), ("MVN-LowRank", mvn_cov, low()),
            ("Diag-MVN", diag(), mvn_tril), ("MVN-Diag", mvn_prec, diag()), ("Diag-LowRank", diag(), low()),
            ("LowRank-Diag", low(), diag())]


KL_PAIRS = _kl_pairs()


@pytest.mark.parametrize("name,p,q", KL_PAIRS, ids=[x[0] for x in KL_PAIRS])
def test_kl_matches_monte_carlo(name, p, q):
    assert kl_divergence(p, q).shape == (2,)
    assert_kl_matches_monte_carlo(p, q, kl_divergence(p, q))


def test_kl_invariants(r):
    loc, W, diag = r.normal(size=D), r.normal(size=(D, 2)), r.uniform(0.5, 2.0, size=D)
    cov = spd(r)
    low = LowRankMultivariateNormal(loc, W, diag)
    full = MultivariateNormal(loc, covariance_matrix=W @ W.T + np.diag(diag))
    other = MultivariateNormal(r.normal(size=D), covariance_matrix=cov)
    for p in (low, full, other):
        assert abs(kl_divergence(p, p).item()) < 1e-12
    # a low-rank covariance and the same matrix in full give the same divergences
    np.testing.assert_allclose(kl_divergence(low, other).numpy(), kl_divergence(full, other).numpy(), rtol=1e-10)
    np.testing.assert_allclose(kl_divergence(other, low).numpy(), kl_divergence(other, full).numpy(), rtol=1e-10)
    # a diagonal MultivariateNormal against a diagonal Normal: the sum of the univariate divergences
    s1, s2, m2 = r.uniform(0.5, 2.0, size=D), r.uniform(0.5, 2.0, size=D), r.normal(size=D)
    expected = kl_divergence(Normal(loc, s1), Normal(m2, s2)).numpy().sum()
    np.testing.assert_allclose(kl_divergence(MultivariateNormal(loc, scale_tril=np.diag(s1)),
                                             Normal(m2, s2).to_event(1)).item(), expected, rtol=1e-12)
    np.testing.assert_allclose(kl_divergence(Normal(loc, s1).to_event(1),
                                             MultivariateNormal(m2, covariance_matrix=np.diag(s2 ** 2))).item(),
                               expected, rtol=1e-12)
    with pytest.raises(ValueError, match=r"event shapes \(4,\) and \(3,\) differ"):
        kl_divergence(other, MultivariateNormal(np.zeros(3), covariance_matrix=np.eye(3)))
    with pytest.raises(NotImplementedError, match="not a Gaussian with a vector event"):
        kl_divergence(other, Laplace(np.zeros(D), 1.0).to_event(1))
    with pytest.raises(NotImplementedError, match="not a Gaussian with a vector event"):
        kl_divergence(Normal(np.zeros((2, D)), 1.0).to_event(2), low)


def test_kl_gradient(r):
    lq, cq = r.normal(size=D), spd(r)
    gradcheck(lambda m, L: kl_divergence(MultivariateNormal(m, scale_tril=T.tril(L)),
                                         MultivariateNormal(lq, covariance_matrix=cq)),
              [r.normal(size=D), np.linalg.cholesky(spd(r))])
    gradcheck(lambda W, dg: kl_divergence(LowRankMultivariateNormal(lq, W, dg),
                                          MultivariateNormal(0.0, covariance_matrix=cq)),
              [r.normal(size=(D, 2)), r.uniform(0.5, 2.0, size=D)])


# ------------------------------------------------------------------ device
def test_on_device(device, r):
    loc, cov, x = r.normal(size=(3, D)), spd(r, 3), r.normal(size=(5, 3, D))
    W, diag, df = r.normal(size=(D, 2)), r.uniform(0.5, 2.0, size=D), np.array([3.0, 5.0, 8.0])
    on = lambda a: probdl.tensor(a, device=device)  # noqa: E731
    builders = [
        lambda t: MultivariateNormal(t(loc), covariance_matrix=t(cov)),
        lambda t: MultivariateNormal(t(loc), precision_matrix=t(np.linalg.inv(cov))),
        lambda t: LowRankMultivariateNormal(t(loc), t(W), t(diag)),
        lambda t: MultivariateStudentT(t(df), t(loc), t(np.linalg.cholesky(cov))),
        lambda t: GaussianRandomWalk(t(df), D),
    ]
    for build in builders:
        cpu, dev = build(probdl.tensor), build(on)
        lp = dev.log_prob(on(x))
        assert lp.device == device
        np.testing.assert_allclose(lp.numpy(), cpu.log_prob(x).numpy(), rtol=1e-10)
        draw = dev.rsample((2,), rng=0)
        assert draw.device == device and draw.shape == (2, 3, D)
        np.testing.assert_allclose(draw.numpy(), cpu.rsample((2,), rng=0).numpy(), rtol=1e-10)
    p, q = builders[0](on), builders[2](on)
    np.testing.assert_allclose(kl_divergence(p, q).numpy(),
                               kl_divergence(builders[0](probdl.tensor), builders[2](probdl.tensor)).numpy(),
                               rtol=1e-10)
