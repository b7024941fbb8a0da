"""Higher derivatives: Hessians of known functions, grad of grad, and create_graph backward."""
import numpy as np
import pytest

import probdl as pd
from probdl.testing import numerical_jacobian


@pytest.fixture
def x(rng):
    return rng.normal(size=4)


def test_hessian_of_sum_of_cubes(x):
    np.testing.assert_allclose(pd.hessian(lambda t: (t ** 3).sum())(x).numpy(), np.diag(6 * x), rtol=1e-12)


def test_hessian_of_logsumexp(x):
    p = np.exp(x - np.logaddexp.reduce(x))
    H = pd.hessian(lambda t: pd.logsumexp(t))(x).numpy()
    np.testing.assert_allclose(H, np.diag(p) - np.outer(p, p), rtol=1e-10, atol=1e-14)


def test_hessian_of_quadratic_form(rng, x):
    A = rng.normal(size=(4, 4))
    H = pd.hessian(lambda t: t @ (pd.tensor(A) @ t) * 0.5)(x).numpy()
    np.testing.assert_allclose(H, 0.5 * (A + A.T), rtol=1e-12)


def test_grad_of_grad_of_scalar_functions():
    t = np.array(0.7)
    d2 = pd.grad(pd.grad(lambda s: pd.sin(s) * s ** 2))(t).item()
    assert d2 == pytest.approx(-np.sin(t) * t ** 2 + 4 * t * np.cos(t) + 2 * np.sin(t), rel=1e-12)
    d3 = pd.grad(pd.grad(pd.grad(lambda s: s ** 4)))(t).item()
    assert d3 == pytest.approx(24 * t, rel=1e-12)
    d2_lgamma = pd.grad(pd.grad(pd.lgamma))(np.array(2.5)).item()
    import scipy.special as sp

    assert d2_lgamma == pytest.approx(sp.polygamma(1, 2.5), rel=1e-12)


def test_backward_with_create_graph_gives_a_differentiable_grad():
    x = pd.tensor([1.0, 2.0], requires_grad=True)
    y = (x ** 3).sum()
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.array([1.0, 2.0]))


def test_hvp_equals_hessian_times_vector(rng, x):
    f = lambda t: pd.logsumexp(t * t) + (pd.sin(t) * t).sum()
    v = rng.normal(size=4)
    g, hv = pd.hvp(f, x, v)
    H = pd.hessian(f)(x).numpy()
    np.testing.assert_allclose(hv.numpy(), H @ v, rtol=1e-10)
    np.testing.assert_allclose(g.numpy(), pd.grad(f)(x).numpy(), rtol=1e-12)


def test_hessian_of_gaussian_log_likelihood_through_cholesky(rng):
    """A GP-style marginal likelihood in two log-hyperparameters: its Hessian against finite
    differences of the analytic gradient."""
    X = rng.normal(size=(6, 1))
    y = rng.normal(size=6)
    d2 = (X - X.T) ** 2

    def nll(theta):
        K = pd.exp(theta[0]) * pd.exp(-0.5 * pd.tensor(d2) / pd.exp(2 * theta[1])) + 0.1 * pd.eye(6)
        L = pd.cholesky(K)
        alpha = pd.cholesky_solve(pd.tensor(y), L)
        return 0.5 * (pd.tensor(y) * alpha).sum() + pd.log(pd.diagonal(L)).sum()

    theta = np.array([0.3, -0.2])
    H = pd.hessian(nll)(theta).numpy()
    num = numerical_jacobian(lambda t: pd.grad(nll)(t), [theta])[0]
    np.testing.assert_allclose(H, num, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(H, H.T, rtol=1e-10)
