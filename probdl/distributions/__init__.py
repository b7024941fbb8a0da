"""Distributions, constraints, transforms and KL divergences (work in progress: constraints so far)."""
from . import constraints
