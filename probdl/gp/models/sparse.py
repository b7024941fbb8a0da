"""Sparse GP regression with inducing points: Titsias' variational bound (VFE), DTC and FITC.

With m inducing inputs :math:`X_u`, :math:`Q_{ff} = K_{fu} K_{uu}^{-1} K_{uf}` replaces :math:`K_{ff}`:

- DTC (deterministic training conditional): :math:`y \\sim \\mathcal N(m, Q_{ff} + \\sigma^2 I)`;
- FITC (fully independent training conditional): :math:`y \\sim \\mathcal N(m, Q_{ff} + \\operatorname{diag}(K_{ff}
  - Q_{ff}) + \\sigma^2 I)`;
- VFE (Titsias 2009): the DTC likelihood minus :math:`\\operatorname{tr}(K_{ff} - Q_{ff}) / (2\\sigma^2)`, a lower
  bound on the exact log marginal likelihood, equal to it when the inducing inputs are the data.

Every one has covariance :math:`Q_{ff} + D` with diagonal :math:`D`; with :math:`L_{uu} L_{uu}^\\top = K_{uu}`,
:math:`W = L_{uu}^{-1} K_{uf} D^{-1/2}` (m x n), :math:`L_B L_B^\\top = I + W W^\\top` and
:math:`c = L_B^{-1} W D^{-1/2} r`, Woodbury and the matrix determinant lemma give
:math:`\\log \\mathcal N(r; 0, Q_{ff} + D) = -\\tfrac12 (r^\\top D^{-1} r - c^\\top c) - \\sum \\log L_{B,ii}
- \\tfrac12 \\sum \\log D_{ii} - \\tfrac n2 \\log 2\\pi`, in O(n m²) time and O(n m) memory. The predictive
mean at :math:`X_*` is :math:`(L_B^{-1} L_{uu}^{-1} K_{u*})^\\top c` and the variance
:math:`k_{**} - \\lVert L_{uu}^{-1} K_{u*} \\rVert^2 + \\lVert L_B^{-1} L_{uu}^{-1} K_{u*} \\rVert^2` (columnwise).

References: Titsias, "Variational learning of inducing variables in sparse Gaussian processes", AISTATS 2009;
Quiñonero-Candela & Rasmussen, "A unifying view of sparse approximate Gaussian process regression", JMLR 6
(2005); Snelson & Ghahramani, "Sparse Gaussian processes using pseudo-inputs", NIPS 2006 (FITC).
"""
from __future__ import annotations

import math
from typing import Any

from ...nn.module import Parameter
from ...optim.optimizer import Optimizer
from ...tensor import Tensor, eye, ones_like
from ...tensor import ops as T
from ..fit import fit_module
from ..kernels import Kernel, as_inputs
from ..linalg import jittered_cholesky
from .base import GPModel

__all__ = ["SparseGPRegression"]

_APPROX = ("VFE", "DTC", "FITC")


class SparseGPRegression(GPModel):
    """Sparse GP regression with inducing inputs ``Xu`` (m, d), learned with the hyperparameters unless
    ``learn_inducing=False``; ``approx`` one of "VFE" (Titsias' bound, the default), "DTC", "FITC".
    ``jitter`` (absolute, default 1e-6) is added to the diagonal of K_uu, and grown when that is not enough."""

    def __init__(self, X: Any, y: Any, kernel: Kernel, Xu: Any, noise: Any = 1.0, mean_function: Any = None,
                 approx: str = "VFE", jitter: float = 1e-6, learn_inducing: bool = True) -> None:
        super().__init__(X, y, kernel, mean_function, jitter)
        if approx not in _APPROX:
            raise ValueError(f"SparseGPRegression: approx must be one of {_APPROX}, got {approx!r}")
        self.approx = approx
        Xu = as_inputs(Xu, "SparseGPRegression: Xu")
        if Xu.shape[1] != self.X.shape[1]:
            raise ValueError(f"SparseGPRegression: Xu has {Xu.shape[1]} columns, X has {self.X.shape[1]}")
        self.Xu = Parameter(Xu.data.copy(), requires_grad=learn_inducing)
        self.register_hyperparameter("noise", noise)

    def _terms(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """L_uu, L_B, W-side quantities: (Luu, LB, c, d, V = L_uu⁻¹ K_uf, r)."""
        m = self.Xu.shape[0]
        Luu = jittered_cholesky(self.kernel(self.Xu), self.jitter, "SparseGPRegression: K_uu")
        V = T.solve_triangular(Luu, self.kernel(self.Xu, self.X), lower=True)  # m x n
        noise = self.noise
        if self.approx == "FITC":
            d = T.clip(self.kernel.Kdiag(self.X) - (V * V).sum(0), 0.0, None) + noise
        else:
            d = noise * ones_like(self.y)
        inv_sqrt_d = T.reciprocal(T.sqrt(d))
        W = V * inv_sqrt_d
        LB = jittered_cholesky(W @ W.mT + eye(m, dtype=W.dtype), 0.0, "SparseGPRegression: I + W Wᵀ")
        r = self.y - self._mean(self.X)
        c = T.solve_triangular(LB, W @ (r * inv_sqrt_d), lower=True)
        return Luu, LB, c, d, V, r

    def log_marginal_likelihood(self) -> Tensor:
        """The DTC or FITC log marginal likelihood, or Titsias' lower bound (VFE) on the exact one."""
        Luu, LB, c, d, V, r = self._terms()
        n = r.shape[0]
        lml = (-0.5 * ((r * r / d).sum() - (c * c).sum()) - T.log(T.diagonal(LB, 0, -2, -1)).sum()
               - 0.5 * T.log(d).sum() - 0.5 * n * math.log(2 * math.pi))
        if self.approx == "VFE":
            lml = lml - 0.5 * (self.kernel.Kdiag(self.X).sum() - (V * V).sum()) / self.noise
        return lml

    def fit(self, method: str | Optimizer = "lbfgs", num_steps: int = 1000) -> list[float]:
        """Maximize :meth:`log_marginal_likelihood` over hyperparameters and (unless fixed) the inducing inputs."""
        return fit_module(self, lambda: -self.log_marginal_likelihood(), method, num_steps,
                          who="SparseGPRegression.fit")

    def predict(self, Xnew: Any, full_cov: bool = False, noiseless: bool = True) -> tuple[Tensor, Tensor]:
        """Mean and variance (or covariance with ``full_cov``) of the approximate posterior of f at ``Xnew``."""
        Xnew = as_inputs(Xnew, "SparseGPRegression.predict: Xnew")
        Luu, LB, c, _, _, _ = self._terms()
        Ws = T.solve_triangular(Luu, self.kernel(self.Xu, Xnew), lower=True)
        tmp = T.solve_triangular(LB, Ws, lower=True)
        mean = self._mean(Xnew) + tmp.mT @ c
        if full_cov:
            cov = self.kernel(Xnew) - Ws.mT @ Ws + tmp.mT @ tmp
            if not noiseless:
                cov = cov + self.noise * eye(Xnew.shape[0], dtype=cov.dtype)
            return mean, cov
        var = T.clip(self.kernel.Kdiag(Xnew) - (Ws * Ws).sum(0) + (tmp * tmp).sum(0), 0.0, None)
        return mean, var if noiseless else var + self.noise
