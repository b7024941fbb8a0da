"""Grouped (flat, ``foreach``) updates give exactly the numbers of per-parameter updates, in every situation.

The flat path runs the same elementwise arithmetic on concatenated arrays, so the
comparisons here are exact (``assert_array_equal``), not approximate.
"""
import copy
import pickle

import numpy as np
import pytest

import probdl as pd
from probdl import optim
from probdl.optim import optimizer as base

ALL = [
    (optim.SGD, dict(lr=0.05)),
    (optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.1)),
    (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True)),
    (optim.Adam, dict(lr=0.05, weight_decay=0.1)),
    (optim.Adam, dict(lr=0.05, amsgrad=True, maximize=True)),
    (optim.AdamW, dict(lr=0.05, weight_decay=0.2, amsgrad=True)),
    (optim.Adamax, dict(lr=0.05, weight_decay=0.1)),
    (optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1)),
    (optim.RMSprop, dict(lr=0.01)),
    (optim.Adagrad, dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.3, weight_decay=0.1)),
    (optim.ClippedAdam, dict(lr=0.05, clip_norm=0.5, lrd=0.95, weight_decay=0.1)),
]
IDS = [f"{c.__name__}-{i}" for i, (c, _) in enumerate(ALL)]
SHAPES = [(3,), (), (2, 3), (1, 1, 2), (0,)]


def make_params(shapes=SHAPES, dtype=None):
    rng = np.random.default_rng(7)
    return [pd.tensor(rng.normal(size=s), dtype=dtype, requires_grad=True) for s in shapes]


def loss_of(params, skip=()):
    total = pd.tensor(0.0)
    for k, p in enumerate(params):
        if k not in skip:
            total = total + ((p - 0.2 * k) ** 2).sum() + 0.3 * (p**3).sum()
    return total


def run(opt, params, steps, skip_at=None):
    """``skip_at``: {step: indices of parameters left without a gradient at that step}."""
    for t in range(steps):
        opt.zero_grad()
        loss_of(params, (skip_at or {}).get(t, ())).backward()
        opt.step()


def assert_same(params_a, opt_a, params_b, opt_b):
    for p, q in zip(params_a, params_b):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
        sa, sb = opt_a.state.get(p, {}), opt_b.state.get(q, {})
        assert sa.keys() == sb.keys()
        for key in sa:
            np.testing.assert_array_equal(np.asarray(sa[key]), np.asarray(sb[key]), err_msg=key)


@pytest.mark.parametrize("cls, kwargs", ALL, ids=IDS)
def test_flat_equals_per_parameter(cls, kwargs):
    a, b = make_params(), make_params()
    opt_a, opt_b = cls(a, foreach=False, **kwargs), cls(b, foreach=True, **kwargs)
    run(opt_a, a, 5)
    run(opt_b, b, 5)
    assert_same(a, opt_a, b, opt_b)
    assert id(opt_b.param_groups[0]) in opt_b._flat  # it really took the flat path
    assert not opt_a._flat


@pytest.mark.parametrize("cls, kwargs", ALL, ids=IDS)
def test_flat_with_missing_gradients_falls_back_and_agrees(cls, kwargs):
    # step 1: parameter 2 has no gradient; step 3: parameters 0 and 4. Their step counts then differ,
    # so the group goes one parameter at a time from there on, on the same (shared) state.
    skip = {1: (2,), 3: (0, 4)}
    a, b = make_params(), make_params()
    opt_a, opt_b = cls(a, foreach=False, **kwargs), cls(b, foreach=True, **kwargs)
    run(opt_a, a, 6, skip)
    run(opt_b, b, 6, skip)
    assert_same(a, opt_a, b, opt_b)


def test_state_entries_are_views_of_the_flat_buffers():
    params = make_params()
    opt = optim.Adam(params, lr=0.1, foreach=True)
    run(opt, params, 2)
    flat = opt._flat[id(opt.param_groups[0])]
    m = opt.state[params[2]]["exp_avg"]
    assert m.shape == (2, 3) and np.shares_memory(m, flat.state["exp_avg"])
    run(opt, params, 1)
    np.testing.assert_array_equal(m, opt.state[params[2]]["exp_avg"])  # still current after another flat step
    assert opt.state[params[0]]["step"] == 3


def test_state_dict_pickle_and_deepcopy_continue_exactly():
    params = make_params()
    opt = optim.Adam([{"params": params[:3]}, {"params": params[3:], "lr": 0.01}], lr=0.1, amsgrad=True,
                     foreach=True)
    run(opt, params, 3)
    twin = [p.detach().clone().requires_grad_() for p in params]
    loaded = optim.Adam([{"params": twin[:3]}, {"params": twin[3:]}], foreach=True)
    loaded.load_state_dict(opt.state_dict())
    copied = copy.deepcopy((opt, params))
    pickled = pickle.loads(pickle.dumps((opt, params)))
    run(opt, params, 3)
    run(loaded, twin, 3)
    for o, ps in [copied, pickled]:
        run(o, ps, 3)
        assert_same(params, opt, ps, o)
    assert_same(params, opt, twin, loaded)


def test_group_changes_rebuild_the_buffers():
    a, b = make_params(), make_params()
    opt_a = optim.RMSprop(a[:3], lr=0.01, momentum=0.5, foreach=False)
    opt_b = optim.RMSprop(b[:3], lr=0.01, momentum=0.5, foreach=True)
    for opt, ps in [(opt_a, a), (opt_b, b)]:
        run(opt, ps[:3], 2)
        opt.param_groups[0]["params"].append(ps[3])  # a parameter appended to the group's list by hand
        run(opt, ps[:4], 2)
    assert_same(a, opt_a, b, opt_b)


def test_state_replaced_by_hand_is_gathered_again():
    a, b = make_params(), make_params()
    opt_a, opt_b = optim.Adam(a, lr=0.1, foreach=False), optim.Adam(b, lr=0.1, foreach=True)
    for opt, ps in [(opt_a, a), (opt_b, b)]:
        run(opt, ps, 2)
        opt.state[ps[0]]["exp_avg"] = np.full(3, 0.5)
        run(opt, ps, 2)
    assert_same(a, opt_a, b, opt_b)
    assert np.shares_memory(opt_b.state[b[0]]["exp_avg"], opt_b._flat[id(opt_b.param_groups[0])].state["exp_avg"])


@pytest.mark.parametrize("cls, kwargs", ALL, ids=IDS)
def test_switching_foreach_and_options_mid_run(cls, kwargs):
    # one step per parameter in between: the flat buffers must take up the advanced step count; and an
    # option that adds state (amsgrad, centered, momentum) switched on while going one by one
    extra = {"amsgrad": True} if "betas" in cls().defaults and cls is not optim.ClippedAdam else \
        {"centered": True, "momentum": 0.3} if cls is optim.RMSprop else {}
    a, b = make_params(), make_params()
    opt_a, opt_b = cls(a, foreach=False, **kwargs), cls(b, foreach=True, **kwargs)
    for opt, ps in [(opt_a, a), (opt_b, b)]:
        run(opt, ps, 2)
        opt.param_groups[0]["foreach"] = False
        opt.param_groups[0].update(extra)
        run(opt, ps, 1)
        opt.param_groups[0]["foreach"] = opt is opt_b
        run(opt, ps, 2)
    assert_same(a, opt_a, b, opt_b)


def test_mixed_dtypes_go_one_by_one():
    params = make_params()[:2] + make_params(dtype=pd.float32)[2:4]
    ref = [p.detach().clone().requires_grad_() for p in params]
    opt, opt_ref = optim.Adam(params, lr=0.1, foreach=True), optim.Adam(ref, lr=0.1, foreach=False)
    run(opt, params, 3)
    run(opt_ref, ref, 3)
    assert not opt._flat
    assert_same(params, opt, ref, opt_ref)
    assert params[3].dtype == np.float32


def test_foreach_none_groups_only_many_small_parameters(monkeypatch):
    small = make_params([(4,)] * base.FOREACH_MIN_PARAMS)
    opt = optim.Adam(small, lr=0.1)
    run(opt, small, 1)
    assert opt._flat
    few = make_params([(4,)] * (base.FOREACH_MIN_PARAMS - 1))
    opt = optim.Adam(few, lr=0.1)
    run(opt, few, 1)
    assert not opt._flat
    monkeypatch.setattr(base, "FOREACH_MAX_MEAN_SIZE", 3)
    opt = optim.Adam(small, lr=0.1)
    run(opt, small, 1)
    assert not opt._flat
    opt = optim.Adam(small, lr=0.1, foreach=True)  # forced: groups whatever the sizes
    run(opt, small, 1)
    assert opt._flat


def test_invalid_foreach():
    with pytest.raises(ValueError, match=r"Adam: invalid foreach='yes'; expected None, True or False"):
        optim.Adam(make_params(), foreach="yes")
