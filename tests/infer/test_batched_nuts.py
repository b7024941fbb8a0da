"""NUTS with the chains advanced together (chain_method="vectorized", probdl.infer.batched_nuts): the same
transition distribution as the recursive kernel (tree sizes, acceptance, draws), known posteriors, reproducible
draws, continuing from the last state, a potential_fn, progress and bad input."""
import math

import numpy as np
import pytest

import probdl as pd
import probdl.distributions as dist
from probdl.infer import HMC, MCMC, NUTS
from probdl.infer.batched_nuts import BatchedNUTS, RowByRow
from probdl.primitives import deterministic, plate, sample

Z = 4.5
Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
COV = np.array([[5.0, -4.0], [-4.0, 5.0]]) / 9.0  # the posterior of correlated() below


def correlated():
    """z ~ Normal(0, I), 0 ~ Normal(z1 + z2, 0.5): a Gaussian posterior with precision I + 4 [[1, 1], [1, 1]]."""
    z = sample("z", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
    deterministic("total", z.sum())
    sample("obs", dist.Normal(z[0] + z[1], 0.5), obs=pd.tensor(0.0))


def eight_schools(y, sigma):
    mu = sample("mu", dist.Normal(0.0, 5.0))
    tau = sample("tau", dist.HalfCauchy(5.0))
    with plate("J", len(sigma)):
        theta_tilde = sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = deterministic("theta", mu + tau * theta_tilde)
        sample("y", dist.Normal(theta, sigma), obs=y)


@pytest.fixture
def one_batch(monkeypatch):
    """All chains in one batch in this process (one core seen), whatever the machine."""
    monkeypatch.setattr("probdl.infer.mcmc.os.cpu_count", lambda: 1)


def mean_and_se(x):
    """The mean of per-transition values (nearly independent draws) and its standard error."""
    return x.mean(), x.std() / math.sqrt(x.size)


def test_the_batched_tree_has_the_recursive_trees_transitions(one_batch):
    """With a fixed step size and metric, both kernels are the same Markov chain: tree sizes, acceptance and
    the posterior's moments agree within their standard errors."""
    kw = dict(num_warmup=0, num_samples=1500, num_chains=4, progress_bar=False)
    kernel = NUTS(correlated, step_size=0.3, adapt_step_size=False, adapt_mass_matrix=False)
    runs = {}
    for method in ("sequential", "vectorized"):
        mcmc = MCMC(kernel, chain_method=method, **kw)
        mcmc.run(seed=11)
        runs[method] = mcmc
    fields = {m: r.get_extra_fields() for m, r in runs.items()}
    for name in ("num_steps", "tree_depth", "accept_prob"):
        (a, se_a), (b, se_b) = (mean_and_se(fields[m][name].astype(float)) for m in runs)
        assert abs(a - b) < Z * math.hypot(se_a, se_b), (name, a, b)
    z = runs["vectorized"].get_samples()["z"]
    se = np.sqrt(np.diag(COV) / (z.shape[0] / 4))  # the draws are autocorrelated: a quarter of them, at worst
    np.testing.assert_array_less(np.abs(z.mean(0)), Z * se)
    np.testing.assert_allclose(np.cov(z.T), COV, atol=Z * COV[0, 0] * math.sqrt(2 / (z.shape[0] / 4)))
    np.testing.assert_allclose(runs["vectorized"].get_samples()["total"], z.sum(1), rtol=1e-12)


class Scripted:
    """A stand-in generator: every uniform is ``u`` and every momentum ``r0``, so that a transition's directions
    (all forward for u > 1/2, all backward below) and its trajectory are fixed."""

    def __init__(self, u, r0):
        self.u, self.r0 = u, r0

    def random(self, size=None):
        return self.u if size is None else np.full(size, self.u)

    def standard_normal(self, size=None):
        return self.r0.copy()


def test_the_iterative_tree_stops_where_the_recursive_one_does():
    """On fixed trajectories (scripted directions and momenta) of an anisotropic Gaussian, the batched kernel's
    first transition has the recursive kernel's length and depth: every U-turn check of every subtree and merge,
    the extra checks across halves included, is the same."""
    rng = np.random.default_rng(12)
    A = rng.normal(size=(4, 4))
    precision = A @ A.T + 0.05 * np.eye(4)
    kernel = NUTS(potential_fn=lambda z: 0.5 * (z @ (pd.tensor(precision) @ z)), adapt_step_size=False,
                  adapt_mass_matrix=False)
    lengths = set()
    for trial in range(300):
        z0, r0 = rng.normal(size=4), rng.normal(size=4)
        state = kernel.init(rng, 0, init_params=z0)
        state = state._replace(rng=Scripted(0.9 if trial % 2 else 0.1, r0), step_size=float(rng.uniform(0.02, 0.4)))
        want = kernel.sample(state)
        batch = BatchedNUTS([kernel], RowByRow(kernel.potential), [state], lambda c, s: None)
        batch.run()
        got = batch.final_states
        assert (got[0].num_steps, got[0].tree_depth, got[0].diverging) == (
            want.num_steps, want.tree_depth, want.diverging), trial
        lengths.add(want.tree_depth)
    assert len(lengths) >= 4  # short and long trajectories


def test_draws_are_reproducible_and_each_chain_has_its_own(one_batch):
    kw = dict(num_warmup=60, num_samples=30, num_chains=3, chain_method="vectorized", progress_bar=False)
    first, again, other = (MCMC(NUTS(eight_schools), **kw) for _ in range(3))
    first.run(pd.tensor(Y), pd.tensor(SIGMA), seed=3)
    again.run(pd.tensor(Y), pd.tensor(SIGMA), seed=3)
    other.run(pd.tensor(Y), pd.tensor(SIGMA), seed=4)
    grouped = first.get_samples(group_by_chain=True)
    for k, v in grouped.items():
        np.testing.assert_array_equal(again.get_samples(group_by_chain=True)[k], v)
    assert not np.array_equal(other.get_samples()["mu"], first.get_samples()["mu"])
    assert not np.array_equal(grouped["mu"][0], grouped["mu"][1])
    assert grouped["theta"].shape == (3, 30, 8)
    fields = first.get_extra_fields(group_by_chain=True)
    assert all(v.shape == (3, 30) for v in fields.values())
    assert np.all(fields["num_steps"] <= 2 ** (fields["tree_depth"] + 1) - 1)
    assert np.all(fields["energy"] >= fields["potential_energy"])
    assert all(len(np.unique(s)) == 1 for s in fields["step_size"])  # fixed after warmup, per chain


def test_continuing_a_vectorized_run_from_its_last_state(one_batch):
    mcmc = MCMC(NUTS(eight_schools), num_warmup=50, num_samples=10, num_chains=2, chain_method="vectorized",
                progress_bar=False)
    mcmc.run(pd.tensor(Y), pd.tensor(SIGMA), seed=5)
    last = mcmc.last_state
    mcmc.post_warmup_state = last
    mcmc.run(pd.tensor(Y), pd.tensor(SIGMA))
    steps = mcmc.get_extra_fields(group_by_chain=True)["step_size"]
    np.testing.assert_array_equal(steps[:, 0], [s.step_size for s in last])
    assert mcmc.get_samples()["mu"].shape == (20,)


def test_a_dense_mass_matrix(one_batch):
    """The adapted dense metric of a correlated posterior: close to its covariance, and the draws right."""
    mcmc = MCMC(NUTS(correlated, dense_mass=True), num_warmup=400, num_samples=800, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(seed=10)
    z = mcmc.get_samples()["z"]
    np.testing.assert_allclose(np.cov(z.T), COV, atol=Z * COV[0, 0] * math.sqrt(2 / (z.shape[0] / 4)))
    for state in mcmc.last_state:
        assert state.inverse_mass_matrix.shape == (2, 2)
        np.testing.assert_allclose(state.inverse_mass_matrix, COV, atol=0.25)


def test_a_potential_fn_runs_row_by_row(one_batch):
    precision = pd.tensor(np.linalg.inv(COV))
    mcmc = MCMC(NUTS(potential_fn=lambda z: 0.5 * (z @ (precision @ z))), num_warmup=200, num_samples=500,
                num_chains=2, chain_method="vectorized", progress_bar=False)
    mcmc.run(init_params=np.zeros((2, 2)), seed=6)
    z = mcmc.get_samples()["z"]
    assert z.shape == (1000, 2)
    np.testing.assert_allclose(np.cov(z.T), COV, atol=0.12)


def test_a_single_chain_and_an_uncompiled_model(one_batch):
    """One chain is a batch of one; a model that branches on a latent value runs uncompiled, row by row."""
    def branching():
        x = sample("x", dist.Normal(0.0, 1.0))
        if float(x) > 5.0:  # never, in practice; but the trace cannot know
            sample("y", dist.Normal(x, 1.0), obs=pd.tensor(0.5))

    mcmc = MCMC(NUTS(branching), num_warmup=100, num_samples=400, chain_method="vectorized", progress_bar=False)
    mcmc.run(seed=2)
    x = mcmc.get_samples()["x"]
    assert x.shape == (400,) and abs(x.mean()) < Z / math.sqrt(100) and abs(x.std() - 1) < 0.25


def test_batches_in_parallel_processes():
    """On a machine with several cores the chains are split into batches, one process each; the draws have the
    run's shapes and every chain moves."""
    mcmc = MCMC(NUTS(eight_schools), num_warmup=40, num_samples=20, num_chains=4, chain_method="vectorized",
                progress_bar=False)
    mcmc.run(pd.tensor(Y), pd.tensor(SIGMA), seed=8)
    mu = mcmc.get_samples(group_by_chain=True)["mu"]
    assert mu.shape == (4, 20) and all(len(np.unique(row)) > 1 for row in mu)


def test_progress_lines_and_bad_input(one_batch, capsys):
    mcmc = MCMC(NUTS(eight_schools), num_warmup=10, num_samples=10, num_chains=2, chain_method="vectorized")
    mcmc.run(pd.tensor(Y), pd.tensor(SIGMA), seed=9)
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("chain 1: 20/20 sample") for line in lines)
    assert any(line.startswith("chain 2: 20/20 sample") for line in lines)
    with pytest.raises(ValueError, match="chain_method='vectorized' runs NUTS kernels, got HMC"):
        MCMC(HMC(eight_schools), 10, 10, chain_method="vectorized")
    with pytest.raises(ValueError, match="BatchedNUTS: 1 kernels for 2 states"):
        BatchedNUTS([NUTS(eight_schools)], lambda z: z, [None, None], lambda c, s: None)


@pytest.mark.slow
def test_eight_schools_noncentered_against_the_reference_vectorized():
    """As the sequential kernel's test: posteriordb's reference (mu 4.41 (sd 3.31), tau 3.60 (3.20), theta[1]
    6.15 (5.62)), within the README's 0.15 sd in mean and 15% in sd."""
    mcmc = MCMC(NUTS(eight_schools), num_warmup=1000, num_samples=1000, num_chains=4, chain_method="vectorized",
                progress_bar=False)
    mcmc.run(pd.tensor(Y), pd.tensor(SIGMA), seed=0)
    s = mcmc.get_samples()
    for x, mean, sd in ((s["mu"], 4.41, 3.31), (s["tau"], 3.60, 3.20), (s["theta"][:, 0], 6.15, 5.62)):
        assert abs(x.mean() - mean) < 0.15 * sd
        assert abs(x.std() / sd - 1) < 0.15
    assert mcmc.get_extra_fields()["diverging"].sum() < 40
