"""GP models: exact (GPRegression), sparse (SparseGPRegression) and variational (VariationalGP,
VariationalSparseGP)."""
from .base import GPModel
from .exact import GPRegression

__all__ = ["GPModel", "GPRegression"]
