"""The posteriordb models of benchmarks/posteriordb/models.py: their log densities against direct SciPy
transcriptions of model.md (so that a sampler is judged on the right posterior), and NUTS against the reference
draws of three of them (slow). Skipped when ../shared/posteriordb is not there (CI clones only this repo)."""
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "posteriordb"))

import models  # noqa: E402

from probdl.infer import MCMC, NUTS  # noqa: E402
from probdl.infer.util import log_density  # noqa: E402

pytestmark = pytest.mark.skipif(not models.POSTERIOR_DIR.is_dir(), reason="../shared/posteriordb is not available")


def reference_draws(post, n=5):
    """n reference draws as (Stan name -> value) dicts."""
    return [{k: v.ravel()[i * 997] for k, v in post.reference.items()} for i in range(n)]


def vector(draw, name, k):
    return np.array([draw[f"{name}[{i + 1}]"] for i in range(k)])


def scipy_regression(X, y, beta, sigma, beta_logpdf=0.0, sigma_logpdf=0.0):
    return stats.norm.logpdf(y, X @ beta, sigma).sum() + beta_logpdf + sigma_logpdf


CASES = {
    "nes1980-nes": lambda a, d: scipy_regression(a[0].numpy(), a[1].numpy(), vector(d, "beta", 9), d["sigma"]),
    "kidiq-kidscore_momhsiq": lambda a, d: scipy_regression(
        a[0].numpy(), a[1].numpy(), vector(d, "beta", 3), d["sigma"], 0.0, -np.log1p((d["sigma"] / 2.5) ** 2)),
    "mesquite-logmesquite_logvas": lambda a, d: scipy_regression(
        a[0].numpy(), a[1].numpy(), vector(d, "beta", 7), d["sigma"]),
    "sblri-blr": lambda a, d: scipy_regression(
        a[0].numpy(), a[1].numpy(), vector(d, "beta", 5), d["sigma"],
        stats.norm.logpdf(vector(d, "beta", 5), 0, 10).sum(), stats.halfnorm.logpdf(d["sigma"], scale=10)),
}


def garch_logpdf(args, d):
    y, sigma1 = args[0].numpy(), args[1]
    s = [sigma1]
    for t in range(1, len(y)):
        s.append(np.sqrt(d["alpha0"] + d["alpha1"] * (y[t - 1] - d["mu"]) ** 2 + d["beta1"] * s[-1] ** 2))
    return stats.norm.logpdf(y, d["mu"], np.array(s)).sum()


def gp_logpdf(args, d):
    x, y = args[0].numpy(), args[1].numpy()
    cov = d["alpha"] ** 2 * np.exp(-(x[:, None] - x[None]) ** 2 / (2 * d["rho"] ** 2)) + d["sigma"] * np.eye(len(x))
    return (stats.multivariate_normal.logpdf(y, np.zeros(len(x)), cov) + stats.gamma.logpdf(d["rho"], 25, scale=0.25)
            + stats.halfnorm.logpdf(d["alpha"], scale=2) + stats.halfnorm.logpdf(d["sigma"], scale=1))


def mixture_logpdf(args, d):
    y = args[0].numpy()
    mu, sigma, theta = vector(d, "mu", 2), vector(d, "sigma", 2), d["theta"]
    lik = np.logaddexp(np.log(theta) + stats.norm.logpdf(y, mu[0], sigma[0]),
                       np.log1p(-theta) + stats.norm.logpdf(y, mu[1], sigma[1])).sum()
    return (lik + stats.norm.logpdf(mu, 0, 2).sum() + stats.halfnorm.logpdf(sigma, scale=2).sum()
            + stats.beta.logpdf(theta, 5, 5))


def eight_schools_logpdf(args, d):
    y, sigma = args[0].numpy(), args[1].numpy()
    theta = vector(d, "theta", 8)
    theta_trans = (theta - d["mu"]) / d["tau"]
    # the density of (mu, tau, theta_trans); theta is derived
    return (stats.norm.logpdf(y, theta, sigma).sum() + stats.norm.logpdf(theta_trans).sum()
            + stats.norm.logpdf(d["mu"], 0, 5) + stats.halfcauchy.logpdf(d["tau"], scale=5))


def diamonds_logpdf(args, d):
    Xc, y = args[0].numpy(), args[1].numpy()
    b = vector(d, "b", 24)
    return (stats.norm.logpdf(y, d["Intercept"] + Xc @ b, d["sigma"]).sum() + stats.norm.logpdf(b).sum()
            + stats.t.logpdf(d["Intercept"], 3, 8, 10) + stats.t.logpdf(d["sigma"], 3, 0, 10))


CASES.update({"garch-garch11": garch_logpdf, "gp_pois_regr-gp_regr": gp_logpdf,
              "low_dim_gauss_mix-low_dim_gauss_mix": mixture_logpdf,
              "eight_schools-eight_schools_noncentered": eight_schools_logpdf, "diamonds-diamonds": diamonds_logpdf})


def site_values(name, draw):
    """The model's latent site values (constrained) at a reference draw (non-centred/derived ones recovered)."""
    grouped = {}
    for key, v in draw.items():
        base, _, idx = key.partition("[")
        grouped.setdefault(base, {})[int(idx[:-1]) - 1 if idx else None] = v
    values = {b: (g[None] if None in g else np.array([g[i] for i in range(len(g))])) for b, g in grouped.items()}
    if name == "eight_schools-eight_schools_noncentered":
        values["theta_trans"] = (values.pop("theta") - values["mu"]) / values["tau"]
    if name == "garch-garch11":
        a1, b1 = values.pop("alpha1"), values.pop("beta1")
        values["alpha1_logit"] = special.logit(a1)
        values["beta1_logit"] = special.logit(b1 / (1 - a1))
    return values


@pytest.mark.parametrize("name", sorted(CASES))
def test_log_density_equals_a_scipy_transcription_up_to_a_constant(name):
    post = models.load(name)
    draws = reference_draws(post)
    ours = np.array([float(log_density(post.model, post.model_args, {}, site_values(name, d))[0].item())
                     for d in draws])
    theirs = np.array([CASES[name](post.model_args, d) for d in draws])
    if name == "garch-garch11":
        # flat on the triangle in (alpha1, beta1): our density in the logits carries the Jacobian; remove it
        for i, d in enumerate(draws):
            a, r = d["alpha1"], d["beta1"] / (1 - d["alpha1"])
            ours[i] -= np.log(a) + 2 * np.log1p(-a) + np.log(r) + np.log1p(-r)
    np.testing.assert_allclose(np.diff(ours), np.diff(theirs), rtol=1e-8, atol=1e-8)


def test_every_reference_parameter_has_a_site():
    for name in models.NAMES:
        post = models.load(name)
        shapes = {k: np.shape(v) for k, v in site_values(name, reference_draws(post, 1)[0]).items()}
        fake = {k: np.zeros((1, 2) + s) for k, s in shapes.items()}
        if name == "eight_schools-eight_schools_noncentered":
            fake["theta"] = fake["theta_trans"]
        if name == "garch-garch11":
            fake["alpha1"] = fake["beta1"] = np.zeros((1, 2))
        assert set(post.reference) <= set(models.to_reference_names(fake)), name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sblri-blr", "kidiq_with_mom_work-kidscore_interaction_z",
                                  "mesquite-logmesquite_logvolume"])
def test_nuts_matches_the_reference(name):
    """The README's rule: every parameter's mean within 0.15 reference sd and its sd within 15%."""
    post = models.load(name)
    mcmc = MCMC(NUTS(post.model), num_warmup=1000, num_samples=1000, num_chains=4, chain_method="parallel",
                progress_bar=False)
    mcmc.run(*post.model_args, seed=0)
    draws = models.to_reference_names(mcmc.get_samples(group_by_chain=True))
    for p, ref in post.reference.items():
        assert abs(draws[p].mean() - ref.mean()) <= 0.15 * ref.std(ddof=1), p
        assert abs(draws[p].std(ddof=1) / ref.std(ddof=1) - 1) <= 0.15, p
