"""Pooling: values against explicit loops, gradients against finite differences, PyTorch as an oracle where it
is installed, and the messages for bad input."""
import itertools
import math

import numpy as np
import pytest

import probdl as pd
from probdl.nn.pooling import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    MaxPool2d,
    adaptive_avg_pool2d,
    avg_pool2d,
    max_pool2d,
)
from probdl.testing import gradcheck


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def distinct(rng, *shape):
    """Well-separated values: no ties, so max pooling is differentiable at the point checked."""
    return rng.permutation(math.prod(shape)).reshape(shape) * 0.5 + rng.uniform(0, 0.1, size=shape)


# ------------------------------------------------------------------ the obviously-correct references
def out_size(n, k, s, p, dl, ceil_mode):
    """PyTorch's pooling output length, ceil_mode's rule included."""
    num = n + 2 * p - dl * (k - 1) - 1
    o = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def ref_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, mode="max",
             count_include_pad=True, divisor_override=None):
    """Pooling by loops over output positions; each window lists the input positions it covers."""
    k, s = pair(kernel_size), pair(stride if stride is not None else kernel_size)
    p, dl = pair(padding), pair(dilation)
    h, w = x.shape[-2:]
    oh, ow = (out_size(n, *a, ceil_mode) for n, a in zip((h, w), zip(k, s, p, dl)))
    y = np.zeros(x.shape[:-2] + (oh, ow))
    for i, j in itertools.product(range(oh), range(ow)):
        rows = [i * s[0] - p[0] + a * dl[0] for a in range(k[0])]
        cols = [j * s[1] - p[1] + b * dl[1] for b in range(k[1])]
        inside = [(r, c) for r in rows for c in cols if 0 <= r < h and 0 <= c < w]
        vals = np.stack([x[..., r, c] for r, c in inside], axis=-1)
        if mode == "max":
            y[..., i, j] = vals.max(axis=-1)
            continue
        if divisor_override:
            div = divisor_override
        elif count_include_pad:  # the window clipped to the padded input [-p, n + p)
            div = ((min(rows[-1] + 1, h + p[0]) - rows[0]) * (min(cols[-1] + 1, w + p[1]) - cols[0]))
        else:
            div = len(inside)
        y[..., i, j] = vals.sum(axis=-1) / div
    return y


def ref_adaptive(x, output_size):
    oh, ow = pair(output_size)
    oh, ow = oh or x.shape[-2], ow or x.shape[-1]
    h, w = x.shape[-2:]
    y = np.zeros(x.shape[:-2] + (oh, ow))
    for i, j in itertools.product(range(oh), range(ow)):
        r0, r1 = math.floor(i * h / oh), math.ceil((i + 1) * h / oh)
        c0, c1 = math.floor(j * w / ow), math.ceil((j + 1) * w / ow)
        y[..., i, j] = x[..., r0:r1, c0:c1].mean(axis=(-2, -1))
    return y


MAX_CASES = [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 1},
    {"kernel_size": (2, 3), "stride": (1, 2)},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": (3, 2), "stride": 2, "padding": (1, 0), "dilation": (1, 2)},
    {"kernel_size": 2, "stride": 2, "dilation": 2, "padding": 1},
    {"kernel_size": 3, "stride": 2, "ceil_mode": True},
    {"kernel_size": 2, "stride": 3, "padding": 1, "ceil_mode": True},
    {"kernel_size": (2, 3), "stride": (2, 2), "padding": (1, 1), "dilation": (2, 1), "ceil_mode": True},
]
AVG_CASES = [
    {"kernel_size": 2},
    {"kernel_size": (2, 3), "stride": (1, 2)},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
    {"kernel_size": 3, "stride": 2, "ceil_mode": True},
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": (2, 3), "stride": 3, "padding": 1, "ceil_mode": True, "count_include_pad": False},
    {"kernel_size": 2, "stride": 1, "padding": 1, "divisor_override": 3},
]
ADAPTIVE_SIZES = [(3, 4), 2, (6, 8), (4, 5), (5, 3), (None, 3), (8, 11), 1]


def kw_id(kw):
    return ",".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("kw", MAX_CASES, ids=kw_id)
def test_max_pool_matches_loops(kw, rng):
    x = rng.normal(size=(2, 3, 7, 8))
    np.testing.assert_array_equal(max_pool2d(x, **kw).numpy(), ref_pool(x, **kw))
    np.testing.assert_array_equal(max_pool2d(x[0], **kw).numpy(), ref_pool(x[0], **kw))  # unbatched


@pytest.mark.parametrize("kw", AVG_CASES, ids=kw_id)
def test_avg_pool_matches_loops(kw, rng):
    x = rng.normal(size=(2, 3, 7, 8))
    np.testing.assert_allclose(avg_pool2d(x, **kw).numpy(), ref_pool(x, mode="avg", **kw), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(avg_pool2d(x[1], **kw).numpy(), ref_pool(x[1], mode="avg", **kw), rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("size", ADAPTIVE_SIZES, ids=str)
def test_adaptive_avg_pool_matches_loops(size, rng):
    x = rng.normal(size=(2, 3, 6, 8))
    np.testing.assert_allclose(adaptive_avg_pool2d(x, size).numpy(), ref_adaptive(x, size), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(adaptive_avg_pool2d(x[0], size).numpy(), ref_adaptive(x[0], size), rtol=1e-12,
                               atol=1e-14)


def test_count_include_pad_and_ceil_mode_change_the_answer(rng):
    """The options are not ignored: each changes the result on an input where it matters."""
    x = rng.normal(size=(1, 1, 5, 5)) + 3
    base = avg_pool2d(x, 3, 2, padding=1).numpy()
    assert not np.allclose(base, avg_pool2d(x, 3, 2, padding=1, count_include_pad=False).numpy())
    assert max_pool2d(x, 2, ceil_mode=True).shape == (1, 1, 3, 3) and max_pool2d(x, 2).shape == (1, 1, 2, 2)
    # a corner window of the padded input covers 4 of its 9 places with input: the two divisors differ by 9/4
    corner = avg_pool2d(x, 3, 2, padding=1).numpy()[0, 0, 0, 0]
    np.testing.assert_allclose(corner, x[0, 0, :2, :2].sum() / 9)
    np.testing.assert_allclose(avg_pool2d(x, 3, 2, 1, count_include_pad=False).numpy()[0, 0, 0, 0],
                               x[0, 0, :2, :2].sum() / 4)


@pytest.mark.parametrize("kw", MAX_CASES, ids=kw_id)
def test_max_pool_indices_point_at_the_maxima(kw, rng):
    x = rng.normal(size=(2, 3, 7, 8))
    out, idx = max_pool2d(x, **kw, return_indices=True)
    planes = x.reshape(2, 3, -1)
    picked = np.take_along_axis(planes, idx.numpy().reshape(2, 3, -1), axis=-1).reshape(out.shape)
    np.testing.assert_array_equal(picked, out.numpy())
    layer_out, layer_idx = MaxPool2d(**kw, return_indices=True)(x)
    np.testing.assert_array_equal(layer_idx.numpy(), idx.numpy())


def test_max_pool_padding_is_never_the_max():
    x = -np.arange(1.0, 17.0).reshape(1, 1, 4, 4)  # all negative: zero padding would win every border window
    out = max_pool2d(x, 2, 2, padding=1).numpy()
    assert (out < 0).all()
    np.testing.assert_array_equal(out[0, 0], ref_pool(x, 2, 2, 1)[0, 0])


@pytest.mark.parametrize("kw", MAX_CASES[::2] + MAX_CASES[7:8], ids=kw_id)
def test_max_pool_gradcheck(kw, rng):
    gradcheck(lambda x: max_pool2d(x, **kw), [distinct(rng, 1, 2, 5, 6)])


@pytest.mark.parametrize("kw", AVG_CASES[1::2] + AVG_CASES[-1:], ids=kw_id)
def test_avg_pool_gradcheck(kw, rng):
    gradcheck(lambda x: avg_pool2d(x, **kw), [rng.normal(size=(1, 2, 5, 6))])


@pytest.mark.parametrize("size", [(2, 3), (3, 4), (4, 1)], ids=str)
def test_adaptive_avg_pool_gradcheck(size, rng):
    gradcheck(lambda x: adaptive_avg_pool2d(x, size), [rng.normal(size=(1, 2, 4, 6))])


def test_pooling_second_order(rng):
    gradcheck(lambda x: pd.sin(max_pool2d(x, 3, 2, padding=1)), [distinct(rng, 1, 1, 5, 5)], order=2)
    gradcheck(lambda x: pd.sin(avg_pool2d(x, 3, 2, padding=1, ceil_mode=True)), [rng.normal(size=(1, 1, 5, 4))],
              order=2)
    gradcheck(lambda x: pd.sin(adaptive_avg_pool2d(x, (2, 3))), [rng.normal(size=(1, 1, 3, 4))], order=2)


def test_max_pool_ties_share_the_gradient():
    x = pd.tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((1, 1, 4, 4), 0.25))
    # overlapping windows add their shares
    y = pd.tensor(np.array([[[[1.0, 1.0, 0.0]]]]), requires_grad=True)
    max_pool2d(y, (1, 2), stride=1).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [[[[0.5, 1.5, 0.0]]]])


def test_pooling_device(device, rng):
    x = pd.tensor(distinct(rng, 2, 3, 6, 7), device=device, requires_grad=True)
    out = max_pool2d(x, 3, 2, 1).sum() + avg_pool2d(x, 2, ceil_mode=True).sum() + adaptive_avg_pool2d(x, 4).sum()
    out.backward()
    assert x.grad.device == device
    expected = (ref_pool(x.numpy(), 3, 2, 1).sum() + ref_pool(x.numpy(), 2, ceil_mode=True, mode="avg").sum()
                + ref_adaptive(x.numpy(), 4).sum())
    np.testing.assert_allclose(out.item(), expected, rtol=1e-12)


def test_layers_and_repr(rng):
    x = rng.normal(size=(2, 3, 6, 7))
    np.testing.assert_array_equal(MaxPool2d(2)(x).numpy(), ref_pool(x, 2))
    np.testing.assert_allclose(AvgPool2d(3, 2, 1, count_include_pad=False)(x).numpy(),
                               ref_pool(x, 3, 2, 1, mode="avg", count_include_pad=False), rtol=1e-12)
    np.testing.assert_allclose(AdaptiveAvgPool2d((4, None))(x).numpy(), ref_adaptive(x, (4, None)), rtol=1e-12)
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(AvgPool2d(3, 2, 1)) == "AvgPool2d(kernel_size=3, stride=2, padding=1)"
    assert repr(AdaptiveAvgPool2d((3, None))) == "AdaptiveAvgPool2d(output_size=(3, None))"
    assert list(MaxPool2d(2).parameters()) == []


# ------------------------------------------------------------------ PyTorch as an oracle
def _against_torch(torch, ours, theirs, x, g):
    px = pd.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    out, ref = ours(px), theirs(tx)
    out.backward(pd.tensor(g))
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kw", MAX_CASES, ids=kw_id)
def test_max_pool_matches_torch(kw, rng, torch):
    x = distinct(rng, 2, 3, 7, 8)
    g = rng.normal(size=ref_pool(x, **kw).shape)
    _against_torch(torch, lambda t: max_pool2d(t, **kw), lambda t: torch.nn.functional.max_pool2d(t, **kw), x, g)


@pytest.mark.parametrize("kw", AVG_CASES, ids=kw_id)
def test_avg_pool_matches_torch(kw, rng, torch):
    x = rng.normal(size=(2, 3, 7, 8))
    g = rng.normal(size=ref_pool(x, mode="avg", **kw).shape)
    _against_torch(torch, lambda t: avg_pool2d(t, **kw), lambda t: torch.nn.functional.avg_pool2d(t, **kw), x, g)


@pytest.mark.parametrize("size", ADAPTIVE_SIZES, ids=str)
def test_adaptive_avg_pool_matches_torch(size, rng, torch):
    x = rng.normal(size=(2, 3, 6, 8))
    g = rng.normal(size=ref_adaptive(x, size).shape)
    _against_torch(torch, lambda t: adaptive_avg_pool2d(t, size),
                   lambda t: torch.nn.functional.adaptive_avg_pool2d(t, size), x, g)
    _against_torch(torch, lambda t: adaptive_avg_pool2d(t, size),
                   lambda t: torch.nn.functional.adaptive_avg_pool2d(t, size), x[0], g[0])  # unbatched


@pytest.mark.parametrize("kw", MAX_CASES, ids=kw_id)
def test_max_pool_indices_match_torch(kw, rng, torch):
    x = np.round(rng.normal(size=(2, 3, 7, 8)), 0)  # many ties: both pick the first maximum
    out, idx = max_pool2d(x, **kw, return_indices=True)
    ref, ref_idx = torch.nn.functional.max_pool2d(torch.tensor(x), **kw, return_indices=True)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())
    assert idx.dtype == np.int64


def test_max_pool_ties_differ_from_torch_only_in_how_they_split(torch):
    """At a tie PyTorch sends the whole gradient to one element and we share it; per window the total agrees."""
    x = np.ones((1, 1, 4, 4))
    px, tx = pd.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    max_pool2d(px, 2).sum().backward()
    torch.nn.functional.max_pool2d(tx, 2).sum().backward()
    ours, theirs = px.grad.numpy(), tx.grad.numpy()
    assert not np.allclose(ours, theirs)
    np.testing.assert_allclose(ours.reshape(2, 2, 2, 2).sum(axis=(1, 3)), theirs.reshape(2, 2, 2, 2).sum(axis=(1, 3)))


def test_layer_reprs_match_torch(torch):
    pairs = [(MaxPool2d(2), torch.nn.MaxPool2d(2)),
             (MaxPool2d((2, 3), 1, 1, 2, False, True), torch.nn.MaxPool2d((2, 3), 1, 1, 2, False, True)),
             (AvgPool2d(3, 2, 1), torch.nn.AvgPool2d(3, 2, 1)),
             (AdaptiveAvgPool2d((3, None)), torch.nn.AdaptiveAvgPool2d((3, None)))]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call,message", [
    (lambda: max_pool2d(np.ones((4, 4)), 2), "expected a 4-D input"),
    (lambda: avg_pool2d(np.ones((1, 1, 1, 4, 4)), 2), "expected a 4-D input"),
    (lambda: adaptive_avg_pool2d(np.ones((4, 4)), 2), "expected a 4-D input"),
    (lambda: max_pool2d(np.ones((1, 1, 4, 4)), 3, padding=2), "at most half of the kernel size"),
    (lambda: avg_pool2d(np.ones((1, 1, 4, 4)), 2, padding=2), "at most half of the kernel size"),
    (lambda: max_pool2d(np.ones((1, 1, 4, 4)), 5), "larger than the padded input"),
    (lambda: avg_pool2d(np.ones((1, 1, 4, 4)), (2, 7), padding=1), "larger than the padded input"),
    (lambda: max_pool2d(np.ones((1, 1, 4, 4)), 2, stride=0), "stride must be positive"),
    (lambda: max_pool2d(np.ones((1, 1, 4, 4)), 0), "kernel_size must be positive"),
    (lambda: max_pool2d(np.ones((1, 1, 4, 4)), (2, 2, 2)), "tuple of 2 ints"),
    (lambda: avg_pool2d(np.ones((1, 1, 4, 4)), 2, divisor_override=0), "divisor_override"),
    (lambda: adaptive_avg_pool2d(np.ones((1, 1, 4, 4)), 0), "positive int"),
    (lambda: adaptive_avg_pool2d(np.ones((1, 1, 4, 4)), (2, 2, 2)), "pair of positive ints"),
    (lambda: adaptive_avg_pool2d(np.ones((1, 1, 0, 4)), 2), "non-empty"),
    (lambda: MaxPool2d(-1), "kernel_size must be positive"),
    (lambda: AvgPool2d((2, 0)), "kernel_size must be positive"),
])
def test_bad_input_messages(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)
