"""Gradient checks for every op against central finite differences (float64), on every device present.

Each case is one row: a name, a function of tensors, and a maker of its inputs from a seeded
generator. Broadcast inputs, axis/keepdims variants and repeated indices are rows of their own.
"""
import zlib

import numpy as np
import pytest

import probdl as pd
from probdl.tensor.autograd import apply
from probdl.tensor.ops.indexing import IndexSelect
from probdl.testing import gradcheck


def N(*shape):
    return lambda r: r.normal(size=shape)


def P(*shape, low=0.5, high=2.0):
    """Positive inputs, away from singularities."""
    return lambda r: r.uniform(low, high, size=shape)


def U(*shape, low=-0.9, high=0.9):
    return lambda r: r.uniform(low, high, size=shape)


def distinct(*shape):
    """Inputs whose elements are well separated (max, min, sort-like ops have no ties)."""
    return lambda r: r.permutation(np.prod(shape, dtype=int)).reshape(shape) * 0.5 + r.uniform(0, 0.1, size=shape)


def SPD(*batch, n=3):
    def make(r):
        a = r.normal(size=batch + (n, n))
        return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)
    return make


def sym(a):
    """Symmetrize the input, so finite differences see the same function the symmetric gradient describes."""
    return 0.5 * (a + a.mT)


# name, function, input makers
UNARY = [
    ("neg", lambda x: -x, [N(3, 4)]),
    ("exp", pd.exp, [N(3, 4)]),
    ("log", pd.log, [P(3, 4)]),
    ("log1p", pd.log1p, [P(3, 4, low=-0.5)]),
    ("expm1", pd.expm1, [N(3, 4)]),
    ("sqrt", pd.sqrt, [P(3, 4)]),
    ("square", pd.square, [N(3, 4)]),
    ("abs", pd.abs, [P(3, 4)]),
    ("abs_neg", pd.abs, [P(3, 4, low=-2.0, high=-0.5)]),
    ("tanh", pd.tanh, [N(3, 4)]),
    ("sigmoid", pd.sigmoid, [N(3, 4)]),
    ("log_sigmoid", pd.log_sigmoid, [N(3, 4)]),
    ("softplus", pd.softplus, [N(3, 4)]),
    ("softplus_beta", lambda x: pd.softplus(x, beta=2.0), [N(3, 4)]),
    ("relu", pd.relu, [distinct(3, 4)]),
    ("relu_neg", lambda x: pd.relu(x - 3.0), [distinct(3, 4)]),
    ("leaky_relu", lambda x: pd.leaky_relu(x - 3.0, 0.1), [distinct(3, 4)]),
    ("elu", lambda x: pd.elu(x - 3.0, 1.5), [distinct(3, 4)]),
    ("gelu", pd.gelu, [N(3, 4)]),
    ("gelu_tanh", lambda x: pd.gelu(x, approximate="tanh"), [N(3, 4)]),
    ("silu", pd.silu, [N(3, 4)]),
    ("sin", pd.sin, [N(3, 4)]),
    ("cos", pd.cos, [N(3, 4)]),
    ("arctan", pd.arctan, [N(3, 4)]),
    ("clip", lambda x: pd.clip(x, 1.0, 4.0), [distinct(3, 4)]),
    ("clip_min_only", lambda x: pd.clip(x, min=2.0), [distinct(3, 4)]),
    ("pow_scalar", lambda x: x ** 3, [N(3, 4)]),
    ("pow_scalar_frac", lambda x: x ** 1.5, [P(3, 4)]),
    ("pow_scalar_neg", lambda x: x ** -2, [P(3, 4)]),
    ("rpow", lambda x: 2.0 ** x, [N(3, 4)]),
    ("reciprocal", pd.reciprocal, [P(3, 4)]),
    ("lgamma", pd.lgamma, [P(3, 4, low=0.2, high=5.0)]),
    ("digamma", pd.digamma, [P(3, 4, low=0.2, high=5.0)]),
    ("trigamma", lambda x: pd.polygamma(1, x), [P(3, 4, low=0.2, high=5.0)]),
    ("polygamma2", lambda x: pd.polygamma(2, x), [P(3, 4, low=0.5, high=5.0)]),
    ("erf", pd.erf, [N(3, 4)]),
    ("erfc", pd.erfc, [N(3, 4)]),
    ("ndtr", pd.ndtr, [N(3, 4)]),
    ("log_ndtr", pd.log_ndtr, [N(3, 4)]),
    ("ndtri", pd.ndtri, [P(3, 4, low=0.05, high=0.95)]),
    ("clone", lambda x: pd.clone(x) * 2, [N(3, 2)]),
]

BINARY = [
    ("add", pd.add, [N(3, 4), N(3, 4)]),
    ("add_bcast", pd.add, [N(3, 1), N(4)]),
    ("add_scalar_tensor", pd.add, [N(), N(2, 3)]),
    ("sub_bcast", pd.sub, [N(2, 1, 3), N(4, 1)]),
    ("mul_bcast", pd.mul, [N(2, 3, 1), N(1, 4)]),
    ("div_bcast", pd.div, [N(3, 4), P(4)]),
    ("rsub_number", lambda x: 1.5 - x, [N(3)]),
    ("rdiv_number", lambda x: 1.5 / x, [P(3)]),
    ("pow_tensor", pd.pow, [P(3, 4), N(4)]),
    ("pow_tensor_bcast", pd.pow, [P(3, 1), N(1, 2)]),
    ("maximum", pd.maximum, [distinct(3, 4), distinct(4)]),
    ("minimum", pd.minimum, [distinct(3, 4), distinct(3, 1)]),
    ("logaddexp", pd.logaddexp, [N(3, 1), N(4)]),
    ("bernoulli_log_likelihood", pd.bernoulli_log_likelihood, [N(3, 4), U(4, low=0.1, high=0.9)]),
    ("bernoulli_log_likelihood_bcast", pd.bernoulli_log_likelihood, [N(3, 1), U(1, 4, low=0.1, high=0.9)]),
    ("xlogy", pd.xlogy, [N(3, 4), P(4)]),
    ("where", lambda a, b: pd.where(a.data > 0, a, b), [N(3, 4), N(4)]),
    ("clip_tensor_bounds", lambda x, lo: pd.clip(x, min=lo), [distinct(3, 4), P(4, low=10.0, high=12.0)]),
]

REDUCTIONS = [
    ("sum_all", lambda x: x.sum(), [N(3, 4)]),
    ("sum_axis0", lambda x: x.sum(0), [N(3, 4)]),
    ("sum_axis_neg_keep", lambda x: x.sum(-1, keepdims=True), [N(2, 3, 4)]),
    ("sum_tuple", lambda x: x.sum((0, 2)), [N(2, 3, 4)]),
    ("mean_all", lambda x: x.mean(), [N(3, 4)]),
    ("mean_tuple_keep", lambda x: x.mean((0, 2), keepdims=True), [N(2, 3, 4)]),
    ("prod_axis", lambda x: x.prod(1), [N(3, 4)]),
    ("prod_with_zero", lambda x: (x * pd.tensor([[0.0, 1, 1], [1, 1, 1]])).prod(1), [N(2, 3)]),
    ("max_all", lambda x: x.max(), [distinct(3, 4)]),
    ("max_axis", lambda x: x.max(0), [distinct(3, 4)]),
    ("min_axis_keep", lambda x: x.min(-1, keepdims=True), [distinct(2, 3, 4)]),
    ("logsumexp_all", lambda x: pd.logsumexp(x), [N(3, 4)]),
    ("logsumexp_axis", lambda x: pd.logsumexp(x, -1), [N(3, 4)]),
    ("logsumexp_tuple_keep", lambda x: pd.logsumexp(x, (0, 1), keepdims=True), [N(2, 3, 4)]),
    ("var", lambda x: pd.var(x, 1), [N(3, 4)]),
    ("var_ddof", lambda x: pd.var(x, 0, ddof=1, keepdims=True), [N(3, 4)]),
    ("std", lambda x: pd.std(x), [N(3, 4)]),
    ("cumsum", lambda x: pd.cumsum(x, 1), [N(3, 4)]),
    ("cumsum_flat", lambda x: pd.cumsum(x), [N(3, 4)]),
    ("norm", lambda x: pd.norm(x), [N(3, 4)]),
    ("norm_axis", lambda x: pd.norm(x, axis=-1, keepdims=True), [N(3, 4)]),
    ("norm_ord1", lambda x: pd.norm(x, 1, axis=0), [P(3, 4)]),
    ("norm_ord3", lambda x: pd.norm(x, 3, axis=1), [P(3, 4)]),
    ("norm_inf", lambda x: pd.norm(x, np.inf, axis=1), [distinct(3, 4)]),
    ("softmax", lambda x: pd.softmax(x, -1), [N(3, 4)]),
    ("softmax_axis0", lambda x: pd.softmax(x, 0), [N(3, 4)]),
    ("log_softmax", lambda x: pd.log_softmax(x, -1), [N(3, 4)]),
    ("log_softmax_axis1", lambda x: pd.log_softmax(x, 1), [N(2, 3, 4)]),
    # Composites whose incoming gradient depends on x: second order reaches every input of the fused backward ops.
    ("softmax_composite", lambda x: pd.softmax(x, -1) ** 2 * pd.sin(x), [N(3, 4)]),
    ("log_softmax_composite", lambda x: pd.log_softmax(x * x, 0) ** 2, [N(3, 4)]),
    ("mean_composite", lambda x: pd.exp(pd.mean(x * x, 1, keepdims=True)) * x + pd.mean(x, 0) ** 2,
     [N(3, 4)]),
]

SHAPE = [
    ("reshape", lambda x: x.reshape(4, 3), [N(3, 4)]),
    ("reshape_infer", lambda x: x.reshape(-1, 2), [N(3, 4)]),
    ("view", lambda x: x.view(2, 6), [N(3, 4)]),
    ("T", lambda x: x.T * pd.arange(3.0), [N(3, 4)]),
    ("mT", lambda x: x.mT, [N(2, 3, 4)]),
    ("transpose_swap", lambda x: pd.transpose(x, 0, 2), [N(2, 3, 4)]),
    ("transpose_perm", lambda x: pd.transpose(x, (1, 2, 0)), [N(2, 3, 4)]),
    ("permute", lambda x: x.permute(2, 0, 1), [N(2, 3, 4)]),
    ("swapaxes", lambda x: pd.swapaxes(x, 0, -1), [N(2, 3, 4)]),
    ("moveaxis", lambda x: pd.moveaxis(x, 0, -1), [N(2, 3, 4)]),
    ("broadcast_to", lambda x: pd.broadcast_to(x, (2, 3, 4)), [N(3, 1)]),
    ("expand", lambda x: x.expand(2, -1, 4), [N(3, 1)]),
    ("squeeze", lambda x: x.squeeze(), [N(3, 1, 4, 1)]),
    ("squeeze_axis", lambda x: x.squeeze(1), [N(3, 1, 4)]),
    ("unsqueeze", lambda x: x.unsqueeze(-1), [N(3, 4)]),
    ("flatten", lambda x: x.flatten(1), [N(2, 3, 4)]),
    ("concatenate", lambda a, b: pd.concatenate([a, b], axis=1), [N(2, 3), N(2, 4)]),
    ("cat_same_input", lambda a: pd.cat([a, a * 2], 0), [N(2, 3)]),
    ("stack", lambda a, b: pd.stack([a, b], axis=-1), [N(2, 3), N(2, 3)]),
    ("split", lambda x: pd.split(x, 2, axis=1)[1] * pd.split(x, [1, 3], axis=1)[0], [N(3, 4)]),
    ("chunk", lambda x: pd.chunk(x, 3, 0)[2], [N(5, 2)]),
    ("flip", lambda x: pd.flip(x, 1), [N(3, 4)]),
    ("flip_all", lambda x: pd.flip(x), [N(3, 4)]),
    ("pad", lambda x: pd.pad(x, ((1, 0), (2, 1)), value=3.0), [N(3, 4)]),
    ("repeat", lambda x: pd.repeat(x, 2, axis=0), [N(3, 4)]),
    ("repeat_counts", lambda x: pd.repeat(x, [1, 0, 3], axis=0), [N(3, 2)]),
    ("repeat_flat", lambda x: pd.repeat(x, 2), [N(2, 2)]),
    ("tile", lambda x: pd.tile(x, (2, 1, 3)), [N(3, 2)]),
    ("tensor_repeat", lambda x: x.repeat(2, 2), [N(3, 2)]),
    ("diagonal", lambda x: pd.diagonal(x), [N(4, 4)]),
    ("diagonal_offset_axes", lambda x: pd.diagonal(x, -1, 1, 2), [N(2, 4, 3)]),
    ("diag_embed", lambda x: pd.diag_embed(x), [N(2, 3)]),
    ("diag_embed_offset", lambda x: pd.diag_embed(x, 1), [N(3)]),
    ("tril", lambda x: pd.tril(x), [N(2, 3, 3)]),
    ("triu_k", lambda x: pd.triu(x, 1), [N(3, 4)]),
]

INDEXING = [
    ("getitem_int", lambda x: x[1], [N(3, 4)]),
    ("getitem_slice", lambda x: x[1:, ::2], [N(3, 4)]),
    ("getitem_none_ellipsis", lambda x: x[None, ..., 1], [N(2, 3, 4)]),
    ("getitem_neg_step", lambda x: x[::-1, -2], [N(3, 4)]),
    ("getitem_int_array_repeated", lambda x: x[np.array([0, 2, 0, 0])], [N(3, 4)]),
    ("getitem_tensor_index", lambda x: x[:, pd.tensor([3, 3, 1])], [N(3, 4)]),
    ("index_select_repeated", lambda x: apply(IndexSelect, (x, pd.tensor([2, 0, 2]))), [N(3, 4)]),
    ("getitem_list", lambda x: x[[1, 1, 0]], [N(3, 4)]),
    ("getitem_two_arrays", lambda x: x[np.array([0, 1, 1]), np.array([2, 2, 2])], [N(3, 4)]),
    ("getitem_bool_mask", lambda x: x[x.data > 0], [N(3, 4)]),
    ("getitem_bool_row_mask", lambda x: x[np.array([True, False, True])], [N(3, 4)]),
    ("take_along_axis", lambda x: pd.take_along_axis(x, np.array([[0, 0, 3], [1, 1, 1], [2, 0, 2]]), 1), [N(3, 4)]),
    ("take_along_axis_bcast", lambda x: pd.take_along_axis(x, np.array([[1], [0], [1]]), 1), [N(3, 4)]),
    ("gather", lambda x: pd.gather(x, 0, np.array([[2, 2], [0, 2]])), [N(3, 4)]),
    ("index_select", lambda x: x.index_select(1, np.array([3, 0, 3])), [N(3, 4)]),
    ("index_add", lambda x, s: pd.index_add(x, 0, np.array([1, 1, 2]), s), [N(3, 4), N(3, 4)]),
    ("scatter_add", lambda x, s: pd.scatter_add(x, 1, np.array([[0, 0], [3, 1], [2, 2]]), s), [N(3, 4), N(3, 2)]),
]

LINALG = [
    ("matmul", pd.matmul, [N(3, 4), N(4, 2)]),
    ("matmul_batch_bcast", pd.matmul, [N(2, 1, 3, 4), N(5, 4, 2)]),
    ("matmul_vec_mat", pd.matmul, [N(4), N(2, 4, 3)]),
    ("matmul_mat_vec", pd.matmul, [N(2, 3, 4), N(4)]),
    ("matmul_vec_vec", pd.matmul, [N(4), N(4)]),
    ("matmul_composite", lambda a, b: pd.tanh(a @ b) @ (b.mT * 0.5), [N(2, 3, 4), N(4, 3)]),
    ("rmatmul_ndarray", lambda b: np.ones((2, 3)) @ b, [N(3, 2)]),
    ("outer", pd.outer, [N(3), N(4)]),
    ("einsum_matmul", lambda a, b: pd.einsum("ij,jk->ik", a, b), [N(2, 3), N(3, 4)]),
    ("einsum_batch_ellipsis", lambda a, b: pd.einsum("...ij,...jk", a, b), [N(2, 2, 3), N(3, 4)]),
    ("einsum_trace", lambda a: pd.einsum("ii", a), [N(3, 3)]),
    ("einsum_diag", lambda a: pd.einsum("ii->i", a), [N(3, 3)]),
    ("einsum_sum_lonely", lambda a, b: pd.einsum("ij,k->k", a, b), [N(2, 3), N(4)]),
    ("einsum_three", lambda a, b, c: pd.einsum("ij,jk,kl->il", a, b, c), [N(2, 3), N(3, 4), N(4, 2)]),
    ("einsum_bcast_size1", lambda a, b: pd.einsum("...i,...i->...", a, b), [N(1, 3), N(4, 3)]),
    ("cholesky", lambda a: pd.cholesky(sym(a)), [SPD()]),
    ("cholesky_batch", lambda a: pd.cholesky(sym(a)), [SPD(2)]),
    ("solve_triangular_lower", lambda a, b: pd.solve_triangular(a, b, lower=True), [SPD(), N(3, 2)]),
    ("solve_triangular_upper_T", lambda a, b: pd.solve_triangular(a, b, trans=1, lower=False), [SPD(), N(3, 2)]),
    ("solve_triangular_vec", lambda a, b: pd.solve_triangular(a, b, trans="T", lower=True), [SPD(), N(3)]),
    ("solve_triangular_unit", lambda a, b: pd.solve_triangular(a, b, lower=True, unit_diagonal=True), [N(3, 3), N(3)]),
    ("solve_triangular_batch", lambda a, b: pd.solve_triangular(a, b, lower=True), [SPD(2), N(3, 2)]),
    ("solve_triangular_batch_b", lambda a, b: pd.solve_triangular(a, b, lower=False), [SPD(), N(2, 3, 2)]),
    ("cholesky_solve", lambda a, b: pd.cholesky_solve(b, pd.cholesky(sym(a))), [SPD(), N(3, 2)]),
    ("cholesky_solve_upper", lambda a, b: pd.cholesky_solve(b, pd.cholesky(sym(a)).mT, upper=True), [SPD(), N(3)]),
    ("solve", pd.solve, [SPD(), N(3, 2)]),
    ("solve_vec_batch", pd.solve, [SPD(2), N(2, 3)]),
    ("inv", pd.inv, [SPD()]),
    ("inv_batch", pd.inv, [SPD(2)]),
    ("slogdet", lambda a: pd.slogdet(a)[1], [N(2, 3, 3)]),
    ("logdet", lambda a: pd.logdet(a), [SPD()]),
    ("det", pd.det, [N(2, 3, 3)]),
    ("trace", pd.trace, [N(2, 3, 3)]),
    ("eigh_values", lambda a: pd.eigh(sym(a))[0], [SPD(n=4)]),
    ("eigh_vectors_sign_fixed", lambda a: _sign_fixed(pd.eigh(sym(a))[1]), [SPD(n=3)]),
]


def _sign_fixed(v):
    """Eigenvectors up to sign are unique; fix the sign so finite differences see a smooth function."""
    return v * pd.sign(v[..., :1, :])


ALL = UNARY + BINARY + REDUCTIONS + SHAPE + INDEXING + LINALG


@pytest.mark.parametrize("name,fn,makers", ALL, ids=[c[0] for c in ALL])
def test_gradcheck(name, fn, makers, device):
    r = np.random.default_rng(zlib.crc32(name.encode()))
    inputs = [m(r) for m in makers]
    gradcheck(fn, inputs, device=device)


SECOND_ORDER = ["softmax_composite", "log_softmax_composite", "mean_composite", "matmul_composite",
                "mean_tuple_keep", "relu_neg", "exp", "log", "tanh", "sigmoid", "softplus", "lgamma", "digamma",
                "erf", "log_ndtr", "ndtri",
                "sqrt", "arctan", "div_bcast", "mul_bcast", "pow_tensor", "logaddexp", "xlogy", "prod_axis",
                "logsumexp_axis", "softmax", "log_softmax", "norm_axis", "cumsum", "getitem_int_array_repeated",
                "take_along_axis", "index_add", "diagonal", "matmul_batch_bcast", "einsum_trace", "cholesky",
                "solve_triangular_upper_T", "solve", "inv", "slogdet", "det", "eigh_values", "var",
                "bernoulli_log_likelihood_bcast"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_gradcheck_second_order(name):
    _, fn, makers = next(c for c in ALL if c[0] == name)
    r = np.random.default_rng(zlib.crc32(name.encode()))
    gradcheck(fn, [m(r) for m in makers], order=2, atol=1e-5, rtol=1e-4)
