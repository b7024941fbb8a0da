"""Distributions, constraints, transforms and KL divergences (work in progress: constraints, transforms,
biject_to, the Distribution base and Normal so far)."""
from . import constraints, transforms
from .combinators import ExpandedDistribution, Independent, MaskedDistribution
from .discrete import Bernoulli, Categorical, Geometric, Poisson
from .distribution import Distribution, enable_validation, is_validation_enabled
from .kl import kl_divergence, register_kl
from .location_scale import Cauchy, Exponential, Gumbel, HalfCauchy, HalfNormal, Laplace, Logistic, LogNormal, Uniform
from .normal import Normal
from .transforms import biject_to, transform_to
