"""Delta, ImproperUniform and Unit: densities, shapes, draws, gradients, validation and KL(Delta ‖ q)."""
import math

import numpy as np
import pytest
import scipy.stats as st

import probdl as pd
import probdl.distributions as dist
from probdl.distributions.delta import Delta, ImproperUniform, Unit
from probdl.testing import gradcheck


def test_delta_log_prob_is_log_density_at_v_and_minus_infinity_elsewhere():
    d = Delta(np.array([1.0, 2.0, 3.0]), log_density=0.5)
    assert d.batch_shape == (3,) and d.event_shape == () and d.has_rsample
    np.testing.assert_array_equal(d.log_prob(np.array([1.0, 0.0, 3.0])).numpy(), [0.5, -np.inf, 0.5])
    np.testing.assert_array_equal(d.log_prob(np.array([[1.0], [2.0]])).numpy(),
                                  [[0.5, -np.inf, -np.inf], [-np.inf, 0.5, -np.inf]])
    np.testing.assert_array_equal(d.mean.numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(d.variance.numpy(), np.zeros(3))
    np.testing.assert_array_equal(d.sample((4,), rng=0).numpy(), np.tile([1.0, 2.0, 3.0], (4, 1)))
    assert Delta().log_prob(0.0).item() == 0.0 and Delta(2).v.dtype == np.float64


def test_delta_event_dim_makes_the_whole_vector_one_event():
    v = np.arange(6.0).reshape(2, 3)
    d = Delta(v, log_density=np.array([0.0, -1.0]), event_dim=1)
    assert d.batch_shape == (2,) and d.event_shape == (3,) and repr(d.support) == "independent(real, 1)"
    x = v.copy()
    x[1, 2] = 9.0  # one coordinate off: the whole event misses
    np.testing.assert_array_equal(d.log_prob(x).numpy(), [0.0, -np.inf])
    np.testing.assert_array_equal(d.log_prob(v).numpy(), [0.0, -1.0])
    assert d.sample((5,)).shape == (5, 2, 3) and d.expand((4, 2)).sample().shape == (4, 2, 3)
    assert Delta(v, event_dim=2).batch_shape == () and Delta(v, event_dim=2).log_prob(v).shape == ()


def test_delta_rsample_is_differentiable_in_v():
    v = pd.tensor([1.0, -2.0], requires_grad=True)
    (Delta(v).rsample((3,)) ** 2).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), [6.0, -12.0])
    gradcheck(lambda v: Delta(v, event_dim=1).rsample((2,)), [np.array([0.3, 0.7])])
    gradcheck(lambda w: Delta(np.zeros(2), log_density=w).log_prob(np.zeros(2)), [np.array([0.3, -0.7])])


def test_delta_bad_input():
    with pytest.raises(ValueError, match="Delta: event_dim must be an int in \\[0, 1\\]"):
        Delta(np.zeros(3), event_dim=2)
    with pytest.raises(ValueError, match="log_density of shape \\(2,\\) does not broadcast to the batch shape"):
        Delta(np.zeros(3), log_density=np.zeros(2))
    with pytest.raises(ValueError, match="Delta: parameter log_density must satisfy the constraint real; got nan"):
        Delta(0.0, log_density=np.nan)
    with pytest.raises(ValueError, match="Delta: value outside the support real: got nan"):
        Delta(0.0).log_prob(np.nan)
    assert Delta(0.0, validate_args=False).log_prob(np.nan).item() == -np.inf


def test_kl_delta_is_minus_log_q_at_v():
    v = np.array([0.3, -1.2])
    q = dist.Normal(np.array([0.0, 1.0]), 2.0)
    kl = dist.kl_divergence(Delta(v), q)
    np.testing.assert_allclose(kl.numpy(), -st.norm([0.0, 1.0], 2.0).logpdf(v), rtol=1e-14)
    # Monte Carlo: every draw is v, so E_p[log p - log q] is exact.
    p = Delta(v)
    x = p.sample((1000,), rng=0)
    np.testing.assert_allclose((p.log_prob(x) - q.log_prob(x)).numpy().mean(0), kl.numpy(), rtol=1e-14)
    assert dist.kl_divergence(Delta(np.zeros(3), event_dim=1), dist.Normal(np.zeros(3), 1.0).to_event(1)).shape == ()


def test_improper_uniform_is_flat_and_has_no_draws():
    d = ImproperUniform(dist.constraints.positive, batch_shape=(2,), event_shape=(3,))
    assert d.batch_shape == (2,) and d.event_shape == (3,) and repr(d.support) == "independent(positive, 1)"
    lp = d.log_prob(np.ones((5, 2, 3)))
    assert lp.shape == (5, 2) and np.all(lp.numpy() == 0.0)
    assert d.log_prob(np.ones(3)).shape == (2,)
    with pytest.raises(ValueError, match="ImproperUniform: value outside the support independent\\(positive, 1\\)"):
        d.log_prob(-np.ones((2, 3)))
    with pytest.raises(NotImplementedError, match="has no draws.*init_to_uniform"):
        d.sample()
    with pytest.raises(NotImplementedError, match="has no draws"):
        d.rsample((2,))
    simplex = ImproperUniform(dist.constraints.simplex, (), (4,))
    assert simplex.support is dist.constraints.simplex and simplex.log_prob(np.full(4, 0.25)).shape == ()
    with pytest.raises(ValueError, match="event_shape \\(\\) has fewer dims than the support simplex"):
        ImproperUniform(dist.constraints.simplex, (), ())
    with pytest.raises(TypeError, match="support must be a Constraint"):
        ImproperUniform("positive", (), ())
    assert ImproperUniform(dist.constraints.real, (3,), ()).log_prob(np.array(1)).dtype == np.float64


def test_unit_carries_its_log_factor():
    d = Unit(np.array([-1.0, -np.inf]))  # -inf is a legal factor: it rejects a state
    assert d.batch_shape == (2,) and d.event_shape == (0,)
    x = d.sample((4,), rng=0)
    assert x.shape == (4, 2, 0) and x.numpy().size == 0
    np.testing.assert_array_equal(d.log_prob(x).numpy(), np.tile([-1.0, -np.inf], (4, 1)))
    np.testing.assert_array_equal(d.log_prob(np.zeros((2, 0))).numpy(), [-1.0, -np.inf])
    assert Unit(0.5).log_prob(np.zeros((0,))).item() == 0.5
    gradcheck(lambda f: Unit(f).log_prob(np.zeros((3, 0))), [np.array([0.1, 0.2, 0.3])])
    with pytest.raises(ValueError, match="Unit: parameter log_factor must satisfy the constraint less_than"):
        Unit(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="Unit: parameter log_factor must satisfy"):
        Unit(math.inf)


def test_delta_unit_and_improper_uniform_on_device(device):
    v = np.array([0.5, 1.5])
    on = Delta(pd.tensor(v, device=device), log_density=pd.tensor([0.1, 0.2], device=device))
    cpu = Delta(v, log_density=np.array([0.1, 0.2]))
    x = np.array([0.5, 0.0])
    np.testing.assert_array_equal(on.log_prob(pd.tensor(x, device=device)).numpy(), cpu.log_prob(x).numpy())
    assert on.rsample((2,)).device == pd.tensor(v, device=device).device
    u = Unit(pd.tensor([-1.0, 0.0], device=device))
    assert u.sample((3,)).device == u.log_factor.device
    np.testing.assert_array_equal(u.log_prob(u.sample((3,))).numpy(), np.tile([-1.0, 0.0], (3, 1)))
    flat = ImproperUniform(dist.constraints.real, (2,), ())
    assert flat.log_prob(pd.tensor(v, device=device)).device == pd.tensor(v, device=device).device
