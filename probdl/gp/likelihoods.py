r"""Likelihoods p(y | f) that link a latent GP value f to an observation y, one data point at a time.

A likelihood answers four questions about a point with latent value f and observation y:

* ``log_prob(f, y)``: :math:`\log p(y \mid f)`, elementwise over the broadcast shape of f and y;
* ``variational_expectations(f_mean, f_var, y)``: :math:`\mathbb{E}_{q(f)}[\log p(y \mid f)]` for
  :math:`q(f) = \mathcal{N}(m, v)`, the data term of the variational GP bound
  :math:`\sum_i \mathbb{E}_{q(f_i)}[\log p(y_i \mid f_i)] - \mathrm{KL}(q(u) \,\|\, p(u))`
  (Hensman, Matthews & Ghahramani 2015);
* ``predictive_mean_and_variance(f_mean, f_var)``: the mean and variance of y when f ~ N(m, v), by the laws of
  total expectation and variance, :math:`\mathbb{E}[y] = \mathbb{E}[\mu(f)]`,
  :math:`\mathrm{Var}[y] = \mathbb{E}[\sigma^2(f)] + \mathrm{Var}[\mu(f)]`, with μ(f), σ²(f) the conditional
  moments (``conditional_mean``, ``conditional_variance``);
* ``distribution(f)``: p(y | f) as a probdl distribution, for ``sample("y", lik.distribution(f), obs=y)``
  inside a model (exact inference by MCMC, or SVI).

Closed forms where they exist (m, v the mean and variance of f):

======================  ============================================  =========================================
likelihood              E_q[log p(y | f)]                             predictive mean, variance
======================  ============================================  =========================================
Gaussian(σ²)            -½ log(2πσ²) - ((y - m)² + v) / (2σ²)         m,  v + σ²
Bernoulli, probit link  Gauss-Hermite                                 p = Φ(m / √(1 + v)),  p(1 - p)
Bernoulli, logit link   Gauss-Hermite                                 p = E[sigmoid(f)] (Gauss-Hermite), p(1 - p)
Poisson, rate = exp(f)  y m - exp(m + v/2) - log y!                   μ = exp(m + v/2),  μ + (eᵛ - 1) e^(2m + v)
StudentT(ν, s)          Gauss-Hermite                                 m,  v + s² ν/(ν - 2) for ν > 2 (inf else)
======================  ============================================  =========================================

The probit predictive comes from :math:`\int \Phi(f) \mathcal{N}(f; m, v) df = \Phi(m / \sqrt{1 + v})`
(Rasmussen & Williams 2006, §3.9). The entries marked Gauss-Hermite use one-dimensional quadrature,
:func:`gauss_hermite_expectation`: with nodes tₖ and weights wₖ of the rule for ∫ e^(-t²) g(t) dt,
:math:`\mathbb{E}_{x \sim \mathcal{N}(m, v)}[g(x)] \approx \sum_k \frac{w_k}{\sqrt\pi} g(m + \sqrt{2v}\, t_k)`,
exact for polynomials of degree below 2K with K nodes, vectorized over the data and differentiable in m, v and
the likelihood's hyperparameters.

Hyperparameters (``Gaussian.variance``, ``StudentT.df`` and ``StudentT.scale``) are positive and live in
unconstrained space, as for kernels (see :mod:`probdl.gp.parameterized`); they may carry priors.

A new likelihood implements ``_log_prob(f, y)``, ``conditional_mean(f)``, ``conditional_variance(f)`` and
``distribution(f)``; ``variational_expectations`` and ``predictive_mean_and_variance`` then default to
quadrature, and ``_check_y`` may be extended to validate the observations.

References: Rasmussen & Williams, *Gaussian Processes for Machine Learning* (2006), ch. 3; Hensman, Matthews &
Ghahramani, *Scalable Variational Gaussian Process Classification*, AISTATS 2015.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from .. import distributions as dist
from ..backend import get_default_dtype
from ..tensor import Tensor
from ..tensor import ops as T
from ..tensor.ops.base import to_tensor
from ..tensor.tensor import as_tensor_like
from .parameterized import Parameterized

__all__ = ["Likelihood", "Gaussian", "Bernoulli", "Poisson", "StudentT", "gauss_hermite_expectation"]

_LOG_2PI = math.log(2 * math.pi)
_MAX_NODES = 360  # numpy's hermgauss overflows its weights from 375 nodes on


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


@cache
def _hermite_rule(num_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes √2·tₖ and weights wₖ/√π: Σₖ wₖ/√π g(m + √v · √2 tₖ) ≈ E[g(x)], x ~ N(m, v)."""
    if num_points > _MAX_NODES:
        raise ValueError(f"gauss_hermite_expectation: num_points={num_points} is too many; numpy's hermgauss "
                         f"gives finite weights up to about 370 nodes, and {_MAX_NODES} is the most allowed here")
    t, w = np.polynomial.hermite.hermgauss(num_points)
    return t * math.sqrt(2.0), w / math.sqrt(math.pi)


def _float_tensor(x: Any) -> Tensor:
    x = to_tensor(x)
    return x if x.data.dtype.kind == "f" else x.astype(get_default_dtype())


def _broadcast(x: Tensor, *others: Tensor) -> Tensor:
    """``x`` broadcast to its shape joined with the others' (a moment that does not depend on all inputs)."""
    return T.broadcast_to(x, np.broadcast_shapes(x.shape, *(o.shape for o in others)))


def gauss_hermite_expectation(fn: Callable[[Tensor], Tensor], mean: Any, var: Any, num_points: int = 20) -> Tensor:
    """E_{x ~ N(mean, var)}[fn(x)], elementwise over the broadcast shape of ``mean`` and ``var``, by Gauss-Hermite
    quadrature with ``num_points`` nodes.

    ``fn`` receives a Tensor of shape ``broadcast(mean, var).shape + (num_points,)`` (the nodes along the last
    dim) and must return one of that shape (broadcasting against it is fine: the last dim is summed over). The
    result is differentiable in ``mean``, ``var`` and whatever ``fn`` closes over (``var`` > 0 for the gradient
    in ``var``, which has a √var in it).

    Accuracy: the rule is exact for polynomials of degree below 2K (K = ``num_points``). For an ``fn`` analytic in
    the strip |Im x| < c around the real line, the error falls like exp(-2 (c / √(2 var)) √(2K)): fast while
    the Gaussian is narrow next to c, slowly when it is wide. For the likelihoods here c is π (log-sigmoid),
    about 2.8 (log Φ) and scale·√df (Student-t), so K = 20 gives errors near 1e-4 at var = 10 for the
    Bernoulli links or var ≈ scale²·df for Student-t, and far smaller below; raise ``num_points`` for wider ones.
    """
    num_points = _positive_int("gauss_hermite_expectation: num_points", num_points)
    mean, var = _float_tensor(mean), _float_tensor(var)
    nodes, weights = _hermite_rule(num_points)
    nodes = as_tensor_like(nodes.astype(mean.dtype), mean)
    weights = as_tensor_like(weights.astype(mean.dtype), mean)
    x = mean.unsqueeze(-1) + T.sqrt(var).unsqueeze(-1) * nodes
    return (fn(x) * weights).sum(-1)


class Likelihood(Parameterized):
    """p(y | f) for one latent value f per observation y; see the module docstring."""

    def __init__(self, num_points: int = 20) -> None:
        super().__init__()
        self.num_points = _positive_int(f"{type(self).__name__}: num_points", num_points)

    # --- what a concrete likelihood provides -------------------------------------------------------------------
    def _log_prob(self, f: Tensor, y: Tensor) -> Tensor:
        """log p(y | f) for float Tensors f and y already checked."""
        raise NotImplementedError

    def conditional_mean(self, f: Any) -> Tensor:
        """E[y | f]."""
        raise NotImplementedError(f"{type(self).__name__} does not define conditional_mean")

    def conditional_variance(self, f: Any) -> Tensor:
        """Var[y | f]."""
        raise NotImplementedError(f"{type(self).__name__} does not define conditional_variance")

    def distribution(self, f: Any) -> dist.Distribution:
        """p(y | f) as a distribution whose batch shape is f's."""
        raise NotImplementedError(f"{type(self).__name__} does not define distribution")

    def _check_y(self, y: Tensor) -> None:
        """Raise ValueError for observations outside the likelihood's support (here: any non-finite value)."""
        bad = ~np.isfinite(y.numpy())
        if bad.any():
            raise ValueError(f"{type(self).__name__} likelihood: y must be finite, got {int(bad.sum())} "
                             f"non-finite value(s) of {bad.size}")

    # --- the public interface ------------------------------------------------------------------------------------
    def _observations(self, y: Any) -> Tensor:
        y = _float_tensor(y)
        self._check_y(y)
        return y

    def _moments(self, f_mean: Any, f_var: Any) -> tuple[Tensor, Tensor]:
        m, v = _float_tensor(f_mean), _float_tensor(f_var)
        # .data, not .numpy(): a check of the arguments, not a value the computation branches on (a compiled
        # SVI step would otherwise refuse every variational GP)
        if (v.data < 0).any():
            raise ValueError(f"{type(self).__name__} likelihood: f_var must be non-negative, got minimum "
                             f"{float(v.data.min())}")
        return m, v

    def log_prob(self, f: Any, y: Any) -> Tensor:
        """log p(yᵢ | fᵢ), elementwise over the broadcast shape of f and y."""
        return self._log_prob(_float_tensor(f), self._observations(y))

    def variational_expectations(self, f_mean: Any, f_var: Any, y: Any) -> Tensor:
        """E_{fᵢ ~ N(f_meanᵢ, f_varᵢ)}[log p(yᵢ | fᵢ)], elementwise over the broadcast shape of the three."""
        m, v = self._moments(f_mean, f_var)
        return self._variational_expectations(m, v, self._observations(y))

    def predictive_mean_and_variance(self, f_mean: Any, f_var: Any) -> tuple[Tensor, Tensor]:
        """The mean and variance of y when f ~ N(f_mean, f_var), elementwise."""
        return self._predictive(*self._moments(f_mean, f_var))

    # --- defaults by quadrature, overridden by closed forms ----------------------------------------------------
    def _variational_expectations(self, m: Tensor, v: Tensor, y: Tensor) -> Tensor:
        y = y.unsqueeze(-1)  # against the quadrature dim
        return gauss_hermite_expectation(lambda f: self._log_prob(f, y), m, v, self.num_points)

    def _predictive(self, m: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        mean = gauss_hermite_expectation(self.conditional_mean, m, v, self.num_points)
        second = gauss_hermite_expectation(lambda f: self.conditional_variance(f) + self.conditional_mean(f) ** 2,
                                           m, v, self.num_points)
        return mean, second - mean ** 2


class Gaussian(Likelihood):
    """y | f ~ Normal(f, variance); hyperparameter ``variance`` (positive). Every answer is in closed form."""

    def __init__(self, variance: Any = 1.0) -> None:
        super().__init__()
        self.register_hyperparameter("variance", variance)

    def _log_prob(self, f: Tensor, y: Tensor) -> Tensor:
        s2 = self.variance
        return -0.5 * (_LOG_2PI + T.log(s2)) - (y - f) ** 2 / (2 * s2)

    def _variational_expectations(self, m: Tensor, v: Tensor, y: Tensor) -> Tensor:
        s2 = self.variance
        return -0.5 * (_LOG_2PI + T.log(s2)) - ((y - m) ** 2 + v) / (2 * s2)

    def _predictive(self, m: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        return _broadcast(m, v), _broadcast(v + self.variance, m)

    def conditional_mean(self, f: Any) -> Tensor:
        return _float_tensor(f)

    def conditional_variance(self, f: Any) -> Tensor:
        return _broadcast(self.variance, _float_tensor(f))

    def distribution(self, f: Any) -> dist.Distribution:
        return dist.Normal(_float_tensor(f), T.sqrt(self.variance))


class Bernoulli(Likelihood):
    """y | f ~ Bernoulli(p), y in {0, 1}, p = sigmoid(f) (``link="logit"``) or Φ(f) (``link="probit"``).

    log p(y | f) = log link((2y - 1) f), which is exact and finite for any f. Expectations are by
    Gauss-Hermite with ``num_points`` nodes; the probit predictive probability is in closed form.
    """

    def __init__(self, link: str = "logit", num_points: int = 20) -> None:
        super().__init__(num_points)
        if link not in ("logit", "probit"):
            raise ValueError(f"Bernoulli likelihood: link must be 'logit' or 'probit', got {link!r}")
        self.link = link

    def _check_y(self, y: Tensor) -> None:
        super()._check_y(y)
        a = y.numpy()
        bad = (a != 0) & (a != 1)
        if bad.any():
            raise ValueError(f"Bernoulli likelihood: y must be 0 or 1, got {a[bad].flat[0].item()!r} "
                             f"({int(bad.sum())} value(s) outside {{0, 1}})")

    def _log_cdf(self, x: Tensor) -> Tensor:
        return T.log_sigmoid(x) if self.link == "logit" else T.log_ndtr(x)

    def _log_prob(self, f: Tensor, y: Tensor) -> Tensor:
        return self._log_cdf((2 * y - 1) * f)

    def conditional_mean(self, f: Any) -> Tensor:
        f = _float_tensor(f)
        return T.sigmoid(f) if self.link == "logit" else T.ndtr(f)

    def conditional_variance(self, f: Any) -> Tensor:
        p = self.conditional_mean(f)
        return p * (1 - p)

    def _predictive(self, m: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if self.link == "probit":
            p = T.ndtr(m / T.sqrt(1 + v))
        else:
            p = gauss_hermite_expectation(T.sigmoid, m, v, self.num_points)
        return p, p * (1 - p)

    def distribution(self, f: Any) -> dist.Distribution:
        f = _float_tensor(f)
        # probit: logits log Φ(f) - log Φ(-f), finite where Φ(f) rounds to 0 or 1
        return dist.Bernoulli(logits=f if self.link == "logit" else T.log_ndtr(f) - T.log_ndtr(-f))


class Poisson(Likelihood):
    """y | f ~ Poisson(exp(f)), y a non-negative integer. Every answer is in closed form (lognormal moments);
    ``num_points`` serves subclasses and quadrature checks."""

    def _check_y(self, y: Tensor) -> None:
        super()._check_y(y)
        a = y.numpy()
        bad = (a < 0) | (a != np.floor(a))
        if bad.any():
            raise ValueError(f"Poisson likelihood: y must be a non-negative integer, got {a[bad].flat[0].item()!r} "
                             f"({int(bad.sum())} such value(s))")

    def _log_prob(self, f: Tensor, y: Tensor) -> Tensor:
        return y * f - T.exp(f) - T.lgamma(y + 1)

    def _variational_expectations(self, m: Tensor, v: Tensor, y: Tensor) -> Tensor:
        return y * m - T.exp(m + v / 2) - T.lgamma(y + 1)

    def _predictive(self, m: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        mean = T.exp(m + v / 2)
        return mean, mean + T.expm1(v) * mean ** 2  # (eᵛ - 1) e^(2m + v) = (eᵛ - 1) mean²

    def conditional_mean(self, f: Any) -> Tensor:
        return T.exp(_float_tensor(f))

    conditional_variance = conditional_mean

    def distribution(self, f: Any) -> dist.Distribution:
        return dist.Poisson(T.exp(_float_tensor(f)))


class StudentT(Likelihood):
    """y | f ~ StudentT(df, loc=f, scale); hyperparameters ``df`` and ``scale`` (positive). Robust regression:
    the heavy tails let outliers pull the fit less than a Gaussian likelihood would. The variational
    expectations are by Gauss-Hermite with ``num_points`` nodes; the predictive moments are in closed form."""

    def __init__(self, df: Any = 4.0, scale: Any = 1.0, num_points: int = 20) -> None:
        super().__init__(num_points)
        self.register_hyperparameter("df", df)
        self.register_hyperparameter("scale", scale)

    def _log_prob(self, f: Tensor, y: Tensor) -> Tensor:
        df, scale = self.df, self.scale
        z = (y - f) / scale
        return (T.lgamma((df + 1) / 2) - T.lgamma(df / 2) - 0.5 * T.log(df * math.pi) - T.log(scale)
                - (df + 1) / 2 * T.log1p(z ** 2 / df))

    def conditional_mean(self, f: Any) -> Tensor:
        return _float_tensor(f)

    def conditional_variance(self, f: Any) -> Tensor:
        return _broadcast(self._noise_variance(), _float_tensor(f))

    def _noise_variance(self) -> Tensor:
        """scale² df / (df - 2) for df > 2, inf otherwise (the variance of the noise)."""
        df = self.df
        above = df.data > 2
        return T.where(above, self.scale ** 2 * df / T.where(above, df - 2, 1.0), math.inf)

    def _predictive(self, m: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        return _broadcast(m, v), _broadcast(v + self._noise_variance(), m)

    def distribution(self, f: Any) -> dist.Distribution:
        return dist.StudentT(self.df, _float_tensor(f), self.scale)
