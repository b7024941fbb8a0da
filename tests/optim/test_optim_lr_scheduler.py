"""Learning-rate schedules against hand-computed sequences."""
import math
import pickle

import numpy as np
import pytest

import probdl as pd
from probdl import optim
from probdl.optim import lr_scheduler as sch


def make_opt(lrs=(1.0,), cls=optim.SGD, **kwargs):
    return cls([{"params": [pd.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs], **kwargs)


def sequence(sched, steps, metrics=None):
    """get_last_lr() after construction and after each of ``steps`` steps (first group)."""
    out = [sched.get_last_lr()[0]]
    for i in range(steps):
        sched.optimizer.step()
        sched.step(metrics[i]) if metrics is not None else sched.step()
        out.append(sched.get_last_lr()[0])
    return out


def test_step_lr():
    s = sch.StepLR(make_opt([0.1]), step_size=3, gamma=0.5)
    np.testing.assert_allclose(sequence(s, 7), [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025], rtol=1e-15)
    assert s.last_epoch == 7 and s.optimizer.param_groups[0]["lr"] == s.get_last_lr()[0]


def test_multi_step_lr_counts_repeated_milestones():
    s = sch.MultiStepLR(make_opt(), milestones=[5, 2, 5], gamma=0.1)
    np.testing.assert_allclose(sequence(s, 6), [1, 1, 0.1, 0.1, 0.1, 0.001, 0.001], rtol=1e-14)


def test_exponential_lr_on_two_groups():
    s = sch.ExponentialLR(make_opt([1.0, 0.3]), gamma=0.5)
    for _ in range(3):
        s.step()
    np.testing.assert_allclose(s.get_last_lr(), [0.125, 0.0375], rtol=1e-15)
    assert s.base_lrs == [1.0, 0.3]
    assert [g["initial_lr"] for g in s.optimizer.param_groups] == [1.0, 0.3]


def test_cosine_annealing_closed_form():
    s = sch.CosineAnnealingLR(make_opt([1.0]), T_max=4, eta_min=0.1)
    c = math.cos(math.pi / 4)  # cos(π/4) = √2/2
    want = [1.0, 0.1 + 0.45 * (1 + c), 0.55, 0.1 + 0.45 * (1 - c), 0.1, 0.1 + 0.45 * (1 - c), 0.55]
    np.testing.assert_allclose(sequence(s, 6), want, rtol=1e-14)  # past T_max it climbs back


def test_lambda_lr_single_and_per_group():
    s = sch.LambdaLR(make_opt([1.0, 2.0]), lambda t: 1.0 / (t + 1))
    s.step()
    s.step()
    np.testing.assert_allclose(s.get_last_lr(), [1 / 3, 2 / 3], rtol=1e-15)
    s = sch.LambdaLR(make_opt([1.0, 2.0]), [lambda t: 0.5**t, lambda t: t + 1])
    s.step()
    np.testing.assert_allclose(s.get_last_lr(), [0.5, 4.0], rtol=1e-15)


def test_one_cycle_two_phases_by_hand():
    # max_lr 1, 10 steps, pct_start 0.3: warm-up ends at step 0.3·10 - 1 = 2, the cycle at step 9.
    # initial_lr = 1/25 = 0.04, min_lr = 0.04/1e4 = 4e-6; momentum 0.95 -> 0.85 -> 0.95.
    opt = make_opt([0.5], momentum=0.9)
    s = sch.OneCycleLR(opt, max_lr=1.0, total_steps=10)

    def cos_anneal(a, b, u):
        return b + (a - b) * (1 + math.cos(math.pi * u)) / 2

    lrs, moms = [s.get_last_lr()[0]], [opt.param_groups[0]["momentum"]]
    for _ in range(9):
        s.step()
        lrs.append(s.get_last_lr()[0])
        moms.append(opt.param_groups[0]["momentum"])
    want_lr = [0.04, 0.52, 1.0] + [cos_anneal(1.0, 4e-6, (t - 2) / 7) for t in range(3, 10)]
    want_mom = [0.95, 0.90, 0.85] + [cos_anneal(0.85, 0.95, (t - 2) / 7) for t in range(3, 10)]
    np.testing.assert_allclose(lrs, want_lr, rtol=1e-14)
    np.testing.assert_allclose(moms, want_mom, rtol=1e-14)
    assert lrs[-1] == pytest.approx(4e-6, rel=1e-12) and moms[-1] == pytest.approx(0.95, rel=1e-14)
    s.step()  # step 10 = total_steps is still allowed, as in PyTorch
    with pytest.raises(ValueError, match="past total_steps=10"):
        s.step()


def test_one_cycle_linear_three_phase_cycles_adam_beta1():
    # 12 steps, pct_start 0.25: up to step 2, down to step 4, then to min_lr at step 11 (all linear).
    opt = make_opt([0.5], cls=optim.Adam, betas=(0.9, 0.99))
    s = sch.OneCycleLR(opt, max_lr=0.8, epochs=3, steps_per_epoch=4, pct_start=0.25, anneal_strategy="linear",
                       three_phase=True, div_factor=8.0, final_div_factor=100.0)
    lr0, lr_min = 0.1, 0.001
    lrs, beta1 = [s.get_last_lr()[0]], [opt.param_groups[0]["betas"][0]]
    for _ in range(11):
        s.step()
        lrs.append(s.get_last_lr()[0])
        beta1.append(opt.param_groups[0]["betas"][0])
    want = [0.1, 0.45, 0.8, 0.45, 0.1] + [lr0 + (lr_min - lr0) * (t - 4) / 7 for t in range(5, 12)]
    np.testing.assert_allclose(lrs, want, rtol=1e-13)
    np.testing.assert_allclose(beta1, [0.95, 0.9, 0.85, 0.9, 0.95] + [0.95] * 7, rtol=1e-13)
    assert all(g["betas"][1] == 0.99 for g in opt.param_groups)


def test_reduce_on_plateau_patience_and_cooldown():
    # patience 2: the third bad step in a row reduces; cooldown 1: the step after a reduction counts no bad step.
    s = sch.ReduceLROnPlateau(make_opt([1.0]), patience=2, cooldown=1, factor=0.5)
    metrics = [10, 9, 9, 9, 9, 9, 9, 9, 9, 8.9, 9]
    #   best:  10  9  .  .  .  .  .  .  .  8.9 .
    #   bad:    0  0  1  2 3→R 0c 1  2 3→R 0c  1
    want = [1.0, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    assert sequence(s, len(metrics), metrics) == want
    assert s.best == 8.9 and s.num_bad_epochs == 1


def test_reduce_on_plateau_modes_thresholds_and_min_lr():
    s = sch.ReduceLROnPlateau(make_opt([1.0, 0.1]), mode="max", threshold=0.5, threshold_mode="abs",
                              patience=0, factor=0.1, min_lr=[0.05, 0.0])
    s.step(1.0)  # first value is always an improvement
    s.step(1.4)  # not better by 0.5: reduce
    assert s.get_last_lr() == pytest.approx([0.1, 0.01])
    s.step(pd.tensor(2.0))  # a one-element tensor works; an improvement
    s.step(2.2)
    assert s.get_last_lr() == pytest.approx([0.05, 0.001])  # clamped at min_lr
    # relative threshold in min mode: 0.9999 is not 1e-4 below 1.0·(1 - 1e-4)
    r = sch.ReduceLROnPlateau(make_opt([1.0]), patience=0)
    r.step(1.0)
    r.step(0.99995)
    assert r.get_last_lr() == [pytest.approx(0.1)]
    # a change below eps is skipped
    e = sch.ReduceLROnPlateau(make_opt([1e-9]), patience=0, eps=1e-8)
    e.step(1.0)
    e.step(1.0)
    assert e.get_last_lr() == [1e-9]


def test_scheduler_state_dict_round_trip():
    opt = make_opt([1.0, 0.5])
    s = sch.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        s.step()
    saved = pickle.loads(pickle.dumps(s.state_dict()))
    assert "optimizer" not in saved and saved["last_epoch"] == 3
    opt2 = make_opt([1.0, 0.5])
    opt2.load_state_dict(opt.state_dict())
    s2 = sch.StepLR(opt2, step_size=7, gamma=0.9)
    s2.load_state_dict(saved)
    for _ in range(4):
        s.step()
        s2.step()
        assert s2.get_last_lr() == s.get_last_lr()
    # resuming with last_epoch needs initial_lr in the groups (a loaded optimizer has them)
    s3 = sch.StepLR(opt2, step_size=2, gamma=0.5, last_epoch=6)
    assert s3.last_epoch == 7 and s3.get_last_lr() == [0.125, 0.0625]
    with pytest.raises(KeyError, match=r"param_groups\[0\] has no 'initial_lr'"):
        sch.StepLR(make_opt(), step_size=2, last_epoch=3)


def test_lambda_lr_state_dict_keeps_callable_objects_state():
    class Warmup:
        def __init__(self, n):
            self.n = n

        def __call__(self, t):
            return min(1.0, (t + 1) / self.n)

    s = sch.LambdaLR(make_opt(), Warmup(4))
    saved = s.state_dict()
    assert saved["lr_lambdas"] == [{"n": 4}]
    other = sch.LambdaLR(make_opt(), Warmup(100))
    other.load_state_dict(saved)
    assert other.lr_lambdas[0].n == 4
    assert sch.LambdaLR(make_opt(), lambda t: 1.0).state_dict()["lr_lambdas"] == [None]


def test_reduce_on_plateau_state_dict_round_trip():
    s = sch.ReduceLROnPlateau(make_opt(), patience=1)
    for m in [3, 2, 2]:
        s.step(m)
    saved = s.state_dict()
    t = sch.ReduceLROnPlateau(make_opt(), patience=5)
    t.load_state_dict(saved)
    assert (t.best, t.num_bad_epochs, t.patience, t.last_epoch) == (2, 1, 1, 3)


def test_groups_added_later_join_the_schedule():
    opt = optim.Adam(lr=0.1)  # SVI adds parameters on its first step
    s = sch.ExponentialLR(opt, gamma=0.5)
    opt.add_param_group({"params": [pd.zeros(2, requires_grad=True)]})
    s.step()
    assert s.get_last_lr() == [0.05] and opt.param_groups[0]["initial_lr"] == 0.1
    opt.add_param_group({"params": [pd.zeros(2, requires_grad=True)], "lr": 1.0})
    s.step()
    assert s.get_last_lr() == [0.025, 0.25]
    one_cycle = sch.OneCycleLR(optim.SGD(lr=0.1, momentum=0.9), max_lr=1.0, total_steps=10)
    one_cycle.optimizer.add_param_group({"params": [pd.zeros(1, requires_grad=True)]})
    one_cycle.step()
    assert one_cycle.get_last_lr() == [pytest.approx(0.52)]
    warmup = sch.LambdaLR(optim.Adam(lr=0.1), lambda t: min(1.0, (t + 1) / 4))  # built before any group exists
    warmup.optimizer.add_param_group({"params": [pd.zeros(1, requires_grad=True)]})
    warmup.step()
    assert warmup.get_last_lr() == [pytest.approx(0.05)]
    assert "_single" not in warmup.state_dict()
    per_group = sch.LambdaLR(make_opt([1.0]), [lambda t: 1.0])
    per_group.optimizer.add_param_group({"params": [pd.zeros(1, requires_grad=True)]})
    with pytest.raises(ValueError, match="pass a single function"):
        per_group.step()


@pytest.mark.parametrize("make, err, match", [
    (lambda o: sch.StepLR(o, step_size=0), ValueError, r"StepLR: invalid step_size=0"),
    (lambda o: sch.MultiStepLR(o, milestones=[2, -1]), ValueError, r"MultiStepLR: invalid milestones=\[2, -1\]"),
    (lambda o: sch.CosineAnnealingLR(o, T_max=0), ValueError, r"CosineAnnealingLR: invalid T_max=0"),
    (lambda o: sch.LambdaLR(o, [lambda t: 1, lambda t: 2]), ValueError, r"expected 1 lr_lambdas"),
    (lambda o: sch.LambdaLR(o, 3.0), TypeError, r"lr_lambda must be a callable"),
    (lambda o: sch.OneCycleLR(o, max_lr=1.0), ValueError, r"give total_steps, or both epochs and steps_per_epoch"),
    (lambda o: sch.OneCycleLR(o, max_lr=1.0, total_steps=0), ValueError, r"invalid total_steps=0"),
    (lambda o: sch.OneCycleLR(o, max_lr=1.0, epochs=2, steps_per_epoch=-1), ValueError, r"steps_per_epoch=-1"),
    (lambda o: sch.OneCycleLR(o, max_lr=1.0, total_steps=5, pct_start=1.5), ValueError, r"pct_start=1.5"),
    (lambda o: sch.OneCycleLR(o, max_lr=1.0, total_steps=5, anneal_strategy="exp"), ValueError,
     r"anneal_strategy='exp'; expected 'cos' or 'linear'"),
    (lambda o: sch.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=5), ValueError, r"expected 1 values of max_lr"),
    (lambda o: sch.ReduceLROnPlateau(o, mode="low"), ValueError, r"invalid mode='low'"),
    (lambda o: sch.ReduceLROnPlateau(o, threshold_mode="pct"), ValueError, r"invalid threshold_mode='pct'"),
    (lambda o: sch.ReduceLROnPlateau(o, factor=1.0), ValueError, r"invalid factor=1.0; expected a number in \(0, 1\)"),
    (lambda o: sch.ReduceLROnPlateau(o, patience=-1), ValueError, r"invalid patience=-1"),
    (lambda o: sch.ReduceLROnPlateau(o, min_lr=[0.1, 0.2]), ValueError, r"expected 1 min_lrs"),
    (lambda o: sch.StepLR(object(), step_size=1), TypeError, r"expected a probdl Optimizer, got object"),
])
def test_invalid_scheduler_arguments(make, err, match):
    with pytest.raises(err, match=match):
        make(make_opt())


def test_one_cycle_momentum_needs_an_optimizer_with_momentum():
    with pytest.raises(ValueError, match="Adagrad has neither"):
        sch.OneCycleLR(make_opt(cls=optim.Adagrad), max_lr=1.0, total_steps=5)
    s = sch.OneCycleLR(make_opt(cls=optim.Adagrad), max_lr=1.0, total_steps=5, cycle_momentum=False)
    assert s.get_last_lr() == [pytest.approx(0.04, rel=1e-14)]
