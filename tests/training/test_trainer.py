"""The Trainer, its callbacks, and equivalence with a hand-written loop."""
import io

import numpy as np
import pytest

import probdl as pd
from probdl import nn
from probdl.data import DataLoader, TensorDataset
from probdl.optim.adam import Adam
from probdl.optim.sgd import SGD
from probdl.training import EarlyStopping, LearningRateMonitor, ModelCheckpoint, ProgressBar, Trainer, accuracy


def regression(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.01 * rng.normal(size=n)
    return X, y[:, None]


def loaders(seed=0):
    X, y = regression(seed=seed)
    train = DataLoader(TensorDataset(X[:150], y[:150]), batch_size=32, shuffle=True, rng=1)
    val = DataLoader(TensorDataset(X[150:], y[150:]), batch_size=50)
    return train, val


def quiet(**kw):
    return Trainer(progress_bar=False, **kw)


def test_fit_learns_a_linear_model_and_records_history():
    train, val = loaders()
    model = nn.Linear(3, 1, rng=0)
    hist = quiet(max_epochs=40).fit(model, train, val, loss_fn=nn.MSELoss(), optimizer=SGD(lr=0.1))
    assert len(hist) == 40 and set(hist[0]) == {"epoch", "train_loss", "val_loss", "time"}
    assert hist[-1]["val_loss"] < 1e-3 < hist[0]["train_loss"]
    np.testing.assert_allclose(model.weight.numpy(), [[1.5, -2.0, 0.5]], atol=0.01)


def test_trainer_equals_the_hand_written_loop():
    """The Trainer is the obvious loop: the same seeds give the same weights to the last bit."""
    train, _ = loaders()
    a = nn.Linear(3, 1, rng=0)
    quiet(max_epochs=3).fit(a, train, loss_fn=nn.MSELoss(), optimizer=Adam(a.parameters(), lr=0.05))

    train, _ = loaders()
    b = nn.Linear(3, 1, rng=0)
    opt, loss_fn = Adam(b.parameters(), lr=0.05), nn.MSELoss()
    for _ in range(3):
        for x, y in train:
            opt.zero_grad()
            loss_fn(b(x), y).backward()
            opt.step()
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())


def test_validate_test_predict_and_metrics():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(2, 16, rng=0), nn.Tanh(), nn.Linear(16, 2, rng=1))
    loader = DataLoader(TensorDataset(X, y), batch_size=30)
    trainer = quiet(max_epochs=30)
    hist = trainer.fit(model, loader, loader, loss_fn=nn.CrossEntropyLoss(), optimizer=Adam(lr=0.05),
                       metrics={"accuracy": accuracy})
    assert hist[-1]["train_accuracy"] > 0.95 and "val_accuracy" in hist[-1]
    res = trainer.test(model, loader)
    assert set(res) == {"test_loss", "test_accuracy"}
    assert res["test_accuracy"] == pytest.approx(hist[-1]["val_accuracy"])
    out = trainer.predict(model, loader)
    with pd.no_grad():
        np.testing.assert_allclose(out.numpy(), model(X).numpy(), rtol=1e-12)
    assert trainer.predict(model, [pd.tensor(X[:5])]).shape == (5, 2)
    assert model.training  # evaluation restored the mode


def test_early_stopping_and_restore_best_weights():
    train, val = loaders()
    model = nn.Linear(3, 1, rng=0)
    stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    hist = quiet(max_epochs=50, callbacks=[stop]).fit(model, train, val, loss_fn=nn.MSELoss(),
                                                      optimizer=SGD(lr=1.3))  # too large: diverges
    best = int(np.argmin([h["val_loss"] for h in hist]))
    assert len(hist) == best + 4 and stop.stopped_epoch == best + 3  # best, then patience + 1 worse epochs
    with pd.no_grad():
        X, y = regression()
        restored = float(((model(X[150:]) - y[150:]) ** 2).mean().item())
    assert restored == pytest.approx(hist[best]["val_loss"], rel=1e-10)


def test_model_checkpoint_saves_the_best(tmp_path):
    from probdl.serialization import load

    train, val = loaders()
    model = nn.Linear(3, 1, rng=0)
    ckpt = ModelCheckpoint(str(tmp_path / "m-{epoch}.npz"), monitor="val_loss")
    hist = quiet(max_epochs=5, callbacks=[ckpt]).fit(model, train, val, loss_fn=nn.MSELoss(), optimizer=SGD(lr=0.1))
    best = int(np.argmin([h["val_loss"] for h in hist]))
    assert ckpt.best_model_path == str(tmp_path / f"m-{best}.npz")
    assert ckpt.best_score == pytest.approx(hist[best]["val_loss"])
    state = load(ckpt.best_model_path)
    assert set(state) == {"weight", "bias"}


def test_learning_rate_monitor_and_scheduler():
    from probdl.optim.lr_scheduler import StepLR

    train, val = loaders()
    model = nn.Linear(3, 1, rng=0)
    opt = SGD(model.parameters(), lr=0.1)
    hist = quiet(max_epochs=4, callbacks=[LearningRateMonitor()]).fit(
        model, train, val, loss_fn=nn.MSELoss(), optimizer=opt, scheduler=StepLR(opt, step_size=2, gamma=0.5))
    assert [h["lr"] for h in hist] == [0.1, 0.1, 0.05, 0.05]  # the rate each epoch trained with
    trainer = quiet(max_epochs=2)
    trainer.fit(model, train, loss_fn=nn.MSELoss(), optimizer=SGD(lr=0.1))
    assert [h["epoch"] for h in trainer.fit(model, train, loss_fn=nn.MSELoss(), optimizer=SGD(lr=0.1))] == [0, 1]


def test_progress_bar_writes_plain_lines_off_a_terminal_and_a_bar_on_one():
    train, val = loaders()
    out = io.StringIO()
    quiet(max_epochs=2, callbacks=[ProgressBar(stream=out)]).fit(
        nn.Linear(3, 1, rng=0), train, val, loss_fn=nn.MSELoss(), optimizer=SGD(lr=0.1))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2  train_loss ") and "val_loss" in lines[0]
    live = io.StringIO()
    quiet(max_epochs=1, callbacks=[ProgressBar(stream=live, live=True)]).fit(
        nn.Linear(3, 1, rng=0), train, loss_fn=nn.MSELoss(), optimizer=SGD(lr=0.1))
    assert "epoch 1/1" in live.getvalue() and "\r" in live.getvalue()  # tqdm redraws in place


def test_errors_are_clear():
    train, _ = loaders()
    model = nn.Linear(3, 1)
    with pytest.raises(ValueError, match="max_epochs must be a positive int"):
        Trainer(max_epochs=0)
    with pytest.raises(TypeError, match="must be a tuple \\(inputs..., target\\)"):
        quiet().fit(model, [pd.ones(2, 3)], loss_fn=nn.MSELoss(), optimizer=SGD(lr=0.1))
    with pytest.raises(ValueError, match="yielded no batches"):
        quiet().fit(model, [], loss_fn=nn.MSELoss(), optimizer=SGD(lr=0.1))
    with pytest.raises(KeyError, match="'val_loss' is not among"):
        quiet(callbacks=[EarlyStopping()]).fit(model, train, loss_fn=nn.MSELoss(), optimizer=SGD(lr=0.1))
    with pytest.raises(ValueError, match="accuracy: output of shape \\(4, 3\\)"):
        accuracy(np.zeros((4, 3)), np.zeros(5))
