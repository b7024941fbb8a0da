"""MCMC results as an ArviZ ``InferenceData``, built by ArviZ's own converter (``arviz.from_dict``).

Groups: posterior (every latent and deterministic site), sample_stats (ArviZ's names: diverging, energy,
tree_depth, n_steps, step_size, acceptance_rate, lp = -potential energy), log_likelihood (pointwise, per
observed site, from :func:`probdl.infer.predictive.log_likelihood`), observed_data, and prior and
posterior_predictive when given.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..handlers import seed, substitute, trace
from ..tensor import Tensor, no_grad

__all__ = ["to_inference_data"]

_STAT_NAMES = {"diverging": "diverging", "energy": "energy", "tree_depth": "tree_depth", "num_steps": "n_steps",
               "step_size": "step_size", "accept_prob": "acceptance_rate"}


def _numpy(v: Any) -> np.ndarray:
    return np.asarray(v.numpy() if isinstance(v, Tensor) else v)


def _as_chains(draws: dict[str, Any], num_chains: int, num_draws: int, group: str,
               single_chain: bool = False) -> dict[str, np.ndarray]:
    """Draws given as (S, ...) become (chains, draws, ...): (1, S, ...) for a prior (``single_chain``), or the
    MCMC's (chains, draws, ...) when S = chains · draws; arrays already in that shape pass through."""
    out = {}
    for name, v in draws.items():
        a = _numpy(v)
        if single_chain:
            out[name] = a[None]
        elif a.shape[:2] == (num_chains, num_draws):
            out[name] = a
        elif a.shape[:1] == (num_chains * num_draws,):
            out[name] = a.reshape((num_chains, num_draws) + a.shape[1:])
        else:
            raise ValueError(f"to_inference_data: {group} site {name!r} has shape {a.shape}; expected "
                             f"({num_chains * num_draws}, ...) or ({num_chains}, {num_draws}, ...)")
    return out


def _observed_data(model: Any, samples: dict[str, np.ndarray], args: tuple, kwargs: dict) -> dict[str, np.ndarray]:
    """The values of the model's observed sites, from one run with the first draw of the latent sites substituted."""
    with no_grad():
        prototype = trace(seed(model, rng_seed=0)).get_trace(*args, **kwargs)
        latent = {k: v[0, 0] for k, v in samples.items() if k in prototype and prototype[k]["type"] == "sample"}
        tr = trace(seed(substitute(model, data=latent), rng_seed=0)).get_trace(*args, **kwargs)
    return {name: _numpy(site["value"]) for name, site in tr.items()
            if site["type"] == "sample" and site["is_observed"]}


def to_inference_data(mcmc: Any, prior: dict | None = None, posterior_predictive: dict | None = None,
                      log_likelihood: bool = True, coords: dict | None = None, dims: dict | None = None) -> Any:
    """An ArviZ ``InferenceData`` of an MCMC run (see the module docstring).

    Args:
        mcmc: a finished :class:`probdl.infer.MCMC`.
        prior: draws from the prior (e.g. ``Predictive(model, num_samples=S)(rng, *args)``), shaped (S, ...).
        posterior_predictive: draws shaped (chains · draws, ...) (``Predictive(model, mcmc.get_samples())``) or
            (chains, draws, ...).
        log_likelihood: add the pointwise log likelihood of each observed site (needed by ``az.loo``/``az.waic``).
        coords, dims: ArviZ's coordinates and dimension names, passed to ``arviz.from_dict``.
    """
    import arviz as az

    from .predictive import log_likelihood as pointwise_log_likelihood

    samples = mcmc.get_samples(group_by_chain=True)
    num_chains, num_draws = next(iter(samples.values())).shape[:2]
    fields = mcmc.get_extra_fields(group_by_chain=True)
    stats = {_STAT_NAMES[k]: v for k, v in fields.items() if k in _STAT_NAMES}
    if "potential_energy" in fields:
        stats["lp"] = -fields["potential_energy"]
    model, args, kwargs = mcmc.model, tuple(mcmc.model_args), dict(mcmc.model_kwargs)
    groups: dict[str, Any] = {"posterior": samples, "sample_stats": stats}
    if model is not None:
        if log_likelihood:
            ll = pointwise_log_likelihood(model, samples, *args, batch_ndims=2, **kwargs)
            groups["log_likelihood"] = {k: _numpy(v) for k, v in ll.items()}
        groups["observed_data"] = _observed_data(model, samples, args, kwargs)
    if prior is not None:
        groups["prior"] = _as_chains(prior, 1, 0, "prior", single_chain=True)
    if posterior_predictive is not None:
        groups["posterior_predictive"] = _as_chains(posterior_predictive, num_chains, num_draws,
                                                    "posterior_predictive")
    return az.from_dict(coords=coords, dims=dims, **groups)
