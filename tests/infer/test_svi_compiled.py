"""SVI with jit_compile=True: compiled steps draw and compute exactly what eager steps do, and steps that a
replay cannot repeat (subsampling, discrete sites, changing arguments) stay eager."""
import numpy as np
import pytest

import probdl as pd
from probdl import distributions as dist
from probdl import plate, sample
from probdl.infer.autoguide import AutoMultivariateNormal, AutoNormal
from probdl.infer.elbo import Trace_ELBO, TraceMeanField_ELBO
from probdl.infer.svi import SVI
from probdl.optim import Adam

RNG = np.random.default_rng(0)
X = pd.tensor(RNG.normal(size=(60, 3)))
Y = pd.tensor(X.numpy() @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.5 * RNG.normal(size=60))


def regression(X, y):
    w = sample("w", dist.Normal(0.0, 1.0).expand([3]).to_event(1))
    b = sample("b", dist.Normal(0.0, 1.0))
    sigma = sample("sigma", dist.HalfNormal(1.0))
    with plate("data", X.shape[0]):
        sample("y", dist.Normal(X @ w + b, sigma), obs=y)


def fit(guide_class, jit, elbo=Trace_ELBO, steps=40, model=regression, args=(X, Y), seed=0):
    pd.clear_param_store()
    guide = guide_class(model)
    svi = SVI(model, guide, Adam(lr=0.05), elbo(), rng_seed=seed, jit_compile=jit)
    losses = [svi.step(*args) for _ in range(steps)]
    return svi, np.array(losses), {k: v.copy() for k, v in svi.get_params().items()}


@pytest.mark.parametrize("guide_class", [AutoNormal, AutoMultivariateNormal])
@pytest.mark.parametrize("elbo", [Trace_ELBO, TraceMeanField_ELBO])
def test_compiled_steps_are_the_eager_steps(guide_class, elbo):
    svi, losses, params = fit(guide_class, True, elbo)
    assert svi.why_not_compiled is None and svi._compiled is not None
    _, losses_eager, params_eager = fit(guide_class, False, elbo)
    np.testing.assert_allclose(losses, losses_eager, rtol=1e-10)
    for name in params_eager:
        np.testing.assert_allclose(params[name], params_eager[name], rtol=1e-10, atol=1e-12)


def test_periodic_check_passes_and_keeps_compiling():
    pd.clear_param_store()
    svi = SVI(regression, AutoNormal(regression), Adam(lr=0.05), Trace_ELBO(), rng_seed=1, jit_compile=True)
    svi.CHECK_EVERY = 5
    for _ in range(23):
        svi.step(X, Y)
    assert svi.why_not_compiled is None


def subsampled(X, y):
    w = sample("w", dist.Normal(0.0, 1.0).expand([3]).to_event(1))
    with plate("data", X.shape[0], subsample_size=20) as idx:
        sample("y", dist.Normal(X[idx] @ w, 0.5), obs=y[idx])


def mixture(y):
    p = sample("p", dist.Beta(2.0, 2.0))
    with plate("data", y.shape[0]):
        z = sample("z", dist.Bernoulli(p))
        sample("y", dist.Normal(3.0 * z, 1.0), obs=y)


def mixture_guide(y):
    a = pd.param("a", 2.0, constraint=dist.constraints.positive)
    b = pd.param("b", 2.0, constraint=dist.constraints.positive)
    sample("p", dist.Beta(a, b))
    q = pd.param("q", 0.5 * np.ones(y.shape[0]), constraint=dist.constraints.unit_interval)
    with plate("data", y.shape[0]):
        sample("z", dist.Bernoulli(q))


def test_a_subsampling_plate_is_replayed_with_fresh_subsamples():
    svi, losses, params = fit(AutoNormal, True, model=subsampled, steps=30)
    assert svi.why_not_compiled is None and svi._compiled is not None
    _, losses_eager, params_eager = fit(AutoNormal, False, model=subsampled, steps=30)
    np.testing.assert_array_equal(losses, losses_eager)  # the same subsamples, the same arithmetic
    for name in params_eager:
        np.testing.assert_array_equal(params[name], params_eager[name])


LABELS = pd.tensor((X.numpy()[:, 0] > 0).astype(np.int64) + (X.numpy()[:, 1] > 0))


def subsample_read_as_data(X, y):
    w = sample("w", dist.Normal(0.0, 1.0).expand([3]).to_event(1))
    with plate("data", X.shape[0], subsample_size=20) as idx:
        positive = pd.tensor((y[idx].data > 0).astype(np.float64))  # raw data: a trace freezes it
        pd.factor("fit", -((X[idx] @ w - positive) ** 2).sum())


def test_a_subsample_read_as_raw_data_is_caught_when_compiling():
    """The agreement check runs on another subsample than the trace's, so a frozen read shows and the steps
    stay eager, with the eager draws."""
    svi, losses, _ = fit(AutoNormal, True, model=subsample_read_as_data, steps=10)
    assert svi._compiled is None and "disagreed" in svi.why_not_compiled
    _, losses_eager, _ = fit(AutoNormal, False, model=subsample_read_as_data, steps=10)
    np.testing.assert_array_equal(losses, losses_eager)


def test_what_a_replay_cannot_repeat_stays_eager():
    pd.clear_param_store()
    y = pd.tensor(np.concatenate([RNG.normal(size=10), 3 + RNG.normal(size=10)]))
    svi = SVI(mixture, mixture_guide, Adam(lr=0.05), Trace_ELBO(), rng_seed=0, jit_compile=True)
    for _ in range(5):
        svi.step(y)
    assert "random draw" in svi.why_not_compiled  # the discrete site's draw


def test_changing_arguments_recompile_then_stay_eager():
    pd.clear_param_store()
    svi = SVI(regression, AutoNormal(regression), Adam(lr=0.05), Trace_ELBO(), rng_seed=0, jit_compile=True)
    svi.step(X, Y)
    svi.step(X, Y)
    assert svi._compiled is not None
    for k in range(6):  # a new y each step (as mini-batches passed as arguments would be)
        svi.step(X, pd.tensor(Y.numpy() + 0.01 * k))
    assert "arguments change from step to step" in svi.why_not_compiled


def test_data_changed_in_place_is_seen():
    pd.clear_param_store()
    y = pd.tensor(Y.numpy().copy())
    svi = SVI(regression, AutoNormal(regression), Adam(lr=0.05), Trace_ELBO(), rng_seed=0, jit_compile=True)
    svi.step(X, y)
    svi.step(X, y)
    first = svi._compiled.fn
    y.data[:] += 1.0  # the same tensor, new values: the replay must not use the old ones
    svi.step(X, y)
    assert svi._compiled.fn is not first


def test_a_failed_check_puts_the_generator_back():
    """When the replay disagrees, the step runs eagerly: it must draw what a step without compiling would."""
    pd.clear_param_store()
    svi = SVI(regression, AutoNormal(regression), Adam(lr=0.05), Trace_ELBO(), rng_seed=0, jit_compile=True)
    svi.step(X, Y)
    svi.step(X, Y)
    good = svi._compiled
    gen = svi._generator()
    before = gen.bit_generator.state
    ok, _, _ = svi._replay_agrees(good, (X, Y), {})
    assert ok and gen.bit_generator.state != before  # agreed: one step further
    before = gen.bit_generator.state
    off = good._replace(fn=lambda *arrays: (lambda v, g: (v + 1.0, g))(*good.fn(*arrays)))
    ok, _, _ = svi._replay_agrees(off, (X, Y), {})
    assert not ok and gen.bit_generator.state == before  # disagreed: back where it was


def test_float32_steps_compile_and_follow_the_eager_ones():
    previous = pd.get_default_dtype()
    pd.set_default_dtype(np.float32)
    try:
        args = (pd.tensor(X.numpy().astype(np.float32)), pd.tensor(Y.numpy().astype(np.float32)))
        svi, losses, params = fit(AutoNormal, True, args=args, steps=30)
        assert svi.why_not_compiled is None and svi._compiled is not None
        _, losses_eager, params_eager = fit(AutoNormal, False, args=args, steps=30)
    finally:
        pd.set_default_dtype(previous)
    # the backward may sum in another order: float32 rounding (eps 1.2e-7) over 30 steps, not more
    np.testing.assert_allclose(losses, losses_eager, rtol=1e-4)
    for name in params_eager:
        np.testing.assert_allclose(params[name], params_eager[name], rtol=1e-3, atol=1e-4)


COUNTS = pd.tensor(np.minimum(np.random.default_rng(5).poisson(3.0, size=60), 10).astype(np.float64))
COUNT_VECTORS = pd.tensor(np.random.default_rng(6).multinomial(6, [0.2, 0.3, 0.5], size=60).astype(np.float64))
LIKELIHOODS = {  # name -> (the distribution of a mini-batch given its linear predictor, the data)
    "categorical": (lambda eta: dist.Categorical(logits=eta), LABELS),
    "binomial": (lambda eta: dist.Binomial(total_count=10, logits=eta[:, 0]), COUNTS),
    "negative_binomial": (lambda eta: dist.NegativeBinomial(total_count=5.0, logits=eta[:, 0]), COUNTS),
    "geometric": (lambda eta: dist.Geometric(logits=eta[:, 0]), COUNTS),
    "poisson": (lambda eta: dist.Poisson(pd.exp(eta[:, 0])), COUNTS),
    "multinomial": (lambda eta: dist.Multinomial(total_count=6, logits=eta), COUNT_VECTORS),
}


def subsampled_likelihood(likelihood):
    def model(X, y):
        w = sample("w", dist.Normal(0.0, 1.0).expand([3, 3]).to_event(2))
        with plate("data", X.shape[0], subsample_size=20) as idx:
            sample("y", likelihood(X[idx] @ w), obs=y[idx])

    return model


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_subsampled_labels_and_counts_are_replayed(name):
    """Categorical picks each replayed subsample's labels by a recorded mask (not the labels as an index), and
    the count likelihoods' zero-weight masks are recorded comparisons: all follow the eager steps."""
    likelihood, y = LIKELIHOODS[name]
    model = subsampled_likelihood(likelihood)
    svi, losses, params = fit(AutoNormal, True, model=model, args=(X, y), steps=20)
    assert svi.why_not_compiled is None and svi._compiled is not None
    _, losses_eager, params_eager = fit(AutoNormal, False, model=model, args=(X, y), steps=20)
    # the same subsamples and the same math; a mask's or a template's backward may add its terms in another
    # order than the eager rule, so the two may part in the last bit
    np.testing.assert_allclose(losses, losses_eager, rtol=1e-13)
    for name in params_eager:
        np.testing.assert_allclose(params[name], params_eager[name], rtol=1e-12, atol=1e-14)
