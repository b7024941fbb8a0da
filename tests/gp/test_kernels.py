"""Kernels: scikit-learn's matching kernels at the same hyperparameters, gradients against finite differences,
positive semi-definiteness, composition, ARD, active_dims and bad input."""
import numpy as np
import pytest
from sklearn.gaussian_process import kernels as sk

from probdl.gp import kernels as gk
from probdl.tensor.autograd import apply
from probdl.testing import gradcheck

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 3))
Z = RNG.normal(size=(4, 3))
X1 = RNG.normal(size=(6, 1))  # for the periodic kernels (scikit-learn's ExpSineSquared reads the distance)

# (probdl kernel, scikit-learn kernel, inputs)
MATCHES = [
    (lambda: gk.RBF(variance=1.7, lengthscale=0.8), lambda: 1.7 * sk.RBF(0.8), X),
    (lambda: gk.RBF(variance=0.6, lengthscale=[0.5, 1.2, 2.0]), lambda: 0.6 * sk.RBF([0.5, 1.2, 2.0]), X),
    (lambda: gk.Matern12(variance=1.7, lengthscale=0.8), lambda: 1.7 * sk.Matern(0.8, nu=0.5), X),
    (lambda: gk.Matern32(variance=1.7, lengthscale=[0.4, 0.9, 1.5]), lambda: 1.7 * sk.Matern([0.4, 0.9, 1.5], nu=1.5),
     X),
    (lambda: gk.Matern52(variance=1.7, lengthscale=0.8), lambda: 1.7 * sk.Matern(0.8, nu=2.5), X),
    (lambda: gk.RationalQuadratic(variance=1.7, lengthscale=0.8, scale_mixture=0.7),
     lambda: 1.7 * sk.RationalQuadratic(0.8, 0.7), X),
    (lambda: gk.Periodic(variance=1.3, lengthscale=0.8, period=1.3), lambda: 1.3 * sk.ExpSineSquared(0.8, 1.3), X1),
    (lambda: gk.Linear(variance=0.7), lambda: 0.7 * sk.DotProduct(0.0), X),
    (lambda: gk.Polynomial(variance=0.7, bias=1.5, degree=3), lambda: 0.7 * sk.DotProduct(np.sqrt(1.5)) ** 3, X),
    (lambda: gk.Constant(variance=2.5), lambda: sk.ConstantKernel(2.5), X),
    (lambda: gk.White(variance=0.3), lambda: sk.WhiteKernel(0.3), X),
    (lambda: gk.RBF(variance=1.7, lengthscale=0.8) + gk.Matern32(variance=0.5, lengthscale=2.0),
     lambda: 1.7 * sk.RBF(0.8) + 0.5 * sk.Matern(2.0, nu=1.5), X),
    (lambda: gk.RBF(variance=1.7, lengthscale=0.8) * gk.Linear(variance=0.5),
     lambda: (1.7 * sk.RBF(0.8)) * (0.5 * sk.DotProduct(0.0)), X),
    (lambda: 3.0 * gk.Matern52(variance=0.5, lengthscale=2.0), lambda: 1.5 * sk.Matern(2.0, nu=2.5), X),
]


@pytest.mark.parametrize("make, make_sk, inputs", MATCHES, ids=lambda v: "" if callable(v) else None)
def test_matches_scikit_learn(make, make_sk, inputs):
    k, ref = make(), make_sk()
    np.testing.assert_allclose(k(inputs).numpy(), ref(inputs), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(k.Kdiag(inputs).numpy(), ref.diag(inputs), rtol=1e-12, atol=1e-14)
    other = inputs[:4] + 0.3
    np.testing.assert_allclose(k(inputs, other).numpy(), ref(inputs, other), rtol=1e-12, atol=1e-14)


def test_cosine_formula():
    k = gk.Cosine(variance=1.4, lengthscale=[0.7, 1.1, 2.0])
    d = ((X[:, None, :] - Z[None, :, :]) / [0.7, 1.1, 2.0]).sum(-1)
    np.testing.assert_allclose(k(X, Z).numpy(), 1.4 * np.cos(2 * np.pi * d), rtol=1e-12)


KERNELS = [
    lambda: gk.RBF(variance=1.7, lengthscale=[0.5, 1.2, 2.0]),
    lambda: gk.Matern12(variance=1.7, lengthscale=0.8),
    lambda: gk.Matern32(variance=1.7, lengthscale=[0.4, 0.9, 1.5]),
    lambda: gk.Matern52(variance=1.7, lengthscale=0.8),
    lambda: gk.RationalQuadratic(variance=1.7, lengthscale=0.8, scale_mixture=0.7),
    lambda: gk.Periodic(variance=1.3, lengthscale=0.8, period=1.3),
    lambda: gk.Cosine(variance=1.3, lengthscale=2.0),
    lambda: gk.Linear(variance=0.7),
    lambda: gk.Polynomial(variance=0.7, bias=1.5, degree=3),
    lambda: gk.Constant(variance=2.5),
    lambda: gk.White(variance=0.3),
    lambda: gk.RBF(variance=1.7, lengthscale=0.8) + gk.Periodic(variance=0.5, period=2.0, active_dims=[1]),
    lambda: gk.Matern32(variance=1.7, lengthscale=0.8) * gk.Linear(variance=0.5),
]


def _raw_function(k, Xin, Zin=None):
    """f(X, raw hyperparameters...) -> K, the raw (unconstrained) parameters swapped in for the call."""
    names = [n for n, _ in k.named_parameters()]

    def f(x, *raw):
        saved = {}
        for n, r in zip(names, raw):
            owner, leaf = k, n
            while "." in leaf:
                head, leaf = leaf.split(".", 1)
                owner = getattr(owner, head)
            saved[n] = (owner, leaf, owner._parameters[leaf])
            owner._parameters[leaf] = r
        try:
            return k(x) if Zin is None else k(x, Zin)
        finally:
            for owner, leaf, p in saved.values():
                owner._parameters[leaf] = p

    return f, [p.numpy().copy() for _, p in k.named_parameters()]


@pytest.mark.parametrize("make", KERNELS)
def test_gradients_in_inputs_and_hyperparameters(make):
    k = make()
    f, raw = _raw_function(k, X)
    # distinct points keep the Matérn-1/2 cusp at distance 0 out of the finite differences: only the diagonal
    # sits there, and its derivative in x is 0 by symmetry
    assert gradcheck(f, [X, *raw], atol=1e-6, rtol=1e-5)
    g, raw = _raw_function(k, X, Z)
    assert gradcheck(g, [X, *raw], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("profile_kernel", [gk.RBF, gk.Matern32, gk.Matern52])
def test_fused_op_second_derivatives(profile_kernel):
    k = profile_kernel()

    def f(x, z, ls, var):
        return apply(gk.StationaryCovariance, (x, z, ls, var), {"profile": k.profile})

    assert gradcheck(f, [X, Z, np.array([0.5, 1.2, 2.0]), np.array(1.3)], order=2, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("make", KERNELS)
def test_positive_semidefinite(make):
    k = make()
    pts = RNG.normal(size=(40, 3))
    if isinstance(k, gk.Periodic):
        pts = pts[:, :1]
    K = k(pts).numpy()
    np.testing.assert_allclose(K, K.T, atol=1e-12)
    # the smallest eigenvalue is >= 0 up to rounding: a few ulps of the largest
    eig = np.linalg.eigvalsh(K)
    assert eig.min() >= -1e-10 * max(1.0, eig.max())


def test_fused_op_memory_free_graph():
    k = gk.RBF(lengthscale=0.7)
    Kx = k(X)
    assert set(Kx._node.attrs) == {"profile"}  # only its inputs and the profile: no n x n intermediate kept
    assert all(t.data.shape in {(6, 3), (), (1,)} for t in Kx._node.inputs)


def test_active_dims_and_ard():
    k = gk.RBF(lengthscale=[0.5, 2.0], active_dims=[0, 2])
    ref = sk.RBF([0.5, 2.0])(X[:, [0, 2]])
    np.testing.assert_allclose(k(X).numpy(), ref, rtol=1e-12)
    with pytest.raises(ValueError, match="2 lengthscales \\(ARD\\) for inputs with 3 dimensions"):
        gk.RBF(lengthscale=[0.5, 2.0])(X)
    with pytest.raises(ValueError, match="active_dims \\[0, 5\\] out of range"):
        gk.RBF(active_dims=[0, 5])(X)


def test_hyperparameters_are_constrained_and_settable():
    k = gk.Matern52(variance=2.0, lengthscale=0.3)
    assert [n for n, _ in k.named_parameters()] == ["variance_unconstrained", "lengthscale_unconstrained"]
    np.testing.assert_allclose(k.lengthscale.numpy(), 0.3, rtol=1e-14)
    k.lengthscale = 1.5
    np.testing.assert_allclose(k.lengthscale.numpy(), 1.5, rtol=1e-14)
    # softplus keeps every real raw value positive
    k.lengthscale_unconstrained.data[...] = -30.0
    assert k.lengthscale.numpy() > 0


def test_bad_input():
    with pytest.raises(ValueError, match="hyperparameter 'lengthscale' must satisfy positive, got -1.0"):
        gk.RBF(lengthscale=-1.0)
    with pytest.raises(ValueError, match="hyperparameter 'variance' must satisfy positive"):
        gk.RBF(variance=0.0)
    with pytest.raises(ValueError, match="X holds 1 NaN or infinite value"):
        gk.RBF()(np.array([[0.0], [np.nan]]))
    with pytest.raises(ValueError, match="X must have shape \\(n, input_dim\\) or \\(n,\\), got shape \\(2, 2, 2\\)"):
        gk.RBF()(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="X has 3 columns and Z has 2"):
        gk.RBF()(X, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="Scale: the factor must be a positive finite number, got -2.0"):
        -2.0 * gk.RBF()
    with pytest.raises(ValueError, match="degree must be a positive integer, got 1.5"):
        gk.Polynomial(degree=1.5)


def test_gradient_flows_to_parameters_for_an_optimizer():
    k = gk.RBF(lengthscale=0.7) + gk.White(variance=0.1)
    loss = k(X).sum()
    loss.backward()
    grads = {n: p.grad for n, p in k.named_parameters()}
    assert set(grads) == {"k1.variance_unconstrained", "k1.lengthscale_unconstrained", "k2.variance_unconstrained"}
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads.values())
