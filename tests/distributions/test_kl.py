"""Closed-form KL divergences against Monte Carlo estimates E_p[log p - log q]."""
import numpy as np
import pytest

import probdl.distributions as dist
from probdl.testing import assert_kl_matches_monte_carlo

PAIRS = [
    ("Normal", dist.Normal(np.array([0.0, 1.0]), np.array([1.0, 0.5])), dist.Normal(np.array([0.5, -1.0]), 2.0)),
    ("Exponential", dist.Exponential(np.array([1.0, 3.0])), dist.Exponential(np.array([2.0, 0.5]))),
    ("Laplace", dist.Laplace(np.array([0.0, 1.0]), np.array([1.0, 0.5])), dist.Laplace(0.3, np.array([2.0, 0.7]))),
    ("Uniform", dist.Uniform(np.array([0.0, 0.2]), np.array([1.0, 0.5])), dist.Uniform(-1.0, 2.0)),
    ("Bernoulli", dist.Bernoulli(probs=np.array([0.2, 0.9])), dist.Bernoulli(probs=np.array([0.5, 0.6]))),
    ("Categorical", dist.Categorical(probs=np.array([[0.2, 0.3, 0.5], [0.0, 0.4, 0.6]])),
     dist.Categorical(probs=np.array([[0.3, 0.3, 0.4], [0.1, 0.1, 0.8]]))),
    ("Poisson", dist.Poisson(np.array([2.0, 0.5])), dist.Poisson(np.array([3.0, 1.0]))),
    ("Independent", dist.Normal(np.zeros((2, 3)), 1.0).to_event(1), dist.Normal(np.ones((2, 3)), 1.5).to_event(1)),
]


@pytest.mark.parametrize("name,p,q", PAIRS, ids=[x[0] for x in PAIRS])
def test_kl_matches_monte_carlo(name, p, q):
    assert_kl_matches_monte_carlo(p, q, dist.kl_divergence(p, q))


def test_kl_edge_cases():
    assert np.isinf(dist.kl_divergence(dist.Uniform(0.0, 2.0), dist.Uniform(0.0, 1.0)).item())
    assert dist.kl_divergence(dist.Normal(1.0, 2.0), dist.Normal(1.0, 2.0)).item() == 0.0
    with pytest.raises(NotImplementedError, match="no closed form is registered for Normal ‖ Laplace"):
        dist.kl_divergence(dist.Normal(0.0, 1.0), dist.Laplace(0.0, 1.0))
