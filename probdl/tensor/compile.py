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

Before generating, the graph is simplified (:func:`_simplify`: identities such as ``x - 0`` or ``x / 1`` that
distributions with default parameters record, double negations and unused nodes go), and everything the
fixed shapes decide is decided once (:func:`_specialized`: triangle masks, diagonal indices, einsum
subscripts, whether a broadcast gradient needs summing). The backward is laid out at compile time: which
nodes receive gradients and from how many consumers is known, so no gradient is tested for None at run time
except behind an op without a template. Large forward values are written into buffers the compiled function
keeps (``out=``), which saves the page faults of fresh large arrays; so a compiled function is not
re-entrant (one call at a time, which is how samplers and optimizers call it). The rewrites are exact, and
the forward values are the eager function's to the last bit; a few array templates compute an op's gradient
rule in another order than its Tensor-level rule, which can change the last bit of a gradient.

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
from .ops.elementwise import Add, BernoulliLogLikelihood, Mul, Neg, Sub, _sigmoid_array, _softplus_array
from .ops.indexing import IndexScatter
from .ops.linalg import einsum_optimizes
from .ops.shape import DiagonalScatter, _diagonal_index
from .tensor import Tensor

__all__ = ["NotCompilable", "CompiledFunction", "CompiledValueAndGrad", "CompiledForward", "trace_compile",
           "compile_value_and_grad", "compile_forward", "agrees_with", "results_agree", "replay_tolerance"]

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
# templates are the same math as each op's Tensor-level rule; those that depend on shapes (MatMul, Transpose,
# SolveTriangular, Einsum, and the shape-dependent forms of others) are made by _specialized. Ops without
# templates call their own forward and their Tensor-level backward rule (under no_grad) from the generated code.
_FORWARD = {
    "Add": "{a} + {b}", "Sub": "{a} - {b}", "Mul": "{a} * {b}", "Div": "{a} / {b}", "Neg": "-{a}",
    "Exp": "_np.exp({a})", "Log": "_np.log({a})", "Log1p": "_np.log1p({a})", "Expm1": "_np.expm1({a})",
    "Sqrt": "_np.sqrt({a})", "Square": "{a} * {a}", "Tanh": "_np.tanh({a})", "PowScalar": "{a} ** {A}['p']",
    "Reshape": "{a}.reshape({A}['shape'])", "GetItem": "{a}[{A}['key']]",
    "Transpose": "{a}.transpose({A}['axes'])", "Tril": "_np.tril({a}, {A}['k'])", "Triu": "_np.triu({a}, {A}['k'])",
    "Where": "_np.where({x0}, {x1}, {x2})",
    "Sum": "_np.add.reduce({a}, axis={A}['axes'], keepdims={A}['keepdims'])",
    "Sigmoid": "_sigmoid({a})", "Softplus": "_softplus({a})",
    "Diagonal": "_np.diagonal({a}, {A}['offset'], {A}['axis1'], {A}['axis2'])",
    "IndexSelect": "{a}[{b}]",
}
# Forward ops whose large results are written into a buffer the compiled function keeps (``out=``), the same
# one at every replay: fresh arrays of hundreds of kilobytes come from mmap and page-fault on first touch,
# which costs as much as the arithmetic, and more or less from one replay to the next as the heap's layout drifts
_UFUNCS = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Div": "true_divide", "Neg": "negative", "Exp": "exp",
           "Log": "log", "Log1p": "log1p", "Expm1": "expm1", "Sqrt": "sqrt", "Tanh": "tanh", "Square": "square",
           "MatMul": "matmul"}
_BUFFER_MIN_SIZE = 1 << 14  # elements

_BACKWARD = {  # op name -> one template per input
    "Add": ("{g}", "{g}"), "Sub": ("{g}", "-{g}"), "Mul": ("{g} * {b}", "{g} * {a}"),
    "Div": ("{g} / {b}", "-({g} / {b}) * {o}"), "Neg": ("-{g}",), "Exp": ("{g} * {o}",),
    "Log": ("{g} / {a}",), "Log1p": ("{g} / ({a} + 1)",), "Expm1": ("{g} * ({o} + 1)",),
    "Sqrt": ("{g} / (2 * {o})",), "Square": ("{g} * (2 * {a})",), "Tanh": ("{g} * (1 - {o} * {o})",),
    "Sigmoid": ("{g} * ({o} * (1 - {o}))",), "Softplus": ("{g} * _sigmoid({a})",),
    "PowScalar": ("{g} * ({A}['p'] * {a} ** ({A}['p'] - 1))",),
    "Reshape": ("{g}.reshape({S0})",), "Sum": ("_expand({g}, {K}, {S0})",),  # _filled for a full sum
    "GetItem": ("_index_scatter({g}, {A}['key'], {A}['basic'], {S0})",),
    "Tril": ("_np.tril({g}, {A}['k'])",),
    "Triu": ("_np.triu({g}, {A}['k'])",),
    "Diagonal": ("_diagonal_scatter({g}, {S0}, **{A})",),
    "Where": (None, "_np.where({x0}, {g}, 0.0)", "_np.where({x0}, 0.0, {g})"),
    "IndexScatter": ("{g}[{A}['key']]",),
    "DiagonalScatter": ("_np.diagonal({g}, {A}['offset'], {A}['axis1'], {A}['axis2'])",),
    "BernoulliLogLikelihood": ("{g} * ({b} - _sigmoid({a}))", "{g} * {a}"),
    "IndexSelect": ("_index_scatter({g}, ({b},), False, {S0})", None),
}
# templates whose input gradients may need summing down to a broadcast input's shape
_ELEMENTWISE_BROADCAST = {"Add", "Sub", "Mul", "Div", "Where", "BernoulliLogLikelihood"}


def _expand(g: Any, kept: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """The gradient of a sum: g (with the summed axes kept as 1s: ``kept``) copied over ``shape``."""
    out = np.empty(shape, dtype=np.result_type(g))
    out[...] = np.reshape(g, kept)
    return out


def _filled(g: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """The gradient of a sum over every axis: the scalar g copied over ``shape``."""
    out = np.empty(shape, dtype)
    out.fill(g)
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


def _solve_triangular_grad_a(gb: Any, x: Any, attrs: dict, a_shape: tuple[int, ...], mask: Any) -> Any:
    """SolveTriangular's rule for the matrix, from B̄ (the right-hand side's gradient, before summing down):
    Ā = -B̄ Xᵀ (transposed when A is), masked to A's triangle (``mask``, from :func:`_triangle_mask`)."""
    gm = -(x @ gb.swapaxes(-1, -2)) if attrs["trans"] else -(gb @ x.swapaxes(-1, -2))
    return _sum_to_array(np.where(mask, gm, 0.0), a_shape)


def _triangle_mask(shape: tuple[int, ...], k: int, lower: bool) -> np.ndarray:
    """The boolean mask of ``np.tril(·, k)`` (lower) or ``np.triu(·, k)`` for matrices of ``shape[-2:]``:
    built once at compile time instead of by NumPy at every call."""
    n, m = shape[-2:]
    below = np.tri(n, m, k if lower else k - 1, dtype=bool)
    return below if lower else ~below


def _diagonal_fill(d: Any, shape: tuple[int, ...], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A zero array of ``shape`` with ``d`` (its last dim) on the diagonal of the last two dims at (rows, cols):
    DiagonalScatter with its indices worked out at compile time."""
    z = np.zeros(shape, dtype=d.dtype)
    z[..., rows, cols] = d
    return z


class _BinaryBernoulli:
    """The Bernoulli log-likelihood of observations x that are all 0 or 1 (data, known when compiling), in the
    form that needs no test for infinite logits and fewer array operations than the op's general one:

        x l - softplus(l) = -softplus(t) = -(max(t, 0) + log1p(e^{-|t|})),   t = s l,  s = 1 - 2x,
        ∂/∂l = -s σ(t) = -s exp(min(t, 0) - log1p(e^{-|t|})),

    exact at infinite logits (0 or -inf, and a finite gradient). ``forward`` keeps t and the log1p term for
    ``dlogits``, the gradient of the last forward (so, like the replay, not re-entrant). The values agree with
    the op's to rounding; the gradient is more accurate where σ(l) rounds to 1 (the op's x - σ(l) gives 0 there,
    this form the tail e^{-l})."""

    __slots__ = ("sign", "neg_sign", "t", "log1p")

    def __init__(self, x: np.ndarray, dtype: Any) -> None:
        self.sign = (1 - 2 * np.asarray(x)).astype(dtype)
        self.neg_sign = -self.sign

    @staticmethod
    def applies(x: np.ndarray) -> bool:
        x = np.asarray(x)
        return x.dtype.kind in "biuf" and bool(np.all((x == 0) | (x == 1)))

    def forward(self, logits: np.ndarray) -> np.ndarray:
        self.t = t = self.sign * logits
        e = np.abs(t)
        np.negative(e, out=e)
        np.exp(e, out=e)
        self.log1p = np.log1p(e, out=e)
        out = np.maximum(t, 0.0)
        out += self.log1p
        return np.negative(out, out=out)

    def dlogits(self) -> np.ndarray:
        low = np.minimum(self.t, 0.0)
        low -= self.log1p
        return self.neg_sign * np.exp(low, out=low)


def _binary_bernoulli(rec: _Recording, i: int, namespace: dict) -> bool:
    """Whether node i is a Bernoulli log-likelihood of binary data, put as ``BB{i}`` in the namespace if so."""
    if rec.ops[i] is not BernoulliLogLikelihood:
        return False
    kind, ref = rec.sources[i][1]
    if kind != _CONST or rec.dtypes[i].kind != "f" or not _BinaryBernoulli.applies(rec.consts[ref]):
        return False
    namespace[f"BB{i}"] = _BinaryBernoulli(rec.consts[ref], rec.dtypes[i])
    return True


def _sum_gradient_broadcasts(rec: _Recording, i: int, namespace: dict, needed: Callable[[tuple], bool]) -> bool:
    """Whether the gradient of Sum node i may keep its reduced shape (summed dims as 1s) instead of being copied
    over them: when it only meets products with full-shape arrays, which broadcast it. That holds when the summed
    value is a specialized Bernoulli log-likelihood (its gradient multiplies the full-shape dlogits), or passes
    it (through sums, differences and negations) to products whose other factor has the full shape. ``needed``
    tells which inputs may receive a gradient."""
    kind, ref = rec.sources[i][0]
    return kind == _NODE and (f"BB{ref}" in namespace or _full_gradients(rec, ref, needed))


def _full_gradients(rec: _Recording, i: int, needed: Callable[[tuple], bool]) -> bool:
    """Whether node i turns any gradient that broadcasts to its shape into full-shape input gradients (see
    :func:`_sum_gradient_broadcasts`)."""
    name, shape = rec.ops[i].__name__, rec.shapes[i]
    if rec.ops[i] not in (Add, Sub, Mul, Neg):
        return False
    inputs = [j for j, src in enumerate(rec.sources[i]) if needed(src)]
    if any(rec.in_shapes[i][j] != shape for j in inputs):
        return False
    if name == "Mul":  # each input's gradient is the gradient times the other factor
        return all(rec.in_shapes[i][1 - j] == shape for j in inputs)
    return all(rec.sources[i][j][0] == _NODE and _full_gradients(rec, rec.sources[i][j][1], needed) for j in inputs)


def _specialized(rec: _Recording, i: int, namespace: dict, shared: dict) -> tuple[str | None, tuple | None]:
    """Forward and backward templates for node ``i`` that depend on its shapes and attributes, overriding the
    generic ones (None: keep the generic). Whatever can be decided from the fixed shapes is decided here, once:
    triangle masks, diagonal indices, einsum subscripts, whether a gradient needs summing down. A value the
    backward templates of several inputs share is put in ``shared[i]`` and read as ``{s}``."""
    name, a, shape, in_shapes = rec.ops[i].__name__, rec.attrs[i], rec.shapes[i], rec.in_shapes[i]
    floating = rec.dtypes[i].kind == "f"
    if name == "Sum" and _sum_gradient_broadcasts(rec, i, namespace, lambda src: src[0] != _CONST):
        return None, ("{g}.reshape({K})",)
    if name == "Sum" and shape == ():
        namespace[f"D{i}"] = rec.in_dtypes[i][0]
        return None, (f"_filled({{g}}, {{S0}}, D{i})",)
    if _binary_bernoulli(rec, i, namespace):
        return f"BB{i}.forward({{a}})", (f"{{g}} * BB{i}.dlogits()", None)
    if name == "MatMul":
        full = ("_matmul_grad_a({g}, {b}, {A})", "_matmul_grad_b({g}, {a}, {A})")
        return None, tuple(f if shape[:-2] + s[-2:] == s else f"_sum_to({f}, {{S{j}}})"
                           for j, (f, s) in enumerate(zip(full, in_shapes)))
    if name == "Transpose":
        namespace[f"P{i}"] = tuple(int(k) for k in np.argsort(a["axes"]))  # the inverse permutation
        return None, (f"{{g}}.transpose(P{i})",)
    if name in ("Tril", "Triu") and floating:
        namespace[f"M{i}"] = _triangle_mask(shape, a["k"], name == "Tril")
        return f"_np.where(M{i}, {{a}}, 0.0)", (f"_np.where(M{i}, {{g}}, 0.0)",)
    if name == "SolveTriangular":
        k = (-1 if a["lower"] else 1) if a["unit"] else 0
        namespace[f"M{i}"] = _triangle_mask(in_shapes[0], k, a["lower"])
        # both inputs' rules start from the same solve B̄ = op(A)⁻ᵀ X̄: one solve, in a line of its own ({s})
        shared[i] = "_solve_triangular_grad_b({g}, {a}, {A})"
        return None, (f"_solve_triangular_grad_a({{s}}, {{o}}, {{A}}, {{S0}}, M{i})", "_sum_to({s}, {S1})")
    if name in ("DiagonalScatter", "Diagonal"):
        full = shape if name == "DiagonalScatter" else in_shapes[0]
        if (a["axis1"], a["axis2"]) != (len(full) - 2, len(full) - 1):
            return None, None
        namespace[f"R{i}"], namespace[f"C{i}"] = _diagonal_index(full, a["offset"], a["axis1"], a["axis2"])
        fill = f"_diagonal_fill({{}}, S{i}_0, R{i}, C{i})"
        namespace[f"S{i}_0"] = full
        if name == "DiagonalScatter":
            return fill.format("{a}"), None
        return None, (fill.format("{g}"),)
    if name == "Einsum" and "." not in "".join(a["ins"]) + a["out"]:
        ins, out = a["ins"], a["out"]
        namespace[f"E{i}"] = ",".join(ins) + "->" + out
        optimize = einsum_optimizes([math.prod(s) for s in in_shapes])
        forward = f"_np.einsum(E{i}, " + ", ".join(f"{{x{j}}}" for j in range(len(ins))) + f", optimize={optimize})"
        backward = []
        for k, sub in enumerate(ins):
            others = [ins[j] for j in range(len(ins)) if j != k]
            # B̄_k = einsum(Ḡ and the other operands -> operand k's letters): when each of its letters is distinct
            # and found in the output or another operand (else the Tensor rule, with its ones and identities)
            if len(set(sub)) != len(sub) or not set(sub) <= set(out + "".join(others)):
                return forward, None
            namespace[f"E{i}_{k}"] = ",".join([out] + others) + "->" + sub
            args = ", ".join(f"{{x{j}}}" for j in range(len(ins)) if j != k)
            backward.append(f"_np.einsum(E{i}_{k}, {{g}}{', ' + args if args else ''}, optimize={optimize})")
        return forward, tuple(backward)
    return None, None


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


class _Recording:
    """The recorded graph as parallel lists, one entry per node in creation order: ``ops`` (Op classes),
    ``sources`` (per input: (kind, index) with kind ``_INPUT``, ``_NODE`` or ``_CONST``), ``attrs``,
    ``shapes`` and ``dtypes`` of the outputs, ``in_shapes``/``in_dtypes``/``in_float`` per input; ``consts``
    the constant arrays; ``outputs`` where the results come from (as sources), ``output`` the node of a scalar
    result whose gradient is wanted; ``input_shapes``/``input_dtypes`` those of the inputs."""

    __slots__ = ("ops", "sources", "attrs", "shapes", "dtypes", "in_shapes", "in_dtypes", "in_float", "consts",
                 "num_inputs", "input_shapes", "input_dtypes", "outputs", "output")

    def __init__(self, inputs: list[Tensor]) -> None:
        self.ops, self.sources, self.attrs, self.shapes, self.dtypes = [], [], [], [], []
        self.in_shapes, self.in_dtypes, self.in_float, self.consts = [], [], [], []
        self.num_inputs, self.outputs, self.output = len(inputs), [], -1
        self.input_shapes = [tuple(t.data.shape) for t in inputs]
        self.input_dtypes = [t.data.dtype for t in inputs]


def _is_const(rec: _Recording, src: tuple, value: float) -> bool:
    """Whether ``src`` is a constant equal to ``value`` everywhere."""
    return src[0] == _CONST and bool(np.all(rec.consts[src[1]] == value))


def _identity_input(rec: _Recording, i: int) -> int | None:
    """Which input of node ``i`` its output equals, when the node is an identity: x + 0, x - 0, x * 1, x / 1,
    a reshape to the same shape, a sum over no axes, or a Where whose condition is a constant all True or all
    False; the input must have the output's shape and dtype. None otherwise."""
    name, src, a = rec.ops[i].__name__, rec.sources[i], rec.attrs[i]
    candidates: list[int] = []
    if name == "Add":
        candidates = [j for j, k in ((0, 1), (1, 0)) if _is_const(rec, src[k], 0.0)]
    elif name == "Sub" and _is_const(rec, src[1], 0.0):
        candidates = [0]
    elif name == "Mul":
        candidates = [j for j, k in ((0, 1), (1, 0)) if _is_const(rec, src[k], 1.0)]
    elif name == "Div" and _is_const(rec, src[1], 1.0):
        candidates = [0]
    elif name == "Reshape" or (name == "Sum" and a["axes"] == ()):
        candidates = [0]
    elif name == "Where" and src[0][0] == _CONST:
        cond = rec.consts[src[0][1]]
        candidates = [1] if np.all(cond) else [2] if not np.any(cond) else []
    for j in candidates:
        if rec.in_shapes[i][j] == rec.shapes[i] and rec.in_dtypes[i][j] == rec.dtypes[i]:
            return j
    return None


def _simplify(rec: _Recording) -> list[int]:
    """Rewrite ``rec`` in place so that its replay does less, and return the indices of the nodes the output
    still needs, in order. Identities (see :func:`_identity_input`) and double negations are bypassed: their
    consumers read the original value. Nodes nothing needs are dropped. Every rewrite is exact: it changes no
    value, not even in the last bit.
    A model's log density is full of these (a Normal(0, 1) prior subtracts 0 and divides by 1; a site's log
    probability is summed once per plate and once more for the site), and each costs a NumPy call per replay.

    Folding reads constants' values at trace time: a constant array later changed in place to something other
    than 0 or 1 would not be seen (model data and frozen parameters are not changed during a replay's life)."""
    alias: dict[int, tuple] = {}  # node -> the value that replaces it

    def resolve(t: tuple) -> tuple:
        return alias.get(t[1], t) if t[0] == _NODE else t

    outputs = {ref for kind, ref in rec.outputs if kind == _NODE}
    for i, op in enumerate(rec.ops):
        src = rec.sources[i] = tuple(resolve(t) for t in rec.sources[i])
        if i in outputs or not op.__module__.startswith(__package__):
            continue
        j = _identity_input(rec, i)
        if j is not None:
            alias[i] = src[j]
        elif op.__name__ == "Neg" and src[0][0] == _NODE and rec.ops[src[0][1]].__name__ == "Neg":
            alias[i] = rec.sources[src[0][1]][0]
    live, stack = set(), list(outputs)
    while stack:
        i = stack.pop()
        if i not in live:
            live.add(i)
            stack.extend(ref for kind, ref in rec.sources[i] if kind == _NODE)
    return sorted(live)


def _var(src: tuple) -> str:
    """The generated code's name for a value: x{k} an input, v{i} a node, c{k} a constant."""
    kind, ref = src
    return f"x{ref}" if kind == _INPUT else f"v{ref}" if kind == _NODE else f"c{ref}"


def _template(op: type[Op], table: dict) -> Any:
    """``op``'s entry in a template table (the engine's own ops only: a user's op of the same name is not it)."""
    return table.get(op.__name__) if op.__module__.startswith(__package__) else None


def _forward_lines(rec: _Recording, order: list[int], namespace: dict, special: dict, shared: dict,
                   buffers: bool) -> list[str]:
    """The generated forward: one line per node of ``order``, filling ``namespace`` (constants, attributes,
    helpers) and ``special``/``shared`` (see :func:`_specialized`). With ``buffers``, large ufunc results go
    into kept buffers (only for values that cannot leave the replay: not the outputs)."""
    namespace.update({"_np": np, "_arr": np.asarray, "_sum_to": _sum_to_array, "_expand": _expand,
                      "_filled": _filled, "_index_scatter": IndexScatter.forward, "_sigmoid": _sigmoid_array,
                      "_softplus": _softplus_array, "_matmul_grad_a": _matmul_grad_a,
                      "_matmul_grad_b": _matmul_grad_b, "_diagonal_scatter": DiagonalScatter.forward,
                      "_diagonal_fill": _diagonal_fill, "_solve_triangular_grad_a": _solve_triangular_grad_a,
                      "_solve_triangular_grad_b": _solve_triangular_grad_b})
    for k, c in enumerate(rec.consts):
        namespace[f"c{k}"] = c
    outputs = {ref for kind, ref in rec.outputs if kind == _NODE}
    lines = []
    for i in order:
        op, a = rec.ops[i], rec.attrs[i]
        namespace[f"A{i}"] = a
        args = [_var(t) for t in rec.sources[i]]
        special[i] = (_specialized(rec, i, namespace, shared) if op.__module__.startswith(__package__)
                      else (None, None))
        template = special[i][0] or _template(op, _FORWARD)
        if (buffers and _template(op, _UFUNCS) and i not in outputs and not a and rec.dtypes[i].kind == "f"
                and math.prod(rec.shapes[i]) >= _BUFFER_MIN_SIZE):
            namespace[f"B{i}"] = np.empty(rec.shapes[i], rec.dtypes[i])
            lines.append(f"    v{i} = _np.{_UFUNCS[op.__name__]}({', '.join(args)}, out=B{i})")
        elif template is not None:
            lines.append(f"    v{i} = " + template.format(a=args[0], b=args[-1], A=f"A{i}", **_numbered(args)))
        else:
            namespace[f"F{i}"] = op.forward
            call = f"F{i}({', '.join(args + ([f'**A{i}'] if a else []))})"
            lines.append(f"    v{i} = _arr({call})")
    return lines


class _GradientLines:
    """The bookkeeping lines of a generated backward, shared by the replays of :class:`CompiledFunction` and of
    :mod:`probdl.tensor.compile_batched`. Which nodes receive gradients, and from how many consumers, is known
    from the graph: a node's first gradient term is assigned and later ones added, with no test at run time.
    Only a gradient that an op's Tensor-level rule may leave as None (an op without array code: ``laid_out``
    false), and those reached only through such a gradient, are set to None first and tested (``maybe_none``).
    ``input_line(src, expr)`` is the line adding a term to an input's gradient."""

    __slots__ = ("maybe_none", "has_grad", "input_line")

    def __init__(self, order: list[int], sources: list, needs_of: Callable, laid_out: Callable[[int], bool],
                 output: int, input_line: Callable[[tuple, str], str]) -> None:
        self.maybe_none: set[int] = set()
        for i in reversed(order):
            if i in self.maybe_none or not laid_out(i):
                self.maybe_none.update(ref for (kind, ref), need in zip(sources[i], needs_of(i))
                                       if need and kind == _NODE)
        self.has_grad, self.input_line = {output}, input_line

    def start(self, output: int) -> list[str]:
        """The lines before the first node's backward: the tested gradients' None, the output's seed."""
        first = ["    " + " = ".join(f"g{i}" for i in sorted(self.maybe_none)) + " = None"] if self.maybe_none else []
        return first + [f"    g{output} = _seed"]  # _seed is read only: no gradient is changed in place

    def add(self, src: tuple, expr: str) -> str:
        """The line adding the term ``expr`` to the gradient of ``src`` (an input or a node)."""
        kind, ref = src
        if kind == _INPUT:
            return self.input_line(src, expr)
        g = f"g{ref}"
        if ref in self.maybe_none:
            self.has_grad.add(ref)
            return f"_e = {expr}; {g} = _e if {g} is None else {g} + _e"
        if ref in self.has_grad:
            return f"{g} = {g} + ({expr})"
        self.has_grad.add(ref)
        return f"{g} = {expr}"

    def add_rule_result(self, srcs: tuple, needs: tuple[bool, ...], term: Callable[[int], str]) -> list[str]:
        """The lines adding the results ``_t[j]`` of a Tensor-level rule (``term(j)``: the expression for input
        j), each only when it is not None."""
        lines = []
        for j, (src, need) in enumerate(zip(srcs, needs)):
            if need:
                lines += [f"if _t[{j}] is not None:", "    " + self.add(src, term(j))]
        return lines

    def node_lines(self, i: int, body: list[str]) -> list[str]:
        """Node i's backward ``body``, under a test of its gradient when that may be None."""
        if i in self.maybe_none:
            return [f"    if g{i} is not None:"] + ["        " + b for b in body]
        return ["    " + b for b in body]


class CompiledFunction:
    """``f(*arrays) -> (value, (gradient per input))`` by replaying a recorded graph as generated straight-line
    Python (see the module docstring). ``num_ops`` is the number of ops the replay runs forward (recorded ones
    less those :func:`_simplify` removed); ``source`` the generated code; ``num_inputs`` how many arrays it
    takes.

    The backward is laid out at compile time: which nodes receive a gradient, and from how many consumers, is
    known from the graph, so each gradient is assigned once and summed into after, with no test at run time.
    Only an op without an array template, whose Tensor-level rule may answer None, gets run-time tests."""

    __slots__ = ("fn", "num_ops", "num_inputs", "source", "op_names")

    def __init__(self, rec: _Recording) -> None:
        order = _simplify(rec)
        ops, sources, attrs, in_shapes = rec.ops, rec.sources, rec.attrs, rec.in_shapes
        self.num_ops, self.num_inputs = len(order), rec.num_inputs
        self.op_names = [ops[i].__name__ for i in order]
        namespace: dict[str, Any] = {}
        inputs = [f"x{k}" for k in range(rec.num_inputs)]
        special: dict[int, tuple] = {}  # node -> shape-specific (forward, backward) templates
        shared: dict[int, str] = {}  # node -> a value its backward templates share
        lines = [f"def replay({', '.join(inputs)}):"]
        lines += _forward_lines(rec, order, namespace, special, shared, buffers=True)
        last = rec.output

        depends: dict[int, bool] = {}  # node -> whether it depends on an input (not only on constants and draws)
        for i in order:
            depends[i] = any(kind == _INPUT or (kind == _NODE and depends[ref]) for kind, ref in sources[i])

        def needs_of(i: int) -> tuple[bool, ...]:
            if getattr(ops[i], "no_gradient", False):
                return (False,) * len(sources[i])
            return tuple(is_float and (kind == _INPUT or (kind == _NODE and depends[ref]))
                         for (kind, ref), is_float in zip(sources[i], rec.in_float[i]))

        grads = _GradientLines(order, sources, needs_of,
                               lambda i: (special[i][1] or _template(ops[i], _BACKWARD)) is not None, last,
                               lambda src, expr: f"g{_var(src)} = g{_var(src)} + ({expr})")
        for k, name in enumerate(inputs):
            namespace[f"IS{k}"], namespace[f"ID{k}"] = rec.input_shapes[k], rec.input_dtypes[k]
            lines.append(f"    g{name} = _np.zeros(IS{k}, ID{k})")
        namespace["_seed"] = np.ones(rec.shapes[last], rec.dtypes[last])
        lines += grads.start(last)

        for i in reversed(order):
            op, src, a = ops[i], sources[i], attrs[i]
            needs = needs_of(i)
            if i not in grads.has_grad or not any(needs):
                continue
            args = [_var(t) for t in src]
            body = []
            templates = special[i][1] or _template(op, _BACKWARD)
            if op.__name__ == "GetItem" and src[0][0] == _INPUT and templates is not None:
                # a slice of an input (a model's site in the flat vector): add the gradient where it was read
                gx = "g" + _var(src[0])
                body.append(f"{gx}[A{i}['key']] += g{i}" if a["basic"] else f"_np.add.at({gx}, A{i}['key'], g{i})")
            elif templates is not None:
                for j, shape in enumerate(in_shapes[i]):
                    namespace.setdefault(f"S{i}_{j}", shape)
                if op.__name__ == "Sum":  # the input's shape with the summed axes as 1s
                    namespace[f"K{i}"] = tuple(1 if d in a["axes"] else n for d, n in enumerate(in_shapes[i][0]))
                names = dict(g=f"g{i}", a=args[0], b=args[-1], o=f"v{i}", A=f"A{i}", S0=f"S{i}_0", S1=f"S{i}_1",
                             K=f"K{i}", s="_s", **_numbered(args))
                if i in shared:
                    body.append("_s = " + shared[i].format(**names))
                for j, (t_src, need, template) in enumerate(zip(src, needs, templates)):
                    if not need or template is None:  # no gradient asked for, or none defined (Where's condition)
                        continue
                    expr = template.format(**names)
                    if op.__name__ in _ELEMENTWISE_BROADCAST and in_shapes[i][j] != rec.shapes[i]:
                        expr = _sum_to_code(expr, rec.shapes[i], in_shapes[i][j])
                    body.append(grads.add(t_src, expr))
            else:
                namespace[f"T{i}"] = _tensor_rule(op, a)
                body.append(f"_t = T{i}([{', '.join(args)}], {needs!r}, v{i}, g{i})")
                body += grads.add_rule_result(src, needs, lambda j: f"_t[{j}]")
            lines += grads.node_lines(i, body)
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


def _broadcast_axes(shape: tuple[int, ...], target: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of a value of ``shape`` that broadcasting an operand of shape ``target`` added or stretched: the
    ones its gradient is summed over."""
    lead = len(shape) - len(target)
    return tuple(range(lead)) + tuple(lead + k for k, n in enumerate(target) if n == 1 and shape[lead + k] != 1)


def _sum_to_code(expr: str, shape: tuple[int, ...], target: tuple[int, ...]) -> str:
    """Code summing ``expr`` (of ``shape``) down to the broadcast operand shape ``target``, the axes worked
    out here rather than at every replay."""
    axes = _broadcast_axes(shape, target)
    if target == ():
        return f"_np.add.reduce(({expr}), axis={axes!r})"
    return f"_np.add.reduce(({expr}), axis={axes!r}, keepdims=True).reshape({target!r})"


def _numbered(args: list[str]) -> dict[str, str]:
    """Template keys x0, x1, ... for the input variables."""
    return {f"x{k}": name for k, name in enumerate(args)}


def _record(fn: Callable[[], Any], inputs: list[Tensor]) -> tuple[_Recording, Any]:
    """Run ``fn()`` under the watch (see the module docstring) and read its graph back: the recording, with
    ``rec.outputs`` where each output comes from, and ``fn``'s own result."""
    reads: list[str] = []
    previous = set_tracing(True)
    watch_before = _backend_random.draw_watch
    draws: list[str] = []
    _backend_random.draw_watch = draws  # every random draw hands out a generator through as_generator
    try:
        with _watch_value_reads(reads):
            result = fn()
    finally:
        set_tracing(previous)
        _backend_random.draw_watch = watch_before
    if draws:
        raise NotCompilable(f"the function makes {draws[0]} that a replay cannot repeat")
    if reads:
        raise NotCompilable(f"the function reads the value of a tensor that depends on its input "
                            f"({reads[0]}), so its graph may change with the input")
    outs = [result] if isinstance(result, Tensor) else list(result)
    if not all(isinstance(t, Tensor) for t in outs):
        raise NotCompilable("the function must return Tensors")
    input_index = {id(t): k for k, t in enumerate(inputs)}
    # the nodes between the inputs and the outputs, in creation order (producers before consumers)
    found: dict[int, Tensor] = {}
    stack = list(outs)
    while stack:
        t = stack.pop()
        if id(t) in found or t._node is None or id(t) in input_index:
            continue
        found[id(t)] = t
        stack.extend(t._node.inputs)
    order = sorted(found.values(), key=lambda t: t._node.seq)
    position = {id(t): i for i, t in enumerate(order)}
    rec = _Recording(inputs)
    const_index: dict[int, int] = {}

    def source(t: Tensor) -> tuple:
        if id(t) in input_index:
            return _INPUT, input_index[id(t)]
        if id(t) in position:
            return _NODE, position[id(t)]
        # data, or a leaf that is not an input (a frozen parameter): its current array is replayed
        k = const_index.setdefault(id(t), len(rec.consts))
        if k == len(rec.consts):
            rec.consts.append(t.data)
        return _CONST, k

    for t in order:
        node = t._node
        rec.ops.append(node.op)
        rec.sources.append(tuple(source(inp) for inp in node.inputs))
        rec.attrs.append(node.attrs)
        rec.shapes.append(tuple(t.data.shape))
        rec.dtypes.append(t.data.dtype)
        rec.in_shapes.append([tuple(inp.data.shape) for inp in node.inputs])
        rec.in_dtypes.append([inp.data.dtype for inp in node.inputs])
        rec.in_float.append([inp.data.dtype.kind in "fc" for inp in node.inputs])
    rec.outputs = [source(t) for t in outs]
    return rec, result


def trace_compile(fn: Callable[[], Tensor], inputs: list[Tensor]) -> CompiledFunction:
    """Trace ``fn()`` (a scalar function of the tensors ``inputs``, which must require grad) and return its
    compiled value and gradients in the inputs: ``compiled(*arrays) -> (value, (grad per input))``. Raises
    :class:`NotCompilable` when the trace shows the graph may depend on values (see the module docstring).
    Draws of reparameterization noise (``standard_normal_like``) are recorded and redrawn at every replay;
    any other random draw makes the function not compilable."""
    rec, out = _record(fn, inputs)
    if not isinstance(out, Tensor) or out.data.size != 1:
        raise NotCompilable("the function must return a scalar Tensor")
    if rec.outputs[0][0] != _NODE:
        raise NotCompilable("the output does not depend on the input")
    rec.output = rec.outputs[0][1]
    return CompiledFunction(rec)


class CompiledForward:
    """``f(*arrays) -> tuple of arrays``: the forward values of a traced function with several outputs, by
    replaying its recorded ops (no gradients). An output may share memory with an input (an identity)."""

    __slots__ = ("fn", "num_ops", "source")

    def __init__(self, rec: _Recording) -> None:
        order = _simplify(rec)
        self.num_ops = len(order)
        namespace: dict[str, Any] = {}
        lines = _forward_lines(rec, order, namespace, {}, {}, buffers=False)
        outs = "".join(_var(t) + ", " for t in rec.outputs)
        head = f"def replay({', '.join(f'x{k}' for k in range(rec.num_inputs))}):"
        self.source = "\n".join([head] + lines + [f"    return ({outs})"]) + "\n"
        exec(compile(self.source, "<probdl compiled forward>", "exec"), namespace)
        self.fn = namespace["replay"]

    def __call__(self, *arrays: Any) -> tuple:
        return self.fn(*arrays)


def compile_forward(fn: Callable[[], Any], inputs: list[Tensor]) -> CompiledForward:
    """Trace ``fn()`` (a function of the tensors ``inputs`` returning a Tensor or a sequence of Tensors) and
    return its compiled forward: ``compiled(*arrays) -> tuple of arrays``, one per output. Raises
    :class:`NotCompilable` as :func:`trace_compile` does."""
    rec, _ = _record(fn, inputs)
    return CompiledForward(rec)


def compile_value_and_grad(fn: Callable[[Tensor], Tensor], x0: np.ndarray) -> CompiledValueAndGrad:
    """Trace ``fn`` at ``x0`` and return its compiled value-and-gradient ``f(x) -> (float, ndarray)``; raises
    :class:`NotCompilable` when the trace shows that the graph may depend on the input's values."""
    x0 = np.asarray(x0)
    x = Tensor(x0.copy(), requires_grad=True)
    return CompiledValueAndGrad(trace_compile(lambda: fn(x), [x]), x0)


def replay_tolerance(dtype: Any) -> float:
    """How far (relative to the scale) a replay may be from the eager function and still agree: 1e-9, or 1000
    ulps of a coarser float type. The values are the same to the last bit; a templated gradient may add the same
    terms in another order; a replay that froze something the function depends on is off by far more."""
    dtype = np.dtype(dtype)
    return max(1e-9, 1000 * float(np.finfo(dtype).eps)) if dtype.kind == "f" else 1e-9


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
        if not results_agree(v_c, [g_c], v_e, [g_e], rtol):
            return False
    return True


def results_agree(value: float, grads: Iterable[Any], value_ref: float, grads_ref: Iterable[Any],
                  rtol: float) -> bool:
    """Whether a value and its gradients equal the reference ones to ``rtol`` of their scale (at least 1): the
    comparison a replay's agreement check makes."""
    if abs(float(value) - float(value_ref)) > rtol * max(1.0, abs(float(value_ref))):
        return False
    for g, g_ref in zip(grads, grads_ref):
        scale = max(1.0, float(np.max(np.abs(g_ref)))) if g_ref.size else 1.0
        if g.shape != g_ref.shape or float(np.max(np.abs(g - g_ref), initial=0.0)) > rtol * scale:
            return False
    return True
