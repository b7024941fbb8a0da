"""ELBOs: values and gradients against closed forms, score-function gradients for discrete and non-reparameterized
latents, plate subsampling, vectorized particles, the Rényi bound, the mean-field KL, and bad input.

Monte Carlo checks compare the mean of R independent estimates with the exact value, allowing z standard errors
of that mean (the standard error taken from the R estimates themselves), z Bonferroni-corrected over the components
of a vector so that each check has a false-alarm rate of at most 1e-4; every test has a fixed seed.
"""
import math

import numpy as np
import pytest
from scipy import integrate, stats

import probdl as pd
from probdl import distributions as dist
from probdl import param, plate, sample
from probdl.distributions import constraints
from probdl.handlers import mask, scale, seed
from probdl.infer.elbo import RenyiELBO, Trace_ELBO, TraceMeanField_ELBO, get_importance_trace

FAMILY_ALPHA = 1e-4  # false-alarm rate allowed for one Monte Carlo check of a (possibly vector) estimate

MU0, TAU0, SIGMA = 0.5, 1.5, 1.0  # prior N(MU0, TAU0²), likelihood N(z, SIGMA²)
DATA = np.array([1.3, 0.2, 2.1, 1.7])


@pytest.fixture(autouse=True)
def _fresh_param_store():
    pd.clear_param_store()
    yield
    pd.clear_param_store()


class NonReparamNormal(dist.Normal):
    """A Normal that SVI must treat as non-reparameterizable: draws are constants, gradients come from the score."""

    has_rsample = False


def posterior():
    prec = 1 / TAU0**2 + len(DATA) / SIGMA**2
    return (MU0 / TAU0**2 + DATA.sum() / SIGMA**2) / prec, 1 / math.sqrt(prec)


def log_evidence():
    cov = SIGMA**2 * np.eye(len(DATA)) + TAU0**2
    return stats.multivariate_normal(np.full(len(DATA), MU0), cov).logpdf(DATA)


def model(x):
    z = sample("z", dist.Normal(MU0, TAU0))
    with plate("data", len(x)):
        sample("x", dist.Normal(z, SIGMA), obs=x)


def make_guide(m0=0.3, s0=0.5, family=dist.Normal):
    def guide(x):
        m = param("m", m0)
        s = param("s", s0, constraint=constraints.positive)
        sample("z", family(m, s))
    return guide


def closed_form_elbo(x):
    """E_q[log p(x, z) - log q(z)] for q = N(m, s²), written in probdl ops on the param store's values."""
    m, s = pd.get_param_store()["m"], pd.get_param_store()["s"]
    x = pd.tensor(x)
    lik = (-0.5 * math.log(2 * math.pi * SIGMA**2) - ((x - m) ** 2 + s**2) / (2 * SIGMA**2)).sum()
    prior = -0.5 * math.log(2 * math.pi * TAU0**2) - ((m - MU0) ** 2 + s**2) / (2 * TAU0**2)
    entropy = 0.5 * pd.log(2 * math.pi * math.e * s**2)
    return lik + prior + entropy


def leaves(*names):
    return [pd.get_param_store().unconstrained(n) for n in names]


def exact_loss_and_grad(elbo_fn, x, names):
    """-ELBO and its gradient w.r.t. the unconstrained leaves, by autograd of a closed form."""
    ps = leaves(*names)
    for p in ps:
        p.grad = None
    loss = -elbo_fn(x)
    loss.backward()
    grads = np.concatenate([p.grad.numpy().ravel() for p in ps])
    for p in ps:
        p.grad = None
    return loss.item(), grads


def mc_loss_and_grads(elbo, model_, guide, x, names, repeats):
    """R independent (loss, gradient) estimates from ``elbo.differentiable_loss``."""
    losses, grads = [], []
    for _ in range(repeats):
        loss = elbo.differentiable_loss(model_, guide, x)
        ps = leaves(*names)
        for p in ps:
            p.grad = None
        loss.backward()
        losses.append(loss.item())
        grads.append(np.concatenate([(p.grad.numpy() if p.grad is not None else np.zeros(p.shape)).ravel()
                                     for p in ps]))
        for p in ps:
            p.grad = None
    return np.array(losses), np.array(grads)


def assert_close_mc(samples, expected, what):
    """The mean of i.i.d. rows ``samples`` is within z standard errors of ``expected`` in every one of its d
    components, z Bonferroni-corrected so that the whole check fails with probability at most FAMILY_ALPHA."""
    samples = np.atleast_2d(np.asarray(samples).T).T
    expected = np.atleast_1d(expected)
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / math.sqrt(len(samples))
    z = stats.norm.isf(FAMILY_ALPHA / (2 * len(expected)))
    assert np.all(np.abs(mean - expected) <= z * se + 1e-12), \
        f"{what}: MC mean {mean}, expected {expected}, z·SE {z * se}"


# ---------------------------------------------------------------------------- values and gradients
@pytest.mark.parametrize("vectorize", [True, False])
def test_trace_elbo_value_and_gradient_normal_normal(vectorize):
    guide = make_guide()
    guide(DATA)  # create the params
    exact_loss, exact_grad = exact_loss_and_grad(closed_form_elbo, DATA, ["m", "s"])
    k = 200 if vectorize else 20
    elbo = Trace_ELBO(num_particles=k, vectorize_particles=vectorize)
    losses, grads = mc_loss_and_grads(elbo, model, guide, DATA, ["m", "s"], repeats=40)
    assert_close_mc(losses, exact_loss, "loss")
    assert_close_mc(grads, exact_grad, "gradient")
    assert np.all(grads.std(0) > 0)  # the estimates are random: the check above is not vacuous


def test_loss_equals_differentiable_loss_value():
    guide = make_guide(family=NonReparamNormal)
    elbo = Trace_ELBO(num_particles=3)
    with seed(rng_seed=5):
        a = elbo.loss(model, guide, DATA)
    with seed(rng_seed=5):
        b = elbo.differentiable_loss(model, guide, DATA).item()
    assert isinstance(a, float)
    assert a == pytest.approx(b, rel=1e-12)  # the score-function term adds gradient, not value


@pytest.mark.parametrize("baseline_beta", [None, 0.9])
def test_score_function_gradient_is_unbiased(baseline_beta):
    """A Normal guide treated as non-reparameterizable: the REINFORCE gradient matches the closed form."""
    guide = make_guide(family=NonReparamNormal)
    guide(DATA)
    _, exact_grad = exact_loss_and_grad(closed_form_elbo, DATA, ["m", "s"])
    elbo = Trace_ELBO(num_particles=100, vectorize_particles=True, baseline_beta=baseline_beta)
    _, grads = mc_loss_and_grads(elbo, model, guide, DATA, ["m", "s"], repeats=60)
    assert_close_mc(grads, exact_grad, "score-function gradient")


def test_decaying_baseline_lowers_variance():
    guide = make_guide(m0=1.0, s0=0.5, family=NonReparamNormal)
    variances = {}
    for beta in (None, 0.9):
        pd.clear_param_store()
        pd.set_rng_seed(1)
        _, grads = mc_loss_and_grads(Trace_ELBO(baseline_beta=beta), model, guide, DATA, ["m", "s"], repeats=400)
        variances[beta] = grads[50:].var(0)  # after the baseline has warmed up
    # the reward's mean (the ELBO, about -6) dominates its spread here; taking it out cuts the variance about
    # 20-fold (0.03-0.08 over seeds 0-2); 0.25 leaves room for the sampling error of two 350-draw variances
    assert np.all(variances[0.9] < 0.25 * variances[None]), variances


def bernoulli_model(x):
    with plate("data", len(x)):
        z = sample("z", dist.Bernoulli(0.3))
        sample("x", dist.Normal(3.0 * z, 1.0), obs=x)


def bernoulli_guide(x):
    logits = param("logits", pd.zeros(len(x)))
    with plate("data", len(x)):
        sample("z", dist.Bernoulli(logits=logits))


BERN_DATA = np.array([2.5, -0.4, 1.2])


def bernoulli_exact_elbo(x):
    """Σ_i Σ_{z_i ∈ {0,1}} q(z_i)[log p(z_i) + log p(x_i | z_i) - log q(z_i)], in probdl ops."""
    logits = pd.get_param_store()["logits"]
    q1 = pd.sigmoid(logits)
    x = pd.tensor(x)
    total = 0.0
    for z, qz, pz in ((1.0, q1, 0.3), (0.0, 1 - q1, 0.7)):
        lik = -0.5 * math.log(2 * math.pi) - 0.5 * (x - 3.0 * z) ** 2
        total = total + (qz * (math.log(pz) + lik - pd.log(qz))).sum()
    return total


@pytest.mark.parametrize("elbo_cls", [Trace_ELBO, TraceMeanField_ELBO])
def test_discrete_latent_gradient_matches_enumeration(elbo_cls):
    bernoulli_guide(BERN_DATA)
    with pd.no_grad():
        pd.get_param_store().unconstrained("logits").data[...] = [0.4, -1.0, 0.1]
    exact_loss, exact_grad = exact_loss_and_grad(bernoulli_exact_elbo, BERN_DATA, ["logits"])
    elbo = elbo_cls(num_particles=200, vectorize_particles=True)
    losses, grads = mc_loss_and_grads(elbo, bernoulli_model, bernoulli_guide, BERN_DATA, ["logits"], repeats=30)
    assert_close_mc(losses, exact_loss, "loss")
    assert_close_mc(grads, exact_grad, "gradient")


# ---------------------------------------------------------------------------- subsampling
N_FULL, N_SUB = 30, 6
FULL_DATA = np.random.default_rng(3).normal(1.0, 1.5, N_FULL)


def global_model(x, subsample_size=None):
    z = sample("z", dist.Normal(MU0, TAU0))
    with plate("data", len(x), subsample_size=subsample_size) as idx:
        sample("x", dist.Normal(z, SIGMA), obs=pd.tensor(x)[idx])


def test_subsampled_gradient_is_unbiased_global_latent():
    guide = make_guide(m0=0.2, s0=0.4)
    guide(FULL_DATA)
    _, exact_grad = exact_loss_and_grad(closed_form_elbo, FULL_DATA, ["m", "s"])

    def sub_model(x):
        global_model(x, N_SUB)

    _, grads = mc_loss_and_grads(Trace_ELBO(), sub_model, guide, FULL_DATA, ["m", "s"], repeats=600)
    assert_close_mc(grads, exact_grad, "subsampled gradient")


def local_model(x, subsample_size=None):
    g = sample("g", dist.Normal(0.0, 1.0))
    with plate("data", len(x), subsample_size=subsample_size) as idx:
        z = sample("z", dist.Normal(g, 1.0))
        sample("x", dist.Normal(z, 1.0), obs=pd.tensor(x)[idx])


def make_local_guide(family, subsample_size=None):
    def guide(x):
        mg = param("mg", 0.3)
        sg = param("sg", 0.7, constraint=constraints.positive)
        m = param("m", pd.tensor(np.linspace(-1, 1, len(x))))
        s = param("s", pd.full((len(x),), 0.8), constraint=constraints.positive)
        sample("g", dist.Normal(mg, sg))
        with plate("data", len(x), subsample_size=subsample_size) as idx:
            sample("z", family(m[idx], s[idx]))
    return guide


def local_exact_elbo(x):
    store = pd.get_param_store()
    mg, sg, m, s = store["mg"], store["sg"], store["m"], store["s"]
    x = pd.tensor(x)
    c = -0.5 * math.log(2 * math.pi)
    prior_g = c - 0.5 * (mg**2 + sg**2)
    prior_z = (c - 0.5 * ((m - mg) ** 2 + s**2 + sg**2)).sum()
    lik = (c - 0.5 * ((x - m) ** 2 + s**2)).sum()
    entropy = 0.5 * pd.log(2 * math.pi * math.e * sg**2) + (0.5 * pd.log(2 * math.pi * math.e * s**2)).sum()
    return prior_g + prior_z + lik + entropy


@pytest.mark.parametrize("family", [dist.Normal, NonReparamNormal])
def test_subsampled_gradient_is_unbiased_local_latents(family):
    """Local latents subsampled in model and guide alike: the model must see the guide's subsample, and the
    score-function term must carry the plate's scale once (not twice, Pyro issue #531)."""
    names = ["mg", "sg", "m", "s"]
    make_local_guide(family)(FULL_DATA)
    _, exact_grad = exact_loss_and_grad(local_exact_elbo, FULL_DATA, names)

    def sub_model(x):
        local_model(x, N_SUB)

    elbo = Trace_ELBO(num_particles=20, vectorize_particles=True)
    _, grads = mc_loss_and_grads(elbo, sub_model, make_local_guide(family, N_SUB), FULL_DATA, names, repeats=300)
    assert_close_mc(grads, exact_grad, "subsampled local gradient")


def test_model_sees_the_guides_subsample():
    drawn = []

    def guide(x):
        sample("g", dist.Normal(0.0, 1.0))
        with plate("data", len(x), subsample_size=N_SUB) as idx:
            drawn.append(idx.numpy().copy())
            sample("z", dist.Normal(pd.tensor(x)[idx], 1.0))

    def sub_model(x):
        local_model(x, N_SUB)

    for _ in range(5):
        model_trace, guide_trace = get_importance_trace(sub_model, guide, (FULL_DATA,), {})
        np.testing.assert_array_equal(model_trace["x"]["value"].numpy(), FULL_DATA[drawn[-1]])
        assert model_trace["z"]["value"] is guide_trace["z"]["value"]
    assert len({tuple(d) for d in drawn}) > 1


# ---------------------------------------------------------------------------- vectorized particles
def test_vectorized_particles_match_the_loop_on_a_plated_model():
    """Local latents in a plate: the particle plate goes left of it, and both estimators agree in expectation."""
    guide = make_local_guide(dist.Normal)
    guide(FULL_DATA[:5])
    names = ["mg", "sg", "m", "s"]
    exact_loss, exact_grad = exact_loss_and_grad(local_exact_elbo, FULL_DATA[:5], names)
    for elbo in (Trace_ELBO(num_particles=10), Trace_ELBO(num_particles=100, vectorize_particles=True)):
        losses, grads = mc_loss_and_grads(elbo, local_model, guide, FULL_DATA[:5], names, repeats=30)
        assert_close_mc(losses, exact_loss, f"loss, vectorize={elbo.vectorize_particles}")
        assert_close_mc(grads, exact_grad, f"gradient, vectorize={elbo.vectorize_particles}")
    model_trace, _, dim = next(Trace_ELBO(num_particles=7, vectorize_particles=True)._traces(
        local_model, guide, (FULL_DATA[:5],), {}))
    assert dim == -2
    assert model_trace["z"]["value"].shape == (7, 5)
    assert model_trace["g"]["value"].shape == (7, 1)


def test_max_plate_nesting_argument():
    guide = make_local_guide(dist.Normal)
    elbo = Trace_ELBO(num_particles=4, vectorize_particles=True, max_plate_nesting=2)
    model_trace, _, dim = next(elbo._traces(local_model, guide, (FULL_DATA[:5],), {}))
    assert dim == -3
    assert model_trace["z"]["value"].shape == (4, 1, 5)


# ---------------------------------------------------------------------------- Rényi
@pytest.mark.parametrize("alpha", [0.0, 0.5, -1.0])
@pytest.mark.parametrize("vectorize", [False, True])
def test_renyi_is_log_evidence_at_the_exact_posterior(alpha, vectorize):
    """With q the exact posterior, every weight p(x, z)/q(z) equals p(x), so the bound is log p(x) exactly."""
    mean, sd = posterior()
    guide = make_guide(mean, sd)
    loss = RenyiELBO(alpha=alpha, num_particles=5, vectorize_particles=vectorize).loss(model, guide, DATA)
    assert loss == pytest.approx(-log_evidence(), rel=1e-10)


def test_renyi_with_one_particle_is_the_elbo_estimate():
    guide = make_guide()
    with seed(rng_seed=11):
        a = RenyiELBO(alpha=0.0, num_particles=1).loss(model, guide, DATA)
    with seed(rng_seed=11):
        b = Trace_ELBO().loss(model, guide, DATA)
    assert a == pytest.approx(b, rel=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_renyi_against_quadrature(alpha):
    """-1/(1-α) log E_q[w^(1-α)], the K → ∞ limit, by quadrature (= -log p(x) at α = 0). The bias of the log of a
    K-sample mean, ≈ Var(w^(1-α)) / (2 K E[w^(1-α)]² (1-α)) ≤ 5e-4 here (relative variances 3.5 and 0.9 by
    quadrature), is a twentieth of the standard error of the 10-estimate mean."""
    m0, s0 = 0.4, 0.6
    guide = make_guide(m0, s0)
    mean, sd = posterior()
    log_z = log_evidence()

    def integrand(z):  # q(z) w(z)^(1-α) / p(x)^(1-α) = q^α · posterior^(1-α)
        return stats.norm(m0, s0).pdf(z) ** alpha * stats.norm(mean, sd).pdf(z) ** (1 - alpha)

    expected = -(log_z + math.log(integrate.quad(integrand, -20, 20)[0]) / (1 - alpha))
    elbo = RenyiELBO(alpha=alpha, num_particles=4000, vectorize_particles=True)
    losses = [elbo.loss(model, guide, DATA) for _ in range(10)]
    assert_close_mc(losses, expected, f"Renyi alpha={alpha}")
    # with one particle the bound is the ELBO, whatever alpha
    guide(DATA)
    exact_elbo_loss, _ = exact_loss_and_grad(closed_form_elbo, DATA, ["m", "s"])
    few = [RenyiELBO(alpha=alpha, num_particles=1).loss(model, guide, DATA) for _ in range(200)]
    assert_close_mc(few, exact_elbo_loss, f"Renyi alpha={alpha}, one particle")
    assert exact_elbo_loss > expected + 0.5


def test_renyi_gradient_is_finite_and_vanishes_in_expectation_at_the_posterior():
    mean, sd = posterior()
    guide = make_guide(mean, sd)
    _, grads = mc_loss_and_grads(RenyiELBO(0.0, num_particles=10, vectorize_particles=True), model, guide, DATA,
                                 ["m", "s"], repeats=100)
    assert np.all(np.isfinite(grads))
    assert_close_mc(grads, np.zeros(2), "IWAE gradient at the optimum")


# ---------------------------------------------------------------------------- mean field
def test_mean_field_kl_is_exact_and_deterministic():
    """A prior-only model: the loss is KL(q ‖ p) exactly, through plates (expand), to_event, scale and mask."""
    def prior_model():
        sample("a", dist.Normal(0.0, 1.0))
        with plate("p", 3):
            sample("b", dist.Normal(1.0, 2.0))
        sample("c", dist.Normal(pd.zeros(2), 1.0).to_event(1))
        with scale(scale=3.0):
            sample("d", dist.Normal(0.0, 1.0))
        with mask(mask=np.array([True, False])):
            with plate("q", 2):
                sample("e", dist.Normal(0.0, 1.0))

    def prior_guide():
        sample("a", dist.Normal(0.5, 0.5))
        with plate("p", 3):
            sample("b", dist.Normal(pd.tensor([0.0, 1.0, 2.0]), 1.5))
        sample("c", dist.Normal(pd.tensor([0.3, -0.3]), 0.7).to_event(1))
        with scale(scale=3.0):
            sample("d", dist.Normal(1.0, 0.5))
        with mask(mask=np.array([True, False])):
            with plate("q", 2):
                sample("e", dist.Normal(pd.tensor([0.2, 5.0]), 0.5))

    def kl(m1, s1, m2, s2):
        return np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5

    expected = (kl(0.5, 0.5, 0, 1) + sum(kl(m, 1.5, 1, 2) for m in (0, 1, 2)) + kl(0.3, 0.7, 0, 1) * 2
                + 3 * kl(1.0, 0.5, 0, 1) + kl(0.2, 0.5, 0, 1))
    losses = [TraceMeanField_ELBO().loss(prior_model, prior_guide) for _ in range(3)]
    assert losses == pytest.approx([expected] * 3, rel=1e-12)
    vec = TraceMeanField_ELBO(num_particles=4, vectorize_particles=True).loss(prior_model, prior_guide)
    assert vec == pytest.approx(expected, rel=1e-12)


def test_mean_field_equals_trace_elbo_in_expectation_with_lower_variance():
    guide = make_guide(m0=1.5, s0=0.3)
    guide(DATA[:1])
    results = {}
    for elbo in (Trace_ELBO(), TraceMeanField_ELBO()):
        losses, grads = mc_loss_and_grads(elbo, model, guide, DATA[:1], ["m", "s"], repeats=400)
        results[type(elbo).__name__] = (losses, grads)
    exact_loss, exact_grad = exact_loss_and_grad(closed_form_elbo, DATA[:1], ["m", "s"])
    for name, (losses, grads) in results.items():
        assert_close_mc(losses, exact_loss, f"{name} loss")
        assert_close_mc(grads, exact_grad, f"{name} gradient")
    # F-test at 400/400 degrees of freedom: a ratio below 0.7 has p < 1e-3 if the variances were equal
    assert results["TraceMeanField_ELBO"][0].var() < 0.7 * results["Trace_ELBO"][0].var()


def test_mean_field_falls_back_to_monte_carlo_without_a_closed_form():
    """LogNormal ‖ Gamma has no registered KL: TraceMeanField_ELBO then gives Trace_ELBO's estimate exactly."""
    def gamma_model():
        rate = sample("rate", dist.Gamma(2.0, 1.0))
        sample("y", dist.Poisson(rate), obs=pd.tensor(3.0))

    def gamma_guide():
        sample("rate", dist.LogNormal(param("a", 0.5), 0.4))

    with pytest.raises(NotImplementedError):
        dist.kl_divergence(dist.LogNormal(0.5, 0.4), dist.Gamma(2.0, 1.0))

    with seed(rng_seed=2):
        a = TraceMeanField_ELBO(num_particles=3).loss(gamma_model, gamma_guide)
    with seed(rng_seed=2):
        b = Trace_ELBO(num_particles=3).loss(gamma_model, gamma_guide)
    assert a == pytest.approx(b, rel=1e-12)


def test_mean_field_with_a_flat_autoguide_keeps_the_joint_density():
    """A flat autoguide's sites are Delta(v, log_density); their log_density (the joint q and the log-Jacobian)
    must count, so TraceMeanField_ELBO equals Trace_ELBO there, not -log p(v) alone."""
    from probdl.infer.autoguide import AutoDiagonalNormal

    def positive_model():
        rate = sample("rate", dist.Gamma(2.0, 1.0))
        sample("y", dist.Poisson(rate), obs=pd.tensor(3.0))

    guide = AutoDiagonalNormal(positive_model)
    with seed(rng_seed=3):
        guide()  # builds the guide, so that both losses below draw the same numbers
    with seed(rng_seed=4):
        a = TraceMeanField_ELBO(num_particles=3).loss(positive_model, guide)
    with seed(rng_seed=4):
        b = Trace_ELBO(num_particles=3).loss(positive_model, guide)
    assert a == pytest.approx(b, rel=1e-12)


# ---------------------------------------------------------------------------- bad input
def test_missing_guide_site_is_named():
    def guide(x):
        sample("w", dist.Normal(0.0, 1.0), infer={"is_auxiliary": True})

    with pytest.raises(ValueError, match="site 'z' of the model is not in the guide"):
        Trace_ELBO().loss(model, guide, DATA)


def test_guide_site_observed_in_model():
    def guide(x):
        sample("z", dist.Normal(0.0, 1.0))
        with plate("data", len(x)):
            sample("x", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="site 'x' is sampled by the guide but observed in the model"):
        Trace_ELBO().loss(model, guide, DATA)


def test_guide_with_observed_site():
    def guide(x):
        sample("z", dist.Normal(0.0, 1.0), obs=1.0)

    with pytest.raises(ValueError, match="site 'z' is observed in the guide"):
        Trace_ELBO().loss(model, guide, DATA)


def test_guide_site_missing_from_model_warns():
    def guide(x):
        sample("z", dist.Normal(0.0, 1.0))
        sample("extra", dist.Normal(0.0, 1.0))

    with pytest.warns(UserWarning, match="site 'extra' of the guide is not in the model"):
        Trace_ELBO().loss(model, guide, DATA)


def test_renyi_bad_input():
    with pytest.raises(ValueError, match="alpha=1 .*use Trace_ELBO"):
        RenyiELBO(alpha=1.0)
    with pytest.raises(ValueError, match="alpha must be a finite"):
        RenyiELBO(alpha=float("nan"))
    with pytest.raises(ValueError, match="guide site 'z' .* not reparameterizable"):
        RenyiELBO().loss(model, make_guide(family=NonReparamNormal), DATA)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_particles": 0}, "num_particles must be a positive int, got 0"),
    ({"num_particles": 2.5}, "num_particles must be a positive int"),
    ({"max_plate_nesting": -1}, "max_plate_nesting must be a non-negative int"),
    ({"baseline_beta": 1.0}, "baseline_beta must be None or in"),
])
def test_elbo_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Trace_ELBO(**kwargs)


def test_model_not_callable():
    with pytest.raises(TypeError, match="the model must be callable, got int"):
        Trace_ELBO().loss(3, make_guide(), DATA)


def test_vectorized_particles_refuse_a_site_that_does_not_broadcast_over_them():
    """w[..., None, :] puts the particle dim left of the particle plate: the likelihood would be counted K times."""
    x = np.random.default_rng(0).normal(size=(20, 3))

    def regression(y):
        w = sample("w", dist.Normal(0.0, 1.0).expand([3]).to_event(1))
        with plate("data", 20):
            sample("y", dist.Normal((pd.tensor(x) * w[..., None, :]).sum(-1), 0.5), obs=y)

    def guide(y):
        sample("w", dist.Normal(param("w_loc", np.zeros(3)), 0.1).to_event(1))

    y = pd.tensor(x.sum(1))
    with pytest.raises(ValueError, match=r"model site 'y' has batch shape \(4, 4, 20\), with dims left of the "
                                         r"particle plate at dim -2"):
        Trace_ELBO(num_particles=4, vectorize_particles=True).loss(regression, guide, y)
    Trace_ELBO(num_particles=4).loss(regression, guide, y)  # unvectorized, the same model is fine
