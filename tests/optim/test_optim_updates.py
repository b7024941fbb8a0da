"""Each optimizer's update against hand-computed steps, and convergence on a convex quadratic.

The expected values come from the update equations written out here in plain NumPy
(the papers' notation, one step at a time), independent of probdl.optim; a few small
cases are worked by hand to literal numbers. Tolerances: the same float64 arithmetic in
a different order agrees to ~1e-16 per step, so 1e-12 over three steps is generous.
"""
import math

import numpy as np
import pytest

import probdl as pd
from probdl import optim
from probdl.optim.lr_scheduler import ExponentialLR

A = np.array([[3.0, 0.5], [0.5, 1.0]])
B = np.array([1.0, -2.0])
X0 = np.array([0.5, -0.3])


def grad_f(x):
    """Gradient of f(x) = 0.5 xᵀAx - bᵀx."""
    return A @ x - B


def run_probdl(make_opt, steps=3, x0=X0):
    """Minimize f with a probdl optimizer; the iterates after each step."""
    x = pd.tensor(x0, requires_grad=True)
    opt = make_opt([x])
    At, bt = pd.tensor(A), pd.tensor(B)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (x @ (At @ x)) - bt @ x).backward()
        opt.step()
        out.append(x.numpy().copy())
    return np.array(out)


# ------------------------------------------------------------- NumPy references
def ref_sgd(steps, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False):
    x, buf, out = X0.copy(), None, []
    for _ in range(steps):
        g = -grad_f(x) if maximize else grad_f(x)
        g = g + weight_decay * x
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        x = x - lr * g
        out.append(x)
    return np.array(out)


def ref_adam(steps, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False,
             maximize=False):
    b1, b2 = betas
    x, m, v, vmax, out = X0.copy(), 0.0, 0.0, 0.0, []
    for t in range(1, steps + 1):
        g = -grad_f(x) if maximize else grad_f(x)
        if decoupled:
            x = x * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        vmax = np.maximum(vmax, v)
        m_hat = m / (1 - b1**t)
        v_hat = (vmax if amsgrad else v) / (1 - b2**t)
        x = x - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(x)
    return np.array(out)


def ref_adamax(steps, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False):
    b1, b2 = betas
    x, m, u, out = X0.copy(), 0.0, 0.0, []
    for t in range(1, steps + 1):
        g = -grad_f(x) if maximize else grad_f(x)
        g = g + weight_decay * x
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        x = x - lr / (1 - b1**t) * m / u
        out.append(x)
    return np.array(out)


def ref_rmsprop(steps, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                maximize=False):
    x, v, gbar, buf, out = X0.copy(), 0.0, 0.0, 0.0, []
    for _ in range(steps):
        g = -grad_f(x) if maximize else grad_f(x)
        g = g + weight_decay * x
        v = alpha * v + (1 - alpha) * g**2
        gbar = alpha * gbar + (1 - alpha) * g
        denom = np.sqrt(v - gbar**2 if centered else v) + eps
        if momentum > 0:
            buf = momentum * buf + g / denom
            x = x - lr * buf
        else:
            x = x - lr * g / denom
        out.append(x)
    return np.array(out)


def ref_adagrad(steps, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                maximize=False):
    x, s, out = X0.copy(), initial_accumulator_value, []
    for t in range(1, steps + 1):
        g = -grad_f(x) if maximize else grad_f(x)
        g = g + weight_decay * x
        s = s + g**2
        x = x - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
        out.append(x)
    return np.array(out)


def ref_clipped_adam(steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, clip_norm=10.0, lrd=1.0):
    b1, b2 = betas
    x, m, v, out = X0.copy(), 0.0, 0.0, []
    for t in range(1, steps + 1):
        lr_t = lr * lrd**t  # Pyro decays the rate at the start of each step
        g = np.clip(grad_f(x), -clip_norm, clip_norm) + weight_decay * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        x = x - lr_t * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        out.append(x)
    return np.array(out)


CASES = [
    (optim.SGD, ref_sgd, dict(lr=0.1)),
    (optim.SGD, ref_sgd, dict(lr=0.1, momentum=0.9)),
    (optim.SGD, ref_sgd, dict(lr=0.1, momentum=0.9, dampening=0.5)),
    (optim.SGD, ref_sgd, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (optim.SGD, ref_sgd, dict(lr=0.1, momentum=0.5, weight_decay=0.2)),
    (optim.SGD, ref_sgd, dict(lr=0.1, maximize=True)),
    (optim.Adam, ref_adam, dict(lr=0.1)),
    (optim.Adam, ref_adam, dict(lr=0.1, betas=(0.5, 0.8), eps=1e-3)),
    (optim.Adam, ref_adam, dict(lr=0.1, weight_decay=0.5)),
    (optim.Adam, ref_adam, dict(lr=0.1, amsgrad=True)),
    (optim.Adam, ref_adam, dict(lr=0.1, maximize=True)),
    (optim.AdamW, lambda s, **k: ref_adam(s, decoupled=True, **{"weight_decay": 1e-2, **k}), dict(lr=0.1)),
    (optim.AdamW, lambda s, **k: ref_adam(s, decoupled=True, **k), dict(lr=0.1, weight_decay=0.5, amsgrad=True)),
    (optim.Adamax, ref_adamax, dict()),
    (optim.Adamax, ref_adamax, dict(lr=0.1, betas=(0.5, 0.6), weight_decay=0.3)),
    (optim.Adamax, ref_adamax, dict(lr=0.1, maximize=True)),
    (optim.RMSprop, ref_rmsprop, dict()),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.05, alpha=0.5, centered=True)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.05, momentum=0.7, weight_decay=0.1)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.05, momentum=0.7, centered=True, eps=1e-3, maximize=True)),
    (optim.Adagrad, ref_adagrad, dict()),
    (optim.Adagrad, ref_adagrad, dict(lr=0.5, lr_decay=0.3)),
    (optim.Adagrad, ref_adagrad, dict(lr=0.5, initial_accumulator_value=2.0, weight_decay=0.1, eps=1e-2)),
    (optim.Adagrad, ref_adagrad, dict(lr=0.5, maximize=True)),
    (optim.ClippedAdam, ref_clipped_adam, dict(lr=0.1)),
    (optim.ClippedAdam, ref_clipped_adam, dict(lr=0.1, clip_norm=0.5, lrd=0.9, weight_decay=0.2)),
]


@pytest.mark.parametrize("cls, ref, kwargs", CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_three_steps_match_the_equations(cls, ref, kwargs):
    got = run_probdl(lambda ps: cls(ps, **kwargs))
    want = ref(3, **kwargs)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert not np.allclose(got[0], X0)  # it moved


# ------------------------------------------------------- worked by hand, f = x²/2
def _scalar_run(make_opt, steps=3):
    x = pd.tensor(1.0, requires_grad=True)  # 0-d: NumPy arithmetic on it gives scalars, a trap for in-place state
    opt = make_opt([x])
    out = []
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * x**2).sum().backward()  # the gradient is x itself
        opt.step()
        out.append(x.item())
    return out


@pytest.mark.parametrize("kwargs, want", [
    # b1 = g1 = 1, x1 = 0.9; b2 = 0.9 + 0.9 = 1.8, x2 = 0.72; b3 = 1.62 + 0.72 = 2.34, x3 = 0.486
    (dict(momentum=0.9), [0.9, 0.72, 0.486]),
    # d = g + 0.9 b: d1 = 1.9, x1 = 0.81; b2 = 1.71, d2 = 2.349, x2 = 0.5751; b3 = 2.1141, d3 = 2.47779
    (dict(momentum=0.9, nesterov=True), [0.81, 0.5751, 0.327321]),
    # b1 = 1 (no dampening on the first step); b2 = 0.9 + 0.5·0.9 = 1.35; b3 = 1.215 + 0.5·0.765 = 1.5975
    (dict(momentum=0.9, dampening=0.5), [0.9, 0.765, 0.60525]),
    # g = x + 0.5 x = 1.5 x: x ← x (1 - 0.15) = 0.85 x
    (dict(weight_decay=0.5), [0.85, 0.7225, 0.614125]),
    # ascent on x²/2: x ← 1.1 x
    (dict(maximize=True), [1.1, 1.21, 1.331]),
    # g = 1.5 x: b1 = 1.5, x1 = 0.85; b2 = 1.35 + 1.275 = 2.625, x2 = 0.5875; b3 = 2.3625 + 0.88125 = 3.24375
    (dict(momentum=0.9, weight_decay=0.5), [0.85, 0.5875, 0.263125]),
    # g = -x: b1 = -1, x1 = 1.1; b2 = -0.9 - 1.1 = -2, x2 = 1.3; b3 = -1.8 - 1.3 = -3.1, x3 = 1.61
    (dict(momentum=0.9, maximize=True), [1.1, 1.3, 1.61]),
])
def test_sgd_worked_by_hand(kwargs, want):
    np.testing.assert_allclose(_scalar_run(lambda ps: optim.SGD(ps, lr=0.1, **kwargs)), want, rtol=1e-13)


def test_adagrad_worked_by_hand():
    # s1 = 1, x1 = 1 - 0.1·1/1 = 0.9; lr_decay 1: step 2 uses 0.1/2 = 0.05, s2 = 1.81, x2 = 0.9 - 0.05·0.9/√1.81
    got = _scalar_run(lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=1.0, eps=0.0), steps=2)
    np.testing.assert_allclose(got, [0.9, 0.9 - 0.045 / math.sqrt(1.81)], rtol=1e-14)


def test_adam_first_step_is_lr_times_sign():
    # m̂1 = g1 and v̂1 = g1², so the first step is lr·g/(|g| + eps) whatever the betas
    for betas in [(0.9, 0.999), (0.0, 0.5)]:
        got = run_probdl(lambda ps, b=betas: optim.Adam(ps, lr=0.1, betas=b, eps=0.0), steps=1)[0]
        np.testing.assert_allclose(got, X0 - 0.1 * np.sign(grad_f(X0)), rtol=1e-15)


def test_maximize_is_minimizing_the_negation():
    for cls in [optim.SGD, optim.Adam, optim.AdamW, optim.Adamax, optim.RMSprop, optim.Adagrad]:
        up = run_probdl(lambda ps, c=cls: c(ps, lr=0.05, maximize=True), steps=4)
        down = ref_sgd(4, lr=0.05, maximize=True) if cls is optim.SGD else None
        # maximizing -f from X0 is the same as minimizing f: compare against a -f run
        x = pd.tensor(X0, requires_grad=True)
        opt = cls([x], lr=0.05)
        for _ in range(4):
            opt.zero_grad()
            (-(0.5 * (x @ (pd.tensor(A) @ x)) - pd.tensor(B) @ x)).backward()
            opt.step()
        np.testing.assert_allclose(up[-1], x.numpy(), rtol=1e-13, err_msg=cls.__name__)
        if down is not None:
            np.testing.assert_allclose(up, down, rtol=1e-13)


# ------------------------------------------------------------------ convergence
def _quadratic(n=5, seed=0):
    """A well-posed quadratic: eigenvalues evenly spread over [1, 10], so λ_min = 1, L = 10, κ = 10."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A_ = Q @ np.diag(np.linspace(1.0, 10.0, n)) @ Q.T
    b_ = rng.normal(size=n)
    return A_, b_, np.linalg.solve(A_, b_)


def _minimize(make_opt, steps, schedule=None):
    A_, b_, x_star = _quadratic()
    At, bt = pd.tensor(A_), pd.tensor(b_)
    x = pd.zeros(len(b_), requires_grad=True)
    opt = make_opt([x])
    sched = schedule(opt) if schedule else None
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (x @ (At @ x)) - bt @ x).backward()
        opt.step()
        if sched:
            sched.step()
    return np.linalg.norm(x.numpy() - x_star), np.linalg.norm(x_star)


def test_gradient_descent_meets_its_linear_rate():
    # On a quadratic, GD's error obeys e_{k+1} = (I - lr·A) e_k exactly, so with lr = 1/L the
    # error contracts by at least ρ = 1 - λ_min/L = 0.9 per step: ||e_N|| <= 0.9^N ||e_0||.
    # That is a proof, not a fit; the 1e-14 slack is rounding (a few ulps of ||x*|| ~ 1).
    steps = 200
    err, e0 = _minimize(lambda ps: optim.SGD(ps, lr=0.1), steps)
    assert err <= 0.9**steps * e0 + 1e-14


def test_heavy_ball_beats_gradient_descent():
    # Polyak's tuning (lr = 4/(√L+√μ)², momentum = ((√κ-1)/(√κ+1))²) converges at rate
    # (√κ-1)/(√κ+1) ≈ 0.52 up to a factor linear in N (its iteration matrix is not normal):
    # after 60 steps that bound is ~60·0.52^60 ≈ 5e-16, so 1e-12 is safe; plain GD would still be at ~2e-3.
    kappa = 10.0
    lr = 4.0 / (math.sqrt(10.0) + 1.0) ** 2
    mom = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2
    err, _ = _minimize(lambda ps: optim.SGD(ps, lr=lr, momentum=mom), 60)
    assert err < 1e-12
    err, _ = _minimize(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.5, nesterov=True), 200)
    assert err < 1e-12


# Adaptive methods with a constant step settle into a limit cycle of size ~lr on a deterministic
# problem (Reddi et al. 2018), so they run with the rate decaying geometrically from 5e-2 to 1e-8
# over 3000 steps: the sum of the rates (~10) is ample to cross ||x0 - x*|| ~ 1, and the late steps
# are too small to leave the optimum. We ask for ||x - x*|| <= 1e-8, eight orders of magnitude below
# the starting error: a wrong sign, scale or bias correction does not get there. (Observed: ~1e-16,
# and ~1e-10 for Adamax, whose denominator eps bounds from below.)
ADAPTIVE = [
    ("Adam", lambda ps: optim.Adam(ps, lr=0.05)),
    ("Adam-amsgrad", lambda ps: optim.Adam(ps, lr=0.05, amsgrad=True)),
    ("AdamW-no-decay", lambda ps: optim.AdamW(ps, lr=0.05, weight_decay=0.0)),
    ("Adamax", lambda ps: optim.Adamax(ps, lr=0.05)),
    ("RMSprop", lambda ps: optim.RMSprop(ps, lr=0.05)),
    ("RMSprop-centered", lambda ps: optim.RMSprop(ps, lr=0.05, centered=True)),
    ("RMSprop-momentum", lambda ps: optim.RMSprop(ps, lr=0.05, momentum=0.5)),
    ("Adagrad", lambda ps: optim.Adagrad(ps, lr=0.5)),
]
GAMMA = (2e-7) ** (1 / 3000)


@pytest.mark.parametrize("name, make", ADAPTIVE, ids=[a[0] for a in ADAPTIVE])
def test_adaptive_methods_converge(name, make):
    err, e0 = _minimize(make, 3000, schedule=lambda opt: ExponentialLR(opt, GAMMA))
    assert e0 > 0.5
    assert err <= 1e-8, f"{name}: ||x - x*|| = {err:.3g}"


def test_clipped_adam_converges_with_its_own_decay():
    # the same schedule, by ClippedAdam's own lrd (see the comment above ADAPTIVE)
    err, _ = _minimize(lambda ps: optim.ClippedAdam(ps, lr=0.05, lrd=GAMMA), 3000)
    assert err <= 1e-8
