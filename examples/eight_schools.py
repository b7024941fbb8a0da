"""Eight schools (Rubin 1981; Gelman et al., *Bayesian Data Analysis*, §5.5) with NUTS: the centred and the
non-centred parameterization side by side.

Eight schools report the estimated effect y_j of a coaching programme with standard error σ_j. The hierarchical
model

    μ ~ Normal(0, 5),  τ ~ HalfCauchy(5),  θ_j ~ Normal(μ, τ),  y_j ~ Normal(θ_j, σ_j)

has a funnel-shaped posterior: when τ is small the θ_j are squeezed together, and a sampler with one step size
cannot follow both the neck and the mouth of the funnel. NUTS then reports *divergent transitions* — a warning
that the draws are biased (here: small τ is under-explored). The non-centred form samples
θ̃_j ~ Normal(0, 1) and sets θ_j = μ + τ θ̃_j (a ``deterministic`` site): the same model, but a posterior
without the funnel, and no divergences (Betancourt & Girolami, "Hamiltonian Monte Carlo for Hierarchical
Models", 2015).

The script runs 4 chains of NUTS on each form, prints ArviZ's summary and the number of divergences of each,
and saves a trace plot of the non-centred run (needs matplotlib; skipped with a note without it).

Run::

    .venv/bin/python examples/eight_schools.py           (4 chains x (1000 + 1000), in parallel processes)
    .venv/bin/python examples/eight_schools.py --quick   (4 chains x (300 + 300))
"""
import argparse
import time
from pathlib import Path

import numpy as np

import probdl as pd
import probdl.distributions as dist
from probdl.infer import MCMC, NUTS
from probdl.primitives import deterministic, plate, sample

Y = pd.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = pd.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def centered(y, sigma):
    mu = sample("mu", dist.Normal(0.0, 5.0))
    tau = sample("tau", dist.HalfCauchy(5.0))
    with plate("school", len(sigma)):
        theta = sample("theta", dist.Normal(mu, tau))
        sample("y", dist.Normal(theta, sigma), obs=y)


def noncentered(y, sigma):
    mu = sample("mu", dist.Normal(0.0, 5.0))
    tau = sample("tau", dist.HalfCauchy(5.0))
    with plate("school", len(sigma)):
        theta_tilde = sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = deterministic("theta", mu + tau * theta_tilde)
        sample("y", dist.Normal(theta, sigma), obs=y)


def fit(model, num_warmup: int, num_samples: int, seed: int) -> MCMC:
    mcmc = MCMC(NUTS(model), num_warmup=num_warmup, num_samples=num_samples, num_chains=4,
                chain_method="parallel", progress_bar=True)
    start = time.perf_counter()
    mcmc.run(Y, SIGMA, seed=seed)
    print(f"{model.__name__}: {time.perf_counter() - start:.1f} s")
    return mcmc


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 + 300 iterations per chain")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=Path("eight_schools_trace.png"))
    args = parser.parse_args(argv)
    n = 300 if args.quick else 1000

    import arviz as az

    divergences = {}
    idatas = {}
    for model in (centered, noncentered):
        mcmc = fit(model, n, n, args.seed)
        idata = mcmc.to_arviz()
        idatas[model.__name__] = idata
        divergences[model.__name__] = int(mcmc.get_extra_fields()["diverging"].sum())
        print(az.summary(idata, var_names=["mu", "tau", "theta"], round_to=2).to_string())
        print()
    for name, count in divergences.items():
        print(f"{name:12s} divergent transitions: {count} of {4 * n}")
    print("the centred funnel diverges; the non-centred form samples the same posterior cleanly"
          if divergences["centered"] > divergences["noncentered"] else
          "note: the centred form did not diverge more this time (try another --seed)")
    tau = {k: idata.posterior["tau"].values for k, idata in idatas.items()}
    print(f"posterior mean of tau: centred {tau['centered'].mean():.2f}, non-centred {tau['noncentered'].mean():.2f} "
          "(the centred run under-explores small tau)")
    try:
        import matplotlib

        matplotlib.use("Agg")
        axes = az.plot_trace(idatas["noncentered"], var_names=["mu", "tau"])
        fig = np.ravel(axes)[0].figure
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"trace plot written to {args.plot}")
    except ImportError:
        print("matplotlib is not installed: no trace plot (pip install matplotlib)")


if __name__ == "__main__":
    main()
