"""Quickstart: fit a logistic regression with the probdl tensor engine alone.

The data are generated here (two Gaussian classes in 5 dimensions), so the script
needs nothing beyond probdl. Run it with `make demo`.
"""
import numpy as np

import probdl as pd


def make_data(n: int = 500, d: int = 5, seed: int = 0):
    """Labels from a known logistic model, so we can see whether the fit recovers it."""
    rng = np.random.default_rng(seed)
    true_w = rng.normal(size=d)
    true_b = -0.5
    X = rng.normal(size=(n, d))
    p = 1 / (1 + np.exp(-(X @ true_w + true_b)))
    y = (rng.uniform(size=n) < p).astype(np.float64)
    return X, y, true_w, true_b


def negative_log_likelihood(w, b, X, y):
    """Mean Bernoulli negative log-likelihood of labels y under logits X w + b, computed stably."""
    logits = X @ w + b
    return -(y * pd.log_sigmoid(logits) + (1 - y) * pd.log_sigmoid(-logits)).mean()


def main() -> None:
    X, y, true_w, true_b = make_data()
    w = pd.zeros(X.shape[1], requires_grad=True)
    b = pd.zeros((), requires_grad=True)
    lr = 0.5
    for step in range(301):
        loss = negative_log_likelihood(w, b, X, y)
        loss.backward()
        with pd.no_grad():  # plain gradient descent on the raw arrays
            w.data -= lr * w.grad.data
            b.data -= lr * b.grad.data
        w.grad = b.grad = None
        if step % 100 == 0:
            print(f"step {step:4d}   loss {loss.item():.4f}")

    # The Hessian of the loss at the optimum gives standard errors (Laplace approximation).
    params = pd.concatenate([w.detach(), b.detach().reshape(1)])
    H = pd.hessian(lambda p: negative_log_likelihood(p[:-1], p[-1], X, y) * len(y))(params)
    se = np.sqrt(np.diag(np.linalg.inv(H.numpy())))

    accuracy = ((X @ w.numpy() + b.item() > 0) == (y > 0.5)).mean()
    print(f"\ntraining accuracy {accuracy:.3f}")
    print(f"{'':>6} {'true':>8} {'fitted':>8} {'std err':>8}")
    for i, (t, f, s) in enumerate(zip(np.append(true_w, true_b), params.numpy(), se)):
        name = f"w[{i}]" if i < len(true_w) else "b"
        print(f"{name:>6} {t:8.3f} {f:8.3f} {s:8.3f}")


if __name__ == "__main__":
    main()
