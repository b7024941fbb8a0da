"""VonMises against scipy.stats.vonmises (density, entropy, draws), its moments, gradients and the i0e/i1e ops."""
import numpy as np
import pytest
import scipy.integrate as si
import scipy.special as sp
import scipy.stats as st

import probdl as pd
from probdl.distributions.von_mises import VonMises
from probdl.testing import gradcheck

KAPPA = np.array([1e-3, 0.7, 3.0, 50.0, 1e4])


@pytest.fixture
def loc():
    return np.random.default_rng(5).uniform(-np.pi, np.pi, size=KAPPA.size)


def test_values_against_scipy(loc):
    d = VonMises(loc, KAPPA)
    x = np.linspace(-np.pi, np.pi, 9)[:, None]
    np.testing.assert_allclose(d.log_prob(x).numpy(), st.vonmises(KAPPA, loc).logpdf(x), rtol=1e-12)
    np.testing.assert_allclose(d.entropy().numpy(), st.vonmises(KAPPA).entropy(), rtol=1e-10)
    def pdf(t, k):
        return np.exp(k * (np.cos(t) - 1)) / (2 * np.pi * sp.i0e(k))

    circular_var = [si.quad(lambda t, k=k: 2 * np.sin(t / 2) ** 2 * pdf(t, k), -np.pi, np.pi, points=[0.0],
                            epsabs=1e-14, epsrel=1e-13, limit=200)[0] for k in KAPPA]  # E[1 - cos(x - loc)]
    np.testing.assert_allclose(d.variance.numpy(), circular_var, rtol=1e-9)
    assert d.mean.numpy().tolist() == d.mode.numpy().tolist() == loc.tolist()
    assert np.isfinite(VonMises(0.0, 1e6).log_prob(0.0).item())  # I0(1e6) overflows; log I0 = log i0e + κ does not
    assert VonMises(0.0, 1e6).log_prob(0.0).item() == pytest.approx(st.vonmises(1e6).logpdf(0.0), rel=1e-12)


def test_draws_follow_the_distribution(loc):
    n = 100_000
    d = VonMises(loc, KAPPA)
    x = d.sample((n,), rng=2).numpy()
    assert x.shape == (n, KAPPA.size) and (x >= -np.pi).all() and (x < np.pi).all()
    centred = np.mod(x - loc + np.pi, 2 * np.pi) - np.pi  # scipy's vonmises(κ, loc) is not wrapped: compare at 0
    for i, k in enumerate(KAPPA):
        assert st.kstest(centred[:, i], st.vonmises(k).cdf).pvalue > 1e-3
    # circular mean direction and the circular variance 1 - E[cos(x - loc)], within 5 standard errors
    c = np.cos(centred)
    var = d.variance.numpy()
    assert np.all(np.abs((1 - c.mean(0)) - var) < 5 * c.std(0) / np.sqrt(n) + 1e-15)
    assert np.all(np.abs(np.sin(centred).mean(0)) < 5 * np.sin(centred).std(0) / np.sqrt(n) + 1e-15)
    assert np.array_equal(d.sample((3,), rng=7).numpy(), d.sample((3,), rng=7).numpy())
    assert not d.has_rsample and not d.sample(rng=0).requires_grad


def test_extreme_concentrations_sample_sensibly():
    x = VonMises(np.array([0.0, 0.0]), np.array([1e-300, 1e8])).sample((20000,), rng=3).numpy()
    assert st.kstest(x[:, 0], st.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 1e-3
    assert st.kstest(x[:, 1], st.norm(0, 1e-4).cdf).pvalue > 1e-3  # κ → ∞: Normal(loc, 1/√κ)


def test_gradients(loc):
    x = np.array([-3.0, -1.0, 0.5, 2.0, 3.1])
    gradcheck(lambda m, k: VonMises(m, k).log_prob(x), [loc, KAPPA], order=2)
    gradcheck(lambda k: VonMises(0.0, k).variance + VonMises(0.0, k).entropy(), [KAPPA], order=2)


def test_i0e_i1e_ops():
    x = np.array([-30.0, -2.5, -0.1, 0.2, 1.0, 40.0, 800.0])
    np.testing.assert_allclose(pd.i0e(x).numpy(), sp.i0e(x), rtol=1e-15)
    np.testing.assert_allclose(pd.i1e(x).numpy(), sp.i1e(x), rtol=1e-15)
    gradcheck(pd.i0e, [x], order=3)
    gradcheck(pd.i1e, [x], order=3)
    t = pd.tensor([0.0], requires_grad=True)
    pd.i1e(t).sum().backward()  # the limit i1e'(0) = 1/2, not 0/0
    assert t.grad.item() == 0.5


def test_shapes_and_validation():
    d = VonMises(np.zeros((2, 1)), np.ones(3))
    assert d.batch_shape == (2, 3) and d.sample((4,), rng=0).shape == (4, 2, 3)
    assert d.log_prob(np.zeros(3)).shape == (2, 3) and d.entropy().shape == d.variance.shape == (2, 3)
    assert d.expand((5, 2, 3)).sample((4,), rng=0).shape == (4, 5, 2, 3)
    assert d.to_event(2).log_prob(np.zeros((7, 2, 3))).shape == (7,)
    with pytest.raises(ValueError, match="VonMises: parameter concentration must satisfy the constraint positive"):
        VonMises(0.0, np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="VonMises: value outside the support circular: got 4.0"):
        VonMises(0.0, 1.0).log_prob(4.0)
    with pytest.raises(NotImplementedError, match="VonMises has no reparameterized sampler"):
        VonMises(0.0, 1.0).rsample()
    assert np.isfinite(VonMises(0.0, 1.0, validate_args=False).log_prob(4.0).item())


def test_on_a_device(device):
    m, k, x = np.array([0.3, -1.0]), np.array([0.5, 20.0]), np.array([1.0, -1.2])
    cpu = VonMises(m, k).log_prob(x).numpy()
    d = VonMises(pd.tensor(m, device=device), pd.tensor(k, device=device))
    lp = d.log_prob(pd.tensor(x, device=device))
    assert lp.device == device
    np.testing.assert_allclose(lp.numpy(), cpu, rtol=1e-12)
    assert d.sample((3,), rng=0).device == device
