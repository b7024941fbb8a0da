"""A model in unconstrained coordinates: its latent sites, their bijections, and the potential energy.

Inference works on unconstrained values. Every latent sample site ``x`` with support ``S`` is written
``x = T(u)`` with ``T = biject_to(S)`` and ``u`` free in ℝⁿ; the model's log joint in ``u`` picks up the
log-Jacobian of ``T``, so the *potential energy* is

    U(u) = -( log p(data, T(u)) + Σ_sites s_site · log |det ∂T/∂u| ),

where ``s_site`` is the site's scale (plate subsampling, the ``scale`` handler). HMC and NUTS move on
``U``; autoguides put their Gaussians on ``u``; the Laplace approximation takes the Hessian of ``U``.
The transform is looked up from each site's distribution on every run, so a support that depends on
another latent (``Uniform(0, a)`` with ``a`` latent) is handled.

The functions here are pure: a model and its arguments in, tensors and plain functions out.

- :func:`find_latent_sites` runs the model once (a *prototype* trace, seeded, hidden from outer handlers)
  and describes each latent site: distribution, support, bijection, shapes, enclosing plates.
- :func:`potential_energy`, :func:`constrain_fn`, :func:`unconstrain_fn`, :func:`transform_fn` move
  between the two coordinate systems.
- :func:`initialize_model` picks initial values with an init strategy
  (:mod:`probdl.infer.initialization`) until the potential and its gradient are finite, and returns
  them with the potential, its ``value_and_grad``, and the map back to constrained values.

References: Stan Reference Manual, "Constraint transforms" (the change of variables); NumPyro's
``infer.util`` (Phan, Pradhan & Jankowiak 2019, arXiv:1912.11554).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ..backend import as_generator
from ..distributions import constraints
from ..distributions.distribution import Distribution
from ..distributions.transforms import ComposeTransform, IdentityTransform, IndependentTransform, Transform, biject_to
from ..handlers import Trace, block, seed, substitute, trace
from ..primitives import _STACK, CondIndepStackFrame, Message
from ..tensor import Tensor, no_grad, value_and_grad
from ..tensor.ops.base import to_tensor
from .initialization import init_to_uniform, init_values_of

__all__ = ["LatentSite", "ModelInfo", "find_latent_sites", "prototype_trace", "latent_sites", "is_latent",
           "is_identity", "active_rng", "transform_fn", "constrain_fn", "unconstrain_fn", "potential_energy",
           "log_density", "initialize_model"]


class LatentSite(NamedTuple):
    """One latent sample site of a model, as seen in a prototype run.

    ``transform`` maps the unconstrained value (shape ``unconstrained_shape``, its rightmost
    ``unconstrained_event_dim`` dims one event) onto the support (shape ``shape``, ``event_dim`` event dims);
    ``frames`` are the enclosing plates, innermost first; ``value`` is the prototype's (constrained) value.
    """

    name: str
    fn: Distribution
    support: constraints.Constraint
    transform: Transform
    shape: tuple[int, ...]
    unconstrained_shape: tuple[int, ...]
    event_dim: int
    unconstrained_event_dim: int
    frames: tuple[CondIndepStackFrame, ...]
    value: Tensor


class ModelInfo(NamedTuple):
    """What :func:`initialize_model` returns.

    params: initial unconstrained values, by site name.
    potential_energy, grad: U and ∇U at ``params``.
    potential_fn: ``dict -> Tensor``, U(u).
    value_and_grad_fn: ``dict -> (Tensor, dict)``, U(u) and ∇U(u) (``probdl.value_and_grad`` of potential_fn).
    postprocess_fn: ``dict -> dict``, unconstrained values to the constrained latent values and the
        model's deterministic sites (differentiable: run it under ``no_grad`` for values alone).
    sites: the latent sites, by name, in the order the model visits them.
    trace: the prototype trace (at the initial values).
    """

    params: dict[str, Tensor]
    potential_energy: Tensor
    grad: dict[str, Tensor]
    potential_fn: Callable[[dict], Tensor]
    value_and_grad_fn: Callable[[dict], tuple[Tensor, dict]]
    postprocess_fn: Callable[[dict], dict]
    sites: dict[str, LatentSite]
    trace: Trace


# ---------------------------------------------------------------------------- helpers
def _kwargs(model_kwargs: dict | None) -> dict:
    if model_kwargs is None:
        return {}
    if not isinstance(model_kwargs, dict):
        raise TypeError(f"model_kwargs must be a dict, got {type(model_kwargs).__name__}")
    return model_kwargs


def _args(model_args: Any) -> tuple:
    if not isinstance(model_args, (tuple, list)):
        raise TypeError(f"model_args must be a tuple of the model's positional arguments, got "
                        f"{type(model_args).__name__} (wrap a single argument as (x,))")
    return tuple(model_args)


def active_rng() -> np.random.Generator:
    """The generator of the innermost active ``seed`` handler, or the global one: what a draw made here,
    under the current handlers, would use."""
    for handler in reversed(_STACK):
        if isinstance(handler, seed) and hasattr(handler, "rng"):
            return handler.rng
    return as_generator(None)


def is_latent(site: Message) -> bool:
    """A sample site whose value inference must supply: not observed, not auxiliary (a guide's own
    helper variable), not fixed by ``do``."""
    return (site["type"] == "sample" and not site["is_observed"] and not site["infer"].get("is_auxiliary")
            and not site["infer"].get("_do_not_score"))


def _sum_rightmost(t: Tensor, n: int) -> Tensor:
    return t.sum(tuple(range(-n, 0))) if n > 0 else t


def is_identity(t: Transform) -> bool:
    """True for the identity map (also under IndependentTransform or as the only part of a composition)."""
    while isinstance(t, (IndependentTransform, ComposeTransform)):
        if isinstance(t, IndependentTransform):
            t = t.base
        elif len(t.parts) == 1:
            t = t.parts[0]
        else:
            return False
    return isinstance(t, IdentityTransform)


def _support_transform(name: str, fn: Distribution) -> tuple[constraints.Constraint, Transform]:
    """The support of site ``name`` and the bijection onto it; a clear error for discrete supports."""
    support = fn.support
    if support is None:
        raise ValueError(f"site {name!r}: {type(fn).__name__} declares no support, so it has no unconstrained "
                         "parameterization")
    if support.is_discrete:
        raise ValueError(f"site {name!r}: {type(fn).__name__} has the discrete support {support!r}; HMC/NUTS and "
                         "autoguides need continuous latent sites (marginalize it out, e.g. by summing over its "
                         "values with a factor statement, or condition on it)")
    try:
        return support, biject_to(support)
    except NotImplementedError as e:
        raise ValueError(f"site {name!r}: no bijection from the reals onto its support {support!r} ({e})") from e


# ---------------------------------------------------------------------------- latent sites
def prototype_trace(model: Callable, model_args: Any = (), model_kwargs: dict | None = None, *,
                    rng: Any = None, init_strategy: Callable | None = None) -> Trace:
    """One run of ``model`` under ``seed(rng)`` (and ``substitute(substitute_fn=init_strategy)``), traced and
    hidden from outer handlers by ``block``, so that it can run inside a guide or an SVI step unseen."""
    fn = seed(model, as_generator(rng))
    if init_strategy is not None:
        fn = substitute(fn, substitute_fn=init_strategy)
    with block(), no_grad():
        return trace(fn).get_trace(*_args(model_args), **_kwargs(model_kwargs))


def latent_sites(tr: Trace) -> dict[str, LatentSite]:
    """The latent sites of a trace, described (see :class:`LatentSite`); discrete ones are rejected."""
    sites = {}
    for name, site in tr.items():
        if not is_latent(site):
            continue
        fn = site["fn"]
        support, transform = _support_transform(name, fn)
        value = to_tensor(site["value"]).detach()
        shape = fn.shape(site["kwargs"].get("sample_shape", ()))
        if value.shape != shape:
            raise ValueError(f"site {name!r}: value of shape {value.shape} where its distribution draws shape {shape}")
        ushape = tuple(transform.inverse_shape(shape))
        uevent = fn.event_dim + len(ushape) - len(shape)
        sites[name] = LatentSite(name, fn, support, transform, shape, ushape, fn.event_dim, uevent,
                                 tuple(site["cond_indep_stack"]), value)
    return sites


def find_latent_sites(model: Callable, model_args: Any = (), model_kwargs: dict | None = None, *,
                      rng: Any = None) -> dict[str, LatentSite]:
    """The latent sample sites of ``model(*model_args, **model_kwargs)``, from one seeded prototype run drawn
    from the prior: each with its distribution, support, bijection ``biject_to(support)``, constrained and
    unconstrained shapes and enclosing plates (:class:`LatentSite`).

    Raises ValueError for a latent site with a discrete support (these have no unconstrained form).
    """
    return latent_sites(prototype_trace(model, model_args, model_kwargs, rng=rng))


# ---------------------------------------------------------------------------- coordinates
def transform_fn(transforms: dict[str, Transform], params: dict[str, Any], invert: bool = False) -> dict[str, Tensor]:
    """Apply ``transforms[name]`` (its inverse with ``invert``) to ``params[name]``; names without a transform
    pass through. Works on any leading batch dims for transforms that do (all registered ones)."""
    out = {}
    for name, value in params.items():
        t = transforms.get(name)
        out[name] = value if t is None else (t.inv(value) if invert else t(value))
    return out


def _given_values(who: str, params: dict[str, Any], unconstrained: bool, log_dets: list | None) -> Callable:
    """A substitute_fn that gives each latent sample site its value from ``params`` (pushed through
    ``biject_to(support)`` when ``unconstrained``), recording scale · log|J| in ``log_dets``."""
    seen: set[str] = set()

    def substitute_fn(msg: Message) -> Tensor | None:
        if msg["type"] != "sample" or msg["value"] is not None or not is_latent(msg):
            return None
        name = msg["name"]
        if name not in params:
            raise ValueError(f"{who}: latent site {name!r} has no value in the given params (have "
                             f"{sorted(params)})")
        seen.add(name)
        value = to_tensor(params[name])
        if not unconstrained:
            return value
        fn = msg["fn"]
        _, t = _support_transform(name, fn)
        constrained = t(value)
        if log_dets is not None:
            ld = t.log_abs_det_jacobian(value, constrained)
            ld = _sum_rightmost(ld, ld.ndim - (constrained.ndim - fn.event_dim))  # batch shape of the site
            if msg["scale"] is not None:
                ld = ld * msg["scale"]
            log_dets.append(ld.sum())
        return constrained

    substitute_fn.seen = seen  # type: ignore[attr-defined]
    return substitute_fn


def _run_given(who: str, model: Callable, model_args: Any, model_kwargs: dict | None, params: dict,
               unconstrained: bool, log_dets: list | None = None) -> Trace:
    if not isinstance(params, dict):
        raise TypeError(f"{who}: params must be a dict of site name -> value, got {type(params).__name__}")
    sub = _given_values(who, params, unconstrained, log_dets)
    with block():  # a pure function of its inputs: hidden from (and unaffected by) the handlers outside
        tr = trace(substitute(model, substitute_fn=sub)).get_trace(*_args(model_args), **_kwargs(model_kwargs))
    unknown = sorted(set(params) - sub.seen)
    if unknown:
        raise ValueError(f"{who}: {', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not latent "
                         f"sample sites of the model (its latent sites are {sorted(sub.seen)})")
    return tr


def constrain_fn(model: Callable, model_args: Any, model_kwargs: dict | None, params: dict[str, Any],
                 return_deterministic: bool = False) -> dict[str, Tensor]:
    """Unconstrained values ``params`` (every latent site) → constrained ones, by running the model with
    x = biject_to(support)(u) at each site (so supports that depend on other latents are right); with
    ``return_deterministic`` also the values of the model's deterministic sites."""
    tr = _run_given("constrain_fn", model, model_args, model_kwargs, params, unconstrained=True)
    out = {name: tr[name]["value"] for name in params}
    if return_deterministic:
        out.update({n: s["value"] for n, s in tr.items() if s["type"] == "deterministic"})
    return out


def unconstrain_fn(model: Callable, model_args: Any, model_kwargs: dict | None,
                   params: dict[str, Any]) -> dict[str, Tensor]:
    """Constrained values ``params`` (every latent site) → unconstrained ones, u = biject_to(support)⁻¹(x),
    with each support read from a run of the model at those values."""
    tr = _run_given("unconstrain_fn", model, model_args, model_kwargs, params, unconstrained=False)
    out = {}
    for name in params:
        _, t = _support_transform(name, tr[name]["fn"])
        out[name] = t.inv(tr[name]["value"])
    return out


def log_density(model: Callable, model_args: Any, model_kwargs: dict | None,
                params: dict[str, Any]) -> tuple[Tensor, Trace]:
    """log p(data, x) at constrained latent values ``params`` (scaled and masked as the model's handlers say),
    and the trace of that run."""
    tr = _run_given("log_density", model, model_args, model_kwargs, params, unconstrained=False)
    return tr.log_prob_sum(), tr


def potential_energy(model: Callable, model_args: Any, model_kwargs: dict | None,
                     unconstrained_params: dict[str, Any]) -> Tensor:
    """U(u) = -(log p(data, T(u)) + Σ_sites scale · log|det ∂T/∂u|), T = biject_to(support) per site.

    ``unconstrained_params`` must hold every latent site of the model (and nothing else). Differentiable:
    ``probdl.value_and_grad(lambda u: potential_energy(model, args, kwargs, u))``.
    """
    log_dets: list[Tensor] = []
    tr = _run_given("potential_energy", model, model_args, model_kwargs, unconstrained_params, unconstrained=True,
                    log_dets=log_dets)
    total = tr.log_prob_sum()
    for ld in log_dets:
        total = total + ld
    return -total


# ---------------------------------------------------------------------------- initialization
def _finite(t: Any) -> bool:
    return bool(np.all(np.isfinite(np.asarray(t.numpy() if isinstance(t, Tensor) else t))))


def initialize_model(model: Callable, model_args: Any = (), model_kwargs: dict | None = None, *,
                     init_strategy: Callable = init_to_uniform, rng: Any = None, max_tries: int = 100) -> ModelInfo:
    """Initial unconstrained values for the latent sites of ``model``, with its potential energy.

    Runs the model with ``init_strategy`` as the substitute_fn (each latent site takes the constrained value
    it proposes), maps the values to the unconstrained space, and evaluates U and ∇U there; a draw where
    either is not finite is retried (with fresh randomness) up to ``max_tries`` times.

    Returns a :class:`ModelInfo`. ``rng`` is an int seed, a numpy Generator, or None (the global generator).
    Raises ValueError for discrete latent sites, and RuntimeError when no finite start is found.
    """
    if not callable(model):
        raise TypeError(f"initialize_model: model must be callable, got {type(model).__name__}")
    if not callable(init_strategy):
        raise TypeError(f"initialize_model: init_strategy must be callable, got {type(init_strategy).__name__}")
    if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
        raise ValueError(f"initialize_model: max_tries must be a positive int, got {max_tries!r}")
    model_args, model_kwargs = _args(model_args), _kwargs(model_kwargs)
    gen = as_generator(rng)

    def potential_fn(u: dict) -> Tensor:
        return potential_energy(model, model_args, model_kwargs, u)

    value_and_grad_fn = value_and_grad(potential_fn)

    def postprocess_fn(u: dict) -> dict:
        return constrain_fn(model, model_args, model_kwargs, u, return_deterministic=True)

    bad: list[str] = []
    for attempt in range(max_tries):
        tr = prototype_trace(model, model_args, model_kwargs, rng=gen, init_strategy=init_strategy)
        sites = latent_sites(tr)
        if attempt == 0:
            given = init_values_of(init_strategy)
            unknown = sorted(set(given or {}) - set(sites))
            if unknown:
                what = "is not a latent site" if len(unknown) == 1 else "are not latent sites"
                warnings.warn(f"initialize_model: init_to_value has a value for {', '.join(map(repr, unknown))}, "
                              f"which {what} of the model (its latent sites: {sorted(sites)}); ignored",
                              UserWarning, stacklevel=2)
        with no_grad():
            params = {name: s.transform.inv(s.value).detach() for name, s in sites.items()}
        bad = [n for n, u in params.items() if not _finite(u)]
        if bad:
            continue
        energy, grad = value_and_grad_fn(params)
        bad = [n for n, g in grad.items() if not _finite(g)]
        if _finite(energy) and not bad:
            return ModelInfo(params, energy, grad, potential_fn, value_and_grad_fn, postprocess_fn, sites, tr)
        bad = _non_finite_sites(model, model_args, model_kwargs, params) + [f"the gradient at {n!r}" for n in bad]
    name = getattr(init_strategy, "__name__", None) or getattr(getattr(init_strategy, "func", None), "__name__", "?")
    raise RuntimeError(f"initialize_model: no initial values with a finite potential energy and gradient in "
                       f"{max_tries} tries of {name}; last non-finite: {', '.join(bad) or 'the potential energy'}. "
                       "Check the model's supports and data, or give init_to_value(values=...)")


def _non_finite_sites(model: Callable, model_args: tuple, model_kwargs: dict, params: dict) -> list[str]:
    """The sites whose log density (or log-Jacobian) is not finite at the unconstrained ``params``."""
    log_dets: list[Tensor] = []
    with no_grad():
        tr = _run_given("initialize_model", model, model_args, model_kwargs, params, unconstrained=True,
                        log_dets=log_dets)
        tr.compute_log_prob()
    bad = []
    for name, site in tr.items():
        if "log_prob" in site and not _finite(site["log_prob"]):
            kind = "observed" if site["is_observed"] else "latent"
            bad.append(f"the log density of {kind} site {name!r}")
    return bad
