"""Distributions, constraints, transforms and KL divergences (work in progress: constraints and the
elementwise transforms so far)."""
from . import constraints, transforms
from .transforms import biject_to, transform_to
