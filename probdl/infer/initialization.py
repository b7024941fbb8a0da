"""Initialization strategies: where HMC/NUTS chains and autoguides start.

Each strategy is a function of a site message that returns a constrained initial value for a latent
sample site (or None to leave the site alone), so it can be used directly as the ``substitute_fn`` of
:class:`~probdl.handlers.substitute`, as NumPyro's are. Called with keyword options and no site, a
strategy returns itself configured: ``init_to_median(num_samples=31)``, ``init_to_value(values={...})``.

Randomness comes from ``msg["kwargs"]["rng"]``, which an enclosing ``seed`` handler supplies (the global
generator otherwise). Observed sites, sites that already have a value, and discrete sites get None.

- ``init_to_uniform(radius=2)``: u ~ Uniform(-radius, radius) in the unconstrained space of
  ``biject_to(support)``, mapped onto the support (Stan's default with radius 2).
- ``init_to_median(num_samples=15)``: the coordinatewise median of prior draws, taken in the unconstrained
  space and mapped back. For elementwise monotone transforms and an odd number of draws this *is* the
  constrained median; for vector supports (simplex, Cholesky factors) it stays inside the support, where a
  coordinatewise median of constrained draws would not. Falls back to init_to_uniform for a distribution
  without draws (``ImproperUniform``) and when the median is not finite.
- ``init_to_mean()``: the distribution's mean; falls back to init_to_median where the mean is not defined,
  not finite, or not inside the support.
- ``init_to_sample()``: one prior draw (init_to_uniform for a distribution without draws).
- ``init_to_value(values=...)``: the given constrained values for the named sites, init_to_uniform for the
  others. The values are checked against the site's shape and support; names that are not latent sites of
  the model are reported by ``initialize_model`` with a warning and ignored (as NumPyro ignores them).

References: Stan Reference Manual, "Initialization" (uniform on (-2, 2) unconstrained); NumPyro's
``infer.initialization``.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import as_generator, get_default_dtype
from ..distributions.transforms import biject_to
from ..primitives import Message
from ..tensor import Tensor, no_grad
from ..tensor.ops.base import to_tensor

__all__ = ["init_to_uniform", "init_to_median", "init_to_mean", "init_to_sample", "init_to_value", "init_values_of"]


def _applies(site: Message) -> bool:
    """A latent, continuous sample site that nothing has given a value yet."""
    return (site["type"] == "sample" and not site["is_observed"] and site.get("value") is None
            and not site["infer"].get("is_auxiliary") and site["fn"].support is not None
            and not site["fn"].support.is_discrete)


def _site_shape(site: Message) -> tuple[int, ...]:
    return site["fn"].shape(site["kwargs"].get("sample_shape", ()))


def _rng(site: Message) -> np.random.Generator:
    return as_generator(site["kwargs"].get("rng"))


def _finite(t: Tensor) -> bool:
    return bool(np.all(np.isfinite(t.numpy())))


def _in_support(site: Message, value: Tensor) -> bool:
    return bool(np.all(np.asarray(site["fn"].support.check(value))))


def _positive_number(who: str, name: str, value: Any, integer: bool = False) -> None:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0 or not np.isfinite(value):
        raise ValueError(f"{who}: {name} must be a positive {'int' if integer else 'number'}, got {value!r}")


def init_to_uniform(site: Message | None = None, radius: float = 2.0) -> Any:
    """u ~ Uniform(-radius, radius) elementwise in the unconstrained space, mapped onto the support."""
    if site is None:
        _positive_number("init_to_uniform", "radius", radius)
        return functools.partial(init_to_uniform, radius=radius)
    if not _applies(site):
        return None
    transform = biject_to(site["fn"].support)
    ushape = transform.inverse_shape(_site_shape(site))
    u = _rng(site).uniform(-radius, radius, size=ushape).astype(get_default_dtype())
    with no_grad():
        return transform(Tensor._wrap(u)).detach()


def init_to_median(site: Message | None = None, num_samples: int = 15) -> Any:
    """The coordinatewise median of ``num_samples`` prior draws, in the unconstrained space (see the module
    docstring), mapped back onto the support."""
    if site is None:
        _positive_number("init_to_median", "num_samples", num_samples, integer=True)
        return functools.partial(init_to_median, num_samples=num_samples)
    if not _applies(site):
        return None
    fn = site["fn"]
    transform = biject_to(fn.support)
    try:
        with no_grad():
            draws = fn.sample((num_samples,) + tuple(site["kwargs"].get("sample_shape", ())), rng=_rng(site))
    except NotImplementedError:
        return init_to_uniform(site)
    with no_grad(), np.errstate(all="ignore"):
        u = transform.inv(draws).numpy()
        value = transform(Tensor._wrap(np.median(u, axis=0))).detach()
    if not _finite(value) or not _in_support(site, value):
        return init_to_uniform(site)
    return value


def init_to_mean(site: Message | None = None) -> Any:
    """The distribution's mean (broadcast to the site's shape); init_to_median where it has none, it is not
    finite, or it lies outside the support."""
    if site is None:
        return init_to_mean
    if not _applies(site):
        return None
    try:
        with no_grad():
            mean = to_tensor(site["fn"].mean).detach()
            mean = Tensor._wrap(np.broadcast_to(mean.numpy(), _site_shape(site)).copy())
    except (NotImplementedError, ValueError):
        return init_to_median(site)
    if not _finite(mean) or not _in_support(site, mean):
        return init_to_median(site)
    return mean


def init_to_sample(site: Message | None = None) -> Any:
    """One draw from the site's distribution (init_to_uniform for a distribution without draws)."""
    if site is None:
        return init_to_sample
    if not _applies(site):
        return None
    try:
        with no_grad():
            return site["fn"].sample(tuple(site["kwargs"].get("sample_shape", ())), rng=_rng(site)).detach()
    except NotImplementedError:
        return init_to_uniform(site)


def init_to_value(site: Message | None = None, values: dict | None = None) -> Any:
    """``values[name]`` (a constrained value) for the sites it names, init_to_uniform for the others."""
    if site is None:
        if values is None or not isinstance(values, dict):
            raise TypeError(f"init_to_value: values must be a dict of site name -> value, got "
                            f"{type(values).__name__}")
        return functools.partial(init_to_value, values=dict(values))
    if not _applies(site):
        return None
    name = site["name"]
    if values is None or name not in values:
        return init_to_uniform(site)
    value = to_tensor(values[name]).detach()
    if value.dtype.kind != "f":
        value = value.astype(get_default_dtype())
    shape = _site_shape(site)
    try:
        value = Tensor._wrap(np.broadcast_to(value.numpy(), shape).copy())
    except ValueError:
        raise ValueError(f"init_to_value: the value for site {name!r} has shape {value.shape}, which does not "
                         f"broadcast to the site's shape {shape}") from None
    if not _in_support(site, value):
        raise ValueError(f"init_to_value: the value for site {name!r} lies outside its support "
                         f"{site['fn'].support!r}")
    return value


def init_values_of(strategy: Callable) -> dict | None:
    """The ``values`` dict of an ``init_to_value(values=...)`` strategy, else None."""
    if isinstance(strategy, functools.partial) and strategy.func is init_to_value:
        return strategy.keywords.get("values")
    return None
