"""The optimizer base: parameter groups, per-parameter state, ``zero_grad``, ``step`` and ``state_dict``.

The interface is PyTorch's. An optimizer holds a list of *parameter groups*, each a dict
with a ``"params"`` list and that group's options (``lr``, ``betas``, ...); options a group
does not name come from ``defaults``. ``state`` maps each parameter to its running
quantities (step count, moment estimates, ...).

Unlike PyTorch, the state holds raw arrays (NumPy or CuPy, like ``Tensor.data``) and a
Python ``int`` step, and each algorithm is one array-level function,
``_update(x, g, state, group)``, that updates the parameter array ``x`` and its state in
place from the gradient array ``g``. Nothing records a graph.

The base class runs ``_update`` in one of two ways (the ``foreach`` option, as in PyTorch):

- per parameter: one call per parameter that has a gradient;
- over the whole group at once: the gradients and parameters are concatenated into flat
  arrays, ``_update`` runs once on them, and the results are copied back. The state
  arrays live in flat buffers too, and ``state[p]`` holds views into them, so the two
  ways share one state and give identical numbers. This is what keeps a step cheap
  when there are many small parameters (SVI's guides): the Python cost is a few array
  calls per group instead of a dozen per parameter.

``foreach=None`` (the default) groups when it pays: at least ``FOREACH_MIN_PARAMS``
parameters averaging at most ``FOREACH_MAX_MEAN_SIZE`` elements (measured on NumPy: 1.3-3x
faster there, slower for larger arrays, whose flat copies leave the cache). ``foreach=True``
groups whenever it can. Either way the parameters must share a dtype, a device, a step
count and their state entries. Parameters whose gradient is ``None`` are skipped.

An optimizer may start without parameters and receive them later, one group at a time,
which is how SVI registers parameters that a model creates on its first run::

    opt = probdl.optim.Adam(lr=1e-2)
    opt.add_param_group({"params": [loc, scale]})
"""
from __future__ import annotations

import copy
import numbers
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..backend import device_of, get_array_module, ndarray_types, to_device
from ..tensor import Tensor, enable_grad

__all__ = ["Optimizer"]

#: With ``foreach=None``, a group is updated as one flat array when it has at least this many parameters with
#: gradients, averaging at most this many elements; past that, the copies cost more than the calls they save.
FOREACH_MIN_PARAMS = 3
FOREACH_MAX_MEAN_SIZE = 2048


class Optimizer:
    """Base class of all optimizers.

    Args:
        params: an iterable of Tensors, an iterable of dicts (parameter groups, each with a
            ``"params"`` entry and any per-group options), or ``None`` to add groups later
            with :meth:`add_param_group`.
        defaults: a dict of default options (PyTorch's positional form, for subclasses
            written as in PyTorch); keyword options are merged into it.

    A subclass validates its options in :meth:`_check_options` and gives the update of
    one parameter (or one flat group) in :meth:`_update`; or, as in PyTorch, overrides
    :meth:`step` entirely.
    """

    def __init__(self, params: Iterable[Any] | None = None, defaults: dict | None = None, **kwargs: Any) -> None:
        self.defaults: dict[str, Any] = {**(defaults or {}), **kwargs}
        self._check_options(self.defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self._flat: dict[int, _FlatGroup] = {}  # id(group) -> its flat buffers
        if params is None:
            return
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params should be an iterable of Tensors or of dicts (parameter groups), "
                            "not a single Tensor; wrap it in a list")
        groups = [params] if isinstance(params, dict) else _ordered(name, params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list; omit params (or pass None) to add "
                             "parameter groups later with add_param_group")
        if all(isinstance(g, dict) for g in groups):
            for g in groups:
                self.add_param_group(g)
        elif any(isinstance(g, dict) for g in groups):
            raise TypeError(f"{name}: params mixes Tensors and dicts; pass either Tensors or parameter groups")
        else:
            self.add_param_group({"params": groups})

    # ------------------------------------------------------------ parameter groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options; options it leaves out come from ``defaults``."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}.add_param_group: expected a dict with a 'params' entry, "
                            f"got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{name}.add_param_group: the group has no 'params' entry")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else _ordered(name, params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            _check_param(name, p, i)
            if id(p) in seen:
                raise ValueError(f"{name}: parameter {i} of the new group (shape {p.shape}) already appears in "
                                 "a parameter group; each parameter may belong to one group only")
            seen.add(id(p))
        group = {**param_group, "params": params}
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_options(group)
        self.param_groups.append(group)

    def _check_options(self, group: dict[str, Any]) -> None:
        """Raise ``ValueError`` for an invalid option in ``group`` (a subclass names its options)."""

    # ------------------------------------------------------------------- stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: to ``None`` (the default), or to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif g.requires_grad:  # a gradient with a graph (create_graph=True): replace it, as detach_ would
                    p.grad = Tensor(get_array_module(g.data).zeros_like(g.data))
                else:  # a fresh array: the old one may be shared (a broadcast view, a tensor the user passed in)
                    g.data = get_array_module(g.data).zeros_like(g.data)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; parameters whose ``grad`` is ``None`` are skipped.

        Args:
            closure: optional; re-evaluates the model (zero the gradients, compute the loss,
                call ``backward``) and returns the loss. It runs with gradients enabled,
                before the update.

        Returns:
            the closure's loss, or ``None`` without a closure.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _step_group(self, group: dict[str, Any]) -> None:
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        foreach = group.get("foreach")
        if foreach is not False and len(params) > 1 and self._step_flat(group, params, foreach is True):
            return
        state, update = self.state, self._update
        for p in params:
            update(p.data, p.grad.data, state[p], group)

    def _update(self, x: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Update the parameter array ``x`` and its ``state`` in place, from the gradient array ``g``.

        ``state`` starts empty; arrays created in it must have ``x``'s shape (``zeros_like(x)``).
        ``g`` must not be written to (it may be the parameter's ``.grad``). ``x`` and ``g``
        may be one parameter's arrays, or a whole group's, flattened.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement _update (or step)")

    def _step_flat(self, group: dict[str, Any], params: list[Tensor], forced: bool) -> bool:
        """Run ``_update`` once over the concatenated parameters; ``False`` (having done nothing) when they
        cannot be grouped: several dtypes or devices, different step counts or state entries, or (unless
        ``forced``) too few or too large to be worth copying."""
        n = len(params)
        if not forced and (n < FOREACH_MIN_PARAMS or sum(p.data.size for p in params) > FOREACH_MAX_MEAN_SIZE * n):
            return False
        x0 = params[0].data
        dtype, xp = x0.dtype, get_array_module(x0)
        if any(p.data.dtype != dtype for p in params) or (
                xp is not np and len({device_of(p.data) for p in params}) > 1):
            return False
        states = [self.state[p] for p in params]
        first = states[0]
        keys, step = first.keys(), first.get("step")
        if any(s.keys() != keys or s.get("step") != step for s in states):
            return False
        flat = self._flat.get(id(group))
        if flat is None or not flat.matches(params, states, dtype):
            flat = self._flat[id(group)] = _FlatGroup(params, states, xp)
        x = xp.concatenate([p.data.ravel() for p in params])
        g = xp.concatenate([p.grad.data.ravel() for p in params])
        self._update(x, g, flat.state, group)
        for p, (lo, hi) in zip(params, flat.spans):
            p.data[...] = x[lo:hi].reshape(p.data.shape)
        flat.share(states)
        return True

    # ---------------------------------------------------------------- state dicts
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as plain data: ``{"state": {index: {...}}, "param_groups": [...]}``.

        As in PyTorch, parameters are replaced by their index, counted across groups in
        order; the arrays are copies, so the dict does not change as training goes on.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: {k: _copy_value(v) for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a :meth:`state_dict`: the groups' options and each parameter's state, matched by position.

        The groups must have the same sizes as this optimizer's. Arrays are copied (floating
        ones cast to their parameter's dtype and moved to its device). Nothing changes
        when the dict does not fit.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups', "
                             "as state_dict() returns")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state dict has {len(saved_groups)} parameter group(s) "
                             f"but this optimizer has {len(self.param_groups)}")
        index: dict[Any, Tensor] = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(f"{name}.load_state_dict: parameter group {i} has {len(saved['params'])} "
                                 f"parameter(s) in the state dict but {len(group['params'])} in this optimizer")
            index.update(zip(saved["params"], group["params"]))
        state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for k, entries in state_dict["state"].items():
            if k not in index:
                raise ValueError(f"{name}.load_state_dict: the state dict has state for parameter {k!r}, "
                                 "which none of its parameter groups lists")
            p = index[k]
            state[p] = {key: _load_value(name, key, v, p) for key, v in entries.items()}
        groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            new = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            new["params"] = group["params"]
            for key, value in self.defaults.items():
                new.setdefault(key, value)
            self._check_options(new)
            groups.append(new)
        self.param_groups = groups
        self.state = state
        self._flat = {}

    def __getstate__(self) -> dict[str, Any]:  # pickle and deepcopy: the flat buffers are rebuilt on demand
        return {k: v for k, v in self.__dict__.items() if k != "_flat"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._flat = {}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {group[k]}" for k in sorted(group) if k != "params")
        return "\n".join(lines) + "\n)"


class _FlatGroup:
    """A group's state in flat buffers: ``state`` holds one flat array per entry (and the shared step), and
    each parameter's state dict holds views into them, so per-parameter and grouped updates share one state."""

    __slots__ = ("ids", "shapes", "dtype", "spans", "state", "views")

    def __init__(self, params: list[Tensor], states: list[dict[str, Any]], xp: Any) -> None:
        self.ids = [id(p) for p in params]
        self.shapes = [p.data.shape for p in params]
        self.dtype = params[0].data.dtype
        ends = [0]
        for p in params:
            ends.append(ends[-1] + p.data.size)
        self.spans = list(zip(ends[:-1], ends[1:]))
        self.state: dict[str, Any] = {}
        self.views: dict[str, list] = {}
        arrays = ndarray_types()
        for key, value in states[0].items():
            if isinstance(value, arrays):
                self.state[key] = xp.concatenate([s[key].ravel() for s in states])  # gather what each one has
            else:
                self.state[key] = value
        self.share(states)

    def matches(self, params: list[Tensor], states: list[dict[str, Any]], dtype: Any) -> bool:
        """Whether these buffers still hold exactly these parameters' state; if so, take up their step count
        (which per-parameter updates may have advanced in the meantime)."""
        if (dtype != self.dtype or [id(p) for p in params] != self.ids or [p.data.shape for p in params] != self.shapes
                or states[0].keys() != self.state.keys()):
            return False
        if not all(s.get(key) is v for key, views in self.views.items() for s, v in zip(states, views)):
            return False
        for key, value in states[0].items():
            if key not in self.views:
                self.state[key] = value
        return True

    def share(self, states: list[dict[str, Any]]) -> None:
        """Point each parameter's state at views of the flat arrays (made once per entry); copy the rest."""
        arrays = ndarray_types()
        for key, value in self.state.items():
            if not isinstance(value, arrays):
                for s in states:
                    s[key] = value
            elif key not in self.views:
                self.views[key] = [value[lo:hi].reshape(shape) for (lo, hi), shape in zip(self.spans, self.shapes)]
                for s, v in zip(states, self.views[key]):
                    s[key] = v


# ------------------------------------------------------------------------ helpers
def _ordered(name: str, params: Any) -> list:
    if isinstance(params, (set, frozenset)):
        raise TypeError(f"{name}: parameters must come in an ordered collection (a list or tuple), not a set, "
                        "whose order changes between runs")
    return list(params)


def _check_param(name: str, p: Any, i: int) -> None:
    if not isinstance(p, Tensor):
        raise TypeError(f"{name}: can only optimize Tensors, but parameter {i} is a {type(p).__name__}")
    if p.dtype.kind != "f":
        raise ValueError(f"{name}: can only optimize real floating tensors, but parameter {i} has dtype {p.dtype}")
    if not p.is_leaf:
        raise ValueError(f"{name}: can't optimize a non-leaf tensor (parameter {i}, made by {p.grad_fn!r}); "
                         "optimize the leaf it was computed from, or pass x.detach().requires_grad_()")


def _copy_value(v: Any) -> Any:
    if isinstance(v, ndarray_types()):
        return v.copy()
    if isinstance(v, Tensor):
        return v.data.copy()
    return copy.deepcopy(v)


def _load_value(name: str, key: str, v: Any, p: Tensor) -> Any:
    """A state entry for ``p``: arrays copied to ``p``'s device (and dtype, when floating) and checked for shape."""
    if isinstance(v, Tensor):
        v = v.data
    if not isinstance(v, ndarray_types()):
        return copy.deepcopy(v)
    if v.shape != p.shape:
        raise ValueError(f"{name}.load_state_dict: state {key!r} has shape {v.shape} but its parameter has "
                         f"shape {p.shape}")
    v = v.astype(p.dtype) if v.dtype.kind == "f" else v.copy()  # astype copies
    return v if device_of(v) == p.device else to_device(v, p.device)


# --------------------------------------------------------- option validation helpers
def check_nonnegative(opt: str, group: dict[str, Any], *keys: str) -> None:
    """Each option in ``keys`` is a real number >= 0 (NaN fails)."""
    for key in keys:
        v = group[key]
        if not (_is_real(v) and v >= 0):
            raise ValueError(f"{opt}: invalid {key}={v!r}; expected a number >= 0")


def check_positive(opt: str, group: dict[str, Any], *keys: str) -> None:
    """Each option in ``keys`` is a real number > 0 (NaN fails)."""
    for key in keys:
        v = group[key]
        if not (_is_real(v) and v > 0):
            raise ValueError(f"{opt}: invalid {key}={v!r}; expected a number > 0")


def check_betas(opt: str, group: dict[str, Any]) -> None:
    """``betas`` is a pair of numbers in [0, 1)."""
    betas = group["betas"]
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2
            and all(_is_real(b) and 0.0 <= b < 1.0 for b in betas)):
        raise ValueError(f"{opt}: invalid betas={betas!r}; expected a pair (beta1, beta2), each in [0, 1)")


def check_foreach(opt: str, group: dict[str, Any]) -> None:
    """``foreach`` is ``None`` (decide), ``True`` (group whenever possible) or ``False`` (one parameter at a time)."""
    if group.get("foreach") not in (None, True, False):
        raise ValueError(f"{opt}: invalid foreach={group['foreach']!r}; expected None, True or False")


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)
