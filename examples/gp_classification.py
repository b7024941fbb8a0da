"""GP classification with a sparse variational GP (SVGP) on scikit-learn's two moons.

A latent GP f with an RBF kernel, a Bernoulli likelihood with the logit link (p(y = 1) = sigmoid(f)), 30
inducing inputs learned with the kernel hyperparameters and a full-covariance q(u), trained on mini-batches of
100 points by Adam through ``VariationalSparseGP.fit``. The test accuracy is compared with scikit-learn's
``GaussianProcessClassifier`` (Laplace approximation, exact GP), and the decision surface p(y = 1 | x) with
the inducing inputs is saved as a PNG (with matplotlib).

Run::

    .venv/bin/python examples/gp_classification.py           (2000 steps)
    .venv/bin/python examples/gp_classification.py --quick   (400 steps)
"""
import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import make_moons

from probdl.gp import VariationalSparseGP, kernels, likelihoods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=Path("gp_classification.png"))
    args = parser.parse_args()
    X, y = make_moons(500, noise=0.25, random_state=args.seed)
    Xt, yt = make_moons(2000, noise=0.25, random_state=args.seed + 1)

    rng = np.random.default_rng(args.seed)
    gp = VariationalSparseGP(X, y, kernels.RBF(), likelihoods.Bernoulli(), Xu=X[rng.choice(len(X), 30, replace=False)])
    steps = 400 if args.quick else 2000
    start = time.perf_counter()
    losses = gp.fit(num_steps=steps, batch_size=100, seed=args.seed)
    elapsed = time.perf_counter() - start
    p, _ = gp.predict_y(Xt)
    accuracy = float(np.mean((p.numpy() > 0.5) == yt))
    print(f"SVGP: {steps} Adam steps on mini-batches of 100 in {elapsed:.1f} s; negative ELBO "
          f"{np.mean(losses[:20]):.1f} -> {np.mean(losses[-20:]):.1f}; test accuracy {accuracy:.3f}")
    print(f"      kernel variance {float(gp.kernel.variance):.3f}, lengthscale {float(gp.kernel.lengthscale):.3f}")

    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel

    start = time.perf_counter()
    ref = GaussianProcessClassifier(ConstantKernel() * RBF(), random_state=0).fit(X, y)
    print(f"scikit-learn GaussianProcessClassifier (exact, Laplace) in {time.perf_counter() - start:.1f} s: "
          f"test accuracy {ref.score(Xt, yt):.3f}")

    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g0, g1 = np.meshgrid(np.linspace(-1.8, 2.8, 120), np.linspace(-1.3, 1.8, 90))
    grid = np.column_stack([g0.ravel(), g1.ravel()])
    pg, _ = gp.predict_y(grid)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    cs = ax.contourf(g0, g1, pg.numpy().reshape(g0.shape), levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.8)
    ax.contour(g0, g1, pg.numpy().reshape(g0.shape), levels=[0.5], colors="k")
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", edgecolors="k", s=12)
    Xu = gp.Xu.numpy()
    ax.plot(Xu[:, 0], Xu[:, 1], "kx", ms=8, label="inducing inputs")
    fig.colorbar(cs, label="p(y = 1 | x)")
    ax.legend(loc="lower left")
    ax.set_title(f"SVGP on two moons (test accuracy {accuracy:.3f})")
    fig.tight_layout()
    fig.savefig(args.plot, dpi=100)
    print(f"decision surface written to {args.plot}")


if __name__ == "__main__":
    main()
