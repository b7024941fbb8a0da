"""LKJ, LKJCholesky, Wishart and WishartCholesky: densities against scipy and exact marginals, draws against
moments and marginal laws, gradients, shapes, bad input and devices."""
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import polygamma

import probdl as pd
from probdl.distributions.matrix import LKJ, LKJCholesky, Wishart, WishartCholesky
from probdl.distributions.transforms import CholeskyTransform, CorrCholeskyTransform, CorrMatrixCholeskyTransform
from probdl.testing import gradcheck

N_DRAWS = 20000


@pytest.fixture
def r():
    return np.random.default_rng(31)


def spd(r, *batch, d=3):
    A = r.normal(size=batch + (d, d))
    return A @ np.swapaxes(A, -1, -2) + d * np.eye(d)


def within_5_se(draws, mean, var):
    """Every entry's sample mean within 5 standard errors of the analytic mean."""
    se = np.sqrt(var / len(draws))
    ok = np.abs(draws.mean(0) - mean) <= 5 * se + 1e-12
    assert ok.all(), (draws.mean(0) - mean)[~ok]


# ---------------------------------------------------------------------------- LKJ
def test_lkj_in_two_dimensions_is_a_scaled_beta(r):
    """For d = 2 the off-diagonal r of an LKJ(η) matrix is 2 Beta(η, η) - 1: both densities against scipy."""
    eta = np.array([0.3, 1.0, 2.5])
    rho = r.uniform(-0.99, 0.99, size=(4, 3))
    omega = np.stack([np.ones_like(rho), rho, rho, np.ones_like(rho)], -1).reshape(4, 3, 2, 2)
    L = np.linalg.cholesky(omega)
    ref = st.beta(eta, eta).logpdf((rho + 1) / 2) - np.log(2)
    np.testing.assert_allclose(LKJ(2, eta).log_prob(omega).numpy(), ref, rtol=1e-10)
    np.testing.assert_allclose(LKJCholesky(2, eta).log_prob(L).numpy(), ref, rtol=1e-10)  # L_10 = r: same coordinate


def _elliptope_grid(n):
    """Gauss-Legendre nodes over 3×3 correlation matrices: r12 = sin θ₁, r13 = sin θ₂ and the partial correlation
    ρ = sin θ₃ give r23 = r12 r13 + ρ √((1-r12²)(1-r13²)); returns the matrices and the quadrature weights
    times the Jacobian of (θ₁, θ₂, θ₃) ↦ (r12, r13, r23)."""
    x, w = np.polynomial.legendre.leggauss(n)
    th, w = x * np.pi / 2, w * np.pi / 2
    t1, t2, t3 = np.meshgrid(th, th, th, indexing="ij")
    a, b, p = np.sin(t1), np.sin(t2), np.sin(t3)
    c = a * b + p * np.cos(t1) * np.cos(t2)
    omega = np.stack([np.ones_like(a), a, b, a, np.ones_like(a), c, b, c, np.ones_like(a)], -1)
    jac = np.cos(t1) ** 2 * np.cos(t2) ** 2 * np.cos(t3)  # da db dc = cos θ₁ cos θ₂ (cos θ₃ cos θ₁ cos θ₂) dθ
    weight = w[:, None, None] * w[None, :, None] * w[None, None, :] * jac
    return omega.reshape(-1, 3, 3), weight.ravel()


def test_lkj_density_integrates_to_one_in_three_dimensions():
    omega, weight = _elliptope_grid(48)
    eta = np.array([1.5, 2.75])
    p = np.exp(LKJ(3, eta, validate_args=False).log_prob(omega[:, None]).numpy())
    np.testing.assert_allclose((p * weight[:, None]).sum(0), [1.0, 1.0], rtol=1e-9)


def test_lkj_normalizer_in_four_dimensions_by_importance_sampling():
    """E over uniform (η = 1) draws of p_η/p_1 is 1: checks c_4(η)/c_4(1) against the sampler."""
    draws = LKJ(4, 1.0).sample((N_DRAWS,), rng=3).numpy()
    for eta in (0.7, 1.8):
        ratio = np.exp(LKJ(4, eta).log_prob(draws).numpy() - LKJ(4, 1.0).log_prob(draws).numpy())
        assert abs(ratio.mean() - 1) < 5 * ratio.std() / np.sqrt(N_DRAWS), eta


@pytest.mark.parametrize("d", [2, 3, 4, 6])
def test_lkj_cholesky_density_factorizes_over_partial_correlations(d, r):
    """Pulled back to the canonical partial correlations z_ij (i > j), the LKJ density is a product of independent
    2 Beta(b_j, b_j) - 1 densities with b_j = η + (d - 2 - j)/2 (the C-vine): an exact pointwise identity for
    any d, which pins down the normalizer. Here z = tanh(x) and the pull-back is CorrCholeskyTransform's."""
    t = CorrCholeskyTransform()
    eta = np.array([0.4, 1.0, 3.3])
    x = r.normal(size=(5, 3, d * (d - 1) // 2))
    L = t(x)
    lhs = LKJCholesky(d, eta).log_prob(L).numpy() + t.log_abs_det_jacobian(x, L).numpy()
    z = np.tanh(x)
    b = eta[:, None] + (d - 2 - np.tril_indices(d, -1)[1]) / 2
    rhs = (st.beta(b, b).logpdf((z + 1) / 2) - np.log(2) + np.log1p(-z * z)).sum(-1)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


def test_lkj_cholesky_density_is_the_lkj_density_times_the_jacobian(r):
    x = r.normal(size=(5, 2, 6))
    L = CorrCholeskyTransform()(x)
    omega = CorrMatrixCholeskyTransform().inv(L)
    eta = np.array([0.6, 3.0])
    log_jac = CorrMatrixCholeskyTransform().inv.log_abs_det_jacobian(L, omega)  # of L ↦ Ω on the free entries
    np.testing.assert_allclose(LKJCholesky(4, eta).log_prob(L).numpy(),
                               (LKJ(4, eta).log_prob(omega) + log_jac).numpy(), rtol=1e-10)


@pytest.mark.parametrize("method", ["onion", "cvine"])
@pytest.mark.parametrize("d", [3, 4])
def test_lkj_draws_have_beta_marginals(d, method):
    """Every off-diagonal entry of Ω is 2 Beta(η - 1 + d/2, η - 1 + d/2) - 1 (KS); mean and variance within 5 SE."""
    eta = np.array([0.5, 2.0])
    chol = LKJCholesky(d, eta, sample_method=method)
    L = chol.sample((N_DRAWS,), rng=11).numpy()
    assert L.shape == (N_DRAWS, 2, d, d) and chol.support.check(L).all()
    omega = L @ np.swapaxes(L, -1, -2)
    lkj = LKJ(d, eta, sample_method=method)
    within_5_se(omega, lkj.mean.numpy(), lkj.variance.numpy())
    rows, cols = np.tril_indices(d, -1)
    for b in range(2):
        a = eta[b] - 1 + d / 2
        for i, j in zip(rows, cols):
            assert st.kstest((omega[:, b, i, j] + 1) / 2, st.beta(a, a).cdf).pvalue > 1e-3, (b, i, j)
    np.testing.assert_allclose(lkj.sample((N_DRAWS,), rng=11).numpy(), omega, rtol=1e-12)  # LKJ draws are L Lᵀ


def test_lkj_gradients(r):
    x = r.normal(size=(2, 3))
    eta = np.array([0.8, 2.0])
    gradcheck(lambda c: LKJCholesky(3, c).log_prob(CorrCholeskyTransform()(x)), [eta])
    gradcheck(lambda v: LKJCholesky(3, eta).log_prob(CorrCholeskyTransform()(v)), [x])
    omega = CorrMatrixCholeskyTransform().inv(CorrCholeskyTransform()(x)).numpy()
    gradcheck(lambda c: LKJ(3, c).log_prob(omega), [eta])


def test_lkj_shapes():
    d = LKJCholesky(3, np.ones((2, 1)) * np.array([1.0, 2.0, 3.0]))
    assert d.batch_shape == (2, 3) and d.event_shape == (3, 3)
    x = d.sample((4,), rng=0)
    assert x.shape == (4, 2, 3, 3, 3) and d.log_prob(x).shape == (4, 2, 3)
    assert d.log_prob(np.eye(3)).shape == (2, 3)
    e = LKJ(3, 2.0).expand((5,))
    assert e.batch_shape == (5,) and e.sample((2,), rng=0).shape == (2, 5, 3, 3) and e.log_prob(np.eye(3)).shape == (5,)
    ind = LKJCholesky(3, np.array([1.0, 2.0])).to_event(1)
    assert ind.event_shape == (2, 3, 3) and ind.log_prob(ind.sample((), rng=0)).shape == ()
    assert LKJ(3, 2.0).mean.shape == (3, 3) and np.allclose(LKJ(3, 2.0).variance.numpy()[0, 1], 1 / 6)


def test_lkj_bad_input():
    with pytest.raises(ValueError, match="LKJCholesky: parameter concentration must satisfy the constraint positive"):
        LKJCholesky(3, np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="LKJ: dimension must be an int ≥ 2, got 1"):
        LKJ(1, 1.0)
    with pytest.raises(ValueError, match="sample_method must be 'onion' or 'cvine', got 'vine'"):
        LKJCholesky(3, 1.0, sample_method="vine")
    bad = np.array([[1.0, 0.0], [0.5, 0.5]])  # lower triangular, second row not of unit norm
    with pytest.raises(ValueError, match="LKJCholesky: value outside the support corr_cholesky"):
        LKJCholesky(2, 1.0).log_prob(bad)
    with pytest.raises(ValueError, match="LKJ: value outside the support corr_matrix"):
        LKJ(2, 1.0).log_prob(np.array([[2.0, 0.0], [0.0, 1.0]]))
    assert np.isfinite(LKJCholesky(2, 1.0, validate_args=False).log_prob(bad).numpy())


# ---------------------------------------------------------------------------- Wishart
def _params(r):
    V = spd(r, 3)
    return np.array([2.5, 4.0, 7.5]), V  # df 2.5 is just above d - 1 = 2


@pytest.mark.parametrize("param", ["covariance_matrix", "precision_matrix", "scale_tril"])
def test_wishart_against_scipy(param, r):
    df, V = _params(r)
    given = {"covariance_matrix": V, "precision_matrix": np.linalg.inv(V), "scale_tril": np.linalg.cholesky(V)}[param]
    d = Wishart(df, **{param: given})
    refs = [st.wishart(df[b], V[b]) for b in range(3)]
    W = np.stack([ref.rvs(4, random_state=b) for b, ref in enumerate(refs)], 1)  # (4, 3, 3, 3)
    ref_lp = np.stack([refs[b].logpdf(np.moveaxis(W[:, b], 0, -1)) for b in range(3)], 1)  # scipy: (d, d, N)
    np.testing.assert_allclose(d.log_prob(W).numpy(), ref_lp, rtol=1e-8)
    np.testing.assert_allclose(d.entropy().numpy(), [ref.entropy() for ref in refs], rtol=1e-8)
    np.testing.assert_allclose(d.mean.numpy(), [ref.mean() for ref in refs], rtol=1e-8)
    np.testing.assert_allclose(d.variance.numpy(), [ref.var() for ref in refs], rtol=1e-8)
    mode = d.mode.numpy()
    assert np.isnan(mode[0]).all()  # df < d + 1
    np.testing.assert_allclose(mode[1:], [ref.mode() for ref in refs[1:]], rtol=1e-8)
    np.testing.assert_allclose(d.covariance_matrix.numpy(), V, rtol=1e-8)
    np.testing.assert_allclose(d.precision_matrix.numpy(), np.linalg.inv(V), rtol=1e-8)
    np.testing.assert_allclose(d.scale_tril.numpy(), np.linalg.cholesky(V), rtol=1e-8)


def test_wishart_cholesky_density_is_the_wishart_density_times_the_jacobian(r):
    df, V = _params(r)
    L = WishartCholesky(df, covariance_matrix=V).sample((4,), rng=0)
    W = L @ pd.swapaxes(L, -1, -2)
    log_jac = CholeskyTransform().inv.log_abs_det_jacobian(L, W)  # of L ↦ W on the lower triangle
    np.testing.assert_allclose(WishartCholesky(df, covariance_matrix=V).log_prob(L).numpy(),
                               (Wishart(df, covariance_matrix=V).log_prob(W) + log_jac).numpy(), rtol=1e-10)
    mode = WishartCholesky(df, covariance_matrix=V).mode.numpy()  # the mode maximizes the density
    assert np.isnan(mode[0]).all()
    lp = WishartCholesky(df[1:], covariance_matrix=V[1:])
    best = lp.log_prob(mode[1:]).numpy()
    rows, cols = np.tril_indices(3)
    for k in range(6):
        bump = np.zeros((3, 3))
        bump[rows[k], cols[k]] = 1e-3
        for step in (bump, -bump):
            assert np.all(lp.log_prob(mode[1:] + step).numpy() < best)


def test_wishart_draws(r):
    df, V = _params(r)
    d = Wishart(df, covariance_matrix=V)
    W = d.sample((N_DRAWS,), rng=2).numpy()
    assert W.shape == (N_DRAWS, 3, 3, 3) and d.support.check(W[:100]).all()
    within_5_se(W, d.mean.numpy(), d.variance.numpy())
    for b in range(3):
        for i in range(3):  # W_ii / V_ii ~ χ²(n)
            assert st.kstest(W[:, b, i, i] / V[b, i, i], st.chi2(df[b]).cdf).pvalue > 1e-3, (b, i)
    # the same noise through the precision parameterization gives the same draws
    same = Wishart(df, precision_matrix=np.linalg.inv(V)).sample((N_DRAWS,), rng=2).numpy()
    np.testing.assert_allclose(same, W, rtol=1e-8)


def test_wishart_cholesky_draws_moments_and_entropy(r):
    df, V = _params(r)
    d = WishartCholesky(df, covariance_matrix=V)
    L = d.sample((N_DRAWS,), rng=4)
    assert d.support.check(L.numpy()).all()
    within_5_se(L.numpy(), d.mean.numpy(), d.variance.numpy())
    nlp = -d.log_prob(L).numpy()  # entropy = E[-log p]
    assert np.all(np.abs(nlp.mean(0) - d.entropy().numpy()) < 5 * nlp.std(0) / np.sqrt(N_DRAWS))


def test_wishart_gradients(r):
    df, V = _params(r)
    A = np.linalg.cholesky(V)
    W = Wishart(df, covariance_matrix=V).sample((2,), rng=0).numpy()
    rows, cols = np.tril_indices(3)

    def tril(v):
        from probdl.tensor.ops.indexing import _index_scatter
        return _index_scatter(v, (Ellipsis, rows, cols), v.shape[:-1] + (3, 3))

    gradcheck(lambda n: Wishart(n, covariance_matrix=V).log_prob(W), [df])
    gradcheck(lambda v: Wishart(df, scale_tril=tril(v)).log_prob(W), [A[..., rows, cols]])
    gradcheck(lambda m: Wishart(df, covariance_matrix=m @ pd.swapaxes(m, -1, -2)).log_prob(W), [A])
    gradcheck(lambda m: Wishart(df, precision_matrix=m @ pd.swapaxes(m, -1, -2)).log_prob(W), [A])
    gradcheck(lambda v: Wishart(df, covariance_matrix=V).log_prob(tril(v) @ pd.swapaxes(tril(v), -1, -2)),
              [np.linalg.cholesky(W)[..., rows, cols]])
    gradcheck(lambda n: WishartCholesky(n, covariance_matrix=V).log_prob(np.linalg.cholesky(W)), [df])
    gradcheck(lambda n: Wishart(n, covariance_matrix=V).entropy(), [df])
    gradcheck(lambda n: WishartCholesky(n, covariance_matrix=V).entropy(), [df])
    gradcheck(lambda v: Wishart(df, scale_tril=tril(v)).rsample((2,), rng=5), [A[..., rows, cols]])
    gradcheck(lambda v: WishartCholesky(df, scale_tril=tril(v)).rsample((2,), rng=5), [A[..., rows, cols]])


def test_wishart_rsample_gradient_in_df_matches_the_closed_form(r):
    """d/dn E log|W| = ½ Σᵢ ψ'((n - i)/2): the χ² draws' implicit gradients, averaged over draws. One df per
    draw, so one backward pass gives every draw's own gradient (and its standard error)."""
    df, V = _params(r)
    d = V.shape[-1]
    n = np.broadcast_to(df, (N_DRAWS, 3)).copy()

    def log_det(n):  # log|W| = 2 Σ log (L_W)_ii from the Cholesky factor of the draw
        return 2 * pd.log(pd.diagonal(WishartCholesky(n, covariance_matrix=V).rsample((), rng=6), 0, -2, -1)).sum()

    per_draw = pd.grad(log_det)(n).numpy()
    exact = 0.5 * polygamma(1, (df[:, None] - np.arange(d)) / 2).sum(-1)
    assert np.all(np.abs(per_draw.mean(0) - exact) < 5 * per_draw.std(0) / np.sqrt(N_DRAWS)), (per_draw.mean(0), exact)


def test_wishart_shapes(r):
    V = spd(r)
    d = Wishart(np.array([4.0, 5.0, 6.0]), covariance_matrix=V)  # df batch, one matrix
    assert d.batch_shape == (3,) and d.event_shape == (3, 3)
    assert d.rsample((2,), rng=0).shape == (2, 3, 3, 3) and d.mean.shape == (3, 3, 3)
    assert d.log_prob(V).shape == (3,)  # a single (3, 3) value against a batch of 3: never read as vectors
    np.testing.assert_allclose(d.log_prob(V).numpy(), [st.wishart(n, V).logpdf(V) for n in (4.0, 5.0, 6.0)],
                               rtol=1e-8)
    d2 = WishartCholesky(4.0, covariance_matrix=spd(r, 2, 1))
    assert d2.batch_shape == (2, 1) and d2.sample((5,), rng=0).shape == (5, 2, 1, 3, 3)
    assert d2.entropy().shape == (2, 1) and d2.variance.shape == (2, 1, 3, 3)
    e = d2.expand((2, 4))
    assert e.batch_shape == (2, 4) and e.sample((), rng=0).shape == (2, 4, 3, 3)
    assert Wishart(4.0, covariance_matrix=spd(r, 2)).to_event(1).log_prob(np.stack([V, V])).shape == ()
    with pytest.raises(ValueError, match="Wishart: df of shape \\(2,\\) and covariance_matrix of shape \\(3, 3, 3\\) "
                                         "do not broadcast"):
        Wishart(np.array([4.0, 5.0]), covariance_matrix=spd(r, 3))


def test_wishart_bad_input(r):
    V = spd(r)
    with pytest.raises(ValueError, match="Wishart: give exactly one of covariance_matrix, precision_matrix, "
                                         "scale_tril; got none"):
        Wishart(4.0)
    with pytest.raises(ValueError, match="got \\['covariance_matrix', 'scale_tril'\\]"):
        WishartCholesky(4.0, covariance_matrix=V, scale_tril=np.linalg.cholesky(V))
    with pytest.raises(ValueError, match="Wishart: parameter df must be greater than dimension - 1 = 2; got 1.5"):
        Wishart(np.array([3.0, 1.5]), covariance_matrix=V)
    with pytest.raises(ValueError, match="Wishart: parameter covariance_matrix must satisfy the constraint "
                                         "positive_definite"):
        Wishart(4.0, covariance_matrix=-V)
    with pytest.raises(ValueError, match="WishartCholesky: parameter scale_tril must satisfy the constraint "
                                         "lower_cholesky"):
        WishartCholesky(4.0, scale_tril=V)
    with pytest.raises(ValueError, match="Wishart: covariance_matrix must be a \\(batch of\\) square matrices"):
        Wishart(4.0, covariance_matrix=np.ones((2, 3)))
    with pytest.raises(ValueError, match="Wishart: value outside the support positive_definite"):
        Wishart(4.0, covariance_matrix=V).log_prob(np.diag([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="WishartCholesky: value outside the support lower_cholesky"):
        WishartCholesky(4.0, covariance_matrix=V).log_prob(V)
    Wishart(1.5, covariance_matrix=V, validate_args=False)  # no check
    assert np.isfinite(WishartCholesky(4.0, covariance_matrix=V, validate_args=False).log_prob(np.tril(V)).numpy())


def test_on_device(device, r):
    df, V = _params(r)
    W = Wishart(df, covariance_matrix=V).sample((2,), rng=0).numpy()
    L = np.linalg.cholesky(W)
    for make, value in [(lambda n, m: Wishart(n, covariance_matrix=m), W),
                        (lambda n, m: Wishart(n, precision_matrix=m), W),
                        (lambda n, m: WishartCholesky(n, scale_tril=pd.cholesky(m)), L)]:
        cpu = make(df, V).log_prob(value).numpy()
        on = make(pd.tensor(df, device=device), pd.tensor(V, device=device)).log_prob(pd.tensor(value, device=device))
        assert on.device == device
        np.testing.assert_allclose(on.numpy(), cpu, rtol=1e-10)
    eta = np.array([0.5, 2.0])
    omega = LKJ(3, eta).sample((2,), rng=0).numpy()
    for dist, value in [(LKJ, omega), (LKJCholesky, np.linalg.cholesky(omega))]:
        on = dist(3, pd.tensor(eta, device=device)).log_prob(pd.tensor(value, device=device))
        np.testing.assert_allclose(on.numpy(), dist(3, eta).log_prob(value).numpy(), rtol=1e-10)
        assert dist(3, pd.tensor(eta, device=device)).sample((2,), rng=0).device == device
    assert Wishart(pd.tensor(df, device=device), covariance_matrix=pd.tensor(V, device=device)).rsample(
        (2,), rng=0).device == device
