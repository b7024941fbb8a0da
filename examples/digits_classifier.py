"""Classify scikit-learn's bundled digits (1797 8x8 images) with an MLP and a small CNN.

Both are trained with probdl's Trainer on one fixed split (75% train, 25% test, stratified,
``random_state=0``), with early stopping on a validation slice of the training data.
Prints the test accuracy and the time per epoch of each. Run::

    .venv/bin/python examples/digits_classifier.py      (needs scikit-learn: pip install -e ".[test]")
"""
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import probdl as pd
from probdl import nn, optim
from probdl.data import DataLoader, TensorDataset
from probdl.training import EarlyStopping, Trainer, accuracy


def load(seed: int = 0):
    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8) in [0, 1]
    y = digits.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    X_fit, X_val, y_fit, y_val = train_test_split(X_train, y_train, test_size=0.15, stratify=y_train,
                                                  random_state=seed)
    return (X_fit, y_fit), (X_val, y_val), (X_test, y_test)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 256, rng=0), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(256, 256, rng=1), nn.ReLU(), nn.Linear(256, 10, rng=2))


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2),   # 32 x 4 x 4
        nn.Conv2d(32, 64, 3, padding=1, rng=1), nn.ReLU(), nn.MaxPool2d(2),  # 64 x 2 x 2
        nn.Flatten(), nn.Linear(64 * 2 * 2, 128, rng=2), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10, rng=3))


def fit(name: str, model: nn.Module, data, epochs: int = 60) -> float:
    (X_fit, y_fit), (X_val, y_val), (X_test, y_test) = data
    train = DataLoader(TensorDataset(X_fit, y_fit), batch_size=64, shuffle=True, rng=0)
    val = DataLoader(TensorDataset(X_val, y_val), batch_size=256)
    test = DataLoader(TensorDataset(X_test, y_test), batch_size=256)
    model.to(np.float32)
    trainer = Trainer(max_epochs=epochs, progress_bar=False,
                      callbacks=[EarlyStopping(monitor="val_loss", patience=10,
                                               restore_best_weights=True)])
    start = time.perf_counter()
    history = trainer.fit(model, train, val, loss_fn=nn.CrossEntropyLoss(), optimizer=optim.Adam(lr=1e-3),
                          metrics={"accuracy": accuracy})
    seconds = time.perf_counter() - start
    result = trainer.test(model, test, metrics={"accuracy": accuracy})
    best = max(h["val_accuracy"] for h in history)
    print(f"{name:4s}  epochs {len(history):3d}  best val accuracy {best:.3f}  "
          f"test accuracy {result['test_accuracy']:.4f}  ({seconds / len(history) * 1000:.0f} ms per epoch)")
    return result["test_accuracy"]


def main() -> None:
    pd.set_rng_seed(0)  # dropout masks and shuffling are reproducible
    data = load()
    print(f"digits: {len(data[0][0])} train, {len(data[1][0])} validation, {len(data[2][0])} test images")
    fit("MLP", mlp(), data)
    cnn_acc = fit("CNN", cnn(), data)
    if cnn_acc < 0.97:
        raise SystemExit(f"CNN test accuracy {cnn_acc:.4f} is below the 0.97 this example promises")


if __name__ == "__main__":
    main()
