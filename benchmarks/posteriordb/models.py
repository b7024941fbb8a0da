"""The posteriordb reference posteriors of ../shared/posteriordb as probdl models.

Each model follows its folder's ``model.md``: the same parameters under the reference's names (``beta`` gives
``beta[1]``, ...), derived quantities of the reference as ``deterministic`` sites, and the implicit priors made
explicit: a parameter with no prior statement gets an ``ImproperUniform`` on its support, which is flat in the
parameter itself (NUTS adds the log-Jacobian of ``biject_to``, so a flat σ > 0 stays flat in σ, not in log σ).
Data are converted once, in :func:`load`; the model functions take tensors.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import probdl as pd
import probdl.distributions as dist
from probdl.distributions import constraints
from probdl.primitives import deterministic, factor, plate, sample

POSTERIOR_DIR = Path(os.environ.get("PROBDL_POSTERIORDB",
                                    Path(__file__).resolve().parents[3] / "shared" / "posteriordb"))


class Posterior(NamedTuple):
    name: str
    model: Callable
    model_args: tuple
    model_kwargs: dict
    reference: dict[str, np.ndarray]
    summary: dict


# ---------------------------------------------------------------------------- model families
def flat(shape: tuple[int, ...] = (), support: constraints.Constraint = constraints.real) -> dist.Distribution:
    """The improper flat prior of a parameter with no prior statement."""
    return dist.ImproperUniform(support, (), shape)


def regression(X: Any, y: Any, beta_prior: dist.Distribution | None = None,
               sigma_prior: dist.Distribution | None = None) -> None:
    """y_i ~ Normal(X_i · β, σ); β and σ flat (on ℝ^K and σ > 0) unless priors are given."""
    k = X.shape[1]
    beta = sample("beta", beta_prior if beta_prior is not None else flat((k,)))
    sigma = sample("sigma", sigma_prior if sigma_prior is not None else flat((), constraints.positive))
    with plate("data", X.shape[0]):
        sample("y", dist.Normal(X @ beta, sigma), obs=y)


def ar_k(lags: Any, y: Any) -> None:
    """AR(K): y_t ~ Normal(α + Σ_k β_k y_{t-k}, σ) for t > K; Normal(0, 10) priors, σ ~ half-Cauchy(2.5)."""
    alpha = sample("alpha", dist.Normal(0.0, 10.0))
    beta = sample("beta", dist.Normal(0.0, 10.0).expand([lags.shape[1]]).to_event(1))
    sigma = sample("sigma", dist.HalfCauchy(2.5))
    with plate("time", y.shape[0]):
        sample("y", dist.Normal(alpha + lags @ beta, sigma), obs=y)


def diamonds(Xc: Any, y: Any) -> None:
    """Normal(0, 1) slopes on centred predictors, Student-t(3, 8, 10) intercept, half-Student-t(3, 0, 10) σ."""
    b = sample("b", dist.Normal(0.0, 1.0).expand([Xc.shape[1]]).to_event(1))
    intercept = sample("Intercept", dist.StudentT(3.0, 8.0, 10.0))
    sigma = sample("sigma", dist.FoldedDistribution(dist.StudentT(3.0, 0.0, 10.0)))
    with plate("data", Xc.shape[0]):
        sample("y", dist.Normal(intercept + Xc @ b, sigma), obs=y)


def eight_schools_noncentered(y: Any, sigma: Any) -> None:
    mu = sample("mu", dist.Normal(0.0, 5.0))
    tau = sample("tau", dist.HalfCauchy(5.0))
    with plate("school", y.shape[0]):
        theta_trans = sample("theta_trans", dist.Normal(0.0, 1.0))
        theta = deterministic("theta", mu + tau * theta_trans)
        sample("y", dist.Normal(theta, sigma), obs=y)


def garch11(y: Any, sigma1: float) -> None:
    """GARCH(1, 1) with a flat prior on μ, α₀ > 0 and on the triangle α₁, β₁ > 0, α₁ + β₁ < 1.

    The triangle: α₁ = logistic(a), β₁ = (1 - α₁) logistic(b) with (a, b) flat, plus the log-Jacobian
    log α₁ + 2 log(1 - α₁) + log r + log(1 - r), r = logistic(b), so that the density is flat in (α₁, β₁)."""
    mu = sample("mu", flat())
    alpha0 = sample("alpha0", flat((), constraints.positive))
    a = sample("alpha1_logit", flat())
    b = sample("beta1_logit", flat())
    alpha1 = deterministic("alpha1", pd.sigmoid(a))
    r = pd.sigmoid(b)
    beta1 = deterministic("beta1", (1.0 - alpha1) * r)
    factor("triangle_jacobian", pd.log(alpha1) + 2.0 * pd.log1p(-alpha1) + pd.log(r) + pd.log1p(-r))
    # the recursion s_t² = α₀ + α₁ (y_{t-1} - μ)² + β₁ s_{t-1}² unrolled (0-based t):
    # s_t² = β₁^t σ₁² + Σ_{j<t} β₁^(t-1-j) (α₀ + α₁ (y_j - μ)²), one masked matrix product instead of a loop
    n = y.shape[0]
    t, j = np.arange(n)[:, None], np.arange(n)[None, :]
    lags, below = pd.tensor(np.where(j < t, t - 1 - j, 0).astype(float)), pd.tensor((j < t).astype(float))
    log_beta = pd.log(beta1)
    weights = pd.exp(lags * log_beta) * below
    shocks = alpha0 + alpha1 * (y - mu) ** 2
    variance = pd.exp(pd.tensor(np.arange(n, dtype=float)) * log_beta) * sigma1 ** 2 + weights @ shocks
    with plate("time", n):
        sample("y", dist.Normal(mu, pd.sqrt(variance)), obs=y)


def kilpisjarvi(x: Any, y: Any, priors: dict) -> None:
    """y_i ~ Normal(α + β x_i, σ) with x uncentred; α ~ Normal(pmualpha, psalpha), β ~ Normal(pmubeta, psbeta),
    σ flat on (0, ∞)."""
    alpha = sample("alpha", dist.Normal(priors["pmualpha"], priors["psalpha"]))
    beta = sample("beta", dist.Normal(priors["pmubeta"], priors["psbeta"]))
    sigma = sample("sigma", flat((), constraints.positive))
    with plate("data", x.shape[0]):
        sample("y", dist.Normal(alpha + beta * x, sigma), obs=y)


def gp_regr(x: Any, y: Any) -> None:
    """y ~ MVN(0, K + σ I), K_ij = α² exp(-(x_i - x_j)² / (2ρ²)); σ is added as it is (a variance)."""
    rho = sample("rho", dist.Gamma(25.0, 4.0))
    alpha = sample("alpha", dist.HalfNormal(2.0))
    sigma = sample("sigma", dist.HalfNormal(1.0))
    d2 = (x[:, None] - x[None, :]) ** 2
    cov = alpha ** 2 * pd.exp(-d2 / (2.0 * rho ** 2)) + sigma * pd.eye(x.shape[0])
    sample("y", dist.MultivariateNormal(pd.zeros(x.shape[0]), covariance_matrix=cov), obs=y)


def low_dim_gauss_mix(y: Any) -> None:
    """Two Gaussians with ordered means μ₁ < μ₂ (Normal(0, 2) densities on both), half-Normal(2) scales,
    weight θ ~ Beta(5, 5) of the first; the labels marginalized by log-sum-exp."""
    mu = sample("mu", flat((2,), constraints.ordered_vector))
    factor("mu_prior", dist.Normal(0.0, 2.0).log_prob(mu).sum())
    sigma = sample("sigma", dist.HalfNormal(2.0).expand([2]).to_event(1))
    theta = sample("theta", dist.Beta(5.0, 5.0))
    with plate("data", y.shape[0]):
        first = pd.log(theta) + dist.Normal(mu[0], sigma[0]).log_prob(y)
        second = pd.log1p(-theta) + dist.Normal(mu[1], sigma[1]).log_prob(y)
        factor("y", pd.logsumexp(pd.stack([first, second]), axis=0))


# ---------------------------------------------------------------------------- data -> (model, args)
def _design(*columns: np.ndarray) -> np.ndarray:
    """An N x K design matrix with an intercept column first."""
    return np.column_stack([np.ones(len(columns[0])), *columns])


def _t(a: Any) -> Any:
    return pd.tensor(np.asarray(a, dtype=np.float64))


def _earnings(d: dict, response: Callable, columns: Callable) -> tuple:
    earn, height, male = (np.asarray(d[k], dtype=float) for k in ("earn", "height", "male"))
    return regression, (_t(_design(*columns(height, male))), _t(response(earn)))


def _z(v: np.ndarray) -> np.ndarray:
    return (v - v.mean()) / v.std(ddof=1)


def _kidiq(d: dict, columns: Callable, priors: bool) -> tuple:
    hs, iq = np.asarray(d["mom_hs"], float), np.asarray(d["mom_iq"], float)
    X, y = _t(_design(*columns(hs, iq, np.asarray(d.get("mom_work", hs), float)))), _t(d["kid_score"])
    if priors:
        return (lambda X, y: regression(X, y, sigma_prior=dist.HalfCauchy(2.5))), (X, y)
    return regression, (X, y)


def _mesquite(d: dict, log_response: bool, columns: Callable) -> tuple:
    v = {k: np.asarray(d[k], float) for k in ("weight", "diam1", "diam2", "canopy_height", "total_height",
                                                "density", "group")}
    y = np.log(v["weight"]) if log_response else v["weight"]
    return regression, (_t(_design(*columns(v))), _t(y))


def _nes(d: dict) -> tuple:
    age = np.asarray(d["age_discrete"], float)
    cols = [np.asarray(d[k], float) for k in ("real_ideo", "race_adj")] + [(age == a).astype(float) for a in (2, 3, 4)]
    cols += [np.asarray(d[k], float) for k in ("educ1", "gender", "income")]
    return regression, (_t(_design(*cols)), _t(d["partyid7"]))


def _log(*a: np.ndarray) -> np.ndarray:
    return np.log(np.prod(a, axis=0))


BUILDERS: dict[str, Callable[[dict], tuple]] = {
    "earnings-earn_height": lambda d: _earnings(d, lambda e: e, lambda h, m: (h,)),
    "earnings-log10earn_height": lambda d: _earnings(d, np.log10, lambda h, m: (h,)),
    "earnings-logearn_height": lambda d: _earnings(d, np.log, lambda h, m: (h,)),
    "earnings-logearn_height_male": lambda d: _earnings(d, np.log, lambda h, m: (h, m)),
    "earnings-logearn_interaction": lambda d: _earnings(d, np.log, lambda h, m: (h, m, h * m)),
    "earnings-logearn_interaction_z": lambda d: _earnings(d, np.log, lambda h, m: (_z(h), m, _z(h) * m)),
    "earnings-logearn_logheight_male": lambda d: _earnings(d, np.log, lambda h, m: (np.log(h), m)),
    "kidiq-kidscore_interaction": lambda d: _kidiq(d, lambda hs, iq, w: (hs, iq, hs * iq), True),
    "kidiq-kidscore_momhs": lambda d: _kidiq(d, lambda hs, iq, w: (hs,), True),
    "kidiq-kidscore_momhsiq": lambda d: _kidiq(d, lambda hs, iq, w: (hs, iq), True),
    "kidiq-kidscore_momiq": lambda d: _kidiq(d, lambda hs, iq, w: (iq,), True),
    "kidiq_with_mom_work-kidscore_interaction_c": lambda d: _kidiq(
        d, lambda hs, iq, w: (hs - hs.mean(), iq - iq.mean(), (hs - hs.mean()) * (iq - iq.mean())), False),
    "kidiq_with_mom_work-kidscore_interaction_c2": lambda d: _kidiq(
        d, lambda hs, iq, w: (hs - 0.5, iq - 100.0, (hs - 0.5) * (iq - 100.0)), False),
    "kidiq_with_mom_work-kidscore_interaction_z": lambda d: _kidiq(
        d, lambda hs, iq, w: (_z(hs) / 2, _z(iq) / 2, _z(hs) / 2 * _z(iq) / 2), False),
    "kidiq_with_mom_work-kidscore_mom_work": lambda d: _kidiq(
        d, lambda hs, iq, w: tuple((w == k).astype(float) for k in (2, 3, 4)), False),
    "mesquite-logmesquite": lambda d: _mesquite(d, True, lambda v: (
        np.log(v["diam1"]), np.log(v["diam2"]), np.log(v["canopy_height"]), np.log(v["total_height"]),
        np.log(v["density"]), v["group"])),
    "mesquite-logmesquite_logva": lambda d: _mesquite(d, True, lambda v: (
        _log(v["diam1"], v["diam2"], v["canopy_height"]), _log(v["diam1"], v["diam2"]), v["group"])),
    "mesquite-logmesquite_logvas": lambda d: _mesquite(d, True, lambda v: (
        _log(v["diam1"], v["diam2"], v["canopy_height"]), _log(v["diam1"], v["diam2"]),
        np.log(v["diam1"] / v["diam2"]), np.log(v["total_height"]), np.log(v["density"]), v["group"])),
    "mesquite-logmesquite_logvolume": lambda d: _mesquite(d, True, lambda v: (
        _log(v["diam1"], v["diam2"], v["canopy_height"]),)),
    "mesquite-mesquite": lambda d: _mesquite(d, False, lambda v: (
        v["diam1"], v["diam2"], v["canopy_height"], v["total_height"], v["density"], v["group"])),
    "kilpisjarvi_mod-kilpisjarvi": lambda d: (kilpisjarvi, (_t(d["x"]), _t(d["y"]), {
        k: float(d[k]) for k in ("pmualpha", "psalpha", "pmubeta", "psbeta")})),
    "sblri-blr": lambda d: (
        lambda X, y: regression(X, y, dist.Normal(0.0, 10.0).expand([X.shape[1]]).to_event(1),
                                dist.HalfNormal(10.0)),
        (_t(d["X"]), _t(d["y"]))),
    "arK-arK": lambda d: (ar_k, (
        _t(np.column_stack([np.asarray(d["y"], float)[d["K"] - k: len(d["y"]) - k] for k in range(1, d["K"] + 1)])),
        _t(np.asarray(d["y"], float)[d["K"]:]))),
    "diamonds-diamonds": lambda d: (diamonds, (
        _t(np.asarray(d["X"], float)[:, 1:] - np.asarray(d["X"], float)[:, 1:].mean(0)), _t(d["Y"]))),
    "eight_schools-eight_schools_noncentered": lambda d: (eight_schools_noncentered, (_t(d["y"]), _t(d["sigma"]))),
    "garch-garch11": lambda d: (garch11, (_t(d["y"]), float(d["sigma1"]))),
    "gp_pois_regr-gp_regr": lambda d: (gp_regr, (_t(d["x"]), _t(d["y"]))),
    "low_dim_gauss_mix-low_dim_gauss_mix": lambda d: (low_dim_gauss_mix, (_t(d["y"]),)),
}
for _year in (1972, 1976, 1980, 1984, 1988, 1992, 1996, 2000):
    BUILDERS[f"nes{_year}-nes"] = _nes

NAMES = sorted(BUILDERS)


def load(name: str) -> Posterior:
    """The model, its data as model arguments, the reference draws and the summary of posterior ``name``."""
    if name not in BUILDERS:
        raise KeyError(f"unknown posterior {name!r}; known: {NAMES}")
    folder = POSTERIOR_DIR / name
    data = json.loads((folder / "data.json").read_text())
    model, args = BUILDERS[name](data)
    with np.load(folder / "reference.npz") as ref:
        reference = {k: ref[k] for k in ref.files}
    summary = json.loads((folder / "summary.json").read_text())
    return Posterior(name, model, tuple(args), {}, reference, summary)


def to_reference_names(samples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Draws ``(chains, draws, *shape)`` by site -> ``(chains, draws)`` by Stan name: ``beta`` of shape (K,) gives
    ``beta[1]`` ... ``beta[K]`` (1-based); a matrix gives ``name[i,j]``."""
    out = {}
    for name, x in samples.items():
        x = np.asarray(x)
        if x.ndim == 2:
            out[name] = x
            continue
        for idx in np.ndindex(*x.shape[2:]):
            out[f"{name}[{','.join(str(i + 1) for i in idx)}]"] = x[(slice(None), slice(None), *idx)]
    return out
