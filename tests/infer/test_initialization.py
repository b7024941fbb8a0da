"""Init strategies (probdl.infer.initialization) and the unconstrained view of a model (probdl.infer.util)."""
import math
import warnings

import numpy as np
import pytest
from scipy import stats

import probdl
import probdl.distributions as dist
from probdl.distributions import constraints
from probdl.distributions.transforms import biject_to
from probdl.handlers import scale, seed, substitute, trace
from probdl.infer.initialization import (
    init_to_mean,
    init_to_median,
    init_to_sample,
    init_to_uniform,
    init_to_value,
)
from probdl.infer.util import (
    constrain_fn,
    find_latent_sites,
    initialize_model,
    log_density,
    potential_energy,
    transform_fn,
    unconstrain_fn,
)
from probdl.testing import gradcheck


@pytest.fixture(autouse=True)
def _clean_store():
    probdl.clear_param_store()
    yield
    probdl.clear_param_store()


def many_supports():
    """A model with latent sites on the main kinds of support, and one local latent in a plate."""
    loc = probdl.sample("loc", dist.Normal(3.0, 2.0))
    probdl.sample("scale", dist.LogNormal(0.5, 0.3))
    probdl.sample("bounded", dist.Uniform(1.0, 4.0))
    probdl.sample("probs", dist.Dirichlet(probdl.tensor([1.0, 2.0, 3.0])))
    probdl.sample("chol", dist.LKJCholesky(3, 2.0))
    with probdl.plate("N", 4):
        probdl.sample("z", dist.Normal(loc, 1.0))


PRIOR_MEDIANS = {"loc": 3.0, "scale": math.exp(0.5), "bounded": 2.5}
PRIOR_SDS = {"loc": 2.0, "scale": 0.3, "bounded": 3.0 / math.sqrt(12)}  # sd on the scale the median is taken in


def _init_values(strategy, rng=0):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "site not seen" warnings from substitute
        tr = trace(substitute(seed(many_supports, rng), substitute_fn=strategy)).get_trace()
    return {name: site["value"] for name, site in tr.items()}, tr


@pytest.mark.parametrize("strategy", [init_to_median, init_to_median(num_samples=5), init_to_mean, init_to_sample,
                                      init_to_uniform, init_to_uniform(radius=0.5),
                                      init_to_value(values={"loc": 1.5})],
                         ids=["median", "median5", "mean", "sample", "uniform", "uniform0.5", "value"])
def test_strategies_give_values_in_the_support(strategy):
    values, tr = _init_values(strategy)
    for name, site in tr.items():
        assert values[name].shape == site["fn"].shape(), name
        assert bool(np.all(np.asarray(site["fn"].support.check(values[name])))), name
        assert np.all(np.isfinite(values[name].numpy())), name


def test_init_to_uniform_is_uniform_in_the_unconstrained_space():
    for radius in (2.0, 0.5):
        draws = []
        for rng in range(200):
            values, tr = _init_values(init_to_uniform(radius=radius), rng)
            u = {n: biject_to(tr[n]["fn"].support).inv(v).numpy() for n, v in values.items()}
            assert all(np.all(np.abs(x) < radius) for x in u.values())
            draws.append(u["loc"])
        # Uniform(-r, r) has sd r/√3: the mean of 200 draws is within 5 standard errors of 0
        assert abs(np.mean(draws)) < 5 * radius / math.sqrt(3) / math.sqrt(200)
        assert np.std(draws) == pytest.approx(radius / math.sqrt(3), rel=0.2)


def test_init_to_median_is_near_the_prior_median():
    n = 1001
    values, _ = _init_values(init_to_median(num_samples=n))
    for name, median in PRIOR_MEDIANS.items():
        # the sample median of n draws has sd ≈ 1/(2 f(m) √n): 1.2533 sd/√n for a normal, √3/(√12 ... ) for a uniform
        density_at_median = {"loc": stats.norm(3, 2).pdf(3), "scale": stats.norm(0.5, 0.3).pdf(0.5),
                             "bounded": 1 / 3.0}[name]
        se = 1 / (2 * density_at_median * math.sqrt(n))
        x = values[name].item()
        x = math.log(x) if name == "scale" else x  # LogNormal: the median of log x is 0.5
        m = math.log(median) if name == "scale" else median
        assert abs(x - m) < 5 * se, name
    # a vector support stays a valid point of the support (a coordinatewise median of simplex draws would not sum to 1)
    assert values["probs"].numpy().sum() == pytest.approx(1.0, abs=1e-12)


def test_init_to_median_commutes_with_monotone_bijections():
    # an odd number of draws: the unconstrained median maps exactly onto the median of the constrained draws
    msg = {"type": "sample", "name": "s", "fn": dist.LogNormal(0.0, 1.0).expand([4]), "is_observed": False,
           "value": None, "infer": {}, "kwargs": {"sample_shape": (), "rng": np.random.default_rng(5)}}
    got = init_to_median(num_samples=15)(msg).numpy()
    draws = dist.LogNormal(0.0, 1.0).expand([4]).sample((15,), rng=np.random.default_rng(5)).numpy()
    np.testing.assert_allclose(got, np.median(draws, 0), rtol=1e-12)


def test_init_to_mean_and_its_fallback():
    values, _ = _init_values(init_to_mean)
    assert values["loc"].item() == 3.0
    assert values["scale"].item() == pytest.approx(math.exp(0.5 + 0.3 ** 2 / 2), rel=1e-12)
    assert values["bounded"].item() == 2.5
    np.testing.assert_allclose(values["probs"].numpy(), [1 / 6, 2 / 6, 3 / 6])
    np.testing.assert_allclose(values["z"].numpy(), 3.0)  # z ~ N(loc, 1), loc already at its mean 3
    # a Cauchy has no mean: init_to_mean falls back to a median of draws
    msg = {"type": "sample", "name": "c", "fn": dist.Cauchy(2.0, 0.1), "is_observed": False, "value": None,
           "infer": {}, "kwargs": {"sample_shape": (), "rng": np.random.default_rng(0)}}
    v = init_to_mean(msg).item()
    assert np.isfinite(v) and abs(v - 2.0) < 1.0


def test_init_to_sample_differs_between_seeds():
    a, _ = _init_values(init_to_sample, 0)
    b, _ = _init_values(init_to_sample, 1)
    assert a["loc"].item() != b["loc"].item()
    c, _ = _init_values(init_to_sample, 0)
    assert a["loc"].item() == c["loc"].item()


def test_init_to_value_uses_the_value_and_falls_back_to_uniform():
    values, tr = _init_values(init_to_value(values={"loc": 1.5, "z": [0.0, 1.0, 2.0, 3.0], "scale": 2.0}))
    assert values["loc"].item() == 1.5
    assert values["scale"].item() == 2.0
    np.testing.assert_array_equal(values["z"].numpy(), [0.0, 1.0, 2.0, 3.0])
    u = biject_to(tr["bounded"]["fn"].support).inv(values["bounded"]).item()
    assert abs(u) < 2.0
    # a scalar broadcasts to the site's shape
    values, _ = _init_values(init_to_value(values={"z": 0.5}))
    np.testing.assert_array_equal(values["z"].numpy(), [0.5] * 4)


def test_init_to_value_bad_values():
    with pytest.raises(ValueError, match="site 'z'.*shape"):
        _init_values(init_to_value(values={"z": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="site 'scale'.*outside its support"):
        _init_values(init_to_value(values={"scale": -1.0}))
    with pytest.raises(TypeError, match="values must be a dict"):
        init_to_value(values=[1.0])


def test_strategy_options_are_checked():
    with pytest.raises(ValueError, match="radius"):
        init_to_uniform(radius=0)
    with pytest.raises(ValueError, match="num_samples"):
        init_to_median(num_samples=0)
    with pytest.raises(ValueError, match="num_samples"):
        init_to_median(num_samples=2.5)


def test_strategies_leave_observed_and_given_sites_alone():
    msg = {"type": "sample", "name": "y", "fn": dist.Normal(0.0, 1.0), "is_observed": True,
           "value": probdl.tensor(3.0), "infer": {}, "kwargs": {"sample_shape": ()}}
    for strategy in (init_to_median, init_to_mean, init_to_sample, init_to_uniform, init_to_value(values={"y": 1.0})):
        assert strategy(msg) is None
    assert init_to_median({**msg, "type": "param"}) is None


def test_improper_uniform_falls_back_to_uniform():
    msg = {"type": "sample", "name": "u", "fn": dist.ImproperUniform(constraints.positive, (), (2,)),
           "is_observed": False, "value": None, "infer": {}, "kwargs": {"sample_shape": (), "rng": 0}}
    for strategy in (init_to_median, init_to_sample, init_to_mean):
        v = strategy(msg)
        assert v.shape == (2,) and np.all(v.numpy() > 0)


# ---------------------------------------------------------------------------- the unconstrained view
def test_find_latent_sites_describes_each_site():
    sites = find_latent_sites(many_supports, rng=0)
    assert list(sites) == ["loc", "scale", "bounded", "probs", "chol", "z"]
    expect = {"loc": ((), (), 0), "scale": ((), (), 0), "bounded": ((), (), 0), "probs": ((3,), (2,), 1),
              "chol": ((3, 3), (3,), 2), "z": ((4,), (4,), 0)}
    for name, (shape, ushape, event_dim) in expect.items():
        s = sites[name]
        assert (s.shape, s.unconstrained_shape, s.event_dim) == (shape, ushape, event_dim), name
        assert s.value.shape == shape
    assert sites["probs"].unconstrained_event_dim == 1 and sites["chol"].unconstrained_event_dim == 1
    assert [f.name for f in sites["z"].frames] == ["N"] and sites["loc"].frames == ()
    assert sites["scale"].support is constraints.positive


def test_find_latent_sites_is_hidden_from_outer_handlers():
    with trace() as tr:
        find_latent_sites(many_supports, rng=0)
    assert len(tr) == 0


def discrete_model():
    probdl.sample("k", dist.Categorical(probdl.tensor([0.3, 0.7])))
    probdl.sample("x", dist.Normal(0.0, 1.0))


def test_discrete_latent_sites_are_rejected():
    with pytest.raises(ValueError, match="site 'k'.*discrete support"):
        find_latent_sites(discrete_model)
    with pytest.raises(ValueError, match="site 'k'.*discrete support"):
        initialize_model(discrete_model)


def regression_model(y):
    mu = probdl.sample("mu", dist.Normal(0.0, 1.0))
    s = probdl.sample("s", dist.LogNormal(0.0, 1.0))
    with probdl.plate("N", y.shape[0]):
        probdl.sample("y", dist.Normal(mu, s), obs=y)


Y = np.array([0.3, -1.2, 2.0, 0.7])


def test_potential_energy_matches_a_hand_computed_log_joint():
    u = {"mu": probdl.tensor(0.4), "s": probdl.tensor(-0.3)}
    s = math.exp(-0.3)
    log_joint = (stats.norm(0, 1).logpdf(0.4) + stats.lognorm(1.0).logpdf(s) + stats.norm(0.4, s).logpdf(Y).sum())
    log_jacobian = -0.3  # d exp(u)/du = exp(u)
    got = potential_energy(regression_model, (probdl.tensor(Y),), None, u)
    assert got.item() == pytest.approx(-(log_joint + log_jacobian), rel=1e-12)
    lp, _ = log_density(regression_model, (probdl.tensor(Y),), None, {"mu": 0.4, "s": s})
    assert lp.item() == pytest.approx(log_joint, rel=1e-12)


def test_potential_energy_gradient_by_gradcheck():
    y = probdl.tensor(Y)

    def f(mu, s):
        return potential_energy(regression_model, (y,), None, {"mu": mu, "s": s})

    assert gradcheck(f, [np.array(0.4), np.array(-0.3)])
    assert gradcheck(lambda p: potential_energy(many_supports, (), None, {
        "loc": p[0], "scale": p[1], "bounded": p[2], "probs": p[3:5], "chol": p[5:8], "z": p[8:12]}),
        [np.linspace(-0.8, 0.9, 12)])


def test_potential_energy_scales_the_jacobian_with_the_site():
    def model():
        with scale(scale=3.0):
            probdl.sample("s", dist.LogNormal(0.0, 1.0))

    u = 0.7
    want = -3.0 * (stats.lognorm(1.0).logpdf(math.exp(u)) + u)
    assert potential_energy(model, (), None, {"s": probdl.tensor(u)}).item() == pytest.approx(want, rel=1e-12)


def test_supports_that_depend_on_other_latents():
    def model():
        a = probdl.sample("a", dist.LogNormal(0.0, 1.0))
        probdl.sample("b", dist.Uniform(0.0, a))

    u = {"a": probdl.tensor(1.0), "b": probdl.tensor(0.0)}
    x = constrain_fn(model, (), None, u)
    assert x["a"].item() == pytest.approx(math.e) and x["b"].item() == pytest.approx(math.e / 2)
    # U includes log|J| of b's map onto (0, a): log a + log σ(0) + log σ(0)
    want = -(stats.lognorm(1.0).logpdf(math.e) + 1.0 - math.log(math.e) + math.log(math.e) + 2 * math.log(0.5))
    assert potential_energy(model, (), None, u).item() == pytest.approx(want, rel=1e-12)
    back = unconstrain_fn(model, (), None, x)
    assert back["a"].item() == pytest.approx(1.0) and back["b"].item() == pytest.approx(0.0, abs=1e-12)


def test_constrain_and_transform_fn_round_trip():
    sites = find_latent_sites(many_supports, rng=1)
    transforms = {n: s.transform for n, s in sites.items()}
    x = {n: s.value for n, s in sites.items()}
    u = transform_fn(transforms, x, invert=True)
    again = transform_fn(transforms, u)
    via_model = constrain_fn(many_supports, (), None, u)
    for n in x:
        np.testing.assert_allclose(again[n].numpy(), x[n].numpy(), atol=1e-12)
        np.testing.assert_allclose(via_model[n].numpy(), x[n].numpy(), atol=1e-12)
    assert transform_fn(transforms, {"other": 1.0}) == {"other": 1.0}


def test_potential_energy_bad_params():
    y = probdl.tensor(Y)
    with pytest.raises(ValueError, match="latent site 's' has no value"):
        potential_energy(regression_model, (y,), None, {"mu": 0.0})
    with pytest.raises(ValueError, match="'sigma' is not .*latent"):
        potential_energy(regression_model, (y,), None, {"mu": 0.0, "s": 0.0, "sigma": 1.0})
    with pytest.raises(TypeError, match="params must be a dict"):
        potential_energy(regression_model, (y,), None, [0.0, 0.0])
    with pytest.raises(TypeError, match="model_args must be a tuple"):
        potential_energy(regression_model, y, None, {"mu": 0.0, "s": 0.0})


def test_initialize_model():
    y = probdl.tensor(Y)

    def model(y):
        regression_model(y)
        probdl.deterministic("twice_mu", 2 * probdl.sample("extra", dist.Normal(0.0, 1.0)))

    info = initialize_model(model, (y,), init_strategy=init_to_value(values={"mu": 0.5, "s": 2.0}), rng=0)
    assert set(info.params) == {"mu", "s", "extra"}
    assert info.params["mu"].item() == 0.5 and info.params["s"].item() == pytest.approx(math.log(2.0))
    assert info.potential_energy.item() == pytest.approx(info.potential_fn(info.params).item(), rel=1e-12)
    value, grad = info.value_and_grad_fn(info.params)
    assert value.item() == pytest.approx(info.potential_energy.item())
    for n in info.params:
        assert grad[n].item() == pytest.approx(info.grad[n].item())
    out = info.postprocess_fn(info.params)
    assert out["s"].item() == pytest.approx(2.0) and out["twice_mu"].item() == pytest.approx(2 * out["extra"].item())
    assert list(info.sites) == ["mu", "s", "extra"] and "y" in info.trace
    # reproducible for one seed
    again = initialize_model(model, (y,), rng=0)
    other = initialize_model(model, (y,), rng=0)
    assert again.params["extra"].item() == other.params["extra"].item()


def test_initialize_model_warns_about_unknown_init_values():
    with pytest.warns(UserWarning, match="'sigma', which is not a latent site"):
        initialize_model(regression_model, (probdl.tensor(Y),), init_strategy=init_to_value(values={"sigma": 1.0}))


def test_initialize_model_retries_and_then_fails_clearly():
    def bad(y):
        regression_model(y)
        probdl.factor("impossible", -math.inf)

    with pytest.raises(RuntimeError, match="no initial values with a finite potential energy"):
        initialize_model(bad, (probdl.tensor(Y),), max_tries=3)
    with pytest.raises(ValueError, match="max_tries"):
        initialize_model(regression_model, (probdl.tensor(Y),), max_tries=0)
    with pytest.raises(TypeError, match="init_strategy must be callable"):
        initialize_model(regression_model, (probdl.tensor(Y),), init_strategy="median")
