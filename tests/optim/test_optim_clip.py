"""Gradient clipping (clip_grad_norm_, clip_grad_value_) and ClippedAdam's clipping and decay."""
import math

import numpy as np
import pytest

import probdl as pd
from probdl import optim


def with_grads(*grads, dtype=None):
    params = []
    for g in grads:
        p = pd.zeros(np.shape(g), dtype=dtype, requires_grad=True)
        p.grad = None if g is None else pd.tensor(g, dtype=dtype)
        params.append(p)
    return params


# ------------------------------------------------------------------ clip_grad_norm_
def test_clip_grad_norm_scales_to_max_norm():
    a, b, c = with_grads([3.0, 4.0], [[12.0]], None)  # total 2-norm: √(9 + 16 + 144) = 13
    total = optim.clip_grad_norm_([a, b, c], max_norm=6.5)
    assert isinstance(total, pd.Tensor) and total.shape == () and total.item() == pytest.approx(13.0, rel=1e-15)
    coef = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad.numpy(), [3 * coef, 4 * coef], rtol=1e-15)
    np.testing.assert_allclose(b.grad.numpy(), [[12 * coef]], rtol=1e-15)
    assert c.grad is None
    new_norm = math.sqrt((a.grad.numpy() ** 2).sum() + (b.grad.numpy() ** 2).sum())
    assert new_norm == pytest.approx(6.5, rel=1e-6)


def test_clip_grad_norm_leaves_small_gradients_alone():
    a, b = with_grads([3.0, 4.0], [[12.0]])
    total = optim.clip_grad_norm_([a, b], max_norm=13.01)
    assert total.item() == pytest.approx(13.0)
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(b.grad.numpy(), [[12.0]])


@pytest.mark.parametrize("norm_type, total", [(1.0, 19.0), (3.0, (27 + 64 + 1728) ** (1 / 3)), (math.inf, 12.0),
                                               ("inf", 12.0)])
def test_clip_grad_norm_other_norms(norm_type, total):
    a, b = with_grads([3.0, -4.0], [[-12.0]])
    got = optim.clip_grad_norm_([a, b], max_norm=2.0, norm_type=norm_type)
    assert got.item() == pytest.approx(total, rel=1e-14)
    coef = 2.0 / (total + 1e-6)
    np.testing.assert_allclose(a.grad.numpy(), [3 * coef, -4 * coef], rtol=1e-14)
    np.testing.assert_allclose(b.grad.numpy(), [[-12 * coef]], rtol=1e-14)


def test_clip_grad_norm_single_tensor_empty_and_float32():
    (a,) = with_grads([0.3, 0.4], dtype=pd.float32)
    total = optim.clip_grad_norm_(a, max_norm=0.25)
    assert total.dtype == np.float32 and a.grad.dtype == np.float32
    np.testing.assert_allclose(a.grad.numpy(), [0.15, 0.2], rtol=1e-5)
    assert optim.clip_grad_norm_(with_grads(None), 1.0).item() == 0.0
    assert optim.clip_grad_norm_([], 1.0).item() == 0.0


def test_clip_grad_norm_non_finite():
    a, b = with_grads([1.0, np.inf], [2.0])
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is inf.*error_if_nonfinite=False"):
        optim.clip_grad_norm_([a, b], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(b.grad.numpy(), [2.0])  # nothing was touched
    a, b = with_grads([1.0, np.nan], [2.0])
    with pytest.raises(RuntimeError, match="is nan"):
        optim.clip_grad_norm_([a, b], 1.0, error_if_nonfinite=True)
    total = optim.clip_grad_norm_([a, b], 1.0)  # as in PyTorch: the non-finite factor is applied
    assert math.isnan(total.item()) and np.isnan(b.grad.numpy()).all()


def test_clip_grad_norm_does_not_write_into_a_shared_gradient():
    (a,) = with_grads([30.0, 40.0])
    g = a.grad.data
    optim.clip_grad_norm_([a], 5.0)
    np.testing.assert_array_equal(g, [30.0, 40.0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_norm=-1.0), r"clip_grad_norm_: invalid max_norm=-1.0"),
    (dict(max_norm=float("nan")), r"invalid max_norm=nan"),
    (dict(max_norm=1.0, norm_type=0), r"clip_grad_norm_: invalid norm_type=0.0; expected a number > 0 or inf"),
])
def test_clip_grad_norm_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.clip_grad_norm_(with_grads([1.0]), **kwargs)


# ----------------------------------------------------------------- clip_grad_value_
def test_clip_grad_value():
    a, b, c = with_grads([-3.0, 0.5, 2.0], [[0.1, -0.2]], None)
    assert optim.clip_grad_value_([a, b, c], 1.0) is None
    np.testing.assert_array_equal(a.grad.numpy(), [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(b.grad.numpy(), [[0.1, -0.2]])
    (d,) = with_grads([5.0], dtype=pd.float32)
    optim.clip_grad_value_(d, 0.5)
    assert d.grad.dtype == np.float32 and d.grad.item() == 0.5
    with pytest.raises(ValueError, match=r"clip_grad_value_: invalid clip_value=-1.0; expected a number >= 0"):
        optim.clip_grad_value_([a], -1.0)


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5, math.inf])
def test_clip_grad_norm_matches_torch(norm_type):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    grads = [rng.normal(size=s) * 5 for s in [(4,), (2, 3), ()]]
    ours = with_grads(*grads)
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, g in zip(theirs, grads):
        p.grad = torch.tensor(g)
    t1 = optim.clip_grad_norm_(ours, 1.5, norm_type=norm_type)
    t2 = torch.nn.utils.clip_grad_norm_(theirs, 1.5, norm_type=norm_type)
    assert t1.item() == pytest.approx(t2.item(), rel=1e-13)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-13)
    optim.clip_grad_value_(ours, 0.1)
    torch.nn.utils.clip_grad_value_(theirs, 0.1)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-13)
        assert np.abs(p.grad.numpy()).max() <= 0.1


# ---------------------------------------------------------------------- ClippedAdam
GRADS = [[1e6, -3.0, 0.2], [2.0, 1e8, -0.4], [-5e5, 0.1, 7.0], [0.3, -0.3, 2e3]]


def clipped_adam_run(grads, **kwargs):
    x = pd.tensor([0.5, -1.0, 2.0], requires_grad=True)
    opt = optim.ClippedAdam([x], **kwargs)
    out = []
    for g in grads:
        x.grad = pd.tensor(g)
        opt.step()
        out.append(x.numpy().copy())
    return np.array(out)


def test_clipped_adam_clips_each_element():
    clip = 1.0
    huge = clipped_adam_run(GRADS, lr=0.1, clip_norm=clip)
    preclipped = clipped_adam_run(np.clip(GRADS, -clip, clip), lr=0.1, clip_norm=clip)
    np.testing.assert_array_equal(huge, preclipped)
    unclipped = clipped_adam_run(GRADS, lr=0.1, clip_norm=1e300)
    assert np.abs(unclipped - huge).max() > 1e-3  # the clipping changed the trajectory
    # the gradient itself is left as it was
    x = pd.tensor([0.0], requires_grad=True)
    x.grad = pd.tensor([50.0])
    optim.ClippedAdam([x], clip_norm=1.0).step()
    assert x.grad.item() == 50.0


def test_clipped_adam_decays_lr_every_step():
    x = pd.tensor([1.0, -1.0], requires_grad=True)
    opt = optim.ClippedAdam([x], lr=0.1, lrd=0.5, eps=0.0)
    for t in range(1, 5):
        before = x.numpy().copy()
        x.grad = pd.tensor([3.0, -2.0]) if t == 1 else None
        opt.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**t, rel=1e-15)
        if t == 1:  # the first Adam step is lr·sign(g), here with the already-decayed lr 0.05
            np.testing.assert_allclose(x.numpy() - before, [-0.05, 0.05], rtol=1e-14)
    # the rate decays even on steps without gradients, as in Pyro
    np.testing.assert_allclose(x.numpy(), [0.95, -0.95], rtol=1e-14)
