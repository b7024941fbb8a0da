"""GP models: exact (GPRegression), sparse (SparseGPRegression) and variational (VariationalGP,
VariationalSparseGP)."""
from .base import GPModel
from .exact import GPRegression
from .sparse import SparseGPRegression
from .variational import VariationalGP, VariationalSparseGP

__all__ = ["GPModel", "GPRegression", "SparseGPRegression", "VariationalGP", "VariationalSparseGP"]
