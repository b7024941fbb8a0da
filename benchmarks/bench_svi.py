"""Milliseconds per SVI step in probdl, Pyro and NumPyro, on the same two models, guides and optimizers.

Cases (float64 throughout, one-particle ``Trace_ELBO``, Adam; every guide starts from locs = 0 through
``init_to_value`` so the three libraries start from the same point):

- **BNN digits**: a Bayesian MLP 64-50-10 with tanh, Normal(0, 1) priors on every weight and bias, a
  Categorical(logits) likelihood in a plate over **all 1797** scikit-learn digits (full batch, pixels / 16),
  an ``AutoNormal`` guide (mean-field Normal, 3,760 latent dims), Adam(lr=1e-3).
- **linear regression**: y = X w + b + noise (known noise 0.5), n = 1000, 10 features, Normal(0, 1) priors,
  an ``AutoMultivariateNormal`` guide (11 latent dims, full-rank scale_tril), Adam(lr=1e-2).

The models are written with explicit ``sample`` statements in each library (no ``random_module``/
``PyroModule``), so that the three run the same arithmetic. probdl runs with ``jit_compile=True`` (its steps
replayed from a trace, :mod:`probdl.tensor.compile`) and, timed after the others, eagerly. NumPyro's step is
``jax.jit(svi.update)``, timed after compilation (warm-up) with ``block_until_ready``; Pyro runs eagerly.
Timings are medians of interleaved repeats (helpers from ``bench_engine.py``). As a check that the three fit
the same model, a second table gives each library's loss (negative ELBO) at the common starting point, the
mean of 50 independent one-sample estimates with its standard error; they should agree within a few standard
errors.

Usage::

    PYTHONPATH=. .venv-peers/bin/python benchmarks/bench_svi.py [--quick] [--json PATH] [--threads N]

Libraries that are not installed are reported as such. On a machine shared with other work, ``--threads 1``
gives steadier figures (PyTorch with two threads on a busy two-core machine slows down several-fold).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from bench_engine import environment, import_torch, load_average, pin_threads, summarize, table, time_interleaved

import probdl as pd
from probdl import distributions as pdist
from probdl import optim

HERE = Path(__file__).resolve().parent
HIDDEN = 50
NOISE = 0.5
CHECK_EVALS = 50


# --------------------------------------------------------------------------- data
def digits_data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype(np.float64), d.target.astype(np.int64)


def regression_data(n: int = 1000, d: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.3 + NOISE * rng.normal(size=n)
    return X, y


def bnn_shapes(d_in: int, n_out: int) -> dict[str, tuple[int, ...]]:
    return {"w1": (d_in, HIDDEN), "b1": (HIDDEN,), "w2": (HIDDEN, n_out), "b2": (n_out,)}


# --------------------------------------------------------------------------- probdl
def probdl_steps(X: np.ndarray, y: np.ndarray, case: str, jit_compile: bool = True) -> Callable[[], float]:
    from probdl.infer.autoguide import AutoMultivariateNormal, AutoNormal
    from probdl.infer.elbo import Trace_ELBO
    from probdl.infer.initialization import init_to_value
    from probdl.infer.svi import SVI

    pd.set_default_dtype(np.float64)
    pd.clear_param_store()
    Xt, yt = pd.tensor(X), pd.tensor(y)
    if case == "bnn":
        shapes = bnn_shapes(X.shape[1], 10)

        def model(X, y=None):
            w = {k: pd.sample(k, pdist.Normal(0.0, 1.0).expand(s).to_event(len(s))) for k, s in shapes.items()}
            with pd.plate("data", X.shape[0]):
                logits = pd.tanh(X @ w["w1"] + w["b1"]) @ w["w2"] + w["b2"]
                pd.sample("obs", pdist.Categorical(logits=logits), obs=y)

        guide = AutoNormal(model, init_loc_fn=init_to_value(values={k: np.zeros(s) for k, s in shapes.items()}))
        lr = 1e-3
    else:
        d = X.shape[1]

        def model(X, y=None):
            w = pd.sample("w", pdist.Normal(pd.zeros(d), 1.0).to_event(1))
            b = pd.sample("b", pdist.Normal(0.0, 1.0))
            with pd.plate("data", X.shape[0]):
                pd.sample("y", pdist.Normal(X @ w + b, NOISE), obs=y)

        guide = AutoMultivariateNormal(model, init_loc_fn=init_to_value(values={"w": np.zeros(d), "b": 0.0}))
        lr = 1e-2
    svi = SVI(model, guide, optim.Adam(lr=lr), Trace_ELBO(), jit_compile=jit_compile)
    return (lambda: svi.step(Xt, yt)), (lambda: svi.evaluate_loss(Xt, yt))


# --------------------------------------------------------------------------- Pyro
def import_pyro() -> Any:
    try:
        import pyro
    except ImportError:
        return None
    return pyro


def pyro_steps(pyro: Any, torch: Any, X: np.ndarray, y: np.ndarray, case: str) -> Callable[[], float]:
    import pyro.distributions as dist
    from pyro.infer import SVI, Trace_ELBO
    from pyro.infer.autoguide import AutoMultivariateNormal, AutoNormal
    from pyro.infer.autoguide.initialization import init_to_value

    torch.set_default_dtype(torch.float64)
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    if case == "bnn":
        shapes = bnn_shapes(X.shape[1], 10)

        def model(X, y=None):
            w = {k: pyro.sample(k, dist.Normal(0.0, 1.0).expand(s).to_event(len(s))) for k, s in shapes.items()}
            with pyro.plate("data", X.shape[0]):
                logits = torch.tanh(X @ w["w1"] + w["b1"]) @ w["w2"] + w["b2"]
                pyro.sample("obs", dist.Categorical(logits=logits), obs=y)

        guide = AutoNormal(model, init_loc_fn=init_to_value(values={k: torch.zeros(s) for k, s in shapes.items()}))
        lr = 1e-3
    else:
        d = X.shape[1]

        def model(X, y=None):
            w = pyro.sample("w", dist.Normal(torch.zeros(d), 1.0).to_event(1))
            b = pyro.sample("b", dist.Normal(0.0, 1.0))
            with pyro.plate("data", X.shape[0]):
                pyro.sample("y", dist.Normal(X @ w + b, NOISE), obs=y)

        guide = AutoMultivariateNormal(model, init_loc_fn=init_to_value(values={"w": torch.zeros(d),
                                                                                "b": torch.tensor(0.0)}))
        lr = 1e-2
    svi = SVI(model, guide, pyro.optim.Adam({"lr": lr}), Trace_ELBO())
    return (lambda: svi.step(Xt, yt)), (lambda: svi.evaluate_loss(Xt, yt))


# --------------------------------------------------------------------------- NumPyro
def import_numpyro() -> Any:
    try:
        import jax
        import numpyro
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    numpyro.set_platform("cpu")
    return numpyro


def numpyro_steps(numpyro: Any, X: np.ndarray, y: np.ndarray, case: str) -> Callable[[], float]:
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from numpyro.infer import SVI, Trace_ELBO, init_to_value
    from numpyro.infer.autoguide import AutoMultivariateNormal, AutoNormal

    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    if case == "bnn":
        shapes = bnn_shapes(X.shape[1], 10)

        def model(X, y=None):
            w = {k: numpyro.sample(k, dist.Normal(0.0, 1.0).expand(s).to_event(len(s))) for k, s in shapes.items()}
            with numpyro.plate("data", X.shape[0]):
                logits = jnp.tanh(X @ w["w1"] + w["b1"]) @ w["w2"] + w["b2"]
                numpyro.sample("obs", dist.Categorical(logits=logits), obs=y)

        guide = AutoNormal(model, init_loc_fn=init_to_value(values={k: jnp.zeros(s) for k, s in shapes.items()}))
        lr = 1e-3
    else:
        d = X.shape[1]

        def model(X, y=None):
            w = numpyro.sample("w", dist.Normal(jnp.zeros(d), 1.0).to_event(1))
            b = numpyro.sample("b", dist.Normal(0.0, 1.0))
            with numpyro.plate("data", X.shape[0]):
                numpyro.sample("y", dist.Normal(X @ w + b, NOISE), obs=y)

        guide = AutoMultivariateNormal(model, init_loc_fn=init_to_value(values={"w": jnp.zeros(d), "b": 0.0}))
        lr = 1e-2
    svi = SVI(model, guide, numpyro.optim.Adam(lr), Trace_ELBO())
    update = jax.jit(svi.update)
    state = svi.init(jax.random.PRNGKey(0), Xj, yj)
    initial_params = svi.get_params(state)
    loss_at = jax.jit(lambda key: svi.loss.loss(key, initial_params, svi.model, svi.guide, Xj, yj))
    keys = iter(jax.random.split(jax.random.PRNGKey(1), 10_000))

    def step() -> float:
        nonlocal state
        state, loss = update(state, Xj, yj)
        loss.block_until_ready()
        return loss

    return step, lambda: loss_at(next(keys))


# --------------------------------------------------------------------------- driver
def initial_loss(evaluate: Callable[[], Any], n: int) -> dict:
    """Mean and standard error of ``n`` independent one-sample loss estimates at the starting point."""
    values = [float(evaluate()) for _ in range(n)]
    return {"mean": statistics.fmean(values), "se": statistics.stdev(values) / n**0.5}


def run_case(name: str, case: str, X: np.ndarray, y: np.ndarray, libs: dict, iters: int, repeats: int) -> dict:
    made = {"probdl": probdl_steps(X, y, case)}
    if libs["pyro"] is not None:
        made["pyro"] = pyro_steps(libs["pyro"], libs["torch"], X, y, case)
    if libs["numpyro"] is not None:
        made["numpyro"] = numpyro_steps(libs["numpyro"], X, y, case)
    check = {lib: initial_loss(evaluate, CHECK_EVALS) for lib, (_, evaluate) in made.items()}
    fns = {lib: step for lib, (step, _) in made.items()}
    timings = time_interleaved(fns, iters, repeats, warmup=5)
    ms = {lib: summarize(t, 1e3) for lib, t in timings.items()}
    # probdl's uncompiled steps, timed after the others (its parameters would share the param store)
    eager_step, _ = probdl_steps(X, y, case, jit_compile=False)
    ms["probdl eager"] = summarize(time_interleaved({"eager": eager_step}, iters, repeats, warmup=5)["eager"], 1e3)
    ratios = {f"probdl/{lib}": ms["probdl"]["median"] / ms[lib]["median"] for lib in ms
              if lib not in ("probdl", "probdl eager")}
    return {"case": name, "ms": ms, "ratios": ratios, "initial_loss": check}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: few iterations and repeats")
    p.add_argument("--json", type=Path, default=HERE / "results" / "bench_svi.json")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for NumPy's BLAS, PyTorch and XLA (default: NumPy's own count)")
    args = p.parse_args(argv)
    if args.threads is not None:  # XLA reads its thread settings when jax is first imported
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                                   f"intra_op_parallelism_threads={args.threads}").strip()
    torch = import_torch()
    libs = {"torch": torch, "pyro": import_pyro() if torch is not None else None, "numpyro": import_numpyro()}
    threads = pin_threads(args.threads, torch)
    load_start = load_average()
    iters, repeats = (5, 3) if args.quick else (30, 7)
    Xd, yd = digits_data()
    Xr, yr = regression_data()
    cases = [
        run_case("BNN digits 64-50-10 tanh, 1797 full batch, AutoNormal", "bnn", Xd, yd, libs, iters, repeats),
        run_case("linear regression n=1000 d=10, AutoMultivariateNormal", "linreg", Xr, yr, libs, iters * 4,
                 repeats),
    ]
    env = environment(threads, torch)
    env["pyro"] = libs["pyro"].__version__ if libs["pyro"] is not None else "not installed"
    env["numpyro"] = libs["numpyro"].__version__ if libs["numpyro"] is not None else "not installed"
    if libs["numpyro"] is not None:
        import jax

        env["jax"] = jax.__version__
    env["load_average_start"], env["load_average_end"] = load_start, load_average()
    print(f"probdl {env['probdl']} ({env['git_commit']}) | numpy {env['numpy']} | torch {env['torch']} | pyro "
          f"{env['pyro']} | numpyro {env['numpyro']} | threads {threads} | load {env['load_average_start']} -> "
          f"{env['load_average_end']}")
    print("ms per SVI step (float64, 1 particle, Adam), median of interleaved repeats; NumPyro jitted; probdl with "
          "jit_compile=True (compiled by trace and replay), and eager")
    libs_shown = ["probdl", "pyro", "numpyro"]
    rows = []
    for c in cases:
        row = [c["case"], f"{c['ms']['probdl eager']['median']:.3f}"]
        row += [f"{c['ms'][lib]['median']:.3f}" if lib in c["ms"] else "not installed" for lib in libs_shown]
        row += [f"{c['ratios'][f'probdl/{lib}']:.2f}x" if f"probdl/{lib}" in c["ratios"] else "-"
                for lib in libs_shown[1:]]
        rows.append(row)
    print(table(["case", "probdl eager"] + libs_shown + ["probdl/pyro", "probdl/numpyro"], rows))
    print(f"loss (negative ELBO) at the common starting point, mean ± standard error of {CHECK_EVALS} one-sample "
          "estimates (the same model and guide: the libraries agree within a few standard errors)")
    print(table(["case"] + libs_shown,
                [[c["case"]] + [f"{c['initial_loss'][lib]['mean']:.1f} ± {c['initial_loss'][lib]['se']:.1f}"
                                if lib in c["initial_loss"] else "not installed" for lib in libs_shown]
                 for c in cases]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"environment": env, "cases": cases, "time": time.time()}, indent=2) + "\n")
    print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
