"""Sparse GP regression on n = 20,000 points with 100 inducing inputs (Titsias' variational bound).

The data are noisy observations of f(x) = sin(3x) + 0.5 sin(7x) on [-3, 3]. An exact GP would factor a
20,000 x 20,000 matrix (3.2 GB, ~10¹² flops per evaluation); ``SparseGPRegression`` with m = 100 inducing
inputs costs O(n m²) time and O(n m) memory. The inducing inputs, the kernel hyperparameters and the noise
are fitted together by L-BFGS-B, and the result is compared with the exact GP on a 2,000-point subset (which
is as large as an exact fit comfortably gets here).

Run::

    .venv/bin/python examples/sparse_gp.py           (n = 20000)
    .venv/bin/python examples/sparse_gp.py --quick   (n = 5000)
"""
import argparse
import time

import numpy as np

from probdl.gp import GPRegression, SparseGPRegression, kernels


def f(x):
    return np.sin(3 * x) + 0.5 * np.sin(7 * x)


def fit_and_score(gp, Xs, num_steps: int = 1000) -> tuple[int, float, float]:
    """Fit ``gp`` by L-BFGS-B: the number of evaluations, the seconds taken, the RMSE of its mean against f."""
    start = time.perf_counter()
    losses = gp.fit(num_steps=num_steps)
    elapsed = time.perf_counter() - start
    mean, _ = gp.predict(Xs)
    return len(losses), elapsed, float(np.sqrt(np.mean((mean.numpy() - f(Xs[:, 0])) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = 5000 if args.quick else 20000
    rng = np.random.default_rng(args.seed)
    X = rng.uniform(-3, 3, size=(n, 1))
    y = f(X[:, 0]) + 0.3 * rng.normal(size=n)
    Xs = np.linspace(-3, 3, 500)[:, None]

    sgpr = SparseGPRegression(X, y, kernels.RBF(), Xu=np.linspace(-3, 3, 100)[:, None], noise=1.0)
    evals, elapsed, rmse = fit_and_score(sgpr, Xs, num_steps=300)
    print(f"SGPR (VFE), n = {n}, m = 100: {evals} bound evaluations in {elapsed:.1f} s "
          f"({1000 * elapsed / evals:.0f} ms each); noise {float(sgpr.noise):.4f} (true 0.09), "
          f"lengthscale {float(sgpr.kernel.lengthscale):.3f}; RMSE of the mean against f {rmse:.4f}")

    sub = rng.choice(n, 2000, replace=False)
    exact = GPRegression(X[sub], y[sub], kernels.RBF(), noise=1.0)
    evals, elapsed, rmse_e = fit_and_score(exact, Xs)
    print(f"exact GP on a 2000-point subset: {evals} evaluations in {elapsed:.1f} s; noise "
          f"{float(exact.noise):.4f}; RMSE {rmse_e:.4f} (the sparse GP on all the data is "
          f"{'better' if rmse < rmse_e else 'not better'})")

if __name__ == "__main__":
    main()
