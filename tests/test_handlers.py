"""Effect handlers: one focused test per behaviour, then the laws they obey together (STYLE.md: test the
algebra): trace is idempotent, trace commutes with condition, seed commutes with condition, replay
reproduces a trace, every handler is both a context manager and a function wrapper, and an exception
leaves the handler stack empty."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats as st

import probdl as pd
import probdl.distributions as dist
from probdl.distributions import constraints
from probdl.handlers import (
    Trace,
    block,
    condition,
    do,
    infer_config,
    lift,
    mask,
    replay,
    scale,
    scope,
    seed,
    substitute,
    trace,
)
from probdl.primitives import _STACK, clear_param_store, deterministic, factor, get_param_store, param, plate, sample


@pytest.fixture(autouse=True)
def _fresh_param_store():
    clear_param_store()
    yield
    clear_param_store()
    assert not _STACK, "a test left handlers on the stack"


def arr(t) -> np.ndarray:
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


DATA = np.array([0.5, -0.3, 1.2])


def model(data=DATA):
    """A small hierarchical model: a positive param, two latents, a plate of observations, a deterministic."""
    s = param("s", np.array(1.5), constraint=constraints.positive)
    mu = sample("mu", dist.Normal(0.0, 2.0))
    tau = sample("tau", dist.LogNormal(0.0, 0.5))
    deterministic("mu2", mu * 2)
    with plate("data", len(data)):
        sample("obs", dist.Normal(mu, tau * s), obs=data)
    return mu


def guide(data=DATA):
    loc = param("q_loc", np.array(0.1))
    sample("mu", dist.Normal(loc, 0.5))
    sample("tau", dist.LogNormal(0.0, 0.2))


def values(tr: Trace) -> dict:
    return {name: arr(site["value"]) for name, site in tr.items()}


def same_sites(a: Trace, b: Trace) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name]["type"] == b[name]["type"] and a[name]["is_observed"] == b[name]["is_observed"]
        np.testing.assert_array_equal(arr(a[name]["value"]), arr(b[name]["value"]))


# ---------------------------------------------------------------------------- trace
def test_trace_records_sites_in_execution_order():
    tr = trace(seed(model, 0)).get_trace()
    assert list(tr) == ["s", "mu", "tau", "mu2", "obs"]
    assert [tr[n]["type"] for n in tr] == ["param", "sample", "sample", "deterministic", "sample"]
    assert tr.stochastic_nodes == ["mu", "tau"] and tr.observation_nodes == ["obs"] and tr.param_nodes == ["s"]
    assert all(site["done"] for site in tr.values())


def test_log_prob_sum_is_the_sum_of_the_hand_computed_terms():
    tr = trace(seed(model, 0)).get_trace()
    mu, tau = float(tr["mu"]["value"]), float(tr["tau"]["value"])
    expected = (st.norm(0, 2).logpdf(mu) + st.lognorm(0.5).logpdf(tau)
                + st.norm(mu, tau * 1.5).logpdf(DATA).sum())
    assert float(tr.log_prob_sum()) == pytest.approx(expected, rel=1e-12)
    # a filter keeps only the sites it accepts, even after everything has been computed once
    assert float(tr.log_prob_sum(lambda name, site: name == "obs")) == pytest.approx(
        st.norm(mu, tau * 1.5).logpdf(DATA).sum(), rel=1e-12)


def test_compute_log_prob_shapes_and_format_shapes():
    def m():
        with plate("rows", 2, dim=-2), plate("cols", 3):
            sample("z", dist.Normal(0.0, 1.0))
            sample("v", dist.MultivariateNormal(np.zeros(4), covariance_matrix=np.eye(4)))
        sample("w", dist.Normal(0.0, 1.0), sample_shape=(5,))

    tr = trace(seed(m, 0)).get_trace().compute_log_prob()
    assert tr["z"]["log_prob"].shape == (2, 3) and tr["v"]["log_prob"].shape == (2, 3)
    assert tr["w"]["log_prob"].shape == (5,) and tr["w"]["log_prob_sum"].shape == ()
    assert tr.format_shapes() == (
        "site  kind    batch_shape  event_shape  value      log_prob\n"
        "z     latent  (2, 3)       ()           (2, 3)     (2, 3)\n"
        "v     latent  (2, 3)       (4,)         (2, 3, 4)  (2, 3)\n"
        "w     latent  ()           ()           (5,)       (5,)")


def test_a_site_name_used_twice_is_an_error():
    def m():
        sample("x", dist.Normal(0.0, 1.0))
        sample("x", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="site name 'x' is used twice in one run of the model"):
        trace(m).get_trace()
    m()                                                       # without a trace nothing checks (nor records) names
    with pytest.raises(TypeError, match="wraps no function"):
        trace().get_trace()


# ---------------------------------------------------------------------------- replay
def test_replay_puts_the_guide_values_into_the_model():
    guide_trace = trace(seed(guide, 1)).get_trace()
    model_trace = trace(seed(replay(model, trace=guide_trace), 2)).get_trace()
    for name in ("mu", "tau"):
        assert model_trace[name]["value"] is guide_trace[name]["value"]
        assert not model_trace[name]["is_observed"]
    np.testing.assert_array_equal(arr(model_trace["obs"]["value"]), DATA)        # observed sites keep their data


def test_replay_errors():
    guide_trace = trace(seed(guide, 1)).get_trace()

    def observed_mu():
        sample("mu", dist.Normal(0.0, 1.0), obs=0.0)

    def latent_q_loc():
        sample("q_loc", dist.Normal(0.0, 1.0))

    replay(observed_mu, trace=guide_trace)()                    # an observed site keeps its data: not an error
    with pytest.raises(RuntimeError, match="site 'q_loc' is a sample site here but a param site"):
        replay(latent_q_loc, trace=guide_trace)()
    obs_trace = trace(observed_mu).get_trace()
    with pytest.raises(RuntimeError, match="site 'mu' is latent here but observed in the replayed trace"):
        replay(model, trace=obs_trace)()
    with pytest.raises(TypeError, match="replay needs a trace"):
        replay(model)


# ---------------------------------------------------------------------------- condition and substitute
def test_condition_fixes_values_and_marks_them_observed():
    tr = trace(seed(condition(model, data={"mu": 0.7, "tau": np.array(2.0)}), 0)).get_trace()
    assert float(tr["mu"]["value"]) == 0.7 and float(tr["tau"]["value"]) == 2.0
    assert tr["mu"]["is_observed"] and tr["tau"]["is_observed"] and tr.stochastic_nodes == []
    assert float(tr["mu2"]["value"]) == 1.4                                     # downstream sees the value
    expected = st.norm(0, 2).logpdf(0.7) + st.lognorm(0.5).logpdf(2.0) + st.norm(0.7, 3.0).logpdf(DATA).sum()
    assert float(tr.log_prob_sum()) == pytest.approx(expected, rel=1e-12)


def test_condition_warns_about_names_it_never_saw():
    with pytest.warns(UserWarning, match="condition: no site named 'mu_typo' was seen in the model"):
        condition(model, data={"mu_typo": 1.0})()
    with pytest.warns(UserWarning, match="condition: 'obs' already observed in the model"):
        condition(model, data={"obs": np.zeros(3)})()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        condition(model, data={"mu": 1.0})()
    with pytest.raises(TypeError, match="data must be a dict"):
        condition(model, data=[("mu", 1.0)])


def test_substitute_replaces_params_and_samples_but_keeps_them_latent():
    tr = trace(seed(substitute(model, data={"s": 3.0, "mu": 0.25}), 0)).get_trace()
    assert float(tr["s"]["value"]) == 3.0 and float(tr["mu"]["value"]) == 0.25
    assert not tr["mu"]["is_observed"] and "s" not in get_param_store()          # the param was never created
    np.testing.assert_allclose(arr(tr["obs"]["fn"].variance), (3.0 * float(tr["tau"]["value"])) ** 2, rtol=1e-12)

    def by_type(msg):
        return pd.tensor(0.3) if msg["name"] == "tau" else None

    tr = trace(seed(substitute(model, substitute_fn=by_type), 0)).get_trace()
    assert float(tr["tau"]["value"]) == 0.3 and not tr["tau"]["is_observed"]
    np.testing.assert_array_equal(arr(tr["obs"]["value"]), DATA)                 # observed sites untouched


# ---------------------------------------------------------------------------- seed
def draws(fn) -> dict:
    return values(trace(fn).get_trace())


def test_seed_is_reproducible():
    a, b, c = draws(seed(model, 3)), draws(seed(model, 3)), draws(seed(model, 4))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert a["mu"] != c["mu"]
    ss = draws(seed(model, np.random.SeedSequence(3)))
    assert ss["mu"] == a["mu"]                                            # an int seed is its SeedSequence
    gen = np.random.default_rng(3)
    first, second = draws(seed(model, gen)), draws(seed(model, gen))      # a Generator advances between calls
    assert first["mu"] == a["mu"] and second["mu"] != first["mu"]
    with pytest.raises(TypeError, match="seed needs rng_seed"):
        seed(model, "3")
    with pytest.raises(TypeError, match="seed needs rng_seed"):
        seed(model)


def test_seed_leaves_the_global_generator_alone():
    pd.set_rng_seed(11)
    reference = float(pd.randn(()))
    pd.set_rng_seed(11)
    seeded = draws(seed(model, 0))
    assert float(pd.randn(())) == reference                              # the global stream was not consumed
    pd.set_rng_seed(99)
    assert draws(seed(model, 0))["mu"] == seeded["mu"]                    # and does not matter to the draws


def test_nested_seeds_the_innermost_wins():
    def two():
        a = sample("a", dist.Normal(0.0, 1.0))
        with seed(rng_seed=5):
            b = sample("b", dist.Normal(0.0, 1.0))
        return float(a), float(b)

    a1, b1 = seed(two, 1)()
    a2, b2 = seed(two, 2)()
    assert b1 == b2 and a1 != a2
    assert b1 == float(seed(lambda: sample("b", dist.Normal(0.0, 1.0)), 5)())


def test_seed_reaches_sites_hidden_by_block():
    a, b = seed(block(model), 0)(), seed(block(model), 0)()
    assert float(a) == float(b) == float(seed(model, 0)())


# ---------------------------------------------------------------------------- block
@pytest.mark.parametrize("kwargs, seen", [
    ({}, []),
    ({"hide": ["mu", "obs"]}, ["s", "tau", "mu2"]),
    ({"expose": ["mu", "obs"]}, ["mu", "obs"]),
    ({"hide_types": ["param", "deterministic"]}, ["mu", "tau", "obs"]),
    ({"expose_types": ["param"]}, ["s"]),
    ({"hide_fn": lambda msg: msg["name"].startswith("m")}, ["s", "tau", "obs"]),
])
def test_block_hides_sites_from_outer_handlers(kwargs, seen):
    inner = trace(seed(model, 0))
    with trace() as outer:
        block(inner, **kwargs)()
    assert list(outer) == seen
    assert list(inner.trace) == ["s", "mu", "tau", "mu2", "obs"]          # handlers inside the block see all


def test_block_inside_a_trace_records_only_what_is_outside_it():
    def m():
        sample("a", dist.Normal(0.0, 1.0))
        with block():
            sample("hidden", dist.Normal(0.0, 1.0))
        sample("b", dist.Normal(0.0, 1.0))

    with trace() as inside_trace, block(hide=["b"]):
        with trace() as innermost:
            m()
    assert list(innermost) == ["a", "b"] and list(inside_trace) == ["a"]


# ---------------------------------------------------------------------------- scale and mask
def test_scale_multiplies_the_log_density():
    plain = trace(seed(model, 0)).get_trace()
    scaled = trace(seed(scale(model, scale=3.0), 0)).get_trace()
    assert float(scaled.log_prob_sum()) == pytest.approx(3.0 * float(plain.log_prob_sum()), rel=1e-12)
    with scale(scale=2.0), scale(scale=0.25), trace() as tr:
        sample("x", dist.Normal(0.0, 1.0), obs=1.0)
    assert float(tr.log_prob_sum()) == pytest.approx(0.5 * st.norm.logpdf(1.0), rel=1e-12)
    for bad in (0.0, -1.0, np.array([1.0, -1.0]), float("nan"), float("inf")):
        with pytest.raises(ValueError, match="the factor must be positive and finite"):
            scale(model, scale=bad)


def test_mask_zeroes_the_masked_log_densities():
    keep = np.array([True, False, True])
    with trace() as tr, plate("data", 3), mask(mask=keep):
        sample("y", dist.Normal(0.0, 1.0), obs=np.array([0.0, 5.0, 1.0]))
    lp = tr.compute_log_prob()["y"]["log_prob"]
    np.testing.assert_allclose(arr(lp), [st.norm.logpdf(0.0), 0.0, st.norm.logpdf(1.0)], rtol=1e-12)
    with pytest.raises(TypeError, match="the mask must be boolean, got dtype float64"):
        mask(mask=np.array([1.0, 0.0]))
    with trace() as tr, mask(mask=keep):
        sample("scalar", dist.Normal(0.0, 1.0), obs=0.0)
    with pytest.raises(ValueError, match=r"site 'scalar': mask of shape \(3,\) does not broadcast to the log "
                                         r"density's shape \(\)"):
        tr.log_prob_sum()


# ---------------------------------------------------------------------------- do
def test_do_fixes_a_value_that_is_not_scored_and_that_downstream_sites_see():
    def m():
        x = sample("x", dist.Normal(0.0, 1.0))
        return sample("y", dist.Normal(x, 1.0))

    tr = trace(seed(do(m, data={"x": 3.0}), 0)).get_trace()
    assert float(tr["x"]["value"]) == 3.0 and not tr["x"]["is_observed"] and tr["x"]["infer"]["_do_not_score"]
    assert float(tr["y"]["fn"].loc) == 3.0
    y = float(tr["y"]["value"])
    assert float(tr.log_prob_sum()) == pytest.approx(st.norm(3.0, 1.0).logpdf(y), rel=1e-12)   # no term for x
    assert "log_prob" not in tr["x"]
    with pytest.raises(ValueError, match="do: site 'obs' is observed"):
        do(model, data={"obs": np.zeros(3)})()
    with pytest.raises(TypeError, match="do needs data, a dict"):
        do(model)


# ---------------------------------------------------------------------------- scope, lift, infer_config
def test_scope_prefixes_names_and_nests():
    def layer():
        param("w", np.zeros(2))
        sample("z", dist.Normal(0.0, 1.0))

    with trace() as tr:
        with scope(prefix="enc"):
            layer()
            with scope(prefix="inner", divider="."):
                layer()
        scope(layer, prefix="dec")()
    assert list(tr) == ["enc/w", "enc/z", "enc/inner.w", "enc/inner.z", "dec/w", "dec/z"]
    assert get_param_store().keys() == ["enc/w", "enc/inner.w", "dec/w"]       # separate parameters
    with pytest.raises(ValueError, match="scope needs a non-empty prefix"):
        scope(layer)


def test_lift_turns_params_into_samples_from_their_priors():
    def m():
        return param("w", np.zeros(3)) + param("b", np.array(0.0))

    tr = trace(seed(lift(m, prior=dist.Normal(0.0, 1.0)), 0)).get_trace()
    assert [tr[n]["type"] for n in tr] == ["sample", "sample"] and len(get_param_store()) == 0
    assert tr["w"]["fn"].event_shape == (3,) and tr["w"]["value"].shape == (3,) and tr["b"]["value"].shape == ()
    # a dict prior lifts only the params it names; the others stay params
    tr = trace(seed(lift(m, prior={"b": dist.Normal(5.0, 1.0)}), 0)).get_trace()
    assert tr["w"]["type"] == "param" and tr["b"]["type"] == "sample"
    # the shape comes from the store when the statement gives no init_value
    tr = trace(seed(lift(lambda: param("w"), prior=dist.Normal(0.0, 1.0)), 0)).get_trace()
    assert tr["w"]["value"].shape == (3,)
    with pytest.raises(ValueError, match=r"prior of param 'w' has shape \(2,\), the param has shape \(3,\)"):
        lift(m, prior=dist.MultivariateNormal(np.zeros(2), covariance_matrix=np.eye(2)))()
    with pytest.raises(TypeError, match="lift needs a prior"):
        lift(m, prior=1.0)


def test_infer_config_updates_sample_sites_only():
    tr = trace(infer_config(seed(model, 0), config_fn=lambda msg: {"tag": msg["name"]})).get_trace()
    assert tr["mu"]["infer"]["tag"] == "mu" and tr["obs"]["infer"]["tag"] == "obs"
    assert "tag" not in tr["s"]["infer"]
    with pytest.raises(ValueError, match="infer_config needs config_fn"):
        infer_config(model)


# ---------------------------------------------------------------------------- the algebra
def test_trace_is_idempotent():
    inner = trace(seed(model, 0))
    outer = trace(inner)
    outer_trace = outer.get_trace()
    inner_trace = inner.trace
    same_sites(outer_trace, inner_trace)
    for name in outer_trace:
        assert outer_trace[name]["value"] is inner_trace[name]["value"]
    assert float(outer_trace.log_prob_sum()) == float(inner_trace.log_prob_sum())


@pytest.mark.parametrize("rng_seed", range(5))
def test_trace_commutes_with_condition(rng_seed):
    data = {"mu": np.array(0.4)}
    a = trace(condition(seed(model, rng_seed), data=data)).get_trace()
    with condition(data=data):
        b = trace(seed(model, rng_seed)).get_trace()
    same_sites(a, b)
    assert float(a.log_prob_sum()) == pytest.approx(float(b.log_prob_sum()), rel=1e-14)


@pytest.mark.parametrize("rng_seed", range(5))
def test_seed_commutes_with_condition(rng_seed):
    data = {"tau": np.array(0.8)}
    same_sites(trace(seed(condition(model, data=data), rng_seed)).get_trace(),
               trace(condition(seed(model, rng_seed), data=data)).get_trace())


@pytest.mark.parametrize("rng_seed", range(5))
def test_replay_of_a_trace_reproduces_it_exactly(rng_seed):
    def m():
        model()
        with plate("batch", 20, subsample_size=4) as idx:
            sample("local", dist.Normal(pd.tensor(np.arange(20.0))[idx], 1.0))

    original = trace(seed(m, rng_seed)).get_trace()
    again = trace(seed(replay(m, trace=original), rng_seed + 100)).get_trace()
    same_sites(original, again)
    assert float(again.log_prob_sum()) == float(original.log_prob_sum())
    twice = trace(replay(replay(m, trace=original), trace=again)).get_trace()     # replay is idempotent
    same_sites(twice, original)


HANDLERS = {
    "trace": (trace, {}),
    "replay": (replay, {"trace": None}),          # filled in by the test
    "condition": (condition, {"data": {"mu": 0.3}}),
    "substitute": (substitute, {"data": {"tau": 0.6}}),
    "seed": (seed, {"rng_seed": 4}),
    "block": (block, {"hide": ["tau"]}),
    "scale": (scale, {"scale": 2.0}),
    "mask": (mask, {"mask": np.array(False)}),
    "do": (do, {"data": {"mu": 1.0}}),
    "scope": (scope, {"prefix": "s"}),
    "lift": (lift, {"prior": dist.Normal(0.0, 1.0)}),
    "infer_config": (infer_config, {"config_fn": lambda msg: {"k": 1}}),
}


def _kwargs(name):
    handler, kwargs = HANDLERS[name]
    if name == "replay":
        kwargs = {"trace": trace(seed(guide, 9)).get_trace()}
    return handler, kwargs


@pytest.mark.parametrize("name", list(HANDLERS))
def test_every_handler_is_a_context_manager_and_a_function_wrapper(name):
    handler, kwargs = _kwargs(name)
    clear_param_store()
    wrapped = trace(seed(handler(model, **kwargs), 0)).get_trace()
    clear_param_store()
    with trace() as managed, seed(rng_seed=0), handler(**kwargs):
        model()
    same_sites(wrapped, managed)
    assert float(wrapped.log_prob_sum()) == float(managed.log_prob_sum())


@pytest.mark.parametrize("name", list(HANDLERS) + ["plate"])
def test_an_exception_inside_a_handler_leaves_the_stack_empty(name):
    def failing():
        model()
        raise RuntimeError("model failed")

    if name == "plate":
        with pytest.raises(RuntimeError, match="model failed"), trace(), plate("outer", 2, dim=-3):
            failing()
    else:
        handler, kwargs = _kwargs(name)
        with pytest.raises(RuntimeError, match="model failed"):
            trace(seed(handler(failing, **kwargs), 0)).get_trace()
        with pytest.raises(RuntimeError, match="model failed"), trace(), handler(**kwargs):
            failing()
    assert _STACK == []


def test_a_handler_without_a_function_cannot_be_called():
    with pytest.raises(TypeError, match="seed wraps no function: use it as a context manager, or give fn"):
        seed(rng_seed=0)()


def test_factor_and_deterministic_pass_through_handlers():
    def m():
        factor("f", pd.tensor(-1.5))
        deterministic("d", 2.0)

    with trace() as tr, scale(scale=2.0), scope(prefix="a"):
        m()
    assert list(tr) == ["a/f", "a/d"]
    assert float(tr.log_prob_sum()) == -3.0


@pytest.mark.parametrize("handler", [condition, substitute])
def test_gradients_flow_through_given_values(handler):
    # log p(x, y=1) = log N(x; 0, 1) + log N(1; x, 1), so d/dx = -x + (1 - x) = 1 - 2x
    def m():
        x = sample("x", dist.Normal(0.0, 1.0))
        sample("y", dist.Normal(x, 1.0), obs=1.0)

    def log_joint(x):
        return trace(handler(m, data={"x": x})).get_trace().log_prob_sum()

    assert float(pd.grad(log_joint)(pd.tensor(0.3))) == pytest.approx(1 - 2 * 0.3, rel=1e-12)
