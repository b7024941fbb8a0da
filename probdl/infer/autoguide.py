"""Automatic guides: variational families built from a model's latent sites.

An autoguide is a callable guide. ``guide = AutoNormal(model)``; ``guide(*args, **kwargs)`` takes the
model's arguments, builds itself on its first call from a prototype trace of the model
(:func:`probdl.infer.util.initialize_model`, with ``init_loc_fn`` picking the initial locations), registers
its parameters with ``probdl.param`` and samples every latent site of the model under the same name, with
values in the site's support. It returns the dict of those values.

Every family lives in the unconstrained space u = biject_to(support)⁻¹(x). Two layouts:

- *per site*: ``AutoDelta`` (a point mass at a constrained value, MAP) and ``AutoNormal`` (an independent
  Normal on each site's u, pushed through its bijection). Both follow the model's plates, including
  subsampling plates: a local latent's parameter has the plate's full size and the guide takes the rows of
  the current subsample.
- *flat*: ``AutoDiagonalNormal``, ``AutoMultivariateNormal``, ``AutoLowRankMultivariateNormal`` and
  ``AutoLaplaceApproximation`` pack all latents into one vector u ∈ ℝᴰ (``_unpack_latent``), draw it at an
  auxiliary site ``"_{prefix}_latent"`` (``infer={"is_auxiliary": True}``) and then each latent site as a
  ``Delta(x = T(u), log_density = -log|det ∂T/∂u|)``, so that the guide's joint log density is
  log q(x) = log q_u(u) - Σ log|J|, the density of x by the change of variables, and the ELBO is right.

Parameter names follow NumPyro: per-site guides use ``f"{site}_{prefix}_loc"`` and ``f"{site}_{prefix}_scale"``;
flat guides ``f"{prefix}_loc"``, ``f"{prefix}_scale"`` (diagonal and low rank), ``f"{prefix}_scale_tril"``,
``f"{prefix}_cov_factor"``; with the default ``prefix="auto"`` e.g. ``"z_auto_loc"`` and ``"auto_scale_tril"``.

After fitting, each guide gives ``median(*args)`` (constrained medians by site), ``quantiles(q, *args)``
(site → tensor of shape ``(len(q),) + site shape``, Normal quantiles pushed through monotone elementwise
bijections), ``sample_posterior(rng, params, *args, sample_shape=())`` (constrained draws by site, what
Predictive needs) and, for the flat guides, ``get_posterior(*args)`` (the distribution of the packed u).
``params`` (a dict of constrained parameter values, e.g. ``SVIRunResult.params``) replaces the param store
where given. The ``*args`` of these methods are the model's arguments; they are needed only to build a guide
that has not been called yet, and by the Laplace approximation, whose covariance is a Hessian of the model.

References: Kucukelbir et al., "Automatic Differentiation Variational Inference", JMLR 18(14), 2017 (Gaussian
families in the unconstrained space); Rezende, Mohamed & Wierstra 2014 and Kingma & Welling 2014
(reparameterized gradients); MacKay, *Information Theory, Inference, and Learning Algorithms* (2003), ch. 27
(Laplace's method); the interface of Pyro's and NumPyro's ``autoguide`` modules.
"""
from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import numpy as np

from .. import tensor as T
from ..backend import as_generator
from ..distributions import constraints
from ..distributions.combinators import Independent
from ..distributions.delta import Delta
from ..distributions.distribution import Distribution
from ..distributions.multivariate_normal import LowRankMultivariateNormal, MultivariateNormal
from ..distributions.normal import Normal
from ..distributions.transformed import TransformedDistribution
from ..distributions.transforms import ComposeTransform, IndependentTransform, Transform
from ..handlers import substitute
from ..primitives import CondIndepStackFrame, param, plate, sample
from ..tensor import LinAlgError, Tensor, no_grad
from ..tensor.functional import hessian
from ..tensor.ops.base import to_tensor
from .initialization import init_to_median
from .util import LatentSite, active_rng, initialize_model, is_identity, potential_energy

__all__ = ["AutoGuide", "AutoDelta", "AutoNormal", "AutoContinuous", "AutoDiagonalNormal", "AutoMultivariateNormal",
           "AutoLowRankMultivariateNormal", "AutoLaplaceApproximation"]


# ---------------------------------------------------------------------------- helpers
def _sum_rightmost(t: Tensor, n: int) -> Tensor:
    return t.sum(tuple(range(-n, 0))) if n > 0 else t


def _monotone_sign(t: Transform) -> int | None:
    """+1 or -1 for an elementwise increasing or decreasing bijection, None for any other (simplex, Cholesky)."""
    while isinstance(t, IndependentTransform):
        t = t.base
    if isinstance(t, ComposeTransform):
        signs = [_monotone_sign(p) for p in t.parts]
        return None if None in signs else math.prod(signs)
    if t.domain.event_dim or t.codomain.event_dim or t.sign not in (1, -1):
        return None
    return int(t.sign)


def _copy(t: Tensor) -> Tensor:
    """A detached copy: the param store hands out a real parameter's leaf itself, which optimizers update in
    place, so values returned to the user must not share its memory."""
    return Tensor._wrap(t.data.copy())


def _check_quantiles(quantiles: Any) -> np.ndarray:
    q = np.asarray(quantiles.numpy() if isinstance(quantiles, Tensor) else quantiles, dtype=float)
    if q.ndim != 1 or q.size == 0:
        raise ValueError(f"quantiles: give a 1-d list of probabilities, got shape {q.shape}")
    if not np.all((q > 0) & (q < 1)):
        raise ValueError(f"quantiles: every probability must lie in (0, 1), got {q.tolist()}")
    return q


def _positive(who: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{who}: {name} must be a positive number, got {value!r}")
    return float(value)


def _repeat_to_full(x: Tensor, dim: int, size: int) -> Tensor:
    """``x`` tiled periodically along ``dim`` to length ``size`` (an init value of a subsampled local latent)."""
    data = x.numpy()
    idx = np.arange(size) % data.shape[dim]
    return Tensor._wrap(np.take(data, idx, axis=dim))


def _site_quantiles(sites: dict[str, LatentSite], locs: dict[str, Tensor], scales: dict[str, Tensor],
                    q: np.ndarray) -> dict[str, Tensor]:
    """Quantiles of x = T(u), u ~ Normal(loc, scale) elementwise: T(loc + scale Φ⁻¹(q)) for increasing T, with
    q ↦ 1 - q for decreasing T; shape (len(q),) + site shape. Sites whose T is not elementwise monotone
    (simplex, Cholesky factors) have no such quantiles: they are left out, with a warning."""
    out, skipped = {}, []
    for name, loc in locs.items():
        site = sites[name]
        sign = _monotone_sign(site.transform)
        if sign is None:
            skipped.append(f"{name!r} ({site.support!r})")
            continue
        qq = q if sign > 0 else 1.0 - q
        z = T.ndtri(Tensor._wrap(qq.reshape((-1,) + (1,) * loc.ndim).astype(loc.dtype)))
        out[name] = site.transform(loc + scales[name] * z).detach()
    if skipped:
        warnings.warn(f"quantiles: left out {', '.join(skipped)}: the bijection onto a vector support is not "
                      "elementwise monotone, so the coordinates' quantiles are not transformed Normal quantiles; "
                      "take empirical quantiles of sample_posterior draws instead", UserWarning, stacklevel=3)
    return out


# ---------------------------------------------------------------------------- base class
class AutoGuide(ABC):
    """Base class of automatic guides (see the module docstring).

    Args:
        model: the model, a callable.
        prefix: the prefix of the guide's parameter names ("auto").
        init_loc_fn: the init strategy for the initial locations (:mod:`probdl.infer.initialization`).
        create_plates: optional ``callable(*args, **kwargs) -> plate | list[plate]`` that builds the guide's
            plates the way the model builds them (e.g. ``lambda x, idx: plate("data", N, subsample=idx)`` when
            the model takes its subsample indices as an argument). Without it, a subsampling plate of the model
            gets a guide plate of the same name, size and subsample size that draws its subsample once per
            call; the ELBOs replay that subsample into the model's plate of the same name
            (:func:`probdl.infer.elbo.get_importance_trace`).
    """

    def __init__(self, model: Callable, *, prefix: str = "auto", init_loc_fn: Callable = init_to_median,
                 create_plates: Callable | None = None) -> None:
        name = type(self).__name__
        if not callable(model):
            raise TypeError(f"{name}: model must be callable, got {type(model).__name__}")
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"{name}: prefix must be a non-empty str, got {prefix!r}")
        if not callable(init_loc_fn):
            raise TypeError(f"{name}: init_loc_fn must be an init strategy, got {type(init_loc_fn).__name__}")
        if create_plates is not None and not callable(create_plates):
            raise TypeError(f"{name}: create_plates must be callable, got {type(create_plates).__name__}")
        self.model, self.prefix, self.init_loc_fn, self.create_plates = model, prefix, init_loc_fn, create_plates
        self.prototype_trace = None
        self._sites: dict[str, LatentSite] = {}
        self._init_locs: dict[str, Tensor] = {}
        self._frames: dict[str, CondIndepStackFrame] = {}

    # ------------------------------------------------------------------ building
    @property
    def latent_sites(self) -> dict[str, LatentSite]:
        """The model's latent sites (after the first call)."""
        return dict(self._sites)

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        """Sample every latent site of the model; the model's arguments are passed through."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        return self._sample_sites(*args, **kwargs)

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        info = initialize_model(self.model, args, kwargs, init_strategy=self.init_loc_fn, rng=active_rng())
        if not info.sites:
            raise ValueError(f"{type(self).__name__}: the model has no latent sample sites to guide")
        self._sites, self._init_locs = info.sites, info.params
        frames: dict[str, CondIndepStackFrame] = {}
        for site in info.sites.values():
            for f in site.frames:
                frames.setdefault(f.name, f)
        self._frames = frames
        self.prototype_trace = info.trace

    def _ensure_setup(self, args: tuple, kwargs: dict) -> None:
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)

    def _user_plates(self, *args: Any, **kwargs: Any) -> dict[str, plate]:
        if self.create_plates is None:
            return {}
        made = self.create_plates(*args, **kwargs)
        made = [made] if isinstance(made, plate) else list(made)
        for p in made:
            if not isinstance(p, plate):
                raise TypeError(f"{type(self).__name__}: create_plates must return plates, got {type(p).__name__}")
        return {p.name: p for p in made}

    def _plates(self, *args: Any, **kwargs: Any) -> dict[str, tuple[plate, Tensor | None]]:
        """One plate per plate of the model, by name, with the subsample indices fixed for this call (None for a
        plate the guide spans whole)."""
        user = self._user_plates(*args, **kwargs)
        plates: dict[str, tuple[plate, Tensor | None]] = {}
        for name, frame in self._frames.items():
            p = user.get(name)
            if p is None and frame.subsample_size == frame.size:
                plates[name] = (plate(name, frame.size, dim=frame.dim), None)
                continue
            if p is None:
                p = plate(name, frame.size, subsample_size=frame.subsample_size, dim=frame.dim)
            elif p.size != frame.size:
                raise ValueError(f"{type(self).__name__}: create_plates made plate {name!r} of size {p.size}; the "
                                 f"model's has size {frame.size}")
            with p as idx:  # draw its subsample once, for all sites of this call
                pass
            plates[name] = (plate(name, frame.size, subsample=idx, dim=frame.dim), idx)
        return plates

    @staticmethod
    def _enter_plates(stack: ExitStack, site: LatentSite, plates: dict[str, tuple[plate, Tensor | None]]) -> None:
        for frame in reversed(site.frames):  # outermost first
            stack.enter_context(plates[frame.name][0])

    @staticmethod
    def _subsample(x: Tensor, site: LatentSite, plates: dict[str, tuple[plate, Tensor | None]],
                   event_dim: int) -> Tensor:
        """The rows of full-size parameter ``x`` that the current subsample of each enclosing plate selects."""
        for frame in site.frames:
            idx = plates[frame.name][1]
            if idx is not None:
                x = T.index_select(x, frame.dim - event_dim, idx)
        return x

    @staticmethod
    def _full_size(x: Tensor, site: LatentSite, event_dim: int) -> Tensor:
        for frame in site.frames:
            if frame.subsample_size < frame.size:
                x = _repeat_to_full(x, frame.dim - event_dim, frame.size)
        return x

    def _param(self, name: str, init: Any, params: dict | None, constraint: constraints.Constraint = constraints.real,
               event_dim: int | None = None) -> Tensor:
        """A ``param`` statement, or the value in ``params`` where it is given."""
        if params is not None and name in params:
            return to_tensor(params[name])
        return param(name, init, constraint, event_dim)

    # ------------------------------------------------------------------ interface
    @abstractmethod
    def _sample_sites(self, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        """The guide's statements: sample every latent site (the prototype is built)."""

    @abstractmethod
    def median(self, *args: Any, params: dict | None = None, **kwargs: Any) -> dict[str, Tensor]:
        """The posterior median of each latent site (constrained); see each guide for what it means there."""

    @abstractmethod
    def quantiles(self, quantiles: Any, *args: Any, params: dict | None = None, **kwargs: Any) -> dict[str, Tensor]:
        """Quantiles of each latent site's marginal: site → tensor of shape ``(len(quantiles),) + site shape``."""

    @abstractmethod
    def sample_posterior(self, rng: Any, params: dict | None = None, *args: Any, sample_shape: Any = (),
                         **kwargs: Any) -> dict[str, Tensor]:
        """Draws of every latent site (constrained), of shape ``sample_shape + site shape``; ``rng`` is an int
        seed, a numpy Generator or None (the global generator)."""


# ---------------------------------------------------------------------------- per-site guides
class AutoDelta(AutoGuide):
    """A point mass at a learned constrained value for each latent site: SVI with it is MAP estimation in the
    original (constrained) coordinates, log p(data, x) maximized with no Jacobian (as Pyro's and NumPyro's).

    Parameters: ``f"{site}_{prefix}_loc"``, constrained to the site's support. Quantiles of a point mass are the
    point itself.
    """

    def _loc_name(self, name: str) -> str:
        return f"{name}_{self.prefix}_loc"

    def _init_value(self, site: LatentSite) -> Tensor:
        with no_grad():
            value = site.transform(self._init_locs[site.name]).detach()
        return self._full_size(value, site, site.event_dim)

    def _values(self, params: dict | None) -> dict[str, Tensor]:
        return {name: self._param(self._loc_name(name), lambda site=site: self._init_value(site), params,
                                  site.support, site.event_dim)
                for name, site in self._sites.items()}

    def _sample_sites(self, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        plates = self._plates(*args, **kwargs)
        result = {}
        for name, site in self._sites.items():
            with ExitStack() as stack:
                self._enter_plates(stack, site, plates)
                value = param(self._loc_name(name), lambda site=site: self._init_value(site), site.support,
                              site.event_dim)
                value = self._subsample(value, site, plates, site.event_dim)
                result[name] = sample(name, Delta(value, event_dim=site.event_dim))
        return result

    def median(self, *args: Any, params: dict | None = None, **kwargs: Any) -> dict[str, Tensor]:
        """The point estimates."""
        self._ensure_setup(args, kwargs)
        with no_grad():
            return {k: _copy(v) for k, v in self._values(params).items()}

    def quantiles(self, quantiles: Any, *args: Any, params: dict | None = None, **kwargs: Any) -> dict[str, Tensor]:
        q = _check_quantiles(quantiles)
        return {k: T.broadcast_to(v, (len(q),) + v.shape) for k, v in self.median(*args, params=params,
                                                                                  **kwargs).items()}

    def sample_posterior(self, rng: Any, params: dict | None = None, *args: Any, sample_shape: Any = (),
                         **kwargs: Any) -> dict[str, Tensor]:
        shape = (sample_shape,) if isinstance(sample_shape, int) else tuple(sample_shape)
        return {k: T.broadcast_to(v, shape + v.shape) for k, v in self.median(*args, params=params, **kwargs).items()}


class AutoNormal(AutoGuide):
    """An independent Normal on each latent site's unconstrained value, pushed onto the support by
    ``biject_to``: q(x) = Normal(u; loc, scale) / |det ∂T/∂u| with x = T(u) (a ``TransformedDistribution``;
    a site on the whole real line gets the Normal itself, so analytic KLs apply).

    Parameters ``f"{site}_{prefix}_loc"`` and ``f"{site}_{prefix}_scale"`` (positive), of the site's unconstrained
    shape with full plate sizes; inside a subsampling plate the guide uses the rows of the current subsample
    (Pyro's behaviour), and the plate scales the site's log density by size / subsample size.

    Args beyond :class:`AutoGuide`'s: ``init_scale`` (0.1), the initial scale of every coordinate.
    """

    def __init__(self, model: Callable, *, prefix: str = "auto", init_loc_fn: Callable = init_to_median,
                 init_scale: float = 0.1, create_plates: Callable | None = None) -> None:
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn, create_plates=create_plates)
        self._init_scale = _positive(type(self).__name__, "init_scale", init_scale)

    def _init_loc(self, site: LatentSite) -> Tensor:
        return self._full_size(self._init_locs[site.name], site, site.unconstrained_event_dim)

    def _site_params(self, site: LatentSite, params: dict | None) -> tuple[Tensor, Tensor]:
        """The loc and scale of a site (``param`` statements; their initial values are made only when new)."""
        e = site.unconstrained_event_dim
        name = f"{site.name}_{self.prefix}"
        loc = self._param(f"{name}_loc", lambda: self._init_loc(site), params, constraints.real, e)
        scale = self._param(f"{name}_scale", lambda: T.full_like(self._init_loc(site), self._init_scale), params,
                            constraints.positive, e)
        return loc, scale

    def _site_fn(self, site: LatentSite, loc: Tensor, scale: Tensor) -> Distribution:
        base = Normal(loc, scale).to_event(site.unconstrained_event_dim)
        return base if is_identity(site.transform) else TransformedDistribution(base, site.transform)

    def _sample_sites(self, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        plates = self._plates(*args, **kwargs)
        result = {}
        for name, site in self._sites.items():
            with ExitStack() as stack:
                self._enter_plates(stack, site, plates)
                loc, scale = self._site_params(site, None)
                e = site.unconstrained_event_dim
                loc, scale = self._subsample(loc, site, plates, e), self._subsample(scale, site, plates, e)
                result[name] = sample(name, self._site_fn(site, loc, scale))
        return result

    def _all_params(self, args: tuple, kwargs: dict, params: dict | None) -> dict[str, tuple[Tensor, Tensor]]:
        self._ensure_setup(args, kwargs)
        with no_grad():
            return {name: tuple(_copy(t) for t in self._site_params(site, params))
                    for name, site in self._sites.items()}

    def median(self, *args: Any, params: dict | None = None, **kwargs: Any) -> dict[str, Tensor]:
        """T(loc) per site: the median for elementwise monotone bijections (the median of u maps to the median
        of x), and NumPyro's convention for vector supports such as the simplex."""
        with no_grad():
            return {name: self._sites[name].transform(loc).detach()
                    for name, (loc, _) in self._all_params(args, kwargs, params).items()}

    def quantiles(self, quantiles: Any, *args: Any, params: dict | None = None, **kwargs: Any) -> dict[str, Tensor]:
        """T(loc + scale Φ⁻¹(q)) per site (q ↦ 1 - q for a decreasing T); sites on vector supports (simplex,
        Cholesky factors) are left out with a warning."""
        q = _check_quantiles(quantiles)
        p = self._all_params(args, kwargs, params)
        with no_grad():
            return _site_quantiles(self._sites, {k: v[0] for k, v in p.items()}, {k: v[1] for k, v in p.items()}, q)

    def sample_posterior(self, rng: Any, params: dict | None = None, *args: Any, sample_shape: Any = (),
                         **kwargs: Any) -> dict[str, Tensor]:
        gen = as_generator(rng)
        with no_grad():
            return {name: self._site_fn(self._sites[name], loc, scale).sample(sample_shape, rng=gen)
                    for name, (loc, scale) in self._all_params(args, kwargs, params).items()}


# ---------------------------------------------------------------------------- flat guides
class AutoContinuous(AutoGuide):
    """Base of the guides over the packed vector u ∈ ℝᴰ of all latents (see the module docstring).

    A subclass gives ``_posterior_params(params)`` (its ``param`` statements, or values from ``params``) and
    ``_posterior(p)`` (the distribution of u, event shape (D,)). Subsampling plates are not supported: a
    packed vector has one fixed size (use AutoNormal or AutoDelta for local latents of mini-batched data).
    """

    latent_dim: int

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        for name, site in self._sites.items():
            for f in site.frames:
                if f.subsample_size < f.size:
                    self.prototype_trace = None
                    raise ValueError(f"{type(self).__name__}: site {name!r} is in plate {f.name!r}, which subsamples "
                                     f"{f.subsample_size} of {f.size}; a guide over one packed vector cannot follow "
                                     "a subsample. Use AutoNormal or AutoDelta for local latents of mini-batches")
        self._layout = [(name, site.unconstrained_shape, math.prod(site.unconstrained_shape))
                        for name, site in self._sites.items()]
        self.latent_dim = sum(size for _, _, size in self._layout)
        self._init_latent = self._pack_latent(self._init_locs)

    def _pack_latent(self, values: dict[str, Tensor]) -> Tensor:
        """Unconstrained values by site → the packed vector (leading batch dims kept)."""
        parts = []
        for name, shape, size in self._layout:
            v = to_tensor(values[name])
            parts.append(v.reshape(v.shape[:v.ndim - len(shape)] + (size,)))
        return T.cat(parts, -1)

    def _unpack_latent(self, latent: Tensor) -> dict[str, Tensor]:
        """The packed vector (shape batch + (D,)) → unconstrained values by site.

        A site's block takes the shape batch + (its unconstrained shape). When the batch comes from plates
        outside the guide (vectorized particles, parallel Predictive), it is (n, 1, ..., 1) with one 1 per plate
        dim of the model; the block is then laid out right-aligned against the site's own plate dims (Pyro's
        rule), broadcast(site shape, batch + (1,) * event_dim), so that the extra dim lands left of them.
        """
        if latent.shape[-1:] != (self.latent_dim,):
            raise ValueError(f"{type(self).__name__}: a packed latent has last dim {self.latent_dim}, got shape "
                             f"{latent.shape}")
        batch, out, start = latent.shape[:-1], {}, 0
        for name, shape, size in self._layout:
            block = latent[..., start:start + size]
            target = batch + shape
            if batch:
                event = self._sites[name].unconstrained_event_dim
                try:
                    aligned = tuple(np.broadcast_shapes(shape, batch + (1,) * event))
                    if math.prod(aligned) == block.numel():
                        target = aligned
                except ValueError:
                    pass
            out[name] = block.reshape(target)
            start += size
        return out

    @abstractmethod
    def _posterior_params(self, params: dict | None) -> dict[str, Tensor]:
        """The parameters of the distribution of u: ``param`` statements, or the values in ``params``."""

    @abstractmethod
    def _posterior(self, p: dict[str, Tensor]) -> Distribution:
        """The distribution of the packed u (event shape (D,)) with parameters ``p``."""

    def _sample_sites(self, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        latent = sample(f"_{self.prefix}_latent", self._posterior(self._posterior_params(None)),
                        infer={"is_auxiliary": True})
        result = {}
        for name, u in self._unpack_latent(latent).items():
            site = self._sites[name]
            x = site.transform(u)
            log_density = -site.transform.log_abs_det_jacobian(u, x)
            log_density = _sum_rightmost(log_density, log_density.ndim - (x.ndim - site.event_dim))
            result[name] = sample(name, Delta(x, log_density=log_density, event_dim=site.event_dim))
        return result

    def get_posterior(self, *args: Any, params: dict | None = None, **kwargs: Any) -> Distribution:
        """The distribution of the packed unconstrained latent u (event shape (D,)); ``_unpack_latent`` splits a
        draw by site and each site's ``transform`` maps it onto the support."""
        self._ensure_setup(args, kwargs)
        with no_grad():
            return self._posterior({k: _copy(v) for k, v in self._posterior_params(params).items()})

    def _loc(self, params: dict | None) -> Tensor:
        return _copy(self._posterior_params(params)["loc"])

    def median(self, *args: Any, params: dict | None = None, **kwargs: Any) -> dict[str, Tensor]:
        """T(loc) per site, loc the posterior mean (= median) of u; the median of x for elementwise monotone
        bijections."""
        self._ensure_setup(args, kwargs)
        with no_grad():
            return {name: self._sites[name].transform(u).detach()
                    for name, u in self._unpack_latent(self._loc(params)).items()}

    def quantiles(self, quantiles: Any, *args: Any, params: dict | None = None, **kwargs: Any) -> dict[str, Tensor]:
        """Quantiles of each coordinate's marginal, u_i ~ Normal(mean_i, sqrt(Σ_ii)), pushed through the site's
        monotone elementwise bijection; sites on vector supports are left out with a warning."""
        q = _check_quantiles(quantiles)
        posterior = self.get_posterior(*args, params=params, **kwargs)
        with no_grad():
            locs = self._unpack_latent(posterior.mean)
            scales = self._unpack_latent(T.sqrt(posterior.variance))
            return _site_quantiles(self._sites, locs, scales, q)

    def sample_posterior(self, rng: Any, params: dict | None = None, *args: Any, sample_shape: Any = (),
                         **kwargs: Any) -> dict[str, Tensor]:
        posterior = self.get_posterior(*args, params=params, **kwargs)
        with no_grad():
            latent = posterior.sample(sample_shape, rng=as_generator(rng))
            return {name: self._sites[name].transform(u).detach() for name, u in self._unpack_latent(latent).items()}


class AutoDiagonalNormal(AutoContinuous):
    """u ~ Normal(loc, scale) with a diagonal covariance, over the packed latent. Parameters ``f"{prefix}_loc"``
    and ``f"{prefix}_scale"`` (positive), both of shape (D,). ``init_scale`` (0.1) is the initial scale."""

    def __init__(self, model: Callable, *, prefix: str = "auto", init_loc_fn: Callable = init_to_median,
                 init_scale: float = 0.1) -> None:
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn)
        self._init_scale = _positive(type(self).__name__, "init_scale", init_scale)

    def _posterior_params(self, params: dict | None) -> dict[str, Tensor]:
        return {"loc": self._param(f"{self.prefix}_loc", lambda: self._init_latent, params),
                "scale": self._param(f"{self.prefix}_scale", lambda: T.full_like(self._init_latent, self._init_scale),
                                     params, constraints.positive)}

    def _posterior(self, p: dict[str, Tensor]) -> Distribution:
        return Independent(Normal(p["loc"], p["scale"]), 1)


class AutoMultivariateNormal(AutoContinuous):
    """u ~ MultivariateNormal(loc, scale_tril) over the packed latent: a full covariance L Lᵀ. Parameters
    ``f"{prefix}_loc"`` (D,) and ``f"{prefix}_scale_tril"`` (D, D), lower triangular with a positive diagonal,
    initially ``init_scale`` (0.1) times the identity."""

    def __init__(self, model: Callable, *, prefix: str = "auto", init_loc_fn: Callable = init_to_median,
                 init_scale: float = 0.1) -> None:
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn)
        self._init_scale = _positive(type(self).__name__, "init_scale", init_scale)

    def _posterior_params(self, params: dict | None) -> dict[str, Tensor]:
        def init_tril() -> Tensor:
            return Tensor._wrap(np.eye(self.latent_dim, dtype=self._init_latent.dtype) * self._init_scale)

        return {"loc": self._param(f"{self.prefix}_loc", lambda: self._init_latent, params),
                "scale_tril": self._param(f"{self.prefix}_scale_tril", init_tril, params, constraints.lower_cholesky)}

    def _posterior(self, p: dict[str, Tensor]) -> Distribution:
        return MultivariateNormal(p["loc"], scale_tril=p["scale_tril"])


class AutoLowRankMultivariateNormal(AutoContinuous):
    """u ~ Normal(loc, W Wᵀ + D) over the packed latent, W of rank ``rank``, parameterized as Pyro's:
    W = cov_factor · diag(scale) rows-wise (W_ij = cov_factor_ij scale_i) and D = diag(scale²), with parameters
    ``f"{prefix}_loc"`` (D,), ``f"{prefix}_cov_factor"`` (D, rank) and ``f"{prefix}_scale"`` (D,) positive.

    ``rank`` defaults to round(√D). The cov_factor starts at small random values N(0, 1/rank) (drawn from the
    generator of the enclosing seed handler), not at zero, where the expected ELBO has a saddle in W; the
    scale starts at ``init_scale``/√2, so that the initial marginal variances are about ``init_scale``².
    """

    def __init__(self, model: Callable, *, prefix: str = "auto", init_loc_fn: Callable = init_to_median,
                 init_scale: float = 0.1, rank: int | None = None) -> None:
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn)
        self._init_scale = _positive(type(self).__name__, "init_scale", init_scale)
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1):
            raise ValueError(f"{type(self).__name__}: rank must be a positive int or None, got {rank!r}")
        self.rank = rank

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        rng = active_rng()
        super()._setup_prototype(*args, **kwargs)
        if self.rank is None:
            self.rank = max(1, int(round(self.latent_dim ** 0.5)))
        if self.rank > self.latent_dim:
            self.prototype_trace = None
            raise ValueError(f"{type(self).__name__}: rank {self.rank} exceeds the dimension {self.latent_dim} of the "
                             "packed latent; use rank <= dimension (or AutoMultivariateNormal)")
        factor = rng.standard_normal((self.latent_dim, self.rank)) / math.sqrt(self.rank)
        self._init_cov_factor = Tensor._wrap(factor.astype(self._init_latent.dtype))

    def _posterior_params(self, params: dict | None) -> dict[str, Tensor]:
        return {"loc": self._param(f"{self.prefix}_loc", lambda: self._init_latent, params),
                "cov_factor": self._param(f"{self.prefix}_cov_factor", lambda: self._init_cov_factor, params),
                "scale": self._param(f"{self.prefix}_scale",
                                     lambda: T.full_like(self._init_latent, self._init_scale / math.sqrt(2.0)),
                                     params, constraints.positive)}

    def _posterior(self, p: dict[str, Tensor]) -> Distribution:
        scale = p["scale"]
        return LowRankMultivariateNormal(p["loc"], p["cov_factor"] * T.expand_dims(scale, -1), scale * scale)


class AutoLaplaceApproximation(AutoContinuous):
    """Laplace's method in the unconstrained space. During SVI the guide is a point mass at ``f"{prefix}_loc"``
    (with the Jacobian terms of the flat guides), so the ELBO is -U(loc) and SVI finds the mode of the
    unconstrained posterior. ``get_posterior(*args)`` then returns

        u ~ MultivariateNormal(loc, precision = ∇²U(loc)),   U(u) = -log p(data, T(u)) - log|J_T(u)|,

    the Hessian taken with ``probdl.hessian`` and used as a precision matrix, so the covariance is never formed
    by inversion (its Cholesky factor comes from triangular solves). For a Gaussian posterior with real-valued
    latents the approximation is exact. The model's own ``param`` values come from ``params`` where given.
    """

    def _posterior_params(self, params: dict | None) -> dict[str, Tensor]:
        return {"loc": self._param(f"{self.prefix}_loc", lambda: self._init_latent, params)}

    def _posterior(self, p: dict[str, Tensor]) -> Distribution:
        return Delta(p["loc"], event_dim=1)

    def get_posterior(self, *args: Any, params: dict | None = None, **kwargs: Any) -> Distribution:
        """MultivariateNormal(loc, precision_matrix = Hessian of the potential at loc); needs the model's args."""
        self._ensure_setup(args, kwargs)
        with no_grad():
            loc = self._loc(params)
        model = self.model
        model_params = {k: v for k, v in (params or {}).items() if k in self.prototype_trace.param_nodes}
        if model_params:
            model = substitute(model, data=model_params)

        def potential(u: Tensor) -> Tensor:
            return potential_energy(model, args, kwargs, self._unpack_latent(u))

        precision = hessian(potential)(loc).detach()
        precision = 0.5 * (precision + T.swapaxes(precision, -1, -2))
        if not bool(np.all(np.isfinite(precision.numpy()))):
            raise ValueError(f"{type(self).__name__}: the Hessian of the potential at loc is not finite")
        try:
            return MultivariateNormal(loc, precision_matrix=precision)
        except (LinAlgError, np.linalg.LinAlgError, ValueError) as e:
            raise ValueError(f"{type(self).__name__}: the Hessian of the negative log joint at loc is not positive "
                             "definite, so loc is not a mode; fit the guide (SVI) to convergence first") from e
