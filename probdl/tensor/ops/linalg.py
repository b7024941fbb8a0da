"""Linear algebra with gradients, batched over leading dims with broadcasting.

Vectors follow PyTorch: in ``solve`` and ``solve_triangular`` the right-hand side ``b``
is a batch of vectors when ``b.ndim == a.ndim - 1`` and a batch of matrices otherwise.
Every backward rule is written with these same ops, so second derivatives work.

References:
    Giles, "An extended collection of matrix derivative results for forward and reverse
    mode automatic differentiation", 2008 (inverse, determinant, solve, eigh).
    Murray, "Differentiation of the Cholesky decomposition", arXiv:1602.07527, 2016.
"""
from __future__ import annotations

import string
from collections import Counter
from typing import Any

from ...backend import get_array_module
from ...backend import linalg as _la
from .base import Op, Tensor, apply, constant, data_function, sum_to, to_tensor
from .elementwise import where
from .reduction import sum
from .shape import diagonal, matrix_transpose

__all__ = ["matmul", "einsum", "outer", "cholesky", "solve_triangular", "cholesky_solve", "solve", "inv",
           "slogdet", "logdet", "det", "trace", "eigh", "LinAlgError"]

LinAlgError = _la.LinAlgError


def _check_square(name: str, a: Tensor) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name}: expected a square matrix or a batch of them (..., n, n), got shape {a.shape}")


def _mT(x: Tensor) -> Tensor:
    return matrix_transpose(x)


# ------------------------------------------------------------------ products
class MatMul(Op):
    """Batched matrix product op(a) @ op(b) of two tensors with at least 2 dims, where op transposes
    the last two dims when ``ta`` / ``tb`` is set. The flags let the backward products read
    transposes as strided views instead of recording transpose ops:
    with C = op(A) op(B), Ā = Ḡ op(B)ᵀ (or its transpose when ``ta``), B̄ = op(A)ᵀ Ḡ (likewise)."""

    @staticmethod
    def forward(a, b, ta=False, tb=False):
        a, b = _blas_ready(a), _blas_ready(b)
        return (a.swapaxes(-1, -2) if ta else a) @ (b.swapaxes(-1, -2) if tb else b)

    @staticmethod
    def backward(node, out, g):
        a, b = node.inputs
        ta, tb = (node.attrs["ta"], node.attrs["tb"]) if node.attrs else (False, False)
        ga = gb = None
        if a.requires_grad:
            ga = _mm(g, b, False, not tb) if not ta else _mm(b, g, tb, True)
            ga = sum_to(ga, a.data.shape)
        if b.requires_grad:
            gb = _mm(a, g, not ta, False) if not tb else _mm(g, a, True, ta)
            gb = sum_to(gb, b.data.shape)
        return ga, gb


def _blas_ready(a: Any) -> Any:
    """``a`` itself when BLAS can read its last two dims (one of them unit-stride, none broadcast),
    else a contiguous copy: NumPy's matmul falls back to a loop tens of times slower otherwise (a
    broadcast gradient sliced per time step is the common case)."""
    st, item = a.strides[-2:], a.itemsize
    if 0 not in a.strides and (st[-1] == item or st[0] == item):
        return a
    return get_array_module(a).ascontiguousarray(a)


def _mm(a: Tensor, b: Tensor, ta: bool, tb: bool) -> Tensor:
    return apply(MatMul, (a, b), {"ta": ta, "tb": tb} if ta or tb else None)


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with NumPy's rules: batch dims broadcast; a 1-D operand is a vector."""
    a, b = to_tensor(a), to_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least one dim, got shapes {a.shape} and {b.shape}")
    inner_b = b.shape[-2] if b.ndim >= 2 else b.shape[0]
    if a.shape[-1] != inner_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match ({a.shape[-1]} != {inner_b})")
    if a.ndim >= 2 and b.ndim >= 2:
        return apply(MatMul, (a, b))
    va, vb = a.ndim == 1, b.ndim == 1
    out = matmul(a.reshape(1, -1) if va else a, b.reshape(-1, 1) if vb else b)
    if va and vb:
        return out.reshape(())
    return out.squeeze(-2) if va else out.squeeze(-1)


def outer(a: Any, b: Any) -> Tensor:
    """Outer product of two vectors (flattened first, as in NumPy)."""
    a, b = to_tensor(a), to_tensor(b)
    return a.reshape(-1, 1) * b.reshape(1, -1)


def _parse_einsum(subscripts: str, shapes: list[tuple[int, ...]]) -> tuple[list[str], str]:
    """Explicit letters for every operand and the output: ``...`` replaced, implicit output made explicit."""
    subs = subscripts.replace(" ", "")
    lhs, arrow, out = subs.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise ValueError(f"einsum: '{subscripts}' names {len(ins)} operands but {len(shapes)} were given")
    spare = [c for c in string.ascii_letters if c not in subs]
    ell_nd = max([len(sh) - len(s.replace("...", "")) for s, sh in zip(ins, shapes) if "..." in s], default=0)
    ell = "".join(spare[:ell_nd])
    explicit = []
    for s, sh in zip(ins, shapes):
        if "..." in s:
            k = len(sh) - (len(s) - 3)
            s = s.replace("...", ell[ell_nd - k:] if k else "")
        if len(s) != len(sh):
            raise ValueError(f"einsum: operand subscripts '{s}' do not match its shape {sh}")
        explicit.append(s)
    if arrow:
        out = out.replace("...", ell)
    else:
        counts = Counter("".join(i.replace("...", "") for i in ins))
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1))
    return explicit, out


def einsum_optimizes(sizes: list[int]) -> bool:
    """Whether ``einsum`` of operands of these sizes should search a contraction path. NumPy's search costs tens
    of µs in Python: worth it for three or more operands (the order of contractions) or large ones (a BLAS
    contraction), not for a small product of two."""
    total = 0
    for n in sizes:  # (this module's ``sum`` is the op)
        total += n
    return len(sizes) > 2 or total > 65536


class Einsum(Op):
    """Einstein summation; the gradient for each operand is another einsum (with identity matrices for
    repeated letters and ones for letters summed away in that operand alone)."""

    @staticmethod
    def forward(*arrays, ins, out):
        xp = get_array_module(*arrays)
        sizes = [a.size for a in arrays]
        return xp.einsum(",".join(ins) + "->" + out, *arrays, optimize=einsum_optimizes(sizes))

    @staticmethod
    def backward(node, out_t, g):
        ins, out = node.attrs["ins"], node.attrs["out"]
        xs = node.inputs
        used = set("".join(ins) + out)
        spare = [c for c in string.ascii_letters if c not in used]
        grads = []
        for k, x in enumerate(xs):
            if not x.requires_grad:
                grads.append(None)
                continue
            xp = get_array_module(x.data)
            sizes = dict(zip(ins[k], x.data.shape))
            operands, subs = [g], [out]
            for j, y in enumerate(xs):
                if j != k:
                    operands.append(y)
                    subs.append(ins[j])
            target, seen = [], set()
            for c in ins[k]:
                if c in seen:  # a repeated letter is a diagonal: place the gradient on it with an identity
                    f = spare.pop()
                    operands.append(constant(xp.eye(sizes[c], dtype=g.data.dtype)))
                    subs.append(c + f)
                    target.append(f)
                else:
                    seen.add(c)
                    target.append(c)
            elsewhere = set(out).union(*(ins[j] for j in range(len(xs)) if j != k))
            for c in seen - elsewhere:  # summed in this operand alone: the gradient is constant along it
                operands.append(constant(xp.ones(sizes[c], dtype=g.data.dtype)))
                subs.append(c)
            gk = apply(Einsum, tuple(operands), {"ins": tuple(subs), "out": "".join(target)})
            grads.append(sum_to(gk, x.data.shape))
        return tuple(grads)


def einsum(subscripts: str, *operands: Any) -> Tensor:
    """Einstein summation as in ``numpy.einsum`` (explicit or implicit output, ``...`` broadcasting)."""
    xs = tuple(to_tensor(x) for x in operands)
    ins, out = _parse_einsum(subscripts, [x.shape for x in xs])
    return apply(Einsum, xs, {"ins": tuple(ins), "out": out})


# ------------------------------------------------------------------ factorizations and solves
class Cholesky(Op):
    """Lower Cholesky factor. Gradient (Murray 2016): S = L⁻ᵀ Φ(Lᵀ Ḡ) L⁻¹, Ā = (S + Sᵀ) / 2,
    with Φ taking the lower triangle and halving the diagonal."""

    forward = staticmethod(_la.cholesky)

    @staticmethod
    def backward(node, L, g):
        n = L.data.shape[-1]
        xp = get_array_module(L.data)
        half_diag = constant(xp.tril(xp.ones((n, n), dtype=L.data.dtype)) - 0.5 * xp.eye(n, dtype=L.data.dtype))
        P = (_mT(L) @ g) * half_diag
        X = solve_triangular(L, P, lower=True, trans=1)           # L⁻ᵀ P
        S = _mT(solve_triangular(L, _mT(X), lower=True, trans=1))  # (L⁻ᵀ Xᵀ)ᵀ = X L⁻¹
        return (0.5 * (S + _mT(S)),)


def cholesky(a: Any) -> Tensor:
    """Lower-triangular L with L Lᵀ = a, for a (batch of) symmetric positive-definite matrices.

    Only the lower triangle of ``a`` is read; the gradient is the symmetric one. Raises
    ``LinAlgError`` when a matrix is not positive definite.
    """
    a = to_tensor(a)
    _check_square("cholesky", a)
    return apply(Cholesky, (a,))


class SolveTriangular(Op):
    """X = op(A)⁻¹ B for triangular A; B̄ = op(A)⁻ᵀ X̄, Ā = -B̄ Xᵀ (transposed if op is), masked to A's triangle."""

    forward = staticmethod(lambda a, b, lower, trans, unit: _la.solve_triangular(a, b, lower, trans, unit))

    @staticmethod
    def backward(node, x, g):
        a, b = node.inputs
        lower, trans, unit = node.attrs["lower"], node.attrs["trans"], node.attrs["unit"]
        gb = solve_triangular(a, g, lower=lower, trans=not trans, unit_diagonal=unit)
        ga = None
        if a.requires_grad:
            gm = -(x @ _mT(gb)) if trans else -(gb @ _mT(x))
            k = (-1 if lower else 1) if unit else 0
            ga = sum_to(gm.tril(k) if lower else gm.triu(k), a.data.shape)
        return ga, sum_to(gb, b.data.shape) if b.requires_grad else None


def _as_matrix_rhs(name: str, a: Tensor, b: Tensor) -> tuple[Tensor, bool]:
    _check_square(name, a)
    # As PyTorch: b is a (batch of) vector(s) when it is 1-D or has exactly a's batch dims plus one.
    vector = b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape[:-1] == a.shape[:-2])
    bm = b.unsqueeze(-1) if vector else b
    if bm.ndim < 2 or bm.shape[-2] != a.shape[-1]:
        raise ValueError(f"{name}: a of shape {a.shape} and b of shape {b.shape} do not match "
                         f"(b needs {a.shape[-1]} rows)")
    return bm, vector


def solve_triangular(a: Any, b: Any, trans: Any = 0, lower: bool = False, unit_diagonal: bool = False) -> Tensor:
    """Solve ``op(a) x = b`` with triangular ``a`` (scipy's signature: ``trans`` 0/'N' or 1/'T';
    only the named triangle is read). Batched, with broadcasting."""
    a, b = to_tensor(a), to_tensor(b)
    if trans in ("N", "T", "C"):
        trans = trans != "N"
    bm, vector = _as_matrix_rhs("solve_triangular", a, b)
    x = apply(SolveTriangular, (a, bm), {"lower": bool(lower), "trans": bool(trans), "unit": bool(unit_diagonal)})
    return x.squeeze(-1) if vector else x


def cholesky_solve(b: Any, L: Any, upper: bool = False) -> Tensor:
    """x = A⁻¹ b given the Cholesky factor of A (lower ``L`` with A = L Lᵀ, or upper with A = Uᵀ U);
    PyTorch's argument order."""
    L, b = to_tensor(L), to_tensor(b)
    _as_matrix_rhs("cholesky_solve", L, b)
    if upper:
        return solve_triangular(L, solve_triangular(L, b, trans=1, lower=False), lower=False)
    return solve_triangular(L, solve_triangular(L, b, lower=True), trans=1, lower=True)


class Solve(Op):
    """X = A⁻¹ B; B̄ = A⁻ᵀ X̄ and Ā = -B̄ Xᵀ."""

    forward = staticmethod(_la.solve)

    @staticmethod
    def backward(node, x, g):
        a, b = node.inputs
        gb = solve(_mT(a), g)
        return (sum_to(-(gb @ _mT(x)), a.data.shape) if a.requires_grad else None,
                sum_to(gb, b.data.shape) if b.requires_grad else None)


def solve(a: Any, b: Any) -> Tensor:
    """Solve ``a x = b`` for square ``a`` (batched, broadcasting)."""
    a, b = to_tensor(a), to_tensor(b)
    bm, vector = _as_matrix_rhs("solve", a, b)
    x = apply(Solve, (a, bm))
    return x.squeeze(-1) if vector else x


class Inv(Op):
    """A⁻¹; Ā = -A⁻ᵀ Ḡ A⁻ᵀ."""

    forward = staticmethod(_la.inv)

    @staticmethod
    def backward(node, out, g):
        ot = _mT(out)
        return (-(ot @ g @ ot),)


def inv(a: Any) -> Tensor:
    """Matrix inverse (prefer :func:`solve` or :func:`cholesky_solve` for solving systems)."""
    a = to_tensor(a)
    _check_square("inv", a)
    return apply(Inv, (a,))


class LogAbsDet(Op):
    """log|det A|; Ā = ḡ A⁻ᵀ."""

    forward = staticmethod(lambda a: _la.slogdet(a)[1])

    @staticmethod
    def backward(node, out, g):
        return (g[..., None, None] * _mT(inv(node.inputs[0])),)


class Det(Op):
    """det A; Ā = ḡ det(A) A⁻ᵀ."""

    forward = staticmethod(_la.det)

    @staticmethod
    def backward(node, out, g):
        return ((g * out)[..., None, None] * _mT(inv(node.inputs[0])),)


def slogdet(a: Any) -> tuple[Tensor, Tensor]:
    """(sign, log|det a|); the sign carries no gradient."""
    a = to_tensor(a)
    _check_square("slogdet", a)
    sign = data_function(lambda m: _la.slogdet(m)[0], a)
    return sign, apply(LogAbsDet, (a,))


def logdet(a: Any) -> Tensor:
    """log det a: NaN where the determinant is negative, -inf where it is zero (as PyTorch)."""
    sign, lad = slogdet(a)
    xp = get_array_module(sign.data)
    return lad + data_function(lambda s: xp.where(s < 0, xp.nan, 0.0).astype(lad.dtype), sign)


def det(a: Any) -> Tensor:
    """Determinant."""
    a = to_tensor(a)
    _check_square("det", a)
    return apply(Det, (a,))


def trace(a: Any) -> Tensor:
    """Sum of the diagonal of the last two dims."""
    a = to_tensor(a)
    if a.ndim < 2:
        raise ValueError(f"trace: needs at least 2 dims, got shape {a.shape}")
    return sum(diagonal(a, 0, -2, -1), -1)


class EighPacked(Op):
    """Eigen-decomposition packed into one array of shape (..., n + 1, n): row 0 holds the eigenvalues w,
    rows 1.. the eigenvectors V (so one node serves both outputs).

    Gradient (distinct eigenvalues): Ā = V (diag(w̄) + F ∘ (Vᵀ V̄)) Vᵀ with F_ij = 1 / (w_j - w_i), i ≠ j,
    then symmetrized.
    """

    @staticmethod
    def forward(a):
        xp = get_array_module(a)
        w, v = _la.eigh(a)
        return xp.concatenate([w[..., None, :], v], axis=-2)

    @staticmethod
    def backward(node, out, g):
        w, v = out[..., 0, :], out[..., 1:, :]
        gw, gv = g[..., 0, :], g[..., 1:, :]
        n = w.shape[-1]
        xp = get_array_module(out.data)
        eye = xp.eye(n, dtype=out.data.dtype)
        F = where(eye.astype(bool), 0.0, 1.0 / (w[..., None, :] - w[..., :, None] + constant(eye)))
        inner = (_mT(v) @ gv) * F + gw[..., None, :] * constant(eye)
        ga = v @ inner @ _mT(v)
        return (0.5 * (ga + _mT(ga)),)


def eigh(a: Any) -> tuple[Tensor, Tensor]:
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of a symmetric matrix.

    Reads the lower triangle. The gradient assumes distinct eigenvalues (it is undefined otherwise).
    """
    a = to_tensor(a)
    _check_square("eigh", a)
    packed = apply(EighPacked, (a,))
    return packed[..., 0, :], packed[..., 1:, :]


