"""Function transforms: ``grad``, ``value_and_grad``, ``vjp``, ``jacobian``, ``hessian``, ``hvp``.

They take a Python function of tensors and return a new function, as in JAX::

    df = probdl.grad(lambda x: (x ** 3).sum())
    d2f = probdl.grad(lambda x: probdl.grad(lambda y: (y ** 3).sum())(x).sum())

Arguments may be Tensors, arrays, numbers, or dicts, lists and tuples of them. The
transforms record the graph even inside ``no_grad``. Called inside another transform,
or on an argument that is itself part of a recorded graph, they build the graph of the
derivative too (``create_graph``), so transforms nest to any order; otherwise the
results are plain constants and the graph is freed at once.

Each differentiated argument gets its own node (:func:`identity`), so ``grad`` inside
``grad`` never confuses the inner variable with an outer one that has the same value.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from ..backend import get_array_module, is_floating
from .autograd import enable_grad, is_grad_enabled, run_backward
from .ops.base import identity
from .ops.shape import stack
from .tensor import Tensor, as_array

__all__ = ["grad", "value_and_grad", "vjp", "jacobian", "hessian", "hvp"]

_depth = 0  # how many transforms are running; inside one, derivatives must stay differentiable


# -------------------------------------------------------------- trees of tensors
def _flatten(tree: Any) -> tuple[list, Any]:
    """Leaves (anything that is not a dict, list or tuple) and a structure to rebuild the tree from."""
    if isinstance(tree, dict):
        keys = list(tree)
        parts = [_flatten(tree[k]) for k in keys]
        return [x for p in parts for x in p[0]], ("dict", keys, [p[1] for p in parts])
    if isinstance(tree, (list, tuple)):
        parts = [_flatten(v) for v in tree]
        return [x for p in parts for x in p[0]], (type(tree), None, [p[1] for p in parts])
    return [tree], None


def _unflatten(struct: Any, leaves: list) -> Any:
    it = iter(leaves)

    def build(s):
        if s is None:
            return next(it)
        kind, keys, subs = s
        vals = [build(c) for c in subs]
        return dict(zip(keys, vals)) if kind == "dict" else kind(vals)

    return build(struct)


def _watch(x: Any, name: str) -> tuple[Tensor, bool]:
    """A tensor to differentiate with respect to, and whether it hangs off an outer graph."""
    if isinstance(x, Tensor):
        if not is_floating(x.dtype):
            raise TypeError(f"{name}: cannot differentiate with respect to a tensor of dtype {x.dtype}; "
                            "only floating inputs have gradients")
        if x.requires_grad and is_grad_enabled():
            with enable_grad():
                return identity(x), True
        return Tensor._wrap(x.data).requires_grad_(True), False
    arr = as_array(x)
    if not is_floating(arr.dtype):
        raise TypeError(f"{name}: cannot differentiate with respect to {type(x).__name__} of dtype {arr.dtype}; "
                        "pass floats")
    return Tensor._wrap(arr).requires_grad_(True), False


def _prepare(fname: str, args: tuple, argnums: int | Sequence[int]):
    """Replace the differentiated arguments by watched tensors; return the new args and what to rebuild."""
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    args = list(args)
    watched, structs, connected = [], [], False
    for i in nums:
        if not -len(args) <= i < len(args):
            raise ValueError(f"{fname}: argnums {argnums} out of range for {len(args)} positional arguments")
        leaves, struct = _flatten(args[i])
        ts = []
        for leaf in leaves:
            t, c = _watch(leaf, f"{fname} (argument {i})")
            ts.append(t)
            connected |= c
        watched.append(ts)
        structs.append(struct)
        args[i] = _unflatten(struct, ts)
    return args, watched, structs, single, connected


def _zeros_for(t: Tensor) -> Tensor:
    return Tensor._wrap(get_array_module(t.data).zeros_like(t.data))


def _gather(grads: list, watched: list, structs: list, single: bool) -> Any:
    out, k = [], 0
    for ts, struct in zip(watched, structs):
        gs = [grads[k + j] if grads[k + j] is not None else _zeros_for(t) for j, t in enumerate(ts)]
        k += len(ts)
        out.append(_unflatten(struct, gs))
    return out[0] if single else tuple(out)


def _scalar_output(fname: str, out: Any) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{fname}: the function must return a Tensor, got {type(out).__name__}")
    if out.data.size != 1:
        raise ValueError(f"{fname}: the function must return a single-element tensor, got shape {out.shape}; "
                         "reduce it (e.g. .sum()) or use jacobian/vjp")
    return out


def _call_recorded(f: Callable, args: Sequence, kwargs: dict) -> Any:
    """Run ``f`` recording the graph, marked as inside a transform so nested transforms keep their graphs."""
    global _depth
    _depth += 1
    try:
        with enable_grad():
            return f(*args, **kwargs)
    finally:
        _depth -= 1


# -------------------------------------------------------------- transforms
def value_and_grad(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """A function returning ``(f(*args), grad)`` (``((value, aux), grad)`` with ``has_aux``)."""

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any):
        new_args, watched, structs, single, connected = _prepare("grad", args, argnums)
        create = connected or _depth > 0
        res = _call_recorded(f, new_args, kwargs)
        out, aux = (res if has_aux else (res, None))
        out = _scalar_output("grad", out)
        flat = [t for ts in watched for t in ts]
        if out.requires_grad:
            ones = Tensor._wrap(get_array_module(out.data).ones_like(out.data))
            grads = run_backward([out], [ones], inputs=flat, create_graph=create)
        else:
            grads = [None] * len(flat)
        value = out if create else out.detach()
        result = _gather(grads, watched, structs, single)
        return ((value, aux) if has_aux else value), result

    return wrapped


def grad(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """The gradient of a scalar function with respect to argument ``argnums`` (a tuple of them for several).

    ``grad(grad(f))`` gives second derivatives of scalar functions.
    """
    vg = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any):
        (value, g) = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapped


def vjp(f: Callable, *primals: Any, has_aux: bool = False):
    """``(f(*primals), vjp_fn)``: ``vjp_fn(cotangent)`` returns the tuple of cotangent · ∂f/∂primal_i.

    ``f`` returns one tensor; ``vjp_fn`` may be called any number of times.
    """
    return _vjp("vjp", f, primals, has_aux)


def _vjp(fname: str, f: Callable, primals: tuple, has_aux: bool = False):
    new_args, watched, structs, _, connected = _prepare(fname, primals, tuple(range(len(primals))))
    create = connected or _depth > 0
    res = _call_recorded(f, new_args, {})
    out, aux = (res if has_aux else (res, None))
    if not isinstance(out, Tensor):
        raise TypeError(f"{fname}: the function must return a Tensor, got {type(out).__name__}")
    flat = [t for ts in watched for t in ts]

    def vjp_fn(cotangent: Any) -> tuple:
        ct = cotangent if isinstance(cotangent, Tensor) else Tensor._wrap(as_array(cotangent, out.dtype))
        if ct.shape != out.shape:
            raise ValueError(f"{fname}: cotangent has shape {ct.shape} but the output has shape {out.shape}")
        if out.requires_grad:
            grads = run_backward([out], [ct], inputs=flat, retain_graph=True, create_graph=create)
        else:
            grads = [None] * len(flat)
        return _gather(grads, watched, structs, False)

    value = out if create else out.detach()
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def jacobian(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Jacobian of a tensor-valued function: shape ``out.shape + arg.shape`` (reverse mode, one
    backward pass per output element)."""

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any):
        single = isinstance(argnums, int)
        nums = (argnums,) if single else tuple(argnums)

        def g(*xs):
            full = list(args)
            for i, x in zip(nums, xs):
                full[i] = x
            return f(*full, **kwargs)

        out, vjp_fn = _vjp("jacobian", g, tuple(args[i] for i in nums))
        xp = get_array_module(out.data)
        n = out.data.size
        rows = []
        for k in range(n):
            e = xp.zeros(n, dtype=out.data.dtype)
            e[k] = 1
            rows.append(vjp_fn(Tensor._wrap(e.reshape(out.shape))))
        jacs = []
        for j, i in enumerate(nums):
            parts = [r[j] for r in rows]
            if not all(isinstance(p, Tensor) for p in parts):
                raise TypeError("jacobian: arguments must be tensors or arrays, not dicts or lists")
            if parts:
                jacs.append(stack(parts, 0).reshape(out.shape + parts[0].shape))
            else:
                jacs.append(Tensor._wrap(xp.zeros(out.shape + as_array(args[i]).shape, dtype=out.data.dtype)))
        return jacs[0] if single else tuple(jacs)

    return wrapped


def hessian(f: Callable, argnums: int = 0) -> Callable:
    """The Hessian of a scalar function: shape ``arg.shape + arg.shape``."""
    if not isinstance(argnums, int):
        raise TypeError("hessian: argnums must be a single int")
    return jacobian(grad(f, argnums), argnums)


def hvp(f: Callable, x: Any, v: Any) -> tuple[Tensor, Tensor]:
    """``(∇f(x), ∇²f(x) v)`` without forming the Hessian: two backward passes."""
    g, vjp_fn = _vjp("hvp", grad(f), (x,))
    (hv,) = vjp_fn(v if isinstance(v, Tensor) else Tensor._wrap(as_array(v, g.dtype)))
    return g, hv
