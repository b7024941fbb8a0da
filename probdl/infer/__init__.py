"""Inference on model functions: stochastic variational inference (ELBOs, SVI, autoguides), MCMC (HMC, NUTS),
initialization strategies, the model-to-potential machinery, and Predictive.

Users write ``from probdl.infer import SVI, Trace_ELBO, Predictive`` and
``from probdl.infer.autoguide import AutoNormal`` (also importable from here), as in Pyro and NumPyro.
"""
from probdl.infer import autoguide
from probdl.infer.autoguide import (
    AutoDelta,
    AutoDiagonalNormal,
    AutoGuide,
    AutoLaplaceApproximation,
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
    AutoNormal,
)
from probdl.infer.elbo import ELBO, RenyiELBO, Trace_ELBO, TraceMeanField_ELBO
from probdl.infer.hmc import HMC, NUTS
from probdl.infer.initialization import init_to_mean, init_to_median, init_to_sample, init_to_uniform, init_to_value
from probdl.infer.mcmc import MCMC
from probdl.infer.predictive import Predictive, log_likelihood
from probdl.infer.svi import SVI, SVIRunResult
from probdl.infer.util import ModelInfo, constrain_fn, initialize_model, log_density, potential_energy, unconstrain_fn

__all__ = [
    "autoguide", "AutoGuide", "AutoDelta", "AutoNormal", "AutoDiagonalNormal", "AutoMultivariateNormal",
    "AutoLowRankMultivariateNormal", "AutoLaplaceApproximation",
    "ELBO", "Trace_ELBO", "TraceMeanField_ELBO", "RenyiELBO",
    "init_to_mean", "init_to_median", "init_to_sample", "init_to_uniform", "init_to_value",
    "Predictive", "log_likelihood", "SVI", "SVIRunResult", "HMC", "NUTS", "MCMC",
    "ModelInfo", "initialize_model", "potential_energy", "log_density", "constrain_fn", "unconstrain_fn",
]
