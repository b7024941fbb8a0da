"""The Distribution base through Normal: scipy values, shapes, sampling moments, rsample gradients, validation."""
import numpy as np
import pytest
import scipy.stats as st

import probdl as pd
import probdl.distributions as dist
from probdl.testing import gradcheck


@pytest.fixture
def params(rng):
    return rng.normal(size=(2, 3)), rng.uniform(0.5, 2.0, size=(3,))


def test_values_against_scipy(params, rng):
    loc, scale = params
    d = dist.Normal(loc, scale)
    ref = st.norm(loc, scale)
    x = rng.normal(size=(4, 2, 3)) * 2
    np.testing.assert_allclose(d.log_prob(x).numpy(), ref.logpdf(x), rtol=1e-12)
    np.testing.assert_allclose(d.cdf(x).numpy(), ref.cdf(x), rtol=1e-12)
    q = rng.uniform(0.01, 0.99, size=(2, 3))
    np.testing.assert_allclose(d.icdf(q).numpy(), ref.ppf(q), rtol=1e-12)
    np.testing.assert_allclose(d.entropy().numpy(), ref.entropy(), rtol=1e-12)
    np.testing.assert_allclose(d.mean.numpy(), ref.mean(), rtol=1e-12)
    np.testing.assert_allclose(d.variance.numpy(), ref.var(), rtol=1e-12)
    np.testing.assert_allclose(d.stddev.numpy(), ref.std(), rtol=1e-12)


def test_shapes(params):
    d = dist.Normal(*params)
    assert d.batch_shape == (2, 3) and d.event_shape == () and d.shape((5, 4)) == (5, 4, 2, 3)
    assert d.sample((5,), rng=0).shape == (5, 2, 3) and d.rsample(rng=0).shape == (2, 3)
    assert d.log_prob(np.zeros(3)).shape == (2, 3)  # the value broadcasts against the batch
    assert dist.Normal().batch_shape == () and dist.Normal(np.zeros(4), 1.0).mean.shape == (4,)


def test_sample_moments_and_goodness_of_fit():
    d = dist.Normal(np.array([1.0, -2.0]), np.array([0.5, 3.0]))
    n = 100_000
    x = d.sample((n,), rng=0).numpy()
    se = np.array([0.5, 3.0]) / np.sqrt(n)
    assert np.all(np.abs(x.mean(0) - [1.0, -2.0]) < 5 * se)  # 5 standard errors: a false alarm is ~1e-6
    assert np.all(np.abs(x.std(0) / [0.5, 3.0] - 1) < 5 / np.sqrt(2 * n))
    assert st.kstest(x[:, 0], st.norm(1.0, 0.5).cdf).pvalue > 1e-3


def test_sampling_is_reproducible_and_sample_is_outside_the_graph():
    loc = pd.tensor([0.0, 1.0], requires_grad=True)
    d = dist.Normal(loc, 1.0)
    a, b = d.sample((3,), rng=7), d.sample((3,), rng=7)
    assert np.array_equal(a.numpy(), b.numpy()) and not a.requires_grad and d.rsample(rng=1).requires_grad


def test_rsample_and_log_prob_gradients():
    """E[x²] = loc² + scale²: the pathwise gradient of its Monte Carlo estimate with common random numbers is
    exactly the estimate's derivative, and log_prob's gradient passes gradcheck."""
    loc, scale = pd.tensor(0.7, requires_grad=True), pd.tensor(1.3, requires_grad=True)
    x = dist.Normal(loc, scale).rsample((200_000,), rng=3)
    (x * x).mean().backward()
    assert abs(loc.grad.item() - 2 * 0.7) < 0.02 and abs(scale.grad.item() - 2 * 1.3) < 0.02
    gradcheck(lambda m, s, v: dist.Normal(m, s).log_prob(v), [np.array([0.1, -0.4]), np.array([0.8, 1.7]),
                                                              np.array([0.3, 2.0])], order=2)
    gradcheck(lambda m, s: dist.Normal(m, s).rsample(rng=5), [np.array([0.1, -0.4]), np.array([0.8, 1.7])])


def test_validation_names_distribution_parameter_constraint_and_value():
    with pytest.raises(ValueError, match=r"Normal: parameter scale must satisfy the constraint positive; "
                                         r"got -1\.0 at index \(1,\)"):
        dist.Normal(0.0, np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="Normal: parameter loc must satisfy the constraint real; got nan"):
        dist.Normal(np.nan, 1.0)
    with pytest.raises(ValueError, match="value outside the support real: got inf"):
        dist.Normal(0.0, 1.0).log_prob(np.inf)
    with pytest.raises(ValueError, match="do not broadcast"):
        dist.Normal(np.zeros(2), np.ones(3))
    with np.errstate(invalid="ignore"):  # the fast path checks nothing: log(-1) is NaN
        assert np.isnan(dist.Normal(0.0, -1.0, validate_args=False).log_prob(0.0).item())
    try:
        dist.enable_validation(False)
        dist.Normal(0.0, -1.0)
        assert not dist.is_validation_enabled()
    finally:
        dist.enable_validation(True)
