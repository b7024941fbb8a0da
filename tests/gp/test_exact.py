"""Exact GP regression against scikit-learn's GaussianProcessRegressor, its gradient against finite
differences, fitting, sampling, use inside a model, jitter and bad input."""
import warnings

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process import kernels as sk

import probdl as pd
import probdl.distributions as dist
from probdl import handlers
from probdl.gp import GPRegression
from probdl.gp import kernels as gk
from probdl.gp.linalg import gaussian_log_marginal
from probdl.testing import gradcheck

RNG = np.random.default_rng(0)
X = RNG.uniform(-3, 3, size=(40, 2))
Y = np.sin(2 * X[:, 0]) * np.cos(X[:, 1]) + 0.1 * RNG.normal(size=40)
XS = RNG.uniform(-3.5, 3.5, size=(9, 2))

CASES = [
    (lambda: gk.RBF(variance=1.3, lengthscale=[0.7, 1.4]), lambda: sk.ConstantKernel(1.3) * sk.RBF([0.7, 1.4])),
    (lambda: gk.Matern32(variance=0.8, lengthscale=1.1), lambda: sk.ConstantKernel(0.8) * sk.Matern(1.1, nu=1.5)),
    (lambda: gk.Matern52(variance=0.8, lengthscale=1.1) + gk.Linear(variance=0.3),
     lambda: sk.ConstantKernel(0.8) * sk.Matern(1.1, nu=2.5) + sk.ConstantKernel(0.3) * sk.DotProduct(0.0)),
]


@pytest.mark.parametrize("make, make_sk", CASES)
def test_matches_scikit_learn_at_fixed_hyperparameters(make, make_sk):
    gp = GPRegression(X, Y, make(), noise=0.05)
    ref = GaussianProcessRegressor(make_sk(), alpha=0.05, optimizer=None).fit(X, Y)
    np.testing.assert_allclose(float(gp.log_marginal_likelihood()), ref.log_marginal_likelihood_value_, rtol=1e-8)
    mean, var = gp.predict(XS)
    ref_mean, ref_cov = ref.predict(XS, return_cov=True)
    np.testing.assert_allclose(mean.numpy(), ref_mean, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(var.numpy(), np.diag(ref_cov), rtol=1e-8, atol=1e-12)
    _, cov = gp.predict(XS, full_cov=True)
    np.testing.assert_allclose(cov.numpy(), ref_cov, rtol=1e-8, atol=1e-12)
    _, var_y = gp.predict(XS, noiseless=False)
    np.testing.assert_allclose(var_y.numpy(), np.diag(ref_cov) + 0.05, rtol=1e-8)


def test_log_marginal_gradient_matches_finite_differences():
    def f(x, ls, var, noise, y):
        k = gk.RBF()
        k._parameters["lengthscale_unconstrained"] = ls
        k._parameters["variance_unconstrained"] = var
        return gaussian_log_marginal(k(x), pd.softplus(noise), y)

    assert gradcheck(f, [X, np.array([0.3, -0.2]), np.array(0.4), np.array(-2.0), Y], atol=1e-6, rtol=1e-5)


def test_fit_reaches_scikit_learns_optimum():
    gp = GPRegression(X, Y, gk.RBF(lengthscale=[1.0, 1.0]), noise=1.0)
    losses = gp.fit()
    ref = GaussianProcessRegressor(sk.ConstantKernel(1.0) * sk.RBF([1.0, 1.0]) + sk.WhiteKernel(1.0),
                                   n_restarts_optimizer=0).fit(X, Y)
    ours = float(gp.log_marginal_likelihood())
    assert losses[-1] == pytest.approx(-ours, rel=1e-12)
    # at least as good as scikit-learn's own L-BFGS-B from the same start, up to the optimizers' tolerance
    assert ours >= ref.log_marginal_likelihood_value_ - 1e-6


def test_fit_with_a_probdl_optimizer():
    gp = GPRegression(X, Y, gk.Matern52(), noise=0.5)
    before = float(gp.log_marginal_likelihood())
    losses = gp.fit(pd.optim.Adam(gp.parameters(), lr=0.05), num_steps=100)
    assert len(losses) == 100 and -losses[-1] > before + 10  # a real climb, not noise
    with pytest.raises(ValueError, match="method must be 'lbfgs' or a probdl Optimizer, got 'bfgs'"):
        gp.fit("bfgs")


def test_sample_functions_have_the_predictive_moments():
    gp = GPRegression(X, Y, gk.RBF(lengthscale=1.0), noise=0.05)
    draws = gp.sample_functions(XS, num_samples=4000, seed=1).numpy()
    mean, var = gp.predict(XS)
    se = np.sqrt(var.numpy() / 4000)
    assert np.all(np.abs(draws.mean(0) - mean.numpy()) < 5 * se)
    # the sample variance of 4000 normal draws has relative sd sqrt(2/3999) ~ 0.022
    np.testing.assert_allclose(draws.var(0), var.numpy(), rtol=5 * 0.0224)


def test_mean_function_is_learned():
    gp = GPRegression(X, Y + 3.0, gk.RBF(), noise=0.1, mean_function=pd.nn.Linear(2, 1))
    assert any(n.startswith("mean_function.") for n, _ in gp.named_parameters())
    gp.fit()
    mean, _ = gp.predict(XS)
    assert np.all(np.isfinite(mean.numpy()))


def test_model_with_priors_is_a_probdl_model():
    k = gk.RBF()
    k.set_prior("lengthscale", dist.LogNormal(0.0, 1.0))
    gp = GPRegression(X, Y, k, noise=0.1)
    gp.set_prior("noise", dist.HalfNormal(1.0))
    tr = handlers.trace(handlers.seed(gp.model, 0)).get_trace()
    assert [n for n, s in tr.items() if s["type"] == "sample"] == ["noise", "kernel.lengthscale", "y"]
    assert tr["y"]["is_observed"]
    # the observed site's log density is the log marginal likelihood at the drawn hyperparameters
    gp.set_hyperparameters({"kernel.lengthscale": tr["kernel.lengthscale"]["value"].numpy(),
                            "noise": tr["noise"]["value"].numpy()})
    lp = tr["y"]["fn"].log_prob(tr["y"]["value"])
    np.testing.assert_allclose(float(lp), float(gp.log_marginal_likelihood()), rtol=1e-10)
    # outside the model the hyperparameters are the module's own again
    assert not k._sampled


def test_jitter_grows_with_a_warning_on_duplicate_inputs():
    Xd = np.repeat(X[:5], 3, axis=0)
    yd = np.repeat(Y[:5], 3)
    gp = GPRegression(Xd, yd, gk.RBF(lengthscale=1.0), noise=1e-30)
    with pytest.warns(RuntimeWarning, match="added jitter"):
        lml = gp.log_marginal_likelihood()
    assert np.isfinite(float(lml))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GPRegression(X, Y, gk.RBF(), noise=0.1).log_marginal_likelihood()  # no warning when not needed


def test_bad_input():
    with pytest.raises(ValueError, match="X has 40 rows but y has 39 entries"):
        GPRegression(X, Y[:-1], gk.RBF())
    with pytest.raises(ValueError, match="y holds 1 NaN or infinite value"):
        GPRegression(X, np.where(np.arange(40) == 3, np.nan, Y), gk.RBF())
    with pytest.raises(ValueError, match="X holds 1 NaN or infinite value"):
        GPRegression(np.where(np.arange(80).reshape(40, 2) == 3, np.inf, X), Y, gk.RBF())
    with pytest.raises(ValueError, match="hyperparameter 'noise' must satisfy positive, got -0.1"):
        GPRegression(X, Y, gk.RBF(), noise=-0.1)
    with pytest.raises(TypeError, match="kernel must be a probdl.gp.kernels.Kernel"):
        GPRegression(X, Y, lambda a: a)
    with pytest.raises(ValueError, match="Xnew has 3 columns, the training inputs 2"):
        GPRegression(X, Y, gk.RBF()).predict(np.zeros((2, 3)))
    with pytest.raises(KeyError, match="no hyperparameter at path 'kernel.period'"):
        GPRegression(X, Y, gk.RBF()).set_hyperparameters({"kernel.period": 1.0})
