"""Exact Gaussian process regression on a 1-D function, then NUTS over its hyperparameters.

Data: 40 noisy observations of f(x) = sin(3x) + 0.3 x² on [-2, 2], with a gap in [0.3, 1.0] so the predictive
band visibly widens where there are no data.

1. Maximum marginal likelihood: ``GPRegression(X, y, RBF(), noise)`` fitted by L-BFGS-B; the predictive mean
   and 95% band are saved as a PNG (with matplotlib).
2. Fully Bayesian: log-normal priors on the kernel variance and lengthscale and on the noise variance; the same
   GP object's ``model`` method is a probdl model, and NUTS (4 chains) samples the hyperparameters with the
   function values integrated out analytically. The predictive mean is then averaged over posterior draws.

Run::

    .venv/bin/python examples/gp_regression.py           (4 chains x (500 + 500))
    .venv/bin/python examples/gp_regression.py --quick   (2 chains x (150 + 150))
"""
import argparse
import time
from pathlib import Path

import numpy as np

import probdl.distributions as dist
from probdl.gp import GPRegression, kernels
from probdl.infer import MCMC, NUTS


def make_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.sort(np.concatenate([rng.uniform(-2.0, 0.3, 28), rng.uniform(1.0, 2.0, 12)]))
    y = np.sin(3 * x) + 0.3 * x**2 + 0.15 * rng.normal(size=x.size)
    return x[:, None], y


def plot(path: Path, X, y, Xs, mean, var, title: str) -> None:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sd = np.sqrt(var)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.fill_between(Xs[:, 0], mean - 1.96 * sd, mean + 1.96 * sd, alpha=0.3, label="95% band of f")
    ax.plot(Xs[:, 0], mean, label="predictive mean")
    ax.plot(Xs[:, 0], np.sin(3 * Xs[:, 0]) + 0.3 * Xs[:, 0] ** 2, "k--", lw=1, label="true f")
    ax.plot(X[:, 0], y, "k.", label="data")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=Path("gp_regression.png"))
    args = parser.parse_args()
    X, y = make_data(args.seed)
    Xs = np.linspace(-2.3, 2.3, 200)[:, None]

    gp = GPRegression(X, y, kernels.RBF(), noise=0.1)
    start = time.perf_counter()
    gp.fit()
    print(f"maximum marginal likelihood in {time.perf_counter() - start:.2f} s: variance "
          f"{float(gp.kernel.variance):.3f}, lengthscale {float(gp.kernel.lengthscale):.3f}, noise "
          f"{float(gp.noise):.4f}, log p(y) {float(gp.log_marginal_likelihood()):.2f}")
    mean, var = gp.predict(Xs)
    plot(args.plot, X, y, Xs, mean.numpy(), var.numpy(), "exact GP, hyperparameters by maximum likelihood")

    # Fully Bayesian over the hyperparameters: priors, then NUTS on gp.model
    gp.kernel.set_prior("variance", dist.LogNormal(0.0, 1.0))
    gp.kernel.set_prior("lengthscale", dist.LogNormal(0.0, 1.0))
    gp.set_prior("noise", dist.LogNormal(-3.0, 1.0))
    chains, n = (2, 150) if args.quick else (4, 500)
    mcmc = MCMC(NUTS(gp.model), num_warmup=n, num_samples=n, num_chains=chains, chain_method="parallel",
                progress_bar=False)
    start = time.perf_counter()
    mcmc.run(seed=args.seed)
    print(f"\nNUTS over the hyperparameters, {chains} chains x ({n} + {n}) in {time.perf_counter() - start:.1f} s")
    mcmc.print_summary()
    draws = mcmc.get_samples()
    means = []
    for i in range(0, len(draws["noise"]), max(1, len(draws["noise"]) // 50)):
        gp.set_hyperparameters({name: draws[name][i] for name in ("kernel.variance", "kernel.lengthscale", "noise")})
        means.append(gp.predict(Xs)[0].numpy())
    avg = np.mean(means, axis=0)
    truth = np.sin(3 * Xs[:, 0]) + 0.3 * Xs[:, 0] ** 2
    print(f"RMSE of the predictive mean against the true f: maximum likelihood "
          f"{np.sqrt(np.mean((mean.numpy() - truth) ** 2)):.3f}, averaged over {len(means)} posterior draws "
          f"{np.sqrt(np.mean((avg - truth) ** 2)):.3f}")


if __name__ == "__main__":
    main()
