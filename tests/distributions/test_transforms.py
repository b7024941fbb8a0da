"""Transform laws: inverse, codomain, and the log-Jacobian against autograd."""
import numpy as np
import pytest

import probdl as pd
from probdl.distributions import biject_to, transform_to
from probdl.distributions import constraints as C
from probdl.distributions import transforms as Tr
from probdl.testing import gradcheck


def x_for(t, rng, shape=(4, 3)):
    """Points in the transform's domain."""
    x = rng.normal(size=shape) * 2
    return np.abs(x) + 0.1 if isinstance(t, Tr.PowerTransform) else x


ELEMENTWISE = [Tr.IdentityTransform(), Tr.ExpTransform(), Tr.SoftplusTransform(), Tr.SigmoidTransform(),
               Tr.TanhTransform(), Tr.AffineTransform(np.array([1.0, -2.0, 0.5]), np.array([2.0, -0.5, 3.0])),
               Tr.PowerTransform(2.5), Tr.PowerTransform(-0.7),
               Tr.ComposeTransform([Tr.AffineTransform(0.3, 1.7), Tr.ExpTransform(), Tr.PowerTransform(0.5)])]


@pytest.mark.parametrize("t", ELEMENTWISE, ids=repr)
def test_inverse_codomain_and_log_det_against_autograd(t, rng):
    x = x_for(t, rng)
    y = t(x)
    assert t.codomain.check(y.numpy()).all() and t.domain.check(x).all()
    np.testing.assert_allclose(t.inv(y).numpy(), x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(t.inv.inv(x).numpy(), y.numpy(), rtol=1e-12)
    dydx = pd.grad(lambda v: t(v).sum())(x).numpy()  # an elementwise map: the Jacobian is diagonal
    ladj = t.log_abs_det_jacobian(x, y).numpy()
    np.testing.assert_allclose(ladj, np.log(np.abs(dydx)), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(t.inv.log_abs_det_jacobian(y, x).numpy(), -ladj, rtol=1e-12, atol=1e-12)
    if t.sign != 0:
        assert np.all(np.sign(dydx) == t.sign)


def test_log_det_is_differentiable_with_respect_to_parameters(rng):
    """Inference differentiates log|J| too: its gradient w.r.t. x against finite differences."""
    for t in ELEMENTWISE[1:5]:
        gradcheck(lambda v, t=t: t.log_abs_det_jacobian(v, t(v)), [rng.normal(size=5)])


def test_extreme_inputs_stay_finite():
    x = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])
    for t in (Tr.SoftplusTransform(), Tr.SigmoidTransform(), Tr.TanhTransform()):
        ladj = t.log_abs_det_jacobian(x, t(x)).numpy()
        assert np.all(np.isfinite(ladj)), t
    y = np.array([1e-12, 1e-3, 1.0, 50.0, 700.0])  # softplus inverse at tiny and huge values
    np.testing.assert_allclose(Tr.SoftplusTransform()(Tr.SoftplusTransform().inv(y)).numpy(), y, rtol=1e-10)


def test_affine_with_event_dim_sums_the_log_det(rng):
    t = Tr.AffineTransform(np.zeros(3), np.array([2.0, -0.5, 3.0]), event_dim=1)
    x = rng.normal(size=(4, 3))
    ladj = t.log_abs_det_jacobian(x, t(x)).numpy()
    J = pd.jacobian(lambda v: t(v))(x[0]).numpy()
    assert ladj.shape == (4,) and t.event_dim == 1
    np.testing.assert_allclose(ladj, np.linalg.slogdet(J)[1], rtol=1e-12)


def test_compose_properties_and_errors():
    c = Tr.ComposeTransform([Tr.ExpTransform(), Tr.AffineTransform(0.0, -1.0)])
    assert c.sign == -1 and c.codomain is not None and c.bijective and not Tr.AbsTransform().bijective
    assert c.forward_shape((2, 3)) == (2, 3) and repr(Tr.ExpTransform().inv) == "ExpTransform().inv"
    with pytest.raises(TypeError, match="non-empty list of Transforms"):
        Tr.ComposeTransform([])
    np.testing.assert_allclose(Tr.AbsTransform()(np.array([-2.0, 3.0])).numpy(), [2.0, 3.0])


@pytest.mark.parametrize("t,n_out", [(Tr.StickBreakingTransform(), 4), (Tr.OrderedTransform(), 4),
                                     (Tr.PositiveOrderedTransform(), 4),
                                     (Tr.ComposeTransform([Tr.OrderedTransform(), Tr.ExpTransform()]), 4)],
                         ids=repr)
def test_vector_transforms_against_the_autograd_jacobian(t, n_out, rng):
    n_in = t.inverse_shape((n_out,))[0]
    x = rng.normal(size=(3, n_in))
    y = t(x)
    assert y.shape == (3, n_out) and t.codomain.check(y.numpy()).all()
    np.testing.assert_allclose(t.inv(y).numpy(), x, rtol=1e-9, atol=1e-10)
    ladj = t.log_abs_det_jacobian(x, y).numpy()
    for i in range(3):
        J = pd.jacobian(lambda v: t(v)[:n_in])(x[i]).numpy()  # the free coordinates (a simplex's last is fixed)
        np.testing.assert_allclose(ladj[i], np.linalg.slogdet(J)[1], rtol=1e-10)


def test_stick_breaking_is_centred_and_stable():
    t = Tr.StickBreakingTransform()
    np.testing.assert_allclose(t(np.zeros(4)).numpy(), np.full(5, 0.2), rtol=1e-14)
    y = t(np.array([-500.0, 0.0, 500.0])).numpy()
    assert np.all(np.isfinite(y)) and abs(y.sum() - 1) < 1e-12
    assert np.isfinite(t.log_abs_det_jacobian(np.array([-50.0, 3.0]), t(np.array([-50.0, 3.0]))).numpy())


SUPPORTS = [C.lower_cholesky, C.real, C.positive, C.nonnegative, C.greater_than(2.0), C.greater_than_eq(-1.0),
            C.less_than(1.0),
            C.interval(-1.0, 3.0), C.open_interval(0.0, 2.0), C.unit_interval, C.circular, C.real_vector,
            C.independent(C.positive, 1), C.simplex, C.ordered_vector, C.positive_ordered_vector]


@pytest.mark.parametrize("c", SUPPORTS, ids=repr)
def test_biject_to_maps_the_reals_onto_each_support(c, rng):
    t = biject_to(c)
    shape = (5, 3) if c.event_dim else (5,)
    x = rng.normal(size=shape) * 3
    y = t(x)
    assert c.check(y.numpy()).all()
    np.testing.assert_allclose(t.inv(y).numpy(), x, rtol=1e-8, atol=1e-9)
    ladj = t.log_abs_det_jacobian(x, y).numpy()
    assert ladj.shape == shape[:len(shape) - t.domain.event_dim] and np.all(np.isfinite(ladj))  # x's batch shape
    assert repr(transform_to(c)) == repr(t)  # the two registries agree on every bijective support


def test_biject_to_refuses_discrete_supports_and_non_constraints():
    with pytest.raises(NotImplementedError, match="discrete constraint nonnegative_integer"):
        biject_to(C.nonnegative_integer)
    with pytest.raises(TypeError, match="expected a Constraint"):
        biject_to("positive")


@pytest.mark.parametrize("t", [Tr.LowerCholeskyTransform(), Tr.SoftplusLowerCholeskyTransform()], ids=repr)
def test_lower_cholesky_transforms_against_the_autograd_jacobian(t, rng):
    n = 3
    x = rng.normal(size=(2, n * (n + 1) // 2))
    y = t(x)
    assert y.shape == (2, n, n) and C.lower_cholesky.check(y.numpy()).all()
    assert t.forward_shape((2, 6)) == (2, 3, 3) and t.inverse_shape((2, 3, 3)) == (2, 6)
    np.testing.assert_allclose(t.inv(y).numpy(), x, rtol=1e-10, atol=1e-12)
    rows, cols = np.tril_indices(n)
    ladj = t.log_abs_det_jacobian(x, y).numpy()
    for i in range(2):
        J = pd.jacobian(lambda v: t(v)[rows, cols])(x[i]).numpy()  # onto the triangle's n(n+1)/2 entries
        np.testing.assert_allclose(ladj[i], np.linalg.slogdet(J)[1], rtol=1e-10)
    gradcheck(lambda v: t(v), [x[0]], order=2)
    with pytest.raises(ValueError, match="a vector of length 5 is not n\\(n\\+1\\)/2"):
        t(np.zeros(5))
