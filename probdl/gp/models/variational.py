"""Variational GPs for any likelihood: SVGP with whitened inducing variables, and its full-rank cousin.

The inducing values are whitened, :math:`u = L_{uu} v` with :math:`L_{uu} L_{uu}^\\top = K_{uu}`, so the prior
is :math:`p(v) = \\mathcal N(0, I)` and the posterior approximation :math:`q(v) = \\mathcal N(\\mu, S)` with
:math:`S = L_S L_S^\\top` (``variational="full"``, a lower-triangular :math:`L_S`) or diagonal
(``variational="diag"``, mean field). With :math:`A = L_{uu}^{-1} K_{uf}`, the marginals of f are

.. math:: q(f_i) = \\mathcal N\\big(m(x_i) + a_i^\\top \\mu,\\; k_{ii} - a_i^\\top a_i + a_i^\\top S a_i\\big),

and the evidence lower bound, on a mini-batch B of the n points,

.. math:: \\mathcal L = \\frac{n}{|B|} \\sum_{i \\in B} \\mathbb E_{q(f_i)}[\\log p(y_i \\mid f_i)]
          - \\mathrm{KL}(q(v) \\,\\|\\, \\mathcal N(0, I)),
          \\quad \\mathrm{KL} = \\tfrac12 (\\operatorname{tr} S + \\mu^\\top\\mu - m - \\log\\det S),

is unbiased for the full-data bound, so it trains by stochastic gradients on mini-batches. The expectations
come from the likelihood (closed form or Gauss-Hermite).

``model()`` and ``guide()`` express the same bound for probdl's SVI (both register the module's parameters
under ``"gp."`` with ``module``): the guide draws v from q, the model
scores it under N(0, I) and adds :math:`\\mathbb E_{p(f_i \\mid v)}[\\log p(y_i \\mid f_i)]` (with
:math:`p(f_i \\mid v) = \\mathcal N(m(x_i) + a_i^\\top v, k_{ii} - a_i^\\top a_i)`) for the points of a
subsampling ``plate``, which rescales them by n/|B|.

References: Hensman, Fusi & Lawrence, "Gaussian processes for big data", UAI 2013; Hensman, Matthews &
Ghahramani, "Scalable variational Gaussian process classification", AISTATS 2015.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...backend import as_generator
from ...distributions import MultivariateNormal, Normal, constraints
from ...nn.module import Parameter
from ...optim import Adam
from ...optim.optimizer import Optimizer
from ...primitives import factor, module, plate, sample
from ...tensor import Tensor, eye, zeros
from ...tensor import ops as T
from ..fit import fit_module
from ..kernels import Kernel, as_inputs
from ..likelihoods import Likelihood
from ..linalg import jittered_cholesky
from .base import GPModel, as_targets

__all__ = ["VariationalSparseGP", "VariationalGP"]


class VariationalSparseGP(GPModel):
    """SVGP: a GP with ``likelihood`` (any :class:`~probdl.gp.likelihoods.Likelihood`), m inducing inputs ``Xu``
    (learned unless ``learn_inducing=False``), whitened q(v) with ``variational="full"`` or ``"diag"``.

    Example::

        gp = VariationalSparseGP(X, y, kernels.RBF(), likelihoods.Bernoulli(), Xu=X[:30])
        gp.fit(num_steps=2000, batch_size=256)
        mean, var = gp.predict(X_test)          # of f
        p, _ = gp.predict_y(X_test)             # of y
    """

    def __init__(self, X: Any, y: Any, kernel: Kernel, likelihood: Likelihood, Xu: Any, mean_function: Any = None,
                 variational: str = "full", jitter: float = 1e-6, learn_inducing: bool = True) -> None:
        super().__init__(X, y, kernel, mean_function, jitter)
        who = type(self).__name__
        if not isinstance(likelihood, Likelihood):
            raise TypeError(f"{who}: likelihood must be a probdl.gp.likelihoods.Likelihood, got "
                            f"{type(likelihood).__name__}")
        if variational not in ("full", "diag"):
            raise ValueError(f"{who}: variational must be 'full' or 'diag', got {variational!r}")
        self.likelihood = likelihood
        likelihood._observations(self.y)  # the observations must suit the likelihood (0/1, counts, ...)
        self.variational = variational
        Xu = as_inputs(Xu, f"{who}: Xu")
        if Xu.shape[1] != self.X.shape[1]:
            raise ValueError(f"{who}: Xu has {Xu.shape[1]} columns, X has {self.X.shape[1]}")
        m = Xu.shape[0]
        self.Xu = Parameter(Xu.data.copy(), requires_grad=learn_inducing)
        self.q_mu = Parameter(np.zeros(m))
        if variational == "full":
            self.register_hyperparameter("q_scale_tril", np.eye(m), constraints.lower_cholesky)
        else:
            self.register_hyperparameter("q_scale", np.ones(m))

    def set_data(self, X: Any, y: Any) -> None:
        super().set_data(X, y)
        if "likelihood" in self._modules:
            self.likelihood._observations(self.y)  # check the observations against the likelihood now

    def _projection(self, X: Tensor) -> Tensor:
        """A = L_uu⁻¹ K_uf for inputs X (m x b)."""
        Luu = jittered_cholesky(self.kernel(self.Xu), self.jitter, f"{type(self).__name__}: K_uu")
        return T.solve_triangular(Luu, self.kernel(self.Xu, X), lower=True)

    def _q_scaled(self, A: Tensor) -> Tensor:
        """L_Sᵀ A, so that Aᵀ S A = (L_Sᵀ A)ᵀ (L_Sᵀ A) (S = L_S L_Sᵀ, diagonal for mean field)."""
        return self.q_scale_tril.mT @ A if self.variational == "full" else self.q_scale.unsqueeze(-1) * A

    def _marginals(self, X: Tensor) -> tuple[Tensor, Tensor]:
        A = self._projection(X)
        mean = self._mean(X) + A.mT @ self.q_mu
        SA = self._q_scaled(A)
        var = T.clip(self.kernel.Kdiag(X) - (A * A).sum(0) + (SA * SA).sum(0), 1e-300, None)
        return mean, var

    def kl_divergence(self) -> Tensor:
        """KL(q(v) ‖ N(0, I))."""
        m = self.q_mu.shape[0]
        if self.variational == "full":
            L = self.q_scale_tril
            trace, logdet = (L * L).sum(), 2.0 * T.log(T.abs(T.diagonal(L, 0, -2, -1))).sum()
        else:
            s = self.q_scale
            trace, logdet = (s * s).sum(), 2.0 * T.log(s).sum()
        return 0.5 * (trace + (self.q_mu * self.q_mu).sum() - m - logdet)

    def elbo(self, X: Any = None, y: Any = None) -> Tensor:
        """The evidence lower bound on the batch (X, y) (default: all the data), rescaled to the full data."""
        if X is None:
            X, y = self.X, self.y
        else:
            X = as_inputs(X, f"{type(self).__name__}.elbo: X")
            y = as_targets(y, X.shape[0], f"{type(self).__name__}.elbo")
        mean, var = self._marginals(X)
        expected = self.likelihood.variational_expectations(mean, var, y).sum()
        return (self.X.shape[0] / X.shape[0]) * expected - self.kl_divergence()

    def fit(self, num_steps: int = 1000, optimizer: str | Optimizer | None = None, batch_size: int | None = None,
            seed: Any = None) -> list[float]:
        """Maximize the ELBO over the variational parameters, the hyperparameters and (unless fixed) the
        inducing inputs. ``optimizer``: a probdl optimizer (default Adam with lr 0.01) for ``num_steps`` steps,
        on mini-batches of ``batch_size`` points drawn without replacement (all points when None); or
        ``"lbfgs"`` for full-batch L-BFGS-B. Returns the losses (negative ELBOs) seen."""
        who = f"{type(self).__name__}.fit"
        if optimizer == "lbfgs":
            if batch_size is not None:
                raise ValueError(f"{who}: L-BFGS-B needs the full batch; got batch_size={batch_size}")
            return fit_module(self, lambda: -self.elbo(), "lbfgs", num_steps, who=who)
        if optimizer is None:
            optimizer = Adam([p for p in self.parameters() if p.requires_grad], lr=0.01)
        n = self.X.shape[0]
        if batch_size is None or batch_size >= n:
            return fit_module(self, lambda: -self.elbo(), optimizer, num_steps, who=who)
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"{who}: batch_size must be a positive integer, got {batch_size!r}")
        rng = as_generator(seed)
        order: list[np.ndarray] = []

        def batch_loss() -> Tensor:
            if not order:
                order.extend(np.array_split(rng.permutation(n), max(1, n // int(batch_size))))
            idx = order.pop()
            return -self.elbo(self.X[idx], self.y[idx])

        return fit_module(self, batch_loss, optimizer, num_steps, who=who)

    def predict(self, Xnew: Any, full_cov: bool = False) -> tuple[Tensor, Tensor]:
        """Mean and variance (or covariance) of q(f) at ``Xnew``."""
        Xnew = as_inputs(Xnew, f"{type(self).__name__}.predict: Xnew")
        if not full_cov:
            return self._marginals(Xnew)
        A = self._projection(Xnew)
        SA = self._q_scaled(A)
        return self._mean(Xnew) + A.mT @ self.q_mu, self.kernel(Xnew) - A.mT @ A + SA.mT @ SA

    def predict_y(self, Xnew: Any) -> tuple[Tensor, Tensor]:
        """Mean and variance of a new observation y at ``Xnew`` (for Bernoulli: the class-1 probability)."""
        mean, var = self.predict(Xnew)
        return self.likelihood.predictive_mean_and_variance(mean, var)

    # ------------------------------------------------------------------ as a probdl model and guide
    def model(self, subsample_size: int | None = None) -> None:
        """The GP as a probdl model for SVI: hyperparameters with priors are ``sample`` sites, the whitened
        inducing values are site ``"u"`` under N(0, I), and the data enter through a subsampling plate
        ``"data"`` as the factor ``"y"`` (see the module docstring). Pair it with :meth:`guide`."""
        module("gp", self)  # the hyperparameters, inducing inputs and q become SVI's parameters
        with self.sample_hyperparameters():
            m = self.Xu.shape[0]
            v = sample("u", MultivariateNormal(zeros(m, dtype=self.Xu.dtype), scale_tril=eye(m, dtype=self.Xu.dtype)))
            with plate("data", self.X.shape[0], subsample_size=subsample_size) as idx:
                X, y = self.X[idx], self.y[idx]
                A = self._projection(X)
                mean = self._mean(X) + A.mT @ v
                var = T.clip(self.kernel.Kdiag(X) - (A * A).sum(0), 1e-300, None)
                factor("y", self.likelihood.variational_expectations(mean, var, y))

    def guide(self, subsample_size: int | None = None) -> None:
        """q(v) at site ``"u"``: N(q_mu, q_scale_tril q_scale_trilᵀ), or a diagonal Normal."""
        module("gp", self)
        if self.variational == "full":
            sample("u", MultivariateNormal(self.q_mu, scale_tril=self.q_scale_tril))
        else:
            sample("u", Normal(self.q_mu, self.q_scale).to_event(1))


class VariationalGP(VariationalSparseGP):
    """A variational GP with one inducing input per data point, fixed at the data (no sparsity: O(n³) per step),
    for non-Gaussian likelihoods on small data sets."""

    def __init__(self, X: Any, y: Any, kernel: Kernel, likelihood: Likelihood, mean_function: Any = None,
                 variational: str = "full", jitter: float = 1e-6) -> None:
        super().__init__(X, y, kernel, likelihood, Xu=X, mean_function=mean_function, variational=variational,
                         jitter=jitter, learn_inducing=False)
