"""Numerical stability at large |x|, and dtype rules.

The log-space and saturating ops must stay finite, with finite gradients, at inputs of ±1000 and
±1e4 wherever the mathematical value is finite, and agree with float64 references from NumPy and
SciPy. Ops never silently change dtype: float32 stays float32, float32 with float64 promotes as in
NumPy, and Python scalars adopt the tensor's dtype.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.special as sps
from scipy.stats import norm

import probdl as pd

RTOL = 1e-12  # float64 references; the ops are exact up to a few ulps here

BIG = [-1e4, -1000.0, 1000.0, 1e4]


def value_and_grad(f, x):
    """f(x) and d(sum f(x))/dx as float64 NumPy arrays, through ``pd.value_and_grad``."""
    x = np.asarray(x, dtype=np.float64)
    out = f(pd.tensor(x)).numpy()
    _, g = pd.value_and_grad(lambda t: f(t).sum())(x)
    return out, g.numpy()


def backward_grad(f, x):
    """d(sum f(x))/dx through ``Tensor.backward``."""
    t = pd.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    f(t).sum().backward()
    return t.grad.numpy()


def check(f, x, ref_value, ref_grad, rtol=RTOL, atol=0.0):
    """Value and gradient are finite and match the references, by both ``grad`` and ``backward``."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # overflow / invalid inside a "stable" op is a bug
        value, g = value_and_grad(f, x)
        g2 = backward_grad(f, x)
    assert np.all(np.isfinite(value)), value
    assert np.all(np.isfinite(g)), g
    np.testing.assert_allclose(value, ref_value, rtol=rtol, atol=atol)
    np.testing.assert_allclose(g, ref_grad, rtol=rtol, atol=atol)
    np.testing.assert_array_equal(g, g2)


# ------------------------------------------------------------------ elementwise
@pytest.mark.parametrize("x", BIG)
def test_softplus_large(x):
    check(pd.softplus, [x], np.logaddexp(0.0, x), sps.expit(x))


def test_softplus_1000_is_exactly_1000_with_gradient_1():
    v, g = value_and_grad(pd.softplus, 1000.0)
    assert v == 1000.0
    assert g == 1.0


@pytest.mark.parametrize("x", BIG)
def test_log_sigmoid_large(x):
    check(pd.log_sigmoid, [x], -np.logaddexp(0.0, -x), sps.expit(-x))


def test_log_sigmoid_minus_1000_is_exactly_minus_1000_with_gradient_1():
    v, g = value_and_grad(pd.log_sigmoid, -1000.0)
    assert v == -1000.0
    assert g == 1.0


@pytest.mark.parametrize("x", BIG)
def test_sigmoid_large(x):
    s = sps.expit(x)
    check(pd.sigmoid, [x], s, s * sps.expit(-x))


@pytest.mark.parametrize("x", [1000.0, 1e4])  # log1p(x) is finite only for x > -1
def test_log1p_large(x):
    check(pd.log1p, [x], np.log1p(x), 1.0 / (1.0 + x))


@pytest.mark.parametrize("x", [-1000.0, -1e4])  # expm1 overflows for large positive x
def test_expm1_large_negative(x):
    check(pd.expm1, [x], np.expm1(x), np.exp(x))


def _log_ndtr_grad(x):
    """φ(x)/Φ(x) = sqrt(2/π) / erfcx(-x/√2), accurate to a few ulps at every x.

    (The log-space form exp(log φ(x) - log Φ(x)) loses ~|x|²·eps relative accuracy in the left tail:
    6e-9 at x = -1e4, so it is no reference there. This one agrees with 60-digit mpmath to 4e-16.)
    """
    return np.sqrt(2.0 / np.pi) / sps.erfcx(-np.asarray(x, dtype=np.float64) / np.sqrt(2.0))


@pytest.mark.parametrize("x", BIG)
def test_log_ndtr_large(x):
    check(pd.log_ndtr, [x], sps.log_ndtr(x), _log_ndtr_grad(x))


def test_log_ndtr_gradient_at_minus_1000_is_about_1000_001():
    _, g = value_and_grad(pd.log_ndtr, -1000.0)
    np.testing.assert_allclose(g, 1000.001, rtol=1e-8)
    np.testing.assert_allclose(g, np.exp(norm.logpdf(-1000.0) - norm.logcdf(-1000.0)), rtol=1e-8)


@pytest.mark.parametrize("x", [-100.0, -30.0, -5.0, 0.0, 5.0, 30.0])  # ±1000, ±1e4: test_log_ndtr_large
def test_log_ndtr_gradient_is_accurate_across_the_range(x):
    _, g = value_and_grad(pd.log_ndtr, [x])
    np.testing.assert_allclose(g, _log_ndtr_grad([x]), rtol=RTOL)


# d²/dx² log Φ(x) = -r (x + r) with r = φ/Φ, from 60-digit mpmath (the float64 formula cancels in the tail).
_LOG_NDTR_HESSIAN = {-1e4: -0.9999999900000006, -1000.0: -0.99999900000599995, -100.0: -0.99990005995005174,
                     -30.0: -0.998896228488109909, -5.0: -0.96730356538288777}


@pytest.mark.parametrize("x", list(_LOG_NDTR_HESSIAN))
def test_log_ndtr_second_derivative_in_the_left_tail(x):
    # float64 can give -r (x + r) to ~1e-8 relative at x = -1e4 from an accurate r; ask for 1e-6.
    h = pd.grad(lambda t: pd.grad(pd.log_ndtr)(t))(x).item()
    assert np.isfinite(h)
    np.testing.assert_allclose(h, _LOG_NDTR_HESSIAN[x], rtol=1e-6)


@pytest.mark.parametrize("a, b", [(1000.0, 1000.0), (-1000.0, -1000.0), (1e4, -1e4), (-1e4, -1e4 + 1.0),
                                  (1000.0, -1000.0), (-1e4, 0.0)])
def test_logaddexp_large(a, b):
    out = np.logaddexp(a, b)
    ga, gb = np.exp(a - out), np.exp(b - out)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        (v, (g1, g2)) = pd.value_and_grad(lambda x, y: pd.logaddexp(x, y), argnums=(0, 1))(a, b)
    assert np.isfinite(v.item()) and np.isfinite(g1.item()) and np.isfinite(g2.item())
    np.testing.assert_allclose(v.item(), out, rtol=RTOL)
    np.testing.assert_allclose([g1.item(), g2.item()], [ga, gb], rtol=RTOL, atol=1e-300)


def test_logaddexp_same_argument_twice():
    # d/dx log(2 e^x) = 1
    check(lambda x: pd.logaddexp(x, x), [-1000.0, 1000.0, 1e4], np.logaddexp([-1000.0, 1000.0, 1e4],
                                                                            [-1000.0, 1000.0, 1e4]), [1.0, 1.0, 1.0])


@pytest.mark.parametrize("x", BIG)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_large_has_finite_value_and_gradient(x, approximate):
    f = lambda t: pd.gelu(t, approximate=approximate)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        v, g = value_and_grad(f, [x])
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    # x Φ(x) saturates: x for large x, 0 for very negative x; the gradient Φ(x) + x φ(x) to 1 and 0.
    np.testing.assert_allclose(v, [max(x, 0.0)], rtol=RTOL, atol=1e-300)
    np.testing.assert_allclose(g, [1.0 if x > 0 else 0.0], rtol=RTOL, atol=1e-300)


@pytest.mark.parametrize("x", BIG)
def test_elu_large_has_finite_value_and_gradient(x):
    check(pd.elu, [x], [x if x > 0 else np.expm1(x)], [1.0 if x > 0 else np.exp(x)])


@pytest.mark.parametrize("x", BIG)
def test_silu_large_has_finite_value_and_gradient(x):
    s = sps.expit(x)
    check(pd.silu, [x], [x * s], [s + x * s * sps.expit(-x)], atol=1e-300)


# ------------------------------------------------------------------ reductions along an axis
ROWS = np.array([
    [1000.0, 999.0, -1000.0, 0.0],
    [-1000.0, -1000.0, -1001.0, -1e4],
    [1e4, -1e4, 1e4 - 2.0, 0.0],
    [-1e4, -1e4 + 1.0, -1e4 - 3.0, -1e4],
])
W = np.array([[0.3, -1.2, 2.0, 0.7]] * 4) * np.array([[1.0], [-0.5], [2.0], [1.5]])


@pytest.mark.parametrize("axis", [None, -1, 0, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_large(axis, keepdims):
    ref = sps.logsumexp(ROWS, axis=axis, keepdims=keepdims)
    ref_grad = sps.softmax(ROWS, axis=axis)
    check(lambda t: pd.logsumexp(t, axis=axis, keepdims=keepdims), ROWS, ref, ref_grad)


def test_logsumexp_1000_plus_log2():
    v, g = value_and_grad(pd.logsumexp, [1000.0, 1000.0])
    np.testing.assert_allclose(v, 1000.0 + np.log(2.0), rtol=RTOL)
    np.testing.assert_allclose(g, [0.5, 0.5], rtol=RTOL)


def test_logsumexp_with_minus_inf_entries():
    check(pd.logsumexp, [-np.inf, 0.0], 0.0, [0.0, 1.0])
    check(lambda t: pd.logsumexp(t, axis=-1), [[-np.inf, 0.0, -np.inf], [1.0, -np.inf, 1.0]],
          sps.logsumexp([[-np.inf, 0.0, -np.inf], [1.0, -np.inf, 1.0]], axis=-1), [[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])


def test_logsumexp_of_all_minus_inf_is_minus_inf():
    x = np.array([[-np.inf, -np.inf], [0.0, -np.inf]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = pd.logsumexp(pd.tensor(x), axis=-1).numpy()
    np.testing.assert_array_equal(out, sps.logsumexp(x, axis=-1))
    assert out[0] == -np.inf and out[1] == 0.0


def test_logsumexp_of_all_minus_inf_warns_nothing():
    # A fully masked row is routine in log-space code; scipy's logsumexp returns -inf silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = pd.logsumexp(pd.tensor([-np.inf, -np.inf])).item()
    assert out == -np.inf


def test_logaddexp_with_minus_inf():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        v, (ga, gb) = pd.value_and_grad(lambda x, y: pd.logaddexp(x, y), argnums=(0, 1))(-np.inf, 0.0)
    assert v.item() == 0.0
    assert ga.item() == 0.0 and gb.item() == 1.0


def test_softmax_and_log_softmax_with_minus_inf_mask():
    x = np.array([[-np.inf, 0.0, 1.0], [2.0, -np.inf, -1000.0]])
    w = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    sm = sps.softmax(x, axis=-1)
    check(lambda t: pd.softmax(t) * pd.tensor(w), x, sm * w, sm * (w - (w * sm).sum(-1, keepdims=True)),
          atol=1e-300)
    # log_softmax is -inf at the masked entries; weight only the others
    keep = np.isfinite(x)
    ref = np.where(keep, sps.log_softmax(x, axis=-1), 0.0)
    wk = np.where(keep, w, 0.0)
    check(lambda t: pd.where(pd.tensor(keep), pd.log_softmax(t), 0.0) * pd.tensor(wk), x, ref * wk,
          wk - sm * wk.sum(-1, keepdims=True), atol=1e-300)


@pytest.mark.parametrize("axis", [-1, 0])
def test_log_softmax_large(axis):
    ref = sps.log_softmax(ROWS, axis=axis)  # not x - logsumexp(x): that cancels catastrophically at 1e4
    sm = sps.softmax(ROWS, axis=axis)
    ref_grad = W - sm * W.sum(axis=axis, keepdims=True)  # d/dx Σ w · log_softmax(x)
    # atol: entries where w_i - 1 · w_i is exactly 0 come out as a few ulps of |w|
    check(lambda t: pd.log_softmax(t, axis=axis) * pd.tensor(W), ROWS, ref * W, ref_grad, atol=1e-14)
    np.testing.assert_allclose(pd.log_softmax(pd.tensor(ROWS), axis=axis).numpy(), ref, rtol=RTOL)


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_large(axis):
    ref = sps.softmax(ROWS, axis=axis)
    ref_grad = ref * (W - (W * ref).sum(axis=axis, keepdims=True))  # d/dx Σ w · softmax(x)
    check(lambda t: pd.softmax(t, axis=axis) * pd.tensor(W), ROWS, ref * W, ref_grad, atol=1e-300)
    np.testing.assert_allclose(pd.softmax(pd.tensor(ROWS), axis=axis).numpy(), ref, rtol=RTOL, atol=1e-300)


@pytest.mark.parametrize("x", [0.0, 0.3, 1.0])
def test_bernoulli_log_likelihood_at_large_and_infinite_logits(x):
    """x log σ(l) + (1 - x) log σ(-l): finite wherever it is mathematically, with the zero-weight term dropped at
    infinite logits (0 at l = +inf, x = 1, not NaN), and the gradient x - σ(l)."""
    logits = np.array([-1e4, -1000.0, -3.0, 0.0, 2.5, 1000.0, 1e4])
    ref = x * -np.logaddexp(0.0, -logits) + (1 - x) * -np.logaddexp(0.0, logits)
    check(lambda t: pd.bernoulli_log_likelihood(t, x), logits, ref, x - sps.expit(logits), atol=1e-300)
    out = pd.bernoulli_log_likelihood(pd.tensor([-np.inf, np.inf]), pd.tensor([x, x])).numpy()
    expected = [0.0 if x == 0 else -np.inf, 0.0 if x == 1 else -np.inf]
    np.testing.assert_array_equal(out, expected)


# ------------------------------------------------------------------ float32 at large |x|
@pytest.mark.parametrize("name, fn, x", [
    ("softplus", pd.softplus, [-1000.0, 1000.0]),
    ("log_sigmoid", pd.log_sigmoid, [-1000.0, 1000.0]),
    ("sigmoid", pd.sigmoid, [-1000.0, 1000.0]),
    ("log_ndtr", pd.log_ndtr, [-1000.0, 1000.0]),
    ("logsumexp", lambda t: pd.logsumexp(t, keepdims=True), [1000.0, -1000.0, 999.0]),
    ("log_softmax", pd.log_softmax, [1000.0, -1000.0, 999.0]),
    ("softmax", pd.softmax, [1000.0, -1000.0, 999.0]),
    ("logaddexp", lambda t: pd.logaddexp(t, t), [-1000.0, 1000.0]),
])
def test_float32_large_inputs_stay_finite_and_float32(name, fn, x):
    t = pd.tensor(np.array(x, dtype=np.float32), requires_grad=True)
    out = fn(t)
    out.sum().backward()
    assert out.dtype == np.float32, name
    assert t.grad.dtype == np.float32, name
    assert np.all(np.isfinite(out.numpy())), (name, out)
    assert np.all(np.isfinite(t.grad.numpy())), (name, t.grad)


# ------------------------------------------------------------------ dtype rules
UNARY = ["exp", "log", "log1p", "expm1", "sqrt", "square", "abs", "neg", "reciprocal", "tanh", "sigmoid",
         "log_sigmoid", "softplus", "relu", "leaky_relu", "elu", "gelu", "silu", "sin", "cos", "arctan", "lgamma",
         "digamma", "trigamma", "erf", "erfc", "ndtr", "log_ndtr", "ndtri"]
BINARY = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "logaddexp", "xlogy", "bernoulli_log_likelihood"]
REDUCTIONS = ["sum", "mean", "prod", "max", "min", "logsumexp", "var", "std", "softmax", "log_softmax", "cumsum",
              "norm"]


@pytest.mark.parametrize("name", UNARY)
def test_unary_float32_stays_float32(name):
    f = getattr(pd, name)
    x = pd.tensor(np.array([0.25, 0.75], dtype=np.float32), requires_grad=True)
    y = f(x)
    assert y.dtype == np.float32, f"{name}(float32) gave {y.dtype}"
    y.sum().backward()
    assert x.grad.dtype == np.float32
    g = pd.grad(lambda t: f(t).sum())(x.detach())
    assert g.dtype == np.float32


@pytest.mark.parametrize("name", BINARY)
def test_binary_float32_stays_float32(name):
    f = getattr(pd, name)
    a = pd.tensor(np.array([0.25, 0.75], dtype=np.float32), requires_grad=True)
    b = pd.tensor(np.array([0.5, 1.25], dtype=np.float32), requires_grad=True)
    y = f(a, b)
    assert y.dtype == np.float32, f"{name}(float32, float32) gave {y.dtype}"
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float32


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_float32_stays_float32(name):
    f = getattr(pd, name)
    x = pd.tensor(np.array([[0.25, 0.75, 0.5]], dtype=np.float32), requires_grad=True)
    y = f(x)
    assert y.dtype == np.float32, f"{name}(float32) gave {y.dtype}"
    y.sum().backward()
    assert x.grad.dtype == np.float32


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("order", ["32-64", "64-32"])
def test_float32_with_float64_promotes_like_numpy(name, order):
    f = getattr(pd, name)
    a32 = np.array([0.25, 0.75], dtype=np.float32)
    b64 = np.array([0.5, 1.25], dtype=np.float64)
    a, b = (a32, b64) if order == "32-64" else (b64, a32)
    ta, tb = pd.tensor(a, requires_grad=True), pd.tensor(b, requires_grad=True)
    y = f(ta, tb)
    expected = np.result_type(a, b)
    assert expected == np.float64
    assert y.dtype == expected, f"{name}({a.dtype}, {b.dtype}) gave {y.dtype}"
    y.sum().backward()
    assert ta.grad.dtype == a.dtype and tb.grad.dtype == b.dtype  # each gradient has its input's dtype


def test_where_promotes_like_numpy():
    c = pd.tensor([True, False])
    x32 = pd.tensor(np.array([1.0, 2.0], dtype=np.float32))
    y64 = pd.tensor(np.array([3.0, 4.0]))
    assert pd.where(c, x32, y64).dtype == np.float64
    assert pd.where(c, x32, x32).dtype == np.float32


def test_matmul_and_concatenate_promote_like_numpy():
    a32 = pd.tensor(np.ones((2, 2), dtype=np.float32))
    b64 = pd.tensor(np.ones((2, 2)))
    assert (a32 @ a32).dtype == np.float32
    assert (a32 @ b64).dtype == np.float64
    assert pd.concatenate([a32, a32]).dtype == np.float32
    assert pd.concatenate([a32, b64]).dtype == np.float64


def test_python_float_times_float32_tensor_stays_float32():
    assert (pd.tensor([1.0], dtype=np.float32) * 2.0).dtype == np.float32


_SCALAR_OPS = {
    "add": lambda t, s: t + s, "radd": lambda t, s: s + t,
    "sub": lambda t, s: t - s, "rsub": lambda t, s: s - t,
    "mul": lambda t, s: t * s, "rmul": lambda t, s: s * t,
    "div": lambda t, s: t / s, "rdiv": lambda t, s: s / t,
    "pow": lambda t, s: t ** s, "rpow": lambda t, s: s ** t,
    "maximum": lambda t, s: pd.maximum(t, s), "minimum": lambda t, s: pd.minimum(t, s),
    "logaddexp": lambda t, s: pd.logaddexp(t, s), "xlogy": lambda t, s: pd.xlogy(t, s),
    "where": lambda t, s: pd.where(t > 0.5, t, s), "clip": lambda t, s: pd.clip(t, s, 10.0),
}


@pytest.mark.parametrize("name", list(_SCALAR_OPS))
@pytest.mark.parametrize("scalar", [2.0, 2, 0.5], ids=["2.0", "2", "0.5"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_scalars_adopt_the_tensor_dtype(name, scalar, dtype):
    t = pd.tensor(np.array([0.25, 0.75], dtype=dtype), requires_grad=True)
    y = _SCALAR_OPS[name](t, scalar)
    assert y.dtype == dtype, f"{name} with {scalar!r} on {np.dtype(dtype)} gave {y.dtype}"
    y.sum().backward()
    assert t.grad.dtype == dtype


def test_python_scalars_adopt_float32_under_a_float64_default():
    pd.set_default_dtype(np.float64)
    t = pd.tensor(np.array([1.0, 2.0], dtype=np.float32))
    assert (t * 0.1 + 3.0 - 1 / t).dtype == np.float32


def test_integer_tensor_times_a_python_float_gives_the_default_float64():
    i = pd.tensor([1, 2, 3])
    assert i.dtype == np.int64
    for y in (i * 0.5, 0.5 * i, i + 0.5, i / 2.0):
        assert y.dtype == np.float64
    np.testing.assert_array_equal((i * 0.5).numpy(), [0.5, 1.0, 1.5])


def test_integer_tensor_times_a_python_int_stays_integer():
    i = pd.tensor([1, 2, 3])
    assert (i * 2).dtype == np.int64
    assert (i + 1).dtype == np.int64


def test_integer_tensor_times_a_python_float_gives_the_default_float32():
    pd.set_default_dtype(np.float32)  # tests/conftest.py restores the default after the test
    i = pd.tensor([1, 2, 3])
    for y in (i * 0.5, 0.5 * i, i + 0.5):
        assert y.dtype == np.float32, f"int64 tensor with 0.5 under default float32 gave {y.dtype}"


def test_python_floats_take_the_default_dtype():
    assert pd.tensor([1.0, 2.0]).dtype == np.float64
    pd.set_default_dtype(np.float32)  # tests/conftest.py restores the default after the test
    assert pd.tensor([1.0, 2.0]).dtype == np.float32
    assert pd.ones(2).dtype == np.float32
    # arrays keep their dtype
    assert pd.tensor(np.array([1.0, 2.0])).dtype == np.float64
