"""expand, to_event and mask; TransformedDistribution and FoldedDistribution: shapes, log densities, draws,
gradients and KL."""
import numpy as np
import pytest
import scipy.stats as st

import probdl as pd
import probdl.distributions as dist
from probdl.distributions import transforms as tr
from probdl.distributions.combinators import log_prob_or_neg_inf
from probdl.distributions.transformed import FoldedDistribution, TransformedDistribution
from probdl.testing import gradcheck


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


# ------------------------------------------------------------------ TransformedDistribution, FoldedDistribution


def test_exp_of_a_normal_is_scipy_lognorm(rng):
    loc, scale = rng.normal(size=3) * 0.5, rng.uniform(0.5, 1.5, size=3)
    d, ref = TransformedDistribution(dist.Normal(loc, scale), tr.ExpTransform()), st.lognorm(scale, scale=np.exp(loc))
    x = rng.exponential(size=(4, 3)) + 0.05
    np.testing.assert_allclose(d.log_prob(x).numpy(), ref.logpdf(x), rtol=1e-10)
    np.testing.assert_allclose(d.cdf(x).numpy(), ref.cdf(x), rtol=1e-10)
    q = rng.uniform(0.02, 0.98, size=(4, 3))
    np.testing.assert_allclose(d.icdf(q).numpy(), ref.ppf(q), rtol=1e-10)
    assert d.batch_shape == (3,) and d.event_shape == () and repr(d.support) == "positive" and d.has_rsample
    assert isinstance(d.base_dist, dist.Normal) and isinstance(d.transforms[0], tr.ExpTransform)
    draws = d.sample((20000,), rng=1).numpy()
    assert draws.shape == (20000, 3)
    assert min(st.kstest(draws[:, i], st.lognorm(scale[i], scale=np.exp(loc[i])).cdf).pvalue for i in range(3)) > 1e-3


def test_affine_transforms_of_a_normal_are_normal(rng):
    loc, scale = rng.normal(size=3), rng.uniform(0.5, 2.0, size=3)
    a, b = rng.normal(size=3), np.array([2.0, -0.5, 1.5])  # a decreasing map in the middle: cdf flips there
    ref = st.norm(a + b * loc, np.abs(b) * scale)
    x = rng.normal(size=(4, 3)) * 2
    q = rng.uniform(0.02, 0.98, size=(4, 3))
    for transforms in ([tr.AffineTransform(a, b)],
                       [tr.AffineTransform(0.0, b), tr.AffineTransform(a, 1.0)],
                       tr.ComposeTransform([tr.AffineTransform(0.0, b), tr.AffineTransform(a, 1.0)])):
        d = TransformedDistribution(dist.Normal(loc, scale), transforms)
        np.testing.assert_allclose(d.log_prob(x).numpy(), ref.logpdf(x), rtol=1e-10)
        np.testing.assert_allclose(d.cdf(x).numpy(), ref.cdf(x), rtol=1e-10)
        np.testing.assert_allclose(d.icdf(q).numpy(), ref.ppf(q), rtol=1e-10)
    # The transform's parameters broadcast a scalar base to their shape, as in PyTorch.
    d = TransformedDistribution(dist.Normal(0.0, 1.0), tr.AffineTransform(a, np.abs(b)))
    assert d.batch_shape == (3,) and d.sample((5,), rng=0).shape == (5, 3)
    np.testing.assert_allclose(d.log_prob(x).numpy(), st.norm(a, np.abs(b)).logpdf(x), rtol=1e-10)


def test_stick_breaking_of_a_normal_vector_follows_the_change_of_variables(rng):
    loc, scale = rng.normal(size=(2, 3)), rng.uniform(0.5, 1.5, size=(2, 3))
    t = tr.StickBreakingTransform()
    d = TransformedDistribution(dist.Normal(loc, scale).to_event(1), t)
    assert d.batch_shape == (2,) and d.event_shape == (4,) and repr(d.support) == "simplex"
    y = d.sample((5,), rng=0)
    assert y.shape == (5, 2, 4) and np.allclose(y.numpy().sum(-1), 1)
    lp = d.log_prob(y).numpy()
    assert lp.shape == (5, 2)
    # log p(y) = log p_X(x) - log|det ∂y₁..₃/∂x| with the Jacobian of the first K-1 coordinates from autograd.
    for s in range(5):
        for b in range(2):
            x = t.inv(y[s, b])
            jac = pd.jacobian(lambda v: t(v)[:-1])(x)
            _, logdet = np.linalg.slogdet(jac.numpy())
            expected = st.norm(loc[b], scale[b]).logpdf(x.numpy()).sum() - logdet
            np.testing.assert_allclose(lp[s, b], expected, rtol=1e-10)
    # A univariate base of batch shape (2, 3) is reinterpreted as (2,) events of 3 automatically.
    auto = TransformedDistribution(dist.Normal(loc, scale), t)
    assert auto.batch_shape == (2,) and auto.event_shape == (4,)
    np.testing.assert_allclose(auto.log_prob(y).numpy(), lp, rtol=1e-12)


def test_elementwise_transform_of_a_vector_base_sums_the_log_jacobian(rng):
    loc, scale = rng.normal(size=(2, 3)), rng.uniform(0.5, 1.5, size=(2, 3))
    d = TransformedDistribution(dist.Normal(loc, scale).to_event(1), [tr.ExpTransform(), tr.AffineTransform(1.0, 2.0)])
    assert d.batch_shape == (2,) and d.event_shape == (3,) and d.support.event_dim == 1
    y = d.sample((4,), rng=0)
    expected = st.lognorm(scale, scale=2 * np.exp(loc), loc=1.0).logpdf(y.numpy()).sum(-1)
    np.testing.assert_allclose(d.log_prob(y).numpy(), expected, rtol=1e-10)
    with pytest.raises(NotImplementedError, match="cdf and icdf need a univariate base"):
        d.cdf(y)
    with pytest.raises(NotImplementedError, match="cdf and icdf need a univariate base"):
        TransformedDistribution(dist.Normal(loc, scale), tr.StickBreakingTransform()).cdf(y)


def test_transformed_gradients(rng):
    loc, scale = rng.normal(size=3), rng.uniform(0.5, 1.5, size=3)
    x = rng.exponential(size=3) + 0.1
    make = lambda m, s: TransformedDistribution(dist.Normal(m, s), [tr.ExpTransform(), tr.AffineTransform(0.0, 2.0)])
    gradcheck(lambda m, s: make(m, s).log_prob(x), [loc, scale])
    gradcheck(lambda m, s: make(m, s).rsample((2,), rng=5), [loc, scale])
    y = rng.dirichlet(np.ones(4), size=2)
    gradcheck(lambda m, s: TransformedDistribution(dist.Normal(m, s), tr.StickBreakingTransform()).log_prob(y),
              [rng.normal(size=(2, 3)), rng.uniform(0.5, 1.5, size=(2, 3))])


def test_transformed_shapes_and_bad_input():
    d = TransformedDistribution(dist.Normal(np.zeros(3), 1.0), tr.ExpTransform())
    e = d.expand((4, 3))
    assert e.batch_shape == (4, 3) and e.sample((2,), rng=0).shape == (2, 4, 3)
    assert e.log_prob(np.ones(3)).shape == (4, 3)
    assert d.to_event(1).event_shape == (3,) and d.to_event(1).log_prob(np.ones(3)).shape == ()
    with pytest.raises(ValueError, match="TransformedDistribution: value outside the support positive: got -1.0"):
        d.log_prob(np.array([1.0, -1.0, 2.0]))
    d_free = TransformedDistribution(dist.Normal(np.zeros(3), 1.0, validate_args=False), tr.ExpTransform())
    assert not d_free._validate_args  # inherited from the base
    with np.errstate(invalid="ignore"):
        assert np.isnan(d_free.log_prob(np.array([1.0, -1.0, 2.0])).numpy()[1])
    with pytest.raises(TypeError, match="transforms must be Transforms, got str"):
        TransformedDistribution(dist.Normal(0.0, 1.0), "exp")
    with pytest.raises(ValueError, match="the transforms need an event of 1 dims"):
        TransformedDistribution(dist.Normal(0.0, 1.0), tr.StickBreakingTransform())
    assert TransformedDistribution(dist.Normal(0.0, 1.0), []).support is dist.constraints.real


def test_folded_normal_matches_scipy(rng):
    loc, scale = np.array([-1.0, 0.0, 2.0]), rng.uniform(0.5, 2.0, size=3)
    d, ref = FoldedDistribution(dist.Normal(loc, scale)), st.foldnorm(np.abs(loc) / scale, scale=scale)
    x = rng.exponential(size=(4, 3))
    np.testing.assert_allclose(d.log_prob(x).numpy(), ref.logpdf(x), rtol=1e-10)
    np.testing.assert_allclose(d.cdf(x).numpy(), ref.cdf(x), rtol=1e-10)
    half = FoldedDistribution(dist.Normal(0.0, scale))
    np.testing.assert_allclose(half.log_prob(x).numpy(), st.halfnorm(scale=scale).logpdf(x), rtol=1e-10)
    draws = d.sample((20000,), rng=3).numpy()
    assert draws.min() >= 0 and repr(d.support) == "nonnegative"
    assert min(st.kstest(draws[:, i], st.foldnorm(abs(loc[i]) / scale[i], scale=scale[i]).cdf).pvalue
               for i in range(3)) > 1e-3
    assert np.all(np.abs(draws.mean(0) - ref.mean()) < 5 * np.sqrt(ref.var() / 20000))
    gradcheck(lambda m, s: FoldedDistribution(dist.Normal(m, s)).log_prob(x), [loc, scale])
    gradcheck(lambda m, s: FoldedDistribution(dist.Normal(m, s)).rsample((2,), rng=5), [loc, scale])
    # A base whose support is one-sided: folding an Exponential changes nothing.
    np.testing.assert_allclose(FoldedDistribution(dist.Exponential(2.0)).log_prob(x).numpy(),
                               st.expon(scale=0.5).logpdf(x), rtol=1e-12)
    with pytest.raises(ValueError, match="FoldedDistribution: value outside the support nonnegative"):
        d.log_prob(np.array([1.0, -0.5, 1.0]))
    with pytest.raises(ValueError, match="only univariate distributions can be folded"):
        FoldedDistribution(dist.Normal(np.zeros(2), 1.0).to_event(1))
    with pytest.raises(NotImplementedError, match="monotone bijections"):
        d.icdf(0.5)


def test_log_prob_or_neg_inf_is_minus_infinity_outside_the_support_with_finite_gradients():
    rate = pd.tensor(2.0, requires_grad=True)
    lp = log_prob_or_neg_inf(dist.Exponential(rate), np.array([-1.0, 1.0]))
    np.testing.assert_allclose(lp.numpy(), [-np.inf, np.log(2) - 2])
    pd.logsumexp(lp, 0).backward()
    assert np.isfinite(rate.grad.item())


def test_expanded_cdf_and_icdf_broadcast():
    d = dist.Normal(0.0, 1.0).expand((3,))
    np.testing.assert_allclose(d.cdf(0.0).numpy(), [0.5] * 3)
    np.testing.assert_allclose(d.icdf(np.array([0.5])).numpy(), [0.0] * 3)


def test_transformed_log_prob_on_device(device, rng):
    loc, scale, x = rng.normal(size=3), rng.uniform(0.5, 1.5, size=3), rng.exponential(size=3) + 0.1
    on = TransformedDistribution(dist.Normal(pd.tensor(loc, device=device), pd.tensor(scale, device=device)),
                                 tr.ExpTransform())
    cpu = TransformedDistribution(dist.Normal(loc, scale), tr.ExpTransform())
    np.testing.assert_allclose(on.log_prob(pd.tensor(x, device=device)).numpy(), cpu.log_prob(x).numpy(), rtol=1e-12)


def test_kl_of_two_transformed_distributions_is_the_kl_of_their_bases():
    p = TransformedDistribution(dist.Normal(np.array([0.0, 1.0]), np.array([1.0, 0.5])),
                                [tr.ExpTransform(), tr.AffineTransform(1.0, 2.0)])
    q = TransformedDistribution(dist.Normal(0.5, np.array([2.0, 1.0])),
                                [tr.ExpTransform(), tr.AffineTransform(1.0, 2.0)])
    n = 200_000
    x = p.sample((n,), rng=0)
    diff = (p.log_prob(x) - q.log_prob(x)).numpy()
    estimate, se = diff.mean(0), diff.std(0) / np.sqrt(n)
    kl = dist.kl_divergence(p, q).numpy()
    assert kl.shape == (2,) and np.all(np.abs(kl - estimate) <= 5 * se), (kl, estimate, se)
    np.testing.assert_allclose(kl, dist.kl_divergence(p.base_dist, q.base_dist).numpy(), rtol=1e-14)
    # Vector events: the KL of the Independent bases.
    pv = TransformedDistribution(dist.Normal(np.zeros((2, 3)), 1.0), tr.StickBreakingTransform())
    qv = TransformedDistribution(dist.Normal(np.ones((2, 3)), 2.0), tr.StickBreakingTransform())
    np.testing.assert_allclose(dist.kl_divergence(pv, qv).numpy(),
                               dist.kl_divergence(dist.Normal(0.0, 1.0), dist.Normal(1.0, 2.0)).numpy() * 3, rtol=1e-14)
    other = TransformedDistribution(dist.Normal(0.0, 1.0), [tr.ExpTransform(), tr.AffineTransform(1.0, 3.0)])
    with pytest.raises(NotImplementedError, match="TransformedDistribution ‖ TransformedDistribution .*Affine"):
        dist.kl_divergence(p, other)
    with pytest.raises(NotImplementedError, match="FoldedDistribution ‖ FoldedDistribution"):
        dist.kl_divergence(FoldedDistribution(dist.Normal(0.0, 1.0)), FoldedDistribution(dist.Normal(1.0, 1.0)))
