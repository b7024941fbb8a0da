"""``Parameterized``: a Module whose hyperparameters live in a constrained space, with optional priors.

A hyperparameter ``lengthscale`` with constraint ``positive`` is stored as the unconstrained Parameter
``lengthscale_unconstrained`` (so every optimizer and ``state_dict`` see a plain real tensor) and read as
``module.lengthscale = T(lengthscale_unconstrained)``, where ``T`` is softplus for positive values (as in
GPyTorch: gentler than exp far from zero) and ``biject_to(constraint)`` otherwise. Assigning
``module.lengthscale = 0.5`` sets the unconstrained value to ``T⁻¹(0.5)`` after checking the constraint.

A hyperparameter with a prior (``set_prior("lengthscale", dist.LogNormal(0, 1))``) becomes a random variable
inside a probdl model: under :meth:`Parameterized.sample_hyperparameters` every such hyperparameter of the
module and its sub-modules is drawn at a ``sample`` site named by its path (``kernel.lengthscale``), and
reading the attribute returns the draw, so NUTS or SVI infer it like any latent variable.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..distributions import constraints
from ..distributions.distribution import Distribution
from ..distributions.transforms import SoftplusTransform, Transform, biject_to
from ..nn.module import Module, Parameter
from ..primitives import sample
from ..tensor import Tensor, no_grad

__all__ = ["Parameterized"]


def _transform_for(constraint: constraints.Constraint) -> Transform:
    if type(constraint) is type(constraints.positive):
        return SoftplusTransform()
    return biject_to(constraint)


class Parameterized(Module):
    """A Module with constrained hyperparameters (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "_hyper", {})    # name -> (constraint, transform)
        object.__setattr__(self, "_priors", {})   # name -> Distribution
        object.__setattr__(self, "_sampled", {})  # name -> Tensor drawn under sample_hyperparameters

    def register_hyperparameter(self, name: str, value: Any, constraint: constraints.Constraint = constraints.positive,
                                prior: Distribution | None = None) -> None:
        """Register hyperparameter ``name`` with initial (constrained) ``value``, its constraint and an optional
        prior. ``value`` is a float or an array (a vector lengthscale, say), stored in float64."""
        transform = _transform_for(constraint)
        self._hyper[name] = (constraint, transform)
        raw = transform.inv(Tensor._wrap(self._checked(name, value))).data
        self.register_parameter(name + "_unconstrained", Parameter(np.array(raw, dtype=np.float64)))
        if prior is not None:
            self.set_prior(name, prior)

    def _checked(self, name: str, value: Any) -> np.ndarray:
        constraint = self._hyper[name][0]
        a = np.asarray(value.data if isinstance(value, Tensor) else value, dtype=np.float64)
        ok = np.asarray(constraint.check(a))
        if not np.all(ok) or not np.all(np.isfinite(a)):
            raise ValueError(f"{type(self).__name__}: hyperparameter {name!r} must satisfy {constraint}, got {value!r}")
        return a

    def __setattr__(self, name: str, value: Any) -> None:
        hyper = self.__dict__.get("_hyper")
        if hyper is not None and name in hyper:
            new = hyper[name][1].inv(Tensor._wrap(self._checked(name, value))).data
            raw = self._parameters[name + "_unconstrained"]
            if new.shape != raw.data.shape:
                raise ValueError(f"{type(self).__name__}: hyperparameter {name!r} has shape "
                                 f"{tuple(self.__getattr__(name).shape)}, cannot assign a value of shape "
                                 f"{np.shape(value.data if isinstance(value, Tensor) else value)}")
            with no_grad():
                raw.data[...] = new
            return
        super().__setattr__(name, value)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        hyper = d.get("_hyper")
        if hyper is not None and name in hyper:
            if name in d["_sampled"]:
                return d["_sampled"][name]
            return hyper[name][1](d["_parameters"][name + "_unconstrained"])
        return super().__getattr__(name)

    def hyperparameter_names(self) -> list[str]:
        """The names of this module's own hyperparameters, in registration order."""
        return list(self._hyper)

    def set_prior(self, name: str, prior: Distribution | None) -> None:
        """Give hyperparameter ``name`` a prior (``None`` removes it); see :meth:`sample_hyperparameters`."""
        if name not in self._hyper:
            raise KeyError(f"{type(self).__name__} has no hyperparameter {name!r}; it has {list(self._hyper)}")
        if prior is None:
            self._priors.pop(name, None)
            return
        if not isinstance(prior, Distribution):
            raise TypeError(f"{type(self).__name__}.set_prior({name!r}): expected a Distribution, "
                            f"got {type(prior).__name__}")
        self._priors[name] = prior

    def _parameterized_modules(self, prefix: str = "") -> Iterator[tuple[str, Parameterized]]:
        yield prefix, self
        for child_name, child in self._modules.items():
            if isinstance(child, Parameterized):
                yield from child._parameterized_modules(f"{prefix}{child_name}.")

    @contextmanager
    def sample_hyperparameters(self, prefix: str = "") -> Iterator[dict[str, Tensor]]:
        """Inside a probdl model: draw every hyperparameter that has a prior, of this module and its sub-modules,
        at a ``sample`` site named ``prefix`` + its path (``kernel.lengthscale``); while the context is open,
        reading the attribute gives the draw. Yields {site name: value}."""
        drawn: dict[str, Tensor] = {}
        touched = []
        try:
            for path, m in self._parameterized_modules(prefix):
                for name, prior in m._priors.items():
                    value = sample(path + name, prior)
                    m._sampled[name] = value
                    drawn[path + name] = value
                touched.append(m)
            yield drawn
        finally:
            for m in touched:
                m._sampled.clear()
