"""Effect handlers: small Messengers that record, replace, rescale or hide the messages a model sends.

Each handler is a class with ``process_message`` (on the way in, innermost handler first) and/or
``postprocess_message`` (on the way out); each works as a context manager (``with trace() as tr:``)
and as a function wrapper (``trace(model).get_trace(*args)``, ``seed(model, 0)(*args)``).

Handlers: trace, replay, condition, substitute, seed, block, scale, mask, do, scope, lift,
infer_config, and plate (from ``probdl.primitives``).

References: Pyro's poutine (Bingham et al. 2019); NumPyro's handlers (Phan et al. 2019).
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from . import tensor as T
from .backend import as_generator
from .distributions.distribution import Distribution
from .primitives import Message, Messenger, _check_value_shape, get_param_store, plate
from .tensor import Tensor
from .tensor.ops.base import to_tensor

__all__ = ["Trace", "trace", "replay", "condition", "substitute", "seed", "block", "scale", "mask", "do", "scope",
           "lift", "infer_config", "plate"]


# ---------------------------------------------------------------------------- trace
class Trace(OrderedDict):
    """The sites of one run, by name, in execution order; each a finished :class:`~probdl.primitives.Message`."""

    def compute_log_prob(self, site_filter: Callable[[str, Message], bool] = lambda name, site: True) -> Trace:
        """Add ``log_prob`` (scaled and masked, shape batch_shape) to every sample site, once."""
        for name, site in self.items():
            if site["type"] != "sample" or "log_prob" in site or not site_filter(name, site) \
                    or site["infer"].get("_do_not_score"):
                continue
            try:
                lp = site["fn"].log_prob(site["value"])
                site["log_prob"] = scale_and_mask(lp, site["scale"], site["mask"])
            except ValueError as e:
                raise ValueError(f"site {name!r}: {e}") from e
            site["unscaled_log_prob"] = lp
            site["log_prob_sum"] = site["log_prob"].sum()
        return self

    def log_prob_sum(self, site_filter: Callable[[str, Message], bool] = lambda name, site: True) -> Tensor:
        """Σ over the sample sites that ``site_filter`` keeps of their scaled, masked log densities: log p(all
        values) by default. Sites under ``do`` are not scored."""
        self.compute_log_prob(site_filter)
        terms = [site["log_prob_sum"] for name, site in self.items() if "log_prob_sum" in site
                 and site_filter(name, site)]
        total = terms[0] if terms else to_tensor(0.0)
        for t in terms[1:]:
            total = total + t
        return total

    @property
    def stochastic_nodes(self) -> list[str]:
        return [n for n, s in self.items() if s["type"] == "sample" and not s["is_observed"]]

    @property
    def observation_nodes(self) -> list[str]:
        return [n for n, s in self.items() if s["type"] == "sample" and s["is_observed"]]

    @property
    def param_nodes(self) -> list[str]:
        return [n for n, s in self.items() if s["type"] == "param"]

    def format_shapes(self) -> str:
        """A table of every site's batch and event shapes (and log_prob shape once computed)."""
        rows = [("site", "kind", "batch_shape", "event_shape", "value", "log_prob")]
        for name, site in self.items():
            value = site.get("value")
            vshape = str(tuple(value.shape)) if isinstance(value, Tensor) else "-"
            if site["type"] == "sample":
                fn = site["fn"]
                kind = "observed" if site["is_observed"] else "latent"
                lp = str(tuple(site["log_prob"].shape)) if "log_prob" in site else "-"
                rows.append((name, kind, str(fn.batch_shape), str(fn.event_shape), vshape, lp))
            else:
                rows.append((name, site["type"], "-", "-", vshape, "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def scale_and_mask(log_prob: Tensor, scale: Any, mask: Any) -> Tensor:
    """log_prob · scale, set to 0 where mask is False (and not NaN there, whatever log_prob is).

    The mask must broadcast to ``log_prob``'s shape without enlarging it: a bigger mask would count one
    density several times.
    """
    if mask is not None:
        m = mask.data if isinstance(mask, Tensor) else mask
        if np.broadcast_shapes(np.shape(m), log_prob.shape) != log_prob.shape:
            raise ValueError(f"mask of shape {np.shape(m)} does not broadcast to the log density's shape "
                             f"{log_prob.shape} (a site's batch shape)")
        log_prob = T.where(m, log_prob, 0.0)
    if scale is not None:
        log_prob = log_prob * scale
    return log_prob


class trace(Messenger):
    """Record every site of a run: ``with trace() as tr: model()`` or ``trace(model).get_trace(*args)``.

    Sample, param and deterministic sites are recorded once each (a name used twice is an error); a plate's
    subsample draw is recorded as a site of type ``"plate"`` (under the plate's name; a plate statement that
    runs again overwrites it), so that ``replay`` can hand the same subsample to another program.
    """

    def __enter__(self) -> Trace:  # type: ignore[override]
        super().__enter__()
        self.trace = Trace()
        return self.trace

    def postprocess_message(self, msg: Message) -> None:
        if msg["type"] == "control":
            return
        name = msg["name"]
        if name in self.trace and not (msg["type"] == "plate" and self.trace[name]["type"] == "plate"):
            raise ValueError(f"site name {name!r} is used twice in one run of the model; names must be unique "
                             "(use scope() or distinct names in loops)")
        self.trace[name] = msg.copy()

    def get_trace(self, *args: Any, **kwargs: Any) -> Trace:
        """Run the wrapped model on ``args`` and return its trace."""
        if self.fn is None:
            raise TypeError("trace.get_trace: this trace wraps no function; use trace(model).get_trace(...)")
        with self as tr:
            self.fn(*args, **kwargs)
        return tr


# ---------------------------------------------------------------------------- values from elsewhere
class _ValueHandler(Messenger):
    """Shared by condition and substitute: give named sites values, and warn about names never seen."""

    def __init__(self, fn: Callable | None = None, data: dict | None = None,
                 substitute_fn: Callable | None = None) -> None:
        super().__init__(fn)
        if data is not None and not isinstance(data, dict):
            raise TypeError(f"{type(self).__name__}: data must be a dict of site name -> value, got "
                            f"{type(data).__name__}")
        if substitute_fn is not None and not callable(substitute_fn):
            raise TypeError(f"{type(self).__name__}: substitute_fn must be callable, got "
                            f"{type(substitute_fn).__name__}")
        self.data, self.substitute_fn = data or {}, substitute_fn

    def __enter__(self) -> Messenger:
        self._seen: set[str] = set()
        self._observed: set[str] = set()  # names in data that only matched observed sites (left alone)
        return super().__enter__()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        super().__exit__(exc_type, exc, tb)
        if exc_type is not None:
            return
        ignored = sorted((self._observed & set(self.data)) - self._seen)
        if ignored:
            warnings.warn(f"{type(self).__name__}: {', '.join(map(repr, ignored))} already observed in the model "
                          "(obs=); the given value was not used", UserWarning, stacklevel=2)
        unused = sorted(set(self.data) - self._seen - self._observed)
        if unused:
            warnings.warn(f"{type(self).__name__}: no site named {', '.join(map(repr, unused))} was seen in the model "
                          f"(a typo, or a site that did not run?)", UserWarning, stacklevel=2)

    def _value_for(self, msg: Message) -> Any:
        name = msg["name"]
        if name in self.data:
            self._seen.add(name)
            return to_tensor(self.data[name])
        if self.substitute_fn is not None:
            return self.substitute_fn(msg)
        return None


class condition(_ValueHandler):
    """Fix sample sites to data: ``condition(model, data={"x": x})``. Conditioned sites count as observed."""

    def process_message(self, msg: Message) -> None:
        if msg["type"] != "sample":
            return
        if msg["is_observed"]:
            self._observed.add(msg["name"])
            return
        value = self._value_for(msg)
        if value is not None:
            _check_value_shape(msg, value)
            msg["value"], msg["is_observed"] = value, True


class substitute(_ValueHandler):
    """Replace the values of param sites (and of sample sites) by ``data`` or ``substitute_fn(msg)``; unlike
    condition, substituted sample sites stay latent."""

    def process_message(self, msg: Message) -> None:
        if msg["type"] not in ("sample", "param"):
            return
        if msg["is_observed"]:
            self._observed.add(msg["name"])
            return
        value = self._value_for(msg)
        if value is not None:
            msg["value"] = value


class replay(Messenger):
    """Give latent sample sites the values recorded in ``trace`` (a guide's, say), by name."""

    def __init__(self, fn: Callable | None = None, trace: Trace | None = None) -> None:
        super().__init__(fn)
        if not isinstance(trace, dict):
            raise TypeError(f"replay needs a trace (a Trace from the trace handler), got {type(trace).__name__}")
        self.trace = trace

    def process_message(self, msg: Message) -> None:
        if msg["type"] not in ("sample", "plate") or msg.get("is_observed"):
            return
        site = self.trace.get(msg["name"])
        if site is None:
            return
        if site["type"] != msg["type"]:
            raise RuntimeError(f"replay: site {msg['name']!r} is a {msg['type']} site here but a {site['type']} site "
                               "in the replayed trace")
        if msg["type"] == "sample" and site["is_observed"]:
            raise RuntimeError(f"replay: site {msg['name']!r} is latent here but observed in the replayed trace")
        msg["value"] = site["value"]


class do(Messenger):
    """Intervene (Pearl's do-operator): sample sites named in ``data`` take those values instead of a draw,
    and their densities are left out of the joint (``infer["_do_not_score"]``), so downstream sites see a
    value that no longer depends on their parents."""

    def __init__(self, fn: Callable | None = None, data: dict | None = None) -> None:
        super().__init__(fn)
        if not isinstance(data, dict):
            raise TypeError(f"do needs data, a dict of site name -> value, got {type(data).__name__}")
        self.data = data

    def process_message(self, msg: Message) -> None:
        if msg["type"] != "sample" or msg["name"] not in self.data:
            return
        if msg["is_observed"]:
            raise ValueError(f"do: site {msg['name']!r} is observed; intervene on latent sites only")
        msg["value"] = to_tensor(self.data[msg["name"]])
        msg["infer"]["_do_not_score"] = True


# ---------------------------------------------------------------------------- randomness
class seed(Messenger):
    """Draw with a generator owned by this handler: ``seed(model, 0)`` is reproducible, and leaves the global
    generator alone. ``rng_seed`` is an int, a SeedSequence or a numpy Generator.

    With an int or a SeedSequence, each entry (each call of the wrapped model) starts a fresh generator, so
    every call draws the same values, as Pyro's seed does; a Generator is used as given and advances from
    call to call. Sites hidden by an inner ``block`` still draw from this generator. An inner ``seed``
    takes precedence for the sites inside it.
    """

    sees_blocked = True

    def __init__(self, fn: Callable | None = None, rng_seed: Any = None) -> None:
        super().__init__(fn)
        ok = isinstance(rng_seed, (np.random.Generator, np.random.SeedSequence)) or (
            isinstance(rng_seed, (int, np.integer)) and not isinstance(rng_seed, bool))
        if not ok:
            raise TypeError(f"seed needs rng_seed, an int, a numpy SeedSequence or a numpy Generator; got {rng_seed!r}")
        self.rng_seed = rng_seed

    def __enter__(self) -> Messenger:
        if isinstance(self.rng_seed, np.random.SeedSequence):
            self.rng = np.random.default_rng(self.rng_seed)
        else:
            self.rng = as_generator(self.rng_seed)  # a Generator is used as given; a seed makes a fresh one
        return super().__enter__()

    def process_message(self, msg: Message) -> None:
        if msg["type"] in ("sample", "plate") and msg["value"] is None and msg["kwargs"].get("rng") is None:
            msg["kwargs"]["rng"] = self.rng


# ---------------------------------------------------------------------------- visibility and weighting
class block(Messenger):
    """Hide sites from the handlers outside this one: those for which ``hide_fn(msg)`` is true, or named in
    ``hide``, or of a type in ``hide_types``; with ``expose``/``expose_types``, hide all others. By default,
    everything is hidden."""

    def __init__(self, fn: Callable | None = None, hide_fn: Callable | None = None, hide: Iterable[str] | None = None,
                 expose: Iterable[str] | None = None, hide_types: Iterable[str] | None = None,
                 expose_types: Iterable[str] | None = None) -> None:
        super().__init__(fn)
        if hide_fn is not None:
            self.hide_fn = hide_fn
        elif expose is not None or expose_types is not None:
            names, types = set(expose or ()), set(expose_types or ())
            self.hide_fn = lambda msg: msg["name"] not in names and msg["type"] not in types
        elif hide is not None or hide_types is not None:
            names, types = set(hide or ()), set(hide_types or ())
            self.hide_fn = lambda msg: msg["name"] in names or msg["type"] in types
        else:
            self.hide_fn = lambda msg: True

    def process_message(self, msg: Message) -> None:
        if self.hide_fn(msg):
            msg["stop"] = True


class scale(Messenger):
    """Multiply the log densities of the sample sites inside by ``scale`` (> 0): a tempered likelihood, or
    the weight of a mini-batch."""

    def __init__(self, fn: Callable | None = None, scale: Any = 1.0) -> None:
        super().__init__(fn)
        s = np.asarray(scale.data if isinstance(scale, Tensor) else scale)
        if s.dtype.kind not in "iuf" or not np.all(np.isfinite(s) & (s > 0)):
            raise ValueError(f"scale: the factor must be positive and finite, got {scale!r}")
        self.scale = scale

    def process_message(self, msg: Message) -> None:
        if msg["type"] == "sample":
            msg["scale"] = self.scale if msg["scale"] is None else msg["scale"] * self.scale


class mask(Messenger):
    """Count the log densities of sample sites inside only where ``mask`` (boolean, broadcasting with each
    site's batch shape) is True."""

    def __init__(self, fn: Callable | None = None, mask: Any = True) -> None:
        super().__init__(fn)
        m = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
        if m.dtype != bool:
            raise TypeError(f"mask: the mask must be boolean, got dtype {m.dtype}")
        self.mask = m

    def process_message(self, msg: Message) -> None:
        if msg["type"] == "sample":
            msg["mask"] = self.mask if msg["mask"] is None else msg["mask"] & self.mask


# ---------------------------------------------------------------------------- names and options
class scope(Messenger):
    """Prefix the names of the sites inside: ``scope(prefix="layer1")`` turns "w" into "layer1/w"."""

    def __init__(self, fn: Callable | None = None, prefix: str = "", divider: str = "/") -> None:
        super().__init__(fn)
        if not prefix:
            raise ValueError("scope needs a non-empty prefix")
        self.prefix, self.divider = prefix, divider

    def process_message(self, msg: Message) -> None:
        if msg.get("name") and msg["type"] in ("sample", "param", "deterministic", "plate"):
            msg["name"] = f"{self.prefix}{self.divider}{msg['name']}"


class infer_config(Messenger):
    """Update each sample site's ``infer`` dict with ``config_fn(msg)`` (e.g. per-site enumeration options)."""

    def __init__(self, fn: Callable | None = None, config_fn: Callable | None = None) -> None:
        super().__init__(fn)
        if config_fn is None:
            raise ValueError("infer_config needs config_fn")
        self.config_fn = config_fn

    def process_message(self, msg: Message) -> None:
        if msg["type"] == "sample":
            msg["infer"].update(self.config_fn(msg))


class lift(Messenger):
    """Turn param statements into sample statements from ``prior`` (a distribution for every param, or a
    dict by name; params not in the dict stay params). The sampled value takes the param's shape."""

    def __init__(self, fn: Callable | None = None, prior: Any = None) -> None:
        super().__init__(fn)
        if not (isinstance(prior, (Distribution, dict)) or callable(prior)):
            raise TypeError(f"lift needs a prior: a Distribution, a dict of them by param name, or a callable "
                            f"from a param name to a Distribution or None; got {type(prior).__name__}")
        self.prior = prior

    def _prior_of(self, name: str) -> Distribution | None:
        if isinstance(self.prior, Distribution):
            return self.prior
        prior = self.prior.get(name) if isinstance(self.prior, dict) else self.prior(name)
        if prior is not None and not isinstance(prior, Distribution):
            raise TypeError(f"lift: the prior of param {name!r} is not a Distribution: {prior!r}")
        return prior

    def process_message(self, msg: Message) -> None:
        if msg["type"] != "param":
            return
        name = msg["name"]
        prior = self._prior_of(name)
        if prior is None:
            return
        init_value = msg["args"][1]
        shape = _param_shape(name, init_value)
        if shape is not None and tuple(shape) != prior.batch_shape + prior.event_shape:
            if prior.event_shape:
                raise ValueError(f"lift: the prior of param {name!r} has shape "
                                 f"{prior.batch_shape + prior.event_shape}, the param has shape {tuple(shape)}")
            prior = prior.expand(tuple(shape)).to_event(len(shape))
        msg["type"], msg["fn"], msg["args"] = "sample", prior, ()
        msg["kwargs"] = {"sample_shape": ()}
        msg["is_observed"] = False


def _param_shape(name: str, init_value: Any) -> tuple[int, ...] | None:
    """The (constrained) shape of param ``name``: from a given init_value, else from the store, else unknown."""
    if init_value is not None and not callable(init_value):
        return tuple(np.shape(init_value.data if isinstance(init_value, Tensor) else init_value))
    store = get_param_store()
    return tuple(store[name].shape) if name in store else None
