"""expand, to_event and mask: shapes, log densities and draws."""
import numpy as np
import pytest
import scipy.stats as st

import probdl as pd
import probdl.distributions as dist


def test_to_event_sums_log_prob_over_the_reinterpreted_dims(rng):
    loc, scale = rng.normal(size=(2, 3)), rng.uniform(0.5, 2, size=(2, 3))
    d = dist.Normal(loc, scale).to_event(1)
    assert isinstance(d, dist.Independent) and d.batch_shape == (2,) and d.event_shape == (3,)
    x = rng.normal(size=(4, 2, 3))
    np.testing.assert_allclose(d.log_prob(x).numpy(), st.norm(loc, scale).logpdf(x).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(d.entropy().numpy(), st.norm(loc, scale).entropy().sum(-1), rtol=1e-12)
    assert d.sample((5,), rng=0).shape == (5, 2, 3) and d.has_rsample and d.support.event_dim == 1
    full = dist.Normal(loc, scale).to_event()
    assert full.batch_shape == () and full.event_shape == (2, 3) and full.log_prob(x).shape == (4,)
    with pytest.raises(ValueError, match="reinterpreted_batch_ndims must be an int in \\[0, 2\\]"):
        dist.Normal(loc, scale).to_event(3)


def test_expand_broadcasts_and_draws_independently_along_stretched_dims():
    base = dist.Normal(np.array([[0.0], [10.0]]), 1.0)  # batch (2, 1)
    d = base.expand((3, 2, 4))
    assert d.batch_shape == (3, 2, 4) and base.expand((2, 1)) is base
    x = d.sample((2000,), rng=0).numpy()
    assert x.shape == (2000, 3, 2, 4)
    np.testing.assert_allclose(x.mean(axis=(0, 1, 3)), [0.0, 10.0], atol=5 / np.sqrt(2000 * 12))
    # Draws along the stretched dims are independent: near-zero correlation between columns 0 and 1.
    assert abs(np.corrcoef(x[:, 0, 0, 0], x[:, 0, 0, 1])[0, 1]) < 5 / np.sqrt(2000)
    assert abs(np.corrcoef(x[:, 0, 0, 0], x[:, 1, 0, 0])[0, 1]) < 5 / np.sqrt(2000)
    lp = d.log_prob(np.zeros((3, 2, 4)))
    assert lp.shape == (3, 2, 4) and np.allclose(lp.numpy()[:, 1], st.norm(10, 1).logpdf(0))
    assert d.mean.shape == (3, 2, 4) and d.entropy().shape == (3, 2, 4)
    with pytest.raises(ValueError, match="cannot expand batch shape \\(2, 1\\) of Normal to \\(3, 4\\)"):
        base.expand((3, 4))


def test_expand_keeps_the_reparameterized_gradient():
    loc = pd.tensor([1.0, 2.0], requires_grad=True)
    x = dist.Normal(loc, 1.0).expand((5, 2)).rsample(rng=0)
    x.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), [5.0, 5.0])


def test_mask_zeroes_log_prob_where_false():
    d = dist.Normal(np.zeros(3), 1.0).mask(np.array([True, False, True]))
    np.testing.assert_allclose(d.log_prob(np.ones(3)).numpy(), [st.norm.logpdf(1), 0.0, st.norm.logpdf(1)])
    assert dist.Normal(0.0, 1.0).mask(True).__class__ is dist.Normal
    assert dist.Normal(np.zeros(3), 1.0).mask(np.array([[True], [False]])).batch_shape == (2, 3)
    with pytest.raises(TypeError, match="boolean mask"):
        dist.Normal(0.0, 1.0).mask(np.array([1.0]))
    with pytest.raises(ValueError, match="does not broadcast with batch shape \\(3,\\)"):
        dist.Normal(np.zeros(3), 1.0).mask(np.array([True, False]))
