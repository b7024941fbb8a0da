"""Test helpers shared by probdl's test-suite and its users: gradient checks, device parametrization,
and checks of a distribution against scipy and of a KL divergence against Monte Carlo.

``gradcheck(f, inputs)`` compares the full Jacobian from reverse mode with central
finite differences in float64; ``order=2`` also checks second derivatives by running
the same comparison on a directional first derivative. Adding an op needs one line::

    gradcheck(lambda x, y: probdl.logaddexp(x, y), [rng.normal(size=(3, 1)), rng.normal(size=(4,))])
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .backend import cuda_is_available, is_floating, to_device
from .backend import device as _device
from .tensor import Tensor, grad, no_grad, vjp

__all__ = ["GradcheckError", "gradcheck", "numerical_jacobian", "analytic_jacobian", "DEVICES", "skip_unless_device",
           "assert_matches_scipy", "assert_kl_matches_monte_carlo"]

DEVICES = ("cpu", "cuda")


class GradcheckError(AssertionError):
    """Reverse-mode and finite-difference derivatives disagree."""


def skip_unless_device(dev: str) -> None:
    """Inside a pytest test: skip when ``dev`` is "cuda" and no GPU is present."""
    if _device(dev).type == "cuda" and not cuda_is_available():
        import pytest  # noqa: PLC0415  (only test code calls this)

        pytest.skip("no CUDA device: CuPy is missing or sees no GPU")


def _split(inputs: Sequence[Any], device: str) -> tuple[list, list[int]]:
    vals, diff = [], []
    for i, x in enumerate(inputs):
        a = x.numpy() if isinstance(x, Tensor) else x
        if isinstance(a, (float, np.ndarray, list)) and is_floating(np.asarray(a).dtype):
            vals.append(np.array(a, dtype=np.float64))
            diff.append(i)
        else:
            vals.append(x)
    return vals, diff


def _call(f: Callable, vals: list, diff: list[int], device: str, xs: Sequence[Any] | None = None) -> Tensor:
    args = list(vals)
    for k, i in enumerate(diff):
        args[i] = xs[k] if xs is not None else Tensor._wrap(to_device(vals[i], device))
    out = f(*args)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: the function must return a Tensor, got {type(out).__name__}")
    return out


def numerical_jacobian(f: Callable, inputs: Sequence[Any], eps: float = 1e-6, device: str = "cpu") -> list[np.ndarray]:
    """Central-difference Jacobians ∂f/∂input_i, each of shape ``(out.size, input_i.size)``."""
    vals, diff = _split(inputs, device)
    jacs = []
    with no_grad():
        for i in diff:
            x = vals[i]
            cols = []
            for j in range(x.size):
                old = x.flat[j]
                x.flat[j] = old + eps
                hi = _call(f, vals, diff, device).numpy().astype(np.float64).ravel()
                x.flat[j] = old - eps
                lo = _call(f, vals, diff, device).numpy().astype(np.float64).ravel()
                x.flat[j] = old
                cols.append((hi - lo) / (2 * eps))
            jacs.append(np.stack(cols, axis=1) if cols else np.zeros((0, 0)))
    return jacs


def analytic_jacobian(f: Callable, inputs: Sequence[Any], device: str = "cpu") -> list[np.ndarray]:
    """Reverse-mode Jacobians ∂f/∂input_i, one backward pass per output element."""
    vals, diff = _split(inputs, device)
    xs = [to_device(vals[i], device) for i in diff]
    out, vjp_fn = vjp(lambda *t: _call(f, vals, diff, device, t), *xs)
    n = out.numel()
    rows: list[list[np.ndarray]] = [[] for _ in diff]
    for k in range(n):
        e = np.zeros(n)
        e[k] = 1.0
        grads = vjp_fn(Tensor._wrap(to_device(e.reshape(out.shape).astype(out.dtype), device)))
        for r, g in zip(rows, grads):
            r.append(g.numpy().astype(np.float64).ravel())
    return [np.stack(r) if r else np.zeros((0, vals[i].size)) for r, i in zip(rows, diff)]


def gradcheck(f: Callable, inputs: Sequence[Any], eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-5,
              order: int = 1, device: str = "cpu", seed: int = 0) -> bool:
    """Check the derivatives of ``f`` with respect to every floating input against finite differences.

    Args:
        f: a function of the inputs returning a Tensor of any shape.
        inputs: arrays, Tensors or numbers; floating ones are differentiated (in float64),
            others (index arrays, ints) are passed through unchanged.
        order: 1 checks the Jacobian; 2 also checks second derivatives, through the
            gradient of the scalar ⟨w, J(x)ᵀ v⟩ for random v and w.
        device: where the analytic derivatives run ("cpu" or "cuda").

    Raises:
        GradcheckError: naming the input, the element and both values at the worst mismatch.
    """
    vals, diff = _split(inputs, device)
    if not diff:
        raise ValueError("gradcheck: no floating input to differentiate")
    num = numerical_jacobian(f, inputs, eps, device)
    ana = analytic_jacobian(f, inputs, device)
    for k, (a, n) in enumerate(zip(ana, num)):
        if a.shape != n.shape:
            raise GradcheckError(f"gradcheck: input {diff[k]}: Jacobian shapes differ, analytic {a.shape} vs "
                                 f"numerical {n.shape}")
        bad = ~np.isclose(a, n, atol=atol, rtol=rtol, equal_nan=True)
        if bad.any():
            r, c = np.argwhere(bad)[np.argmax(np.abs(a - n)[bad])]
            raise GradcheckError(
                f"gradcheck: input {diff[k]} (shape {np.shape(vals[diff[k]])}), element {c}, output element {r}: "
                f"analytic {a[r, c]:.10g} vs numerical {n[r, c]:.10g} ({int(bad.sum())} of {a.size} entries differ)")
    if order >= 2:
        rng = np.random.default_rng(seed)
        with no_grad():
            out_shape = _call(f, vals, diff, device).shape
        v = rng.normal(size=out_shape)
        ws = [rng.normal(size=np.shape(vals[i])) for i in diff]

        def directional(*args: Any) -> Tensor:
            xs = [args[i] for i in diff]

            def inner(*ys: Any) -> Tensor:
                full = list(args)
                for i, y in zip(diff, ys):
                    full[i] = y
                return (f(*full) * Tensor._wrap(to_device(v, device))).sum()

            gs = grad(inner, argnums=tuple(range(len(diff))))(*xs)
            total = None
            for g, w in zip(gs, ws):
                term = (g * Tensor._wrap(to_device(w, device))).sum()
                total = term if total is None else total + term
            return total

        gradcheck(directional, inputs, eps, atol, rtol, order - 1, device, seed + 1)
    return True


def assert_matches_scipy(d: Any, ref: Any, x: Any, q: Any = None, rtol: float = 1e-10) -> None:
    """Compare a univariate distribution ``d`` with the frozen ``scipy.stats`` distribution ``ref``:
    log_prob and cdf at the values ``x``, icdf at the probabilities ``q`` (when given), entropy, and
    the mean and variance where scipy's are finite."""
    np.testing.assert_allclose(d.log_prob(x).numpy(), ref.logpdf(x), rtol=rtol, err_msg="log_prob")
    np.testing.assert_allclose(d.cdf(x).numpy(), ref.cdf(x), rtol=rtol, atol=1e-300, err_msg="cdf")
    if q is not None:
        np.testing.assert_allclose(d.icdf(q).numpy(), ref.ppf(q), rtol=rtol, err_msg="icdf")
    np.testing.assert_allclose(d.entropy().numpy(), ref.entropy(), rtol=rtol, err_msg="entropy")
    for name, expected in (("mean", ref.mean()), ("variance", ref.var())):
        if np.all(np.isfinite(expected)):
            np.testing.assert_allclose(getattr(d, name).numpy(), expected, rtol=rtol, err_msg=name)


def assert_kl_matches_monte_carlo(p: Any, q: Any, kl: Any, n: int = 200_000, rng: Any = 0) -> None:
    """Check a closed-form ``kl`` = KL(p ‖ q) against the Monte Carlo mean of log p(x) - log q(x) over
    ``n`` draws x ~ p: within 5 standard errors (a false alarm has probability about 6e-7 per entry),
    plus the rounding of summing n terms (n·eps·|KL|), which is all that is left when log p - log q is
    constant on p's support."""
    x = p.sample((n,), rng=rng)
    diff = (p.log_prob(x) - q.log_prob(x)).numpy()
    estimate, se = diff.mean(0), diff.std(0) / np.sqrt(n)
    kl = np.asarray(kl.numpy() if isinstance(kl, Tensor) else kl)
    assert kl.shape == estimate.shape, f"KL has shape {kl.shape}, the batch of log-ratios {estimate.shape}"
    assert np.all(kl >= 0), f"negative KL {kl}"
    bound = 5 * se + n * np.finfo(diff.dtype).eps * np.abs(kl)
    assert np.all(np.abs(kl - estimate) <= bound), f"KL {kl} vs Monte Carlo {estimate} ± {se}"
