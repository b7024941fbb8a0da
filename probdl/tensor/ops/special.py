"""Special functions with gradients: log-gamma and its derivatives, the error function, the normal CDF,
the exponentially scaled modified Bessel functions of order 0 and 1.

Forward values come from ``scipy.special`` (or ``cupyx.scipy.special``) through the
backend; each gradient is written with other ops of this family, so that, for
example, ``lgamma`` can be differentiated any number of times
(lgamma → digamma → polygamma(1) → polygamma(2) → ...).
"""
from __future__ import annotations

import math
from typing import Any

from ...backend import get_array_module
from ...backend import special as _special
from .base import Op, Tensor, apply, pair, sum_to, to_tensor
from .elementwise import _unary_op, exp, log, sign, where

__all__ = ["lgamma", "digamma", "polygamma", "trigamma", "erf", "erfc", "erfcx", "ndtr", "log_ndtr", "ndtri", "xlogy",
           "i0e", "i1e"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_SQRT_HALF = math.sqrt(0.5)


def _sp(x):
    return _special(get_array_module(x))


class Polygamma(Op):
    """The n-th derivative of digamma; its gradient is polygamma(n + 1)."""

    forward = staticmethod(lambda x, n: _sp(x).polygamma(n, x).astype(x.dtype, copy=False))

    @staticmethod
    def backward(node, out, g):
        return (g * polygamma(node.attrs["n"] + 1, node.inputs[0]),)


def polygamma(n: int, x: Any) -> Tensor:
    """ψ⁽ⁿ⁾(x), the n-th derivative of the digamma function (n = 1 is the trigamma function)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"polygamma: order n must be a non-negative int, got {n!r}")
    if n == 0:
        return digamma(x)
    return apply(Polygamma, (to_tensor(x),), {"n": n})


def trigamma(x: Any) -> Tensor:
    """ψ⁽¹⁾(x) = polygamma(1, x)."""
    return polygamma(1, x)


Lgamma, lgamma = _unary_op("Lgamma", lambda x: _sp(x).gammaln(x), lambda x, out, g: g * digamma(x),
                           "log|Γ(x)|.")
Digamma, digamma = _unary_op("Digamma", lambda x: _sp(x).digamma(x), lambda x, out, g: g * polygamma(1, x),
                             "ψ(x) = d/dx log Γ(x).")
Erf, erf = _unary_op("Erf", lambda x: _sp(x).erf(x), lambda x, out, g: g * (_TWO_OVER_SQRT_PI * exp(-x * x)),
                     "The error function.")
Erfc, erfc = _unary_op("Erfc", lambda x: _sp(x).erfc(x), lambda x, out, g: g * (-_TWO_OVER_SQRT_PI * exp(-x * x)),
                       "1 - erf(x), accurate in the tail.")
Ndtr, ndtr = _unary_op("Ndtr", lambda x: _sp(x).ndtr(x), lambda x, out, g: g * exp(-0.5 * x * x - _LOG_SQRT_2PI),
                       "Φ(x), the standard normal CDF.")
Erfcx, erfcx = _unary_op("Erfcx", lambda x: _sp(x).erfcx(x), lambda x, out, g: g * (2 * x * out - _TWO_OVER_SQRT_PI),
                         "exp(x²) erfc(x), the scaled complementary error function (no underflow for large x).")
# d/dx log Φ(x) = φ(x) / Φ(x) = sqrt(2/π) / erfcx(-x/√2): no cancellation, accurate at x = -1e4
# (where φ and Φ both underflow), and differentiable again through erfcx.
LogNdtr, log_ndtr = _unary_op("LogNdtr", lambda x: _sp(x).log_ndtr(x),
                              lambda x, out, g: g * (_SQRT_2_OVER_PI / erfcx(x * -_SQRT_HALF)),
                              "log Φ(x), accurate far into both tails.")
# d/dp Φ⁻¹(p) = 1 / φ(Φ⁻¹(p)).
Ndtri, ndtri = _unary_op("Ndtri", lambda x: _sp(x).ndtri(x), lambda x, out, g: g * exp(0.5 * out * out + _LOG_SQRT_2PI),
                         "Φ⁻¹(p), the standard normal quantile function.")


# i0e(x) = e^(-|x|) I0(x) and i1e(x) = e^(-|x|) I1(x), finite where I0 and I1 overflow (log I0(x) = log i0e(x) + |x|).
# From I0' = I1 and I1' = I0 - I1/x: i0e' = i1e - sign(x) i0e and i1e' = i0e - (sign(x) + 1/x) i1e, whose
# limit at x = 0 is 1/2 (i1e(x)/x -> 1/2); both backward rules are again i0e and i1e, so any order works.
I0e, i0e = _unary_op("I0e", lambda x: _sp(x).i0e(x), lambda x, out, g: g * (i1e(x) - sign(x) * out),
                     "e^(-|x|) I0(x), the exponentially scaled modified Bessel function of order 0.")


def _i1e_backward(x, out, g):
    at_zero = x.data == 0
    safe = where(at_zero, 1.0, x)
    return g * where(at_zero, 0.5, i0e(x) - (sign(x) + 1 / safe) * out)


I1e, i1e = _unary_op("I1e", lambda x: _sp(x).i1e(x), _i1e_backward,
                     "e^(-|x|) I1(x), the exponentially scaled modified Bessel function of order 1.")


class Xlogy(Op):
    """x * log(y), defined as 0 where x == 0 (so 0 * log 0 = 0)."""

    forward = staticmethod(lambda x, y: _sp(x).xlogy(x, y))

    @staticmethod
    def backward(node, out, g):
        x, y = node.inputs
        gx = sum_to(g * log(y), x.data.shape) if x.requires_grad else None
        gy = sum_to(g * where(x.data == 0, 0, x / y), y.data.shape) if y.requires_grad else None
        return gx, gy


def xlogy(x: Any, y: Any) -> Tensor:
    """x * log(y) with 0 * log(0) = 0, as in ``scipy.special.xlogy``."""
    x, y = pair(x, y)
    return apply(Xlogy, (x, y))
