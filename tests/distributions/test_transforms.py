"""Transform laws: inverse, codomain, and the log-Jacobian against autograd."""
import numpy as np
import pytest

import probdl as pd
from probdl.distributions import biject_to, transform_to
from probdl.distributions import constraints as C
from probdl.distributions import transforms as Tr
from probdl.tensor.ops.indexing import _index_scatter
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


# ---------------------------------------------------------------------------- matrix transforms
def _tril(d, k=0):
    return np.tril_indices(d, k)


@pytest.mark.parametrize("d", [2, 3, 4])
def test_corr_cholesky_against_the_autograd_jacobian(d, rng):
    t = Tr.CorrCholeskyTransform()
    m = d * (d - 1) // 2
    x = rng.normal(size=(3, m)) * 1.5
    y = t(x)
    assert y.shape == (3, d, d) and C.corr_cholesky.check(y.numpy()).all()
    assert t.forward_shape((3, m)) == (3, d, d) and t.inverse_shape((3, d, d)) == (3, m)
    np.testing.assert_allclose(t.inv(y).numpy(), x, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(t(np.zeros(m)).numpy(), np.eye(d), atol=1e-15)  # x = 0 is the identity
    rows, cols = _tril(d, -1)
    ladj = t.log_abs_det_jacobian(x, y).numpy()
    assert ladj.shape == (3,)
    for i in range(3):
        J = pd.jacobian(lambda v: t(v)[rows, cols])(x[i]).numpy()  # onto the strict lower triangle (the free part)
        np.testing.assert_allclose(ladj[i], np.linalg.slogdet(J)[1], rtol=1e-10)
    np.testing.assert_allclose(t.inv.log_abs_det_jacobian(y, x).numpy(), -ladj, rtol=1e-12)
    gradcheck(lambda v: t(v), [x[0]], order=2)
    gradcheck(lambda v: t.log_abs_det_jacobian(v, t(v)), [x[0]])


def test_corr_cholesky_stays_finite_far_out():
    t = Tr.CorrCholeskyTransform()
    x = np.array([-40.0, 25.0, 300.0, -300.0, 0.5, 12.0])
    y = t(x).numpy()
    ladj = t.log_abs_det_jacobian(x, t(x)).numpy()
    assert np.all(np.isfinite(y)) and np.isfinite(ladj) and np.allclose((y * y).sum(-1), 1.0, atol=1e-12)
    g = pd.grad(lambda v: t.log_abs_det_jacobian(v, t(v)) + t(v).sum())(x).numpy()
    assert np.all(np.isfinite(g))
    with pytest.raises(ValueError, match="CorrCholeskyTransform: a vector of length 4 is not"):
        t(np.zeros(4))


def _tril_matrix(v, d, k):
    """The d×d matrix with v in its lower triangle at offset k (0: with the diagonal; -1: strict) and 0 above."""
    return _index_scatter(v, _tril(d, k), (d, d))


def _sym_from(v, d, k):
    """The symmetric matrix whose lower triangle at offset k is v, with a unit diagonal when k = -1."""
    low = _tril_matrix(v, d, k)
    out = low + pd.swapaxes(low, -1, -2) - pd.diag_embed(pd.diagonal(low, 0, -2, -1))
    return out + np.eye(d) if k == -1 else out


@pytest.mark.parametrize("t,k", [(Tr.CholeskyTransform(), 0), (Tr.CorrMatrixCholeskyTransform(), -1)], ids=repr)
def test_cholesky_transforms_against_the_autograd_jacobian(t, k, rng):
    """log|J| of M ↦ chol(M) and of L ↦ L Lᵀ on the free coordinates: the lower triangle (k = 0), or the
    strict one for a correlation matrix (k = -1), against the log-determinant of the autograd Jacobian."""
    d = 4
    to_l = Tr.LowerCholeskyTransform() if k == 0 else Tr.CorrCholeskyTransform()
    L = to_l(rng.normal(size=(2, to_l.inverse_shape((d, d))[0]))).numpy()
    M = L @ np.swapaxes(L, -1, -2)
    assert t.domain.check(M).all() and t.codomain.check(t(M).numpy()).all()
    np.testing.assert_allclose(t(M).numpy(), L, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(t.inv(L).numpy(), M, rtol=1e-12)
    rows, cols = _tril(d, k)
    ladj = t.log_abs_det_jacobian(M, L).numpy()
    assert ladj.shape == (2,)
    np.testing.assert_allclose(t.inv.log_abs_det_jacobian(L, M).numpy(), -ladj, rtol=1e-12)
    for i in range(2):
        J = pd.jacobian(lambda v: t(_sym_from(v, d, k))[rows, cols])(M[i][rows, cols]).numpy()
        np.testing.assert_allclose(ladj[i], np.linalg.slogdet(J)[1], rtol=1e-10)
    if k == 0:  # L ↦ L Lᵀ directly, every lower entry of L free
        J = pd.jacobian(lambda v: t.inv(_tril_matrix(v, d, 0))[rows, cols])(L[0][rows, cols]).numpy()
        np.testing.assert_allclose(-ladj[0], np.linalg.slogdet(J)[1], rtol=1e-10)
    gradcheck(lambda v: t(_sym_from(v, d, k)), [M[0][rows, cols]])


def test_permute_and_reshape(rng):
    p = Tr.PermuteTransform([2, 0, 3, 1])
    x = rng.normal(size=(5, 4))
    y = p(x)
    np.testing.assert_array_equal(y.numpy(), x[:, [2, 0, 3, 1]])
    np.testing.assert_array_equal(p.inv(y).numpy(), x)
    assert p.log_abs_det_jacobian(x, y).shape == (5,) and np.all(p.log_abs_det_jacobian(x, y).numpy() == 0)
    assert abs(np.linalg.slogdet(pd.jacobian(lambda v: p(v))(x[0]).numpy())[1]) < 1e-14
    assert p.forward_shape((5, 4)) == (5, 4) and p.event_dim == 1 and repr(p) == "PermuteTransform([2, 0, 3, 1])"
    with pytest.raises(ValueError, match="PermuteTransform: permutation must be a permutation of 0..n-1"):
        Tr.PermuteTransform([0, 0, 1])

    r = Tr.ReshapeTransform((2, 3), (6,))
    x = rng.normal(size=(4, 6))
    y = r(x)
    assert y.shape == (4, 2, 3) and r.forward_shape((4, 6)) == (4, 2, 3) and r.inverse_shape((4, 2, 3)) == (4, 6)
    np.testing.assert_array_equal(r.inv(y).numpy(), x)
    ladj = r.log_abs_det_jacobian(x, y)
    assert ladj.shape == (4,) and np.all(ladj.numpy() == 0) and r.domain.event_dim == 1 and r.codomain.event_dim == 2
    assert r.inv.log_abs_det_jacobian(y, x).shape == (4,)
    assert abs(np.linalg.slogdet(pd.jacobian(lambda v: r(v).reshape(-1))(x[0]).numpy())[1]) < 1e-14
    with pytest.raises(ValueError, match="hold different numbers of entries"):
        Tr.ReshapeTransform((2, 3), (5,))
    with pytest.raises(ValueError, match="does not end in"):
        r.forward_shape((4, 5))


def test_compose_of_shape_changing_parts_sums_to_the_input_batch_shape(rng):
    """A composition that turns vectors into matrices keeps the vectors' batch shape in its log|J|."""
    t = Tr.ComposeTransform([Tr.LowerCholeskyTransform(), Tr.CholeskyTransform().inv])
    x = rng.normal(size=(5, 6))
    assert t.event_dim == 1 and t.log_abs_det_jacobian(x, t(x)).shape == (5,)
    t2 = Tr.ComposeTransform([Tr.ExpTransform(), Tr.AffineTransform(0.0, np.ones(3), event_dim=1)])
    assert t2.event_dim == 1 and t2.log_abs_det_jacobian(x[:, :3], t2(x[:, :3])).shape == (5,)


@pytest.mark.parametrize("c,k", [(C.corr_matrix, -1), (C.positive_definite, 0), (C.positive_semidefinite, 0),
                                 (C.corr_cholesky, -1)], ids=repr)
def test_biject_to_matrix_supports_against_the_autograd_jacobian(c, k, rng):
    """log|J| of the registered bijection onto the free coordinates of each matrix support."""
    d = 3
    t = biject_to(c)
    m = d * (d - 1) // 2 if k == -1 else d * (d + 1) // 2
    assert t.inverse_shape((2, d, d)) == (2, m) and t.forward_shape((2, m)) == (2, d, d)
    x = rng.normal(size=(2, m))
    y = t(x)
    assert c.check(y.numpy()).all()
    rows, cols = _tril(d, k)
    ladj = t.log_abs_det_jacobian(x, y).numpy()
    for i in range(2):
        J = pd.jacobian(lambda v: t(v)[rows, cols])(x[i]).numpy()
        np.testing.assert_allclose(ladj[i], np.linalg.slogdet(J)[1], rtol=1e-10)


def _continuous_constraints():
    """Every continuous constraint that constraints.py exports, factories built with example bounds."""
    args = {"interval": (-1.0, 3.0), "open_interval": (0.0, 2.0), "greater_than": (2.0,),
            "greater_than_eq": (-1.0,), "less_than": (1.0,), "independent": (C.positive, 1)}
    out = []
    for name in C.__all__:
        obj = getattr(C, name)
        if isinstance(obj, type):
            if not issubclass(obj, C.Constraint) or obj is C.Constraint or obj.is_discrete:
                continue
            obj = obj(*args[name])  # a KeyError here means a new factory this test must learn about
        if not obj.is_discrete:
            out.append(obj)
    return out


def test_every_continuous_constraint_has_a_bijection(rng):
    cs = _continuous_constraints()
    assert len(cs) >= 19
    for c in cs:
        t = biject_to(c)
        shape = {0: (5,), 1: (5, 4), 2: (5, 3, 3)}[c.event_dim]
        x = rng.normal(size=t.inverse_shape(shape)) * 2
        y = t(x)
        assert y.shape == shape and c.check(y.numpy()).all(), c
        np.testing.assert_allclose(t.inv(y).numpy(), x, rtol=1e-7, atol=1e-8, err_msg=repr(c))
        ladj = t.log_abs_det_jacobian(x, y).numpy()
        assert np.all(np.isfinite(ladj)) and ladj.shape == x.shape[:x.ndim - t.event_dim], c
