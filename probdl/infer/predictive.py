"""Predictive distributions: prior, posterior and guide-based draws of a model's sites, and per-draw log likelihoods.

``Predictive(model, ...)`` turns a model and a description of its latent variables into draws of the model's
other sites:

- **prior predictive** (no ``posterior_samples``, no ``guide``): ``num_samples`` independent runs of the model;
- **posterior predictive** (``posterior_samples``, e.g. from MCMC): for each draw :math:`z^{(s)}`, the latent
  sites named in the dict take their values (``substitute``) and the model draws the rest,
  :math:`y^{(s)} \\sim p(y \\mid z^{(s)}, x)`, so that :math:`\\{y^{(s)}\\}` are draws from
  :math:`p(y \\mid x, \\mathcal D) = \\int p(y \\mid z, x)\\, p(z \\mid \\mathcal D)\\, dz`;
- **guide predictive** (``guide``, e.g. after SVI): each draw first runs the guide, :math:`z^{(s)} \\sim q(z)`
  (its ``param`` sites from ``params`` when given, else from the param store), then runs the model against it.

Observed sites are re-drawn only when the model is called with ``obs=None`` for them (the usual idiom
``def model(x, y=None)``); a site given data keeps it, and is returned only when named in ``return_sites``.

Draws are made one model run at a time (``parallel=False``), or all at once (``parallel=True``) by running the
model once inside an extra outer ``plate("_num_predictive_samples", num_samples, dim=-(max_plate_nesting + 1))``,
which needs a model whose code broadcasts over a new batch dim on the left. The two modes draw from the same
distribution but consume the generator in a different order, so their draws differ for one seed.

``log_likelihood(model, posterior_samples, *args)`` gives, per draw, the log density of every observed site,
the input that ArviZ's ``loo``/``waic`` need.

The interface follows NumPyro's ``numpyro.infer.Predictive`` and ``numpyro.infer.util.log_likelihood``.

References: Gelman et al., *Bayesian Data Analysis* (3rd ed., 2013), ch. 6 (posterior predictive checks);
Phan, Pradhan & Jankowiak, "Composable Effects for Flexible and Accelerated Probabilistic Programming in
NumPyro", arXiv:1912.11554 (2019).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .. import tensor as T
from ..backend import as_generator
from ..handlers import Trace, scale_and_mask, seed, substitute, trace
from ..primitives import Message, plate
from ..tensor import Tensor, no_grad
from ..tensor.ops.base import to_tensor

__all__ = ["Predictive", "log_likelihood"]

_PLATE_NAME = "_num_predictive_samples"


# ---------------------------------------------------------------------------- inputs
def _check_rng(rng: Any) -> np.random.Generator:
    if isinstance(rng, bool) or (rng is not None and not isinstance(rng, (int, np.integer, np.random.Generator))):
        raise TypeError(f"Predictive: rng must be None, an int seed or a numpy.random.Generator, got "
                        f"{type(rng).__name__}")
    return as_generator(rng)


def _flatten_samples(samples: Any, batch_ndims: int, who: str) -> tuple[dict[str, Tensor], tuple[int, ...]]:
    """Posterior draws as ``name -> Tensor of shape (N,) + site shape``, and their batch shape (N = its product)."""
    if not isinstance(samples, dict):
        raise TypeError(f"{who}: posterior_samples must be a dict of site name -> array, got {type(samples).__name__}")
    if isinstance(batch_ndims, bool) or not isinstance(batch_ndims, (int, np.integer)) or batch_ndims < 1:
        raise ValueError(f"{who}: batch_ndims must be a positive int, got {batch_ndims!r}")
    flat: dict[str, Tensor] = {}
    batch_shape: tuple[int, ...] | None = None
    first = None
    for name, value in samples.items():
        if not isinstance(name, str):
            raise TypeError(f"{who}: posterior_samples keys must be site names (str), got {name!r}")
        try:
            v = to_tensor(value).detach()
        except (TypeError, ValueError) as e:
            raise TypeError(f"{who}: posterior_samples[{name!r}] is not an array: {e}") from e
        if v.ndim < batch_ndims:
            raise ValueError(f"{who}: posterior_samples[{name!r}] has shape {v.shape}, fewer than batch_ndims="
                             f"{batch_ndims} leading (draw) dims")
        if v.dtype.kind == "f" and not bool(np.all(np.isfinite(v.numpy()))):
            raise ValueError(f"{who}: posterior_samples[{name!r}] contains NaN or infinite values")
        shape = tuple(v.shape[:batch_ndims])
        if batch_shape is None:
            batch_shape, first = shape, name
        elif shape != batch_shape:
            raise ValueError(f"{who}: inconsistent numbers of draws: posterior_samples[{first!r}] has leading "
                             f"shape {batch_shape}, posterior_samples[{name!r}] has {shape}")
        flat[name] = v.reshape((math.prod(shape),) + tuple(v.shape[batch_ndims:]))
    return flat, batch_shape or ()


def _check_return_sites(return_sites: Any) -> list[str] | None:
    if return_sites is None:
        return None
    if isinstance(return_sites, str) or not isinstance(return_sites, Iterable):
        raise TypeError(f"Predictive: return_sites must be a list of site names, got {return_sites!r}")
    names = list(return_sites)
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise TypeError(f"Predictive: return_sites must hold site names (str), got {bad[0]!r}")
    return names


# ---------------------------------------------------------------------------- running the model
def _substitute_fn(values: dict[str, Tensor], site_type: str, pad_to: int | None = None) -> Callable:
    """A ``substitute_fn`` giving sites of ``site_type`` their value in ``values``.

    With ``pad_to`` (parallel mode), a value of shape ``(N,) + site shape`` gets singleton dims after N so that
    N lands at batch dim ``-(pad_to + 1)``, where the outer predictive plate lives.
    """
    def fn(msg: Message) -> Tensor | None:
        if msg["type"] != site_type or msg["name"] not in values:
            return None
        v = values[msg["name"]]
        if pad_to is None:
            return v
        rest = tuple(v.shape[1:])
        event_dim = len(msg["fn"].event_shape) if site_type == "sample" else 0
        pad = pad_to + event_dim - len(rest)
        if pad < 0:
            raise ValueError(f"Predictive: posterior_samples[{msg['name']!r}] has per-draw shape {rest}, more dims "
                             f"than the site's batch + event dims allow ({pad_to} + {event_dim})")
        return v.reshape((v.shape[0],) + (1,) * pad + rest)

    return fn


def _run(model: Callable, rng: np.random.Generator, args: tuple, kwargs: dict, samples: dict[str, Tensor],
         params: dict[str, Tensor] | None, parallel: tuple[int, int] | None = None) -> Trace:
    """One traced run of ``model``: sample sites in ``samples`` substituted, param sites in ``params`` substituted,
    other sites drawn with ``rng``. ``parallel=(N, max_plate_nesting)`` runs it inside the outer predictive plate
    with every value in ``samples`` carrying its N draws on the left."""
    pad = None if parallel is None else parallel[1]
    fn = substitute(model, substitute_fn=_substitute_fn(samples, "sample", pad))
    if params:
        fn = substitute(fn, substitute_fn=_substitute_fn(params, "param"))
    with trace() as tr, seed(rng_seed=rng):
        if parallel is None:
            fn(*args, **kwargs)
        else:
            with plate(_PLATE_NAME, parallel[0], dim=-(parallel[1] + 1)):
                fn(*args, **kwargs)
    return tr


def _plate_nesting(tr: Trace) -> int:
    """How many batch dims the sites of ``tr`` use: the deepest plate dim, or the longest batch shape."""
    depth = 0
    for site in tr.values():
        if site["type"] != "sample":
            continue
        dims = [-f.dim for f in site["cond_indep_stack"] if f.name != _PLATE_NAME]
        depth = max([depth, len(site["fn"].batch_shape)] + dims)
    return depth


def _latent_values(tr: Trace) -> dict[str, Tensor]:
    return {name: site["value"] for name, site in tr.items() if site["type"] == "sample" and not site["is_observed"]}


def _unbatch(name: str, value: Tensor, n: int, shape: tuple[int, ...]) -> Tensor:
    """A parallel-mode value as ``(n,) + shape``: the draws' dim, then the per-draw shape with the singleton dims
    that vectorizing added squeezed out; a value that does not depend on the draws is broadcast."""
    value = to_tensor(value)
    vshape = tuple(value.shape)
    if vshape and vshape[0] == n and [d for d in vshape[1:] if d != 1] == [d for d in shape if d != 1]:
        return value.reshape((n,) + shape)
    if [d for d in vshape if d != 1] == [d for d in shape if d != 1]:
        return T.broadcast_to(value.reshape(shape), (n,) + shape)
    raise ValueError(f"Predictive: in parallel mode site {name!r} has shape {vshape}, which does not hold {n} draws "
                     f"of its per-draw shape {shape}; the model does not broadcast over a new batch dim on the left "
                     f"(use parallel=False)")


# ---------------------------------------------------------------------------- Predictive
class Predictive:
    """Draws of a model's sites from its prior, a posterior given as samples, or a guide.

    ``Predictive(model, posterior_samples=None, guide=None, params=None, num_samples=None, return_sites=None,
    batch_ndims=1, parallel=False)``, then ``predictive(rng, *args, **kwargs)`` (NumPyro's call signature: the
    random generator first, then the model's arguments) returns a dict ``site name -> Tensor`` whose leading
    dims are the draws: ``(num_samples,)``, or the leading ``batch_ndims`` dims of ``posterior_samples``.

    Args:
        model: the model, a function with ``sample`` statements.
        posterior_samples: ``site name -> array`` of draws of latent sites (leading ``batch_ndims`` dims index
            the draws, e.g. ``(num_chains, num_draws)`` with ``batch_ndims=2``). Deterministic sites in it are
            ignored and recomputed; names that are not latent sample sites of the model are ignored.
        guide: a guide to draw the latent sites from (not together with ``posterior_samples``).
        params: ``param name -> value`` substituted into the guide and the model, in place of the param store.
        num_samples: the number of draws; required without ``posterior_samples``, and when given with them it
            must equal their count.
        return_sites: the names of the sites to return. By default: every latent sample site that does not get
            its value from ``posterior_samples`` or the guide, and every deterministic site. A site given data
            (``obs=``) is returned only when named here.
        batch_ndims: how many leading dims of ``posterior_samples`` index draws (only 1 without them).
        parallel: draw all samples in one vectorized run of the model (and guide) instead of a loop.

    ``rng`` is an int seed, a ``numpy.random.Generator`` (advanced in place) or None (the global generator).
    Everything runs without gradient tracking; returned tensors are detached.

    Example::

        def model(x, y=None):
            w = sample("w", Normal(0.0, 1.0))
            with plate("data", len(x)):
                return sample("y", Normal(w * x, 0.5), obs=y)

        prior = Predictive(model, num_samples=1000)(0, x)                 # {"w": (1000,), "y": (1000, n)}
        post = Predictive(model, {"w": w_draws})(1, x_new)                  # {"y": (len(w_draws), n_new)}
        fitted = Predictive(model, guide=guide, num_samples=500, parallel=True)(2, x_new)

    Differences from NumPyro: a ``num_samples`` that disagrees with the number of posterior draws is an error
    (NumPyro warns and uses the draws); deterministic sites are always recomputed (NumPyro's default,
    ``exclude_deterministic=True``); observed sites are left out of the default return set.
    """

    def __init__(self, model: Callable, posterior_samples: dict | None = None, *, guide: Callable | None = None,
                 params: dict | None = None, num_samples: int | None = None, return_sites: Iterable[str] | None = None,
                 batch_ndims: int = 1, parallel: bool = False) -> None:
        if not callable(model):
            raise TypeError(f"Predictive: model must be callable, got {type(model).__name__}")
        if guide is not None and not callable(guide):
            raise TypeError(f"Predictive: guide must be callable, got {type(guide).__name__}")
        if guide is not None and posterior_samples is not None:
            raise ValueError("Predictive: give posterior_samples or a guide, not both")
        if num_samples is not None and (isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer))
                                        or num_samples < 1):
            raise ValueError(f"Predictive: num_samples must be a positive int, got {num_samples!r}")
        if params is not None and not isinstance(params, dict):
            raise TypeError(f"Predictive: params must be a dict of param name -> value, got {type(params).__name__}")
        self.model, self.guide, self.parallel = model, guide, bool(parallel)
        self.return_sites = _check_return_sites(return_sites)
        self.params = None if params is None else {k: to_tensor(v).detach() for k, v in params.items()}
        if posterior_samples is not None:
            self.posterior_samples, self.batch_shape = _flatten_samples(posterior_samples, batch_ndims, "Predictive")
            n = math.prod(self.batch_shape)
            if not self.posterior_samples:
                if num_samples is None:
                    raise ValueError("Predictive: posterior_samples is empty; give num_samples")
                self.batch_shape, n = (int(num_samples),), int(num_samples)
            elif num_samples is not None and num_samples != n:
                raise ValueError(f"Predictive: num_samples={num_samples} disagrees with the {n} draws in "
                                 f"posterior_samples (batch shape {self.batch_shape}); leave num_samples out")
        else:
            if batch_ndims != 1:
                raise ValueError(f"Predictive: batch_ndims={batch_ndims!r} needs posterior_samples; without them the "
                                 "draws have one batch dim")
            if num_samples is None:
                what = "the guide" if guide is not None else "the prior"
                raise ValueError(f"Predictive: num_samples is required to draw from {what}")
            self.posterior_samples, self.batch_shape = {}, (int(num_samples),)
        self.num_samples = math.prod(self.batch_shape)

    # ------------------------------------------------------------------ one draw at a time
    def _draw_once(self, rng: np.random.Generator, i: int, args: tuple, kwargs: dict) -> tuple[Trace, set]:
        """The model's trace for draw ``i``, and the names of the sites whose values came from the posterior draws
        or the guide."""
        if self.guide is not None:
            guide_tr = _run(self.guide, rng, args, kwargs, {}, self.params)
            samples = _latent_values(guide_tr)
        else:
            samples = {k: v[i] for k, v in self.posterior_samples.items()}
        return _run(self.model, rng, args, kwargs, samples, self.params), set(samples)

    def _sites(self, tr: Trace, given: set) -> list[str]:
        if self.return_sites is None:
            return [name for name, site in tr.items()
                    if (site["type"] == "sample" and not site["is_observed"] and name not in given)
                    or site["type"] == "deterministic"]
        missing = [name for name in self.return_sites if name not in tr]
        if missing:
            raise ValueError(f"Predictive: return_sites names {', '.join(map(repr, missing))}, not a site of the "
                             f"model; its sites are {list(tr)}")
        return list(self.return_sites)

    def _loop(self, rng: np.random.Generator, args: tuple, kwargs: dict) -> dict[str, Tensor]:
        draws: dict[str, list[Tensor]] = {}
        names: list[str] = []
        for i in range(self.num_samples):
            tr, given = self._draw_once(rng, i, args, kwargs)
            if i == 0:
                names = self._sites(tr, given)
                draws = {name: [] for name in names}
            for name in names:
                if name not in tr:
                    raise ValueError(f"Predictive: site {name!r} ran in the first draw but not in draw {i}; "
                                     "the model's sites must not depend on the draws")
                draws[name].append(to_tensor(tr[name]["value"]))
        out = {}
        for name, values in draws.items():
            shapes = {v.shape for v in values}
            if len(shapes) > 1:
                raise ValueError(f"Predictive: site {name!r} has different shapes in different draws: "
                                 f"{sorted(shapes)}")
            out[name] = T.stack(values)
        return out

    # ------------------------------------------------------------------ all draws at once
    def _vectorized(self, rng: np.random.Generator, args: tuple, kwargs: dict) -> dict[str, Tensor]:
        n = self.num_samples
        probe_rng = np.random.default_rng(0)  # shapes and plate depth only; leaves ``rng`` alone
        samples = self.posterior_samples
        depth = 0
        if self.guide is not None:
            guide_probe = _run(self.guide, probe_rng, args, kwargs, {}, self.params)
            depth = _plate_nesting(guide_probe)
            samples = {k: v[None] for k, v in _latent_values(guide_probe).items()}
        model_probe = _run(self.model, probe_rng, args, kwargs, {k: v[0] for k, v in samples.items()}, self.params)
        depth = max(depth, _plate_nesting(model_probe))
        names = self._sites(model_probe, set(samples))
        if self.guide is not None:
            guide_tr = _run(self.guide, rng, args, kwargs, {}, self.params, parallel=(n, depth))
            samples = {name: _unbatch(name, v, n, tuple(guide_probe[name]["value"].shape))
                       for name, v in _latent_values(guide_tr).items()}
        tr = _run(self.model, rng, args, kwargs, samples, self.params, parallel=(n, depth))
        return {name: _unbatch(name, tr[name]["value"], n, tuple(model_probe[name]["value"].shape))
                for name in names}

    def __call__(self, rng: Any = None, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        """Draw: ``rng`` (int, Generator or None), then the model's (and guide's) arguments."""
        rng = _check_rng(rng)
        with no_grad():
            out = self._vectorized(rng, args, kwargs) if self.parallel else self._loop(rng, args, kwargs)
        return {name: v.reshape(self.batch_shape + tuple(v.shape[1:])) for name, v in out.items()}


# ---------------------------------------------------------------------------- log likelihood
def _observed_log_probs(tr: Trace) -> dict[str, Tensor]:
    """Unscaled log densities of the observed sites, zero where masked (as NumPyro's masked distributions)."""
    out = {}
    for name, site in tr.items():
        if site["type"] == "sample" and site["is_observed"]:
            try:
                lp = site["fn"].log_prob(site["value"])
            except ValueError as e:
                raise ValueError(f"log_likelihood: site {name!r}: {e}") from e
            out[name] = scale_and_mask(lp, None, site["mask"])
    return out


def log_likelihood(model: Callable, posterior_samples: dict, *args: Any, parallel: bool = False,
                   batch_ndims: int = 1, **kwargs: Any) -> dict[str, Tensor]:
    """Per-draw log likelihood of each observed site: ``site name -> Tensor`` of shape
    ``batch_shape + site batch shape``, entry ``[s, i]`` being :math:`\\log p(y_i \\mid z^{(s)})`.

    The latent sites in ``posterior_samples`` are substituted; the log density is the distribution's own,
    without the scale of plate subsampling or ``scale`` handlers, and 0 where a ``mask`` hides an entry. Latent
    sites not in ``posterior_samples`` are drawn from the global generator. ``batch_ndims`` as in
    :class:`Predictive`; ``parallel=True`` evaluates all draws in one vectorized run.

    References: Vehtari, Gelman & Gabry, "Practical Bayesian model evaluation using leave-one-out
    cross-validation and WAIC", Statistics and Computing 27 (2017).
    """
    if not callable(model):
        raise TypeError(f"log_likelihood: model must be callable, got {type(model).__name__}")
    samples, batch_shape = _flatten_samples(posterior_samples, batch_ndims, "log_likelihood")
    if not samples:
        raise ValueError("log_likelihood: posterior_samples is empty")
    n = math.prod(batch_shape)
    rng = as_generator(None)
    with no_grad():
        if parallel:
            probe_tr = _run(model, np.random.default_rng(0), args, kwargs, {k: v[0] for k, v in samples.items()}, None)
            probe, depth = _observed_log_probs(probe_tr), _plate_nesting(probe_tr)
            batched = _observed_log_probs(_run(model, rng, args, kwargs, samples, None, parallel=(n, depth)))
            out = {name: _unbatch(name, lp, n, tuple(probe[name].shape)) for name, lp in batched.items()}
        else:
            per_draw = [_observed_log_probs(_run(model, rng, args, kwargs, {k: v[i] for k, v in samples.items()},
                                                 None)) for i in range(n)]
            out = {name: T.stack([d[name] for d in per_draw]) for name in per_draw[0]}
    return {name: v.reshape(batch_shape + tuple(v.shape[1:])) for name, v in out.items()}
