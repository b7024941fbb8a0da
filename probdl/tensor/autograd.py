"""Graph nodes, op application and the backward pass.

A primitive op is a class with two static methods side by side::

    class Exp(Op):
        forward = staticmethod(lambda x: get_array_module(x).exp(x))   # raw arrays in, raw array out
        @staticmethod
        def backward(node, out, g):                                    # Tensor ops, so it can be differentiated
            return (g * out,)

:func:`apply` runs ``forward`` on the inputs' arrays and, when gradients are being
recorded, ties the result to a :class:`Node` holding the op, its input tensors and
its static attributes: the uniform record a trace-and-replay compiler needs.

:func:`run_backward` walks the graph in reverse creation order (a heap, so deep
graphs need no recursion), calls each node's ``backward`` with the
node, its output tensor and the incoming gradient, sums the gradients of shared
inputs, and frees each node as soon as it is used unless ``retain_graph``. With
``create_graph`` the backward rules are themselves recorded, which is how
higher derivatives work; without it they run under no-grad and build nothing.

References: Griewank & Walther, *Evaluating Derivatives* (2008), ch. 3 (reverse mode).
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backend.arrays import add_at

if TYPE_CHECKING:
    from .tensor import Tensor

__all__ = [
    "Op",
    "Node",
    "apply",
    "run_backward",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
]

_grad_enabled: bool = True
# True while probdl.tensor.compile records a function: non-differentiable functions of tensors that require
# grad (comparisons, masks, argmax) are then recorded too, so that a replay recomputes them
_tracing: bool = False


def is_tracing() -> bool:
    """True while :mod:`probdl.tensor.compile` traces a function."""
    return _tracing


def set_tracing(mode: bool) -> bool:
    """Turn tracing on or off; returns the previous mode."""
    global _tracing
    prev, _tracing = _tracing, bool(mode)
    return prev


def is_grad_enabled() -> bool:
    """True when ops record the graph that backward walks."""
    return _grad_enabled


class _GradMode:
    """Base of the grad-mode contexts: sets the mode on entry, restores the previous one on exit; also a decorator."""

    __slots__ = ("mode", "prev")

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self.prev = _grad_enabled

    def __enter__(self) -> None:
        global _grad_enabled
        self.prev = _grad_enabled
        _grad_enabled = self.mode

    def __exit__(self, *exc: Any) -> None:
        global _grad_enabled
        _grad_enabled = self.prev

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _GradMode(mode):
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Context (or decorator) in which ops record no graph: inference, optimizer updates, samplers."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(_GradMode):
    """Context (or decorator) that records the graph even inside ``no_grad``."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(True)


class set_grad_enabled(_GradMode):
    """Turn graph recording on or off. As in PyTorch it acts at once as a plain call
    (``set_grad_enabled(False)``), and as a context manager it restores the previous mode on exit."""

    __slots__ = ()

    def __init__(self, mode: bool) -> None:
        global _grad_enabled
        super().__init__(mode)
        _grad_enabled = self.mode

    def __enter__(self) -> None:  # the mode was set in __init__; prev holds the mode before it
        pass


class Op:
    """Base of the primitive ops. Subclasses define static ``forward`` and ``backward``.

    ``forward(*arrays, **attrs)`` computes on raw ``xp`` arrays and never branches on
    their values in Python. ``backward(node, out, g)`` returns one gradient (a Tensor,
    or ``None`` for no gradient) per input, built from Tensor ops, each already
    summed to its input's shape. ``node.inputs`` holds the input tensors and
    ``node.attrs`` the static attributes (a dict or ``None``).
    """

    __slots__ = ()

    #: True for an op whose gradient for its single input is "zeros with g added at a key" (indexing).
    #: Without a graph to record, backward then adds g into one buffer in place (``scatter_key(node)``
    #: gives ``(key, basic)``), so taking L slices of a tensor costs O(L) in backward, not O(L²).
    scatters = False

    @staticmethod
    def forward(*arrays: Any, **attrs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(node: Node, out: Tensor, g: Tensor) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError


_node_counter = itertools.count()


class Node:
    """One recorded op application: the op, its input tensors, its static attributes.

    The node does not hold its output (that would be a reference cycle); the
    backward pass hands the output to the rule. ``inputs`` becomes ``None`` when
    the node is freed after use.
    """

    __slots__ = ("op", "inputs", "attrs", "seq")

    def __init__(self, op: type[Op], inputs: tuple, attrs: dict | None) -> None:
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.seq = next(_node_counter)  # creation order: consumers always have a larger seq than producers

    def __repr__(self) -> str:
        return f"<{self.op.__name__}Backward>"


def _describe(inputs: Sequence[Tensor]) -> str:
    return ", ".join(f"{tuple(t.data.shape)} {t.data.dtype}" for t in inputs)


def _op_error(op: type[Op], inputs: Sequence[Tensor], err: Exception) -> Exception:
    """Rewrite an array-level failure as an error that names the op and its inputs."""
    from ..backend import device_of
    from ..backend.linalg import LinAlgError

    if isinstance(err, LinAlgError):
        return err
    devices = {str(device_of(t.data)) for t in inputs}
    name = op.__name__.lower()
    if len(devices) > 1:
        return RuntimeError(f"{name}: inputs are on different devices ({', '.join(sorted(devices))}); "
                            f"move them to one device with .to(device)")
    kind = type(err) if isinstance(err, (ValueError, TypeError, IndexError)) else RuntimeError
    return kind(f"{name}: {err} (inputs: {_describe(inputs)})")


def apply(op: type[Op], inputs: tuple, attrs: dict | None = None) -> Tensor:
    """Run ``op`` forward on the inputs' arrays and record it when any input needs a gradient."""
    try:
        n = len(inputs)
        if attrs is None:
            data = (op.forward(inputs[0].data, inputs[1].data) if n == 2 else
                    op.forward(inputs[0].data) if n == 1 else op.forward(*[t.data for t in inputs]))
        else:
            data = (op.forward(inputs[0].data, **attrs) if n == 1 else
                    op.forward(*[t.data for t in inputs], **attrs))
    except Exception as err:  # re-raised with the op's name and the input shapes
        raise _op_error(op, inputs, err) from err
    if type(data) is not np.ndarray and isinstance(data, np.generic):  # NumPy reductions return scalars
        data = np.asarray(data)
    t = Tensor.__new__(Tensor)
    t.data = data
    t.grad = None
    t._retain = False
    if _grad_enabled:
        for x in inputs:
            if x.requires_grad:
                t.requires_grad = True
                t._node = Node(op, inputs, attrs)
                return t
    t.requires_grad = False
    t._node = None
    return t


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor],
    inputs: Sequence[Tensor] | None = None,
    retain_graph: bool = False,
    create_graph: bool = False,
) -> list[Tensor | None] | None:
    """Reverse-mode sweep from ``roots`` seeded with ``root_grads``.

    With ``inputs=None`` the gradients accumulate into the ``.grad`` of every leaf
    that requires grad (``Tensor.backward``). With ``inputs`` given, nothing is
    accumulated: the gradients with respect to those tensors (leaves or not) are
    returned, ``None`` for an input the roots do not depend on (``probdl.grad``).

    Nodes are processed in decreasing creation order (a heap keyed by ``Node.seq``):
    every consumer of a tensor was created after it, so when a tensor is popped all
    its gradient contributions have arrived. No separate topological sort, no
    recursion, and only the nodes that receive a gradient are visited.
    """
    retain_graph = retain_graph or create_graph  # the derivative's graph reaches into the forward graph
    targets = {id(x): i for i, x in enumerate(inputs)} if inputs is not None else None
    results: list = [None] * len(inputs) if inputs is not None else []
    # id(tensor) -> [tensor, gradient so far, whether that gradient's array is ours to add into in place]
    pending: dict[int, list] = {}
    heap: list[tuple[int, int]] = []  # (-seq, id) of the nodes still to run, latest first
    assigned: set[int] = set()
    scatter_in_place = not create_graph
    incoming = [(r, g, None) for r, g in zip(roots, root_grads)]

    def add_scatter(entry: list, key: Any, basic: bool, g: Any) -> None:
        """Add ``g`` at ``key`` of the entry's gradient, in place in an array we own."""
        if not entry[2]:
            buf = entry[1].data.copy() if entry[1] is not None else None
            if buf is None:
                buf = _zeros_like(entry[0].data)
            entry[1], entry[2] = Tensor._wrap(buf), True
        if basic:
            entry[1].data[key] += g
        else:
            add_at(entry[1].data, key, g)

    with _GradMode(create_graph):
        while True:
            for t, g, key in incoming:  # deliver each gradient (dense, or a scatter at key) to its tensor
                k = id(t)
                entry = pending.get(k)
                if entry is None:
                    node = t._node
                    if targets is not None and k in targets or node is None:
                        if (k not in targets) if targets is not None else not t.requires_grad:
                            continue  # a leaf that was not asked for, or one that takes no gradient
                        # leaves and requested inputs need no ordering: they are finished after the sweep
                    else:
                        if node.inputs is None:
                            raise RuntimeError(
                                f"backward: the graph through {node!r} has already been freed by an earlier "
                                "backward; pass retain_graph=True to the first backward (or grad) to walk it again")
                        heappush(heap, (-node.seq, k))
                    if key is None:
                        pending[k] = [t, g, False]
                        continue
                    entry = pending[k] = [t, None, False]
                if key is not None:
                    add_scatter(entry, key[0], key[1], g)
                elif entry[2] and scatter_in_place:
                    entry[1].data += g.data
                else:
                    entry[1] = entry[1] + g
                    entry[2] = scatter_in_place
            if not heap:
                break
            t, g, _ = pending.pop(heappop(heap)[1])
            incoming = []
            node = t._node
            if t._retain and targets is None:
                _accumulate_leaf(t, g, create_graph, assigned)
            if scatter_in_place and node.op.scatters:  # the input's gradient is zeros with g added at a key
                x = node.inputs[0]
                if x.requires_grad:
                    gd = g.data if g.data.dtype == x.data.dtype else g.data.astype(x.data.dtype)
                    incoming.append((x, gd, node.op.scatter_key(node)))
            else:
                for x, gx in zip(node.inputs, node.op.backward(node, t, g)):
                    if gx is None or not x.requires_grad:
                        continue
                    xd, gd = x.data, gx.data
                    if gd.shape != xd.shape:
                        raise RuntimeError(f"internal error: {node!r} gave a gradient of shape {gd.shape} "
                                           f"for an input of shape {xd.shape}")
                    incoming.append((x, gx if gd.dtype == xd.dtype else gx.astype(xd.dtype), None))
            if not retain_graph:
                node.inputs = None
                node.attrs = None
        for k, (t, g, _) in pending.items():  # what is left: leaves and requested inputs, their gradients complete
            if targets is not None:
                results[targets[k]] = g
            else:
                _accumulate_leaf(t, g, create_graph, assigned)
    return results if targets is not None else None


def composite_backward(inputs: Sequence[Tensor], composite: Tensor, g: Tensor) -> tuple:
    """A fused op's backward when it must itself be differentiable (``create_graph``): the gradients of
    ``composite`` (the op's output rebuilt from differentiable ops on its ``inputs``) seeded with ``g``, one per
    input, ``None`` where an input takes no gradient."""
    with_grad = [t for t in inputs if t.requires_grad]
    grads = iter(run_backward([composite], [g], inputs=with_grad, create_graph=True))
    return tuple(next(grads) if t.requires_grad else None for t in inputs)


def _zeros_like(a: Any) -> Any:
    from ..backend import get_array_module

    return get_array_module(a).zeros(a.shape, dtype=a.dtype)


def _accumulate_leaf(t: Tensor, g: Tensor, create_graph: bool, assigned: set[int]) -> None:
    """Add ``g`` into ``t.grad``; never let two leaves share one gradient array."""
    if not create_graph:
        data = g.data
        base = data if data.base is None else data.base
        # A view may be read-only (a broadcast); an array already given to another leaf is shared: copy it.
        if id(base) in assigned or (data.base is not None and not getattr(data.flags, "writeable", True)):
            g = Tensor._wrap(data.copy())
            base = g.data
        elif g._node is not None or g.requires_grad:
            g = Tensor._wrap(data)
        assigned.add(id(base))
    if t.grad is None:
        t.grad = g
    else:
        t.grad = t.grad + g


from .tensor import Tensor  # noqa: E402  (Tensor needs this module's names at import time)
