"""Distributions, constraints, transforms and KL divergences, with NumPyro's and PyTorch's names and
shape rules (``sample_shape + batch_shape + event_shape``). See docs/distributions.md."""
from . import constraints, transforms
from .combinators import ExpandedDistribution, Independent, MaskedDistribution
from .counts import (
                     BetaBinomial,
                     Binomial,
                     DirichletMultinomial,
                     GammaPoisson,
                     Multinomial,
                     NegativeBinomial,
                     ZeroInflatedDistribution,
                     ZeroInflatedNegativeBinomial,
                     ZeroInflatedPoisson,
)
from .delta import Delta, ImproperUniform, Unit
from .discrete import Bernoulli, Categorical, DiscreteUniform, Geometric, OneHotCategorical, Poisson
from .distribution import Distribution, enable_validation, is_validation_enabled
from .gamma import Beta, Chi2, Dirichlet, Gamma, InverseGamma, StudentT
from .kl import kl_divergence, register_kl
from .location_scale import (
                     AsymmetricLaplace,
                     Cauchy,
                     Exponential,
                     Gumbel,
                     HalfCauchy,
                     HalfNormal,
                     Kumaraswamy,
                     Laplace,
                     Logistic,
                     LogNormal,
                     Pareto,
                     SoftLaplace,
                     Uniform,
                     Weibull,
)
from .matrix import LKJ, LKJCholesky, Wishart, WishartCholesky
from .mixtures import MixtureGeneral, MixtureSameFamily
from .multivariate_normal import GaussianRandomWalk, LowRankMultivariateNormal, MultivariateNormal, MultivariateStudentT
from .normal import Normal
from .relaxed import RelaxedBernoulli, RelaxedOneHotCategorical
from .transformed import FoldedDistribution, TransformedDistribution
from .transforms import biject_to, transform_to
from .truncated import TruncatedNormal
from .von_mises import VonMises
