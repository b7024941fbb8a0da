r"""Evidence lower bounds: the objectives that SVI maximizes (it minimizes their negatives, the losses).

For a model :math:`p(x, z)` and a guide :math:`q_\phi(z)`,

.. math::
    \mathrm{ELBO}(\phi) = \mathbb{E}_{q_\phi(z)}\big[\log p(x, z) - \log q_\phi(z)\big] \le \log p(x).

One *particle* runs the guide (recording its trace), then runs the model with the guide's draws
replayed into its latent sites, and adds up the scaled and masked log densities of both traces
(``Trace.compute_log_prob``: plate subsampling and the ``scale``/``mask`` handlers are applied there).
Particles are averaged, either in a Python loop or, with ``vectorize_particles=True``, in one run of
model and guide inside an extra outermost plate.

Each ELBO has ``loss(model, guide, *args, **kwargs) -> float`` (the negative ELBO, no gradients) and
``differentiable_loss(...) -> Tensor`` (the same value, whose gradient is an unbiased estimate of the
gradient of the negative ELBO). Reparameterized guide sites (``fn.has_rsample``) are differentiated
through their draws (pathwise estimator); for the others the loss carries the score-function term

.. math::
    \big(\log q(z) - \overline{\log q(z)}\big)\,\big(\overline{r} - b\big),

whose value is 0 and whose gradient is :math:`\nabla \log q(z)\,(r - b)`. Here the bar stops
gradients; :math:`r` is the particle's :math:`\log p - \log q`, Rao-Blackwellized over plates (a
term inside a plate that the site also belongs to counts only at the site's own index, since the
plate declares the other indices conditionally independent of it), and :math:`b` an optional
decaying-average baseline (``baseline_beta``), which lowers the variance without bias because it
depends only on earlier steps.

References:
    Williams, "Simple statistical gradient-following algorithms for connectionist reinforcement
    learning", Machine Learning 8, 1992 (the score-function estimator).
    Ranganath, Gerrish & Blei, "Black Box Variational Inference", AISTATS 2014 (ELBO gradients by the
    score function, Rao-Blackwellization and baselines).
    Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (the pathwise estimator).
    Li & Turner, "Rényi Divergence Variational Inference", NeurIPS 2016 (RenyiELBO).
    Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016 (RenyiELBO at alpha=0).
    Schulman, Heess, Weber & Abbeel, "Gradient Estimation Using Stochastic Computation Graphs", NeurIPS 2015.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .. import tensor as T
from ..distributions.combinators import ExpandedDistribution, Independent
from ..distributions.delta import Delta, Unit
from ..distributions.distribution import Distribution
from ..distributions.kl import kl_divergence
from ..handlers import Trace, replay, scale_and_mask, trace
from ..primitives import Message, plate
from ..tensor import Tensor, no_grad
from ..tensor.ops.base import to_tensor

__all__ = ["ELBO", "Trace_ELBO", "TraceMeanField_ELBO", "RenyiELBO", "get_importance_trace"]

PARTICLE_PLATE = "_num_particles_vectorized"

Frames = frozenset[tuple[str, int]]  # a site's enclosing plates, as (name, dim) pairs


# ---------------------------------------------------------------------------- running model against guide
def get_importance_trace(model: Callable, guide: Callable, args: tuple, kwargs: dict) -> tuple[Trace, Trace]:
    """Run ``guide``, then ``model`` with the guide's latent draws and plate subsamples replayed into it (``trace``
    records a subsampling plate's draw as a site of type "plate", which ``replay`` gives back).

    Returns ``(model_trace, guide_trace)``, checked against each other (every latent site of the model
    is sampled by the guide, no site the guide samples is observed in the model); log densities are not
    yet computed.
    """
    guide_trace = trace(guide).get_trace(*args, **kwargs)
    _check_guide(guide_trace)
    model_trace = trace(replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    _check_traces(model_trace, guide_trace)
    return model_trace, guide_trace


def _is_latent(site: Message) -> bool:
    return site["type"] == "sample" and not site["is_observed"] and not site["infer"].get("_do_not_score")


def _check_guide(guide_trace: Trace) -> None:
    for name, site in guide_trace.items():
        if site["type"] == "sample" and site["is_observed"] and not isinstance(site["fn"], Unit):
            raise ValueError(f"site {name!r} is observed in the guide; a guide samples the model's latent variables "
                             "only (observe data in the model; factor statements are allowed)")


def _check_traces(model_trace: Trace, guide_trace: Trace) -> None:
    for name, site in guide_trace.items():
        if site["type"] != "sample":
            continue
        model_site = model_trace.get(name)
        if model_site is None:
            if not site["is_observed"] and not site["infer"].get("is_auxiliary"):
                warnings.warn(f"site {name!r} of the guide is not in the model; mark it "
                              "infer={'is_auxiliary': True} if that is intended", UserWarning, stacklevel=4)
        elif model_site["type"] == "sample" and model_site["is_observed"] and not site["is_observed"]:
            raise ValueError(f"site {name!r} is sampled by the guide but observed in the model; the guide must not "
                             "sample observed sites")
    for name, site in model_trace.items():
        if _is_latent(site) and (name not in guide_trace or guide_trace[name]["type"] != "sample"):
            raise ValueError(f"site {name!r} of the model is not in the guide: every latent sample site of the model "
                             "needs a sample site of the same name in the guide (or observe it with obs=/condition)")


def _frames(site: Message) -> Frames:
    return frozenset((f.name, f.dim) for f in site["cond_indep_stack"])


def _max_plate_nesting(model_trace: Trace, guide_trace: Trace) -> int:
    """How many batch dims the sites use: the deepest plate dim, or the most dims left of a value's event."""
    nesting = 0
    for tr in (model_trace, guide_trace):
        for site in tr.values():
            if site["type"] == "sample":
                nesting = max(nesting, len(_log_prob_shape(site)), *(-f.dim for f in site["cond_indep_stack"]))
    return nesting


def _in_particle_plate(fn: Callable, num_particles: int, dim: int) -> Callable:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with plate(PARTICLE_PLATE, num_particles, dim=dim):
            return fn(*args, **kwargs)
    return wrapped


# ---------------------------------------------------------------------------- terms of one particle
def _sum_to(value: Tensor, frames: Frames, target: Frames) -> Tensor:
    """Sum ``value`` (a site's log density, batch-shaped) over every dim except those of the plates it shares
    with ``target``, keeping dims so that the result broadcasts against the target site's batch shape."""
    keep = {dim for _, dim in frames & target}
    axes = tuple(a for a in range(value.ndim) if a - value.ndim not in keep)
    return value.sum(axis=axes, keepdims=True) if axes else value


def _log_prob_shape(site: Message) -> tuple[int, ...]:
    value = site["value"]
    return tuple(value.shape[:value.ndim - len(site["fn"].event_shape)])


def _peel(d: Distribution) -> tuple[Distribution, int]:
    """The distribution under its Independent/ExpandedDistribution wrappers, and how many batch dims the
    Independents reinterpreted as event dims."""
    n = 0
    while True:
        if isinstance(d, Independent):
            n, d = n + d.reinterpreted_batch_ndims, d.base_dist
        elif isinstance(d, ExpandedDistribution):
            d = d.base_dist
        else:
            return d, n


def _closed_form_kl(q: Distribution, p: Distribution) -> Tensor | None:
    """KL(q ‖ p) with the batch shape of q and p broadcast, by the registry, looking through the
    ``expand``/``to_event`` wrappers that plates and ``to_event`` put around the families; None when no
    closed form is registered, or when q is a point mass.

    A point mass is left to the Monte Carlo term, which is exact for it and keeps ``Delta.log_density``
    (the flat autoguides put the joint density and log-Jacobian of their draw there); the registered
    KL(Delta ‖ p) = -log p(v) has no such term.
    """
    if isinstance(_peel(q)[0], Delta):
        return None
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        pass
    (bq, nq), (bp, np_) = _peel(q), _peel(p)
    if (bq is q and bp is p) or nq != np_ or bq.event_shape != bp.event_shape:
        return None
    try:
        kl = kl_divergence(bq, bp)
    except NotImplementedError:
        return None
    shapes = [d.batch_shape + d.event_shape for d in (q, p)]
    cut = [len(s) - len(bq.event_shape) for s in shapes]
    try:
        elementwise = np.broadcast_shapes(shapes[0][:cut[0]], shapes[1][:cut[1]])
        kl = T.broadcast_to(kl, elementwise)
    except ValueError:
        return None
    return kl.sum(tuple(range(-nq, 0))) if nq else kl


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a = a.data if isinstance(a, Tensor) else a
    b = b.data if isinstance(b, Tensor) else b
    return a is b or bool(np.array_equal(np.asarray(a), np.asarray(b)))


def _analytic_kl_terms(model_trace: Trace, guide_trace: Trace) -> dict[str, Tensor]:
    """For each latent site where the model and the guide have the same scale and mask and a closed-form
    KL(q ‖ p) of the site's log-density shape is registered: that KL, scaled and masked."""
    out = {}
    for name, model_site in model_trace.items():
        if not _is_latent(model_site):
            continue
        guide_site = guide_trace[name]
        if not (_same(model_site["scale"], guide_site["scale"]) and _same(model_site["mask"], guide_site["mask"])):
            continue
        if model_site["kwargs"].get("sample_shape") or guide_site["kwargs"].get("sample_shape"):
            continue
        kl = _closed_form_kl(guide_site["fn"], model_site["fn"])
        if kl is None or kl.shape != _log_prob_shape(guide_site) or kl.shape != _log_prob_shape(model_site):
            continue
        out[name] = scale_and_mask(kl, guide_site["scale"], guide_site["mask"])
    return out


def _particle_terms(model_trace: Trace, guide_trace: Trace,
                    analytic_kl: dict[str, Tensor]) -> list[tuple[Tensor, Frames]]:
    r"""The particle's :math:`\log p - \log q` as (batch-shaped term, its plates) pairs; a site in
    ``analytic_kl`` contributes :math:`-\mathrm{KL}(q \| p)` instead of its two log densities."""
    model_trace.compute_log_prob(lambda name, site: name not in analytic_kl)
    guide_trace.compute_log_prob(lambda name, site: name not in analytic_kl or not site["fn"].has_rsample)
    terms = []
    for name, site in model_trace.items():
        if name in analytic_kl:
            terms.append((-analytic_kl[name], _frames(guide_trace[name])))
        elif "log_prob" in site:
            terms.append((site["log_prob"], _frames(site)))
    for name, site in guide_trace.items():
        if "log_prob" in site and name not in analytic_kl:
            terms.append((-site["log_prob"], _frames(site)))
    return terms


def _total(terms: list[Tensor]) -> Tensor:
    total = terms[0] if terms else to_tensor(0.0)
    for t in terms[1:]:
        total = total + t
    return total


def _nonreparam_sites(guide_trace: Trace) -> list[tuple[str, Message]]:
    return [(name, site) for name, site in guide_trace.items()
            if site["type"] == "sample" and not site["is_observed"] and not site["fn"].has_rsample]


def _check_positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------- the ELBOs
class ELBO:
    """The base of the ELBOs: particles, vectorized or not, and the two loss methods.

    Args:
        num_particles: how many particles (samples from the guide) to average per estimate.
        vectorize_particles: run all particles at once, in a plate named ``"_num_particles_vectorized"``
            at dim ``-(max_plate_nesting + 1)``; the model and guide must then broadcast over that dim
            (declare every batch dim with a plate, index from the right). Otherwise, a Python loop.
        max_plate_nesting: how many batch dims the model and guide use; found by one trial run of guide and
            model (cached per model and guide) when None and needed.
    """

    def __init__(self, num_particles: int = 1, vectorize_particles: bool = False,
                 max_plate_nesting: int | None = None) -> None:
        name = type(self).__name__
        self.num_particles = _check_positive_int(name, "num_particles", num_particles)
        self.vectorize_particles = bool(vectorize_particles)
        if max_plate_nesting is not None and (isinstance(max_plate_nesting, bool) or not isinstance(
                max_plate_nesting, (int, np.integer)) or max_plate_nesting < 0):
            raise ValueError(f"{name}: max_plate_nesting must be a non-negative int or None, got "
                             f"{max_plate_nesting!r}")
        self.max_plate_nesting = max_plate_nesting
        self._nesting_cache: dict[tuple[Callable, Callable], int] = {}

    def loss(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any) -> float:
        """An estimate of the negative ELBO, as a float (no gradients recorded)."""
        with no_grad():
            return float(self._loss(model, guide, args, kwargs, surrogate=False).item())

    def differentiable_loss(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any) -> Tensor:
        """The same estimate as a scalar Tensor whose gradient is an unbiased estimate of the loss's gradient."""
        return self._loss(model, guide, args, kwargs, surrogate=True)

    def __call__(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any) -> Tensor:
        return self.differentiable_loss(model, guide, *args, **kwargs)

    def _loss(self, model: Callable, guide: Callable, args: tuple, kwargs: dict, surrogate: bool) -> Tensor:
        raise NotImplementedError  # each ELBO defines it

    # -- particles
    def _particle_dim(self, model: Callable, guide: Callable, args: tuple, kwargs: dict) -> int:
        if self.max_plate_nesting is not None:
            return -(self.max_plate_nesting + 1)
        key = (model, guide)
        if key not in self._nesting_cache:
            with no_grad():
                model_trace, guide_trace = get_importance_trace(model, guide, args, kwargs)
            self._nesting_cache[key] = _max_plate_nesting(model_trace, guide_trace)
        return -(self._nesting_cache[key] + 1)

    def _traces(self, model: Callable, guide: Callable, args: tuple,
                kwargs: dict) -> Iterator[tuple[Trace, Trace, int | None]]:
        """``(model_trace, guide_trace, particle_dim)`` per run: ``num_particles`` runs with dim None, or one
        vectorized run whose sites carry the particles at batch dim ``particle_dim``."""
        for fn, what in ((model, "model"), (guide, "guide")):
            if not callable(fn):
                raise TypeError(f"{type(self).__name__}: the {what} must be callable, got {type(fn).__name__}")
        if self.vectorize_particles:
            dim = self._particle_dim(model, guide, args, kwargs)
            k = self.num_particles
            model_trace, guide_trace = get_importance_trace(_in_particle_plate(model, k, dim),
                                                            _in_particle_plate(guide, k, dim), args, kwargs)
            for tr, what in ((model_trace, "model"), (guide_trace, "guide")):
                self._check_particle_broadcast(tr, what, dim)
            yield model_trace, guide_trace, dim
        else:
            for _ in range(self.num_particles):
                model_trace, guide_trace = get_importance_trace(model, guide, args, kwargs)
                yield model_trace, guide_trace, None

    def _check_particle_broadcast(self, tr: Trace, what: str, dim: int) -> None:
        """A site whose batch shape reaches left of the particle plate did not broadcast over the particles
        (e.g. ``x @ w`` where ``(x * w).sum(-1)`` was meant): its log density would be summed over a
        particles-by-particles block, silently overcounting it."""
        for name, site in tr.items():
            if site["type"] == "sample":
                shape = np.broadcast_shapes(_log_prob_shape(site), site["fn"].batch_shape)
                if len(shape) > -dim:
                    raise ValueError(
                        f"{type(self).__name__}: {what} site {name!r} has batch shape {shape}, with dims left of the "
                        f"particle plate at dim {dim} (vectorize_particles=True): the {what} must broadcast over a "
                        "leading particle dim (index from the right, e.g. x[..., i] and (x * w).sum(-1) rather than "
                        "x @ w), or set max_plate_nesting to the number of plates it uses")


class Trace_ELBO(ELBO):
    r"""The ELBO estimated by Monte Carlo, :math:`\frac1K \sum_k \log p(x, z_k) - \log q(z_k)`, with
    :math:`z_k \sim q`; reparameterized sites give pathwise gradients, the others score-function ones.

    Args:
        num_particles, vectorize_particles, max_plate_nesting: as in :class:`ELBO`.
        baseline_beta: None (the default, as Pyro's Trace_ELBO) for no baseline; a value in [0, 1) keeps,
            for each non-reparameterized site, a decaying average :math:`b \leftarrow \beta b + (1-\beta) r`
            of its rewards (elementwise while the reward keeps its shape, e.g. one per data point of a plate)
            and subtracts it from the reward (Ranganath et al. 2014). Since :math:`b` depends only on earlier
            steps, the gradient stays unbiased; the loss value is unchanged.

    References:
        Williams 1992; Ranganath, Gerrish & Blei, AISTATS 2014; Kingma & Welling, ICLR 2014.
    """

    def __init__(self, num_particles: int = 1, vectorize_particles: bool = False,
                 max_plate_nesting: int | None = None, baseline_beta: float | None = None) -> None:
        super().__init__(num_particles, vectorize_particles, max_plate_nesting)
        if baseline_beta is not None and not (isinstance(baseline_beta, (int, float)) and 0 <= baseline_beta < 1):
            raise ValueError(f"{type(self).__name__}: baseline_beta must be None or in [0, 1), got {baseline_beta!r}")
        self.baseline_beta = baseline_beta
        self._baselines: dict[str, Any] = {}

    def _analytic_kl(self, model_trace: Trace, guide_trace: Trace) -> dict[str, Tensor]:
        return {}

    def _loss(self, model: Callable, guide: Callable, args: tuple, kwargs: dict, surrogate: bool) -> Tensor:
        total = None
        for model_trace, guide_trace, _ in self._traces(model, guide, args, kwargs):
            terms = _particle_terms(model_trace, guide_trace, self._analytic_kl(model_trace, guide_trace))
            elbo = _total([t.sum() for t, _ in terms])
            if surrogate:
                elbo = elbo + self._score_function_terms(guide_trace, terms)
            total = elbo if total is None else total + elbo
        return -total / self.num_particles

    def _score_function_terms(self, guide_trace: Trace, terms: list[tuple[Tensor, Frames]]) -> Tensor:
        """Σ over non-reparameterized guide sites of (log q - stop(log q)) · stop(reward - baseline): zero in
        value, the score-function gradient in derivative."""
        out = []
        for name, site in _nonreparam_sites(guide_trace):
            target = _frames(site)
            with no_grad():
                reward = _total([_sum_to(t.detach(), frames, target) for t, frames in terms]).data
            advantage = reward - self._baseline(name, reward)
            log_q = scale_and_mask(site["unscaled_log_prob"], None, site["mask"])  # the scale is in the reward
            out.append(((log_q - log_q.detach()) * Tensor._wrap(advantage)).sum())
        return _total(out)

    def _baseline(self, name: str, reward: Any) -> Any:
        """The decaying-average baseline of site ``name`` before this reward, then updated with it."""
        beta = self.baseline_beta
        if beta is None:
            return 0.0
        old = self._baselines.get(name)
        if old is None or np.shape(old) != reward.shape:
            self._baselines[name] = reward.copy()
            return 0.0 if old is None else float(np.mean(old))
        self._baselines[name] = beta * old + (1 - beta) * reward
        return old


class TraceMeanField_ELBO(Trace_ELBO):
    r"""Trace_ELBO with :math:`\mathrm{KL}(q(z) \| p(z \mid \cdot))` in closed form for each latent site whose
    pair of distributions has a registered KL (``kl_divergence``, looking through ``expand`` and ``to_event``)
    and the same scale and mask in model and guide; other sites use the Monte Carlo term.

    The closed form replaces :math:`\log p(z) - \log q(z)` by its expectation over the site's own draw given
    the other draws. That keeps the estimate's expectation (and loses the variance of the term) unless the
    guide draws a latent on which the model's distribution of the site depends *after* the site and
    conditionally on it; a mean-field guide, as the name says, never does.
    Non-reparameterized sites still get score-function gradients, whose reward is this particle's estimate.

    References:
        Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (the KL term in closed form).
    """

    def _analytic_kl(self, model_trace: Trace, guide_trace: Trace) -> dict[str, Tensor]:
        return _analytic_kl_terms(model_trace, guide_trace)


class RenyiELBO(ELBO):
    r"""The variational Rényi bound of order :math:`\alpha \ne 1`,

    .. math::
        \mathcal L_\alpha = \frac{1}{1-\alpha} \log \frac1K \sum_{k=1}^K
            \Big(\frac{p(x, z_k)}{q(z_k)}\Big)^{1-\alpha}, \qquad z_k \sim q,

    whose loss is :math:`-\mathcal L_\alpha`. :math:`\alpha = 0` gives the importance-weighted bound (IWAE),
    which tightens towards :math:`\log p(x)` as K grows; :math:`\alpha \to 1` would be the ELBO (use
    :class:`Trace_ELBO`). Every latent site of the guide must be reparameterizable. With plate subsampling
    the scaled log weights are used as they are (the bound is then not an unbiased estimate).

    Args:
        alpha: the order, any real number but 1.
        num_particles: K >= 1 (the bound differs from the ELBO only for K > 1).
        vectorize_particles, max_plate_nesting: as in :class:`ELBO`.

    References:
        Li & Turner, "Rényi Divergence Variational Inference", NeurIPS 2016.
        Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
    """

    def __init__(self, alpha: float = 0.0, num_particles: int = 2, vectorize_particles: bool = False,
                 max_plate_nesting: int | None = None) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not math.isfinite(alpha):
            raise ValueError(f"RenyiELBO: alpha must be a finite real number, got {alpha!r}")
        if alpha == 1:
            raise ValueError("RenyiELBO: alpha=1 is the ordinary ELBO, where this bound's 1/(1-alpha) is undefined; "
                             "use Trace_ELBO instead")
        super().__init__(num_particles, vectorize_particles, max_plate_nesting)
        self.alpha = float(alpha)

    def _log_weights(self, model: Callable, guide: Callable, args: tuple, kwargs: dict) -> Tensor:
        """log p(x, z_k) - log q(z_k) for each particle, shape (K,)."""
        weights = []
        for model_trace, guide_trace, dim in self._traces(model, guide, args, kwargs):
            for name, site in _nonreparam_sites(guide_trace):
                raise ValueError(f"RenyiELBO: guide site {name!r} ({type(site['fn']).__name__}) is not "
                                 "reparameterizable; RenyiELBO supports reparameterized latents only (use Trace_ELBO)")
            terms = _particle_terms(model_trace, guide_trace, {})
            if dim is None:
                weights.append(_total([t.sum() for t, _ in terms]).reshape((1,)))
            else:
                per = []
                for t, _ in terms:
                    axes = tuple(a for a in range(t.ndim) if a != t.ndim + dim)
                    per.append(t.sum(axis=axes) if axes else t)
                weights.append(_total(per).reshape((self.num_particles,)))
        return weights[0] if len(weights) == 1 else T.concatenate(weights)

    def _loss(self, model: Callable, guide: Callable, args: tuple, kwargs: dict, surrogate: bool) -> Tensor:
        log_w = self._log_weights(model, guide, args, kwargs)
        beta = 1.0 - self.alpha
        bound = (T.logsumexp(beta * log_w, axis=0) - math.log(self.num_particles)) / beta
        return -bound
