"""Losses against NumPy formulas, against PyTorch when it is importable, and by gradcheck."""
import numpy as np
import pytest

import probdl as pd
from probdl import nn
from probdl.nn import losses as L
from probdl.testing import gradcheck


def log_softmax(x, axis):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


@pytest.fixture
def data(rng):
    return {"x": rng.normal(size=(6, 4)), "y": rng.integers(0, 4, size=6), "w": rng.uniform(0.5, 2, size=4),
            "a": rng.normal(size=(5, 3)), "b": rng.normal(size=(5, 3))}


def test_cross_entropy_matches_the_smoothed_weighted_formula(data):
    x, y, w = data["x"], data["y"].copy(), data["w"]
    y[2] = -100  # ignored
    eps, C = 0.2, 4
    lp = log_softmax(x, 1)
    keep = y != -100
    yi = np.where(keep, y, 0)
    nll = -(lp[np.arange(6), yi] * w[yi] * keep).sum() / (w[yi] * keep).sum()
    smooth = -((lp * w).sum(1) * keep).sum() / (w[yi] * keep).sum()
    expected = (1 - eps) * nll + eps / C * smooth
    assert L.cross_entropy(x, y, weight=w, label_smoothing=eps).item() == pytest.approx(expected, rel=1e-12)
    plain = -lp[np.arange(6)[keep], y[keep]].mean()
    assert nn.CrossEntropyLoss()(x, y).item() == pytest.approx(plain, rel=1e-12)
    np.testing.assert_allclose(L.cross_entropy(x, y, reduction="none").numpy(), -lp[np.arange(6), yi] * keep)


def test_cross_entropy_with_probability_targets_and_spatial_dims(rng):
    x, p = rng.normal(size=(5, 3)), rng.dirichlet(np.ones(3), size=5)
    assert L.cross_entropy(x, p).item() == pytest.approx(-(p * log_softmax(x, 1)).sum(1).mean(), rel=1e-12)
    x3, y3 = rng.normal(size=(2, 3, 4)), rng.integers(0, 3, size=(2, 4))
    lp = log_softmax(x3, 1)
    ref = -np.take_along_axis(lp, y3[:, None], 1).mean()
    assert L.cross_entropy(x3, y3).item() == pytest.approx(ref, rel=1e-12)


def test_regression_losses_match_numpy(data):
    a, b = data["a"], data["b"]
    d = a - b
    assert L.mse_loss(a, b).item() == pytest.approx((d ** 2).mean(), rel=1e-12)
    assert nn.L1Loss("sum")(a, b).item() == pytest.approx(np.abs(d).sum(), rel=1e-12)
    huber = np.where(np.abs(d) <= 0.5, 0.5 * d ** 2, 0.5 * (np.abs(d) - 0.25))
    assert L.huber_loss(a, b, delta=0.5).item() == pytest.approx(huber.mean(), rel=1e-12)
    v = np.abs(b) + 0.1
    g = 0.5 * (np.log(v) + d ** 2 / v + np.log(2 * np.pi))
    assert L.gaussian_nll_loss(a, b, v, full=True).item() == pytest.approx(g.mean(), rel=1e-12)


def test_binary_and_kl_losses_match_numpy(rng):
    x, t = rng.normal(size=(4, 3)), (rng.uniform(size=(4, 3)) > 0.5) * 1.0
    p = 1 / (1 + np.exp(-x))
    bce = -(t * np.log(p) + (1 - t) * np.log1p(-p))
    assert L.binary_cross_entropy(p, t).item() == pytest.approx(bce.mean(), rel=1e-12)
    pw = np.array([1.0, 2.0, 3.0])
    bcel = -(pw * t * np.log(p) + (1 - t) * np.log1p(-p))
    assert nn.BCEWithLogitsLoss(pos_weight=pw)(x, t).item() == pytest.approx(bcel.mean(), rel=1e-12)
    assert L.binary_cross_entropy(np.array([0.0, 1.0]), np.array([1.0, 0.0]), reduction="sum").item() == 200.0
    lp, q = np.log(rng.dirichlet(np.ones(3), size=4)), rng.dirichlet(np.ones(3), size=4)
    kl = (q * (np.log(q) - lp)).sum()
    assert L.kl_div(lp, q, reduction="batchmean").item() == pytest.approx(kl / 4, rel=1e-12)
    assert L.kl_div(lp, np.log(q), reduction="sum", log_target=True).item() == pytest.approx(kl, rel=1e-12)


@pytest.mark.parametrize("name,fn", [
    ("mse", lambda x, y: L.mse_loss(x, y)), ("l1", lambda x, y: L.l1_loss(x, y)),
    ("huber", lambda x, y: L.huber_loss(x, y, delta=0.7)),
    ("bce_logits", lambda x, y: L.binary_cross_entropy_with_logits(x, pd.sigmoid(y))),
    ("bce", lambda x, y: L.binary_cross_entropy(pd.sigmoid(x), pd.sigmoid(y))),
    ("gaussian_nll", lambda x, y: L.gaussian_nll_loss(x, y, pd.exp(y))),
    ("kl", lambda x, y: L.kl_div(pd.log_softmax(x, 1), pd.softmax(y, 1), reduction="batchmean")),
    ("ce_smooth_weighted", lambda x, y: L.cross_entropy(x, np.array([0, 2, 1]), weight=np.array([1.0, 2.0, 0.5, 1.0]),
                                                        label_smoothing=0.1)),
    ("ce_probs", lambda x, y: L.cross_entropy(x, pd.softmax(y, 1))),
])
def test_loss_gradients(name, fn, rng):
    gradcheck(fn, [rng.normal(size=(3, 4)), rng.normal(size=(3, 4)) * 0.5 + 0.3])


def test_loss_errors(data):
    with pytest.raises(ValueError, match="input of shape \\(5, 3\\) and target of shape \\(3,\\) differ"):
        L.mse_loss(data["a"], np.ones(3))
    with pytest.raises(ValueError, match="reduction must be one of"):
        L.mse_loss(data["a"], data["b"], reduction="avg")
    with pytest.raises(IndexError, match="target indices must lie in \\[0, 4\\)"):
        L.cross_entropy(data["x"], np.array([0, 1, 2, 3, 4, 0]))
    with pytest.raises(ValueError, match="expected class indices of shape \\(6,\\)"):
        L.cross_entropy(data["x"], np.zeros((6, 1), dtype=int))
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        L.binary_cross_entropy(np.array([1.5]), np.array([1.0]))
    with pytest.raises(TypeError, match="integer class indices"):
        L.nll_loss(data["x"], data["y"].astype(float)[:, None].repeat(4, 1)[:, 0])


def test_against_pytorch(data, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, y, w = data["x"], data["y"].copy(), data["w"]
    y[1] = -100
    T = torch.tensor
    for red in ("mean", "sum", "none"):
        for ls in (0.0, 0.3):
            ours = L.cross_entropy(x, y, weight=w, reduction=red, label_smoothing=ls).numpy()
            theirs = F.cross_entropy(T(x), T(y), weight=T(w), reduction=red, label_smoothing=ls).numpy()
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    a, b = data["a"], data["b"]
    v = np.abs(b) + 0.1
    pairs = [(L.huber_loss(a, b, delta=0.5), F.huber_loss(T(a), T(b), delta=0.5)),
             (L.gaussian_nll_loss(a, b, v[:, :1]), F.gaussian_nll_loss(T(a), T(b), T(v[:, :1]))),
             (L.binary_cross_entropy_with_logits(a, (b > 0) * 1.0, pos_weight=np.array([1.0, 2.0, 3.0])),
              F.binary_cross_entropy_with_logits(T(a), T((b > 0) * 1.0), pos_weight=T([1.0, 2.0, 3.0])))]
    for ours, theirs in pairs:
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)
