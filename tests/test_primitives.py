"""The modelling statements: sample, param (and the param store), plate, deterministic, factor, module,
random_module. Each test checks one behaviour; the handler algebra is in tests/test_handlers.py."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as hs

import probdl as pd
import probdl.distributions as dist
import probdl.nn as nn
from probdl.distributions import biject_to, constraints
from probdl.handlers import condition, replay, scope, seed, trace
from probdl.optim import Adam
from probdl.primitives import (
    _STACK,
    CondIndepStackFrame,
    clear_param_store,
    deterministic,
    factor,
    get_param_store,
    module,
    param,
    plate,
    random_module,
    sample,
)


@pytest.fixture(autouse=True)
def _fresh_param_store():
    clear_param_store()
    yield
    clear_param_store()
    assert not _STACK, "a test left handlers on the stack"


def arr(t) -> np.ndarray:
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


# ---------------------------------------------------------------------------- sample
def test_sample_without_a_handler_is_a_draw_from_the_prior():
    pd.set_rng_seed(3)
    x = sample("x", dist.Normal(np.zeros(4), 2.0), sample_shape=(5,))
    pd.set_rng_seed(3)
    expected = dist.Normal(np.zeros(4), 2.0).rsample((5,))
    np.testing.assert_array_equal(arr(x), arr(expected))


def test_sample_is_reparameterized_when_the_family_allows():
    # x = loc + scale * eps, so dx/dloc = 1 and dx/dscale = eps = (x - loc) / scale
    def draw(loc, scale):
        return sample("x", dist.Normal(loc, scale))

    pd.set_rng_seed(1)
    x = draw(pd.tensor(0.5), pd.tensor(2.0))
    pd.set_rng_seed(1)
    g_loc, g_scale = pd.grad(draw, argnums=(0, 1))(pd.tensor(0.5), pd.tensor(2.0))
    assert float(g_loc) == pytest.approx(1.0)
    assert float(g_scale) == pytest.approx((float(x) - 0.5) / 2.0)


def test_sample_of_a_family_without_rsample_draws_outside_the_graph():
    p = pd.tensor(0.3, requires_grad=True)
    x = sample("b", dist.Bernoulli(probs=p), sample_shape=(1000,))
    assert not dist.Bernoulli.has_rsample and not x.requires_grad
    assert set(np.unique(arr(x))) <= {0.0, 1.0}
    assert abs(arr(x).mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 1000)


def test_sample_with_obs_returns_the_data_and_marks_the_site_observed():
    data = np.array([1.0, -2.0])
    np.testing.assert_array_equal(arr(sample("y", dist.Normal(0.0, 1.0), obs=data)), data)
    with trace() as tr:
        y = sample("y", dist.Normal(np.zeros(2), 1.0), obs=data)
    np.testing.assert_array_equal(arr(y), data)
    assert tr["y"]["is_observed"] and tr.observation_nodes == ["y"] and tr.stochastic_nodes == []


def test_sample_shape_prepends_to_batch_and_event_shape():
    mvn = dist.MultivariateNormal(np.zeros((3, 2)), covariance_matrix=np.eye(2))   # batch (3,), event (2,)
    assert sample("z", mvn, sample_shape=(4, 5)).shape == (4, 5, 3, 2)
    with trace() as tr:
        z = sample("z", mvn, sample_shape=(4,))
    assert z.shape == (4, 3, 2)
    assert tr["z"]["kwargs"]["sample_shape"] == (4,)
    assert tr.compute_log_prob()["z"]["log_prob"].shape == (4, 3)


@pytest.mark.parametrize("name, fn, kwargs, error, match", [
    (3, dist.Normal(0.0, 1.0), {}, TypeError, "site name must be a non-empty str, got 3"),
    ("", dist.Normal(0.0, 1.0), {}, TypeError, "non-empty str"),
    ("x", st.norm(0, 1), {}, TypeError, "site 'x' needs a Distribution, got rv_continuous_frozen"),
    ("x", lambda: 0.0, {}, TypeError, "needs a Distribution, got function"),
    ("x", dist.Normal(0.0, 1.0), {"infer": ["enumerate"]}, TypeError, "infer must be a dict"),
])
def test_sample_rejects_bad_input(name, fn, kwargs, error, match):
    with pytest.raises(error, match=match):
        sample(name, fn, **kwargs)


# ---------------------------------------------------------------------------- obs_mask
def test_obs_mask_imputes_the_masked_out_entries_as_a_latent_site():
    data = np.array([1.0, np.nan, 2.0, np.nan])        # missing entries may hold anything, NaN included
    observed = np.array([True, False, True, False])
    loc, scale = np.array([0.0, 1.0, 2.0, 3.0]), 1.5

    def model():
        return sample("y", dist.Normal(loc, scale), obs=data, obs_mask=observed)

    tr = trace(seed(model, 0)).get_trace()
    assert list(tr) == ["y_unobserved", "y"]
    assert not tr["y_unobserved"]["is_observed"] and tr["y"]["is_observed"]
    y = tr["y"]["value"]
    value = model_value = seed(model, 0)()
    imputed = arr(tr["y_unobserved"]["value"])
    np.testing.assert_array_equal(arr(model_value)[observed], data[observed])
    np.testing.assert_array_equal(arr(value)[~observed], imputed[~observed])
    np.testing.assert_array_equal(arr(y), arr(value))                          # the recorded data, filled in
    # log p = Σ_observed log N(data) + Σ_missing log N(imputed): every entry counted once
    lp = st.norm(loc, scale).logpdf(np.where(observed, data, imputed)).sum()
    assert float(tr.log_prob_sum()) == pytest.approx(lp, rel=1e-12)
    np.testing.assert_array_equal(tr["y"]["log_prob"].numpy() != 0, observed)
    np.testing.assert_array_equal(tr["y_unobserved"]["log_prob"].numpy() != 0, ~observed)


def test_obs_mask_gives_each_missing_entry_its_own_draw_and_a_gradient():
    loc = pd.tensor(0.0, requires_grad=True)
    with seed(rng_seed=0):
        y = sample("y", dist.Normal(loc, 1.0), obs=np.zeros(4), obs_mask=np.array([True, False, True, False]))
    assert y.shape == (4,) and arr(y)[1] != arr(y)[3]                 # a scalar prior, broadcast to the data
    y.sum().backward()                                               # reparameterized imputations carry d/dloc = 1
    assert float(loc.grad) == pytest.approx(2.0)


def test_obs_mask_all_true_scores_like_plain_observation():
    data = np.array([0.3, -1.2, 2.0])

    def masked():
        sample("y", dist.Normal(1.0, 2.0), obs=data, obs_mask=np.ones(3, dtype=bool))

    def plain():
        sample("y", dist.Normal(1.0, 2.0).expand((3,)), obs=data)

    assert float(trace(masked).get_trace().log_prob_sum()) == pytest.approx(
        float(trace(plain).get_trace().log_prob_sum()), rel=1e-14)


def test_obs_mask_needs_obs_and_a_boolean_mask():
    with pytest.raises(ValueError, match="site 'y' has obs_mask but no obs"):
        sample("y", dist.Normal(0.0, 1.0), obs_mask=np.array([True]))
    with pytest.raises(TypeError, match="obs_mask must be boolean, got dtype int64"):
        sample("y", dist.Normal(0.0, 1.0), obs=np.zeros(2), obs_mask=np.array([1, 0]))
    with pytest.raises(ValueError, match=r"obs of shape \(3,\), obs_mask of shape \(2,\)"):
        sample("y", dist.Normal(0.0, 1.0), obs=np.zeros(3), obs_mask=np.array([True, False]))


# ---------------------------------------------------------------------------- param and the param store
def test_param_is_created_from_a_value_or_a_function_of_none():
    np.testing.assert_array_equal(arr(param("a", np.array([1.0, 2.0]))), [1.0, 2.0])
    calls = []
    b = param("b", lambda: calls.append(1) or pd.ones((2, 3)))
    assert b.shape == (2, 3) and calls == [1]
    param("b", lambda: calls.append(1) or pd.ones((2, 3)))             # read back: the function is not called again
    assert calls == [1]


CONSTRAINED = [
    (constraints.real, np.array([-1.0, 3.0])),
    (constraints.positive, np.array([0.5, 4.0])),
    (constraints.simplex, np.array([0.2, 0.3, 0.5])),
    (constraints.interval(-1.0, 2.0), np.array([-0.5, 1.9])),
    (constraints.unit_interval, np.array(0.25)),
]


@pytest.mark.parametrize("constraint, init", CONSTRAINED, ids=lambda c: repr(c)[:20])
def test_param_lives_unconstrained_and_comes_back_constrained(constraint, init):
    value = param("p", init, constraint=constraint)
    np.testing.assert_allclose(arr(value), init, rtol=1e-12, atol=1e-14)
    store = get_param_store()
    leaf = store.unconstrained("p")
    assert leaf.requires_grad and leaf.is_leaf
    np.testing.assert_allclose(arr(leaf), arr(biject_to(constraint).inv(pd.tensor(init))), rtol=1e-12)
    assert store.constraint("p") is constraint
    # whatever an optimizer does to the leaf, the parameter stays in the support
    for k in range(5):
        leaf.data[...] = np.random.default_rng(k).normal(scale=3.0, size=leaf.shape)
        assert np.all(arr(constraint.check(param("p"))))
    np.testing.assert_array_equal(arr(param("p")), arr(store["p"]))


def test_param_gradient_reaches_the_unconstrained_leaf():
    def f():
        return param("s", np.array([2.0]), constraint=constraints.positive).sum()

    f().backward()                                          # s = exp(u): ds/du = s
    assert float(get_param_store().unconstrained("s").grad[0]) == pytest.approx(2.0)


def test_param_is_read_back_on_the_second_call():
    first = param("w", np.array([1.0, 2.0]))
    second = param("w", np.array([9.0, 9.0]))                     # same shape: the stored value wins
    third = param("w")
    np.testing.assert_array_equal(arr(second), arr(first))
    np.testing.assert_array_equal(arr(third), [1.0, 2.0])
    assert len(get_param_store()) == 1


@pytest.mark.parametrize("constraint, init, again, shapes", [
    (constraints.real, np.zeros(3), np.zeros(4), r"declared with shape \(3,\) and is now given an init_value of "
                                                  r"shape \(4,\)"),
    (constraints.simplex, np.ones(3) / 3, np.ones(4) / 4, r"declared with shape \(3,\) .* shape \(4,\)"),
])
def test_param_redeclared_with_another_shape_is_an_error(constraint, init, again, shapes):
    param("w", init, constraint=constraint)
    param("w", init, constraint=constraint)                       # the same shape again is fine (simplex: 3, not 2)
    with pytest.raises(ValueError, match=f"param 'w' was {shapes}; clear_param_store"):
        param("w", again, constraint=constraint)


def test_param_bad_input():
    with pytest.raises(ValueError, match="param 'nope' is not in the param store and has no init_value"):
        param("nope")
    with pytest.raises(TypeError, match="param: the name must be a non-empty str, got None"):
        param(None, 1.0)
    with pytest.raises(TypeError, match="constraint must be a Constraint, got str"):
        param("w", 1.0, constraint="positive")
    with pytest.raises(TypeError, match="init_value must be floating, got dtype int64"):
        param("w", np.array([1, 2]))
    with pytest.raises(ValueError, match="does not satisfy the constraint"):
        param("w", np.array([-1.0]), constraint=constraints.positive)
    assert "w" not in get_param_store()


def test_param_store_save_and_load_round_trip(tmp_path):
    values = {"loc": np.array([0.5, -1.0]), "scale": np.array([2.0, 0.1]), "probs": np.array([0.1, 0.6, 0.3]),
              "net/w.0": np.array(3.0)}
    cons = {"loc": constraints.real, "scale": constraints.positive, "probs": constraints.simplex,
            "net/w.0": constraints.interval(0.0, 5.0)}
    for name in values:
        param(name, values[name], constraint=cons[name])
    store = get_param_store()
    unconstrained = {name: arr(store.unconstrained(name)).copy() for name in values}
    path = tmp_path / "params.npz"
    store.save(path)

    clear_param_store()
    assert len(store) == 0
    store.load(path)
    assert sorted(store.keys()) == sorted(values)
    for name in values:
        np.testing.assert_array_equal(arr(store.unconstrained(name)), unconstrained[name])
        assert store.unconstrained(name).requires_grad
        # the constraint comes back with the next param statement, which needs no init_value
        np.testing.assert_allclose(arr(param(name, constraint=cons[name])), values[name], rtol=1e-12)
        assert store.constraint(name) is cons[name]

    # loading over existing parameters writes in place (a network sharing them sees the values)
    leaf = store.unconstrained("loc")
    with pd.no_grad():
        leaf.data[...] = 0.0
    store.load(path)
    assert store.unconstrained("loc") is leaf
    np.testing.assert_array_equal(arr(leaf), unconstrained["loc"])


def test_param_store_load_rejects_a_shape_mismatch(tmp_path):
    param("w", np.zeros(2))
    get_param_store().save(tmp_path / "p.npz")
    clear_param_store()
    param("w", np.zeros(3))
    with pytest.raises(ValueError, match=r"'w' has shape \(2,\) in the file and \(3,\) in the store"):
        get_param_store().load(tmp_path / "p.npz")


def test_get_param_store_and_clear_param_store():
    store = get_param_store()
    assert store is get_param_store()
    param("a", 1.0)
    param("b", np.ones(2), constraint=constraints.positive)
    assert "a" in store and len(store) == 2 and store.keys() == ["a", "b"]
    assert [name for name, _ in store.items()] == ["a", "b"]
    del store["a"]
    assert store.keys() == ["b"]
    with pytest.raises(KeyError, match="no parameter named 'a'; have \\['b'\\]"):
        store["a"]
    clear_param_store()
    assert len(store) == 0 and get_param_store() is store


def test_a_param_site_records_its_unconstrained_leaf():
    with trace() as tr:
        param("s", np.array([1.0, 2.0]), constraint=constraints.positive)
    site = tr["s"]
    assert site["type"] == "param" and tr.param_nodes == ["s"]
    assert site["intermediates"] == [get_param_store().unconstrained("s")]
    assert site["infer"]["constraint"] is constraints.positive


# ---------------------------------------------------------------------------- plate
def test_plate_broadcasts_its_sites_to_its_size():
    with trace() as tr, plate("data", 5):
        x = sample("x", dist.Normal(0.0, 1.0))
        y = sample("y", dist.Normal(np.zeros((3, 1)), 1.0))          # size 1 at the plate's dim: broadcast
    assert x.shape == (5,) and y.shape == (3, 5)
    assert tr["x"]["fn"].batch_shape == (5,) and tr["y"]["fn"].batch_shape == (3, 5)
    assert tr["x"]["cond_indep_stack"] == (CondIndepStackFrame("data", -1, 5, 5),)


def test_nested_plates_allocate_dims_from_the_right_outermost_first():
    with trace() as tr, plate("outer", 2), plate("inner", 3) as inner:
        z = sample("z", dist.Normal(0.0, 1.0))
        with plate("innermost", 4):
            w = sample("w", dist.Normal(0.0, 1.0))
    assert z.shape == (3, 2) and w.shape == (4, 3, 2)
    assert [(f.name, f.dim) for f in tr["w"]["cond_indep_stack"]] == [("outer", -1), ("inner", -2), ("innermost", -3)]
    np.testing.assert_array_equal(arr(inner), np.arange(3))


def test_plate_with_an_explicit_dim():
    with plate("a", 3, dim=-2), plate("b", 4):                        # b takes the first free dim, -1
        x = sample("x", dist.Normal(0.0, 1.0))
        y = sample("y", dist.Normal(0.0, 1.0), sample_shape=(6,))
    assert x.shape == (3, 4) and y.shape == (6, 3, 4)


def test_plate_value_is_the_index_tensor():
    with plate("full", 6) as idx:
        np.testing.assert_array_equal(arr(idx), np.arange(6))
    for k in range(20):
        with seed(rng_seed=k), plate("sub", 10, subsample_size=4) as idx:
            i = arr(idx)
            assert i.shape == (4,) and np.all(np.diff(i) > 0) and 0 <= i.min() and i.max() < 10
    with plate("given", 10, subsample=np.array([7, 2])) as idx:
        np.testing.assert_array_equal(arr(idx), [7, 2])
        assert sample("x", dist.Normal(0.0, 1.0)).shape == (2,)


def test_subsample_is_uniform_over_subsets():
    # each index is in a subsample of 3 out of 5 with probability 3/5: a binomial count over 2000 draws
    counts = np.zeros(5)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        with seed(rng_seed=rng), plate("p", 5, subsample_size=3) as idx:
            counts[arr(idx)] += 1
    sd = np.sqrt(2000 * 0.6 * 0.4)
    assert np.all(np.abs(counts - 1200) < 4.5 * sd), counts


def test_subsampled_log_density_is_scaled_by_size_over_subsample_size():
    data = np.linspace(-2.0, 2.0, 10)

    def model():
        with plate("data", 10, subsample_size=4) as idx:
            sample("y", dist.Normal(0.5, 1.0), obs=data[arr(idx)])
        return idx

    tr = trace(seed(model, 0)).get_trace()
    idx = arr(tr["data"]["value"])
    assert tr["y"]["scale"] == 10 / 4
    expected = 10 / 4 * st.norm(0.5, 1.0).logpdf(data[idx]).sum()
    assert float(tr.log_prob_sum()) == pytest.approx(expected, rel=1e-12)


def test_a_site_whose_batch_shape_disagrees_with_a_plate_is_an_error():
    with pytest.raises(ValueError, match=r"site 'x': batch shape \(4,\) has size 4 at dim -1, where plate 'data' "
                                         r"has size 3"):
        with trace(), plate("data", 3):
            sample("x", dist.Normal(np.zeros(4), 1.0))


def test_an_observed_value_whose_plate_dim_disagrees_is_an_error():
    with pytest.raises(ValueError, match=r"site 'y': value of shape \(4,\) has size 4 at batch dim -1, where plate "
                                         r"'data' has size 3"):
        with plate("data", 3):
            sample("y", dist.Normal(0.0, 1.0), obs=np.zeros(4))
    with pytest.raises(ValueError, match=r"value of shape \(2, 5\) has size 2 at batch dim -2, where plate 'rows'"):
        with plate("rows", 3, dim=-2):
            sample("y", dist.Normal(0.0, 1.0), obs=np.zeros((2, 5)))


def test_duplicate_plate_names_and_dims_are_errors():
    with pytest.raises(ValueError, match="plate 'a' is already active"):
        with plate("a", 3), plate("a", 2):
            pass
    with pytest.raises(ValueError, match="plate 'b': dim -1 is already used by plate 'a'"):
        with plate("a", 3), plate("b", 2, dim=-1):
            pass


@pytest.mark.parametrize("kwargs, error, match", [
    ({"size": 0}, ValueError, "size must be a positive int, got 0"),
    ({"size": 2.5}, ValueError, "size must be a positive int"),
    ({"size": 3, "dim": 0}, ValueError, "dim must be a negative int, got 0"),
    ({"size": 3, "subsample_size": 4}, ValueError, r"subsample_size must be in \[1, 3\], got 4"),
    ({"size": 3, "subsample": [0, 3]}, ValueError, r"subsample indices must lie in \[0, 3\), got \[0, 3\]"),
    ({"size": 3, "subsample": [[0]]}, ValueError, "subsample must be a non-empty 1-d integer index tensor"),
])
def test_plate_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        plate("p", **kwargs)
    with pytest.raises(TypeError, match="plate: the name must be a non-empty str"):
        plate(1, 3)


def test_plate_subsamples_are_reproducible_under_seed():
    def model():
        with plate("data", 100, subsample_size=10) as idx:
            return arr(idx)

    a, b, c = seed(model, 7)(), seed(model, 7)(), seed(model, 8)()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_a_plate_object_entered_twice_keeps_its_subsample():
    with seed(rng_seed=0):
        p = plate("data", 50, subsample_size=5)
        with p as first:
            pass
        with p as second:
            pass
    np.testing.assert_array_equal(arr(first), arr(second))


def test_the_guide_subsample_is_replayed_into_the_model():
    def program():
        with plate("data", 100, subsample_size=5) as idx:
            sample("z", dist.Normal(0.0, 1.0))
        return arr(idx)

    guide_trace = trace(seed(program, 1)).get_trace()
    assert guide_trace["data"]["type"] == "plate"
    replayed = seed(replay(program, trace=guide_trace), 2)()
    np.testing.assert_array_equal(replayed, arr(guide_trace["data"]["value"]))


# ---------------------------------------------------------------------------- deterministic and factor
def test_deterministic_is_recorded_and_not_scored():
    with trace() as tr:
        x = sample("x", dist.Normal(0.0, 1.0))
        d = deterministic("twice", 2 * x)
    assert tr["twice"]["type"] == "deterministic" and d is tr["twice"]["value"]
    assert float(d) == 2 * float(x)
    assert float(tr.log_prob_sum()) == pytest.approx(st.norm.logpdf(float(x)))
    assert float(deterministic("y", 3.0)) == 3.0                 # without a handler: the value
    with pytest.raises(TypeError, match="deterministic: the site name must be a non-empty str"):
        deterministic(None, 1.0)


def test_factor_adds_to_the_log_density():
    def model():
        x = sample("x", dist.Normal(0.0, 1.0))
        factor("penalty", -(x ** 2))
        with plate("data", 3):
            factor("per_item", pd.tensor([0.5, 1.0, -2.0]))

    tr = trace(seed(model, 0)).get_trace()
    x = float(tr["x"]["value"])
    assert float(tr.log_prob_sum()) == pytest.approx(st.norm.logpdf(x) - x ** 2 + 0.5 + 1.0 - 2.0, rel=1e-12)
    assert tr["penalty"]["is_observed"] and tr["per_item"]["log_prob"].shape == (3,)
    assert factor("alone", 1.0) is None                          # without a handler it does nothing


# ---------------------------------------------------------------------------- module and random_module
def test_module_registers_the_networks_own_tensors():
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    with trace() as tr:
        assert module("net", net) is net
    store = get_param_store()
    names = [f"net.{n}" for n, _ in net.named_parameters()]
    assert store.keys() == names == tr.param_nodes
    for n, p in net.named_parameters():
        assert store.unconstrained(f"net.{n}") is p and tr[f"net.{n}"]["value"] is p


def test_an_optimizer_over_the_store_trains_the_network():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2))
    y = x @ np.array([[2.0], [-1.0]]) + 0.5
    net = nn.Linear(2, 1)
    module("reg", net)
    store = get_param_store()
    opt = Adam(lr=0.05)
    opt.add_param_group({"params": [store.unconstrained(k) for k in store.keys()]})
    for _ in range(400):
        opt.zero_grad()
        loss = ((net(pd.tensor(x)) - pd.tensor(y)) ** 2).mean()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(arr(net.weight), [[2.0, -1.0]], atol=1e-3)
    np.testing.assert_allclose(arr(net.bias), [0.5], atol=1e-3)


def test_module_puts_stored_values_into_a_fresh_network():
    first = nn.Linear(2, 2)
    module("net", first)
    second = nn.Linear(2, 2)                          # e.g. rebuilt after load(): the store's values win
    module("net", second)
    np.testing.assert_array_equal(arr(second.weight), arr(first.weight))
    assert get_param_store().unconstrained("net.weight") is second.weight
    with pytest.raises(ValueError, match=r"parameter 'net.weight' has shape \(3, 2\), the param store holds one of "
                                         r"shape \(2, 2\)"):
        module("net", nn.Linear(2, 3))


def test_module_under_scope_registers_scoped_names():
    with scope(prefix="enc"):
        module("net", nn.Linear(2, 1))
    assert get_param_store().keys() == ["enc/net.weight", "enc/net.bias"]


def _linear_prior_forms():
    n = dist.Normal(0.0, 1.0)
    return [
        n,
        {"weight": n, "bias": dist.Normal(0.0, 10.0)},                            # by last component
        {"bnn.0.weight": n, "0.bias": n, "2.weight": n, "bias": n},                # by site / module name
        lambda pname, p: dist.Normal(np.zeros(p.shape), 1.0),                     # a callable (batch shape = p)
    ]


@pytest.mark.parametrize("prior", _linear_prior_forms(), ids=["distribution", "last-name", "full-name", "callable"])
def test_random_module_draws_each_parameter_at_a_site_with_its_prior(prior):
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    bnn = random_module("bnn", net, prior)
    x = pd.tensor(np.random.default_rng(0).normal(size=(5, 2)))
    tr = trace(seed(bnn, 0)).get_trace(x)
    assert list(tr) == ["bnn.0.weight", "bnn.0.bias", "bnn.2.weight", "bnn.2.bias"]
    for name, p in net.named_parameters():
        site = tr[f"bnn.{name}"]
        assert site["value"].shape == p.shape and site["fn"].event_shape == p.shape and site["fn"].batch_shape == ()
    # the network ran with the draws: recompute its output by hand
    w0, b0, w1, b1 = (arr(tr[k]["value"]) for k in tr)
    expected = np.tanh(arr(x) @ w0.T + b0) @ w1.T + b1
    np.testing.assert_allclose(arr(seed(bnn, 0)(x)), expected, rtol=1e-12)


def test_random_module_restores_the_modules_parameters():
    net = nn.Linear(2, 1)
    before = [p for _, p in net.named_parameters()]
    bnn = random_module("bnn", net, dist.Normal(0.0, 1.0))
    bnn(pd.ones((1, 2)))
    assert all(a is b for a, b in zip([p for _, p in net.named_parameters()], before))
    with pytest.raises(ValueError, match=r"input of shape \(1, 5\) does not match a weight"):
        bnn(pd.ones((1, 5)))                                     # the forward pass raises (wrong input width)
    assert all(a is b for a, b in zip([p for _, p in net.named_parameters()], before))
    assert len(list(net.named_parameters())) == 2


def test_random_module_bad_priors():
    net = nn.Linear(2, 3)
    with pytest.raises(KeyError, match="no prior for parameter 'bias'"):
        random_module("b", net, {"weight": dist.Normal(0.0, 1.0)})
    with pytest.raises(ValueError, match=r"prior of 'weight' has batch shape \(3,\), which does not broadcast to the "
                                         r"parameter's shape \(3, 2\)"):
        random_module("b", net, dist.Normal(np.zeros(3), 1.0))
    with pytest.raises(ValueError, match=r"prior of 'weight' has batch shape \(\) and event shape \(2,\)"):
        random_module("b", net, dist.MultivariateNormal(np.zeros(2), covariance_matrix=np.eye(2)))
    with pytest.raises(TypeError, match="prior must be a Distribution, a dict or a callable, got float"):
        random_module("b", net, 1.0)
    with pytest.raises(TypeError, match="expected a probdl.nn.Module"):
        random_module("b", object(), dist.Normal(0.0, 1.0))


# ---------------------------------------------------------------------------- properties
@settings(max_examples=25, deadline=None)
@given(hs.lists(hs.floats(-30, 30), min_size=2, max_size=5))
def test_any_unconstrained_simplex_leaf_gives_a_point_of_the_simplex(xs):
    clear_param_store()
    param("p", np.ones(len(xs) + 1) / (len(xs) + 1), constraint=constraints.simplex)
    get_param_store().unconstrained("p").data[...] = xs
    p = arr(param("p"))
    assert p.shape == (len(xs) + 1,) and np.all(p >= 0) and abs(p.sum() - 1) < 1e-12


@settings(max_examples=25, deadline=None)
@given(hs.integers(1, 30), hs.data())
def test_a_subsample_is_a_sorted_set_of_distinct_indices(size, data):
    k = data.draw(hs.integers(1, size))
    s = data.draw(hs.integers(0, 2 ** 32 - 1))
    with seed(rng_seed=s), plate("p", size, subsample_size=k) as idx:
        i = arr(idx)
    assert i.shape == (k,) and np.all(np.diff(i) > 0) and i.min() >= 0 and i.max() < size


def test_condition_fixes_a_site_inside_a_plate_with_a_shape_check():
    def model():
        with plate("data", 3):
            return sample("y", dist.Normal(0.0, 1.0))

    np.testing.assert_array_equal(arr(condition(model, data={"y": np.ones(3)})()), np.ones(3))
    with pytest.raises(ValueError, match="plate 'data' has size 3"):
        condition(model, data={"y": np.ones(2)})()
