"""Gaussian processes: kernels, likelihoods, and exact, sparse and variational GP models.

``probdl.gp.kernels`` (covariance functions), ``probdl.gp.models`` (the models), ``probdl.gp.likelihoods``
(observation models for the variational GPs). See ``docs/gp.md``.
"""
from . import kernels, models
from .fit import fit_module
from .models import GPRegression
from .parameterized import Parameterized

__all__ = ["Parameterized", "kernels", "models", "fit_module", "GPRegression"]
