"""Exact GP: one log-marginal-likelihood-plus-gradient evaluation, probdl vs hand-written SciPy; fitting vs
scikit-learn; peak memory of the gradient in units of one n x n float64 matrix.

Cases: n points in 3 dimensions, y = sin(x₁) + cos(x₂) x₃ + noise, an RBF kernel (variance, one lengthscale)
plus Gaussian noise, n = 1000, 3000 and 10000.

- **evaluation**: probdl's ``GPRegression.log_marginal_likelihood()`` and its ``backward()`` (gradients of the
  three hyperparameters), against a hand-written NumPy/SciPy function computing the same value and gradient
  the fastest way we know: K by one GEMM, LAPACK ``potrf`` in place, ``potrs`` for α, ``potri`` for the inverse
  and :math:`\\tfrac12 \\operatorname{tr}((\\alpha\\alpha^\\top - K^{-1}) \\partial K)` by in-place
  elementwise products (Rasmussen & Williams 2006, eq. 5.9). That is the limit; the target is within 1.2x of
  it for n >= 3000. The two gradients are asserted equal first.
- **fit**: ``GPRegression.fit()`` (L-BFGS-B) against scikit-learn's ``GaussianProcessRegressor(ConstantKernel *
  RBF + WhiteKernel, n_restarts_optimizer=0).fit`` from the same start, at n = 1000 and 3000: wall time and the
  log marginal likelihood each reaches.
- **memory**: the peak of NumPy's allocations (tracemalloc) during one evaluation, above what was live
  before it, divided by 8 n² bytes. Target: about three for probdl.

Usage::

    PYTHONPATH=. python benchmarks/bench_gp.py [--sizes 1000 3000 10000] [--fit-sizes 1000 3000]
        [--repeats 3] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.linalg import blas, lapack

from probdl.gp import GPRegression
from probdl.gp import kernels as gk

HERE = Path(__file__).resolve().parent
VARIANCE, LENGTHSCALE, NOISE = 1.3, 0.9, 0.1


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, size=(n, 3))
    y = np.sin(X[:, 0]) + np.cos(X[:, 1]) * X[:, 2] + 0.3 * rng.normal(size=n)
    return X, y


def scipy_value_and_grad(X: np.ndarray, y: np.ndarray, variance: float, lengthscale: float, noise: float
                         ) -> tuple[float, np.ndarray]:
    """log p(y) and its gradient in (variance, lengthscale, noise), by hand, with as few n x n arrays as we
    can: K (then reused for the products), L and K⁻¹ (two more)."""
    n = X.shape[0]
    Xs = X / lengthscale
    sq = np.einsum("ij,ij->i", Xs, Xs)
    D = Xs @ Xs.T                       # n x n: will hold r², then K
    D *= -2.0
    D += sq[:, None]
    D += sq[None, :]
    np.maximum(D, 0.0, out=D)
    np.fill_diagonal(D, 0.0)
    r2 = D.copy()                       # n x n (kept for the lengthscale gradient)
    D *= -0.5
    np.exp(D, out=D)
    D *= variance                       # D is K
    A = np.array(D, order="F")
    A.flat[:: n + 1] += noise
    L, info = lapack.dpotrf(A, lower=1, clean=1, overwrite_a=1)
    assert info == 0
    alpha, _ = lapack.dpotrs(L, y, lower=1)
    value = -0.5 * y @ alpha - np.log(np.diag(L)).sum() - 0.5 * n * np.log(2 * np.pi)
    W, _ = lapack.dpotri(L, lower=1, overwrite_c=1)   # K⁻¹ in L's place (lower triangle)
    del L, A
    W = W + np.tril(W, -1).T
    W *= -1.0
    W = blas.dger(1.0, alpha, alpha, a=W, overwrite_a=1)  # W = ααᵀ - K⁻¹
    g_noise = 0.5 * np.trace(W)
    W *= D                                                  # W ∘ K
    g_var = 0.5 * W.sum() / variance
    W *= r2
    g_ls = 0.5 * W.sum() / lengthscale                      # ∂K/∂ℓ = K r² / ℓ
    return value, np.array([g_var, g_ls, g_noise])


def probdl_model(X: np.ndarray, y: np.ndarray) -> GPRegression:
    return GPRegression(X, y, gk.RBF(variance=VARIANCE, lengthscale=LENGTHSCALE), noise=NOISE)


def probdl_value_and_grad(gp: GPRegression) -> tuple[float, np.ndarray]:
    """log p(y) and its gradient in the constrained (variance, lengthscale, noise)."""
    for p in gp.parameters():
        p.grad = None
    lml = gp.log_marginal_likelihood()
    lml.backward()
    # the parameters are softplus(raw): d/dθ = d/draw / sigmoid(raw)
    raws = [gp.kernel.variance_unconstrained, gp.kernel.lengthscale_unconstrained, gp.noise_unconstrained]
    grads = [float(p.grad.data) / (1.0 / (1.0 + np.exp(-float(p.data)))) for p in raws]
    return float(lml.data), np.array(grads)


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def peak_matrices(fn: Callable[[], object], n: int) -> float:
    """Peak NumPy memory during fn() above what was live at the start, in n x n float64 matrices."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / (8.0 * n * n)


def bench_evaluation(n: int, repeats: int) -> dict:
    X, y = data(n)
    gp = probdl_model(X, y)
    ours_value, ours_grad = probdl_value_and_grad(gp)
    ref_value, ref_grad = scipy_value_and_grad(X, y, VARIANCE, LENGTHSCALE, NOISE)
    np.testing.assert_allclose(ours_value, ref_value, rtol=1e-9)
    np.testing.assert_allclose(ours_grad, ref_grad, rtol=1e-6, atol=1e-6 * np.abs(ref_grad).max())
    t_ref, _ = median_time(lambda: scipy_value_and_grad(X, y, VARIANCE, LENGTHSCALE, NOISE), repeats)
    t_ours, _ = median_time(lambda: probdl_value_and_grad(gp), repeats)
    mem_ours = peak_matrices(lambda: probdl_value_and_grad(gp), n)
    mem_ref = peak_matrices(lambda: scipy_value_and_grad(X, y, VARIANCE, LENGTHSCALE, NOISE), n)
    return {"n": n, "probdl_s": t_ours, "scipy_s": t_ref, "ratio": t_ours / t_ref,
            "probdl_peak_nxn": mem_ours, "scipy_peak_nxn": mem_ref}


def bench_fit(n: int) -> dict:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process import kernels as sk

    X, y = data(n, seed=1)
    gp = GPRegression(X, y, gk.RBF(variance=1.0, lengthscale=1.0), noise=1.0)
    start = time.perf_counter()
    losses = gp.fit()
    t_ours = time.perf_counter() - start
    ours = float(gp.log_marginal_likelihood().data)
    ref = GaussianProcessRegressor(sk.ConstantKernel(1.0) * sk.RBF(1.0) + sk.WhiteKernel(1.0),
                                   n_restarts_optimizer=0)
    start = time.perf_counter()
    ref.fit(X, y)
    t_ref = time.perf_counter() - start
    return {"n": n, "probdl_s": t_ours, "probdl_evals": len(losses), "probdl_lml": ours,
            "sklearn_s": t_ref, "sklearn_lml": float(ref.log_marginal_likelihood_value_),
            "ratio": t_ours / t_ref}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 3000, 10000])
    parser.add_argument("--fit-sizes", type=int, nargs="*", default=[1000, 3000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "bench_gp.json")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; medians of {args.repeats} repeats")
    print(f"\n{'n':>6} {'probdl s':>9} {'SciPy s':>9} {'ratio':>6} {'probdl peak (n x n)':>20} "
          f"{'SciPy peak (n x n)':>19}")
    evals = []
    for n in args.sizes:
        r = bench_evaluation(n, args.repeats)
        evals.append(r)
        print(f"{n:6d} {r['probdl_s']:9.3f} {r['scipy_s']:9.3f} {r['ratio']:6.2f} {r['probdl_peak_nxn']:20.2f} "
              f"{r['scipy_peak_nxn']:19.2f}", flush=True)
    fits = []
    if args.fit_sizes:
        print(f"\n{'n':>6} {'probdl fit s':>12} {'evals':>6} {'probdl lml':>12} {'sklearn fit s':>13} "
              f"{'sklearn lml':>12} {'ratio':>6}")
    for n in args.fit_sizes:
        r = bench_fit(n)
        fits.append(r)
        print(f"{n:6d} {r['probdl_s']:12.2f} {r['probdl_evals']:6d} {r['probdl_lml']:12.3f} {r['sklearn_s']:13.2f} "
              f"{r['sklearn_lml']:12.3f} {r['ratio']:6.2f}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"load_average": os.getloadavg()[0], "evaluation": evals, "fit": fits},
                                    indent=1))
    print(f"\nresults written to {args.json}")


if __name__ == "__main__":
    main()
