"""Compile a scalar function's value and gradient by trace and replay.

:func:`trace_compile` runs ``fn`` once with the engine recording as usual and reads the recorded graph back from
the output: every node between the inputs and the result, in creation order, with its op, its static
attributes and where each of its inputs comes from (an input, an earlier node, or a constant array that does
not depend on the inputs). From that list it generates one straight-line Python function on raw arrays: the
forward, then the backward in reverse order, each op written out from an array-level template where it has
one (the common elementwise, shape and linear-algebra ops) and otherwise calling the op's own ``forward`` and
its Tensor-level ``backward`` rule under ``no_grad``. None of the Python that produced the graph runs again
(model code, effect handlers, distribution objects, shape checks); for a model's potential or an SVI loss
that Python is most of the time.

A replay is only right while ``fn`` would record the same graph, which holds when ``fn`` never branches in
Python on values that depend on ``x``. While tracing, non-differentiable functions of dependent tensors
(comparisons, masks, ``argmax``, casts to integers) are recorded as ops too, so the replay recomputes them.
The trace watches for the ways a dependence of the graph itself shows:

- reading a value of a tensor that depends on ``x`` (``bool()``, ``float()``, ``int()``, ``item()``,
  ``numpy()``, ``tolist()``, ``np.asarray``) or cutting it off the graph (``detach()``);
- a random draw the replay could not repeat. Reparameterization noise drawn through
  :func:`probdl.tensor.ops.random.standard_normal_like` (Normal and the multivariate normals) is recorded as a
  ``RandomDraw`` op that draws afresh from the same generator at every replay; any other draw (a generator
  handed out by ``as_generator`` while tracing) makes the function not compilable.

Either makes the trace fail with :class:`NotCompilable`, and the caller keeps the eager function.
:func:`agrees_with` compares a compiled function with the eager one at given points, which catches what the
watch cannot see (code reading the raw ``.data`` of a dependent tensor).

:func:`trace_compile` compiles a function of several input tensors (an SVI loss of its parameters);
:func:`compile_value_and_grad` one of a single array (a model's potential).

This is the "compile by trace and replay" direction of ``DESIGN.md``: it needs ops to be uniform records with
array-level forwards, which they are.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..backend import random as _backend_random
from ..backend.linalg import solve_triangular
from .autograd import Op, no_grad, set_tracing
from .ops.base import _sum_to_array
from .ops.elementwise import _sigmoid_array
from .ops.indexing import IndexScatter
from .ops.shape import DiagonalScatter
from .tensor import Tensor

__all__ = ["NotCompilable", "CompiledFunction", "CompiledValueAndGrad", "trace_compile", "compile_value_and_grad",
           "agrees_with"]

_WATCHED = ("__bool__", "__float__", "__int__", "__index__", "item", "numpy", "tolist", "__array__", "detach")


class NotCompilable(RuntimeError):
    """The function's graph may depend on its input's values, so it cannot be replayed."""


@contextmanager
def _watch_value_reads(reads: list[str]):
    """While open, reading the value of a tensor that requires grad is noted in ``reads``."""
    originals = {name: getattr(Tensor, name) for name in _WATCHED}

    def watched(name: str, method: Callable) -> Callable:
        def wrapper(self, *args, **kwargs):
            if self.requires_grad:
                reads.append(name)
            return method(self, *args, **kwargs)

        return wrapper

    for name, method in originals.items():
        setattr(Tensor, name, watched(name, method))
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(Tensor, name, method)


class _ReplayNode:
    """What a backward rule reads of a node: ``op``, ``inputs`` (Tensors) and ``attrs``."""

    __slots__ = ("op", "inputs", "attrs")

    def __init__(self, op: type[Op], attrs: dict | None) -> None:
        self.op, self.attrs, self.inputs = op, attrs, ()


# where an input of a recorded node comes from
_INPUT, _NODE, _CONST = 0, 1, 2

# Array-level forward and backward code for the commonest ops, as Python expression templates: {a}, {b} are
# the input variables, {o} the output, {g} the incoming gradient, {A} the op's attribute dict. The backward
# templates are the same math as each op's Tensor-level rule. Ops without templates call their own forward
# and their Tensor-level backward rule (under no_grad) from the generated code.
_FORWARD = {
    "Add": "{a} + {b}", "Sub": "{a} - {b}", "Mul": "{a} * {b}", "Div": "{a} / {b}", "Neg": "-{a}",
    "Exp": "_np.exp({a})", "Log": "_np.log({a})", "Log1p": "_np.log1p({a})", "Expm1": "_np.expm1({a})",
    "Sqrt": "_np.sqrt({a})", "Square": "{a} * {a}", "Tanh": "_np.tanh({a})", "PowScalar": "{a} ** {A}['p']",
    "Reshape": "{a}.reshape({A}['shape'])", "GetItem": "{a}[{A}['key']]",
    "Transpose": "{a}.transpose({A}['axes'])", "Tril": "_np.tril({a}, {A}['k'])", "Triu": "_np.triu({a}, {A}['k'])",
    "Where": "_np.where({x0}, {x1}, {x2})",
    "Sum": "_np.add.reduce({a}, axis={A}['axes'], keepdims={A}['keepdims'])",
}
_BACKWARD = {  # op name -> one template per input
    "Add": ("{g}", "{g}"), "Sub": ("{g}", "-{g}"), "Mul": ("{g} * {b}", "{g} * {a}"),
    "Div": ("{g} / {b}", "-({g} / {b}) * {o}"), "Neg": ("-{g}",), "Exp": ("{g} * {o}",),
    "Log": ("{g} / {a}",), "Log1p": ("{g} / ({a} + 1)",), "Expm1": ("{g} * ({o} + 1)",),
    "Sqrt": ("{g} / (2 * {o})",), "Square": ("{g} * (2 * {a})",), "Tanh": ("{g} * (1 - {o} * {o})",),
    "Sigmoid": ("{g} * ({o} * (1 - {o}))",), "Softplus": ("{g} * _sigmoid({a})",),
    "PowScalar": ("{g} * ({A}['p'] * {a} ** ({A}['p'] - 1))",),
    "Reshape": ("{g}.reshape({S0})",), "Sum": ("_expand({g}, {K}, {S0})",),
    "GetItem": ("_index_scatter({g}, {A}['key'], {A}['basic'], {S0})",),
    "Transpose": ("{g}.transpose(_np.argsort({A}['axes']))",), "Tril": ("_np.tril({g}, {A}['k'])",),
    "Triu": ("_np.triu({g}, {A}['k'])",),
    "MatMul": ("_sum_to(_matmul_grad_a({g}, {b}, {A}), {S0})", "_sum_to(_matmul_grad_b({g}, {a}, {A}), {S1})"),
    "Diagonal": ("_diagonal_scatter({g}, {S0}, **{A})",),
    "Where": (None, "_np.where({x0}, {g}, 0.0)", "_np.where({x0}, 0.0, {g})"),
    "SolveTriangular": ("_solve_triangular_grad_a({g}, {a}, {o}, {A}, {S0})",
                        "_sum_to(_solve_triangular_grad_b({g}, {a}, {A}), {S1})"),
    "IndexScatter": ("{g}[{A}['key']]",),
    "DiagonalScatter": ("_np.diagonal({g}, {A}['offset'], {A}['axis1'], {A}['axis2'])",),
}
_ELEMENTWISE_BROADCAST = {"Add", "Sub", "Mul", "Div", "Where"}  # templates whose input gradients may need _sum_to


def _expand(g: Any, kept: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """The gradient of a sum: g (with the summed axes kept as 1s: ``kept``) copied over ``shape``."""
    out = np.empty(shape, dtype=np.result_type(g))
    out[...] = np.reshape(g, kept)
    return out


def _matmul_grad_a(g: Any, b: Any, attrs: dict | None) -> Any:
    """MatMul's rule for its first input, C = op(A) op(B) (op transposes when ``ta``/``tb``): Ā = Ḡ op(B)ᵀ,
    or op(B) Ḡᵀ when A is transposed (before summing broadcast batch dims)."""
    ta, tb = (attrs["ta"], attrs["tb"]) if attrs else (False, False)
    if ta:
        return (b.swapaxes(-1, -2) if tb else b) @ g.swapaxes(-1, -2)
    return g @ (b if tb else b.swapaxes(-1, -2))


def _matmul_grad_b(g: Any, a: Any, attrs: dict | None) -> Any:
    """MatMul's rule for its second input: B̄ = op(A)ᵀ Ḡ, or Ḡᵀ op(A) when B is transposed."""
    ta, tb = (attrs["ta"], attrs["tb"]) if attrs else (False, False)
    if tb:
        return g.swapaxes(-1, -2) @ (a.swapaxes(-1, -2) if ta else a)
    return (a if ta else a.swapaxes(-1, -2)) @ g


def _solve_triangular_grad_b(g: Any, a: Any, attrs: dict) -> Any:
    """SolveTriangular's rule for the right-hand side, X = op(A)⁻¹ B: B̄ = op(A)⁻ᵀ X̄."""
    return solve_triangular(a, g, attrs["lower"], not attrs["trans"], attrs["unit"])


def _solve_triangular_grad_a(g: Any, a: Any, x: Any, attrs: dict, a_shape: tuple[int, ...]) -> Any:
    """SolveTriangular's rule for the matrix: Ā = -B̄ Xᵀ (transposed when A is), masked to A's triangle."""
    lower, unit = attrs["lower"], attrs["unit"]
    gb = _solve_triangular_grad_b(g, a, attrs)
    gm = -(x @ gb.swapaxes(-1, -2)) if attrs["trans"] else -(gb @ x.swapaxes(-1, -2))
    k = (-1 if lower else 1) if unit else 0
    return _sum_to_array(np.tril(gm, k) if lower else np.triu(gm, k), a_shape)


def _tensor_rule(op: type[Op], attrs: dict | None) -> Callable:
    """The op's own Tensor-level backward rule, called on arrays: (inputs, needs, out, g) -> input gradients."""
    node = _ReplayNode(op, attrs)

    def rule(args: list, needs: tuple[bool, ...], out: Any, g: Any) -> list:
        inputs = []
        for a, need in zip(args, needs):
            t = Tensor._wrap(a)
            t.requires_grad = need
            inputs.append(t)
        node.inputs = tuple(inputs)
        out_t = Tensor._wrap(out)
        out_t.requires_grad = True
        with no_grad():
            result = op.backward(node, out_t, Tensor._wrap(np.asarray(g)))
        node.inputs = ()
        grads = []
        for r, a in zip(result, args):
            if r is None:
                grads.append(None)
            else:
                d = r.data
                grads.append(d.astype(a.dtype) if d.dtype != np.result_type(a) else d)
        return grads

    return rule


class CompiledFunction:
    """``f(*arrays) -> (value, (gradient per input))`` by replaying a recorded graph as generated straight-line
    Python (see the module docstring). ``num_ops`` is the number of recorded ops; ``source`` the generated code;
    ``num_inputs`` how many arrays it takes."""

    __slots__ = ("fn", "num_ops", "num_inputs", "source", "op_names")

    def __init__(self, ops: list, sources: list, attrs: list, consts: list, shapes: list, in_shapes: list,
                 in_float: list, num_inputs: int) -> None:
        self.num_ops, self.num_inputs = len(ops), num_inputs
        self.op_names = [op.__name__ for op in ops]
        namespace: dict[str, Any] = {"_np": np, "_arr": np.asarray, "_sum_to": _sum_to_array, "_expand": _expand,
                                     "_index_scatter": IndexScatter.forward, "_sigmoid": _sigmoid_array,
                                     "_matmul_grad_a": _matmul_grad_a, "_matmul_grad_b": _matmul_grad_b,
                                     "_diagonal_scatter": DiagonalScatter.forward,
                                     "_solve_triangular_grad_a": _solve_triangular_grad_a,
                                     "_solve_triangular_grad_b": _solve_triangular_grad_b}
        for k, c in enumerate(consts):
            namespace[f"c{k}"] = c

        def var(src: tuple) -> str:
            kind, ref = src
            return f"x{ref}" if kind == _INPUT else f"v{ref}" if kind == _NODE else f"c{ref}"

        inputs = [f"x{k}" for k in range(num_inputs)]
        lines = [f"def replay({', '.join(inputs)}):"]
        for i, (op, src, a) in enumerate(zip(ops, sources, attrs)):
            namespace[f"A{i}"] = a
            args = [var(t) for t in src]
            template = _FORWARD.get(op.__name__) if op.__module__.startswith(__package__) else None
            if template is not None:
                lines.append(f"    v{i} = " + template.format(a=args[0], b=args[-1], A=f"A{i}", **_numbered(args)))
            else:
                namespace[f"F{i}"] = op.forward
                call = f"F{i}({', '.join(args + ([f'**A{i}'] if a else []))})"
                lines.append(f"    v{i} = _arr({call})")
        last = len(ops) - 1
        lines.extend(f"    g{name} = _np.zeros_like({name})" for name in inputs)
        if last > 0:
            lines.append("    " + " = ".join(f"g{i}" for i in range(last)) + " = None")
        lines.append(f"    g{last} = _np.ones_like(v{last})")
        for i in range(last, -1, -1):
            op, src, a = ops[i], sources[i], attrs[i]
            args = [var(t) for t in src]
            needs = tuple(kind != _CONST and is_float for (kind, _), is_float in zip(src, in_float[i]))
            if not any(needs) or getattr(op, "no_gradient", False):
                continue
            body = []
            templates = _BACKWARD.get(op.__name__) if op.__module__.startswith(__package__) else None
            if op.__name__ == "GetItem" and src[0][0] == _INPUT and templates is not None:
                # a slice of an input (a model's site in the flat vector): add the gradient where it was read
                gx = "g" + var(src[0])
                body.append(f"{gx}[A{i}['key']] += g{i}" if a["basic"] else f"_np.add.at({gx}, A{i}['key'], g{i})")
            elif templates is not None:
                for j, shape in enumerate(in_shapes[i]):
                    namespace[f"S{i}_{j}"] = shape
                if op.__name__ == "Sum":  # the input's shape with the summed axes as 1s
                    namespace[f"K{i}"] = tuple(1 if d in a["axes"] else n for d, n in enumerate(in_shapes[i][0]))
                for j, (t_src, need, template) in enumerate(zip(src, needs, templates)):
                    if not need or template is None:  # no gradient asked for, or none defined (Where's condition)
                        continue
                    expr = template.format(g=f"g{i}", a=args[0], b=args[-1], o=f"v{i}", A=f"A{i}", S0=f"S{i}_0",
                                           S1=f"S{i}_1", K=f"K{i}", **_numbered(args))
                    if op.__name__ in _ELEMENTWISE_BROADCAST and in_shapes[i][j] != shapes[i]:
                        expr = f"_sum_to({expr}, S{i}_{j})"
                    body.append(_accumulate(var(t_src), expr))
            else:
                namespace[f"T{i}"] = _tensor_rule(op, a)
                body.append(f"_t = T{i}([{', '.join(args)}], {needs!r}, v{i}, g{i})")
                for j, (t_src, need) in enumerate(zip(src, needs)):
                    if need:
                        body.append(f"if _t[{j}] is not None:")
                        body.append("    " + _accumulate(var(t_src), f"_t[{j}]"))
            lines.append(f"    if g{i} is not None:")
            lines.extend("        " + b for b in body)
        lines.append(f"    return v{last}, ({''.join('g' + name + ', ' for name in inputs)})")
        self.source = "\n".join(lines) + "\n"
        exec(compile(self.source, "<probdl compiled value_and_grad>", "exec"), namespace)
        self.fn = namespace["replay"]

    def __call__(self, *arrays: Any) -> tuple[Any, tuple]:
        return self.fn(*arrays)


class CompiledValueAndGrad:
    """``f(x: ndarray) -> (value: float, gradient: ndarray)``: a :class:`CompiledFunction` of one input."""

    __slots__ = ("compiled", "_dtype", "_shape", "num_ops", "source")

    def __init__(self, compiled: CompiledFunction, x0: np.ndarray) -> None:
        self.compiled, self._dtype, self._shape = compiled, x0.dtype, x0.shape
        self.num_ops, self.source = compiled.num_ops, compiled.source

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        value, (grad,) = self.compiled.fn(np.asarray(x, dtype=self._dtype).reshape(self._shape))
        return float(value), grad


def _numbered(args: list[str]) -> dict[str, str]:
    """Template keys x0, x1, ... for the input variables."""
    return {f"x{k}": name for k, name in enumerate(args)}


def _accumulate(target: str, expr: str) -> str:
    """One line adding ``expr`` into gradient variable ``target`` (an input's, ``gx0``, is an array from the
    start)."""
    if target.startswith("x"):
        return f"g{target} = g{target} + ({expr})"
    g = "g" + target[1:]
    return f"_e = {expr}; {g} = _e if {g} is None else {g} + _e"


def trace_compile(fn: Callable[[], Tensor], inputs: list[Tensor]) -> CompiledFunction:
    """Trace ``fn()`` (a scalar function of the tensors ``inputs``, which must require grad) and return its
    compiled value and gradients in the inputs: ``compiled(*arrays) -> (value, (grad per input))``. Raises
    :class:`NotCompilable` when the trace shows the graph may depend on values (see the module docstring).
    Draws of reparameterization noise (``standard_normal_like``) are recorded and redrawn at every replay;
    any other random draw makes the function not compilable."""
    reads: list[str] = []
    previous = set_tracing(True)
    watch_before = _backend_random.draw_watch
    draws: list[str] = []
    _backend_random.draw_watch = draws  # every random draw hands out a generator through as_generator
    try:
        with _watch_value_reads(reads):
            out = fn()
    finally:
        set_tracing(previous)
        _backend_random.draw_watch = watch_before
    if draws:
        raise NotCompilable(f"the function makes {draws[0]} that a replay cannot repeat")
    if reads:
        raise NotCompilable(f"the function reads the value of a tensor that depends on its input "
                            f"({reads[0]}), so its graph may change with the input")
    if not isinstance(out, Tensor) or out.data.size != 1:
        raise NotCompilable("the function must return a scalar Tensor")
    if out._node is None:
        raise NotCompilable("the output does not depend on the input")
    input_index = {id(t): k for k, t in enumerate(inputs)}
    # the nodes between the inputs and out, in creation order (producers before consumers)
    found: dict[int, Tensor] = {}
    stack = [out]
    while stack:
        t = stack.pop()
        if id(t) in found or t._node is None or id(t) in input_index:
            continue
        found[id(t)] = t
        stack.extend(t._node.inputs)
    order = sorted(found.values(), key=lambda t: t._node.seq)
    if order[-1] is not out:
        raise NotCompilable("internal: the output is not the last recorded node")
    position = {id(t): i for i, t in enumerate(order)}
    ops, sources, attrs, consts, shapes, in_shapes, in_float = [], [], [], [], [], [], []
    const_index: dict[int, int] = {}
    for t in order:
        node = t._node
        src = []
        for inp in node.inputs:
            if id(inp) in input_index:
                src.append((_INPUT, input_index[id(inp)]))
            elif id(inp) in position:
                src.append((_NODE, position[id(inp)]))
            else:  # data, or a leaf that is not an input (a frozen parameter): its current array is replayed
                k = const_index.setdefault(id(inp), len(consts))
                if k == len(consts):
                    consts.append(inp.data)
                src.append((_CONST, k))
        ops.append(node.op)
        sources.append(tuple(src))
        attrs.append(node.attrs)
        shapes.append(tuple(t.data.shape))
        in_shapes.append([tuple(inp.data.shape) for inp in node.inputs])
        in_float.append([inp.data.dtype.kind in "fc" for inp in node.inputs])
    return CompiledFunction(ops, sources, attrs, consts, shapes, in_shapes, in_float, len(inputs))


def compile_value_and_grad(fn: Callable[[Tensor], Tensor], x0: np.ndarray) -> CompiledValueAndGrad:
    """Trace ``fn`` at ``x0`` and return its compiled value-and-gradient ``f(x) -> (float, ndarray)``; raises
    :class:`NotCompilable` when the trace shows that the graph may depend on the input's values."""
    x0 = np.asarray(x0)
    x = Tensor(x0.copy(), requires_grad=True)
    return CompiledValueAndGrad(trace_compile(lambda: fn(x), [x]), x0)


def agrees_with(compiled: Callable[[np.ndarray], tuple[float, np.ndarray]],
                eager: Callable[[np.ndarray], tuple[float, np.ndarray]], points: Iterable[np.ndarray],
                rtol: float = 1e-9) -> bool:
    """Whether ``compiled`` and ``eager`` give the same value and gradient (to ``rtol`` of their scale) at each
    point where the eager one is finite."""
    for z in points:
        v_e, g_e = eager(z)
        if not (math.isfinite(v_e) and np.all(np.isfinite(g_e))):
            continue
        try:
            with np.errstate(all="ignore"):
                v_c, g_c = compiled(z)
        except Exception:  # noqa: BLE001  (any failure of the replay where eager works: they disagree)
            return False
        if abs(v_c - v_e) > rtol * max(1.0, abs(v_e)):
            return False
        scale = max(1.0, float(np.max(np.abs(g_e)))) if g_e.size else 1.0
        if g_c.shape != g_e.shape or np.max(np.abs(g_c - g_e), initial=0.0) > rtol * scale:
            return False
    return True
