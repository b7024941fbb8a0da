"""What every GP model shares: checked data, a kernel, a mean function, hyperparameters by path."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...tensor import Tensor, zeros
from ...tensor.ops.base import to_tensor
from ..kernels import Kernel, as_inputs
from ..parameterized import Parameterized

__all__ = ["GPModel"]


def as_targets(y: Any, n: int, who: str) -> Tensor:
    """``y`` as a 1-D float Tensor of length n, checked finite."""
    y = to_tensor(y)
    if y.data.dtype.kind not in "fc":
        y = y.astype(np.float64)
    if y.ndim != 1:
        raise ValueError(f"{who}: y must be a vector of shape (n,), got shape {tuple(y.shape)}")
    if y.shape[0] != n:
        raise ValueError(f"{who}: X has {n} rows but y has {y.shape[0]} entries")
    bad = int(np.sum(~np.isfinite(y.data)))
    if bad:
        raise ValueError(f"{who}: y holds {bad} NaN or infinite value(s)")
    return y


class GPModel(Parameterized):
    """Base of the GP models: data ``X`` (n, d) and ``y`` (n,), ``kernel``, ``mean_function`` (a callable of X
    returning (n,) values, a Module to learn its parameters, or None for zero) and ``jitter`` (added to the
    diagonal of every covariance before a Cholesky factorization, and grown automatically when that fails)."""

    def __init__(self, X: Any, y: Any, kernel: Kernel, mean_function: Any = None, jitter: float = 0.0) -> None:
        super().__init__()
        who = type(self).__name__
        if not isinstance(kernel, Kernel):
            raise TypeError(f"{who}: kernel must be a probdl.gp.kernels.Kernel, got {type(kernel).__name__}")
        if mean_function is not None and not callable(mean_function):
            raise TypeError(f"{who}: mean_function must be callable or None, got {type(mean_function).__name__}")
        if not jitter >= 0:
            raise ValueError(f"{who}: jitter must be >= 0, got {jitter!r}")
        self.kernel = kernel
        self.mean_function = mean_function
        self.jitter = float(jitter)
        self.set_data(X, y)

    def set_data(self, X: Any, y: Any) -> None:
        """Replace the training data (checked as in the constructor)."""
        X = as_inputs(X, f"{type(self).__name__}: X")
        self.X = X
        self.y = as_targets(y, X.shape[0], type(self).__name__)

    def _mean(self, X: Tensor) -> Tensor:
        if self.mean_function is None:
            return zeros(X.shape[0], dtype=X.dtype)
        m = self.mean_function(X)
        m = to_tensor(m)
        if m.ndim == 2 and m.shape[1] == 1:
            m = m.squeeze(-1)
        if tuple(m.shape) != (X.shape[0],):
            raise ValueError(f"{type(self).__name__}: mean_function returned shape {tuple(m.shape)} for "
                             f"{X.shape[0]} inputs; expected ({X.shape[0]},)")
        return m

    def set_hyperparameters(self, values: dict[str, Any]) -> None:
        """Assign hyperparameters by path, e.g. ``{"kernel.lengthscale": 0.5, "noise": 0.1}`` (the site names
        of :meth:`model`, so a posterior draw from MCMC can be plugged in)."""
        for path, value in values.items():
            owner, _, name = path.rpartition(".")
            module = self
            for part in owner.split(".") if owner else ():
                module = getattr(module, part)
            if not isinstance(module, Parameterized) or name not in module._hyper:
                raise KeyError(f"{type(self).__name__}: no hyperparameter at path {path!r}")
            setattr(module, name, value)
