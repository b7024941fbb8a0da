"""Elementwise ops: arithmetic, exponentials, activations, comparisons.

Each primitive keeps its forward (on raw arrays) and its backward (in Tensor ops,
so it can be differentiated again) side by side. Composites such as ``silu`` or
``gelu`` are built from primitives and need no gradient code.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import expit as _expit

from ...backend import get_array_module
from .base import Op, Tensor, apply, constant, data_function, pair, sum_to, to_tensor

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "log1p", "expm1", "sqrt", "square", "abs",
    "tanh", "sigmoid", "log_sigmoid", "softplus", "relu", "leaky_relu", "elu", "gelu", "silu", "sin", "cos",
    "arctan", "clip", "maximum", "minimum", "where", "logaddexp", "reciprocal", "astype",
    "floor", "ceil", "round", "sign", "eq", "ne", "lt", "le", "gt", "ge", "isnan", "isfinite",
    "logical_and", "logical_or", "logical_not", "bernoulli_log_likelihood",
]


def _binary(op: type[Op], a: Any, b: Any) -> Tensor:
    if type(a) is not Tensor or type(b) is not Tensor:
        a, b = pair(a, b)
    return apply(op, (a, b))


def _unary(op: type[Op], x: Any, attrs: dict | None = None) -> Tensor:
    if type(x) is not Tensor:
        x = to_tensor(x)
    return apply(op, (x,), attrs)


def _mask(t: Tensor, cond: Any) -> Tensor:
    """A boolean array from the data as a constant, for masked gradients. It stays boolean:
    ``g * mask`` casts inside the multiply, with no float copy of the mask and ``g``'s dtype kept."""
    return constant(cond)


# ------------------------------------------------------------------ arithmetic
class Add(Op):
    forward = staticmethod(lambda a, b: a + b)

    @staticmethod
    def backward(node, out, g):
        a, b = node.inputs
        return (sum_to(g, a.data.shape) if a.requires_grad else None,
                sum_to(g, b.data.shape) if b.requires_grad else None)


class Sub(Op):
    forward = staticmethod(lambda a, b: a - b)

    @staticmethod
    def backward(node, out, g):
        a, b = node.inputs
        return (sum_to(g, a.data.shape) if a.requires_grad else None,
                sum_to(-g, b.data.shape) if b.requires_grad else None)


class Mul(Op):
    forward = staticmethod(lambda a, b: a * b)

    @staticmethod
    def backward(node, out, g):
        a, b = node.inputs
        return (sum_to(g * b, a.data.shape) if a.requires_grad else None,
                sum_to(g * a, b.data.shape) if b.requires_grad else None)


class Div(Op):
    forward = staticmethod(lambda a, b: a / b)

    @staticmethod
    def backward(node, out, g):
        a, b = node.inputs
        ga = g / b
        return (sum_to(ga, a.data.shape) if a.requires_grad else None,
                sum_to(-ga * out, b.data.shape) if b.requires_grad else None)


class Neg(Op):
    forward = staticmethod(lambda x: -x)

    @staticmethod
    def backward(node, out, g):
        return (-g,)


class PowScalar(Op):
    """``x ** p`` for a fixed Python number ``p``."""

    forward = staticmethod(lambda x, p: x ** p)

    @staticmethod
    def backward(node, out, g):
        x, p = node.inputs[0], node.attrs["p"]
        if p == 2:
            return (g * (2 * x),)
        return (g * (p * x ** (p - 1)),)


class Pow(Op):
    """``a ** b`` with a tensor exponent; d/db is ``out * log(a)``, taken as 0 where a == 0."""

    forward = staticmethod(lambda a, b: a ** b)

    @staticmethod
    def backward(node, out, g):
        a, b = node.inputs
        ga = sum_to(g * b * a ** (b - 1), a.data.shape) if a.requires_grad else None
        gb = None
        if b.requires_grad:
            zero = a.data == 0
            safe_a = where(zero, 1, a)
            gb = sum_to(g * where(zero, 0, out * log(safe_a)), b.data.shape)
        return ga, gb


def add(a: Any, b: Any) -> Tensor:
    """a + b, broadcasting."""
    return _binary(Add, a, b)


def sub(a: Any, b: Any) -> Tensor:
    """a - b, broadcasting."""
    return _binary(Sub, a, b)


def mul(a: Any, b: Any) -> Tensor:
    """a * b, broadcasting."""
    return _binary(Mul, a, b)


def div(a: Any, b: Any) -> Tensor:
    """a / b (true division), broadcasting."""
    return _binary(Div, a, b)


def neg(x: Any) -> Tensor:
    """-x."""
    return _unary(Neg, x)


def reciprocal(x: Any) -> Tensor:
    """1 / x."""
    return div(1.0, x)


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001  (the name users expect)
    """a ** b; a Python-number exponent gives a cheaper op than a tensor one."""
    if isinstance(b, (int, float)) and not isinstance(b, bool) and isinstance(a, Tensor):
        if b == 1:
            return a
        return apply(PowScalar, (a,), {"p": b})
    return _binary(Pow, a, b)


# ------------------------------------------------------------------ exp and log family
def _unary_op(name: str, fwd, bwd, doc: str):
    """Make a one-input primitive op and its function from a forward and a backward rule."""
    cls = type(name, (Op,), {"forward": staticmethod(fwd), "backward": staticmethod(
        lambda node, out, g: (bwd(node.inputs[0], out, g),)), "__doc__": doc})

    def fn(x: Any) -> Tensor:
        return _unary(cls, x)

    fn.__doc__ = doc
    return cls, fn


def _xp(x):
    return get_array_module(x)


Exp, exp = _unary_op("Exp", lambda x: _xp(x).exp(x), lambda x, out, g: g * out, "e ** x.")
Log, log = _unary_op("Log", lambda x: _xp(x).log(x), lambda x, out, g: g / x, "Natural logarithm.")
Log1p, log1p = _unary_op("Log1p", lambda x: _xp(x).log1p(x), lambda x, out, g: g / (x + 1),
                         "log(1 + x), accurate for small x.")
Expm1, expm1 = _unary_op("Expm1", lambda x: _xp(x).expm1(x), lambda x, out, g: g * (out + 1),
                         "exp(x) - 1, accurate for small x.")
Sqrt, sqrt = _unary_op("Sqrt", lambda x: _xp(x).sqrt(x), lambda x, out, g: g / (2 * out), "Square root.")
Square, square = _unary_op("Square", lambda x: x * x, lambda x, out, g: g * (2 * x), "x * x.")
Abs, abs = _unary_op("Abs", lambda x: _xp(x).abs(x),  # noqa: A001
                     lambda x, out, g: g * constant(_xp(x.data).sign(x.data)), "|x| (gradient sign(x), 0 at 0).")
Tanh, tanh = _unary_op("Tanh", lambda x: _xp(x).tanh(x), lambda x, out, g: g * (1 - out * out),
                       "Hyperbolic tangent.")
Sin, sin = _unary_op("Sin", lambda x: _xp(x).sin(x), lambda x, out, g: g * cos(x), "Sine.")
Cos, cos = _unary_op("Cos", lambda x: _xp(x).cos(x), lambda x, out, g: -g * sin(x), "Cosine.")
Arctan, arctan = _unary_op("Arctan", lambda x: _xp(x).arctan(x), lambda x, out, g: g / (1 + x * x),
                           "Inverse tangent.")


def _sigmoid_array(x):
    # 1 / (1 + exp(-x)) without overflow: SciPy's expit on the CPU (one ufunc), else exp of -|x| only.
    xp = _xp(x)
    if xp is np:
        return _expit(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus_array(x):
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): finite for any finite x.
    xp = _xp(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


Sigmoid, sigmoid = _unary_op("Sigmoid", _sigmoid_array, lambda x, out, g: g * (out * (1 - out)),
                             "Logistic sigmoid 1 / (1 + exp(-x)), stable at large |x|.")
Softplus, _softplus = _unary_op("Softplus", _softplus_array, lambda x, out, g: g * sigmoid(x),
                                "log(1 + exp(x)), stable at large |x|.")
Relu, relu = _unary_op("Relu", lambda x: _xp(x).maximum(x, 0), lambda x, out, g: g * _mask(x, x.data > 0),
                       "max(x, 0).")


def softplus(x: Any, beta: float = 1.0, threshold: float | None = None) -> Tensor:
    """log(1 + exp(beta x)) / beta, computed stably (no overflow at any finite x).

    ``threshold`` is accepted for PyTorch compatibility and unused: the stable form needs no switch.
    """
    if beta == 1.0:
        return _softplus(x)
    return _softplus(x * beta) / beta


def log_sigmoid(x: Any) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), finite with a finite gradient at any finite x."""
    return -_softplus(-to_tensor(x))


class BernoulliLogLikelihood(Op):
    """x log σ(l) + (1 - x) log σ(-l) = x l - softplus(l): the log-likelihood of x under Bernoulli(logits=l), one
    op instead of two log-sigmoids, two masks and two products (the hot path of logistic models). As in
    ``_weighted`` of the Bernoulli, a term whose weight (x or 1 - x) is 0 counts as 0, so infinite logits give
    0 or -inf rather than NaN. Gradients: ∂/∂l = x - σ(l), ∂/∂x = l."""

    @staticmethod
    def forward(logits, x):
        xp = _xp(logits)
        if not xp.isinf(logits).any():
            return x * logits - _softplus_array(logits)
        with np.errstate(invalid="ignore"):  # infinite logits: the term-by-term form, zero weights dropped
            pos = xp.where(x == 0, 0.0, x * -_softplus_array(-logits))
            neg = xp.where(x == 1, 0.0, (1 - x) * -_softplus_array(logits))
        return pos + neg

    @staticmethod
    def backward(node, out, g):
        logits, x = node.inputs
        return (sum_to(g * (x - sigmoid(logits)), logits.data.shape) if logits.requires_grad else None,
                sum_to(g * logits, x.data.shape) if x.requires_grad else None)


def bernoulli_log_likelihood(logits: Any, x: Any) -> Tensor:
    """x log σ(l) + (1 - x) log σ(-l) elementwise (broadcasting), stable at any logit; see
    :class:`BernoulliLogLikelihood`."""
    return _binary(BernoulliLogLikelihood, logits, x)


class LeakyRelu(Op):
    forward = staticmethod(lambda x, slope: _xp(x).where(x > 0, x, slope * x))

    @staticmethod
    def backward(node, out, g):
        x, slope = node.inputs[0], node.attrs["slope"]
        return (g * constant(_xp(x.data).where(x.data > 0, 1, slope).astype(x.data.dtype)),)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    return _unary(LeakyRelu, x, {"slope": negative_slope})


class Elu(Op):
    @staticmethod
    def forward(x, alpha):
        xp = _xp(x)
        return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))

    @staticmethod
    def backward(node, out, g):
        x, alpha = node.inputs[0], node.attrs["alpha"]
        return (g * where(x.data > 0, 1, out + alpha),)


def elu(x: Any, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return _unary(Elu, x, {"alpha": alpha})


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit x Φ(x) (``approximate="tanh"`` for the tanh form).

    References: Hendrycks & Gimpel, "Gaussian Error Linear Units (GELUs)", 2016.
    """
    from .special import ndtr

    x = to_tensor(x)
    if approximate == "tanh":
        return 0.5 * x * (1 + tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return x * ndtr(x)


def silu(x: Any) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    x = to_tensor(x)
    return x * sigmoid(x)


# ------------------------------------------------------------------ selection
class Clip(Op):
    forward = staticmethod(lambda x, lo, hi: _xp(x).clip(x, lo, hi))

    @staticmethod
    def backward(node, out, g):
        x, lo, hi = node.inputs[0], node.attrs["lo"], node.attrs["hi"]
        inside = _xp(x.data).ones(x.data.shape, dtype=bool)
        if lo is not None:
            inside &= x.data >= lo
        if hi is not None:
            inside &= x.data <= hi
        return (g * _mask(x, inside),)


def clip(x: Any, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    """Clamp x to [min, max]; the gradient passes where min <= x <= max. Bounds may be tensors."""
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = to_tensor(x)
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    return _unary(Clip, x, {"lo": min, "hi": max})


class Maximum(Op):
    """Elementwise max; at ties the gradient is split evenly between the two inputs."""

    forward = staticmethod(lambda a, b: _xp(a).maximum(a, b))

    @staticmethod
    def backward(node, out, g):
        a, b = node.inputs
        share = (a.data > b.data) + 0.5 * (a.data == b.data)
        return _split_by_share(g, a, b, share)


class Minimum(Op):
    """Elementwise min; at ties the gradient is split evenly between the two inputs."""

    forward = staticmethod(lambda a, b: _xp(a).minimum(a, b))

    @staticmethod
    def backward(node, out, g):
        a, b = node.inputs
        share = (a.data < b.data) + 0.5 * (a.data == b.data)
        return _split_by_share(g, a, b, share)


def _split_by_share(g, a, b, share):
    share = constant(share.astype(g.data.dtype))
    return (sum_to(g * share, a.data.shape) if a.requires_grad else None,
            sum_to(g * (1 - share), b.data.shape) if b.requires_grad else None)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum, broadcasting."""
    return _binary(Maximum, a, b)


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum, broadcasting."""
    return _binary(Minimum, a, b)


class Where(Op):
    forward = staticmethod(lambda c, a, b: _xp(a).where(c, a, b))

    @staticmethod
    def backward(node, out, g):
        c, a, b = node.inputs
        zero = g.data.dtype.type(0)
        return (None,
                sum_to(where(c, g, zero), a.data.shape) if a.requires_grad else None,
                sum_to(where(c, zero, g), b.data.shape) if b.requires_grad else None)


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """``x`` where ``condition`` holds, else ``y``; the condition takes no gradient."""
    c = condition if isinstance(condition, Tensor) else Tensor._wrap(_xp(condition).asarray(condition))
    if c.data.dtype != np.bool_:
        c = Tensor._wrap(c.data.astype(bool))
    x, y = pair(x, y)
    return apply(Where, (c, x, y))


class Logaddexp(Op):
    forward = staticmethod(lambda a, b: _xp(a).logaddexp(a, b))

    @staticmethod
    def backward(node, out, g):
        a, b = node.inputs
        return (sum_to(g * exp(a - out), a.data.shape) if a.requires_grad else None,
                sum_to(g * exp(b - out), b.data.shape) if b.requires_grad else None)


def logaddexp(a: Any, b: Any) -> Tensor:
    """log(exp(a) + exp(b)), stable."""
    return _binary(Logaddexp, a, b)


class Cast(Op):
    forward = staticmethod(lambda x, dtype: x.astype(dtype))

    @staticmethod
    def backward(node, out, g):
        x = node.inputs[0]
        return (g.astype(x.data.dtype) if x.data.dtype.kind in "fc" else None,)


def astype(x: Any, dtype: Any) -> Tensor:
    """The tensor in another dtype; differentiable between floating dtypes."""
    x = to_tensor(x)
    dtype = np.dtype(dtype)
    if x.data.dtype == dtype:
        return x
    if dtype.kind not in "fc":  # integer or bool results carry no gradient
        return data_function(lambda a: a.astype(dtype), x, elementwise=True)
    return apply(Cast, (x,), {"dtype": dtype})


# ------------------------------------------------------------------ no gradient
def _nondiff(name: str, fn, nargs: int):
    """A function of the data alone: its result is a constant outside the graph."""
    if nargs == 1:
        def f(x: Any) -> Tensor:
            return data_function(fn, to_tensor(x), elementwise=True)
    else:
        def f(a: Any, b: Any) -> Tensor:
            a, b = pair(a, b)
            try:
                return data_function(fn, a, b, elementwise=True)
            except ValueError as e:
                raise ValueError(f"{name}: {e} (shapes {a.data.shape} and {b.data.shape})") from None
    f.__name__ = name
    f.__doc__ = f"{name} of the data; not differentiable (the result is outside the graph)."
    return f


floor = _nondiff("floor", lambda x: _xp(x).floor(x), 1)
ceil = _nondiff("ceil", lambda x: _xp(x).ceil(x), 1)
round = _nondiff("round", lambda x: _xp(x).round(x), 1)  # noqa: A001
sign = _nondiff("sign", lambda x: _xp(x).sign(x), 1)
isnan = _nondiff("isnan", lambda x: _xp(x).isnan(x), 1)
isfinite = _nondiff("isfinite", lambda x: _xp(x).isfinite(x), 1)
logical_not = _nondiff("logical_not", lambda x: _xp(x).logical_not(x), 1)
eq = _nondiff("eq", lambda a, b: a == b, 2)
ne = _nondiff("ne", lambda a, b: a != b, 2)
lt = _nondiff("lt", lambda a, b: a < b, 2)
le = _nondiff("le", lambda a, b: a <= b, 2)
gt = _nondiff("gt", lambda a, b: a > b, 2)
ge = _nondiff("ge", lambda a, b: a >= b, 2)
logical_and = _nondiff("logical_and", lambda a, b: _xp(a).logical_and(a, b), 2)
logical_or = _nondiff("logical_or", lambda a, b: _xp(a).logical_or(a, b), 2)
