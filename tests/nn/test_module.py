"""Module, Parameter, containers, init and Linear."""
import math

import numpy as np
import pytest

import probdl as pd
from probdl import nn
from probdl.nn import init
from probdl.testing import gradcheck


class Affine(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.scale = nn.Parameter(np.ones(n))
        self.register_buffer("offset", pd.zeros(n))
        self.register_buffer("scratch", pd.zeros(1), persistent=False)

    def forward(self, x):
        return x * self.scale + self.offset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Tanh(), nn.Linear(4, 2, rng=1))
        self.head = Affine(2)
        self.shared = self.body[0]  # the same module twice: its parameters are listed once

    def forward(self, x):
        return self.head(self.body(x))


def test_registration_naming_and_traversal():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias", "head.scale"]
    assert [n for n, _ in net.named_buffers()] == ["head.offset", "head.scratch"]
    # Non-persistent buffers are left out; the shared Linear is saved under both of its names, as PyTorch does.
    assert list(net.state_dict()) == names + ["head.offset", "shared.weight", "shared.bias"]
    assert len(list(net.modules())) == 6  # the shared Linear once
    assert [n for n, _ in net.named_children()] == ["body", "head", "shared"]
    assert isinstance(net.body[1], nn.Tanh) and len(net.body) == 3
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        net.nope  # noqa: B018


def test_assignment_rules_give_clear_errors():
    m = Affine(2)
    with pytest.raises(TypeError, match="wrap it in nn.Parameter"):
        m.scale = pd.ones(2)
    m.scale = None
    assert m.scale is None and [n for n, _ in m.named_parameters()] == []

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(1))

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Early()


def test_state_dict_round_trip_keeps_parameter_identity():
    a, b = Net(), Net()
    b.body[2].weight.data[...] = 7.0
    w = a.body[2].weight
    a.load_state_dict(b.state_dict())
    assert a.body[2].weight is w and np.all(w.numpy() == 7.0)


def test_load_state_dict_lists_every_problem():
    net = Net()
    sd = net.state_dict()
    del sd["head.scale"]
    sd["extra"] = pd.zeros(1)
    sd["body.0.bias"] = pd.zeros(5)
    with pytest.raises(RuntimeError) as e:
        net.load_state_dict(sd)
    msg = str(e.value)
    assert "missing keys: head.scale" in msg and "unexpected keys: extra" in msg
    assert "body.0.bias: checkpoint (5,) vs model (4,)" in msg
    sd["body.0.bias"] = pd.zeros(4)
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert missing == ["head.scale"] and unexpected == ["extra"]


def test_train_eval_zero_grad_to_and_requires_grad():
    net = Net()
    assert net.training and net.eval() is net and not net.body[1].training
    net.train()
    assert all(m.training for m in net.modules())
    net(pd.ones(5, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    w = net.body[0].weight
    net.to(np.float32)
    assert net.body[0].weight is w and w.dtype == np.float32 and net.head.offset.dtype == np.float32
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_repr_is_nested_and_readable():
    text = repr(Net())
    assert text.startswith("Net(\n  (body): Sequential(\n    (0): Linear(in_features=3, out_features=4, bias=True)")
    assert "(head): Affine()" in text


def test_containers():
    ml = nn.ModuleList([nn.Linear(2, 2), nn.ReLU()])
    ml.append(nn.Linear(2, 1))
    ml.insert(0, nn.Identity())
    assert len(ml) == 4 and isinstance(ml[0], nn.Identity) and isinstance(ml[-1], nn.Linear)
    assert len(list(ml.parameters())) == 4
    md = nn.ModuleDict({"enc": nn.Linear(2, 3), "act": nn.ReLU()})
    md["dec"] = nn.Linear(3, 2)
    assert list(md) == ["enc", "act", "dec"] and "dec" in md and len(list(md.parameters())) == 4
    with pytest.raises(KeyError, match="no module 'x'"):
        md["x"]
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    with pytest.raises(IndexError, match="out of range"):
        seq[5]


def test_linear_matches_numpy_and_gradchecks(rng):
    lin = nn.Linear(4, 3, rng=0)
    x = rng.normal(size=(5, 4))
    np.testing.assert_allclose(lin(x).numpy(), x @ lin.weight.numpy().T + lin.bias.numpy(), rtol=1e-12)
    np.testing.assert_allclose(lin(x[0]).numpy(), x[0] @ lin.weight.numpy().T + lin.bias.numpy(), rtol=1e-12)
    gradcheck(lambda x, w, b: nn.functional.linear(x, w, b), [x, lin.weight.numpy(), lin.bias.numpy()], order=2)
    gradcheck(lambda x, w: nn.functional.linear(x, w), [rng.normal(size=(2, 3, 4)), rng.normal(size=(3, 4))])
    with pytest.raises(ValueError, match="input of shape \\(5, 3\\) does not match a weight of shape \\(3, 4\\)"):
        lin(pd.ones(5, 3))
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        nn.Linear(0, 2)


def test_linear_default_init_has_pytorch_bounds():
    lin = nn.Linear(100, 50, rng=0)
    bound = 1 / math.sqrt(100)
    w, b = lin.weight.numpy(), lin.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # U(-a, a) has variance a²/3: 5000 draws give a relative standard error of about 1.3%, so 10% is > 7 sigma.
    assert abs(w.var() / (bound ** 2 / 3) - 1) < 0.1


def test_init_functions(rng):
    t = pd.empty(300, 200)
    init.xavier_uniform_(t, rng=1)
    a = math.sqrt(6 / 500)
    assert np.abs(t.numpy()).max() <= a and abs(t.numpy().var() / (a * a / 3) - 1) < 0.05
    init.kaiming_normal_(t, nonlinearity="relu", rng=2)
    assert abs(t.numpy().std() / math.sqrt(2 / 200) - 1) < 0.02
    init.xavier_normal_(t, gain=2.0, rng=3)
    assert abs(t.numpy().std() / (2 * math.sqrt(2 / 500)) - 1) < 0.02
    init.kaiming_uniform_(t, mode="fan_out", rng=4)
    assert np.abs(t.numpy()).max() <= math.sqrt(3) * math.sqrt(2) / math.sqrt(300)  # gain √2 (a = 0), fan_out 300
    q = pd.empty(3, 5)
    init.orthogonal_(q, rng=5)
    np.testing.assert_allclose(q.numpy() @ q.numpy().T, np.eye(3), atol=1e-12)
    init.constant_(q, 2.5)
    assert np.all(q.numpy() == 2.5) and init.zeros_(q).numpy().sum() == 0 and init.ones_(q).numpy().sum() == 15
    init.normal_(q, 1.0, 0.0)
    assert np.all(q.numpy() == 1.0)
    assert init.calculate_gain("tanh") == 5 / 3 and init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    with pytest.raises(ValueError, match="at least 2 dims"):
        init.xavier_uniform_(pd.empty(3))


@pytest.mark.parametrize("module,fn", [
    (nn.ReLU(), lambda x: np.maximum(x, 0)), (nn.Tanh(), np.tanh), (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.SiLU(), lambda x: x / (1 + np.exp(-x))), (nn.Softplus(beta=2.0), lambda x: np.log1p(np.exp(2 * x)) / 2),
    (nn.ELU(0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.Softmax(dim=1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    (nn.LogSoftmax(dim=1), lambda x: x - np.log(np.exp(x).sum(1, keepdims=True))),
    (nn.GELU(), lambda x: x * 0.5 * (1 + __import__("scipy.special").special.erf(x / np.sqrt(2)))),
])
def test_activation_modules(module, fn, rng):
    x = rng.normal(size=(3, 4))
    np.testing.assert_allclose(module(x).numpy(), fn(x), rtol=1e-12, atol=1e-14)
    gradcheck(module, [x + np.sign(x) * 0.01])


def test_an_int_seed_gives_weight_and_bias_from_one_stream():
    lin = nn.Linear(3, 4, rng=0)  # both bounds are 1/√3: a restarted stream would make bias = weight[:4]
    assert not np.allclose(lin.bias.numpy(), lin.weight.numpy().ravel()[:4])
    np.testing.assert_array_equal(lin.weight.numpy(), nn.Linear(3, 4, rng=0).weight.numpy())


def test_to_takes_a_numpy_dtype_and_conv_seeds_one_stream():
    net = Net()
    net.to(np.dtype(np.float32))
    assert net.body[0].weight.dtype == np.float32
    conv = nn.Conv2d(2, 4, 3, rng=0)
    assert not np.allclose(conv.bias.numpy(), conv.weight.numpy().ravel()[:4])
