"""Forward values of every op family against NumPy and SciPy (gradients are in test_ops_grad.py)."""
import numpy as np
import pytest
import scipy.linalg
import scipy.special as sp

import probdl as pd


def close(t, ref, rtol=1e-12, atol=1e-12):
    assert isinstance(t, pd.Tensor)
    np.testing.assert_allclose(t.numpy(), ref, rtol=rtol, atol=atol)
    assert t.shape == np.shape(ref)


@pytest.fixture
def x(rng):
    return rng.normal(size=(3, 4))


@pytest.fixture
def spd(rng):
    a = rng.normal(size=(2, 4, 4))
    return a @ a.transpose(0, 2, 1) + 4 * np.eye(4)


def test_special_functions(rng):
    p = rng.uniform(0.1, 5, size=10)
    z = rng.normal(size=10) * 3
    close(pd.lgamma(p), sp.gammaln(p))
    close(pd.digamma(p), sp.digamma(p))
    close(pd.polygamma(1, p), sp.polygamma(1, p))
    close(pd.polygamma(3, p), sp.polygamma(3, p))
    close(pd.erf(z), sp.erf(z))
    close(pd.erfc(z), sp.erfc(z))
    close(pd.ndtr(z), sp.ndtr(z))
    close(pd.log_ndtr(z), sp.log_ndtr(z))
    close(pd.ndtri(sp.ndtr(z)), sp.ndtri(sp.ndtr(z)))
    close(pd.xlogy(np.array([0.0, 2.0]), np.array([0.0, 3.0])), [0.0, 2 * np.log(3.0)])
    close(pd.gelu(z), z * sp.ndtr(z))
    close(pd.silu(z), z * sp.expit(z))
    close(pd.elu(z, 0.7), np.where(z > 0, z, 0.7 * np.expm1(z)))
    close(pd.leaky_relu(z, 0.2), np.where(z > 0, z, 0.2 * z))


def test_reductions(x):
    close(pd.sum(x, 1), x.sum(1))
    close(pd.prod(x, (0, 1), keepdims=True), x.prod(keepdims=True))
    close(pd.max(x, 0), x.max(0))
    close(pd.amin(x, -1), x.min(-1))
    close(pd.logsumexp(x, 1), sp.logsumexp(x, 1))
    close(pd.var(x, 0, ddof=1), x.var(0, ddof=1))
    close(pd.std(x), x.std())
    close(pd.cumsum(x, 0), x.cumsum(0))
    close(pd.norm(x), np.linalg.norm(x))
    close(pd.norm(x, 1, axis=1), np.linalg.norm(x, 1, axis=1))
    close(pd.norm(x, np.inf, axis=0), np.linalg.norm(x, np.inf, axis=0))
    close(pd.norm(x, 3, axis=0), np.linalg.norm(x, 3, axis=0))
    close(pd.softmax(x, 0), sp.softmax(x, 0))
    close(pd.log_softmax(x), sp.log_softmax(x, -1))
    assert pd.argmax(x, 1).tolist() == x.argmax(1).tolist()
    assert pd.argmin(x).item() == x.argmin()
    assert bool(pd.all(pd.tensor(x) == x))


def test_shape_ops(x):
    y = x.reshape(2, 2, 3)
    close(pd.tensor(x).reshape(2, 6), x.reshape(2, 6))
    close(pd.transpose(y), y.T)
    close(pd.transpose(y, 0, 2), np.swapaxes(y, 0, 2))
    close(pd.permute(y, (1, 2, 0)), y.transpose(1, 2, 0))
    close(pd.moveaxis(y, 2, 0), np.moveaxis(y, 2, 0))
    close(pd.squeeze(x[:, None]), x)
    close(pd.squeeze(x[:, None], 0), x[:, None])  # a dim that is not 1 is left alone, as in PyTorch
    close(pd.flatten(y, 1), y.reshape(2, 6))
    close(pd.concatenate([x, x], 1), np.concatenate([x, x], 1))
    close(pd.stack([x, x], 1), np.stack([x, x], 1))
    parts = pd.split(x, [1, 3], axis=1)
    assert [p.shape for p in parts] == [(3, 1), (3, 3)]
    assert [p.shape for p in pd.split(x, 3, axis=1)] == [(3, 3), (3, 1)]
    close(pd.flip(x, 0), x[::-1])
    close(pd.pad(x, 1, value=2.0), np.pad(x, 1, constant_values=2.0))
    close(pd.repeat(x, [1, 2, 0], axis=0), np.repeat(x, [1, 2, 0], axis=0))
    close(pd.tile(x, (2, 3)), np.tile(x, (2, 3)))
    close(pd.tensor(x).repeat(2, 1, 1), np.tile(x, (2, 1, 1)))
    close(pd.diagonal(y, 1, 1, 2), np.diagonal(y, 1, 1, 2))
    d = pd.diag_embed(x)
    close(d, np.einsum("ij,jk->ijk", x, np.eye(4)))
    close(pd.diag_embed(x[0], -1), np.diag(x[0], -1))
    close(pd.tril(y, -1), np.tril(y, -1))
    close(pd.triu(y, 1), np.triu(y, 1))


def test_indexing(x):
    t = pd.tensor(x)
    idx = np.array([[0, 3], [1, 1], [2, 0]])
    close(t[1:, [0, 0, 2]], x[1:, [0, 0, 2]])
    close(t[x > 0], x[x > 0])
    close(t[..., None, 1], x[..., None, 1])
    close(pd.take_along_axis(t, idx, 1), np.take_along_axis(x, idx, 1))
    close(pd.gather(t, 1, idx[:2]), np.take_along_axis(x[:2], idx[:2], 1))
    close(pd.index_select(t, 0, np.array([2, 2])), x[[2, 2]])
    out = x.copy()
    np.add.at(out, [0, 0, 2], np.ones((3, 4)))
    close(pd.index_add(t, 0, np.array([0, 0, 2]), np.ones((3, 4))), out)
    src = np.arange(6.0).reshape(3, 2)
    out = x.copy()
    for i in range(3):
        for j in range(2):
            out[i, idx[i, j]] += src[i, j]
    close(pd.scatter_add(t, 1, idx, src), out)
    close(pd.one_hot(np.array([2, 0]), 3), np.eye(3)[[2, 0]])


def test_linalg_values(rng, spd):
    a, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 5))
    close(pd.matmul(a, b), a @ b)
    close(pd.matmul(b[:, 0], b), b[:, 0] @ b)
    close(pd.einsum("bij,jk->bik", a, b), np.einsum("bij,jk->bik", a, b))
    close(pd.einsum("ii", spd[0]), np.trace(spd[0]))
    close(pd.einsum("ij,ij", b, b), np.einsum("ij,ij", b, b))
    close(pd.outer(b[0], b[1]), np.outer(b[0], b[1]))
    L = np.linalg.cholesky(spd)
    close(pd.cholesky(spd), L)
    rhs = rng.normal(size=(4, 2))
    close(pd.solve_triangular(L[0], rhs, lower=True), scipy.linalg.solve_triangular(L[0], rhs, lower=True))
    close(pd.solve_triangular(L[0].T, rhs, trans=1), scipy.linalg.solve_triangular(L[0].T, rhs, trans=1))
    # Only the named triangle is read, as in scipy: junk above the diagonal changes nothing.
    junk = L + np.triu(rng.normal(size=(2, 4, 4)), 1)
    for k in range(2):
        close(pd.solve_triangular(junk, rhs, lower=True)[k], scipy.linalg.solve_triangular(L[k], rhs, lower=True),
              rtol=1e-10)
    close(pd.cholesky_solve(rhs, L[0]), np.linalg.solve(spd[0], rhs), rtol=1e-10)
    close(pd.solve(spd, rhs), np.linalg.solve(spd, rhs), rtol=1e-10)
    close(pd.solve(spd, rhs[:, 0][None].repeat(2, 0)), np.linalg.solve(spd, rhs[:, :1][None].repeat(2, 0))[..., 0],
          rtol=1e-10)
    close(pd.inv(spd), np.linalg.inv(spd), rtol=1e-10)
    sign, lad = pd.slogdet(a[:, :, :3])
    ref = np.linalg.slogdet(a[:, :, :3])
    close(sign, ref[0])
    close(lad, ref[1], rtol=1e-10)
    close(pd.logdet(spd), np.linalg.slogdet(spd)[1], rtol=1e-10)
    assert np.isnan(pd.logdet(-np.eye(3)[None].repeat(1, 0) * np.array([1, 1, 1.0])).item())
    close(pd.det(a[:, :, :3]), np.linalg.det(a[:, :, :3]), rtol=1e-10)
    close(pd.trace(spd), np.trace(spd, axis1=1, axis2=2))
    w, v = pd.eigh(spd)
    wr, vr = np.linalg.eigh(spd)
    close(w, wr, rtol=1e-10)
    close(pd.abs(v), np.abs(vr), rtol=1e-8, atol=1e-10)


def test_random_draws_are_seeded_and_shaped():
    pd.set_rng_seed(3)
    a = pd.normal(0.0, 1.0, (2, 3))
    pd.set_rng_seed(3)
    b = pd.normal(0.0, 1.0, (2, 3))
    assert np.array_equal(a.numpy(), b.numpy()) and a.shape == (2, 3) and not a.requires_grad
    g = np.random.default_rng(1)
    assert pd.uniform(size=4, rng=g).shape == (4,)
    assert pd.gamma(2.0, 3.0, size=(5,), rng=1).shape == (5,)
    assert pd.beta(np.ones(3), 2.0, rng=1).shape == (3,)
    assert pd.poisson(np.ones((2, 2)), rng=1).dtype == np.int64
    assert pd.binomial(10, 0.5, size=3, rng=1).shape == (3,)
    c = pd.categorical(probs=np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), size=4, rng=1)
    assert c.shape == (4, 2) and (c.numpy() == [1, 0]).all()
    m = pd.multinomial(5, np.array([0.2, 0.8]), size=3, rng=1)
    assert m.shape == (3, 2) and (m.numpy().sum(-1) == 5).all()
    assert sorted(pd.permutation(5, rng=1).tolist()) == list(range(5))
    r = pd.randint(3, 7, size=100, rng=1).numpy()
    assert r.min() >= 3 and r.max() < 7
    assert pd.randn(2, 3).shape == (2, 3) and pd.rand((4,)).shape == (4,)


def test_random_draw_moments():
    """Sample means within 5 standard errors of the truth (n = 20000, so a false alarm is ~1e-6)."""
    n = 20000
    g = np.random.default_rng(7)
    z = pd.gamma(3.0, 2.0, size=n, rng=g).numpy()
    assert abs(z.mean() - 1.5) < 5 * np.sqrt(3.0 / 4.0 / n)
    c = pd.categorical(logits=np.log([0.2, 0.3, 0.5]), size=n, rng=g).numpy()
    freq = np.bincount(c, minlength=3) / n
    assert np.all(np.abs(freq - [0.2, 0.3, 0.5]) < 5 * np.sqrt(0.25 / n))
    b = pd.beta(2.0, 5.0, size=n, rng=g).numpy()
    assert abs(b.mean() - 2 / 7) < 5 * np.sqrt(2 * 5 / (49 * 8) / n)


def test_creation():
    assert pd.zeros(2, 3).shape == (2, 3) and pd.zeros((2, 3)).dtype == np.float64
    assert pd.ones(2, dtype=np.float32).dtype == np.float32
    assert pd.full((2,), 7.0).tolist() == [7.0, 7.0]
    assert pd.arange(3).dtype == np.int64 and pd.arange(0.0, 1.0, 0.5).tolist() == [0.0, 0.5]
    assert pd.linspace(0, 1, 3).tolist() == [0.0, 0.5, 1.0]
    assert pd.eye(2).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    t = pd.tensor([[1.0, 2.0]], requires_grad=True)
    assert pd.zeros_like(t).shape == (1, 2) and not pd.ones_like(t).requires_grad
    assert pd.full_like(t, 3.0).tolist() == [[3.0, 3.0]]
    assert pd.tensor(1).dtype == np.int64 and pd.tensor(True).dtype == np.bool_
    src = np.zeros(2)
    copy = pd.tensor(src)
    src[0] = 5
    assert copy[0].item() == 0.0  # tensor() copies; as_tensor() shares
    assert pd.as_tensor(src).data is src
    pd.set_default_dtype(np.float32)
    assert pd.tensor([1.0]).dtype == np.float32 and pd.zeros(1).dtype == np.float32
    assert pd.tensor(np.zeros(1)).dtype == np.float64  # arrays keep their dtype


def test_tensor_attributes_and_conversions():
    t = pd.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert t.shape == (2, 2) and t.ndim == 2 and t.dtype == np.float64 and t.device == "cpu"
    assert t.T.tolist() == [[1.0, 3.0], [2.0, 4.0]]
    assert t[0, 1].item() == 2.0 and isinstance(t.tolist(), list)
    assert np.asarray(t).shape == (2, 2) and t.numpy().dtype == np.float64
    assert t.size() == (2, 2) and t.size(1) == 2 and t.numel() == 4 and len(t) == 2
    assert [r.tolist() for r in t] == [[1.0, 2.0], [3.0, 4.0]]
    assert float(t.sum()) == 10.0 and int(pd.tensor(3)) == 3
    assert t.detach().requires_grad is False and t.detach().data is t.data
    assert t.to(np.float32).dtype == np.float32 and t.to("cpu") is t
    assert "requires_grad=True" in repr(t) and "grad_fn=<MulBackward>" in repr(t * 2)
    assert repr(pd.tensor([1, 2])) == "tensor([1, 2])"
    assert "dtype=float32" in repr(t.float())


def test_pytorch_dim_and_keepdim_are_accepted_where_numpy_names_are_axis_and_keepdims(x):
    t = pd.tensor(x)
    close(t.sum(dim=0), x.sum(0))
    close(pd.mean(t, dim=1, keepdim=True), x.mean(1, keepdims=True))
    close(pd.softmax(t, dim=0), pd.softmax(t, axis=0).numpy())
    with pytest.raises(TypeError, match="axis or dim"):
        pd.sum(t, axis=0, dim=0)


def test_the_tensor_package_is_callable_and_its_submodules_import():
    import probdl.tensor.autograd as autograd
    import probdl.tensor.ops as ops

    assert callable(pd.tensor) and pd.tensor([1.0]).tolist() == [1.0]
    assert ops.exp is pd.exp and autograd.Op is not None


def test_full_takes_its_dtype_from_the_fill_value_and_strings_are_rejected():
    assert pd.full((2,), 7).dtype == np.int64 and pd.full((2,), 7.0).dtype == np.float64
    assert pd.full(2, True).dtype == np.bool_
    with pytest.raises(TypeError, match="dtype <U1"):
        pd.tensor(["a"])


def test_results_hold_arrays_never_numpy_scalars():
    """NumPy reductions return scalars; a Tensor always holds an array, so in-place updates and .numpy() work."""
    s = pd.tensor([1.0, 2.0]).sum()
    assert isinstance(s.data, np.ndarray) and s.data.shape == ()
    assert isinstance(pd.argmax(pd.ones(3)).data, np.ndarray) and isinstance(pd.all(pd.ones(2)).data, np.ndarray)
    s += 1.0
    assert s.item() == 4.0
