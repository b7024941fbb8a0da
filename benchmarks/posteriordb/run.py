"""NUTS on every posteriordb reference posterior in ../shared/posteriordb, compared with the gold-standard draws.

For each posterior: 4 chains of NUTS with the defaults (1000 warmup + 1000 draws, diagonal mass matrix, target
acceptance 0.8, max tree depth 10), then for every parameter p in the reference draws (derived quantities are
deterministic sites of the model) the README's rule:

1. |mean(p) - mean_ref(p)| <= 0.15 sd_ref(p), and
2. |sd(p) / sd_ref(p) - 1| <= 0.15;

a posterior passes when every parameter does. Also reported: the worst parameter (the largest of
|Δmean| / (0.15 sd_ref) and |sd ratio - 1| / 0.15, so > 1 fails) with its z-score
z = Δmean / sqrt(mcse² + mcse_ref²) (mcse = sd / sqrt(bulk ESS)), the minimum bulk ESS and maximum split R-hat
over parameters (from ArviZ), the number of post-warmup divergences, the wall time and min bulk ESS per second.

Usage::

    .venv/bin/python benchmarks/posteriordb/run.py [NAME ...] [--chains 4] [--warmup 1000] [--samples 1000]
        [--chain-method parallel|sequential|vectorized] [--seed 0] [--json PATH]

Writes ``benchmarks/results/posteriordb.json`` by default.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from models import NAMES, load, to_reference_names  # noqa: E402

from probdl.infer import MCMC, NUTS  # noqa: E402
from probdl.infer.diagnostics import effective_sample_size, split_gelman_rubin  # noqa: E402

TOLERANCE = 0.15


def compare(draws: dict[str, np.ndarray], reference: dict[str, np.ndarray], summary: dict) -> dict:
    """Per-parameter comparison with the reference; ``draws`` are (chains, draws) arrays by Stan name."""
    rows = {}
    for p, ref in reference.items():
        x = draws[p]
        mean_ref, sd_ref = float(ref.mean()), float(ref.std(ddof=1))
        mean, sd = float(x.mean()), float(x.std(ddof=1))
        ess = float(effective_sample_size(x, method="bulk"))
        rhat = float(split_gelman_rubin(x))
        mcse_ref = float(summary["parameters"][p]["mcse_mean_ref"])
        mcse = sd / math.sqrt(max(ess, 1.0))
        z = (mean - mean_ref) / math.sqrt(mcse ** 2 + mcse_ref ** 2) if sd_ref > 0 else 0.0
        mean_err = abs(mean - mean_ref) / (TOLERANCE * sd_ref) if sd_ref > 0 else 0.0
        sd_err = abs(sd / sd_ref - 1.0) / TOLERANCE if sd_ref > 0 else 0.0
        rows[p] = {"mean": mean, "mean_ref": mean_ref, "sd": sd, "sd_ref": sd_ref, "ess_bulk": ess, "r_hat": rhat,
                   "z": z, "mean_error": mean_err, "sd_error": sd_err, "pass": mean_err <= 1.0 and sd_err <= 1.0}
    return rows


def run_one(name: str, args: argparse.Namespace) -> dict:
    post = load(name)
    mcmc = MCMC(NUTS(post.model), num_warmup=args.warmup, num_samples=args.samples, num_chains=args.chains,
                chain_method=args.chain_method, progress_bar=False)
    start = time.perf_counter()
    mcmc.run(*post.model_args, seed=args.seed, **post.model_kwargs)
    wall = time.perf_counter() - start
    draws = to_reference_names(mcmc.get_samples(group_by_chain=True))
    missing = sorted(set(post.reference) - set(draws))
    if missing:
        raise KeyError(f"{name}: the model gives no draws for reference parameters {missing}")
    rows = compare(draws, post.reference, post.summary)
    fields = mcmc.get_extra_fields()
    worst = max(rows, key=lambda p: max(rows[p]["mean_error"], rows[p]["sd_error"]))
    min_ess = min(r["ess_bulk"] for r in rows.values())
    return {
        "posterior": name, "pass": all(r["pass"] for r in rows.values()), "worst": worst,
        "worst_error": max(rows[worst]["mean_error"], rows[worst]["sd_error"]), "worst_z": rows[worst]["z"],
        "min_ess_bulk": min_ess, "max_r_hat": max(r["r_hat"] for r in rows.values()),
        "divergences": int(fields["diverging"].sum()), "mean_tree_depth": float(fields["tree_depth"].mean()),
        "mean_steps": float(fields["num_steps"].mean()), "wall_s": wall, "ess_per_s": min_ess / wall,
        "parameters": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="posteriors to run (default: all)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--chain-method", default="parallel", choices=("parallel", "sequential", "vectorized"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=HERE.parent / "results" / "posteriordb.json")
    args = parser.parse_args(argv)
    names = args.names or NAMES
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        parser.error(f"unknown posteriors {unknown}")
    header = (f"{'posterior':46s} {'result':6s} {'worst parameter':22s} {'err':>5s} {'z':>6s} {'min ESS':>8s} "
              f"{'R-hat':>6s} {'div':>4s} {'depth':>5s} {'wall s':>7s} {'ESS/s':>7s}")
    print(header)
    print("-" * len(header))
    results = []
    for name in names:
        try:
            r = run_one(name, args)
        except Exception as e:  # noqa: BLE001  (one failing posterior is reported, the others still run)
            r = {"posterior": name, "pass": False, "error": f"{type(e).__name__}: {e}"}
            print(f"{name:46s} ERROR  {r['error']}", flush=True)
            results.append(r)
            continue
        results.append(r)
        print(f"{name:46s} {'pass' if r['pass'] else 'FAIL':6s} {r['worst'][:22]:22s} {r['worst_error']:5.2f} "
              f"{r['worst_z']:6.2f} {r['min_ess_bulk']:8.0f} {r['max_r_hat']:6.3f} {r['divergences']:4d} "
              f"{r['mean_tree_depth']:5.2f} {r['wall_s']:7.1f} {r['ess_per_s']:7.1f}", flush=True)
    passed = sum(r["pass"] for r in results)
    print(f"{passed}/{len(results)} posteriors pass")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    settings = {"chains": args.chains, "warmup": args.warmup, "samples": args.samples,
                "chain_method": args.chain_method, "seed": args.seed}
    args.json.write_text(json.dumps({"settings": settings, "results": results}, indent=1))
    print(f"results written to {args.json}")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
