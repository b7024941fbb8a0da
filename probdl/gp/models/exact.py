"""Exact Gaussian process regression.

With :math:`f \\sim \\mathcal{GP}(m, k)` and :math:`y = f(X) + \\varepsilon`, :math:`\\varepsilon \\sim
\\mathcal N(0, \\sigma^2 I)`, and :math:`L L^\\top = K_{XX} + \\sigma^2 I`:

- log marginal likelihood :math:`\\log p(y) = -\\tfrac12 r^\\top (K + \\sigma^2 I)^{-1} r - \\sum_i \\log L_{ii}
  - \\tfrac n2 \\log 2\\pi`, :math:`r = y - m(X)`;
- predictive :math:`f_* \\mid y \\sim \\mathcal N(m(X_*) + A^\\top L^{-1} r,\\; K_{**} - A^\\top A)` with
  :math:`A = L^{-1} K_{X*}`.

Reference: Rasmussen & Williams, *Gaussian Processes for Machine Learning* (2006), algorithm 2.1 and eq. 5.9.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...backend import as_generator
from ...distributions import MultivariateNormal
from ...optim.optimizer import Optimizer
from ...primitives import sample
from ...tensor import Tensor, eye
from ...tensor import ops as T
from ..fit import fit_module
from ..kernels import Kernel, as_inputs
from ..linalg import gaussian_log_marginal, jittered_cholesky
from .base import GPModel

__all__ = ["GPRegression"]


class GPRegression(GPModel):
    """Exact GP regression with Gaussian noise of variance ``noise`` (a positive hyperparameter).

    Example::

        gp = GPRegression(X, y, kernels.RBF(), noise=0.1)
        gp.fit()                                   # L-BFGS-B on the log marginal likelihood
        mean, var = gp.predict(X_test)
    """

    def __init__(self, X: Any, y: Any, kernel: Kernel, noise: Any = 1.0, mean_function: Any = None,
                 jitter: float = 0.0) -> None:
        super().__init__(X, y, kernel, mean_function, jitter)
        self.register_hyperparameter("noise", noise)

    def log_marginal_likelihood(self) -> Tensor:
        """log p(y | X, hyperparameters), differentiable in the hyperparameters (and X)."""
        return gaussian_log_marginal(self.kernel(self.X), self.noise, self.y - self._mean(self.X), self.jitter,
                                     type(self).__name__)

    def fit(self, method: str | Optimizer = "lbfgs", num_steps: int = 1000) -> list[float]:
        """Maximize the log marginal likelihood over every hyperparameter (and a mean function's parameters):
        L-BFGS-B by default, or ``num_steps`` steps of a probdl optimizer. Returns the losses (negative log
        marginal likelihoods) seen."""
        return fit_module(self, lambda: -self.log_marginal_likelihood(), method, num_steps,
                          who=f"{type(self).__name__}.fit")

    def _factor(self, grow: bool = True) -> Tensor:
        """The Cholesky factor of K(X, X) + σ² I (jitter grown when needed unless ``grow=False``)."""
        n = self.X.shape[0]
        return jittered_cholesky(self.kernel(self.X) + self.noise * eye(n, dtype=self.X.dtype), self.jitter,
                                 type(self).__name__, grow=grow)

    def predict(self, Xnew: Any, full_cov: bool = False, noiseless: bool = True) -> tuple[Tensor, Tensor]:
        """Mean and variance (``full_cov=False``, shape (m,)) or covariance ((m, m)) of the posterior of f at
        ``Xnew``; with ``noiseless=False`` of a new observation y (the noise variance added)."""
        Xnew = as_inputs(Xnew, f"{type(self).__name__}.predict: Xnew")
        if Xnew.shape[1] != self.X.shape[1]:
            raise ValueError(f"{type(self).__name__}.predict: Xnew has {Xnew.shape[1]} columns, the training "
                             f"inputs {self.X.shape[1]}")
        L = self._factor()
        A = T.solve_triangular(L, self.kernel(self.X, Xnew), lower=True)
        v = T.solve_triangular(L, self.y - self._mean(self.X), lower=True)
        mean = self._mean(Xnew) + A.mT @ v
        if full_cov:
            cov = self.kernel(Xnew) - A.mT @ A
            if not noiseless:
                cov = cov + self.noise * eye(Xnew.shape[0], dtype=cov.dtype)
            return mean, cov
        var = T.clip(self.kernel.Kdiag(Xnew) - (A * A).sum(0), 0.0, None)
        return mean, var if noiseless else var + self.noise

    def sample_functions(self, Xnew: Any, num_samples: int = 1, seed: Any = None) -> Tensor:
        """``num_samples`` joint draws of the posterior f at ``Xnew``, shape (num_samples, m)."""
        mean, cov = self.predict(Xnew, full_cov=True)
        L = jittered_cholesky(cov.detach(), max(self.jitter, 1e-10 * float(np.mean(np.diag(cov.data)))),
                              f"{type(self).__name__}.sample_functions")
        eps = as_generator(seed).standard_normal((int(num_samples), mean.shape[0]))
        return mean.detach() + Tensor._wrap(eps) @ L.detach().mT

    def model(self) -> Tensor:
        """The GP as a probdl model: hyperparameters with priors become ``sample`` sites (``kernel.lengthscale``,
        ``noise``, ...), and ``y`` is observed at site ``"y"`` under N(m(X), K + σ² I). Sample it with NUTS to
        integrate the hyperparameters out. The jitter is not grown here: a covariance that is not positive
        definite raises ``LinAlgError``, which NUTS treats as a rejected (divergent) point."""
        with self.sample_hyperparameters():
            return sample("y", MultivariateNormal(self._mean(self.X), scale_tril=self._factor(grow=False)),
                          obs=self.y)
