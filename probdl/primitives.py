"""The statements a model is written with, and the handler stack they send their messages through.

A model is a plain Python function. Each ``sample``, ``param``, ``deterministic`` and ``factor``
statement builds a :class:`Message` and passes it through the stack of active handlers
(:mod:`probdl.handlers`): every handler, innermost first, may change the message on the way in
(``process_message``); if none has given the site a value, the default behaviour runs (a draw
from the distribution, the stored parameter); then the handlers see the finished message in the
opposite order (``postprocess_message``). With no handler active, a model draws from its prior.

The design follows Pyro's poutine and NumPyro's handlers: one stack, one message type, each
handler a small class.

References: Pyro (Bingham et al. 2019, JMLR 20(28)); NumPyro (Phan, Pradhan & Jankowiak 2019,
arXiv:1912.11554); Plotkin & Pretnar, "Handlers of Algebraic Effects", ESOP 2009.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypedDict

import numpy as np

from . import tensor as T
from .distributions import constraints
from .distributions.delta import Unit
from .distributions.distribution import Distribution, _shape
from .distributions.transforms import transform_to
from .tensor import Tensor, no_grad
from .tensor.ops.base import to_tensor
from .tensor.ops.random import subsample_indices

__all__ = ["Message", "Messenger", "CondIndepStackFrame", "apply_stack", "sample", "param", "deterministic",
           "factor", "plate", "module", "random_module", "RandomModule", "SampledModule", "get_param_store",
           "clear_param_store", "ParamStore"]


class CondIndepStackFrame(NamedTuple):
    """One enclosing plate of a site: its name, the batch dim it owns (negative, counted from the right of
    the batch shape), its full size, and the size of the current subsample."""

    name: str
    dim: int
    size: int
    subsample_size: int


class Message(TypedDict, total=False):
    """What a statement sends through the handler stack.

    type: "sample", "param", "deterministic", "plate" (a plate drawing its subsample) or "control".
    name: the site's name, unique within one run of the model.
    fn: the distribution of a sample site; for a param site, the function that makes its value.
    args, kwargs: what ``fn`` is called with (``kwargs["sample_shape"]`` and ``kwargs["rng"]`` for sample sites;
        ``args = (name, init_value, constraint, event_dim)`` for a param site, whose default reads and writes the
        store under ``msg["name"]``, so that a handler that renames the site (``scope``) renames the parameter).
    value: the site's value; a handler that sets it (condition, replay, substitute) pre-empts the default.
    is_observed: True when the value was given as data (``obs=`` or ``condition``).
    scale: a factor on the site's log density (plate subsampling, the ``scale`` handler); None means 1.
    mask: a boolean array: where False, the site's log density counts as 0; None means everywhere.
    cond_indep_stack: the enclosing plates (:class:`CondIndepStackFrame`), outermost first, as in Pyro.
    infer: free-form options for inference algorithms (``{"enumerate": ...}``, ``{"is_auxiliary": True}``).
    done: True once the site has a value and the default should not run.
    stop: True to hide the message from handlers further out (``block``); only a handler with
        ``sees_blocked`` (``seed``) still processes it.
    intermediates: for a param site whose value came from the store, ``[the unconstrained leaf]``, which
        inference differentiates and optimizers update; empty otherwise.
    """

    type: str
    name: str
    fn: Any
    args: tuple
    kwargs: dict
    value: Any
    is_observed: bool
    scale: Any
    mask: Any
    cond_indep_stack: tuple
    infer: dict
    done: bool
    stop: bool
    intermediates: list


_STACK: list[Messenger] = []


class Messenger:
    """The base handler: a context manager that pushes itself on the stack, and a function wrapper.

    A subclass overrides ``process_message`` and/or ``postprocess_message``, each usually filtering on
    ``msg["type"]`` and returning early. ``Messenger(fn)`` wraps a model: calling it runs ``fn`` inside
    the handler.

    ``sees_blocked`` marks a handler that must process even the messages an inner ``block`` hides from it:
    ``seed``, so that hidden draws still come from the seeded generator. Such a handler gets only
    ``process_message`` for a hidden message, never ``postprocess_message``.
    """

    sees_blocked: bool = False

    def __init__(self, fn: Callable | None = None) -> None:
        self.fn = fn

    def __enter__(self) -> Messenger:
        _STACK.append(self)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if _STACK and _STACK[-1] is self:
            _STACK.pop()
        elif self in _STACK:  # an exception unwound handlers out of order: drop this one and those above it
            del _STACK[_STACK.index(self):]

    def process_message(self, msg: Message) -> None:
        pass

    def postprocess_message(self, msg: Message) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fn is None:
            raise TypeError(f"{type(self).__name__} wraps no function: use it as a context manager, or give fn")
        with self:
            return self.fn(*args, **kwargs)


def _default_process(msg: Message) -> None:
    """What happens when no handler has given the site a value."""
    if msg["type"] == "sample":
        fn, kwargs = msg["fn"], msg["kwargs"]
        draw = fn.rsample if fn.has_rsample else fn.sample
        msg["value"] = draw(kwargs.get("sample_shape", ()), rng=kwargs.get("rng"))
    elif msg["type"] == "plate":
        size, subsample_size = msg["args"]
        msg["value"] = subsample_indices(size, subsample_size, rng=msg["kwargs"].get("rng"))
    elif msg["type"] == "param":  # the store is read under the site's name, which handlers may have changed
        msg["value"] = msg["fn"](msg["name"], *msg["args"][1:], **msg["kwargs"])
        if msg["name"] in _PARAM_STORE:
            msg["intermediates"] = [_PARAM_STORE.unconstrained(msg["name"])]
    else:
        msg["value"] = msg["fn"](*msg["args"], **msg["kwargs"])


def apply_stack(msg: Message) -> Message:
    """Send ``msg`` through the handlers, innermost first, fill in its value, and post-process it outwards."""
    processed = 0
    for handler in reversed(_STACK):
        processed += 1
        handler.process_message(msg)
        if msg["stop"]:
            break
    for handler in reversed(_STACK[:len(_STACK) - processed]):  # hidden by a block: only seed still acts
        if handler.sees_blocked:
            handler.process_message(msg)
    if msg["value"] is None and not msg["done"]:
        _default_process(msg)
    msg["done"] = True
    for handler in _STACK[len(_STACK) - processed:]:  # as Pyro: outermost of those that saw it first
        handler.postprocess_message(msg)
    return msg


def _message(type_: str, name: str, fn: Any, args: tuple = (), kwargs: dict | None = None, value: Any = None,
             is_observed: bool = False, infer: dict | None = None) -> Message:
    return Message(type=type_, name=name, fn=fn, args=args, kwargs=kwargs or {}, value=value, is_observed=is_observed,
                   scale=None, mask=None, cond_indep_stack=(), infer=dict(infer or {}), done=False, stop=False,
                   intermediates=[])


# ---------------------------------------------------------------------------- sample
def sample(name: str, fn: Distribution, obs: Any = None, obs_mask: Any = None, infer: dict | None = None,
           sample_shape: Any = ()) -> Tensor:
    """A random variable ``name`` with distribution ``fn``: drawn (reparameterized where ``fn`` allows),
    or, with ``obs``, observed. Enclosing plates broadcast ``fn`` over their dims.

    ``obs_mask`` (boolean, broadcasting with the batch shape) marks which entries of ``obs`` are
    observed; the others become a latent site ``name + "_unobserved"`` and the value mixes the two.
    The entries of ``obs`` where the mask is False are never read (they may be NaN).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"sample: the site name must be a non-empty str, got {name!r}")
    if not isinstance(fn, Distribution):
        raise TypeError(f"sample: site {name!r} needs a Distribution, got {type(fn).__name__}")
    if infer is not None and not isinstance(infer, dict):
        raise TypeError(f"sample: site {name!r}: infer must be a dict, got {type(infer).__name__}")
    if obs_mask is not None:
        return _masked_observe(name, fn, obs, obs_mask, infer)
    return _sample(name, fn, obs, infer, sample_shape)


def _sample(name: str, fn: Distribution, obs: Any, infer: dict | None, sample_shape: Any = (),
            mask: np.ndarray | None = None) -> Tensor:
    if not _STACK:  # no handler: draw from the prior (or return the data)
        if obs is not None:
            return to_tensor(obs)
        draw = fn.rsample if fn.has_rsample else fn.sample
        return draw(sample_shape)
    msg = _message("sample", name, fn, kwargs={"sample_shape": _shape(sample_shape)},
                   value=None if obs is None else to_tensor(obs), is_observed=obs is not None, infer=infer)
    msg["mask"] = mask
    return apply_stack(msg)["value"]


def _masked_observe(name: str, fn: Distribution, obs: Any, obs_mask: Any, infer: dict | None) -> Tensor:
    """Pyro's obs_mask: observed entries score against the data, the others are imputed as a latent site.

    ``fn`` is first broadcast to the batch shape of ``obs`` and ``obs_mask``, so that each missing entry has a
    draw of its own. The observed site ``name`` holds the data with the imputed draws (detached) in the
    masked-out places: its log density there is masked anyway, and NaN placeholders never reach ``log_prob``.
    """
    if obs is None:
        raise ValueError(f"sample: site {name!r} has obs_mask but no obs")
    obs = to_tensor(obs)
    obs_mask = np.asarray(obs_mask.numpy() if isinstance(obs_mask, Tensor) else obs_mask)
    if obs_mask.dtype != bool:
        raise TypeError(f"sample: site {name!r}: obs_mask must be boolean, got dtype {obs_mask.dtype}")
    n_event = len(fn.event_shape)
    try:
        batch = np.broadcast_shapes(fn.batch_shape, obs_mask.shape, obs.shape[:obs.ndim - n_event])
    except ValueError:
        raise ValueError(f"sample: site {name!r}: obs of shape {obs.shape}, obs_mask of shape {obs_mask.shape} and "
                         f"the batch shape {fn.batch_shape} do not broadcast") from None
    fn = fn.expand(batch)
    missing = _sample(f"{name}_unobserved", fn, None, infer, mask=~obs_mask)
    m = obs_mask.reshape(obs_mask.shape + (1,) * n_event)
    observed = _sample(name, fn, T.where(m, obs, missing.detach()), infer, mask=obs_mask)
    return T.where(m, observed, missing)


# ---------------------------------------------------------------------------- deterministic and factor
def deterministic(name: str, value: Any) -> Tensor:
    """Record ``value`` as the site ``name`` (it shows up in traces and Predictive), and return it."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"deterministic: the site name must be a non-empty str, got {name!r}")
    value = to_tensor(value)
    if not _STACK:
        return value
    msg = _message("deterministic", name, None, value=value)
    return apply_stack(msg)["value"]


def factor(name: str, log_factor: Any) -> None:
    """Add ``log_factor`` to the model's log density, as an observed ``Unit`` site."""
    log_factor = to_tensor(log_factor)
    empty = Tensor._wrap(np.zeros(log_factor.shape + (0,), dtype=log_factor.dtype))
    sample(name, Unit(log_factor), obs=empty)


# ---------------------------------------------------------------------------- parameters
class ParamStore:
    """Named learnable parameters, kept unconstrained: ``param`` returns ``transform_to(constraint)`` of the
    stored leaf, and optimizers update the leaf. Saved and loaded as ``.npz`` (no pickle)."""

    def __init__(self) -> None:
        self._params: dict[str, Tensor] = {}
        self._constraints: dict[str, constraints.Constraint] = {}
        self._loaded: set[str] = set()  # read from a file: the constraint comes with the next param statement

    def __contains__(self, name: str) -> bool:
        return name in self._params

    def __len__(self) -> int:
        return len(self._params)

    def keys(self) -> list[str]:
        return list(self._params)

    def items(self) -> Iterator[tuple[str, Tensor]]:
        return ((name, self[name]) for name in self._params)

    def __getitem__(self, name: str) -> Tensor:
        """The constrained value of parameter ``name``."""
        if name not in self._params:
            raise KeyError(f"param store: no parameter named {name!r}; have {sorted(self._params)}")
        return transform_to(self._constraints[name])(self._params[name])

    def unconstrained(self, name: str) -> Tensor:
        return self._params[name]

    def constraint(self, name: str) -> constraints.Constraint:
        return self._constraints[name]

    def setdefault(self, name: str, init_value: Any, constraint: constraints.Constraint) -> Tensor:
        """The stored leaf for ``name``, creating it from ``init_value`` (a constrained value) if new."""
        if name not in self._params:
            value = to_tensor(init_value)
            if value.dtype.kind != "f":
                raise TypeError(f"param {name!r}: init_value must be floating, got dtype {value.dtype}")
            with no_grad():
                if not bool(np.all(np.asarray(constraint.check(value)))):
                    raise ValueError(f"param {name!r}: init_value does not satisfy the constraint {constraint!r}")
                leaf = transform_to(constraint).inv(value).detach()
            leaf.requires_grad = True
            self._params[name], self._constraints[name] = leaf, constraint
        return self._params[name]

    def set(self, name: str, leaf: Tensor, constraint: constraints.Constraint = constraints.real) -> None:
        """Store ``leaf`` itself as the unconstrained parameter ``name`` (``module`` shares a network's tensors)."""
        self._params[name], self._constraints[name] = leaf, constraint
        self._loaded.discard(name)

    def __delitem__(self, name: str) -> None:
        del self._params[name], self._constraints[name]
        self._loaded.discard(name)

    def clear(self) -> None:
        self._params.clear()
        self._constraints.clear()
        self._loaded.clear()

    def save(self, path: Any) -> None:
        """Write the unconstrained values to ``path`` (``.npz``); constraints stay with the code that declares
        them, so ``load`` followed by the model's ``param`` statements restores everything."""
        from .serialization import save as _save  # noqa: PLC0415

        _save({k: v.detach() for k, v in self._params.items()}, path)

    def load(self, path: Any) -> None:
        """Read values written by ``save``; a parameter already present is overwritten in place."""
        from .serialization import load as _load  # noqa: PLC0415

        for name, value in _load(path).items():
            value = to_tensor(value)
            if name in self._params:
                if value.shape != self._params[name].shape:
                    raise ValueError(f"param store load: {name!r} has shape {value.shape} in the file and "
                                     f"{self._params[name].shape} in the store (unconstrained)")
                with no_grad():
                    self._params[name].data[...] = value.data
            else:
                leaf = value.detach()
                leaf.requires_grad = True
                self._params[name], self._constraints[name] = leaf, constraints.real
                self._loaded.add(name)


_PARAM_STORE = ParamStore()


def get_param_store() -> ParamStore:
    """The global parameter store that ``param`` reads and writes."""
    return _PARAM_STORE


def clear_param_store() -> None:
    _PARAM_STORE.clear()


def _param_value(name: str, init_value: Any, constraint: constraints.Constraint, event_dim: Any) -> Tensor:
    store = _PARAM_STORE
    if name in store._params:
        leaf = store._params[name]
        if name in store._loaded:  # a value read by load(): the declaration supplies its constraint
            store._constraints[name] = constraint
            store._loaded.discard(name)
        transform = transform_to(store._constraints[name])
        if init_value is not None and not callable(init_value):
            shape = tuple(np.shape(init_value.data if isinstance(init_value, Tensor) else init_value))
            have = tuple(transform.forward_shape(leaf.shape))  # constrained shape (a simplex has one more entry)
            if shape != have:
                raise ValueError(f"param {name!r} was declared with shape {have} and is now given an "
                                 f"init_value of shape {shape}; clear_param_store() to start over")
        return transform(leaf)
    if init_value is None:
        raise ValueError(f"param {name!r} is not in the param store and has no init_value")
    if callable(init_value):
        init_value = init_value()
    leaf = store.setdefault(name, init_value, constraint)
    return transform_to(constraint)(leaf)


def param(name: str, init_value: Any = None, constraint: constraints.Constraint = constraints.real,
          event_dim: int | None = None) -> Tensor:
    """A learnable parameter: its constrained value. Created from ``init_value`` (a value or a function
    returning one) the first time, then read from the param store, where it lives unconstrained."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"param: the name must be a non-empty str, got {name!r}")
    if not isinstance(constraint, constraints.Constraint):
        raise TypeError(f"param {name!r}: constraint must be a Constraint, got {type(constraint).__name__}")
    if not _STACK:
        return _param_value(name, init_value, constraint, event_dim)
    msg = _message("param", name, _param_value, args=(name, init_value, constraint, event_dim))
    msg["kwargs"] = {}
    msg["infer"]["event_dim"] = event_dim
    msg["infer"]["constraint"] = constraint
    return apply_stack(msg)["value"]


def module(name: str, nn_module: Any) -> Any:
    """Register every parameter of ``nn_module`` in the param store as ``name.param_name`` (sharing the
    module's own tensors, so an optimizer over the store trains the network), and return the module.

    Each parameter is a param site, so ``scope`` prefixes its store name and ``trace`` records it. When the
    store already holds a value under that name (after ``load``, or from another copy of the network), the
    value is copied into the module's tensor first, and that tensor then takes its place in the store.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"module: the name must be a non-empty str, got {name!r}")
    if not hasattr(nn_module, "named_parameters"):
        raise TypeError(f"module {name!r}: expected a probdl.nn.Module, got {type(nn_module).__name__}")
    for pname, p in nn_module.named_parameters():
        full = f"{name}.{pname}"
        if not _STACK:
            _share_param(full, p, constraints.real, None)
            continue
        msg = _message("param", full, _share_param, args=(full, p, constraints.real, None))
        msg["infer"]["event_dim"], msg["infer"]["constraint"] = None, constraints.real
        apply_stack(msg)
    return nn_module


def _share_param(name: str, p: Tensor, constraint: constraints.Constraint, event_dim: Any) -> Tensor:
    """The default of a ``module`` param site: store the network's tensor ``p`` itself under ``name``."""
    store = _PARAM_STORE
    if name in store and store.unconstrained(name) is not p:
        old = store.unconstrained(name)
        if old.shape != p.shape:
            raise ValueError(f"module: parameter {name!r} has shape {p.shape}, the param store holds one of shape "
                             f"{old.shape}")
        with no_grad():
            p.data[...] = old.data
    store.set(name, p)
    return p


def _prior_for(name: str, pname: str, p: Tensor, prior: Any) -> Distribution:
    if isinstance(prior, dict):
        keys = (f"{name}.{pname}", pname, pname.rsplit(".", 1)[-1])  # site name, module name, last component
        key = next((k for k in keys if k in prior), None)
        if key is None:
            raise KeyError(f"random_module {name!r}: no prior for parameter {pname!r} (the dict has "
                           f"{sorted(prior)})")
        d = prior[key]
    elif isinstance(prior, Distribution):
        d = prior
    elif callable(prior):
        d = prior(pname, p)
    else:
        raise TypeError(f"random_module {name!r}: prior must be a Distribution, a dict or a callable, got "
                        f"{type(prior).__name__}")
    if not isinstance(d, Distribution):
        raise TypeError(f"random_module {name!r}: the prior of {pname!r} is not a Distribution: {d!r}")
    if d.event_shape == p.shape and not d.batch_shape:
        return d
    if d.event_shape:
        raise ValueError(f"random_module {name!r}: the prior of {pname!r} has batch shape {d.batch_shape} and event "
                         f"shape {d.event_shape}; the parameter has shape {p.shape}")
    try:
        np.broadcast_shapes(d.batch_shape, p.shape)
        if len(d.batch_shape) > len(p.shape):
            raise ValueError
    except ValueError:
        raise ValueError(f"random_module {name!r}: the prior of {pname!r} has batch shape {d.batch_shape}, which does "
                         f"not broadcast to the parameter's shape {p.shape}") from None
    return d.expand(p.shape).to_event(len(p.shape))


class SampledModule:
    """A network with one draw of its parameters fixed: calling it runs ``module`` with ``draws`` (by
    parameter name) in place of its own parameters, which are put back afterwards, even when the forward
    pass raises."""

    __slots__ = ("module", "draws")

    def __init__(self, module: Any, draws: dict[str, Tensor]) -> None:
        self.module, self.draws = module, draws

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with _swapped_parameters(self.module, self.draws):
            return self.module(*args, **kwargs)


class RandomModule:
    """What :func:`random_module` returns: ``sample()`` draws every parameter and gives the network with those
    draws (a :class:`SampledModule`); calling it draws and runs at once."""

    __slots__ = ("name", "module", "priors")

    def __init__(self, name: str, module: Any, priors: dict[str, Distribution]) -> None:
        self.name, self.module, self.priors = name, module, priors

    def sample(self) -> SampledModule:
        draws = {}
        for pname, p in self.module.named_parameters():
            site = f"{self.name}.{pname}"
            value = sample(site, self.priors[pname])
            if tuple(value.shape) != tuple(p.shape):
                plates = [h.name for h in _STACK if isinstance(h, plate)]
                raise ValueError(f"random_module {self.name!r}: the draw of {site!r} has shape {tuple(value.shape)}, "
                                 f"the parameter has shape {tuple(p.shape)} (enclosing plates: {plates}); the "
                                 "weights are global latent variables: draw them outside every plate with "
                                 "net = bnn.sample() and call net(x) inside the plate")
            draws[pname] = value
        return SampledModule(self.module, draws)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.sample()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"RandomModule({self.name!r}, {type(self.module).__name__}, {len(self.priors)} parameters)"


def random_module(name: str, nn_module: Any, prior: Any) -> RandomModule:
    """``nn_module`` as a Bayesian network: each parameter ``param_name`` is drawn at a sample site
    ``name.param_name`` from ``prior``, which is a distribution for all of them, a dict keyed by parameter
    name (the site name ``"name.0.weight"``, the module's ``"0.weight"``, or its last component
    ``"weight"``, tried in that order), or a callable ``(param_name, param) -> distribution``. A scalar
    prior is expanded to the parameter's shape and its dims made event dims.

    ``bnn = random_module("bnn", net, dist.Normal(0.0, 1.0))``, then in a model either ``bnn(x)`` (draw and
    run) or, when the network is applied inside a data plate, ``net_s = bnn.sample()`` outside the plate and
    ``net_s(x_batch)`` inside it: the weights are global, so drawing them under a plate (which would give
    each datum its own weights) raises an error.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"random_module: the name must be a non-empty str, got {name!r}")
    if not hasattr(nn_module, "named_parameters"):
        raise TypeError(f"random_module {name!r}: expected a probdl.nn.Module, got {type(nn_module).__name__}")
    priors = {pname: _prior_for(name, pname, p, prior) for pname, p in nn_module.named_parameters()}
    return RandomModule(name, nn_module, priors)


@contextmanager
def _swapped_parameters(nn_module: Any, values: dict[str, Tensor]) -> Iterator[None]:
    """Run ``nn_module`` with ``values`` standing in for its parameters, restoring them afterwards."""
    saved = []
    try:
        for pname, value in values.items():
            owner = nn_module
            *path, leaf = pname.split(".")
            for part in path:
                owner = owner._modules[part]
            saved.append((owner, leaf, owner._parameters[leaf]))
            owner._parameters[leaf] = value
        yield
    finally:
        for owner, leaf, original in reversed(saved):
            owner._parameters[leaf] = original


# ---------------------------------------------------------------------------- plate
class plate(Messenger):
    """``with plate(name, size, subsample_size=None, subsample=None, dim=None) as idx:`` — a batch dim of
    conditionally independent sites.

    Sample sites inside are broadcast so that batch dim ``dim`` (allocated from the right when None,
    to the left of enclosing plates) has the plate's (subsample) size. With subsampling, ``idx`` is
    the index tensor of the drawn subsample, and log densities are scaled by size / subsample_size
    so that the ELBO is an unbiased estimate of the full-data one. Without it, ``idx`` is arange(size).

    As in Pyro and NumPyro, the subsample is drawn when the plate is created, as a message of type
    ``"plate"`` (so ``seed`` makes it reproducible, ``trace`` records it and ``replay`` gives a model the
    guide's subsample); entering the same plate object twice uses the same indices.
    """

    def __init__(self, name: str, size: int, subsample_size: int | None = None, subsample: Any = None,
                 dim: int | None = None) -> None:
        super().__init__()
        if not isinstance(name, str) or not name:
            raise TypeError(f"plate: the name must be a non-empty str, got {name!r}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"plate {name!r}: size must be a positive int, got {size!r}")
        if dim is not None and (not isinstance(dim, int) or dim >= 0):
            raise ValueError(f"plate {name!r}: dim must be a negative int, got {dim!r}")
        if subsample_size is not None and not 1 <= subsample_size <= size:
            raise ValueError(f"plate {name!r}: subsample_size must be in [1, {size}], got {subsample_size!r}")
        self.name, self.size, self._dim_arg = name, int(size), dim
        self._subsample_arg, self._subsample_size_arg = subsample, subsample_size
        self.indices = self._draw_subsample()

    def __enter__(self) -> Tensor:  # type: ignore[override]
        used = {f.dim for h in _STACK if isinstance(h, plate) for f in [h.frame]}
        names = {h.name for h in _STACK if isinstance(h, plate)}
        if self.name in names:
            raise ValueError(f"plate {self.name!r} is already active; plates nest with distinct names")
        dim = self._dim_arg
        if dim is None:
            dim = -1
            while dim in used:
                dim -= 1
        elif dim in used:
            other = next(h.name for h in _STACK if isinstance(h, plate) and h.frame.dim == dim)
            raise ValueError(f"plate {self.name!r}: dim {dim} is already used by plate {other!r}")
        self.frame = CondIndepStackFrame(self.name, dim, self.size, int(self.indices.shape[0]))
        super().__enter__()
        return self.indices

    def _draw_subsample(self) -> Tensor:
        if self._subsample_arg is not None:
            idx = to_tensor(self._subsample_arg)
            if idx.ndim != 1 or idx.dtype.kind not in "iu" or idx.shape[0] == 0:
                raise ValueError(f"plate {self.name!r}: subsample must be a non-empty 1-d integer index tensor, got "
                                 f"shape {idx.shape} and dtype {idx.dtype}")
            if int(idx.data.min()) < 0 or int(idx.data.max()) >= self.size:
                raise ValueError(f"plate {self.name!r}: subsample indices must lie in [0, {self.size}), got "
                                 f"[{int(idx.data.min())}, {int(idx.data.max())}]")
            return idx
        if self._subsample_size_arg is None or self._subsample_size_arg == self.size:
            return Tensor._wrap(np.arange(self.size))
        msg = _message("plate", self.name, None, args=(self.size, self._subsample_size_arg))
        return apply_stack(msg)["value"] if _STACK else _default_plate(msg)

    def process_message(self, msg: Message) -> None:
        if msg["type"] not in ("sample", "param", "deterministic"):
            return
        msg["cond_indep_stack"] = (self.frame,) + tuple(msg["cond_indep_stack"])
        if msg["type"] != "sample":
            return
        fn, frame = msg["fn"], self.frame
        batch = list(fn.batch_shape)
        need = -frame.dim
        if len(batch) < need:
            batch = [1] * (need - len(batch)) + batch
        have = batch[frame.dim]
        if have not in (1, frame.subsample_size):
            raise ValueError(f"site {msg['name']!r}: batch shape {fn.batch_shape} has size {have} at dim {frame.dim}, "
                             f"where plate {frame.name!r} has size {frame.subsample_size} (the site's batch shape "
                             f"must be 1 or {frame.subsample_size} there)")
        batch[frame.dim] = frame.subsample_size
        if tuple(batch) != fn.batch_shape:
            msg["fn"] = fn.expand(tuple(batch))
        if frame.subsample_size < frame.size:
            ratio = frame.size / frame.subsample_size
            msg["scale"] = ratio if msg["scale"] is None else msg["scale"] * ratio
        value = msg["value"]
        if value is not None:
            _check_value_shape(msg, value)


def _default_plate(msg: Message) -> Tensor:
    _default_process(msg)
    return msg["value"]


def _check_value_shape(msg: Message, value: Any) -> None:
    """An observed or given value must broadcast with the site's shape; its plate dims must match."""
    fn = msg["fn"]
    shape = tuple(np.shape(value.data if isinstance(value, Tensor) else value))
    n_event = len(fn.event_shape)
    for f in msg["cond_indep_stack"]:  # first the plates, so that the error names the one that disagrees
        pos = f.dim - n_event
        if len(shape) >= -pos and shape[pos] not in (1, f.subsample_size):
            raise ValueError(f"site {msg['name']!r}: value of shape {shape} has size {shape[pos]} at batch dim "
                             f"{f.dim}, where plate {f.name!r} has size {f.subsample_size}")
    want = fn.batch_shape + fn.event_shape
    try:
        np.broadcast_shapes(shape, want)
    except ValueError:
        raise ValueError(f"site {msg['name']!r}: value of shape {shape} does not broadcast with the distribution's "
                         f"batch + event shape {want}") from None
