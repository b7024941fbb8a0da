"""Gamma draws with implicit reparameterization gradients.

A draw x ~ Gamma(α, 1) cannot be written as a smooth function of α and parameter-free noise, but
its CDF F(x; α) = P(α, x) (the regularized lower incomplete gamma function) can be held fixed:
differentiating F(x(α); α) = u gives the *implicit* gradient

    dx/dα = -(∂P(α, x)/∂α) / p(x; α),        p(x; α) = x^(α-1) e^(-x) / Γ(α),

so a draw is differentiable in α without inverting the CDF (Figurnov, Mohamed & Mnih, 2018).
``standard_gamma`` draws x with NumPy's sampler and attaches this gradient through one op;
``log_standard_gamma`` does the same for log x, which stays finite where x underflows (α ≪ 1),
and is what Beta and Dirichlet draws are built from. ``standard_gamma_grad`` and
``gammainc_grad_a`` expose the derivatives on raw arrays. The same derivative makes the regularized
incomplete gamma functions and their inverses differentiable in α: ``gammainc``, ``gammaincc``,
``gammaincinv``, ``gammainccinv`` (first order in α; any order in x or q).

The derivative is computed on the host in float64 (draws come from a host generator anyway) and
moved back to the device of the concentration. Second derivatives through a draw treat dx/dα as a
constant array, as PyTorch does: the backward is a valid Tensor-ops backward, so higher-order
graphs build, but the curvature of x in α itself is not included.

References: M. Figurnov, S. Mohamed, A. Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018;
A. M. Legendre's continued fraction for Γ(α, x) and the series for γ(α, x) as in
W. H. Press et al., *Numerical Recipes* (3rd ed.), §6.2.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special as sc

from ..backend import as_generator, device_of, get_default_dtype, to_device
from ..tensor import Tensor
from ..tensor.ops.base import Op, apply, constant, pair, sum_to, to_tensor
from ..tensor.ops.elementwise import exp
from ..tensor.ops.special import lgamma, xlogy

__all__ = ["standard_gamma", "log_standard_gamma", "standard_gamma_grad", "gammainc_grad_a", "gammainc",
           "gammaincc", "gammaincinv", "gammainccinv"]

_EPS = 1e-17          # series: relative size of the bound on the neglected tail (below float64 resolution)
_CF_TOL = 1e-15       # continued fraction: relative change of successive convergents (a few float64 ulps)
_MAX_TERMS = 100_000  # ample: terms needed grow like 10·√α (≈ 1,000 at α = 1e4)


def _until_converged(state: tuple, step: Any, value: Any) -> np.ndarray:
    """Run ``state = step(n, state)`` for n = 1, 2, ... on 1-D arrays until each element reports converged,
    writing ``value(state)`` for it; converged elements are dropped from the arrays when they are half of them."""
    out = np.empty_like(state[0])
    idx = np.arange(out.size)
    pending = np.ones(out.size, dtype=bool)
    for n in range(1, _MAX_TERMS):
        if not idx.size:
            break
        state, done = step(n, state)
        done &= pending
        if done.any():
            out[idx[done]] = value(state)[done]
            pending &= ~done
            if 2 * pending.sum() <= pending.size:
                idx, state, pending = idx[pending], tuple(v[pending] for v in state), pending[pending]
    out[idx[pending]] = value(state)[pending]
    return out


def _series(a: np.ndarray, x: np.ndarray, log_x: np.ndarray) -> np.ndarray:
    """d log x/dα for x < α + 1 from the power series of P (see :func:`_dlogx_dalpha`)."""
    def step(n, state):
        a, x, log_x, u, psi, s = state
        r = x / (a + n)
        u = u * r                                 # u_n = x^n / (α (α+1) ... (α+n))
        psi = psi + 1.0 / (a + n)                 # ψ(α + n + 1)
        s = s + u * (psi - log_x)
        # the tail after this term is at most u·(|ψ - log x| + 1)/(1 - r): stop when that is negligible
        return (a, x, log_x, u, psi, s), u * (np.abs(psi - log_x) + 1.0) <= _EPS * np.abs(s) * (1.0 - r)

    u, psi = 1.0 / a, sc.digamma(a + 1.0)
    return _until_converged((a, x, log_x, u, psi, u * (psi - log_x)), step, lambda state: state[-1])


_BIG = 2.0 ** 500


def _continued_fraction(a: np.ndarray, x: np.ndarray, log_x: np.ndarray) -> np.ndarray:
    """d log x/dα for x ≥ α + 1 from Legendre's continued fraction for Γ(α, x) (see :func:`_dlogx_dalpha`)."""
    def step(c, state):
        a, x, log_x, y, z, ans, dans, pkm2, qkm2, pkm1, qkm1, dpkm2, dqkm2, dpkm1, dqkm1 = state
        y, z = y + 1.0, z + 2.0
        yc = y * c
        pk, qk = pkm1 * z - pkm2 * yc, qkm1 * z - qkm2 * yc      # dy/dα = dz/dα = -1
        dpk = dpkm1 * z - pkm1 - dpkm2 * yc + pkm2 * c
        dqk = dqkm1 * z - qkm1 - dqkm2 * yc + qkm2 * c
        new, dnew = pk / qk, (dpk - pk / qk * dqk) / qk
        done = (np.abs(new - ans) <= _CF_TOL * np.abs(new)) & (np.abs(dnew - dans) <= _CF_TOL * np.abs(dnew))
        scale = np.where(np.abs(pk) > _BIG, 1.0 / _BIG, 1.0)    # keep the recurrence in range
        rest = tuple(v * scale for v in (pkm1, qkm1, pk, qk, dpkm1, dqkm1, dpk, dqk))
        return (a, x, log_x, y, z, new, dnew, *rest), done

    def value(state):
        # Q/p = x K, so d log x/dα = (∂Q/∂α)/(x p) = (log x - ψ(α)) K + ∂K/∂α
        a, _, log_x, _, _, ans, dans = state[:7]
        return (log_x - sc.digamma(a)) * ans + dans

    # convergents p_k/q_k of K = Γ(α, x) e^x x^(-α) by the Wallis recurrence, with their α-derivatives
    zero = np.zeros_like(a)
    z = x + 2.0 - a
    pkm1, qkm1, dqkm1 = x + 1.0, z * x, -x
    state = (a, x, log_x, 1.0 - a, z, pkm1 / qkm1, -pkm1 * dqkm1 / qkm1 ** 2,
             np.ones_like(a), x, pkm1, qkm1, zero, zero, zero, dqkm1)
    return _until_converged(state, step, value)


def _dlogx_dalpha(alpha: Any, log_x: Any) -> np.ndarray:
    """d log x/dα = -(∂P(α, x)/∂α) / (x p(x; α)) for x ~ Gamma(α, 1), on float64 host arrays.

    With p(x; α) = x^(α-1) e^(-x)/Γ(α) and P the regularized lower incomplete gamma function, both
    branches divide the density out analytically, so nothing underflows even where x does:

    * x < α + 1, the series P = p Σ_n x^(n+1)/(α(α+1)...(α+n)): differentiating term by term, with
      ∂ log p/∂α = log x - ψ(α) and ψ(α) + Σ_{k≤n} 1/(α+k) = ψ(α+n+1),

          d log x/dα = Σ_n u_n (ψ(α+n+1) - log x),   u_n = x^n / (α(α+1)...(α+n));

    * x ≥ α + 1, Q = 1 - P = x p K with Legendre's continued fraction
      K = Γ(α, x) e^x x^(-α) = 1/(x+1-α- 1(1-α)/(x+3-α- 2(2-α)/(x+5-α- ...))), whose convergents
      p_k/q_k and their α-derivatives follow the three-term Wallis recurrence, so

          d log x/dα = (∂Q/∂α)/(x p) = (log x - ψ(α)) K + ∂K/∂α.

    Both sums run (vectorized, each element dropping out when converged) until the next term is
    below float64 resolution; about 10·√α terms are needed near the mode for large α. The result is
    positive (Gamma is stochastically increasing in α); ``log_x`` may be any finite value, so draws
    with x below the smallest float are handled through log x. Against 50-digit mpmath references
    (the tests) the relative error is below 1e-12 for α in [1e-3, 1e4] at quantiles 1e-12 ... 1 - 1e-12,
    and for log x down to -1e5; the cost grows like √α (about 15 µs per element at α = 1e4).

    References: Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients" (2018), eq. (5);
    Press et al., *Numerical Recipes* (3rd ed.) §6.2 for the series and continued fraction.
    """
    a, log_x = np.broadcast_arrays(np.asarray(alpha, dtype=np.float64), np.asarray(log_x, dtype=np.float64))
    shape = a.shape
    a, log_x = a.ravel(), log_x.ravel()
    x = np.exp(log_x)
    out = np.empty_like(a)
    low = x < a + 1.0
    if low.any():
        out[low] = _series(a[low], x[low], log_x[low])
    if (~low).any():
        out[~low] = _continued_fraction(a[~low], x[~low], log_x[~low])
    return out.reshape(shape)


def standard_gamma_grad(alpha: Any, x: Any) -> np.ndarray:
    """The implicit gradient dx/dα = -(∂P(α, x)/∂α)/p(x; α) of x ~ Gamma(α, 1), on float64 arrays
    (0 at x = 0, its limit). See :func:`_dlogx_dalpha` for the method."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_x = np.log(np.where(x > 0, x, 1.0))
    return np.where(x > 0, x * _dlogx_dalpha(alpha, log_x), 0.0)


def gammainc_grad_a(alpha: Any, x: Any) -> np.ndarray:
    """∂P(α, x)/∂α of the regularized lower incomplete gamma function, = -p(x; α)·dx/dα, on float64
    arrays; accurate in relative terms also where P is near 1 (it is computed as -∂Q/∂α, not 1 - ...)."""
    a = np.asarray(alpha, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_x = np.log(np.where(x > 0, x, 1.0))
    log_p = (a - 1.0) * log_x - x - sc.gammaln(a)
    return np.where(x > 0, -np.exp(log_p + log_x) * _dlogx_dalpha(a, log_x), 0.0)


def _host(t: Tensor) -> np.ndarray:
    return to_device(t.data, "cpu")


class ImplicitGamma(Op):
    """Passes a Gamma(α, 1) draw x through (forward), with ∂x/∂α = the implicit gradient (backward).

    The gradient array is computed from the draw and treated as a constant, so second derivatives
    through the draw omit d²x/dα² (as in PyTorch)."""

    forward = staticmethod(lambda alpha, x: x)

    @staticmethod
    def backward(node, out, g):
        alpha = node.inputs[0]
        dx = standard_gamma_grad(_host(alpha), _host(out)).astype(out.data.dtype, copy=False)
        return sum_to(g * constant(to_device(dx, device_of(out.data))), alpha.data.shape), None


class ImplicitLogGamma(Op):
    """Passes log x of a Gamma(α, 1) draw through, with ∂log x/∂α = (dx/dα)/x (backward)."""

    forward = staticmethod(lambda alpha, log_x: log_x)

    @staticmethod
    def backward(node, out, g):
        alpha = node.inputs[0]
        dlx = _dlogx_dalpha(_host(alpha), _host(out)).astype(out.data.dtype, copy=False)
        return sum_to(g * constant(to_device(dlx, device_of(out.data))), alpha.data.shape), None


def _draw_args(concentration: Any, shape: Any, name: str) -> tuple[Tensor, tuple[int, ...], np.ndarray]:
    """The concentration as a floating Tensor, the draw shape, and the float64 host array of α broadcast to it."""
    alpha = to_tensor(concentration)
    if alpha.dtype.kind != "f":
        alpha = alpha.astype(get_default_dtype())
    shape = tuple(int(s) for s in shape)
    try:
        a = np.broadcast_to(_host(alpha).astype(np.float64), shape)
    except ValueError as e:
        raise ValueError(f"{name}: concentration of shape {alpha.shape} does not broadcast to shape {shape}") from e
    return alpha, shape, a


def standard_gamma(concentration: Tensor, shape: tuple, rng: Any = None) -> Tensor:
    """Draws X ~ Gamma(concentration, 1) of ``shape`` (concentration broadcasts to it), differentiable in
    ``concentration`` by the implicit gradient dx/dα = -(∂P/∂α)/p.

    Draws are made in float64 by ``as_generator(rng).standard_gamma`` and returned in the dtype and on
    the device of ``concentration``. For α ≪ 1 many draws underflow to 0 (their gradient is 0); use
    :func:`log_standard_gamma` when the draws are normalized against each other.
    """
    alpha, shape, a = _draw_args(concentration, shape, "standard_gamma")
    x = np.asarray(as_generator(rng).standard_gamma(a)).astype(alpha.dtype, copy=False)
    return apply(ImplicitGamma, (alpha, Tensor._wrap(to_device(x, device_of(alpha.data)))))


def log_standard_gamma(concentration: Tensor, shape: tuple, rng: Any = None) -> Tensor:
    """log X for X ~ Gamma(concentration, 1) of ``shape``, finite even where X underflows, differentiable in
    ``concentration`` (d log x/dα by the implicit gradient).

    For α < 1 it uses Gamma(α) =d Gamma(α + 1)·U^(1/α), U ~ Uniform(0, 1) (Marsaglia & Tsang, 2000), in
    log space: log X = log Y - E/α with Y ~ Gamma(α + 1) and E ~ Exponential(1).
    """
    alpha, shape, a = _draw_args(concentration, shape, "log_standard_gamma")
    gen = as_generator(rng)
    small = a < 1.0
    y = np.asarray(gen.standard_gamma(np.where(small, a + 1.0, a)))
    log_x = np.log(y) - np.where(small, gen.standard_exponential(shape) / a, 0.0)
    log_x = log_x.astype(alpha.dtype, copy=False)
    return apply(ImplicitLogGamma, (alpha, Tensor._wrap(to_device(log_x, device_of(alpha.data)))))


# ------------------------------------------------------------------ incomplete gamma functions with gradients
def _log_density(a: Tensor, x: Tensor) -> Tensor:
    """log p(x; α) of Gamma(α, 1), in Tensor ops."""
    return xlogy(a - 1.0, x) - x - lgamma(a)


def _on_host(fn: Any, a: Any, x: Any) -> Any:
    """``fn(a, x)`` from scipy on the host, returned in ``x``'s dtype and on its device."""
    out = fn(to_device(a, "cpu"), to_device(x, "cpu")).astype(x.dtype, copy=False)
    return to_device(out, device_of(x))


def _grad_a(node: Any, x: Any, sign: float, g: Tensor) -> Tensor | None:
    """sign · g · dx/dα (the implicit gradient at the point x) summed to α's shape, a constant in α."""
    a = node.inputs[0]
    if not a.requires_grad:
        return None
    dx = standard_gamma_grad(_host(a), to_device(x, "cpu")).astype(g.dtype, copy=False)
    return sum_to(g * constant(to_device(sign * dx, device_of(x))), a.data.shape)


class IncompleteGamma(Op):
    """P(α, x) (or Q(α, x) = 1 - P with ``upper``): ∂/∂x = ±p(x; α) in Tensor ops; ∂/∂α = ∓p·dx/dα from
    :func:`gammainc_grad_a`, a constant array (second derivatives in α are not included)."""

    @staticmethod
    def forward(a, x, upper):
        return _on_host(sc.gammaincc if upper else sc.gammainc, a, x)

    @staticmethod
    def backward(node, out, g):
        a, x = node.inputs
        sign = -1.0 if node.attrs["upper"] else 1.0
        density = exp(_log_density(a, x))
        ga = _grad_a(node, x.data, -sign, g * density.detach())
        return ga, sum_to(g * (sign * density), x.data.shape) if x.requires_grad else None


class IncompleteGammaInv(Op):
    """x with P(α, x) = q (or Q(α, x) = q with ``upper``): ∂x/∂q = ±1/p(x; α); ∂x/∂α = dx/dα, the implicit
    gradient (a constant array in α)."""

    @staticmethod
    def forward(a, q, upper):
        return _on_host(sc.gammainccinv if upper else sc.gammaincinv, a, q)

    @staticmethod
    def backward(node, out, g):
        a, q = node.inputs
        sign = -1.0 if node.attrs["upper"] else 1.0
        gq = sum_to(g * (sign * exp(-_log_density(a, out))), q.data.shape) if q.requires_grad else None
        return _grad_a(node, out.data, 1.0, g), gq


def gammainc(a: Any, x: Any) -> Tensor:
    """P(a, x) = γ(a, x)/Γ(a), the regularized lower incomplete gamma function (the Gamma(a, 1) CDF),
    differentiable in x (any order) and in a (first order, by :func:`gammainc_grad_a`)."""
    return apply(IncompleteGamma, pair(a, x), {"upper": False})


def gammaincc(a: Any, x: Any) -> Tensor:
    """Q(a, x) = 1 - P(a, x), accurate where P is near 1; gradients as :func:`gammainc`."""
    return apply(IncompleteGamma, pair(a, x), {"upper": True})


def gammaincinv(a: Any, q: Any) -> Tensor:
    """x with P(a, x) = q (the Gamma(a, 1) quantile), differentiable in q and (first order) in a."""
    return apply(IncompleteGammaInv, pair(a, q), {"upper": False})


def gammainccinv(a: Any, q: Any) -> Tensor:
    """x with Q(a, x) = q, accurate for small q (upper quantiles); gradients as :func:`gammaincinv`."""
    return apply(IncompleteGammaInv, pair(a, q), {"upper": True})
