"""Property tests over random shapes: values against NumPy/SciPy and gradients against finite differences.

Shapes are small (at most 3 dims, each side at most 4) and binary ops get mutually broadcastable
pairs, so broadcasting and its gradient reduction are exercised on every draw. Inputs are kept in
each op's smooth domain (denominators away from 0, distinct values for max/min, positive bases and
arguments of log, sqrt and lgamma) so that central finite differences are a valid reference.
Runs are reproducible: ``derandomize=True`` and no example database.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sps
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import probdl as pd
from probdl.testing import gradcheck

MAX_DIMS, MAX_SIDE = 3, 4
RTOL = 1e-12  # float64 values against NumPy/SciPy: the same formulas up to a few ulps

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def floats(lo: float, hi: float) -> st.SearchStrategy:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)


def arrays(shape, lo: float, hi: float) -> st.SearchStrategy:
    return hnp.arrays(np.float64, shape, elements=floats(lo, hi))


SHAPES = hnp.array_shapes(min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE)
PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=MAX_DIMS, min_side=1,
                                          max_side=MAX_SIDE)


def assert_matches(out: pd.Tensor, ref, rtol: float = RTOL, atol: float = 0.0) -> None:
    ref = np.asarray(ref)
    assert isinstance(out, pd.Tensor)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    assert out.dtype == np.float64, out.dtype
    np.testing.assert_allclose(out.numpy(), ref, rtol=rtol, atol=atol)


# ------------------------------------------------------------------ binary elementwise
def _plain(lo, hi):
    return lambda draw, shape: draw(arrays(shape, lo, hi))


def _nonzero(lo, hi):
    """Values with lo <= |v| <= hi, either sign."""
    def make(draw, shape):
        mag = draw(arrays(shape, lo, hi))
        sign = draw(hnp.arrays(np.bool_, shape))
        return np.where(sign, mag, -mag)
    return make


def _grid(offset):
    """floor(v) + offset + 0.4 * frac(v): with offsets 0 and 0.5 the two operands differ by >= 0.1 everywhere."""
    def make(draw, shape):
        v = draw(arrays(shape, -3.0, 3.0))
        k = np.floor(v)
        return k + offset + 0.4 * (v - k)
    return make


BINARY = {
    # name: (probdl op, reference, a's values, b's values)
    "add": (pd.add, np.add, _plain(-3, 3), _plain(-3, 3)),
    "sub": (pd.sub, np.subtract, _plain(-3, 3), _plain(-3, 3)),
    "mul": (pd.mul, np.multiply, _plain(-3, 3), _plain(-3, 3)),
    "div": (pd.div, np.divide, _plain(-3, 3), _nonzero(0.5, 3)),
    "maximum": (pd.maximum, np.maximum, _grid(0.0), _grid(0.5)),
    "minimum": (pd.minimum, np.minimum, _grid(0.5), _grid(0.0)),
    "logaddexp": (pd.logaddexp, np.logaddexp, _plain(-5, 5), _plain(-5, 5)),
    "pow": (pd.pow, np.power, _plain(0.5, 3), _plain(-2, 2)),
}


@st.composite
def binary_inputs(draw, name):
    sa, sb = draw(PAIRS).input_shapes
    _, _, make_a, make_b = BINARY[name]
    return make_a(draw, sa), make_b(draw, sb)


@pytest.mark.parametrize("name", list(BINARY))
@SETTINGS
@given(data=st.data())
def test_binary_values_and_gradients(name, data):
    op, ref, _, _ = BINARY[name]
    a, b = data.draw(binary_inputs(name), label="a, b")
    assert_matches(op(pd.tensor(a), pd.tensor(b)), ref(a, b))
    gradcheck(op, [a, b])


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow"])
@SETTINGS
@given(data=st.data())
def test_binary_operators_match_the_functions(name, data):
    op, ref, _, _ = BINARY[name]
    operator = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
                "div": lambda x, y: x / y, "pow": lambda x, y: x ** y}[name]
    a, b = data.draw(binary_inputs(name), label="a, b")
    assert_matches(operator(pd.tensor(a), pd.tensor(b)), ref(a, b))


# ------------------------------------------------------------------ unary elementwise
UNARY = {
    # name: (probdl op, reference, domain)
    "exp": (pd.exp, np.exp, (-5, 5)),
    "log": (pd.log, np.log, (0.2, 5)),
    "tanh": (pd.tanh, np.tanh, (-3, 3)),
    "sigmoid": (pd.sigmoid, sps.expit, (-6, 6)),
    "softplus": (pd.softplus, lambda x: np.logaddexp(0.0, x), (-6, 6)),
    "sqrt": (pd.sqrt, np.sqrt, (0.2, 5)),
    "sin": (pd.sin, np.sin, (-4, 4)),
    "arctan": (pd.arctan, np.arctan, (-4, 4)),
    "lgamma": (pd.lgamma, sps.gammaln, (0.2, 6)),
    "erf": (pd.erf, sps.erf, (-3, 3)),
}


@pytest.mark.parametrize("name", list(UNARY))
@SETTINGS
@given(data=st.data())
def test_unary_values_and_gradients(name, data):
    op, ref, (lo, hi) = UNARY[name]
    x = data.draw(SHAPES.flatmap(lambda s: arrays(s, lo, hi)), label="x")
    assert_matches(op(pd.tensor(x)), ref(x))
    gradcheck(op, [x])


# ------------------------------------------------------------------ reductions
@st.composite
def axis_choices(draw, ndim):
    """None, an int (maybe negative) or a tuple of distinct axes (maybe empty, maybe negative)."""
    kinds = ["none", "int", "tuple"] if ndim else ["none", "tuple"]
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    if kind == "int":
        ax = draw(st.integers(0, ndim - 1))
        return ax - ndim if draw(st.booleans()) else ax
    subset = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim)) if ndim else []
    return tuple(a - ndim if draw(st.booleans()) else a for a in subset)


def _distinct(draw, shape):
    """All elements distinct, at least 0.7 apart: a random permutation of 0..n-1 plus a fraction < 0.3."""
    n = math.prod(shape)
    perm = np.array(draw(st.permutations(range(n))), dtype=np.float64)
    frac = draw(arrays((n,), 0.0, 0.3))
    return ((perm + frac) * 0.5 - n / 4).reshape(shape)


def _plain_values(lo, hi):
    return lambda draw, shape: draw(arrays(shape, lo, hi))


def _logsumexp_ref(x, axis, keepdims, ddof):
    shape = np.sum(x, axis=axis, keepdims=keepdims).shape  # scipy turns 0-d inputs into shape (1,)
    return np.reshape(sps.logsumexp(x, axis=axis, keepdims=keepdims), shape)


REDUCTIONS = {
    # name: (probdl op(x, axis, keepdims, ddof), reference, values, uses ddof)
    "sum": (lambda x, a, k, d: pd.sum(x, a, keepdims=k), lambda x, a, k, d: np.sum(x, a, keepdims=k),
            _plain_values(-3, 3), False),
    "mean": (lambda x, a, k, d: pd.mean(x, a, keepdims=k), lambda x, a, k, d: np.mean(x, a, keepdims=k),
             _plain_values(-3, 3), False),
    "prod": (lambda x, a, k, d: pd.prod(x, a, keepdims=k), lambda x, a, k, d: np.prod(x, a, keepdims=k),
             _plain_values(-1.5, 1.5), False),
    "max": (lambda x, a, k, d: pd.max(x, a, keepdims=k), lambda x, a, k, d: np.max(x, a, keepdims=k),
            _distinct, False),
    "min": (lambda x, a, k, d: pd.min(x, a, keepdims=k), lambda x, a, k, d: np.min(x, a, keepdims=k),
            _distinct, False),
    "logsumexp": (lambda x, a, k, d: pd.logsumexp(x, a, keepdims=k), _logsumexp_ref, _plain_values(-5, 5), False),
    "var": (lambda x, a, k, d: pd.var(x, a, ddof=d, keepdims=k),
            lambda x, a, k, d: np.var(x, a, ddof=d, keepdims=k), _plain_values(-3, 3), True),
    "std": (lambda x, a, k, d: pd.std(x, a, ddof=d, keepdims=k),
            lambda x, a, k, d: np.std(x, a, ddof=d, keepdims=k), _distinct, True),
}


@st.composite
def reduction_inputs(draw, name):
    shape = draw(SHAPES)
    x = REDUCTIONS[name][2](draw, shape)
    axis = draw(axis_choices(len(shape)), label="axis")
    keepdims = draw(st.booleans(), label="keepdims")
    axes = range(len(shape)) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    n = math.prod(shape[a] for a in axes)  # elements reduced into each output
    ddof = draw(st.sampled_from([0, 1]), label="ddof") if REDUCTIONS[name][3] and n >= 2 else 0
    return x, axis, keepdims, ddof, n


@pytest.mark.parametrize("name", list(REDUCTIONS))
@SETTINGS
@given(data=st.data())
def test_reduction_values_and_gradients(name, data):
    op, ref, _, _ = REDUCTIONS[name]
    x, axis, keepdims, ddof, n = data.draw(reduction_inputs(name), label="x, axis, keepdims, ddof, n")
    if name == "std":
        assume(n >= 2)  # the std of one element is 0 for every x: its gradient is not defined by sqrt
    assert_matches(op(pd.tensor(x), axis, keepdims, ddof), ref(x, axis, keepdims, ddof))
    gradcheck(lambda t: op(t, axis, keepdims, ddof), [x])
