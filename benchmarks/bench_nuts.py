"""NUTS end to end in probdl, NumPyro and Pyro: eight schools (non-centred) and a Bayesian logistic regression.

Cases (float64 everywhere, NUTS defaults: diagonal mass matrix, target acceptance 0.8, max tree depth 10):

- **eight schools**, non-centred: mu ~ Normal(0, 5), tau ~ HalfCauchy(5), theta_tilde_j ~ Normal(0, 1),
  y_j ~ Normal(mu + tau theta_tilde_j, sigma_j), J = 8;
- **logistic regression** on scikit-learn's breast-cancer data: 30 standardized features plus an intercept,
  Normal(0, 1) priors on all 31 coefficients, Bernoulli(logits) likelihood on the 569 rows.

Each library runs 4 chains x (1000 warmup + 1000 draws) in a fresh subprocess of this script, timed end to end
as a user waits (model definition to samples in hand; NumPyro's JIT compilation included), and NumPyro once
more in the same process after compilation (its steady state). probdl runs twice: its chains in parallel
processes (``chain_method="parallel"``, row "probdl"), and advanced together in batches, one batch per core
(``chain_method="vectorized"``, row "probdl-vec"); NumPyro with ``numpyro.set_host_device_count(4)`` and
``chain_method="parallel"``; Pyro sequentially (its multiprocessing chains are slower on CPU). The machine has 2 cores.

Reported per run: wall time, the minimum bulk ESS over all latent parameters (one ArviZ computation for every
library, on (chains, draws) arrays), ESS per second, gradient evaluations (leapfrog steps, warmup included)
per second, divergences, mean tree depth, and peak resident memory of the subprocess. Then the ratios of
probdl's ESS/s to NumPyro's (end to end and steady state) and to Pyro's, a memory-growth check (probdl eight
schools with 1000 and 4000 draws per chain: the difference should be the stored draws), and a cProfile of one
probdl chain (eight schools, 300 + 300) and of two batched chains (logistic regression), so we know where the
time goes. The minimum bulk ESS of one run varies by 10-20% with the seed, so probdl and NumPyro each also run
with seeds 1..4 in the same process (not timed), and a second table compares ESS/s from the median over the
five seeds with the timed run's wall time.

Usage::

    PYTHONPATH=. .venv-peers/bin/python benchmarks/bench_nuts.py [--quick] [--json PATH]
    .venv/bin/python benchmarks/bench_nuts.py          (probdl only)
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEEDS = 5  # probdl and NumPyro also run with seeds 1..4 (untimed) to show how much the minimum ESS varies
Y8 = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]
SIGMA8 = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]


def cancer_data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    return np.column_stack([np.ones(len(X)), X]), y.astype(np.float64)


def min_bulk_ess(samples: dict[str, np.ndarray]) -> float:
    import arviz as az

    out = np.inf
    for v in samples.values():
        v = np.asarray(v, dtype=np.float64)
        flat = v.reshape(v.shape[:2] + (-1,))
        for j in range(flat.shape[2]):
            out = min(out, float(az.ess(flat[:, :, j], method="bulk")))
    return out


# ---------------------------------------------------------------------------- one run per library
def run_probdl(case: str, chains: int, warmup: int, draws: int, seeds: int = 1, method: str = "parallel") -> dict:
    import probdl as pd
    import probdl.distributions as dist
    from probdl.infer import MCMC, NUTS
    from probdl.primitives import deterministic, plate, sample

    if case == "eight_schools":
        def model(y, sigma):
            mu = sample("mu", dist.Normal(0.0, 5.0))
            tau = sample("tau", dist.HalfCauchy(5.0))
            with plate("J", 8):
                tt = sample("theta_tilde", dist.Normal(0.0, 1.0))
                deterministic("theta", mu + tau * tt)
                sample("y", dist.Normal(mu + tau * tt, sigma), obs=y)
        args, latent = (pd.tensor(Y8), pd.tensor(SIGMA8)), ("mu", "tau", "theta_tilde")
    else:
        def model(X, y):
            beta = sample("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
            with plate("data", X.shape[0]):
                sample("y", dist.Bernoulli(logits=X @ beta), obs=y)
        X, y = cancer_data()
        args, latent = (pd.tensor(X), pd.tensor(y)), ("beta",)
    steps = [0]

    class CountingNUTS(NUTS):
        """NUTS that counts potential-and-gradient evaluations (warmup included) across its chains."""

        def sample(self, state):
            new = super().sample(state)
            steps[0] += new.num_steps
            return new

    if method == "parallel" and chains == 1:
        method = "sequential"
    mcmc = MCMC(CountingNUTS(model), num_warmup=warmup, num_samples=draws, num_chains=chains, chain_method=method,
                progress_bar=False)
    start = time.perf_counter()
    mcmc.run(*args, seed=0)
    samples = mcmc.get_samples(group_by_chain=True)
    wall = time.perf_counter() - start
    fields = mcmc.get_extra_fields()
    # the counter lives in the chain processes when they are forked, and batched chains do not call sample():
    # then the warmup's steps are estimated from the sampling phase
    grads = steps[0] or int(fields["num_steps"].sum() * (warmup + draws) / draws)
    ess = [min_bulk_ess({k: samples[k] for k in latent})]
    for seed in range(1, seeds):  # the same run with other seeds: how much the minimum ESS varies
        mcmc.run(*args, seed=seed)
        samples = mcmc.get_samples(group_by_chain=True)
        ess.append(min_bulk_ess({k: samples[k] for k in latent}))
    return {"wall_s": wall, "min_ess": ess[0], "min_ess_by_seed": ess, "grad_evals": grads,
            "divergences": int(fields["diverging"].sum()), "mean_tree_depth": float(fields["tree_depth"].mean()),
            "grad_evals_exact": bool(steps[0])}


def run_numpyro(case: str, chains: int, warmup: int, draws: int, seeds: int = 1) -> dict:
    import numpyro

    numpyro.set_host_device_count(chains)
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    jax.config.update("jax_enable_x64", True)
    if case == "eight_schools":
        def model(y, sigma):
            mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
            tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
            with numpyro.plate("J", 8):
                tt = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
                numpyro.sample("y", dist.Normal(mu + tau * tt, sigma), obs=y)
        args = (jnp.array(Y8), jnp.array(SIGMA8))
    else:
        def model(X, y):
            beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
            with numpyro.plate("data", X.shape[0]):
                numpyro.sample("y", dist.Bernoulli(logits=X @ beta), obs=y)
        X, y = cancer_data()
        args = (jnp.array(X), jnp.array(y))
    out = {}
    mcmc = MCMC(NUTS(model), num_warmup=warmup, num_samples=draws, num_chains=chains, chain_method="parallel",
                progress_bar=False, jit_model_args=True)
    for phase in ("end_to_end", "steady"):  # the second run of the same MCMC reuses the compiled sampler
        start = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(0), *args, extra_fields=("num_steps", "diverging"))
        samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        out[phase] = time.perf_counter() - start
    fields = mcmc.get_extra_fields()
    num_steps = np.asarray(fields["num_steps"])
    ess = [min_bulk_ess(samples)]
    for seed in range(1, seeds):  # the same run with other seeds: how much the minimum ESS varies
        mcmc.run(jax.random.PRNGKey(seed), *args)
        ess.append(min_bulk_ess({k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}))
    return {"wall_s": out["end_to_end"], "steady_wall_s": out["steady"], "min_ess": ess[0], "min_ess_by_seed": ess,
            "grad_evals": int(num_steps.sum() * (warmup + draws) / draws), "grad_evals_exact": False,
            "divergences": int(np.asarray(fields["diverging"]).sum()),
            "mean_tree_depth": None}  # NumPyro keeps no tree depth; num_steps gives the work


def run_pyro(case: str, chains: int, warmup: int, draws: int, seeds: int = 1) -> dict:  # one seed: minutes a run
    import pyro
    import pyro.distributions as dist
    import torch
    from pyro.infer import MCMC, NUTS

    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    if case == "eight_schools":
        def model(y, sigma):
            mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
            tau = pyro.sample("tau", dist.HalfCauchy(5.0))
            with pyro.plate("J", 8):
                tt = pyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
                pyro.sample("y", dist.Normal(mu + tau * tt, sigma), obs=y)
        args = (torch.tensor(Y8), torch.tensor(SIGMA8))
    else:
        def model(X, y):
            beta = pyro.sample("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
            with pyro.plate("data", X.shape[0]):
                pyro.sample("y", dist.Bernoulli(logits=X @ beta), obs=y)
        X, y = cancer_data()
        args = (torch.tensor(X), torch.tensor(y))
    start = time.perf_counter()
    per_chain = []
    for c in range(chains):  # sequential chains, each its own MCMC (Pyro's multi-chain mode forks on CPU slowly)
        pyro.set_rng_seed(c)
        mcmc = MCMC(NUTS(model), num_samples=draws, warmup_steps=warmup, disable_progbar=True)
        mcmc.run(*args)
        per_chain.append({k: v.numpy() for k, v in mcmc.get_samples().items()})
    wall = time.perf_counter() - start
    samples = {k: np.stack([p[k] for p in per_chain]) for k in per_chain[0]}
    return {"wall_s": wall, "min_ess": min_bulk_ess(samples), "grad_evals": None, "grad_evals_exact": False,
            "divergences": None, "mean_tree_depth": None}


def run_probdl_vectorized(case: str, chains: int, warmup: int, draws: int, seeds: int = 1) -> dict:
    return run_probdl(case, chains, warmup, draws, seeds, method="vectorized")


RUNNERS = {"probdl": run_probdl, "probdl-vec": run_probdl_vectorized, "numpyro": run_numpyro, "pyro": run_pyro}


def child(lib: str, case: str, chains: int, warmup: int, draws: int, seeds: int) -> None:
    result = RUNNERS[lib](case, chains, warmup, draws, seeds)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result["peak_rss_children_mb"] = children
    print("RESULT " + json.dumps(result))


def spawn(lib: str, case: str, chains: int, warmup: int, draws: int, seeds: int = 1) -> dict | None:
    cmd = [sys.executable, __file__, "--child", lib, case, str(chains), str(warmup), str(draws), str(seeds)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    if any("No module named" in t for t in tail):
        return None
    return {"error": " | ".join(tail)}


def profile_probdl_vectorized() -> str:
    """cProfile of 2 logistic-regression chains advanced together in this process (300 + 300)."""
    import os

    import probdl as pd
    import probdl.distributions as dist
    import probdl.infer.mcmc as mcmc_module
    from probdl.infer import MCMC, NUTS
    from probdl.primitives import plate, sample

    def model(X, y):
        beta = sample("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
        with plate("data", X.shape[0]):
            sample("y", dist.Bernoulli(logits=X @ beta), obs=y)

    X, y = cancer_data()
    mcmc = MCMC(NUTS(model), num_warmup=300, num_samples=300, num_chains=2, chain_method="vectorized",
                progress_bar=False)
    cpu_count = os.cpu_count
    mcmc_module.os.cpu_count = lambda: 1  # one batch, in this process
    try:
        prof = cProfile.Profile()
        prof.runcall(mcmc.run, pd.tensor(X), pd.tensor(y), seed=0)
    finally:
        mcmc_module.os.cpu_count = cpu_count
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
    return buf.getvalue()


def profile_probdl() -> str:
    import probdl as pd
    import probdl.distributions as dist
    from probdl.infer import MCMC, NUTS
    from probdl.primitives import plate, sample

    def model(y, sigma):
        mu = sample("mu", dist.Normal(0.0, 5.0))
        tau = sample("tau", dist.HalfCauchy(5.0))
        with plate("J", 8):
            tt = sample("theta_tilde", dist.Normal(0.0, 1.0))
            sample("y", dist.Normal(mu + tau * tt, sigma), obs=y)

    mcmc = MCMC(NUTS(model), num_warmup=300, num_samples=300, progress_bar=False)
    prof = cProfile.Profile()
    prof.runcall(mcmc.run, pd.tensor(Y8), pd.tensor(SIGMA8), seed=0)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, lib, case, chains, warmup, draws, seeds = sys.argv
        child(lib, case, int(chains), int(warmup), int(draws), int(seeds))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 chain x (200 + 200), no memory check or profile")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "bench_nuts.json")
    args = parser.parse_args(argv)
    chains, warmup, draws = (1, 200, 200) if args.quick else (4, 1000, 1000)
    seeds = 1 if args.quick else SEEDS
    sys.path.insert(0, str(HERE))
    from bench_engine import environment, import_torch

    env = environment({"cpu_count": __import__("os").cpu_count()}, import_torch())
    print(" | ".join(f"{k} {v}" for k, v in env.items()))
    print(f"NUTS, {chains} chain(s) x ({warmup} warmup + {draws} draws), float64; one fresh process per run")
    header = (f"  {'case':20s} {'library':10s} {'wall s':>8s} {'min ESS':>8s} {'ESS/s':>8s} {'grad/s':>9s} "
              f"{'div':>4s} {'depth':>6s} {'peak MB':>8s}")
    print(header)
    results: dict[str, dict] = {}
    for case in ("eight_schools", "logistic"):
        for lib in RUNNERS:
            r = spawn(lib, case, chains, warmup, draws, seeds)
            results[f"{case}/{lib}"] = r
            if r is None:
                print(f"  {case:20s} {lib:10s} not installed")
                continue
            if "error" in r:
                print(f"  {case:20s} {lib:10s} error: {r['error'][:200]}")
                continue
            grad_s = f"{r['grad_evals'] / r['wall_s']:9.0f}" if r.get("grad_evals") else f"{'-':>9s}"
            rss = max(r["peak_rss_mb"], r["peak_rss_children_mb"])
            div = "-" if r["divergences"] is None else str(r["divergences"])
            depth = "-" if r["mean_tree_depth"] is None else f"{r['mean_tree_depth']:.2f}"
            print(f"  {case:20s} {lib:10s} {r['wall_s']:8.1f} {r['min_ess']:8.0f} {r['min_ess'] / r['wall_s']:8.1f} "
                  f"{grad_s} {div:>4s} {depth:>6s} {rss:8.0f}", flush=True)
            if lib == "numpyro":
                print(f"  {'':20s} {'(steady)':10s} {r['steady_wall_s']:8.1f} {r['min_ess']:8.0f} "
                      f"{r['min_ess'] / r['steady_wall_s']:8.1f}", flush=True)
    print("ratios of probdl's ESS/s (probdl: chains in parallel processes; probdl-vec: chain_method='vectorized')")
    for case in ("eight_schools", "logistic"):
        for mine in ("probdl", "probdl-vec"):
            p = results.get(f"{case}/{mine}")
            if not p or "error" in p:
                continue
            ess_s = p["min_ess"] / p["wall_s"]
            for lib, key in (("numpyro", "wall_s"), ("numpyro", "steady_wall_s"), ("pyro", "wall_s")):
                q = results.get(f"{case}/{lib}")
                if q and "error" not in q:
                    print(f"  {case:20s} {mine:10s} vs {lib} {'steady' if key == 'steady_wall_s' else 'end to end':10s}"
                          f" {ess_s / (q['min_ess'] / q[key]):6.2f}x")
    if seeds > 1:
        print(f"minimum bulk ESS with seeds 0..{seeds - 1} (one run's is a noisy statistic), and ESS/s from its median "
              "and the seed-0 run's wall time")
        for case in ("eight_schools", "logistic"):
            numpyro = results.get(f"{case}/numpyro")
            reference = (statistics.median(numpyro["min_ess_by_seed"]) / numpyro["wall_s"]
                         if numpyro and "error" not in numpyro else None)
            for lib in ("probdl", "probdl-vec", "numpyro"):
                r = results.get(f"{case}/{lib}")
                if not r or "error" in r:
                    continue
                ess = r["min_ess_by_seed"]
                ess_s = statistics.median(ess) / r["wall_s"]
                ratio = f"  {ess_s / reference:5.2f}x NumPyro's" if reference and lib != "numpyro" else ""
                print(f"  {case:20s} {lib:10s} median {statistics.median(ess):6.0f} (min {min(ess):5.0f}, max "
                      f"{max(ess):5.0f})  ESS/s {ess_s:7.1f}{ratio}")
    memory = {}
    if not args.quick:
        for n in (1000, 4000):
            r = spawn("probdl", "eight_schools", 1, 500, n)
            memory[n] = r
        if all(memory.values()) and not any("error" in r for r in memory.values()):
            grow = memory[4000]["peak_rss_mb"] - memory[1000]["peak_rss_mb"]
            stored = 3000 * (1 + 1 + 8 + 8) * 8 * 2 / 2 ** 20  # draws: flat z and constrained sites, float64
            print(f"memory: probdl eight schools 1 chain, 1000 draws {memory[1000]['peak_rss_mb']:.0f} MB, 4000 draws "
                  f"{memory[4000]['peak_rss_mb']:.0f} MB: +{grow:.1f} MB for 3000 more draws (their storage: about "
                  f"{stored:.1f} MB)")
        print("profile of one probdl chain (eight schools, 300 + 300), top 15 by own time:")
        print(profile_probdl())
        print("profile of two batched probdl chains (logistic, 300 + 300, one process), top 15 by own time:")
        print(profile_probdl_vectorized())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    record = {"environment": env, "chains": chains, "warmup": warmup, "draws": draws, "results": results,
              "memory": memory}
    args.json.write_text(json.dumps(record, indent=1))
    print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
