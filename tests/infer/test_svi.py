"""SVI: conjugate models fitted against their analytic posteriors, a mixture with discrete assignments (score-function
gradients), the driver's mechanics (lazily created parameters, reproducible randomness, the run result, the progress
bar, evaluate_loss), and bad input.

How the fits are judged. Each fit runs Adam at a rate that falls as 1/t after a warm-up (LambdaLR), with many
vectorized particles per step, and averages the last ``TAIL`` iterates of the compared quantities (the posterior mean
and standard deviation implied by the guide). Around the optimum the iterates fluctuate with a spread ``sd_tail``: the
noise of SVI at its final rate. A fit passes when its tail average is within ``Z · sd_tail`` of the analytic value,
i.e. when SVI has reached the analytic answer to within its own noise. This is deliberately the spread, not the
standard error of the average: the iterates are strongly autocorrelated (ArviZ's ESS is 5-40 in 150 steps) and a
finite rate leaves a small bias, which a standard-error test would have to model. So that the check is not vacuous,
``sd_tail`` itself must be below ``MAX_NOISE`` posterior standard deviations (so the tolerance is at most 0.6 of
one); the observed errors are 0.01-0.1 posterior sd over seeds 0-8.
"""
import math

import numpy as np
import pytest

import probdl as pd
from probdl import distributions as dist
from probdl import factor, param, plate, sample
from probdl.distributions import constraints
from probdl.infer.elbo import Trace_ELBO, TraceMeanField_ELBO
from probdl.infer.svi import SVI, SVIRunResult
from probdl.optim import SGD, Adam, ClippedAdam
from probdl.optim.lr_scheduler import LambdaLR

Z = 4.0
MAX_NOISE = 0.15
TAIL = 150


@pytest.fixture(autouse=True)
def _fresh_param_store():
    pd.clear_param_store()
    yield
    pd.clear_param_store()


def fit(model, guide, data, summary, elbo, steps=400, lr=0.2, warmup=150, tail=TAIL):
    """Run SVI; return the last ``tail`` values of ``summary(params)``, one row per step."""
    opt = Adam(lr=lr)
    svi = SVI(model, guide, opt, elbo)
    rows = []
    for i in range(steps):
        svi.step(data)
        if i == 0:  # made once SVI has given the optimizer its parameters (LambdaLR on an empty optimizer fails)
            schedule = LambdaLR(opt, lambda t: min(1.0, warmup / (t + 1)))
        schedule.step()
        if i >= steps - tail:
            rows.append(summary(svi.get_params()))
    return np.array(rows)


def assert_fits(rows, expected, posterior_sd, what):
    mean, sd_tail = rows.mean(0), rows.std(0)
    expected, posterior_sd = np.asarray(expected), np.asarray(posterior_sd)
    assert np.all(sd_tail < MAX_NOISE * posterior_sd), f"{what}: SVI noise {sd_tail} too large to judge the fit"
    assert np.all(np.abs(mean - expected) <= Z * sd_tail), \
        f"{what}: fitted {mean}, analytic {expected}, allowed ±{Z * sd_tail}"


# ---------------------------------------------------------------------------- conjugate models
def test_normal_normal_posterior():
    x = pd.tensor(np.random.default_rng(0).normal(1.0, 1.0, 10))
    tau0, sigma = 2.0, 1.0

    def model(x):
        z = sample("z", dist.Normal(0.0, tau0))
        with plate("data", len(x)):
            sample("x", dist.Normal(z, sigma), obs=x)

    def guide(x):
        sample("z", dist.Normal(param("m", 0.0), param("s", 1.0, constraint=constraints.positive)))

    prec = 1 / tau0**2 + len(x) / sigma**2
    mean, sd = x.numpy().sum() / sigma**2 / prec, 1 / math.sqrt(prec)
    rows = fit(model, guide, x, lambda p: (p["m"], p["s"] ** 2),
               Trace_ELBO(num_particles=64, vectorize_particles=True))
    assert_fits(rows, [mean, sd**2], [sd, sd**2], "Normal-Normal (mean, variance)")


def beta_moments(a, b):
    return a / (a + b), math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))


def test_beta_bernoulli_posterior():
    x = pd.tensor((np.random.default_rng(1).random(20) < 0.7).astype(float))
    a0, b0 = 2.0, 2.0

    def model(x):
        p = sample("p", dist.Beta(a0, b0))
        with plate("data", len(x)):
            sample("x", dist.Bernoulli(p), obs=x)

    def guide(x):
        a = param("a", a0, constraint=constraints.positive)
        b = param("b", b0, constraint=constraints.positive)
        sample("p", dist.Beta(a, b))  # reparameterized by implicit gradients

    k = x.numpy().sum()
    mean, sd = beta_moments(a0 + k, b0 + len(x) - k)
    rows = fit(model, guide, x, lambda p: beta_moments(float(p["a"]), float(p["b"])),
               TraceMeanField_ELBO(num_particles=256, vectorize_particles=True))
    assert_fits(rows, [mean, sd], sd, "Beta-Bernoulli (mean, sd)")


def test_gamma_poisson_posterior():
    x = pd.tensor(np.random.default_rng(2).poisson(3.0, 10).astype(float))
    a0, b0 = 2.0, 1.0

    # The rate has shape (1,) and is used as rate[..., 0]: Gamma.rsample fails for a 0-d concentration
    # (standard_gamma on a 0-d array returns a float), so the latent is a one-element event.
    def model(x):
        rate = sample("rate", dist.Gamma(pd.tensor([a0]), b0).to_event(1))
        with plate("data", len(x)):
            sample("x", dist.Poisson(rate[..., 0]), obs=x)

    def guide(x):
        a = param("a", pd.tensor([a0]), constraint=constraints.positive)
        b = param("b", pd.tensor([b0]), constraint=constraints.positive)
        sample("rate", dist.Gamma(a, b).to_event(1))

    a1, b1 = a0 + x.numpy().sum(), b0 + len(x)
    mean, sd = a1 / b1, math.sqrt(a1) / b1
    rows = fit(model, guide, x, lambda p: (p["a"][0] / p["b"][0], math.sqrt(p["a"][0]) / p["b"][0]),
               TraceMeanField_ELBO(num_particles=256, vectorize_particles=True))
    assert_fits(rows, [mean, sd], sd, "Gamma-Poisson (mean, sd)")


# ---------------------------------------------------------------------------- discrete latents
def test_gaussian_mixture_with_discrete_assignments():
    """Two well-separated clusters (means ∓4, unit noise) and a guide with a Bernoulli per point: the score-function
    gradients drive each assignment to its cluster, and the component means to their posterior given it."""
    rng = np.random.default_rng(3)
    data = np.concatenate([rng.normal(-4.0, 1.0, 10), rng.normal(4.0, 1.0, 10)])
    x, n, prior_sd = pd.tensor(data), len(data), 10.0

    def model(x):
        with plate("components", 2):
            mu = sample("mu", dist.Normal(0.0, prior_sd))
        with plate("data", n):
            z = sample("z", dist.Bernoulli(0.5))
            sample("x", dist.Normal(mu[..., 0:1] * (1 - z) + mu[..., 1:2] * z, 1.0), obs=x)

    def guide(x):
        loc = param("loc", pd.tensor([-1.0, 1.0]))  # breaks the labels' symmetry: component 1 is the right one
        scale = param("scale", pd.full((2,), 0.5), constraint=constraints.positive)
        probs = param("probs", pd.full((n,), 0.5), constraint=constraints.unit_interval)
        with plate("components", 2):
            sample("mu", dist.Normal(loc, scale))
        with plate("data", n):
            sample("z", dist.Bernoulli(probs))

    elbo = Trace_ELBO(num_particles=16, vectorize_particles=True, baseline_beta=0.9)
    final = {}

    def summary(p):
        final.update(p)
        return np.concatenate([p["loc"], p["scale"]])

    rows = fit(model, guide, x, summary, elbo, steps=500, lr=0.05, warmup=250)
    right = data > 0
    # the mean-field optimum (the coordinate-ascent fixed point): q(z_i = 1) has logit
    # E_q[log N(x_i | mu_1, 1)] - E_q[log N(x_i | mu_0, 1)], and q(mu_k) = N(Σ_i r_ik x_i / P_k, 1 / P_k) with
    # responsibilities r_i1 = q(z_i = 1), r_i0 = 1 - r_i1 and P_k = Σ_i r_ik + 1 / prior_sd²
    m, s, r1 = final["loc"], final["scale"], final["probs"]
    optimum = 1 / (1 + np.exp(-((data - m[0]) ** 2 + s[0] ** 2 - (data - m[1]) ** 2 - s[1] ** 2) / 2))
    np.testing.assert_array_equal(r1 > 0.5, right)
    # saturated probabilities still creep towards 0 or 1 (their logits climb by about lr per step), hence 0.01
    np.testing.assert_allclose(r1, optimum, atol=0.01)
    prec = np.array([(1 - r1).sum(), r1.sum()]) + 1 / prior_sd**2
    post_mean, post_sd = np.array([((1 - r1) * data).sum(), (r1 * data).sum()]) / prec, 1 / np.sqrt(prec)
    assert_fits(rows, np.concatenate([post_mean, post_sd]), np.concatenate([post_sd, post_sd]),
                "component means and sds")


# ---------------------------------------------------------------------------- mechanics
def nn_model(x):
    z = sample("z", dist.Normal(0.0, 1.0))
    with plate("data", len(x)):
        sample("x", dist.Normal(z, 1.0), obs=x)


def nn_guide(x):
    sample("z", dist.Normal(param("m", 0.0), param("s", 1.0, constraint=constraints.positive)))


X = pd.tensor([0.5, 1.5, 1.0, 2.0])
POST_MEAN = X.numpy().sum() / (len(X) + 1)


def test_run_returns_constrained_params_and_losses():
    svi = SVI(nn_model, nn_guide, Adam(lr=0.05), Trace_ELBO())
    result = svi.run(30, X, progress_bar=False)
    assert isinstance(result, SVIRunResult)
    assert set(result.params) == {"m", "s"}
    assert all(isinstance(v, np.ndarray) for v in result.params.values())
    assert result.params["s"] > 0
    np.testing.assert_allclose(result.params["s"], pd.get_param_store()["s"].numpy())
    assert result.losses.shape == (30,) and np.all(np.isfinite(result.losses))
    assert svi.num_steps == 30
    assert all(p.grad is None for p in (pd.get_param_store().unconstrained(n) for n in ("m", "s")))


@pytest.mark.parametrize("optim", [Adam(lr=0.05), ClippedAdam(lr=0.05, lrd=0.999), SGD(lr=0.01, momentum=0.5)])
def test_optimizers_reach_the_posterior_mean(optim):
    result = SVI(nn_model, nn_guide, optim, Trace_ELBO(num_particles=8, vectorize_particles=True)).run(
        300, X, progress_bar=False)
    # from m = 0, the error shrinks by more than a factor 10 (the posterior sd is 0.45)
    assert abs(result.params["m"] - POST_MEAN) < 0.1 * POST_MEAN


def test_lazily_created_params_join_the_optimizer():
    calls = []

    def guide(x):
        calls.append(1)
        m = param("m", 0.0)
        if len(calls) > 3:  # a parameter that appears only from the fourth step on
            m = m + param("late", 0.0)
        sample("z", dist.Normal(m, 0.5))

    opt = Adam(lr=0.05)
    svi = SVI(nn_model, guide, opt, Trace_ELBO())
    svi.run(3, X, progress_bar=False)
    assert len(opt.param_groups) == 1 and "late" not in pd.get_param_store()
    svi.run(10, X, progress_bar=False)
    late = pd.get_param_store().unconstrained("late")
    assert any(p is late for g in opt.param_groups for p in g["params"])
    assert late.item() != 0.0
    assert len(opt.param_groups) == 2  # each parameter joined once


def test_rng_seed_makes_runs_reproducible_whatever_the_global_seed():
    def run(global_seed, rng_seed):
        pd.clear_param_store()
        pd.set_rng_seed(global_seed)
        return SVI(nn_model, nn_guide, Adam(lr=0.05), Trace_ELBO()).run(20, X, progress_bar=False,
                                                                        rng_seed=rng_seed).losses

    np.testing.assert_array_equal(run(1, 7), run(2, 7))
    assert not np.array_equal(run(1, 7), run(1, 8))
    # without rng_seed, draws come from the global generator (probdl.set_rng_seed), as in Pyro
    np.testing.assert_array_equal(run(3, None), run(3, None))
    assert not np.array_equal(run(3, None), run(4, None))


def test_rng_seed_in_the_constructor():
    losses = []
    for _ in range(2):
        pd.clear_param_store()
        svi = SVI(nn_model, nn_guide, Adam(lr=0.05), Trace_ELBO(), rng_seed=np.random.default_rng(5))
        losses.append([svi.step(X) for _ in range(5)])
    assert losses[0] == losses[1]


def test_evaluate_loss_changes_nothing():
    svi = SVI(nn_model, nn_guide, Adam(lr=0.05), Trace_ELBO(num_particles=2))
    svi.step(X)
    before = {k: v.copy() for k, v in svi.get_params().items()}
    value = svi.evaluate_loss(X)
    assert isinstance(value, float) and math.isfinite(value)
    assert svi.get_params().keys() == before.keys()
    for k in before:
        np.testing.assert_array_equal(svi.get_params()[k], before[k])
        assert pd.get_param_store().unconstrained(k).grad is None


def test_progress_bar(capsys):
    SVI(nn_model, nn_guide, Adam(lr=0.05), Trace_ELBO()).run(7, X, progress_bar=True)
    err = capsys.readouterr().err
    assert "7/7" in err and "avg. loss" in err


def test_a_plain_callable_loss():
    elbo = Trace_ELBO()
    svi = SVI(nn_model, nn_guide, Adam(lr=0.05), lambda m, g, *a, **k: elbo.differentiable_loss(m, g, *a, **k))
    assert math.isfinite(svi.step(X))
    assert math.isfinite(svi.evaluate_loss(X))


# ---------------------------------------------------------------------------- bad input
def test_optimizer_with_params_is_rejected():
    with pytest.raises(ValueError, match="already holds 1 parameter.*build it without params"):
        SVI(nn_model, nn_guide, Adam([pd.tensor(1.0, requires_grad=True)], lr=0.1), Trace_ELBO())


@pytest.mark.parametrize("optim, match", [
    (Adam, "got the class Adam; build it without params, e.g. Adam\\(lr=0.01\\)"),
    ("adam", "must be a probdl.optim Optimizer .* got str"),
])
def test_not_an_optimizer(optim, match):
    with pytest.raises(TypeError, match=match):
        SVI(nn_model, nn_guide, optim, Trace_ELBO())


def test_bad_loss_and_model():
    with pytest.raises(TypeError, match="loss must be an ELBO"):
        SVI(nn_model, nn_guide, Adam(lr=0.1), "elbo")
    with pytest.raises(TypeError, match="the guide must be callable"):
        SVI(nn_model, None, Adam(lr=0.1), Trace_ELBO())
    with pytest.raises(ValueError, match="num_steps must be a positive int, got 0"):
        SVI(nn_model, nn_guide, Adam(lr=0.1), Trace_ELBO()).run(0, X)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_non_finite_loss_names_the_step():
    def model(x, bad):
        sample("z", dist.Normal(0.0, 1.0))
        if bad:
            factor("f", pd.log(pd.tensor(0.0)))

    def guide(x, bad):
        sample("z", dist.Normal(param("m", 0.0), 1.0))

    svi = SVI(model, guide, Adam(lr=0.1), Trace_ELBO())
    svi.step(X, False)
    svi.step(X, False)
    m = svi.get_params()["m"].copy()
    with pytest.raises(FloatingPointError, match="SVI step 2: the loss is inf"):
        svi.step(X, True)
    np.testing.assert_array_equal(svi.get_params()["m"], m)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_non_finite_gradient_names_the_parameter():
    def model(x):
        factor("f", -pd.sqrt(param("m", 0.0) ** 2))  # finite value, NaN derivative at 0

    def guide(x):
        pass

    with pytest.raises(FloatingPointError, match="gradient of parameter 'm' is not finite"):
        SVI(model, guide, Adam(lr=0.1), Trace_ELBO()).step(X)
    assert pd.get_param_store()["m"].item() == 0.0


def test_no_params_to_optimize():
    def guide(x):
        sample("z", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="neither the model nor the guide declared a param"):
        SVI(nn_model, guide, Adam(lr=0.1), Trace_ELBO()).step(X)


@pytest.mark.slow
def test_subsampled_svi_reaches_the_full_data_posterior():
    """Mini-batches of 40 out of 400 points, rescaled by the plate: SVI's fixed point is the full-data posterior."""
    data = np.random.default_rng(4).normal(0.7, 2.0, 400)
    x, tau0, sigma = pd.tensor(data), 1.0, 2.0

    def model(x):
        z = sample("z", dist.Normal(0.0, tau0))
        with plate("data", len(x), subsample_size=40) as idx:
            sample("x", dist.Normal(z, sigma), obs=x[idx])

    def guide(x):
        sample("z", dist.Normal(param("m", 0.0), param("s", 0.5, constraint=constraints.positive)))

    prec = 1 / tau0**2 + len(data) / sigma**2
    mean, sd = data.sum() / sigma**2 / prec, 1 / math.sqrt(prec)
    elbo = TraceMeanField_ELBO(num_particles=8, vectorize_particles=True)
    # Adam's steps are about lr in size whatever the gradient's scale, so the rate must fall well below the
    # posterior sd (0.1) for the iterates to settle: 0.05 · 60 / 3000 = 0.001 at the end
    rows = fit(model, guide, x, lambda p: (p["m"], p["s"]), elbo, steps=3000, lr=0.05, warmup=60, tail=1000)
    assert_fits(rows, [mean, sd], sd, "subsampled Normal-Normal (mean, sd)")
