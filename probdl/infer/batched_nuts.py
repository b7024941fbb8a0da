"""NUTS for a batch of chains advanced together: one leapfrog step of every chain per call of a batched
potential, so that the Python cost of the potential (its compiled replay) and of the integrator is paid once
per step for all the chains instead of once per chain.

The chains are not kept in lock-step transitions: each chain runs its own sequence of NUTS transitions, and
at every step each one takes the next leaf of its own trajectory. A chain that finishes a transition starts
the next at once, so no chain waits for the longest trajectory of the batch (as it would in a vectorized
``while`` loop). The integrator and the energies are computed for all chains in a few array operations; each
chain's bookkeeping of the leaf (weights, proposal, U-turn checks) then runs on Python floats and on views of
the step's rows, without copies.

The tree is built iteratively, leaf by leaf, rather than by recursion. The subtree of 2^d leaves being built
is the recursive builder's (:meth:`probdl.infer.hmc.NUTS._build`), unrolled: after leaf n (0-based), the nodes
of the recursion that end at n are complete, one for each trailing 1-bit of n, and node k (2^k leaves) is
checked with the generalized no-U-turn criterion over its momentum sum and, for k >= 2, across its two halves
(Stan's extra checks). The nodes of two leaves (checked at every odd leaf) are checked for all chains at once,
in the step's array operations. A larger node's momentum sum is a difference of the subtree's running sum, kept
at the leaf where each level's node starts (one checkpoint per level, as in NumPyro's iterative NUTS). A chain
that has made all its transitions stays where it is (a step size of 0) until the others finish. Within a subtree the
proposal is chosen by uniform progressive sampling (the new leaf replaces it with probability w_leaf /
w_subtree), which gives the same multinomial distribution over its leaves as the recursive halving; across the
top-level doublings, biased progressive sampling, as in :class:`~probdl.infer.hmc.NUTS`. The draws therefore
follow the same distribution as the sequential kernel's, though not the same random numbers.

References:
    M. D. Hoffman & A. Gelman, "The No-U-Turn Sampler", JMLR 15 (2014).
    M. Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo", arXiv:1701.02434 (2017), appendix A.
    D. Phan, N. Pradhan & M. Jankowiak, "Composable Effects for Flexible and Accelerated Probabilistic
    Programming in NumPyro", arXiv:1912.11554 (2019), §3 (an iterative NUTS with checkpoints).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend.linalg import LinAlgError
from ..tensor.compile import NotCompilable, results_agree
from ..tensor.compile_batched import CompiledBatchedValueAndGrad, compile_value_and_grad_batched
from .hmc import (
    MAX_ENERGY_ERROR,
    NUTS,
    FlatModel,
    FlatPotential,
    HMCState,
    _log_add_exp,
    _no_u_turn,
    _quiet_trace,
    _warn_disagreed,
)
from .hmc_util import Metric

__all__ = ["BatchedNUTS", "BatchPotential", "batch_potential"]

# potential and gradient of every row: (C, D) positions -> ((C,) energies, (C, D) gradients)
BatchPotential = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
# a chain's finished transition (after the warmup's adaptation) -> its next state, or None: the chain is done
OnTransition = Callable[[int, HMCState], "HMCState | None"]

_UNIFORMS = 256  # uniforms drawn from a chain's generator at a time, for its leaves' proposal choices
_row_dot = getattr(np, "vecdot", None) or (lambda a, b: np.einsum("...d,...d->...", a, b))


def _trailing_ones(n: int) -> int:
    return ((n ^ (n + 1)).bit_length()) - 1


def _trailing_zeros(n: int, cap: int) -> int:
    return cap if n == 0 else min(cap, (n & -n).bit_length() - 1)


class _Chain:
    """One chain's transition in progress. A point of its trajectory is a pair (step, row): the tuple of arrays of
    the batched step that computed it (see ``BatchedNUTS._step``) and its row there; nothing is copied until a
    draw is kept."""

    __slots__ = ("state", "metric", "h0", "ends", "proposal", "proposal_h", "log_weight", "rho", "depth",
                 "num_steps", "sum_accept", "sign", "leaf", "leaves", "sub_log_weight", "sub_proposal",
                 "sub_proposal_h", "first", "checkpoints", "uniforms", "next_uniform", "running")

    def __init__(self) -> None:
        self.metric: Metric | None = None
        self.running = True
        self.uniforms: list[float] = []
        self.next_uniform = 0

    def uniform(self) -> float:
        if self.next_uniform == len(self.uniforms):
            self.uniforms, self.next_uniform = self.state.rng.random(_UNIFORMS).tolist(), 0
        u = self.uniforms[self.next_uniform]
        self.next_uniform += 1
        return u


# the fields of a step tuple
_Z, _R, _G, _V, _U, _RHO, _RHO_BEFORE, _R_BEFORE, _V_BEFORE = range(9)


class BatchedNUTS:
    """C chains of a :class:`~probdl.infer.hmc.NUTS` kernel run together (see the module docstring).

    Args:
        kernels: one initialized kernel per chain (each chain's warmup adapts through its own kernel).
        potential: U and ∇U of every row of a (C, D) array of positions.
        states: each chain's state to start from.
        on_transition: called with (chain, state) after each transition and the warmup's adaptation; it
            returns the state to continue from, or None when that chain has finished.
    """

    def __init__(self, kernels: list[NUTS], potential: BatchPotential, states: list[HMCState],
                 on_transition: OnTransition) -> None:
        if len(kernels) != len(states) or not states:
            raise ValueError(f"BatchedNUTS: {len(kernels)} kernels for {len(states)} states")
        self.kernels, self.potential, self.on_transition = kernels, potential, on_transition
        C, D = len(states), states[0].z.size
        self.size = D
        self.dense = states[0].inverse_mass_matrix.ndim == 2
        self.chains = [_Chain() for _ in range(C)]
        self.inv_mass = np.stack([s.inverse_mass_matrix for s in states])
        # each chain's signed step size and its half (0 once it has finished: its row then stays where it is)
        self.eps, self.half = np.zeros((C, 1)), np.zeros((C, 1))
        self.eps_inv_mass = np.zeros((C, D))  # eps M⁻¹ (a diagonal metric): the position step is this times r
        # the last leaf of each chain's subtree, where its next step starts, and the subtree's momentum sum
        self.z = np.stack([s.z for s in states])
        self.r, self.g, self.v = np.zeros((C, D)), np.stack([s.grad for s in states]), np.zeros((C, D))
        self.rho = np.zeros((C, D))
        self.twice_kinetic = [0.0] * C  # r·M⁻¹r at each chain's last leaf
        self.owned = True  # whether no point refers to the rows of these arrays (else they are copied before a write)
        self.running = C  # chains that have transitions left
        self._initial = states

    def _velocity(self, r: np.ndarray) -> np.ndarray:
        if self.dense:
            return np.matmul(self.inv_mass, r[:, :, None])[:, :, 0]
        return self.inv_mass * r

    @property
    def final_states(self) -> list[HMCState]:
        """Each chain's latest state (its last one once ``run`` has returned)."""
        return [ch.state for ch in self.chains]

    def run(self) -> None:
        """Run until every chain's ``on_transition`` has answered None."""
        for c, state in enumerate(self._initial):
            self._start_transition(c, state)
        with np.errstate(all="ignore"):  # a diverging trajectory overflows: it is reported as a divergence
            while self.running:
                self._step()

    # ------------------------------------------------------------------ one leaf of every chain
    def _step(self) -> None:
        half = self.half
        r = self.r - half * self.g
        z = self.z + (self.eps * self._velocity(r) if self.dense else self.eps_inv_mass * r)
        u, g = self.potential(z)
        r -= half * g
        v = self._velocity(r)
        r_before, v_before, rho_before = self.r, self.v, self.rho
        potential, twice_kinetic, cross = u.tolist(), _row_dot(r, v).tolist(), _row_dot(r, v_before).tolist()
        # the no-U-turn criterion over each chain's last two leaves (the nodes of 2 leaves, checked at odd leaves):
        # with ρ = r' + r, ρ·v' = r'·v' + r·v' and ρ·v = r'·v + r·v, where r'·v = r·v' (M⁻¹ is symmetric)
        twice_kinetic_before, self.twice_kinetic = self.twice_kinetic, twice_kinetic
        rho = rho_before + r
        step = (z, r, g, v, u, rho, rho_before, r_before, v_before)
        self.z, self.r, self.g, self.v, self.rho = z, r, g, v, rho
        self.owned = False
        for c, ch in enumerate(self.chains):
            if not ch.running:
                continue
            h = potential[c] + 0.5 * twice_kinetic[c]
            if not math.isfinite(h):
                h = math.inf
            delta = h - ch.h0
            ch.sum_accept += 1.0 if delta <= 0.0 else math.exp(-delta)
            ch.num_steps += 1
            n = ch.leaf
            ch.leaf = n + 1
            if delta > MAX_ENERGY_ERROR:  # a divergence: the subtree is dropped and the trajectory ends
                self._finish(c, ch, True)
                continue
            if n == 0:
                ch.sub_log_weight, ch.sub_proposal, ch.sub_proposal_h = -delta, (step, c), h
                ch.first = (step, c)
            else:
                log_weight = _log_add_exp(ch.sub_log_weight, -delta)
                if ch.uniform() < math.exp(-delta - log_weight):
                    ch.sub_proposal, ch.sub_proposal_h = (step, c), h
                ch.sub_log_weight = log_weight
            if n & 1 == 0:  # the nodes of levels 1 .. (trailing zeros of n) start here
                checkpoints, mark = ch.checkpoints, (step, c)
                for k in range(1, _trailing_zeros(n, len(checkpoints) - 1) + 1):
                    checkpoints[k] = mark
            elif (twice_kinetic_before[c] + cross[c] <= 0.0 or cross[c] + twice_kinetic[c] <= 0.0
                  or (n & 2 and self._turned(ch, n, step, c))):
                self._finish(c, ch, False)
                continue
            if ch.leaf == ch.leaves:
                self._merge(c, ch, (step, c))

    @staticmethod
    def _turned(ch: _Chain, n: int, step: tuple, c: int) -> bool:
        """Whether a node of 4 leaves or more that ends at leaf n has made a U-turn: over its whole momentum sum,
        and across its two halves (left: a..m, right: m+1..n)."""
        checkpoints = ch.checkpoints
        rho, v = step[_RHO][c], step[_V][c]
        for k in range(2, _trailing_ones(n) + 1):
            s, a = checkpoints[k]  # the node's first leaf, a
            t, b = checkpoints[k - 1]  # its right half's first leaf, m + 1
            start_sum, v_a, mid_sum = s[_RHO_BEFORE][a], s[_V][a], t[_RHO_BEFORE][b]
            if not (_no_u_turn(rho - start_sum, v_a, v)
                    and _no_u_turn(mid_sum - start_sum + t[_R][b], v_a, t[_V][b])
                    and _no_u_turn(rho - mid_sum + t[_R_BEFORE][b], t[_V_BEFORE][b], v)):
                return True
        return False

    # ------------------------------------------------------------------ per-chain events
    def _set_row(self, c: int, z: np.ndarray, r: np.ndarray, g: np.ndarray, v: np.ndarray) -> None:
        """Chain c's next step starts a subtree from (z, r, g, v). The step arrays are copied first when points
        of the trajectories refer to their rows."""
        if not self.owned:
            self.z, self.r, self.g, self.v, self.rho = (a.copy() for a in (self.z, self.r, self.g, self.v, self.rho))
            self.owned = True
        self.z[c], self.r[c], self.g[c], self.v[c], self.rho[c] = z, r, g, v, 0.0

    def _start_transition(self, c: int, state: HMCState) -> None:
        ch = self.chains[c]
        ch.state = state
        if ch.metric is None or ch.metric.inverse_mass_matrix is not state.inverse_mass_matrix:
            ch.metric = Metric(state.inverse_mass_matrix)
            self.inv_mass[c] = ch.metric.inverse_mass_matrix
        r0 = ch.metric.sample_momentum(state.rng)
        v0 = ch.metric.velocity(r0)
        ch.h0 = state.potential_energy + 0.5 * float(r0.dot(v0))
        start = ((state.z[None], r0[None], state.grad[None], v0[None], np.array([state.potential_energy])), 0)
        ch.ends = [start, start]  # the trajectory's backward and forward ends
        ch.proposal, ch.proposal_h = start, ch.h0
        ch.log_weight, ch.rho = 0.0, r0
        ch.depth = ch.num_steps = 0
        ch.sum_accept = 0.0
        ch.checkpoints = [None] * (self.kernels[c].max_tree_depth + 1)
        self._start_subtree(c, ch)

    def _start_subtree(self, c: int, ch: _Chain) -> None:
        forward = ch.state.rng.random() > 0.5
        ch.sign = 1.0 if forward else -1.0
        ch.leaf, ch.leaves = 0, 1 << ch.depth
        s, k = ch.ends[int(forward)]
        self._set_row(c, s[_Z][k], s[_R][k], s[_G][k], s[_V][k])
        self.eps[c, 0] = eps = ch.sign * ch.state.step_size
        self.half[c, 0] = 0.5 * eps
        if not self.dense:
            np.multiply(self.inv_mass[c], eps, out=self.eps_inv_mass[c])

    def _merge(self, c: int, ch: _Chain, last: tuple) -> None:
        """Chain c's subtree is complete and valid: it joins the trajectory, which doubles again unless it
        has made a U-turn or reached the maximum depth."""
        ch.depth += 1
        # biased progressive sampling: a heavier new subtree always wins
        sub_w, w = ch.sub_log_weight, ch.log_weight
        if sub_w > w or ch.state.rng.random() < math.exp(sub_w - w):
            ch.proposal, ch.proposal_h = ch.sub_proposal, ch.sub_proposal_h
        ch.log_weight = _log_add_exp(w, sub_w)
        (s, k), (f, j) = last, ch.first
        sub_rho, last_v, first_r, first_v = s[_RHO][k], s[_V][k], f[_R][j], f[_V][j]
        old_rho, ch.rho = ch.rho, ch.rho + sub_rho
        (b, kb), (e, ke) = ch.ends
        back_r, back_v, fwd_r, fwd_v = b[_R][kb], b[_V][kb], e[_R][ke], e[_V][ke]
        if ch.sign > 0:
            keep = (_no_u_turn(ch.rho, back_v, last_v) and _no_u_turn(old_rho + first_r, back_v, first_v)
                    and _no_u_turn(sub_rho + fwd_r, fwd_v, last_v))
            ch.ends[1] = last
        else:
            keep = (_no_u_turn(ch.rho, last_v, fwd_v) and _no_u_turn(sub_rho + back_r, last_v, back_v)
                    and _no_u_turn(old_rho + first_r, first_v, fwd_v))
            ch.ends[0] = last
        if keep and ch.depth < self.kernels[c].max_tree_depth:
            self._start_subtree(c, ch)
        else:
            self._finish(c, ch, False)

    def _finish(self, c: int, ch: _Chain, diverging: bool) -> None:
        """Chain c's transition is over: its draw, the warmup's adaptation, and the next transition."""
        state, steps = ch.state, ch.num_steps
        s, k = ch.proposal
        new = state._replace(i=state.i + 1, z=s[_Z][k].copy(), potential_energy=float(s[_U][k]),
                             grad=s[_G][k].copy(), energy=ch.proposal_h, num_steps=steps, tree_depth=ch.depth,
                             accept_prob=ch.sum_accept / max(steps, 1), diverging=diverging)
        if state.adapt is not None:
            new = self.kernels[c]._adapt(new, ch.metric)
        following = self.on_transition(c, new)
        if following is None:
            ch.running, ch.state = False, new
            self.running -= 1
            self.eps[c, 0] = self.half[c, 0] = 0.0
            self.eps_inv_mass[c] = 0.0
            self._set_row(c, new.z, np.zeros(self.size), new.grad, np.zeros(self.size))
        else:
            self._start_transition(c, following)


# ---------------------------------------------------------------------------- the batch potential
class RowByRow:
    """The batch potential of any potential: one evaluation per row (the fallback when the model's potential
    cannot be compiled for a batch, and for a user's ``potential_fn``)."""

    __slots__ = ("potential",)

    def __init__(self, potential: FlatModel | FlatPotential) -> None:
        self.potential = potential

    def __call__(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, grads = np.empty(z.shape[0]), np.empty(z.shape)
        for c in range(z.shape[0]):
            values[c], grads[c] = self.potential.unguarded(z[c])
        return values, grads


class CompiledBatchPotential:
    """A model's potential and gradient at C points by one batched replay
    (:func:`probdl.tensor.compile_batched.compile_value_and_grad_batched`), under the unbatched replay's
    guards: used only after it agrees with the model at test points, checked against the model again every
    ``FlatModel.CHECK_EVERY`` calls (one row) and replaced by :class:`RowByRow` at the first disagreement. A
    row where the model has no density (a failed factorization) sends that call row by row."""

    __slots__ = ("model", "compiled", "fallback", "calls", "_fn")

    def __init__(self, model: FlatModel, compiled: CompiledBatchedValueAndGrad) -> None:
        self.model, self.compiled, self.fallback, self.calls = model, compiled, RowByRow(model), 0
        self._fn = compiled.fn  # the generated replay itself: the sampler passes float64 arrays of the right shape

    def _replay(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        try:
            values, (grads,) = self._fn(z)
        except LinAlgError:
            return self.fallback(z)
        return values, grads

    def agrees(self, z: np.ndarray, rows: Any = None) -> bool:
        """Whether the ``rows`` (default: all) of the replay at ``z`` agree with the model's own potential (a
        replay that fails where the model works does not)."""
        try:
            with np.errstate(all="ignore"):
                values, grads = self._replay(z)
        except Exception:  # noqa: BLE001  (any failure of the replay: it disagrees)
            return False
        rtol = self.model._rtol()
        for c in range(z.shape[0]) if rows is None else rows:
            value, grad = self.model.eager(z[c])
            if math.isfinite(value) and not results_agree(values[c], [grads[c]], value, [grad], rtol):
                return False
        return True

    def __call__(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.compiled is None:
            return self.fallback(z)
        self.calls += 1
        if (self.calls % FlatModel.CHECK_EVERY == 0  # one row per check, in turn
                and not self.agrees(z, [self.calls // FlatModel.CHECK_EVERY % z.shape[0]])):
            _warn_disagreed("batched potential", "Draws made", "steps", "evaluating the chains one by one")
            self.compiled = None
            return self.fallback(z)
        return self._replay(z)


def batch_potential(potential: Any, count: int) -> BatchPotential:
    """The potential of ``count`` chains at once: a compiled batched replay when the model's potential is
    compiled and its batched replay agrees with the model at three batches of test points, else one evaluation
    per row."""
    if not isinstance(potential, FlatModel) or potential.compiled is None:
        return RowByRow(potential)
    z0 = potential.pack(potential.info.params)
    try:
        with _quiet_trace():
            compiled = compile_value_and_grad_batched(potential._flat_potential, z0, count)
    except (NotCompilable, LinAlgError):
        return RowByRow(potential)
    batched = CompiledBatchPotential(potential, compiled)
    rng = np.random.default_rng(0)
    for scale in (0.0, 0.1, 1.0):
        if not batched.agrees(z0 + scale * rng.standard_normal((count, z0.size))):
            return RowByRow(potential)
    return batched
