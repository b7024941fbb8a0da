"""BatchNorm1d/2d, LayerNorm and their functions: values against NumPy, running statistics, train/eval,
gradients against finite differences, errors, and PyTorch as an oracle when it is installed."""
import numpy as np
import pytest

import probdl as pd
from probdl.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm, batch_norm, layer_norm
from probdl.testing import gradcheck

EPS = 1e-5


def np_batch_norm(x, w, b, eps=EPS):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    m, v = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w.reshape(shape) + b.reshape(shape)


def with_params(module, names):
    """A function of (x, *params) that runs ``module`` with the given tensors as its parameters (for gradcheck)."""
    def f(x, *ps):
        for n, p in zip(names, ps):
            module._parameters[n] = p
        return module(x)
    return f


# ------------------------------------------------------------------ batch norm values
@pytest.mark.parametrize("cls,shape", [(BatchNorm1d, (6, 3)), (BatchNorm1d, (5, 3, 4)), (BatchNorm2d, (4, 3, 2, 5))])
def test_batchnorm_training_output_matches_numpy(cls, shape, rng):
    x = rng.normal(2.0, 3.0, size=shape)
    bn = cls(3)
    bn.weight.data[...] = rng.normal(size=3)
    bn.bias.data[...] = rng.normal(size=3)
    out = bn(pd.tensor(x))
    np.testing.assert_allclose(out.numpy(), np_batch_norm(x, bn.weight.numpy(), bn.bias.numpy()), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5)])
def test_running_stats_follow_numpy_over_batches(momentum, shape, rng):
    bn = BatchNorm1d(3, momentum=momentum)
    rm, rv = np.zeros(3), np.ones(3)
    batches = [rng.normal(k, 1 + k, size=shape) for k in range(5)]
    for k, x in enumerate(batches, start=1):
        bn(pd.tensor(x))
        axes = (0,) + tuple(range(2, x.ndim))
        factor = 1.0 / k if momentum is None else momentum
        rm = (1 - factor) * rm + factor * x.mean(axes)
        rv = (1 - factor) * rv + factor * x.var(axes, ddof=1)  # unbiased, as PyTorch
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-12)
    assert int(bn.num_batches_tracked.item()) == 5
    if momentum is None:  # cumulative average of the batch statistics
        np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([x.mean((0,) + tuple(range(2, x.ndim)))
                                                                     for x in batches], axis=0), rtol=1e-12)


def test_eval_uses_running_stats_and_leaves_them_alone(rng):
    bn = BatchNorm2d(2)
    for _ in range(3):
        bn(pd.tensor(rng.normal(1.0, 2.0, size=(4, 2, 3, 3))))
    rm, rv, count = bn.running_mean.numpy().copy(), bn.running_var.numpy().copy(), bn.num_batches_tracked.item()
    bn.weight.data[...] = [2.0, -1.0]
    bn.bias.data[...] = [0.5, 0.25]
    bn.eval()
    x = rng.normal(size=(1, 2, 3, 3))  # a batch of one is fine in evaluation
    out = bn(pd.tensor(x)).numpy()
    expected = (x - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + EPS) * np.array(
        [2.0, -1.0])[None, :, None, None] + np.array([0.5, 0.25])[None, :, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean.numpy(), rm)
    np.testing.assert_array_equal(bn.running_var.numpy(), rv)
    assert bn.num_batches_tracked.item() == count
    bn.train()
    assert not np.allclose(bn(pd.tensor(rng.normal(size=(4, 2, 3, 3)))).numpy()[:1], out)


def test_without_running_stats_eval_uses_the_batch(rng):
    bn = BatchNorm1d(3, track_running_stats=False, affine=False)
    assert bn.running_mean is None and bn.num_batches_tracked is None
    assert list(bn.state_dict()) == [] and list(bn.parameters()) == []
    x = rng.normal(size=(5, 3))
    train_out = bn(pd.tensor(x)).numpy()
    eval_out = bn.eval()(pd.tensor(x)).numpy()
    np.testing.assert_allclose(eval_out, train_out, rtol=0, atol=0)
    np.testing.assert_allclose(eval_out, np_batch_norm(x, np.ones(3), np.zeros(3)), rtol=1e-12)


def test_batchnorm_state_dict_and_repr():
    bn = BatchNorm2d(4, momentum=None)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert bn.num_batches_tracked.dtype == np.int64
    assert repr(bn) == "BatchNorm2d(4, eps=1e-05, momentum=None, affine=True, track_running_stats=True)"
    np.testing.assert_array_equal(bn.weight.numpy(), np.ones(4))
    np.testing.assert_array_equal(bn.running_var.numpy(), np.ones(4))


def test_reset_running_stats(rng):
    bn = BatchNorm1d(2)
    bn(pd.tensor(rng.normal(3.0, size=(4, 2))))
    bn.reset_running_stats()
    np.testing.assert_array_equal(bn.running_mean.numpy(), [0, 0])
    np.testing.assert_array_equal(bn.running_var.numpy(), [1, 1])
    assert bn.num_batches_tracked.item() == 0


# ------------------------------------------------------------------ batch norm gradients
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 3), (2, 2, 2, 2)])
def test_batch_norm_training_gradcheck(shape, rng):
    x, w, b = rng.normal(size=shape), rng.normal(size=shape[1]), rng.normal(size=shape[1])
    gradcheck(lambda x, w, b: batch_norm(x, None, None, w, b, training=True), [x, w, b], order=2)


def test_batch_norm_eval_gradcheck(rng):
    rm, rv = pd.tensor(rng.normal(size=3)), pd.tensor(rng.uniform(0.5, 2.0, size=3))
    x, w, b = rng.normal(size=(4, 3, 2)), rng.normal(size=3), rng.normal(size=3)
    gradcheck(lambda x, w, b: batch_norm(x, rm, rv, w, b, training=False), [x, w, b], order=2)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_module_gradcheck(training, rng):
    bn = BatchNorm2d(2)
    bn(pd.tensor(rng.normal(size=(3, 2, 2, 2))))  # non-trivial running statistics for eval mode
    bn.train(training)
    x = rng.normal(size=(3, 2, 2, 2))
    gradcheck(with_params(bn, ["weight", "bias"]), [x, rng.normal(size=2), rng.normal(size=2)])


def test_batch_norm_gradient_sums_to_zero_over_the_batch(rng):
    # The normalized output is invariant to shifting a channel, so dL/dx sums to zero over each channel.
    x = pd.tensor(rng.normal(size=(6, 3)), requires_grad=True)
    (batch_norm(x, None, None, training=True) * pd.tensor(rng.normal(size=(6, 3)))).sum().backward()
    np.testing.assert_allclose(x.grad.numpy().sum(0), 0, atol=1e-12)


# ------------------------------------------------------------------ layer norm
@pytest.mark.parametrize("shape,normalized", [((4, 5), 5), ((2, 3, 4), (3, 4)), ((2, 3, 4), [4])])
def test_layer_norm_matches_numpy(shape, normalized, rng):
    x = rng.normal(1.0, 2.0, size=shape)
    ln = LayerNorm(normalized)
    ns = ln.normalized_shape
    ln.weight.data[...] = rng.normal(size=ns)
    ln.bias.data[...] = rng.normal(size=ns)
    axes = tuple(range(x.ndim - len(ns), x.ndim))
    expected = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + EPS)
    expected = expected * ln.weight.numpy() + ln.bias.numpy()
    np.testing.assert_allclose(ln(pd.tensor(x)).numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ln.eval()(pd.tensor(x)).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_layer_norm_gradcheck(rng):
    x, w, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    gradcheck(lambda x, w, b: layer_norm(x, (3, 4), w, b), [x, w, b], order=2)
    ln = LayerNorm(4)
    gradcheck(with_params(ln, ["weight", "bias"]), [rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=4)])


def test_layer_norm_options():
    ln = LayerNorm((2, 3), eps=1e-3, elementwise_affine=False)
    assert ln.weight is None and list(ln.state_dict()) == []
    assert repr(ln) == "LayerNorm((2, 3), eps=0.001, elementwise_affine=False)"
    assert list(LayerNorm(3).state_dict()) == ["weight", "bias"]
    assert list(LayerNorm(3, bias=False).state_dict()) == ["weight"]


# ------------------------------------------------------------------ errors
def test_batchnorm_errors(rng):
    with pytest.raises(ValueError, match=r"expected 3 channels .* got input of shape \(4, 5\)"):
        BatchNorm1d(3)(pd.tensor(rng.normal(size=(4, 5))))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected 2-D \(N, C\) or 3-D \(N, C, L\) input, got 4-D"):
        BatchNorm1d(3)(pd.tensor(rng.normal(size=(2, 3, 2, 2))))
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4-D \(N, C, H, W\) input, got 3-D"):
        BatchNorm2d(3)(pd.tensor(rng.normal(size=(2, 3, 2))))
    bn = BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel when training"):
        bn(pd.tensor(rng.normal(size=(1, 3))))
    assert bn.num_batches_tracked.item() == 0  # a rejected batch is not counted
    bn.eval()(pd.tensor(rng.normal(size=(1, 3))))  # fine in evaluation
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm2d(2)(pd.tensor(rng.normal(size=(1, 2, 1, 1))))
    with pytest.raises(ValueError, match="num_features must be a positive int"):
        BatchNorm1d(0)
    with pytest.raises(ValueError, match="momentum must be in"):
        BatchNorm1d(3, momentum=1.5)


def test_functional_errors(rng):
    x = pd.tensor(rng.normal(size=(4, 3)))
    with pytest.raises(ValueError, match=r"batch_norm: running_mean has shape \(2,\), but the input .* 3 channels"):
        batch_norm(x, pd.zeros(2), pd.ones(2))
    with pytest.raises(ValueError, match="running_mean and running_var are needed when training=False"):
        batch_norm(x, None, None)
    with pytest.raises(ValueError, match="at least 2 dims"):
        batch_norm(pd.tensor(rng.normal(size=4)), None, None, training=True)
    with pytest.raises(ValueError, match=r"layer_norm: expected an input of shape \(\*, 4\)"):
        layer_norm(x, 4)
    with pytest.raises(ValueError, match=r"layer_norm: weight has shape \(4,\), expected normalized_shape \(3,\)"):
        layer_norm(x, 3, pd.ones(4))
    with pytest.raises(ValueError, match="normalized_shape must be a positive int"):
        LayerNorm(())


# ------------------------------------------------------------------ PyTorch as an oracle
def _copy_to_torch(module, torch_module, torch):
    torch_module.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in module.state_dict().items()})


@pytest.mark.parametrize("cls,shape,momentum", [("BatchNorm1d", (5, 3), 0.1), ("BatchNorm1d", (4, 3, 6), None),
                                                ("BatchNorm2d", (3, 3, 4, 2), 0.25)])
def test_batchnorm_matches_torch(cls, shape, momentum, rng):
    torch = pytest.importorskip("torch")
    ours = {"BatchNorm1d": BatchNorm1d, "BatchNorm2d": BatchNorm2d}[cls](3, momentum=momentum)
    theirs = getattr(torch.nn, cls)(3, momentum=momentum).double()
    ours.weight.data[...] = rng.normal(size=3)
    ours.bias.data[...] = rng.normal(size=3)
    _copy_to_torch(ours, theirs, torch)
    for step in range(4):
        if step == 3:
            ours.eval()
            theirs.eval()
        x = rng.normal(step, 1 + step, size=shape)
        probe = rng.normal(size=shape)
        xo, xt = pd.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yo, yt = ours(xo), theirs(xt)
        (yo * pd.tensor(probe)).sum().backward()
        (yt * torch.from_numpy(probe)).sum().backward()
        np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-10)
        for name in ("weight", "bias"):
            np.testing.assert_allclose(getattr(ours, name).grad.numpy(), getattr(theirs, name).grad.numpy(),
                                       rtol=1e-10, atol=1e-10)
            getattr(ours, name).grad = None
            getattr(theirs, name).grad = None
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(theirs, name).numpy(), rtol=1e-10)
        assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item()
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_layernorm_matches_torch(rng):
    torch = pytest.importorskip("torch")
    ours, theirs = LayerNorm((3, 4)), torch.nn.LayerNorm((3, 4)).double()
    ours.weight.data[...] = rng.normal(size=(3, 4))
    ours.bias.data[...] = rng.normal(size=(3, 4))
    _copy_to_torch(ours, theirs, torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x, probe = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    xo, xt = pd.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yo, yt = ours(xo), theirs(xt)
    (yo * pd.tensor(probe)).sum().backward()
    (yt * torch.from_numpy(probe)).sum().backward()
    np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_float32_stays_float32(rng):
    bn = BatchNorm1d(3, dtype=np.float32)
    x = pd.tensor(rng.normal(size=(4, 3)), dtype=pd.float32)
    assert bn(x).dtype == np.float32 and bn.running_var.dtype == np.float32
    assert bn.eval()(x).dtype == np.float32
    assert LayerNorm(3, dtype=np.float32)(x).dtype == np.float32
