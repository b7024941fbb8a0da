"""The batched replay (compile_value_and_grad_batched): each row of f(X) and its gradient equal the engine's at
that row, for every batching rule (padded broadcasting, matrix products with a constant, indexing, reductions,
axis ops, ops run row by row); the input's gradient put together from its blocks; bad arguments."""
import numpy as np
import pytest

import probdl as pd
import probdl.distributions as dist
from probdl.infer.batched_nuts import RowByRow, batch_potential
from probdl.infer.hmc import FlatModel
from probdl.infer.util import initialize_model
from probdl.primitives import plate, sample
from probdl.tensor import value_and_grad
from probdl.tensor.compile import NotCompilable
from probdl.tensor.compile_batched import compile_value_and_grad_batched

RNG = np.random.default_rng(0)
X = RNG.normal(size=(7, 3))
IDX = np.array([0, 2, 2, 1, 0])


def eager_rows(fn, z):
    vg = value_and_grad(fn)
    out = [vg(pd.tensor(row)) for row in z]
    return np.array([float(v.data) for v, _ in out]), np.stack([g.numpy() for _, g in out])


def broadcasting(x):
    """Batched scalars and vectors against data of higher rank (padded operands), the elementwise templates and
    the fused Bernoulli likelihood, sums over some axes with and without keepdims."""
    s, v, m = x[0], x[1:4], x[4:10].reshape(2, 3)
    a = (s * X + v) / (2.0 + v * v) - m.sum(0)                     # () and (3,) against (7, 3)
    b = pd.exp(-a) + pd.log1p(pd.exp(a)) + pd.tanh(s * a) + pd.sqrt(1.0 + m[0] ** 2)
    c = pd.bernoulli_log_likelihood(a, (X > 0) * 1.0) + pd.sigmoid(v) * pd.softplus(-s)
    sums = (2.0 * v).sum() + ((v * v) - 1.0).sum() + (-(m * X[:2]) + m).sum()  # sum gradients left to broadcast
    return (b.sum(axis=1, keepdims=True) * c).sum() + (m * m).mean() + pd.where(v > 0, v, -2.0 * v).sum() + sums


def products(x):
    """Matrix products: a constant matrix times a batched vector (one BLAS call), a batched row block times a
    constant matrix, a product of two batched matrices, a transpose and a triangle."""
    beta, W = x[:3], x[3:9].reshape(2, 3)
    logits = X @ beta                                              # (7, 3) @ (3,)
    hidden = pd.tanh(W @ X.T)                                      # (2, 3) @ (3, 7)
    gram = W @ W.mT                                                # both batched
    return (logits ** 2).sum() / 10 + hidden.sum() + pd.tril(gram).sum() + (W.mT * X[:3, :2]).sum()


def indexing_and_reductions(x):
    """Advanced indexing (a hierarchical model's group index), reductions (logsumexp, max, mean), an axis op
    (cumsum), a broadcast to a larger shape."""
    groups = x[:3]
    per_row = groups[IDX] * X[:5, 0]                               # GetItem with an integer array
    lse = pd.logsumexp(X[:5] * groups, axis=1)                     # a reduction with an axis
    grid = pd.broadcast_to(groups, (4, 3))
    return lse.sum() + pd.cumsum(per_row, 0).sum() + pd.max(grid * X[:4], axis=0).sum() + per_row.mean()


def matrices(x):
    """Stacks of matrices: a Cholesky factor, triangular solves with a constant and with a batched right-hand
    side, a log-determinant, a diagonal."""
    L = pd.tril(x[:9].reshape(3, 3)) + 3 * pd.eye(3)
    C = pd.cholesky(L @ L.mT)
    w = pd.solve_triangular(C, X[:3, 0], lower=True) + pd.solve_triangular(pd.eye(3) + 0.1 * X[:3], x[:3], lower=True)
    _, logdet = pd.slogdet(L @ L.mT + pd.eye(3))
    return (w * w).sum() + pd.log(pd.diagonal(C, 0, -2, -1)).sum() + pd.lgamma(2.0 + x[9] ** 2) + logdet


def row_by_row(x):
    """Ops without a batching rule (an einsum, a concatenation with a constant, a flip) run once per row of the
    batch."""
    m = x[:6].reshape(2, 3)
    joined = pd.concatenate([m, pd.tensor(X[:1])], axis=0)
    return pd.einsum("ij,jk->", joined, pd.tensor(X[:3])) + (pd.flip(x[6:], 0) * x[6:]).sum()


@pytest.mark.parametrize("fn, size, row_ops", [(broadcasting, 10, 0), (products, 9, 0),
                                               (indexing_and_reductions, 3, 0), (matrices, 10, 0),
                                               (row_by_row, 9, None)])
@pytest.mark.parametrize("batch", [1, 3])
def test_each_row_equals_the_engine(fn, size, row_ops, batch):
    x0 = RNG.normal(size=size)
    compiled = compile_value_and_grad_batched(fn, x0, batch)
    assert row_ops is None and compiled.row_ops > 0 or compiled.row_ops == row_ops
    for scale in (0.0, 0.5):
        z = x0 + scale * RNG.normal(size=(batch, size))
        values, grads = compiled(z)
        want_values, want_grads = eager_rows(fn, z)
        assert values.shape == (batch,) and grads.shape == (batch, size)
        np.testing.assert_allclose(values, want_values, rtol=1e-12)
        np.testing.assert_allclose(grads, want_grads, rtol=1e-11, atol=1e-13)


def test_the_input_gradient_is_put_together_from_its_blocks():
    """A model's sites tile the flat vector: the gradient is one concatenation, not a zero array added into."""
    def fn(x):
        return (x[:2] ** 2).sum() + pd.exp(x[2]) + (x[3:6] * X[0]).sum()

    compiled = compile_value_and_grad_batched(fn, np.zeros(6), 2)
    assert "_np.concatenate" in compiled.source and "_np.zeros(IS0)" not in compiled.source
    z = RNG.normal(size=(2, 6))
    np.testing.assert_allclose(compiled(z)[1], eager_rows(fn, z)[1], rtol=1e-13)

    def overlapping(x):  # two reads of one block, and a read of the whole vector: the zero array, added into
        return (x[:3] * x[1:4]).sum() + (x * x).sum()

    compiled = compile_value_and_grad_batched(overlapping, np.zeros(4), 2)
    assert "_np.zeros(IS0)" in compiled.source
    z = RNG.normal(size=(2, 4))
    np.testing.assert_allclose(compiled(z)[1], eager_rows(overlapping, z)[1], rtol=1e-13)


def logistic(X, y):
    beta = sample("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
    with plate("data", X.shape[0]):
        sample("y", dist.Bernoulli(logits=X @ beta), obs=y)


def test_a_models_potential_for_a_batch_of_chains():
    info = initialize_model(logistic, (pd.tensor(X), pd.tensor((X[:, 0] > 0) * 1.0)), rng=np.random.default_rng(1))
    model = FlatModel(info, jit_compile=True)
    potential = batch_potential(model, 4)
    assert not isinstance(potential, RowByRow)
    z = RNG.normal(size=(4, model.size))
    values, grads = potential(z)
    for c in range(4):
        value, grad = model.eager(z[c])
        assert values[c] == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(grads[c], grad, rtol=1e-11)
    uncompiled = FlatModel(info, jit_compile=False)
    assert isinstance(batch_potential(uncompiled, 4), RowByRow)
    np.testing.assert_allclose(batch_potential(uncompiled, 4)(z)[0], values, rtol=1e-12)


def test_a_batched_replay_that_goes_wrong_is_dropped_with_a_warning():
    """Checked against the model one row every CHECK_EVERY calls: at a disagreement it warns and evaluates the
    chains one by one from then on. A replay that fails at the test points is never used."""
    info = initialize_model(logistic, (pd.tensor(X), pd.tensor((X[:, 0] > 0) * 1.0)), rng=np.random.default_rng(1))
    model = FlatModel(info, jit_compile=True)
    potential = batch_potential(model, 2)
    z = RNG.normal(size=(2, model.size))
    potential._fn = lambda x: (np.zeros(2), (np.zeros_like(x),))  # a replay that has gone wrong
    potential.calls = FlatModel.CHECK_EVERY - 1
    with pytest.warns(RuntimeWarning, match="switching to evaluating the chains one by one"):
        values, grads = potential(z)
    assert potential.compiled is None
    np.testing.assert_allclose(values, [model.eager(row)[0] for row in z], rtol=1e-12)
    potential._fn = lambda x: 1 / 0
    assert not potential.agrees(z)


def test_a_failed_factorization_in_one_row_sends_the_call_row_by_row():
    def correlated():
        s = sample("s", dist.Normal(0.0, 1.0))
        K = pd.stack([pd.stack([pd.ones(()), s]), pd.stack([s, pd.ones(())])])  # positive definite only if |s| < 1
        sample("x", dist.MultivariateNormal(pd.zeros(2), covariance_matrix=K), obs=pd.tensor([0.3, -0.1]))

    info = initialize_model(correlated, (), rng=np.random.default_rng(0))
    model = FlatModel(info, jit_compile=True)
    potential = batch_potential(model, 2)
    values, grads = potential(np.array([[0.2], [3.0]]))  # the second row has no density
    assert np.isfinite(values[0]) and values[1] == np.inf
    assert values[0] == pytest.approx(model.eager(np.array([0.2]))[0], rel=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch must be an int >= 1, got 0"):
        compile_value_and_grad_batched(lambda x: (x * x).sum(), np.zeros(3), 0)
    with pytest.raises(ValueError, match=r"x0 must be a flat vector, got shape \(2, 2\)"):
        compile_value_and_grad_batched(lambda x: (x * x).sum(), np.zeros((2, 2)), 2)
    with pytest.raises(NotCompilable, match="reads the value"):
        compile_value_and_grad_batched(lambda x: x.sum() if float(x[0]) > 0 else -x.sum(), np.zeros(3), 2)
    compiled = compile_value_and_grad_batched(lambda x: (x * x).sum(), np.zeros(3), 2)
    with pytest.raises(ValueError, match=r"expected positions of shape \(2, 3\), got \(3, 3\)"):
        compiled(np.zeros((3, 3)))
