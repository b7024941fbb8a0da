"""Gaussian processes: kernels, likelihoods, and exact, sparse and variational GP models.

``probdl.gp.kernels`` (covariance functions), ``probdl.gp.likelihoods`` (observation models for the variational
GPs), ``probdl.gp.models`` (the models). See ``docs/gp.md``.
"""
from . import kernels, likelihoods, models
from .fit import fit_module
from .models import GPRegression, SparseGPRegression, VariationalGP, VariationalSparseGP
from .parameterized import Parameterized

__all__ = ["Parameterized", "kernels", "likelihoods", "models", "fit_module", "GPRegression", "SparseGPRegression",
           "VariationalGP", "VariationalSparseGP"]
