"""A Bayesian neural network on scikit-learn's digits, fitted by SVI, with its uncertainty put to the test.

Model: an MLP 64-50-10 with tanh (``--hidden 50 50`` for two hidden layers) whose every weight and bias has a
Normal(0, 1) prior, written with ``sample`` statements and drawn outside the data plate (with an
``nn.Module``, ``bnn = probdl.random_module("bnn", net, dist.Normal(0, 1))`` and ``net_s = bnn.sample()``
outside the plate does the same, as ``docs/svi.md`` shows); the labels are Categorical(logits) inside a plate
over the training images that draws a mini-batch (``subsample_size``) each step, so the likelihood is scaled
by N / batch and the ELBO stays an unbiased estimate of the full-data one. With inputs in [0, 1] (pixels /
16), a unit prior scale keeps the pre-activations of the first layer at a few units, where tanh is neither
linear nor saturated for typical draws. Guide: ``AutoNormal`` (mean-field Normal on all 3,760 weights;
``--guide manual`` uses the equivalent hand-written guide below); optimizer Adam; loss ``Trace_ELBO``. The
steps are compiled (``jit_compile=True``: each replay draws a fresh mini-batch, with the draws and results of
eager steps, about three times faster; ``--eager`` turns it off). The split is scikit-learn's
``train_test_split`` (75% / 25%, stratified, ``random_state=0``).

What it reports, all from the posterior predictive p(y | x, D) ≈ (1/S) Σ_s softmax(f(x; w_s)), w_s ~ q, with
S = 100 draws (``Predictive`` with the guide):

- test accuracy of argmax p(y | x, D) (target: at least 95%);
- expected calibration error with 15 bins: the confidence c_i = max_k p(y = k | x_i, D) is binned into
  B_1..B_15 = [0, 1/15), ..., [14/15, 1]; ECE = Σ_b (|B_b| / n) · |acc(B_b) - conf(B_b)|, where acc and conf
  are the accuracy and the mean confidence of the images in bin b (Guo et al., "On Calibration of Modern
  Neural Networks", ICML 2017);
- mean predictive entropy H[p(y | x, D)] = -Σ_k p_k log p_k (in nats; at most log 10 = 2.303) on the test
  digits and on out-of-distribution images of uniform noise in the digits' pixel range [0, 1]; the noise
  should get the higher entropy. Also the mutual information between y and w (entropy minus the mean
  entropy of the single draws), the part of the uncertainty that comes from not knowing the weights.

Run::

    .venv/bin/python examples/bnn_digits.py            (needs scikit-learn: pip install -e ".[test]")
    .venv/bin/python examples/bnn_digits.py --quick    (a short run)

References: Blundell et al., "Weight Uncertainty in Neural Networks", ICML 2015 (mean-field Gaussian
variational inference for network weights); Graves, "Practical Variational Inference for Neural Networks",
NeurIPS 2011.
"""
import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import probdl as pd
from probdl import distributions as dist
from probdl.infer.autoguide import AutoNormal
from probdl.infer.elbo import Trace_ELBO
from probdl.infer.predictive import Predictive
from probdl.infer.svi import SVI
from probdl.optim import Adam

PRIOR_SCALE = 1.0
NUM_BINS = 15


def load(seed: int = 0):
    digits = load_digits()
    X = digits.data / 16.0  # 64 pixels in [0, 1]
    return train_test_split(X, digits.target, test_size=0.25, stratify=digits.target, random_state=seed)


def layer_shapes(hidden: list[int]) -> dict[str, tuple[int, ...]]:
    """Site name -> shape of every weight matrix ``w{i}`` (in, out) and bias ``b{i}``."""
    sizes = [64, *hidden, 10]
    shapes = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"w{i}"], shapes[f"b{i}"] = (n_in, n_out), (n_out,)
    return shapes


def make_model(hidden: list[int]):
    """The model: every weight drawn from the prior once per run, *outside* the data plate (inside it, the
    plate would give each image its own weights), then the labels of a mini-batch inside it."""
    shapes = layer_shapes(hidden)
    num_layers = len(hidden) + 1

    def model(X, y=None, batch_size=None):
        w = {name: pd.sample(name, dist.Normal(0.0, PRIOR_SCALE).expand(shape).to_event(len(shape)))
             for name, shape in shapes.items()}
        with pd.plate("data", X.shape[0], subsample_size=batch_size) as idx:
            h = X[idx]
            for i in range(num_layers):
                h = h @ w[f"w{i}"] + w[f"b{i}"]
                h = pd.tanh(h) if i < num_layers - 1 else h
            logits = pd.deterministic("logits", h)
            pd.sample("obs", dist.Categorical(logits=logits), obs=None if y is None else y[idx])

    return model, shapes


def make_manual_guide(shapes: dict[str, tuple[int, ...]], init_scale: float = 0.01, seed: int = 0):
    """A hand-written mean-field guide: w ~ Normal(loc, scale) independently for every weight, the locs
    started at small random values (to break the symmetry between hidden units) and the scales at init_scale."""
    rng = np.random.default_rng(seed)
    inits = {name: 0.1 * rng.normal(size=shape) for name, shape in shapes.items()}

    def guide(X, y=None, batch_size=None):
        for name, shape in shapes.items():
            loc = pd.param(f"{name}_loc", inits[name])
            scale = pd.param(f"{name}_scale", np.full(shape, init_scale), constraint=dist.constraints.positive)
            pd.sample(name, dist.Normal(loc, scale).to_event(len(shape)))

    return guide


def entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-300, None))).sum(-1)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, num_bins: int = NUM_BINS) -> float:
    """Σ_b (|B_b| / n) |acc(B_b) - conf(B_b)| over equal-width confidence bins (see the module docstring)."""
    conf, pred = probs.max(-1), probs.argmax(-1)
    bins = np.minimum((conf * num_bins).astype(int), num_bins - 1)
    ece = 0.0
    for b in range(num_bins):
        inside = bins == b
        if inside.any():
            ece += inside.mean() * abs((pred[inside] == labels[inside]).mean() - conf[inside].mean())
    return float(ece)


def predictive_probs(model, guide, X: np.ndarray, num_samples: int, seed: int) -> np.ndarray:
    """softmax of the logits of ``num_samples`` posterior draws: shape (S, n, 10)."""
    logits = Predictive(model, guide=guide, num_samples=num_samples, return_sites=["logits"])(seed, pd.tensor(X))
    logits = logits["logits"].numpy()
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def summarize(name: str, draws: np.ndarray) -> dict:
    mean = draws.mean(0)
    h = entropy(mean)
    return {"name": name, "probs": mean, "entropy": h.mean(), "mutual_information": (h - entropy(draws).mean(0)).mean()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a short run (fewer steps and posterior draws)")
    p.add_argument("--hidden", type=int, nargs="+", default=[50], help="hidden layer widths (default: 50)")
    p.add_argument("--guide", choices=("auto", "manual"), default="auto")
    p.add_argument("--steps", type=int, default=None, help="SVI steps (default 10000, 1000 with --quick)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--num-samples", type=int, default=None, help="posterior draws (default 100, 20 with --quick)")
    p.add_argument("--eager", action="store_true", help="run the SVI steps uncompiled")
    args = p.parse_args(argv)
    steps = args.steps or (1000 if args.quick else 10000)
    num_samples = args.num_samples or (20 if args.quick else 100)
    pd.set_rng_seed(0)
    pd.clear_param_store()

    X_train, X_test, y_train, y_test = load()
    model, shapes = make_model(args.hidden)
    guide = AutoNormal(model, init_scale=0.01) if args.guide == "auto" else make_manual_guide(shapes)
    svi = SVI(model, guide, Adam(lr=args.lr), Trace_ELBO(), rng_seed=0, jit_compile=not args.eager)
    Xt, yt = pd.tensor(X_train), pd.tensor(y_train)
    n_weights = sum(int(np.prod(shape)) for shape in shapes.values())
    print(f"Bayesian MLP 64-{'-'.join(map(str, args.hidden))}-10 (tanh), {n_weights} weights with Normal(0, "
          f"{PRIOR_SCALE:g}) priors, {args.guide} guide; {len(X_train)} training and {len(X_test)} test digits")
    start = time.perf_counter()
    result = svi.run(steps, Xt, yt, batch_size=args.batch_size, progress_bar=True)
    fit_seconds = time.perf_counter() - start
    window = max(1, steps // 20)
    print(f"SVI: {steps} steps of batch {args.batch_size} in {fit_seconds:.1f} s "
          f"({fit_seconds / steps * 1e3:.2f} ms per step); loss (negative ELBO, mean of {window} steps) "
          f"{result.losses[:window].mean():.1f} -> {result.losses[-window:].mean():.1f}")

    start = time.perf_counter()
    test = summarize("test digits", predictive_probs(model, guide, X_test, num_samples, seed=1))
    noise = np.random.default_rng(2).uniform(0.0, 1.0, size=(500, 64))
    ood = summarize("uniform noise (OOD)", predictive_probs(model, guide, noise, num_samples, seed=3))
    accuracy = (test["probs"].argmax(-1) == y_test).mean()
    ece = expected_calibration_error(test["probs"], y_test)
    print(f"posterior predictive from {num_samples} draws ({time.perf_counter() - start:.1f} s):")
    print(f"  test accuracy                     {accuracy:.4f}   (target >= 0.95)")
    print(f"  expected calibration error        {ece:.4f}   ({NUM_BINS} bins; mean confidence "
          f"{test['probs'].max(-1).mean():.4f} vs accuracy {accuracy:.4f})")
    print(f"  {'':32s}  {'entropy':>8s}  {'mutual info':>11s}   (nats; max entropy log 10 = {np.log(10):.3f})")
    for s in (test, ood):
        print(f"  {s['name']:32s}  {s['entropy']:8.3f}  {s['mutual_information']:11.3f}")
    verdict = "higher" if ood["entropy"] > test["entropy"] else "NOT higher"
    print(f"  the OOD noise gets {verdict} predictive entropy than the test digits")


if __name__ == "__main__":
    main()
