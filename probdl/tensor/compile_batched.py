"""A compiled value and gradient evaluated at a batch of points in one replay: f(X) for X of shape (C, n),
from one trace of a function of a single flat vector (a model's potential; C the number of chains).

The trace is that of :func:`probdl.tensor.compile.compile_value_and_grad`; only the generated code differs.
Every value that depends on the input gets a leading batch dim of size C, and each op is rewritten for it:

- elementwise ops (arithmetic, the special functions, comparisons, ``Where``, the fused Bernoulli
  log-likelihood): a batched operand of lower rank than the result is viewed as (C, 1, ..., 1, *shape), so that
  NumPy's broadcasting from the right lines it up; the array templates and Tensor-level rules then apply as they
  are, and a gradient is summed down to its operand's shape per batch row;
- a matrix product broadcasts the same way over its batch dims; a constant matrix times a batch of vectors,
  or a batch of matrices times a constant matrix, is one BLAS call for the whole batch;
- Cholesky factors, triangular solves and determinants work on the stack of the batch's matrices;
- reshapes, indexing (basic, or advanced indices side by side), transposes, triangles, diagonals, reductions
  and the ops that take an ``axis`` shift their dims past the batch dim;
- any other op runs once per row of the batch, with its own forward and Tensor-level rule: always right, only
  slower (``row_ops`` counts them).

As in the unbatched replay, large values go into kept buffers and a Bernoulli log-likelihood of binary data
takes its specialized form. Two things are specific to the batch: when the flat input is read through slices
that tile it (a model's sites), its gradient is the concatenation of theirs; and a sum's gradient is left in
its reduced shape, to broadcast, when it only meets products with full-shape factors.

Values that depend only on constants stay unbatched and are computed once per replay. Each row of the result
equals what the unbatched replay gives at that row, up to the order of floating-point sums (a product of a
batch may use another BLAS kernel than a single one).

DESIGN.md's "batched chains": many NUTS chains advance together, and the Python of a replay is paid once for
all of them.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .compile import (
    _BACKWARD,
    _BUFFER_MIN_SIZE,
    _CONST,
    _FORWARD,
    _INPUT,
    _NODE,
    _UFUNCS,
    NotCompilable,
    _binary_bernoulli,
    _broadcast_axes,
    _forward_lines,
    _GradientLines,
    _numbered,
    _record,
    _simplify,
    _sum_gradient_broadcasts,
    _template,
    _tensor_rule,
    _triangle_mask,
    _var,
)
from .tensor import Tensor

__all__ = ["CompiledBatchedValueAndGrad", "compile_value_and_grad_batched"]

_ELEMENTWISE_MODULES = ("probdl.tensor.ops.elementwise", "probdl.tensor.ops.special")
_REDUCTION_ATTRS = {"axes", "keepdims"}
_AXIS_OPS = {"Cumsum", "Softmax", "LogSoftmax", "Diagonal"}
# linear algebra whose forward and Tensor-level rule work on stacks of matrices, broadcasting their batch dims
_MATRIX_OPS = {"Cholesky", "SolveTriangular", "LogAbsDet", "Det"}


def _rows_forward(forward: Callable, args: list, batched: tuple[bool, ...], count: int, attrs: dict | None) -> Any:
    """An op without a batching rule, once per row of the batch."""
    kw = attrs or {}
    return np.stack([np.asarray(forward(*[a[c] if b else a for a, b in zip(args, batched)], **kw))
                     for c in range(count)])


def _rows_backward(rule: Callable, args: list, batched: tuple[bool, ...], needs: tuple[bool, ...], out: Any,
                   g: Any, count: int) -> list:
    """An op's Tensor-level rule once per row of the batch; a row's None is a zero gradient."""
    rows = [rule([a[c] if b else a for a, b in zip(args, batched)], needs, out[c], g[c]) for c in range(count)]
    grads = []
    for j, (a, need) in enumerate(zip(args, needs)):
        per_row = [r[j] for r in rows] if need else [None]
        if all(x is None for x in per_row):
            grads.append(None)
        else:
            grads.append(np.stack([np.zeros_like(a[c]) if x is None else x for c, x in enumerate(per_row)]))
    return grads


def _adjacent_advanced(key: tuple) -> bool:
    """Whether a key's advanced indices (arrays, and ints alongside them) sit side by side, so that a slice
    put in front for the batch dim leaves the result's dims in order."""
    positions = [p for p, k in enumerate(key) if not isinstance(k, (slice, type(None), type(Ellipsis)))]
    return not positions or positions[-1] - positions[0] == len(positions) - 1


def _sum_to_batched(expr: str, shape: tuple[int, ...], target: tuple[int, ...], count: int) -> str:
    """Code summing ``expr``, a batch of gradients of logical ``shape``, down to the logical ``target`` shape of a
    broadcast operand, row by row (the batch dim is kept)."""
    axes = tuple(1 + a for a in _broadcast_axes(shape, target))
    full = (count,) + target
    if not axes:
        return f"({expr}).reshape({full!r})"
    if len(axes) == len(shape) - len(target):  # only leading dims were added: the sum has the target's shape
        return f"_np.add.reduce(({expr}), axis={axes!r})"
    return f"_np.add.reduce(({expr}), axis={axes!r}, keepdims=True).reshape({full!r})"


class _Batcher:
    """Generates the batched replay of a recording (see the module docstring)."""

    def __init__(self, rec: Any, count: int) -> None:
        self.rec, self.count = rec, count
        self.order = _simplify(rec)
        # the unbatched replay's helpers and constants (see generate), and the row-by-row fallbacks
        self.ns: dict[str, Any] = {"_rows": _rows_forward, "_rows_backward": _rows_backward}
        self.lines: list[str] = []
        self.batched: dict[int, bool] = {}
        self.aliases: set[str] = set()
        self.kind: dict[int, str] = {}
        self.special_backward: dict[int, tuple] = {}  # node -> backward templates of a specialized forward
        self.row_ops = 0

    # ------------------------------------------------------------------ helpers
    def is_batched(self, src: tuple) -> bool:
        kind, ref = src
        return kind == _INPUT or (kind == _NODE and self.batched[ref])

    def operand(self, i: int, j: int, rank: int) -> str:
        """Input j of node i, a batched one viewed with ``rank`` logical dims (ones put in after the batch dim)."""
        src, shape = self.rec.sources[i][j], self.rec.in_shapes[i][j]
        name = _var(src)
        if not self.is_batched(src) or len(shape) >= rank:
            return name
        alias = f"{name}_r{rank}"
        if alias not in self.aliases:
            self.aliases.add(alias)
            padded = (self.count,) + (1,) * (rank - len(shape)) + shape
            self.lines.append(f"    {alias} = {name}.reshape({padded!r})")
        return alias

    def classify(self, i: int) -> str:
        rec = self.rec
        op, a, name = rec.ops[i], rec.attrs[i], rec.ops[i].__name__
        if not op.__module__.startswith("probdl.tensor"):
            return "rows"
        if op.__module__ in _ELEMENTWISE_MODULES or (name == "DataFunction" and a.get("elementwise")):
            return "elementwise"
        if name in _MATRIX_OPS and op.__module__ == "probdl.tensor.ops.linalg":
            return "matrix"
        if name in ("Reshape", "MatMul", "Transpose"):
            return name.lower()
        if name == "GetItem":
            key = a["key"] if isinstance(a["key"], tuple) else (a["key"],)
            return "getitem" if a["basic"] or _adjacent_advanced(key) else "rows"
        if name in ("Tril", "Triu") and len(rec.in_shapes[i][0]) >= 2:
            return "triangle"
        if name == "BroadcastTo" and a.get("kept") is None and a.get("scale") is None:
            return "broadcast"
        if a and set(a) == _REDUCTION_ATTRS and len(rec.sources[i]) == 1:
            return "sum" if name == "Sum" else "reduce"
        if name in _AXIS_OPS:
            return "axis"
        return "rows"

    def shifted(self, i: int) -> dict:
        """The attributes of node i with its dims moved past the batch dim."""
        a = dict(self.rec.attrs[i])
        if "axes" in a:
            a["axes"] = tuple(1 + x for x in a["axes"])
        for key in ("axis", "axis1", "axis2"):
            if key in a:
                a[key] = 1 + a[key]
        return a

    # ------------------------------------------------------------------ forward
    def forward(self, i: int) -> None:
        rec, C = self.rec, self.count
        op, a, shape = rec.ops[i], rec.attrs[i], rec.shapes[i]
        self.ns[f"A{i}"] = a
        kind = self.kind[i] = self.classify(i)
        if kind == "matmul" and self.matmul_with_constant(i):
            return
        if kind in ("elementwise", "matmul", "matrix"):
            args = [self.operand(i, j, len(shape)) for j in range(len(rec.sources[i]))]
            template = _template(op, _FORWARD) if kind == "elementwise" else None
            ufunc = _template(op, _UFUNCS)
            if _binary_bernoulli(rec, i, self.ns):
                self.special_backward[i] = (f"{{g}} * BB{i}.dlogits()", None)
                code = f"BB{i}.forward({args[0]})"
            elif (ufunc and not a and i != rec.output and rec.dtypes[i].kind == "f"
                    and C * math.prod(shape) >= _BUFFER_MIN_SIZE):
                # a large result into a buffer kept from one replay to the next (see compile.py's _UFUNCS)
                self.ns[f"B{i}"] = np.empty((C,) + shape, rec.dtypes[i])
                code = f"_np.{ufunc}({', '.join(args)}, out=B{i})"
            elif template is not None:
                code = template.format(a=args[0], b=args[-1], A=f"A{i}", **_numbered(args))
            else:
                self.ns[f"F{i}"] = op.forward
                code = f"_arr(F{i}({', '.join(args + ([f'**A{i}'] if a else []))}))"
            self.lines.append(f"    v{i} = {code}")
            self.ns[f"X{i}"] = args  # the operand names, for the backward
            return
        x = _var(rec.sources[i][0])
        if kind == "reshape":
            code = f"{x}.reshape({(C,) + shape!r})"
        elif kind == "getitem":
            key = a["key"] if isinstance(a["key"], tuple) else (a["key"],)
            self.ns[f"BK{i}"] = (slice(None),) + key
            code = f"{x}[BK{i}]"
        elif kind == "transpose":
            axes = (0,) + tuple(1 + p for p in a["axes"])
            self.ns[f"BP{i}"], self.ns[f"BQ{i}"] = axes, tuple(int(k) for k in np.argsort(axes))
            code = f"{x}.transpose(BP{i})"
        elif kind == "triangle":
            if rec.dtypes[i].kind == "f":
                self.ns[f"M{i}"] = _triangle_mask(shape, a["k"], op.__name__ == "Tril")
                code = f"_np.where(M{i}, {x}, 0.0)"
            else:
                code = f"_np.{op.__name__.lower()}({x}, {a['k']})"
        elif kind == "broadcast":
            code = f"_np.broadcast_to({self.operand(i, 0, len(shape))}, {(C,) + shape!r})"
        elif kind == "sum":
            self.ns[f"BA{i}"] = self.shifted(i)
            code = f"_np.add.reduce({x}, axis=BA{i}['axes'], keepdims=BA{i}['keepdims'])"
        elif kind in ("reduce", "axis"):
            self.ns[f"F{i}"], self.ns[f"BA{i}"] = op.forward, self.shifted(i)
            code = f"_arr(F{i}({x}, **BA{i}))"
        else:
            self.row_ops += 1
            self.ns[f"F{i}"] = op.forward
            flags = tuple(self.is_batched(s) for s in rec.sources[i])
            args = ", ".join(_var(s) for s in rec.sources[i])
            code = f"_rows(F{i}, [{args}], {flags!r}, {C}, A{i})"
        self.lines.append(f"    v{i} = {code}")

    def matmul_with_constant(self, i: int) -> bool:
        """A product of a constant matrix and a batch of matrices as one BLAS call for the whole batch (rather
        than one per row): M @ b for b of shape (k, 1), and a @ M for a of shape (p, k), M constant and 2-D. The
        generated forward and backward are recorded in ``self.kind`` as "matmul_left" / "matmul_right"."""
        rec, C = self.rec, self.count
        (ka, ra), (kb, rb) = rec.sources[i]
        sa, sb = rec.in_shapes[i]
        if rec.attrs[i] or len(sa) != 2 or len(sb) != 2:
            return False
        if ka == _CONST and self.is_batched((kb, rb)) and sb[1] == 1:
            m, k = sa
            # M's transpose, and M in column-major order for the gradient: the layouts BLAS reads fastest
            self.ns[f"MT{i}"] = np.ascontiguousarray(rec.consts[ra].T)
            self.ns[f"MF{i}"] = np.asfortranarray(rec.consts[ra])
            self.lines.append(f"    v{i} = _np.dot({_var((kb, rb))}.reshape({(C, k)!r}), MT{i}).reshape({(C, m, 1)!r})")
            self.kind[i] = "matmul_left"
            return True
        if kb == _CONST and self.is_batched((ka, ra)):
            p, k = sa
            n = sb[1]
            self.ns[f"MT{i}"] = np.ascontiguousarray(rec.consts[rb].T)
            a_rows = f"{_var((ka, ra))}.reshape({(C * p, k)!r})"
            self.lines.append(f"    v{i} = _np.dot({a_rows}, c{rb}).reshape({(C, p, n)!r})")
            self.kind[i] = "matmul_right"
            return True
        return False

    # ------------------------------------------------------------------ backward
    def has_template(self, i: int) -> bool:
        """Whether node i's backward is array code laid out here (else a rule that may answer None)."""
        kind = self.kind[i]
        if kind == "elementwise":
            return _template(self.rec.ops[i], _BACKWARD) is not None
        return kind not in ("reduce", "axis", "rows", "matrix")

    def backward_terms(self, i: int, needs: tuple[bool, ...]) -> list[tuple[int, str]]:
        """(input, gradient expression) for the inputs of node i that need one."""
        rec, C = self.rec, self.count
        op, a, shape, in_shapes, kind = rec.ops[i], rec.attrs[i], rec.shapes[i], rec.in_shapes[i], self.kind[i]
        g = f"g{i}"
        if kind == "elementwise":
            args = self.ns[f"X{i}"]
            names = dict(g=g, a=args[0], b=args[-1], o=f"v{i}", A=f"A{i}", **_numbered(args))
            terms = []
            templates = self.special_backward.get(i) or _template(op, _BACKWARD)
            for j, (need, template) in enumerate(zip(needs, templates)):
                if need and template is not None:
                    expr = template.format(**names)
                    if in_shapes[j] != shape:
                        expr = _sum_to_batched(expr, shape, in_shapes[j], C)
                    terms.append((j, expr))
            return terms
        if kind == "matmul":
            a_arg, b_arg = self.ns[f"X{i}"]
            full = {0: f"_matmul_grad_a({g}, {b_arg}, A{i})", 1: f"_matmul_grad_b({g}, {a_arg}, A{i})"}
            terms = []
            for j in (0, 1):
                if needs[j]:
                    logical = shape[:-2] + in_shapes[j][-2:]
                    expr = full[j]
                    if logical != in_shapes[j]:
                        expr = _sum_to_batched(expr, logical, in_shapes[j], C)
                    terms.append((j, expr))
            return terms
        if kind == "matmul_left":  # v = M b: b̄ = Mᵀ ḡ, row by row
            m = in_shapes[0][0]
            return [(1, f"_np.dot({g}.reshape({(C, m)!r}), MF{i}).reshape({(C,) + in_shapes[1]!r})")]
        if kind == "matmul_right":  # v = a M: ā = ḡ Mᵀ
            p, n = shape
            return [(0, f"_np.dot({g}.reshape({(C * p, n)!r}), MT{i}).reshape({(C,) + in_shapes[0]!r})")]
        if kind == "reshape":
            return [(0, f"{g}.reshape({(C,) + in_shapes[0]!r})")]
        if kind == "getitem":
            self.ns[f"BS{i}"] = (C,) + in_shapes[0]
            return [(0, f"_index_scatter({g}, BK{i}, {a['basic']!r}, BS{i})")]
        if kind == "transpose":
            return [(0, f"{g}.transpose(BQ{i})")]
        if kind == "triangle":
            return [(0, f"_np.where(M{i}, {g}, 0.0)")]
        if kind == "broadcast":
            return [(0, _sum_to_batched(g, shape, in_shapes[0], C))]
        if kind == "sum":  # ḡ copied over the summed dims: a product with ones, exact and cheaper than a copy
            kept = tuple(1 if d in a["axes"] else n for d, n in enumerate(in_shapes[0]))
            self.ns[f"K{i}"], self.ns[f"O{i}"] = (C,) + kept, np.ones((1,) + in_shapes[0], rec.in_dtypes[i][0])
            if _sum_gradient_broadcasts(rec, i, self.ns, self.is_batched):  # it broadcasts where it is used
                return [(0, f"{g}.reshape(K{i})")]
            return [(0, f"{g}.reshape(K{i}) * O{i}")]
        raise AssertionError(kind)

    def rule_call(self, i: int, needs: tuple[bool, ...]) -> str:
        """The call of node i's Tensor-level rule (on the whole batch, or row by row), into ``_t``."""
        rec, C, kind = self.rec, self.count, self.kind[i]
        if kind in ("elementwise", "matrix"):
            self.ns[f"T{i}"] = _tensor_rule(rec.ops[i], rec.attrs[i])
            return f"_t = T{i}([{', '.join(self.ns[f'X{i}'])}], {needs!r}, v{i}, g{i})"
        if kind in ("reduce", "axis"):
            self.ns[f"T{i}"] = _tensor_rule(rec.ops[i], self.shifted(i))
            return f"_t = T{i}([{_var(rec.sources[i][0])}], {needs!r}, v{i}, g{i})"
        self.ns[f"T{i}"] = _tensor_rule(rec.ops[i], rec.attrs[i])
        flags = tuple(self.is_batched(s) for s in rec.sources[i])
        args = ", ".join(_var(s) for s in rec.sources[i])
        return f"_t = _rows_backward(T{i}, [{args}], {flags!r}, {needs!r}, v{i}, g{i}, {C})"

    def rule_term(self, i: int, j: int) -> str:
        """Input j's gradient from node i's rule, ``_t[j]``, back in the input's shape when it was padded."""
        padded = self.ns.get(f"X{i}")
        if padded is not None and padded[j] != _var(self.rec.sources[i][j]):
            return f"_t[{j}].reshape({(self.count,) + self.rec.in_shapes[i][j]!r})"
        return f"_t[{j}]"

    def input_blocks(self, nodes: list[int], maybe_none: set[int]) -> dict[int, tuple[int, int]] | None:
        """When the flat input is read only through slices that tile it (a model's sites, one block each), the
        (start, stop) of each slice's node: the input's gradient is then the concatenation of theirs, instead of
        a zero array added into block by block. None otherwise."""
        rec = self.rec
        blocks = {}
        for i in nodes:
            reads = [k for k, src in enumerate(rec.sources[i]) if src[0] == _INPUT]
            if not reads:
                continue
            key = rec.attrs[i]["key"] if self.kind[i] == "getitem" else None
            key = key[0] if isinstance(key, tuple) and len(key) == 1 else key
            if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and len(rec.input_shapes[0]) == 1:
                k = int(key) % rec.input_shapes[0][0]
                key = slice(k, k + 1)
            if (not isinstance(key, slice) or key.step not in (None, 1) or i in maybe_none
                    or len(rec.input_shapes[0]) != 1):
                return None
            blocks[i] = key.indices(rec.input_shapes[0][0])[:2]
        edges = sorted(blocks.values())
        if not edges or edges[0][0] != 0 or edges[-1][1] != rec.input_shapes[0][0]:
            return None
        if any(a[1] != b[0] for a, b in zip(edges, edges[1:])) or any(a >= b for a, b in edges):
            return None
        return blocks

    def generate(self) -> str:
        rec, C = self.rec, self.count
        ops, sources = rec.ops, rec.sources
        self.lines.append("def replay(x0):")
        _forward_lines(rec, [], self.ns, {}, {}, buffers=False)  # the unbatched replay's helpers and constants
        for i in self.order:
            self.batched[i] = any(self.is_batched(s) for s in sources[i])
            if self.batched[i]:
                self.forward(i)
            else:
                self.lines += _forward_lines(rec, [i], self.ns, {}, {}, buffers=False)
        last = rec.output
        if not self.batched[last]:
            raise NotCompilable("the output does not depend on the input")

        def needs_of(i: int) -> tuple[bool, ...]:
            if getattr(ops[i], "no_gradient", False):
                return (False,) * len(sources[i])
            return tuple(is_float and self.is_batched(s) for s, is_float in zip(sources[i], rec.in_float[i]))

        batched_nodes = [i for i in self.order if self.batched[i]]
        grads = _GradientLines(batched_nodes, sources, needs_of, self.has_template, last,
                               lambda src, expr: f"gx0 += {expr}")
        self.ns["IS0"] = (C,) + rec.input_shapes[0]
        blocks = self.input_blocks(batched_nodes, grads.maybe_none)
        if blocks is None:
            self.lines.append("    gx0 = _np.zeros(IS0)")
        self.ns["_seed"] = np.ones((C,) + rec.shapes[last], rec.dtypes[last])
        self.lines += grads.start(last)
        for i in reversed(batched_nodes):
            needs, src = needs_of(i), sources[i]
            if i not in grads.has_grad or not any(needs) or (blocks is not None and i in blocks):
                continue  # (a block of the input: its gradient is put together at the end)
            if self.kind[i] == "getitem" and src[0][0] == _INPUT:
                # a slice of the flat input (a model's site): add the gradient where it was read
                body = [f"gx0[BK{i}] += g{i}" if rec.attrs[i]["basic"] else f"_np.add.at(gx0, BK{i}, g{i})"]
            elif self.has_template(i):
                body = [grads.add(src[j], expr) for j, expr in self.backward_terms(i, needs)]
            else:
                body = [self.rule_call(i, needs)]
                body += grads.add_rule_result(src, needs, lambda j, i=i: self.rule_term(i, j))
            self.lines += grads.node_lines(i, body)
        if blocks is not None:
            parts = []
            for i, (start, stop) in sorted(blocks.items(), key=lambda item: item[1]):
                if i not in grads.has_grad:
                    parts.append(f"_np.zeros({(C, stop - start)!r})")
                else:
                    parts.append(f"g{i}" if rec.shapes[i] else f"g{i}.reshape({(C, 1)!r})")  # an int index
            if len(parts) == 1 and parts[0].startswith("g"):  # one block: the whole input
                self.lines.append(f"    gx0 = {parts[0]}.copy()")  # a copy: it may be a value kept elsewhere
            else:
                self.lines.append(f"    gx0 = _np.concatenate(({', '.join(parts)},), axis=1)")
        value = f"v{last}" if rec.shapes[last] == () else f"v{last}.reshape({C})"  # one value per row
        self.lines.append(f"    return {value}, (gx0,)")
        return "\n".join(self.lines) + "\n"


class CompiledBatchedValueAndGrad:
    """``f(X: (C, n) ndarray) -> (values: (C,), gradients: (C, n))``: a function of one flat vector, compiled for
    a batch of C of them (see the module docstring). ``row_ops`` counts the ops that run once per row (no
    batching rule); ``source`` is the generated code. Not re-entrant, like the unbatched replay."""

    __slots__ = ("fn", "batch", "size", "source", "num_ops", "row_ops")

    def __init__(self, rec: Any, batch: int) -> None:
        gen = _Batcher(rec, batch)
        self.source = gen.generate()
        self.batch, self.size = batch, rec.input_shapes[0][0]
        self.num_ops, self.row_ops = len(gen.order), gen.row_ops
        exec(compile(self.source, "<probdl compiled batched value_and_grad>", "exec"), gen.ns)
        self.fn = gen.ns["replay"]

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.batch, self.size):
            raise ValueError(f"compiled batched function: expected positions of shape {(self.batch, self.size)}, "
                             f"got {x.shape}")
        value, (grad,) = self.fn(x)
        return value, grad


def compile_value_and_grad_batched(fn: Callable[[Tensor], Tensor], x0: np.ndarray,
                                   batch: int) -> CompiledBatchedValueAndGrad:
    """Trace the scalar function ``fn`` of a flat vector at ``x0`` and compile its value and gradient for
    ``batch`` vectors at once. Raises :class:`NotCompilable` as :func:`probdl.tensor.compile.compile_value_and_grad`
    does."""
    x0 = np.asarray(x0)
    if x0.ndim != 1:
        raise ValueError(f"compile_value_and_grad_batched: x0 must be a flat vector, got shape {x0.shape}")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"compile_value_and_grad_batched: batch must be an int >= 1, got {batch!r}")
    x = Tensor(x0.copy(), requires_grad=True)
    rec, out = _record(lambda: fn(x), [x])
    if not isinstance(out, Tensor) or out.data.size != 1:
        raise NotCompilable("the function must return a scalar Tensor")
    if rec.outputs[0][0] != _NODE:
        raise NotCompilable("the output does not depend on the input")
    rec.output = rec.outputs[0][1]
    if math.prod(rec.shapes[rec.output]) != 1:
        raise NotCompilable("the function must return a scalar Tensor")
    return CompiledBatchedValueAndGrad(rec, int(batch))
