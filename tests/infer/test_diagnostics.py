"""The diagnostics layer over ArviZ and the InferenceData conversion: equal to ArviZ's own functions, right on
iid and on disagreeing chains, names and shapes, and ArviZ's tools running on the result."""
import io
import math

import numpy as np
import pytest

arviz = pytest.importorskip("arviz")

import probdl as pd  # noqa: E402
import probdl.distributions as dist  # noqa: E402
from probdl.infer import MCMC, NUTS, Predictive  # noqa: E402
from probdl.infer import diagnostics as diag  # noqa: E402
from probdl.infer.inference_data import to_inference_data  # noqa: E402
from probdl.primitives import deterministic, plate, sample  # noqa: E402

RNG = np.random.default_rng(0)
IID = RNG.normal(size=(4, 1000))


def test_the_layer_is_arviz():
    x = RNG.normal(size=(3, 200, 2)) + np.arange(2)
    for j in range(2):
        assert diag.effective_sample_size(x)[j] == arviz.ess(x[:, :, j], method="bulk")
        assert diag.effective_sample_size(x, method="tail")[j] == arviz.ess(x[:, :, j], method="tail")
        assert diag.split_gelman_rubin(x)[j] == arviz.rhat(x[:, :, j])
        assert diag.mcse(x)[j] == arviz.mcse(x[:, :, j])
        np.testing.assert_array_equal(diag.hpdi(x)[:, j], arviz.hdi(x[:, :, j].ravel(), hdi_prob=0.9))


def test_iid_draws_have_full_ess_and_unit_r_hat():
    n = IID.size
    ess = float(diag.effective_sample_size(IID))
    # for iid draws the ESS estimate scatters around N by roughly ±10% at this size
    assert 0.8 * n < ess < 1.25 * n
    assert abs(float(diag.split_gelman_rubin(IID)) - 1) < 0.01
    assert float(diag.mcse(IID)) == pytest.approx(1 / math.sqrt(n), rel=0.15)


def test_chains_that_disagree_have_a_large_r_hat():
    shifted = IID + np.array([0.0, 0.0, 0.0, 2.0])[:, None]
    assert float(diag.split_gelman_rubin(shifted)) > 1.1


def test_summary_names_and_keys():
    samples = {"a": RNG.normal(size=(2, 50)), "v": RNG.normal(size=(2, 50, 3)), "L": RNG.normal(size=(2, 50, 2, 2))}
    table = diag.summary(samples, prob=0.8)
    assert list(table) == ["a", "v[0]", "v[1]", "v[2]", "L[0,0]", "L[0,1]", "L[1,0]", "L[1,1]"]
    assert list(table["a"]) == ["mean", "sd", "median", "10.0%", "90.0%", "ess_bulk", "ess_tail", "r_hat"]
    assert table["v[1]"]["mean"] == pytest.approx(samples["v"][:, :, 1].mean(), rel=1e-14)
    one_chain = diag.summary({"a": samples["a"][0]}, group_by_chain=False)
    assert one_chain["a"]["mean"] == pytest.approx(samples["a"][0].mean(), rel=1e-14)


def test_print_summary_table(capsys):
    diag.print_summary({"mu": IID, "v": np.stack([IID, 2 * IID], -1)}, num_divergences=3)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["mean", "sd", "median", "5.0%", "95.0%", "ess_bulk", "ess_tail", "r_hat"]
    assert [line.split()[0] for line in out[1:4]] == ["mu", "v[0]", "v[1]"]
    assert out[-1] == "Number of divergences: 3"
    buf = io.StringIO()
    diag.print_summary({"mu": IID}, file=buf)
    assert "mu" in buf.getvalue()


def test_bad_input():
    with pytest.raises(ValueError, match=r"split_gelman_rubin: x has shape \(2, 3\): 3 draws per chain, and at"):
        diag.split_gelman_rubin(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="effective_sample_size: x has 1 NaN or infinite value"):
        diag.effective_sample_size(np.array([[0.0, 1.0, np.nan, 2.0, 3.0]]))
    with pytest.raises(ValueError, match=r"site 'x' has shape \(5,\); expected \(chains, draws, ...\)"):
        diag.summary({"x": np.zeros(5)})
    with pytest.raises(ValueError, match="pass group_by_chain=False"):
        diag.summary({"x": np.zeros(5)})
    with pytest.raises(TypeError, match="mcse: x must hold real numbers"):
        diag.mcse(np.array(["a", "b", "c", "d"]))
    with pytest.raises(ValueError, match=r"prob must be in \(0, 1\), got 1.5"):
        diag.hpdi(IID, prob=1.5)


# ---------------------------------------------------------------------------- InferenceData
Y = pd.tensor(np.random.default_rng(1).normal(1.0, 1.0, size=12))


def model(y=None):
    mu = sample("mu", dist.Normal(0.0, 5.0))
    log_s = sample("log_s", dist.Normal(0.0, 1.0))
    deterministic("s", pd.exp(log_s))
    with plate("data", 12):
        sample("y", dist.Normal(mu, pd.exp(log_s)), obs=y)


@pytest.fixture(scope="module")
def fitted():
    mcmc = MCMC(NUTS(model), num_warmup=150, num_samples=100, num_chains=2, progress_bar=False)
    mcmc.run(Y, seed=0)
    return mcmc


def test_inference_data_groups_and_shapes(fitted):
    prior = Predictive(model, num_samples=30)(0)
    post_pred = Predictive(model, fitted.get_samples(), return_sites=["y"])(1)
    idata = to_inference_data(fitted, prior=prior, posterior_predictive=post_pred)
    assert sorted(idata.groups()) == ["log_likelihood", "observed_data", "posterior", "posterior_predictive",
                                      "prior", "sample_stats"]
    assert idata.posterior["mu"].shape == (2, 100) and idata.posterior["s"].shape == (2, 100)
    assert idata.log_likelihood["y"].shape == (2, 100, 12)
    np.testing.assert_array_equal(idata.observed_data["y"].values, Y.numpy())
    assert idata.posterior_predictive["y"].shape == (2, 100, 12) and idata.prior["mu"].shape == (1, 30)
    stats = idata.sample_stats
    assert {"diverging", "energy", "tree_depth", "n_steps", "step_size", "acceptance_rate", "lp"} <= set(stats)
    np.testing.assert_array_equal(stats["lp"].values, -fitted.get_extra_fields(group_by_chain=True)[
        "potential_energy"])
    # the pointwise log likelihood is log N(y_i; mu, s) at each draw
    mu, s = idata.posterior["mu"].values[..., None], idata.posterior["s"].values[..., None]
    expected = -0.5 * ((Y.numpy() - mu) / s) ** 2 - np.log(s) - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(idata.log_likelihood["y"].values, expected, rtol=1e-10)


def test_arviz_tools_run_on_it(fitted):
    idata = fitted.to_arviz()
    table = arviz.summary(idata, var_names=["mu", "log_s"])
    assert list(table.index) == ["mu", "log_s"]
    assert float(arviz.ess(idata)["mu"]) > 20 and float(arviz.rhat(idata)["mu"]) < 1.1
    loo, waic = arviz.loo(idata), arviz.waic(idata)
    assert np.isfinite(loo.elpd_loo) and np.isfinite(waic.elpd_waic)
    # elpd_loo is at most the log pointwise predictive density of the data themselves
    ll = idata.log_likelihood["y"].values.reshape(-1, 12)
    lppd = float(np.sum(np.log(np.mean(np.exp(ll), axis=0))))
    assert loo.elpd_loo <= lppd + 1e-9


def test_print_summary_of_an_mcmc(fitted, capsys):
    fitted.print_summary()
    out = capsys.readouterr().out
    assert "mu" in out and "log_s" in out and "Number of divergences" in out
    assert "s" not in [line.split()[0] for line in out.splitlines() if line.strip()]  # deterministic: left out


def test_posterior_predictive_of_the_wrong_size_is_named(fitted):
    with pytest.raises(ValueError, match=r"posterior_predictive site 'y' has shape \(7, 12\)"):
        to_inference_data(fitted, posterior_predictive={"y": np.zeros((7, 12))})
