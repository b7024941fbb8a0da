"""Sparse and variational GPs: SGPR (VFE, DTC, FITC) against the exact GP, SVGP against SGPR, GP
classification against scikit-learn, SVI through model/guide, and bad input."""
import numpy as np
import pytest
from sklearn.datasets import make_moons
from sklearn.gaussian_process import GaussianProcessClassifier
from sklearn.gaussian_process import kernels as sk

import probdl as pd
from probdl.gp import GPRegression, SparseGPRegression, VariationalGP, VariationalSparseGP
from probdl.gp import kernels as gk
from probdl.gp import likelihoods as lik
from probdl.infer import SVI, TraceMeanField_ELBO

RNG = np.random.default_rng(0)
X = RNG.uniform(-3, 3, size=(60, 1))
Y = np.sin(2 * X[:, 0]) + 0.1 * RNG.normal(size=60)
XS = np.linspace(-3.2, 3.2, 7)[:, None]


@pytest.mark.parametrize("approx", ["VFE", "DTC", "FITC"])
def test_sparse_equals_exact_with_inducing_points_at_the_data(approx):
    exact = GPRegression(X, Y, gk.RBF(lengthscale=0.7), noise=0.05)
    sparse = SparseGPRegression(X, Y, gk.RBF(lengthscale=0.7), Xu=X, noise=0.05, approx=approx, jitter=1e-10)
    # the only difference is the 1e-10 jitter on K_uu, whose effect is of order 1e-10 / noise relative
    np.testing.assert_allclose(float(sparse.log_marginal_likelihood()), float(exact.log_marginal_likelihood()),
                               rtol=1e-7)
    m1, v1 = exact.predict(XS)
    m2, v2 = sparse.predict(XS)
    np.testing.assert_allclose(m2.numpy(), m1.numpy(), atol=1e-7)
    np.testing.assert_allclose(v2.numpy(), v1.numpy(), atol=1e-7)
    _, c1 = exact.predict(XS, full_cov=True)
    _, c2 = sparse.predict(XS, full_cov=True)
    np.testing.assert_allclose(c2.numpy(), c1.numpy(), atol=1e-7)


def test_titsias_bound_rises_towards_the_exact_likelihood():
    exact = float(GPRegression(X, Y, gk.RBF(lengthscale=0.7), noise=0.05).log_marginal_likelihood())
    bounds = [float(SparseGPRegression(X, Y, gk.RBF(lengthscale=0.7), Xu=X[:m], noise=0.05, jitter=1e-10)
                    .log_marginal_likelihood()) for m in (3, 6, 12, 24, 60)]
    # nested inducing sets: the bound never decreases and stays below the evidence (Titsias 2009)
    assert all(b1 <= b2 + 1e-8 for b1, b2 in zip(bounds, bounds[1:]))
    assert all(b <= exact + 1e-8 for b in bounds)
    assert bounds[-1] == pytest.approx(exact, rel=1e-7)


def test_sparse_fit_learns_inducing_inputs_and_hyperparameters():
    gp = SparseGPRegression(X, Y, gk.RBF(), Xu=np.linspace(-1, 1, 8)[:, None], noise=1.0)
    before = float(gp.log_marginal_likelihood())
    xu0 = gp.Xu.numpy().copy()
    gp.fit(num_steps=300)
    assert float(gp.log_marginal_likelihood()) > before + 50
    assert not np.allclose(gp.Xu.numpy(), xu0)


def test_svgp_with_gaussian_likelihood_reaches_the_sgpr_bound():
    Xu = np.linspace(-3, 3, 12)[:, None]
    sgpr = SparseGPRegression(X, Y, gk.RBF(lengthscale=0.7), Xu=Xu, noise=0.05, learn_inducing=False)
    svgp = VariationalSparseGP(X, Y, gk.RBF(lengthscale=0.7), lik.Gaussian(variance=0.05), Xu=Xu,
                               learn_inducing=False)
    for p in (svgp.kernel.variance_unconstrained, svgp.kernel.lengthscale_unconstrained,
              svgp.likelihood.variance_unconstrained):
        p.requires_grad = False  # only q(v) is optimized: its optimum makes the ELBO equal Titsias' bound
    svgp.fit(optimizer="lbfgs", num_steps=3000)
    bound = float(sgpr.log_marginal_likelihood())
    assert float(svgp.elbo()) <= bound + 1e-8
    assert float(svgp.elbo()) == pytest.approx(bound, abs=1e-5)
    m1, v1 = sgpr.predict(XS)
    m2, v2 = svgp.predict(XS)
    np.testing.assert_allclose(m2.numpy(), m1.numpy(), atol=1e-4)
    np.testing.assert_allclose(v2.numpy(), v1.numpy(), atol=1e-4)


def test_minibatch_elbo_is_unbiased():
    gp = VariationalSparseGP(X, Y, gk.RBF(), lik.Gaussian(variance=0.1), Xu=X[:10], variational="diag")
    full = float(gp.elbo())
    # the 6 disjoint batches of 10 partition the data: their average is the full-data ELBO exactly
    batches = np.array_split(np.random.default_rng(1).permutation(60), 6)
    avg = np.mean([float(gp.elbo(X[b], Y[b])) for b in batches])
    assert avg == pytest.approx(full, rel=1e-12)


def test_kl_divergence_matches_the_distribution_registry():
    gp = VariationalSparseGP(X, Y, gk.RBF(), lik.Gaussian(), Xu=X[:5])
    L = np.tril(RNG.normal(size=(5, 5)) * 0.3) + np.eye(5)
    gp.q_scale_tril = L
    gp.q_mu.data[...] = RNG.normal(size=5)
    ref = pd.distributions.kl_divergence(
        pd.distributions.MultivariateNormal(gp.q_mu.detach(), scale_tril=pd.tensor(L)),
        pd.distributions.MultivariateNormal(pd.zeros(5), scale_tril=pd.eye(5)))
    np.testing.assert_allclose(float(gp.kl_divergence()), float(ref), rtol=1e-12)


def _accuracy(p, y):
    return float(np.mean((p > 0.5) == y))


def test_classification_matches_scikit_learn_gpc():
    X2, y2 = make_moons(300, noise=0.25, random_state=0)
    Xt, yt = make_moons(1000, noise=0.25, random_state=1)
    ref = GaussianProcessClassifier(sk.ConstantKernel(1.0) * sk.RBF(1.0), random_state=0).fit(X2, y2)
    gp = VariationalSparseGP(X2, y2, gk.RBF(), lik.Bernoulli(), Xu=X2[::15].copy())
    gp.fit(optimizer="lbfgs", num_steps=500)
    p, _ = gp.predict_y(Xt)
    assert _accuracy(p.numpy(), yt) >= ref.score(Xt, yt) - 0.02


def test_full_variational_gp_probit():
    X2, y2 = make_moons(60, noise=0.2, random_state=2)
    gp = VariationalGP(X2, y2, gk.Matern52(), lik.Bernoulli(link="probit"))
    gp.fit(optimizer="lbfgs", num_steps=200)
    p, _ = gp.predict_y(X2)
    assert _accuracy(p.numpy(), y2) >= 0.9


def test_svi_with_a_subsampling_plate():
    X2, y2 = make_moons(300, noise=0.25, random_state=0)
    gp = VariationalSparseGP(X2, y2, gk.RBF(), lik.Bernoulli(), Xu=X2[::15].copy())
    svi = SVI(gp.model, gp.guide, pd.optim.Adam(lr=0.02), TraceMeanField_ELBO(), rng_seed=0)
    losses = [svi.step(50) for _ in range(400)]
    assert np.mean(losses[-50:]) < 0.5 * np.mean(losses[:10])
    p, _ = gp.predict_y(X2)
    assert _accuracy(p.numpy(), y2) >= 0.9


def test_poisson_counts():
    Xc = np.linspace(0, 5, 80)[:, None]
    yc = np.random.default_rng(3).poisson(np.exp(1.0 + np.sin(Xc[:, 0])))
    gp = VariationalSparseGP(Xc, yc, gk.RBF(), lik.Poisson(), Xu=Xc[::8].copy())
    gp.fit(optimizer="lbfgs", num_steps=300)
    mean, _ = gp.predict(Xc)
    # the latent log-rate is recovered to within the Poisson noise of 80 counts near e^1 ... e^2
    assert np.sqrt(np.mean((mean.numpy() - (1.0 + np.sin(Xc[:, 0]))) ** 2)) < 0.25


def test_bad_input():
    with pytest.raises(ValueError, match="approx must be one of \\('VFE', 'DTC', 'FITC'\\), got 'SoR'"):
        SparseGPRegression(X, Y, gk.RBF(), Xu=X[:3], approx="SoR")
    with pytest.raises(ValueError, match="Xu has 2 columns, X has 1"):
        SparseGPRegression(X, Y, gk.RBF(), Xu=np.zeros((3, 2)))
    with pytest.raises(TypeError, match="likelihood must be a probdl.gp.likelihoods.Likelihood"):
        VariationalSparseGP(X, Y, gk.RBF(), "bernoulli", Xu=X[:3])
    with pytest.raises(ValueError, match="variational must be 'full' or 'diag', got 'lowrank'"):
        VariationalSparseGP(X, Y, gk.RBF(), lik.Gaussian(), Xu=X[:3], variational="lowrank")
    with pytest.raises(ValueError, match="Bernoulli"):
        VariationalSparseGP(X, Y, gk.RBF(), lik.Bernoulli(), Xu=X[:3])  # y is not 0/1
    with pytest.raises(ValueError, match="L-BFGS-B needs the full batch"):
        VariationalSparseGP(X, Y, gk.RBF(), lik.Gaussian(), Xu=X[:3]).fit(optimizer="lbfgs", batch_size=10)


def test_compiled_svi_steps_of_a_variational_gp_are_the_eager_ones():
    X2, y2 = make_moons(100, noise=0.25, random_state=0)
    losses = {}
    for jit in (True, False):
        pd.clear_param_store()
        gp = VariationalSparseGP(X2, y2, gk.RBF(), lik.Bernoulli(), Xu=X2[::10].copy())
        svi = SVI(gp.model, gp.guide, pd.optim.Adam(lr=0.02), TraceMeanField_ELBO(), rng_seed=0, jit_compile=jit)
        losses[jit] = [svi.step() for _ in range(20)]
        if jit:
            assert svi.why_not_compiled is None  # full batch: nothing the replay cannot repeat
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-10)
