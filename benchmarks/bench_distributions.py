"""log_prob and sample of Normal, Gamma and MultivariateNormal (d=50) on 10^6 values, against
scipy.stats and, when installed, PyTorch's distributions.

Each case times one call on 10^6 values (for the MVN, 10^6 vectors of dimension 50) with batch
parameters fixed, float64, on the CPU. probdl is timed with ``validate_args=False`` (the fast path)
and, in a second column, with validation on. The values are checked equal to scipy's before timing.
Target: probdl's log_prob within 1.2x of scipy's; the MVN log_prob works by one triangular solve
against the Cholesky factor (never an inverse).

Usage::

    PYTHONPATH=. python benchmarks/bench_distributions.py [--quick] [--json PATH] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats as st
from bench_engine import environment, import_torch, load_average, pin_threads, summarize, table, time_interleaved

import probdl.distributions as dist

HERE = Path(__file__).resolve().parent
TARGET = 1.2
N = 1_000_000
D = 50


def problems(n: int, rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """Parameters and values for each family; the MVN covariance is a well-conditioned random one."""
    a = rng.normal(size=(D, D))
    cov = a @ a.T / D + np.eye(D)
    return {
        "Normal": {"params": (0.3, 1.7), "x": rng.normal(size=n)},
        "Gamma": {"params": (2.5, 1.5), "x": rng.gamma(2.5, 1 / 1.5, size=n)},
        "MultivariateNormal": {"params": (rng.normal(size=D), cov),
                               "x": rng.multivariate_normal(np.zeros(D), cov, size=n)},
    }


def probdl_dist(name: str, params: tuple, validate: bool) -> dist.Distribution:
    if name == "Normal":
        return dist.Normal(*params, validate_args=validate)
    if name == "Gamma":
        return dist.Gamma(*params, validate_args=validate)
    return dist.MultivariateNormal(params[0], covariance_matrix=params[1], validate_args=validate)


def scipy_dist(name: str, params: tuple) -> Any:
    if name == "Normal":
        return st.norm(*params)
    if name == "Gamma":
        return st.gamma(params[0], scale=1 / params[1])
    return st.multivariate_normal(params[0], params[1])


def torch_dist(torch: Any, name: str, params: tuple) -> Any:
    D_ = torch.distributions
    p = [torch.as_tensor(v, dtype=torch.float64) for v in params]
    if name == "Normal":
        return D_.Normal(*p, validate_args=False)
    if name == "Gamma":
        return D_.Gamma(*p, validate_args=False)
    return D_.MultivariateNormal(p[0], covariance_matrix=p[1], validate_args=False)


def cases(name: str, prob: dict, torch: Any, n: int) -> dict[str, dict[str, Callable[[], Any]]]:
    """{'log_prob': {library: fn}, 'sample': {library: fn}} for one family."""
    params, x = prob["params"], prob["x"]
    fast, checked, ref = probdl_dist(name, params, False), probdl_dist(name, params, True), scipy_dist(name, params)
    np.testing.assert_allclose(fast.log_prob(x[:1000]).numpy(), ref.logpdf(x[:1000]), rtol=1e-9)
    rng = np.random.default_rng(1)
    m = len(x)
    log_prob = {"probdl": lambda: fast.log_prob(x), "probdl (validated)": lambda: checked.log_prob(x),
                "scipy": lambda: ref.logpdf(x)}
    sample = {"probdl": lambda: fast.sample((m,), rng=rng), "scipy": lambda: ref.rvs(size=m, random_state=rng)}
    if torch is not None:
        td, tx = torch_dist(torch, name, params), torch.as_tensor(x)
        np.testing.assert_allclose(td.log_prob(tx[:1000]).numpy(), ref.logpdf(x[:1000]), rtol=1e-9)
        log_prob["torch"] = lambda: td.log_prob(tx)
        sample["torch"] = lambda: td.sample((m,))
    return {"log_prob": log_prob, "sample": sample}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="10^5 values and fewer repeats")
    p.add_argument("--json", type=Path, default=HERE / "results" / "bench_distributions.json")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    torch = import_torch()
    threads = pin_threads(args.threads, torch)
    n = N // 10 if args.quick else N
    repeats = 3 if args.quick else 7
    results, rows = [], []
    for name, prob in problems(n, np.random.default_rng(0)).items():
        for op, fns in cases(name, prob, torch, n).items():
            timed = time_interleaved(fns, iters=1, repeats=repeats, warmup=1)
            ms = {lib: summarize(t, 1e3) for lib, t in timed.items()}
            ratio = ms["probdl"]["median"] / ms["scipy"]["median"]
            torch_ratio = ms["probdl"]["median"] / ms["torch"]["median"] if "torch" in ms else None
            results.append({"family": name, "op": op, "n": len(prob["x"]), "ms": ms, "ratio_vs_scipy": ratio,
                            "ratio_vs_torch": torch_ratio})
            rows.append([f"{name} {op}", f"{ms['probdl']['median']:.1f}",
                         f"{ms['probdl (validated)']['median']:.1f}" if "probdl (validated)" in ms else "-",
                         f"{ms['scipy']['median']:.1f}",
                         f"{ms['torch']['median']:.1f}" if "torch" in ms else "not installed",
                         f"{ratio:.2f}x", "-" if torch_ratio is None else f"{torch_ratio:.2f}x"])
    env = environment(threads, torch)
    print(f"probdl {env['probdl']} ({env['git_commit']}) | numpy {env['numpy']} | torch {env['torch']} | "
          f"threads {threads} | load {env['load_average_start']} -> {load_average()}")
    print(f"ms per call on {n:.0e} values (MVN: vectors of dimension {D}), float64 CPU, median of {repeats}")
    print(table(["case", "probdl", "validated", "scipy", "torch", "vs scipy", "vs torch"], rows))
    worst = max(r["ratio_vs_scipy"] for r in results if r["op"] == "log_prob")
    print(f"target: log_prob within {TARGET}x of scipy: worst {worst:.2f}x -> {'PASS' if worst <= TARGET else 'MISS'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"environment": env, "cases": results, "time": time.time()}, indent=2) + "\n")
    print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
