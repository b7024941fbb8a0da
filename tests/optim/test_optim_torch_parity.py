"""Trajectories against torch.optim (and Pyro's ClippedAdam) over 20 steps, where PyTorch is installed.

Both libraries run the same float64 problem from the same start with the same
hyperparameters; the updates are the same arithmetic in a different order, so the
parameters agree to rounding (1e-10 is far above the ~1e-15 per-step error and far
below any real difference in an update rule).
"""
import math

import numpy as np
import pytest

import probdl as pd
from probdl import optim

torch = pytest.importorskip("torch")

A = np.array([[3.0, 0.5], [0.5, 1.0]])
B = np.array([1.0, -2.0])
C = np.array([[0.3, -0.2, 0.5], [1.0, 0.0, -0.7]])
X0 = np.array([0.5, -0.3])
W0 = np.array([[0.1, 0.2, -0.4], [0.7, -0.5, 0.2]])


def loss_fn(lib, x, W):
    """A smooth, non-separable loss: a quadratic in x, a quartic in W and a coupling term (with every grad nonzero)."""
    tensor = (lambda a: torch.tensor(a, dtype=torch.float64)) if lib is torch else pd.tensor
    A_, b_, C_ = tensor(A), tensor(B), tensor(C)
    return (0.5 * (x @ (A_ @ x)) - b_ @ x + 0.25 * ((W - C_) ** 4).sum() + (W - C_).sum()
            + 0.1 * W.sum() * x.sum())


def trajectory(lib, make_opt, steps=20):
    if lib is torch:
        params = [torch.tensor(X0, dtype=torch.float64, requires_grad=True),
                  torch.tensor(W0, dtype=torch.float64, requires_grad=True)]
    else:
        params = [pd.tensor(X0, requires_grad=True), pd.tensor(W0, requires_grad=True)]
    opt = make_opt(params)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(lib, *params).backward()
        opt.step()
        out.append([np.array(p.detach().numpy() if lib is torch else p.numpy()) for p in params])
    return out


CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, weight_decay=0.1)),
    ("SGD", dict(lr=0.01, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    ("AdamW", dict(lr=0.05, weight_decay=0.3, maximize=True)),
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1)),
    ("Adamax", dict(lr=0.05, eps=1e-3, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.8)),
    ("RMSprop", dict(lr=0.01, momentum=0.8, centered=True, weight_decay=0.1, eps=1e-4)),
    ("RMSprop", dict(lr=0.01, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5, weight_decay=0.1, eps=1e-6)),
    ("Adagrad", dict(lr=0.1, maximize=True)),
]


@pytest.mark.parametrize("foreach", [False, True], ids=["per-param", "flat"])
@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_torch_optim(name, kwargs, foreach):
    ours = trajectory(pd, lambda ps: getattr(optim, name)(ps, foreach=foreach, **kwargs))
    theirs = trajectory(torch, lambda ps: getattr(torch.optim, name)(ps, **kwargs))
    for k, (a, b) in enumerate(zip(ours, theirs)):
        for pa, pb in zip(a, b):
            np.testing.assert_allclose(pa, pb, rtol=1e-10, atol=1e-10, err_msg=f"{name} {kwargs} step {k + 1}")
    assert np.abs(ours[-1][0] - X0).max() > 1e-3  # the trajectory really moved


@pytest.mark.parametrize("kwargs", [dict(lr=0.05), dict(lr=0.05, clip_norm=0.5, lrd=0.95, weight_decay=0.1),
                                    dict(lr=0.02, betas=(0.5, 0.9), clip_norm=0.1, lrd=0.99)])
@pytest.mark.parametrize("foreach", [False, True], ids=["per-param", "flat"])
def test_clipped_adam_matches_pyro(kwargs, foreach):
    pyro_clipped_adam = pytest.importorskip("pyro.optim.clipped_adam")
    ours = trajectory(pd, lambda ps: optim.ClippedAdam(ps, foreach=foreach, **kwargs))
    theirs = trajectory(torch, lambda ps: pyro_clipped_adam.ClippedAdam(ps, **kwargs))
    for k, (a, b) in enumerate(zip(ours, theirs)):
        for pa, pb in zip(a, b):
            np.testing.assert_allclose(pa, pb, rtol=1e-10, atol=1e-10, err_msg=f"ClippedAdam {kwargs} step {k + 1}")


# ------------------------------------------------------------------ schedulers
def _lrs(lib, make_sched, steps, n_groups=2, opt_name="SGD", opt_kwargs=None, metrics=None):
    """The lrs (and momenta) a scheduler sets over ``steps`` steps, recorded after each step."""
    if lib is torch:
        params = [torch.zeros(1, dtype=torch.float64, requires_grad=True) for _ in range(n_groups)]
        opt_cls = getattr(torch.optim, opt_name)
    else:
        params = [pd.zeros(1, requires_grad=True) for _ in range(n_groups)]
        opt_cls = getattr(optim, opt_name)
    opt = opt_cls([{"params": [p], "lr": 0.1 * (k + 1)} for k, p in enumerate(params)], **(opt_kwargs or {}))
    sched = make_sched(lib, opt)

    def record():
        momenta = [g["betas"][0] if "betas" in g else g.get("momentum", 0.0) for g in opt.param_groups]
        return list(sched.get_last_lr()) + [float(m) for m in momenta]

    out = [record()]
    for i in range(steps):
        opt.step()
        sched.step(metrics[i]) if metrics is not None else sched.step()
        out.append(record())
    return np.array(out)


def _mod(lib):
    return torch.optim.lr_scheduler if lib is torch else optim.lr_scheduler


SCHEDULES = [
    ("StepLR", lambda lib, o: _mod(lib).StepLR(o, step_size=3, gamma=0.5), {}),
    ("MultiStepLR", lambda lib, o: _mod(lib).MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3), {}),
    ("ExponentialLR", lambda lib, o: _mod(lib).ExponentialLR(o, gamma=0.9), {}),
    ("CosineAnnealingLR", lambda lib, o: _mod(lib).CosineAnnealingLR(o, T_max=7, eta_min=0.01), {}),
    ("LambdaLR", lambda lib, o: _mod(lib).LambdaLR(o, lambda t: 1.0 / (1 + t)), {}),
    ("LambdaLR-list", lambda lib, o: _mod(lib).LambdaLR(o, [lambda t: 0.5**t, lambda t: math.cos(t)]), {}),
    ("OneCycleLR-sgd", lambda lib, o: _mod(lib).OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=24),
     dict(opt_kwargs=dict(momentum=0.9))),
    ("OneCycleLR-linear-3phase", lambda lib, o: _mod(lib).OneCycleLR(
        o, max_lr=0.5, epochs=4, steps_per_epoch=6, anneal_strategy="linear", three_phase=True, pct_start=0.25),
     dict(opt_name="Adam")),
    ("OneCycleLR-no-momentum", lambda lib, o: _mod(lib).OneCycleLR(
        o, max_lr=0.5, total_steps=24, cycle_momentum=False, div_factor=10.0, final_div_factor=100.0), {}),
    ("ReduceLROnPlateau", lambda lib, o: _mod(lib).ReduceLROnPlateau(o, patience=2, cooldown=1, factor=0.5),
     dict(metrics=[5, 4, 4, 4, 4, 3.9999, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2])),
    ("ReduceLROnPlateau-max-abs", lambda lib, o: _mod(lib).ReduceLROnPlateau(
        o, mode="max", threshold=0.5, threshold_mode="abs", patience=1, factor=0.5, min_lr=[0.02, 0.05]),
     dict(metrics=[1, 2, 2.4, 2.6, 3.2, 3.3, 3.4, 3.5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5])),
]


@pytest.mark.parametrize("name, make, extra", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_scheduler_matches_torch(name, make, extra):
    ours = _lrs(pd, make, 24, **extra)
    theirs = _lrs(torch, make, 24, **extra)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    assert len(np.unique(ours[:, 0])) > 2  # the schedule really changed the rate
