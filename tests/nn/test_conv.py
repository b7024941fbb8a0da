"""Convolutions and the unfold/fold pair: values against explicit loops, gradients against finite differences
(first and second order), PyTorch as an oracle where it is installed, and the messages for bad input."""
import itertools
import math

import numpy as np
import pytest

import probdl as pd
from probdl.nn.conv import Conv1d, Conv2d, conv1d, conv2d
from probdl.tensor.ops.conv import fold, unfold
from probdl.testing import GradcheckError, gradcheck


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


# ------------------------------------------------------------------ the obviously-correct references
def same_pads(kernel, dilation):
    """PyTorch's "same": total d(k-1), the odd one on the right."""
    return tuple((dl * (k - 1) // 2, dl * (k - 1) - dl * (k - 1) // 2) for k, dl in zip(kernel, dilation))


def ref_conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Convolution by loops over output channels, output positions and kernel offsets; out-of-range input
    positions (the padding) are skipped, so no padding routine is shared with the code under test."""
    d = w.ndim - 2
    stride = (stride,) * d if isinstance(stride, int) else stride
    dilation = (dilation,) * d if isinstance(dilation, int) else dilation
    if padding == "same":
        pads = same_pads(w.shape[2:], dilation)
    elif padding == "valid":
        pads = ((0, 0),) * d
    else:
        pads = tuple((p, p) for p in ((padding,) * d if isinstance(padding, int) else padding))
    n, c_out, c_group, kernel, size = x.shape[0], w.shape[0], w.shape[1], w.shape[2:], x.shape[2:]
    out = [(size[i] + sum(pads[i]) - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(d)]
    y = np.zeros((n, c_out, *out))
    for o in range(c_out):
        g = o // (c_out // groups)
        chans = slice(g * c_group, (g + 1) * c_group)
        for pos in itertools.product(*map(range, out)):
            acc = np.zeros(n) if b is None else np.full(n, b[o])
            for kp in itertools.product(*map(range, kernel)):
                idx = tuple(pos[i] * stride[i] - pads[i][0] + kp[i] * dilation[i] for i in range(d))
                if all(0 <= idx[i] < size[i] for i in range(d)):
                    acc += x[(slice(None), chans) + idx] @ w[(o, slice(None)) + kp]
            y[(slice(None), o) + pos] = acc
    return y


def ref_unfold(x, kernel, stride, padding, dilation):
    """(N, C, H, W) -> (N, C, Ho, Wo, kh, kw) by loops; zeros outside the input."""
    n, c, h, w = x.shape
    ho = (h + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    out = np.zeros((n, c, ho, wo) + tuple(kernel))
    for i, j, a, b in itertools.product(range(ho), range(wo), range(kernel[0]), range(kernel[1])):
        r = i * stride[0] - padding[0] + a * dilation[0]
        s = j * stride[1] - padding[1] + b * dilation[1]
        if 0 <= r < h and 0 <= s < w:
            out[:, :, i, j, a, b] = x[:, :, r, s]
    return out


# ------------------------------------------------------------------ configurations
# (d, x shape, out channels, kernel, options)
CASES = [
    (2, (2, 3, 7, 6), 4, (3, 3), {}),
    (2, (2, 3, 7, 6), 4, (3, 3), {"bias": False}),
    (2, (2, 3, 8, 7), 2, (3, 2), {"stride": 2}),
    (2, (1, 2, 6, 9), 3, (2, 3), {"stride": (2, 1), "padding": (1, 2)}),
    (2, (2, 2, 5, 5), 2, (3, 3), {"padding": 1}),
    (2, (2, 2, 5, 6), 2, (3, 3), {"padding": 2, "stride": 2}),
    (2, (2, 3, 9, 8), 2, (3, 3), {"dilation": 2}),
    (2, (2, 3, 9, 8), 2, (2, 3), {"dilation": (2, 1), "padding": 1, "stride": (1, 2)}),
    (2, (2, 3, 6, 7), 4, (3, 3), {"padding": "same"}),
    (2, (2, 3, 6, 7), 4, (2, 4), {"padding": "same", "dilation": (1, 2)}),  # even kernels: asymmetric padding
    (2, (2, 3, 5, 5), 4, (3, 3), {"padding": "valid"}),
    (2, (2, 4, 6, 5), 6, (3, 2), {"groups": 2}),
    (2, (2, 4, 6, 5), 2, (3, 3), {"groups": 2, "stride": 2, "padding": 1}),
    (2, (2, 3, 6, 6), 3, (3, 3), {"groups": 3, "padding": 1}),   # depthwise
    (2, (2, 3, 6, 6), 6, (2, 2), {"groups": 3, "bias": False}),  # depthwise, channel multiplier 2
    (2, (1, 1, 1, 5), 2, (1, 3), {}),                            # a single row
    (1, (2, 3, 9), 4, (3,), {}),
    (1, (2, 3, 9), 2, (4,), {"stride": 2, "padding": 2}),
    (1, (2, 4, 10), 2, (3,), {"dilation": 3, "groups": 2}),
    (1, (1, 2, 7), 2, (2,), {"padding": "same", "bias": False}),
    (1, (2, 3, 8), 3, (3,), {"groups": 3, "padding": 1, "stride": 3}),
]


def make(rng, d, xshape, c_out, kernel, opts):
    groups = opts.get("groups", 1)
    x = rng.normal(size=xshape)
    w = rng.normal(size=(c_out, xshape[1] // groups) + kernel)
    b = rng.normal(size=c_out) if opts.get("bias", True) else None
    kw = {k: v for k, v in opts.items() if k != "bias"}
    return x, w, b, kw


def conv_fn(d):
    return conv1d if d == 1 else conv2d


def case_id(case):
    d, xshape, c_out, kernel, opts = case
    return f"{d}d-{xshape}-{c_out}-{kernel}-" + ",".join(f"{k}={v}" for k, v in opts.items())


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv_matches_loops(case, rng):
    d, xshape, c_out, kernel, opts = case
    x, w, b, kw = make(rng, *case)
    got = conv_fn(d)(pd.tensor(x), pd.tensor(w), None if b is None else pd.tensor(b), **kw)
    np.testing.assert_allclose(got.numpy(), ref_conv(x, w, b, **kw), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] == 2][::3] + [c for c in CASES if c[0] == 1][::2],
                         ids=case_id)
def test_conv_unbatched_input(case, rng):
    d, xshape, c_out, kernel, opts = case
    x, w, b, kw = make(rng, *case)
    got = conv_fn(d)(x[0], w, b, **kw)
    assert got.shape == ref_conv(x[:1], w, b, **kw).shape[1:]
    np.testing.assert_allclose(got.numpy(), ref_conv(x[:1], w, b, **kw)[0], rtol=1e-12, atol=1e-12)


def test_conv_reference_is_not_vacuous(rng):
    """The comparison above can fail: a flipped kernel (a true convolution) differs from PyTorch's correlation."""
    x, w = rng.normal(size=(1, 1, 5, 5)), rng.normal(size=(1, 1, 3, 3))
    assert not np.allclose(conv2d(x, w[..., ::-1, ::-1].copy()).numpy(), ref_conv(x, w))


SMALL = [  # sizes small enough for full Jacobians
    (2, (2, 2, 4, 5), 2, (2, 3), {}),
    (2, (1, 2, 5, 4), 2, (3, 2), {"stride": 2, "padding": 1}),
    (2, (1, 2, 5, 5), 2, (2, 2), {"dilation": 2, "padding": (1, 0)}),
    (2, (1, 4, 4, 4), 2, (3, 3), {"groups": 2, "padding": "same"}),
    (2, (2, 3, 4, 4), 3, (2, 2), {"groups": 3, "bias": False}),
    (1, (2, 2, 7), 3, (3,), {"stride": 2, "padding": 1}),
    (1, (1, 4, 6), 2, (2,), {"groups": 2, "dilation": 2, "padding": "same"}),
]


@pytest.mark.parametrize("case", SMALL, ids=case_id)
def test_conv_gradcheck(case, rng):
    d, *_ = case
    x, w, b, kw = make(rng, *case)
    f = conv_fn(d)
    if b is None:
        gradcheck(lambda x, w: f(x, w, None, **kw), [x, w])
    else:
        gradcheck(lambda x, w, b: f(x, w, b, **kw), [x, w, b])


@pytest.mark.parametrize("case", [SMALL[1], SMALL[3], SMALL[5]], ids=case_id)
def test_conv_second_order(case, rng):
    """Conv is bilinear in (x, w): the mixed second derivatives go through fold's backward (unfold)."""
    d, *_ = case
    x, w, b, kw = make(rng, *case)
    f = conv_fn(d)
    gradcheck(lambda x, w, b: pd.tanh(f(x, w, b, **kw)), [x, w, b], order=2)


def test_gradcheck_catches_a_wrong_gradient(rng):
    """A gradient that drops the last kernel position must fail the check (the harness can fail)."""
    x = rng.normal(size=(1, 1, 4, 4))
    w = rng.normal(size=(1, 1, 2, 2))
    mask = np.ones((1, 1, 2, 2))
    mask[..., 1, 1] = 0

    def leaky(x):  # same forward, gradient w.r.t. x missing one tap
        return conv2d(x, w * mask) + conv2d(x.detach(), w * (1 - mask))

    with pytest.raises(GradcheckError):
        gradcheck(leaky, [x])


def test_conv_device(device, rng):
    x, w, b = rng.normal(size=(2, 4, 6, 5)), rng.normal(size=(4, 2, 3, 3)), rng.normal(size=4)
    xt, wt, bt = (pd.tensor(a, device=device, requires_grad=True) for a in (x, w, b))
    out = conv2d(xt, wt, bt, padding=1, groups=2)
    (out * out).sum().backward()
    np.testing.assert_allclose(out.numpy(), ref_conv(x, w, b, padding=1, groups=2), rtol=1e-10, atol=1e-12)
    assert xt.grad.device == device and wt.grad.shape == w.shape


def test_float32_stays_float32(rng):
    x = pd.tensor(rng.normal(size=(1, 2, 5, 5)).astype(np.float32))
    w = pd.tensor(rng.normal(size=(3, 2, 3, 3)).astype(np.float32))
    assert conv2d(x, w, padding=1).dtype == np.float32


# ------------------------------------------------------------------ unfold and fold
UNFOLD = [
    ((3, 3), (1, 1), (0, 0), (1, 1)),
    ((2, 3), (2, 1), (1, 0), (1, 2)),
    ((3, 2), (1, 3), (2, 1), (2, 1)),
    ((1, 1), (2, 2), (0, 0), (1, 1)),
]


@pytest.mark.parametrize("kernel,stride,padding,dilation", UNFOLD)
def test_unfold_matches_loops(kernel, stride, padding, dilation, rng):
    x = rng.normal(size=(2, 3, 7, 6))
    got = unfold(x, kernel, stride, padding, dilation)
    np.testing.assert_array_equal(got.numpy(), ref_unfold(x, kernel, stride, padding, dilation))


def test_unfold_is_a_read_only_view(rng):
    x = pd.tensor(rng.normal(size=(2, 3, 6, 6)))
    u = unfold(x, 3, stride=2)
    assert u.shape == (2, 3, 2, 2, 3, 3)
    assert np.shares_memory(u.data, x.data) and not u.data.flags.writeable


@pytest.mark.parametrize("kernel,stride,padding,dilation", UNFOLD)
def test_fold_is_the_adjoint_of_unfold(kernel, stride, padding, dilation, rng):
    """<unfold(x), y> = <x, fold(y)> for every x, y: fold is unfold's transpose."""
    x = rng.normal(size=(2, 3, 7, 6))
    u = unfold(x, kernel, stride, padding, dilation)
    y = rng.normal(size=u.shape)
    folded = fold(y, (7, 6), kernel, stride, padding, dilation)
    assert folded.shape == x.shape
    np.testing.assert_allclose((u.numpy() * y).sum(), (x * folded.numpy()).sum(), rtol=1e-12)


def test_fold_counts_overlaps(rng):
    """Folding unfolded ones counts how many windows cover each input position."""
    ones = np.ones((1, 1, 4, 5))
    counts = fold(unfold(ones, 3, padding=1), (4, 5), 3, padding=1).numpy()[0, 0]
    rows = np.array([2, 3, 3, 2])[:, None]
    cols = np.array([2, 3, 3, 3, 2])[None, :]
    np.testing.assert_array_equal(counts, rows * cols)


@pytest.mark.parametrize("kernel,stride,padding,dilation", UNFOLD[:3])
def test_unfold_fold_gradcheck(kernel, stride, padding, dilation, rng):
    x = rng.normal(size=(1, 2, 5, 6))
    gradcheck(lambda x: unfold(x, kernel, stride, padding, dilation), [x])
    shape = unfold(x, kernel, stride, padding, dilation).shape
    gradcheck(lambda y: fold(y, (5, 6), kernel, stride, padding, dilation), [rng.normal(size=shape)])


def test_unfold_fold_second_order(rng):
    x = rng.normal(size=(1, 1, 4, 5))
    gradcheck(lambda x: pd.sin(unfold(x, (2, 3), 1, 1, (1, 2))).sum(axis=(-1, -2)), [x], order=2)
    y = rng.normal(size=unfold(x, 2, 2, 1).shape)
    gradcheck(lambda y: pd.sin(fold(y, (4, 5), 2, 2, 1)), [y], order=2)


def test_unfold_general_dims(rng):
    """A tuple kernel slides over the last len(kernel) dims: 1-D and 3-D windows."""
    x = rng.normal(size=(2, 9))
    u = unfold(x, (3,), stride=2, padding=1)
    padded = np.pad(x, ((0, 0), (1, 1)))
    np.testing.assert_array_equal(u.numpy(), np.stack([padded[:, i:i + 3] for i in range(0, 9, 2)], axis=1))
    v = rng.normal(size=(1, 4, 5, 6))
    u3 = unfold(v, (2, 2, 3), stride=(1, 2, 3))
    assert u3.shape == (1, 3, 2, 2, 2, 2, 3)
    np.testing.assert_array_equal(u3.numpy()[0, 2, 1, 1], v[0, 2:4, 2:4, 3:6])


# ------------------------------------------------------------------ layers
@pytest.mark.parametrize("cls,args,kw", [
    (Conv2d, (3, 6, 3), {}),
    (Conv2d, (4, 8, (2, 3)), {"groups": 4, "bias": False}),
    (Conv1d, (5, 2, 4), {}),
])
def test_layer_default_init_bounds(cls, args, kw):
    layer = cls(*args, **kw, rng=0)
    fan_in = (args[0] // kw.get("groups", 1)) * math.prod(layer.kernel_size)
    bound = 1 / math.sqrt(fan_in)
    w = layer.weight.numpy()
    assert w.shape == (args[1], args[0] // kw.get("groups", 1)) + layer.kernel_size
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.5 * bound
    if layer.bias is not None:
        assert layer.bias.shape == (args[1],) and np.abs(layer.bias.numpy()).max() <= bound


def test_layer_init_distribution():
    """Many draws: U(-b, b) with b = 1/√fan_in has its extremes near ±b and variance b²/3."""
    layer = Conv2d(16, 64, 3, rng=1)
    b = 1 / math.sqrt(16 * 9)
    w = layer.weight.numpy().ravel()
    assert np.abs(w).max() <= b and np.abs(w).max() > 0.99 * b
    assert abs(w.var() - b ** 2 / 3) < 0.05 * b ** 2 / 3
    assert abs(w.mean()) < 4 * b / math.sqrt(3 * w.size)


def test_layer_forward_reproducible_and_parameters(rng):
    a, b = Conv2d(2, 3, 3, padding=1, rng=7), Conv2d(2, 3, 3, padding=1, rng=7)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    assert [n for n, _ in a.named_parameters()] == ["weight", "bias"]
    x = rng.normal(size=(2, 2, 5, 5))
    np.testing.assert_allclose(a(x).numpy(), ref_conv(x, a.weight.numpy(), a.bias.numpy(), padding=1), rtol=1e-12,
                               atol=1e-14)
    out = a(pd.tensor(x))
    out.sum().backward()
    assert a.weight.grad.shape == (3, 2, 3, 3) and a.bias.grad.shape == (3,)
    np.testing.assert_allclose(a.bias.grad.numpy(), np.full(3, 2 * 25.0))


def test_layer_repr():
    assert repr(Conv2d(1, 32, 3)) == "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1))"
    assert (repr(Conv2d(4, 8, (3, 5), stride=2, padding=1, dilation=2, groups=2, bias=False))
            == "Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), dilation=(2, 2), groups=2, "
               "bias=False)")
    assert repr(Conv1d(2, 4, 3, padding="same")) == "Conv1d(2, 4, kernel_size=(3,), stride=(1,), padding=same)"


# ------------------------------------------------------------------ PyTorch as an oracle
@pytest.mark.filterwarnings("ignore:Using padding='same'")  # PyTorch's note on even kernels
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv_matches_torch(case, rng, torch):
    F = torch.nn.functional
    d, *_ = case
    x, w, b, kw = make(rng, *case)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    ref = (F.conv1d if d == 1 else F.conv2d)(tx, tw, tb, **kw)
    g = rng.normal(size=tuple(ref.shape))
    ref.backward(torch.tensor(g))
    px, pw = pd.tensor(x, requires_grad=True), pd.tensor(w, requires_grad=True)
    pb = None if b is None else pd.tensor(b, requires_grad=True)
    out = conv_fn(d)(px, pw, pb, **kw)
    out.backward(pd.tensor(g))
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(pw.grad.numpy(), tw.grad.numpy(), rtol=1e-10, atol=1e-10)
    if b is not None:
        np.testing.assert_allclose(pb.grad.numpy(), tb.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_unfold_matches_torch_unfold(rng, torch):
    """PyTorch's F.unfold holds the same numbers as (N, C·kh·kw, Ho·Wo)."""
    x = rng.normal(size=(2, 3, 7, 6))
    for kernel, stride, padding, dilation in UNFOLD:
        ours = unfold(x, kernel, stride, padding, dilation).numpy()
        n, c, ho, wo, kh, kw = ours.shape
        theirs = torch.nn.functional.unfold(torch.tensor(x), kernel, dilation, padding, stride).numpy()
        np.testing.assert_array_equal(ours.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, ho * wo), theirs)


@pytest.mark.parametrize("cls,args,kw", [
    ("Conv2d", (3, 6, 3), {}),
    ("Conv2d", (4, 8, (2, 3)), {"groups": 4}),
    ("Conv1d", (5, 2, 4), {"stride": 2, "padding": 1, "dilation": 2}),
    ("Conv2d", (2, 4, 3), {"padding": "same", "bias": False}),
])
def test_layer_init_and_repr_match_torch(cls, args, kw, torch):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, cls)(*args, **kw).double()
    ours = {"Conv1d": Conv1d, "Conv2d": Conv2d}[cls](*args, **kw, rng=0)
    assert repr(ours) == repr(theirs)
    assert ours.weight.shape == tuple(theirs.weight.shape)
    w_t = theirs.weight.detach().numpy()
    fan_in = w_t[0].size
    bound = 1 / math.sqrt(fan_in)
    # the same bound for both: every draw inside it, the largest of them near it
    for w in (ours.weight.numpy(), w_t):
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.3 * bound
    if theirs.bias is not None:
        for b in (ours.bias.numpy(), theirs.bias.detach().numpy()):
            assert np.abs(b).max() <= bound
    # with the weights copied over, the layers compute the same function
    ours.weight.data[...] = w_t
    if theirs.bias is not None:
        ours.bias.data[...] = theirs.bias.detach().numpy()
    shape = (2, args[0]) + (7,) * (2 if cls == "Conv2d" else 1)
    x = np.random.default_rng(3).normal(size=shape)
    np.testing.assert_allclose(ours(x).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-10)


def test_init_distribution_matches_torch(torch):
    """Both libraries draw the weight from U(-1/√fan_in, 1/√fan_in): compare extremes and spread."""
    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(8, 64, 3).weight.detach().numpy().ravel()
    ours = Conv2d(8, 64, 3, rng=0).weight.numpy().ravel()
    bound = 1 / math.sqrt(8 * 9)
    for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0):  # a quantile's standard error here is about 0.015 bound
        assert abs(np.quantile(ours, q) - np.quantile(theirs, q)) < 0.1 * bound


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call,message", [
    (lambda: conv2d(np.ones((2, 3, 5)), np.ones((4, 3, 3))), "weight must have shape"),
    (lambda: conv2d(np.ones((3, 5)), np.ones((4, 3, 3, 3))), "expected a 4-D input"),
    (lambda: conv2d(np.ones((1, 2, 3, 5, 5)), np.ones((4, 3, 3, 3))), "expected a 4-D input"),
    (lambda: conv1d(np.ones((2, 3, 4, 4)), np.ones((4, 3, 3))), "expected a 3-D input"),
    (lambda: conv2d(np.ones((1, 2, 5, 5)), np.ones((4, 3, 3, 3))), "the input has 2 channels"),
    (lambda: conv2d(np.ones((1, 4, 5, 5)), np.ones((3, 2, 3, 3)), groups=2), "divisible by groups=2"),
    (lambda: conv2d(np.ones((1, 6, 5, 5)), np.ones((4, 2, 3, 3)), groups=2), "the input has 6 channels"),
    (lambda: conv2d(np.ones((1, 4, 5, 5)), np.ones((4, 4, 3, 3)), groups=0), "groups must be a positive int"),
    (lambda: conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))), "larger than the padded input"),
    (lambda: conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 3)), dilation=3), "larger than the padded input"),
    (lambda: conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding="same", stride=2), "strided"),
    (lambda: conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding="full"), "'valid' or 'same'"),
    (lambda: conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding=-1), "non-negative"),
    (lambda: conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=0), "stride must be positive"),
    (lambda: conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=(1, 1, 1)), "tuple of 2 ints"),
    (lambda: conv2d(np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)), np.ones(3)), "bias must have shape (2,)"),
    (lambda: Conv2d(3, 4, 3, groups=2), "in_channels=3 must be divisible by groups=2"),
    (lambda: Conv2d(4, 3, 3, groups=2), "out_channels=3 must be divisible by groups=2"),
    (lambda: Conv2d(0, 3, 3), "in_channels must be a positive int"),
    (lambda: Conv1d(2, 3, 0), "kernel_size must be positive"),
    (lambda: Conv2d(2, 3, 3, stride=2, padding="same"), "strided"),
    (lambda: unfold(np.ones((5, 5)), 3), "(N, C, *spatial)"),
    (lambda: unfold(np.ones((1, 1, 2, 5)), 3), "larger than the padded input"),
    (lambda: unfold(np.ones(5), (3, 3)), "at least 2 dims"),
    (lambda: fold(np.ones((1, 1, 2, 2, 3, 3)), (5, 5), 3), "do not match output_size"),
])
def test_bad_input_messages(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)
