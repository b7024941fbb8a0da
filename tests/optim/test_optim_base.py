"""The Optimizer base: parameter groups, late groups, state_dict, skipped parameters, zero_grad, closures, errors."""
import pickle

import numpy as np
import pytest

import probdl as pd
from probdl import optim

ALL = [
    (optim.SGD, dict(lr=0.1, momentum=0.9)),
    (optim.Adam, dict(lr=0.1, amsgrad=True)),
    (optim.AdamW, dict(lr=0.1)),
    (optim.Adamax, dict(lr=0.1)),
    (optim.RMSprop, dict(lr=0.1, momentum=0.5, centered=True)),
    (optim.Adagrad, dict(lr=0.1, lr_decay=0.1)),
    (optim.ClippedAdam, dict(lr=0.1, clip_norm=1.0, lrd=0.9)),
]
IDS = [c.__name__ for c, _ in ALL]


def loss_of(params):
    """A loss touching every parameter, with distinct gradients."""
    total = 0.0
    for k, p in enumerate(params):
        total = total + ((p - 0.3 * (k + 1)) ** 2).sum() + 0.1 * (p**3).sum()
    return total


def train(opt, params, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss_of(params).backward()
        opt.step()


def make_params(device="cpu", dtype=None):
    rng = np.random.default_rng(1)
    return [pd.tensor(rng.normal(size=s), dtype=dtype, device=device, requires_grad=True) for s in [(3,), (2, 2)]]


# --------------------------------------------------------------- param groups
def test_param_groups_have_their_own_lr_and_inherit_the_rest():
    a, b = pd.tensor([1.0, 2.0], requires_grad=True), pd.tensor([3.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.01}], lr=0.1, momentum=0.0)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert opt.param_groups[1]["params"][0] is b and opt.param_groups[1]["momentum"] == 0.0
    (a.sum() + 2 * b.sum()).backward()
    opt.step()
    np.testing.assert_allclose(a.numpy(), [1.0 - 0.1, 2.0 - 0.1])
    np.testing.assert_allclose(b.numpy(), [3.0 - 0.01 * 2])


def test_optimizer_without_params_takes_groups_later():
    opt = optim.Adam(lr=0.05)
    assert opt.param_groups == [] and opt.defaults["lr"] == 0.05
    opt.step()  # nothing to do
    params = make_params()
    opt.add_param_group({"params": params[:1]})
    opt.add_param_group({"params": params[1:], "lr": 0.5, "betas": (0.5, 0.9)})
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.5]
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)
    # the same as an optimizer made with both groups from the start
    twin = [p.detach().clone().requires_grad_() for p in params]
    ref = optim.Adam([{"params": twin[:1]}, {"params": twin[1:], "lr": 0.5, "betas": (0.5, 0.9)}], lr=0.05)
    train(opt, params, 4)
    train(ref, twin, 4)
    for p, q in zip(params, twin):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_a_group_added_between_steps_starts_fresh():
    a, b = make_params()
    opt = optim.Adam([a], lr=0.1)
    train(opt, [a], 3)
    opt.add_param_group({"params": [b]})
    train(opt, [a, b], 1)
    assert opt.state[a]["step"] == 4 and opt.state[b]["step"] == 1


def test_params_without_grad_are_skipped():
    for cls, kwargs in ALL:
        a, b = make_params()
        before = b.numpy().copy()
        opt = cls([a, b], **kwargs)
        for _ in range(3):
            opt.zero_grad()
            ((a - 1.0) ** 2).sum().backward()
            opt.step()
        np.testing.assert_array_equal(b.numpy(), before, err_msg=cls.__name__)
        assert b not in opt.state and a in opt.state
        assert not np.allclose(a.numpy(), make_params()[0].numpy())


@pytest.mark.parametrize("cls, kwargs", ALL, ids=IDS)
def test_update_is_in_place_and_records_no_graph(cls, kwargs):
    params = make_params()
    arrays = [p.data for p in params]
    opt = cls(params, **kwargs)
    train(opt, params, 2)
    for p, arr in zip(params, arrays):
        assert p.data is arr and p.is_leaf and p.grad_fn is None and p.requires_grad


@pytest.mark.parametrize("cls, kwargs", ALL, ids=IDS)
def test_float32_parameters_stay_float32(cls, kwargs):
    params = make_params(dtype=pd.float32)
    opt = cls(params, **kwargs)
    train(opt, params, 2)
    assert all(p.dtype == np.float32 for p in params)
    assert all(v.dtype == np.float32 for s in opt.state.values() for v in s.values() if hasattr(v, "dtype"))


@pytest.mark.parametrize("cls, kwargs", ALL, ids=IDS)
def test_every_device_gives_the_cpu_trajectory(cls, kwargs, device):
    ref = make_params()
    train(cls(ref, **kwargs), ref, 3)
    params = make_params(device=device)
    train(cls(params, **kwargs), params, 3)
    for p, q in zip(params, ref):
        assert p.device == device
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------- zero_grad
def test_zero_grad_to_none_and_to_zeros():
    a, b = make_params()
    opt = optim.SGD([a, b], lr=0.1)
    loss_of([a, b]).backward()
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    loss_of([a, b]).backward()
    a.grad.data[0] = np.nan
    g = a.grad
    opt.zero_grad(set_to_none=False)
    assert a.grad is g  # the same gradient tensor, now all zeros (NaN included)
    np.testing.assert_array_equal(a.grad.numpy(), np.zeros(3))
    np.testing.assert_array_equal(b.grad.numpy(), np.zeros((2, 2)))
    loss_of([a, b]).backward()  # gradients accumulate onto the zeros
    assert np.all(a.grad.numpy() != 0)


def test_zero_grad_does_not_write_into_a_shared_array():
    a = pd.tensor([1.0, 2.0], requires_grad=True)
    shared = pd.tensor([5.0, 6.0])
    a.grad = shared
    optim.SGD([a]).zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 0.0])
    assert a.grad is shared  # same tensor object, given a fresh array


# --------------------------------------------------------------------- closure
def test_step_with_a_closure_returns_its_loss():
    params = make_params()
    twin = [p.detach().clone().requires_grad_() for p in params]
    opt, ref = optim.Adam(params, lr=0.1), optim.Adam(twin, lr=0.1)
    calls = []

    def closure():
        opt.zero_grad()
        loss = loss_of(params)
        loss.backward()
        calls.append(loss.item())
        return loss

    with pd.no_grad():  # the closure runs with gradients enabled even so
        for _ in range(3):
            loss = opt.step(closure)
            assert loss.item() == calls[-1]
    train(ref, twin, 3)
    for p, q in zip(params, twin):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    assert opt.step() is None


# ------------------------------------------------------------------ state_dict
@pytest.mark.parametrize("cls, kwargs", ALL, ids=IDS)
def test_state_dict_round_trip_continues_exactly(cls, kwargs):
    params = make_params()
    opt = cls([{"params": params[:1]}, {"params": params[1:], "lr": 0.03}], **kwargs)
    train(opt, params, 4)
    saved = pickle.loads(pickle.dumps(opt.state_dict()))

    twin = [p.detach().clone().requires_grad_() for p in params]
    other = cls([{"params": twin[:1]}, {"params": twin[1:]}], **{**kwargs, "lr": 123.0})
    other.load_state_dict(saved)
    assert [g["lr"] for g in other.param_groups] == [g["lr"] for g in opt.param_groups]
    train(opt, params, 5)
    train(other, twin, 5)
    for p, q in zip(params, twin):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    assert other.param_groups[0]["params"][0] is twin[0]


def test_state_dict_is_a_copy_indexed_across_groups():
    params = make_params()
    opt = optim.Adam([{"params": params[:1]}, {"params": params[1:]}], lr=0.1)
    train(opt, params, 2)
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["state"][1]["step"] == 2 and sd["state"][1]["exp_avg"].shape == (2, 2)
    frozen = sd["state"][0]["exp_avg"].copy()
    train(opt, params, 2)
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], frozen)
    assert sd["state"][0]["exp_avg"] is not opt.state[params[0]]["exp_avg"]
    sd["param_groups"][0]["lr"] = 9.0
    assert opt.param_groups[0]["lr"] == 0.1


def test_loaded_state_is_copied_and_cast_to_the_parameter_dtype():
    params = make_params()
    opt = optim.Adam(params, lr=0.1)
    train(opt, params, 1)
    sd = opt.state_dict()
    params32 = make_params(dtype=pd.float32)
    opt32 = optim.Adam(params32, lr=0.1)
    opt32.load_state_dict(sd)
    m = opt32.state[params32[0]]["exp_avg"]
    assert m.dtype == np.float32 and m is not sd["state"][0]["exp_avg"]


def test_load_state_dict_rejects_a_mismatch_and_changes_nothing():
    params = make_params()
    opt = optim.Adam([{"params": params[:1]}, {"params": params[1:]}], lr=0.1)
    train(opt, params, 1)
    sd = opt.state_dict()
    one_group = optim.Adam(make_params(), lr=0.2)
    with pytest.raises(ValueError, match="2 parameter group.* but this optimizer has 1"):
        one_group.load_state_dict(sd)
    c, d = make_params()
    resized = optim.Adam([{"params": [c]}, {"params": [d, pd.zeros(1, requires_grad=True)]}], lr=0.2)
    with pytest.raises(ValueError, match="parameter group 1 has 1 parameter.* but 2"):
        resized.load_state_dict(sd)
    a, b = make_params()
    wrong_shape = optim.Adam([{"params": [b]}, {"params": [a]}], lr=0.2)
    with pytest.raises(ValueError, match=r"state 'exp_avg' has shape \(3,\) but its parameter has shape \(2, 2\)"):
        wrong_shape.load_state_dict(sd)
    assert wrong_shape.param_groups[0]["lr"] == 0.2 and not wrong_shape.state
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})
    sd["state"][7] = {"step": 1}
    with pytest.raises(ValueError, match="parameter 7"):
        optim.Adam([{"params": params[:1]}, {"params": params[1:]}]).load_state_dict(sd)


def test_load_state_dict_validates_the_options():
    params = make_params()
    sd = optim.SGD(params, lr=0.1).state_dict()
    sd["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match="SGD: invalid lr=-1.0"):
        optim.SGD(params, lr=0.1).load_state_dict(sd)


def test_a_subclass_written_as_in_pytorch():
    class SignSGD(optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        with pd.no_grad():
                            p -= group["lr"] * pd.sign(p.grad)

    x = pd.tensor([1.0, -2.0], requires_grad=True)
    opt = SignSGD([x], lr=0.5)
    (x**2).sum().backward()
    opt.step()
    np.testing.assert_array_equal(x.numpy(), [0.5, -1.5])
    assert opt.defaults == {"lr": 0.5}


def test_repr_lists_the_groups():
    text = repr(optim.SGD(make_params(), lr=0.25))
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "lr: 0.25" in text


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("cls, kwargs, match", [
    (optim.SGD, dict(lr=-0.1), r"SGD: invalid lr=-0.1; expected a number >= 0"),
    (optim.SGD, dict(lr=float("nan")), r"SGD: invalid lr=nan"),
    (optim.SGD, dict(momentum=-0.5), r"SGD: invalid momentum=-0.5"),
    (optim.SGD, dict(weight_decay=-1e-3), r"SGD: invalid weight_decay=-0.001"),
    (optim.SGD, dict(nesterov=True), r"SGD: nesterov=True needs momentum > 0 and dampening = 0, got momentum=0.0"),
    (optim.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), r"dampening=0.1"),
    (optim.Adam, dict(lr=-1.0), r"Adam: invalid lr=-1.0"),
    (optim.Adam, dict(betas=(1.0, 0.999)), r"Adam: invalid betas=\(1.0, 0.999\); expected a pair"),
    (optim.Adam, dict(betas=(0.9, -0.1)), r"Adam: invalid betas=\(0.9, -0.1\)"),
    (optim.Adam, dict(betas=(0.9,)), r"Adam: invalid betas=\(0.9,\)"),
    (optim.Adam, dict(eps=-1e-8), r"Adam: invalid eps=-1e-08"),
    (optim.Adam, dict(weight_decay=-0.1), r"Adam: invalid weight_decay=-0.1"),
    (optim.AdamW, dict(betas=(0.9, 1.5)), r"AdamW: invalid betas=\(0.9, 1.5\)"),
    (optim.AdamW, dict(weight_decay=-0.01), r"AdamW: invalid weight_decay=-0.01"),
    (optim.Adamax, dict(betas=(-0.1, 0.9)), r"Adamax: invalid betas"),
    (optim.RMSprop, dict(momentum=-0.1), r"RMSprop: invalid momentum=-0.1"),
    (optim.RMSprop, dict(alpha=-0.5), r"RMSprop: invalid alpha=-0.5"),
    (optim.Adagrad, dict(lr_decay=-0.1), r"Adagrad: invalid lr_decay=-0.1"),
    (optim.Adagrad, dict(initial_accumulator_value=-1.0), r"Adagrad: invalid initial_accumulator_value=-1.0"),
    (optim.ClippedAdam, dict(clip_norm=0.0), r"ClippedAdam: invalid clip_norm=0.0; expected a number > 0"),
    (optim.ClippedAdam, dict(lrd=-0.5), r"ClippedAdam: invalid lrd=-0.5"),
    (optim.ClippedAdam, dict(betas=(0.9, 1.0)), r"ClippedAdam: invalid betas"),
])
def test_invalid_options_are_named(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(make_params(), **kwargs)
    with pytest.raises(ValueError, match=match):  # also without params, and per group
        cls(**kwargs)
    opt = cls(make_params()[:1])
    with pytest.raises(ValueError, match=match):
        opt.add_param_group({"params": make_params()[1:], **kwargs})
    assert len(opt.param_groups) == 1


def test_invalid_parameters_are_rejected():
    a, b = make_params()
    with pytest.raises(ValueError, match="already appears in a parameter group"):
        optim.SGD([{"params": [a]}, {"params": [b, a]}])
    opt = optim.SGD([a])
    with pytest.raises(ValueError, match="already appears in a parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="already appears"):
        optim.SGD([a, b, a])
    with pytest.raises(ValueError, match="only optimize real floating tensors.* dtype int64"):
        optim.SGD([pd.tensor([1, 2])])
    with pytest.raises(ValueError, match="can't optimize a non-leaf tensor"):
        optim.SGD([a * 2])
    with pytest.raises(TypeError, match="can only optimize Tensors, but parameter 1 is a ndarray"):
        optim.SGD([a, np.zeros(3)])
    with pytest.raises(TypeError, match="not a single Tensor; wrap it in a list"):
        optim.SGD(a)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="not a set"):
        optim.SGD({a, b})
    with pytest.raises(TypeError, match="mixes Tensors and dicts"):
        optim.SGD([a, {"params": [b]}])
    with pytest.raises(ValueError, match="no 'params' entry"):
        optim.SGD(lr=0.1).add_param_group({"lr": 0.1})
    with pytest.raises(TypeError, match="expected a dict"):
        optim.SGD(lr=0.1).add_param_group([a])
