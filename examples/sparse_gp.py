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
    start = time.perf_counter()
    losses = sgpr.fit(num_steps=300)
    elapsed = time.perf_counter() - start
    mean, var = sgpr.predict(Xs)
    rmse = np.sqrt(np.mean((mean.numpy() - f(Xs[:, 0])) ** 2))
    print(f"SGPR (VFE), n = {n}, m = 100: {len(losses)} bound evaluations in {elapsed:.1f} s "
          f"({1000 * elapsed / len(losses):.0f} ms each); noise {float(sgpr.noise):.4f} (true 0.09), "
          f"lengthscale {float(sgpr.kernel.lengthscale):.3f}; RMSE of the mean against f {rmse:.4f}")

    sub = rng.choice(n, 2000, replace=False)
    exact = GPRegression(X[sub], y[sub], kernels.RBF(), noise=1.0)
    start = time.perf_counter()
    losses = exact.fit()
    elapsed = time.perf_counter() - start
    mean_e, _ = exact.predict(Xs)
    rmse_e = np.sqrt(np.mean((mean_e.numpy() - f(Xs[:, 0])) ** 2))
    print(f"exact GP on a 2000-point subset: {len(losses)} evaluations in {elapsed:.1f} s; noise "
          f"{float(exact.noise):.4f}; RMSE {rmse_e:.4f} (the sparse GP on all the data is "
          f"{'better' if rmse < rmse_e else 'not better'})")


if __name__ == "__main__":
    main()
