"""Bayesian linear regression by SVI, checked against the exact Gaussian posterior.

The model, with known noise scale sigma and Normal priors of scale tau::

    w ~ Normal(0, tau² I_d),   b ~ Normal(0, tau²),   y_i | w, b ~ Normal(x_i·w + b, sigma²)   (i = 1..n)

is conjugate: with design Phi = [X, 1] and theta = (w, b), the posterior is Normal(mu, Sigma) with

    Sigma = (Phiᵀ Phi / sigma² + I / tau²)⁻¹,    mu = Sigma Phiᵀ y / sigma²,

and the predictive at a new x is Normal(phi(x)·mu, phi(x)ᵀ Sigma phi(x) + sigma²). SVI with an
``AutoMultivariateNormal`` guide (a full-covariance Gaussian on (w, b), which contains the exact posterior)
and ``Trace_ELBO`` should recover mu and Sigma up to Monte Carlo noise. The script prints both, their
largest differences, draws a 90% predictive band with ``Predictive``, compares its edges with the exact
ones, and saves a plot (data, posterior mean line, band) when matplotlib is installed.

Run::

    .venv/bin/python examples/bayesian_regression.py [--steps 4000] [--plot PATH.png]
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

import probdl as pd
from probdl import distributions as dist
from probdl.infer.autoguide import AutoMultivariateNormal
from probdl.infer.elbo import Trace_ELBO
from probdl.infer.predictive import Predictive
from probdl.infer.svi import SVI
from probdl.optim import ClippedAdam

SIGMA = 0.5   # known noise scale
TAU = 5.0     # prior scale of the weights and the intercept


def make_data(n: int = 30, seed: int = 0):
    """One feature on [0, 4] (not centred, so the posterior of slope and intercept is correlated)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 4.0, size=(n, 1))
    y = X @ np.array([1.2]) - 0.8 + SIGMA * rng.normal(size=n)
    return X, y


def model(X, y=None):
    X = pd.tensor(X)
    w = pd.sample("w", dist.Normal(pd.zeros(X.shape[1]), TAU).to_event(1))
    b = pd.sample("b", dist.Normal(0.0, TAU))
    with pd.plate("data", X.shape[0]):
        # (X * w).sum(-1) rather than X @ w: it broadcasts over draws of w batched on the left (vectorized
        # ELBO particles, Predictive(parallel=True))
        return pd.sample("y", dist.Normal((X * w).sum(-1) + b, SIGMA), obs=y)


def exact_posterior(X, y):
    """mu and Sigma of theta = (w, b), in the order the guide packs them (w first, then b)."""
    phi = np.hstack([X, np.ones((len(X), 1))])
    cov = np.linalg.inv(phi.T @ phi / SIGMA**2 + np.eye(phi.shape[1]) / TAU**2)
    return cov @ phi.T @ y / SIGMA**2, cov


def fit(X, y, steps: int, seed: int = 0):
    """SVI with a learning rate that decays 30-fold over the run, so the last steps average out the noise of
    the one-sample ELBO gradients."""
    pd.clear_param_store()
    guide = AutoMultivariateNormal(model)
    optim = ClippedAdam(lr=0.03, lrd=(1 / 30) ** (1 / steps))
    svi = SVI(model, guide, optim, Trace_ELBO(), rng_seed=seed)
    result = svi.run(steps, X, y, progress_bar=False)
    return guide, result


def plot(path, X, y, grid, mean_line, lo, hi):
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib to get one)")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.fill_between(grid, lo, hi, color="C0", alpha=0.25, label="90% posterior predictive band")
    ax.plot(grid, mean_line, color="C0", label="posterior mean line")
    ax.scatter(X[:, 0], y, s=14, color="k", label="data")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(loc="upper left", frameon=False)
    ax.set_title("Bayesian linear regression (SVI, AutoMultivariateNormal)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot saved to {path}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--plot", default=str(Path(tempfile.gettempdir()) / "bayesian_regression.png"),
                   help="where to save the PNG (default: in the temporary directory; '' for none)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    X, y = make_data()
    guide, result = fit(X, y, args.steps)
    posterior = guide.get_posterior(X, y)
    fit_mean, fit_cov = posterior.mean.numpy(), posterior.covariance_matrix.numpy()
    mu, cov = exact_posterior(X, y)
    np.set_printoptions(precision=4, suppress=True)
    print(f"SVI: {args.steps} steps, loss {result.losses[:100].mean():.2f} (first 100) -> "
          f"{result.losses[-100:].mean():.2f} (last 100)")
    print(f"posterior mean of (w, b)   exact {mu}   SVI {fit_mean}")
    print(f"posterior covariance       exact {cov.ravel()}   SVI {fit_cov.ravel()}")
    print(f"max |difference|: mean {np.abs(fit_mean - mu).max():.4f} (posterior sd {np.sqrt(np.diag(cov))}), "
          f"covariance {np.abs(fit_cov - cov).max():.5f}")

    grid = np.linspace(0.0, 4.0, 60)
    draws = Predictive(model, guide=guide, num_samples=4000, parallel=True)(1, grid[:, None])["y"].numpy()
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
    phi = np.stack([grid, np.ones_like(grid)], axis=1)
    sd = np.sqrt(np.einsum("ij,jk,ik->i", phi, cov, phi) + SIGMA**2)
    z = stats.norm.ppf(0.95)
    quantile_se = np.sqrt(0.05 * 0.95 / len(draws)) * sd.mean() / stats.norm.pdf(z)  # of a 5% sample quantile
    print(f"90% predictive band from {len(draws)} Predictive draws vs exact: max |difference| of the edges "
          f"{max(np.abs(lo - (phi @ mu - z * sd)).max(), np.abs(hi - (phi @ mu + z * sd)).max()):.4f} over "
          f"{2 * len(grid)} edges (Monte Carlo SE of one edge {quantile_se:.4f}; band half-width {z * sd.mean():.3f})")
    if args.plot:
        plot(args.plot, X, y, grid, phi @ fit_mean, lo, hi)
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
