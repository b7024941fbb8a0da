"""Hamiltonian Monte Carlo kernels: HMC with a fixed trajectory and the No-U-Turn Sampler, with Stan's warmup.

Both work on the flat unconstrained vector z of a model's latent sites (``initialize_model`` builds U(z), its
gradient from the engine and the map back to constrained values), or on a user's ``potential_fn`` over a flat
array. The MCMC driver (:class:`probdl.infer.mcmc.MCMC`) calls ``init`` once per chain and ``sample`` once per
iteration; every piece of per-chain state, the random generator included, lives in the returned
:class:`HMCState`, so chains are independent and a state can be resumed.

NUTS (Hoffman & Gelman 2014) as Stan runs it (Betancourt 2017): the trajectory doubles forwards or backwards
at random; the proposal is drawn from the trajectory with probability proportional to e^{-H} (multinomial
sampling: uniform progressive sampling within a new subtree, biased progressive sampling across the top-level
doublings); doubling stops at the generalized U-turn criterion, checked over every subtree and across the two
halves of every merge, at a divergence (H - H₀ > 1000), or at ``max_tree_depth``.

Warmup (when enabled): dual averaging of the step size towards ``target_accept_prob`` in every warmup
iteration, and Stan's windowed adaptation of the mass matrix (a fast initial buffer of 75 iterations, slow
windows of 25, 50, 100, ... whose draws give a Welford estimate of the (co)variance, regularised towards
1e-3·I, a terminal fast buffer of 50); after each window the step size is searched afresh and the dual
averaging restarted.

References:
    M. D. Hoffman & A. Gelman, "The No-U-Turn Sampler: Adaptively Setting Path Lengths in Hamiltonian Monte
    Carlo", JMLR 15 (2014).
    M. Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo", arXiv:1701.02434 (2017), appendix A
    (multinomial sampling, the generalized No-U-Turn criterion).
    Stan Reference Manual, "MCMC Sampling" (adaptation windows, metric regularisation, divergences).
"""
from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np

from ..backend import as_generator
from ..backend.linalg import LinAlgError
from ..distributions.distribution import enable_validation, is_validation_enabled
from ..tensor import Tensor, no_grad, value_and_grad
from ..tensor.compile import (
    CompiledForward,
    CompiledValueAndGrad,
    NotCompilable,
    agrees_with,
    compile_forward,
    compile_value_and_grad,
    replay_tolerance,
)
from ..tensor.ops.base import to_tensor
from .hmc_util import (
    DualAveraging,
    IntegratorState,
    Metric,
    WelfordCovariance,
    find_reasonable_step_size,
    leapfrog_unguarded,
    warmup_windows,
)
from .initialization import init_to_uniform, init_to_value
from .util import ModelInfo, initialize_model

__all__ = ["HMC", "NUTS", "HMCState", "MAX_ENERGY_ERROR"]

MAX_ENERGY_ERROR = 1000.0  # a transition whose energy error H - H0 exceeds this is divergent (Stan's max_deltaH)


class HMCState(NamedTuple):
    """One chain's state after iteration ``i`` (0-based; -1 before the first).

    ``z`` (flat unconstrained position), its ``potential_energy`` and ``grad``; the transition's ``energy``
    (H at the draw), ``num_steps`` (leapfrog steps), ``tree_depth`` (NUTS; 0 for HMC), ``accept_prob`` (its mean
    Metropolis acceptance, what the step size adapts on), ``diverging``; the ``step_size`` and
    ``inverse_mass_matrix`` in force; ``adapt`` (the warmup's adaptation state, None after warmup) and ``rng``
    (the chain's generator).
    """

    i: int
    z: np.ndarray
    potential_energy: float
    grad: np.ndarray
    energy: float
    num_steps: int
    tree_depth: int
    accept_prob: float
    diverging: bool
    step_size: float
    inverse_mass_matrix: np.ndarray
    adapt: Any
    rng: np.random.Generator


class _Adaptation:
    """The warmup's mutable state: dual averaging, the Welford estimate, the window schedule."""

    __slots__ = ("num_warmup", "windows", "dual_averaging", "welford", "adapt_step_size", "adapt_mass_matrix")

    def __init__(self, num_warmup: int, size: int, step_size: float, target: float, adapt_step_size: bool,
                 adapt_mass_matrix: bool, dense: bool) -> None:
        self.num_warmup = num_warmup
        self.windows = warmup_windows(num_warmup) if adapt_mass_matrix else []
        self.dual_averaging = DualAveraging(step_size, target)
        self.welford = WelfordCovariance(size, dense)
        self.adapt_step_size, self.adapt_mass_matrix = adapt_step_size, adapt_mass_matrix

    def window_of(self, i: int) -> tuple[int, int] | None:
        return next((w for w in self.windows if w[0] <= i < w[1]), None)


# ---------------------------------------------------------------------------- potentials on flat vectors
class FlatModel:
    """A model's potential on the flat unconstrained vector: ``pack``/``unpack`` between ``site -> Tensor`` dicts
    and one float64 vector (sites in model order, each raveled), ``__call__(z) -> (U, ∇U)`` as float and array,
    and ``constrain(z)`` to the constrained latent and deterministic values.

    With ``jit_compile`` the potential and its gradient are compiled by trace and replay
    (:mod:`probdl.tensor.compile`): the model runs once, and every later evaluation replays its recorded ops on
    arrays, skipping the model's Python, the handlers and the distribution objects. The replay is used only when
    the trace shows no dependence of the graph on the values and it agrees with the eager potential at the
    initial point and two perturbed points; it is checked against the eager potential again every
    ``CHECK_EVERY`` evaluations, and dropped (with a warning) at the first disagreement. ``constrain`` (the
    postprocessing of every draw) is compiled and checked the same way.
    """

    __slots__ = ("info", "names", "shapes", "slices", "size", "compiled", "calls", "why_not_compiled", "_replay_fn",
                 "_constrain_names", "_constrain_replay", "constrain_calls")

    CHECK_EVERY = 500

    def __init__(self, info: ModelInfo, jit_compile: bool = False) -> None:
        self.info = info
        self.names = list(info.params)
        self.shapes = [tuple(info.params[n].shape) for n in self.names]
        self.slices, start = [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            self.slices.append(slice(start, start + size))
            start += size
        self.size = start
        self.compiled: CompiledValueAndGrad | None = None
        self.calls = 0
        self.why_not_compiled = "jit_compile=False" if not jit_compile else None
        self._constrain_names: list[str] | None = None
        self._constrain_replay: CompiledForward | None = None
        self.constrain_calls = 0
        if jit_compile:
            self._compile()

    def pack(self, values: dict[str, Any]) -> np.ndarray:
        out = np.empty(self.size)
        for name, sl in zip(self.names, self.slices):
            v = values[name]
            out[sl] = np.ravel(v.numpy() if isinstance(v, Tensor) else v)
        return out

    def unpack(self, z: np.ndarray) -> dict[str, Tensor]:
        return {name: to_tensor(z[sl].reshape(shape)) for name, sl, shape in zip(self.names, self.slices, self.shapes)}

    def _sites(self, z: Tensor) -> dict[str, Tensor]:
        """The site values in the flat Tensor z, as ops of the graph (for a trace)."""
        return {name: z[sl].reshape(shape) for name, sl, shape in zip(self.names, self.slices, self.shapes)}

    def _flat_potential(self, z: Tensor) -> Tensor:
        return self.info.potential_fn(self._sites(z))

    def _compile(self) -> None:
        z0 = self.pack(self.info.params)
        try:
            with _quiet_trace():
                compiled = compile_value_and_grad(self._flat_potential, z0)
        except NotCompilable as e:
            self.why_not_compiled = str(e)
            return
        except LinAlgError:
            self.why_not_compiled = "the trace failed to factor a matrix"
            return
        self.compiled, self._replay_fn = compiled, compiled.compiled.fn
        rng = np.random.default_rng(0)
        points = [z0, z0 + 0.1 * rng.standard_normal(self.size), z0 + rng.standard_normal(self.size)]
        if not agrees_with(self._replay, self.eager, points, self._rtol()):
            self.compiled = None
            self.why_not_compiled = "the replayed potential disagreed with the model's at a test point"

    def _rtol(self) -> float:
        """How far the replay may be from the model (:func:`replay_tolerance` of the model's float type)."""
        return replay_tolerance(np.result_type(self.info.potential_energy.data))

    def _replay(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """U(z) and ∇U(z) by the compiled replay (a failed factorization: no density there)."""
        with np.errstate(all="ignore"):
            return self._replay_unguarded(np.asarray(z, dtype=np.float64))

    def _replay_unguarded(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            value, (grad,) = self._replay_fn(z)
        except LinAlgError:
            return math.inf, np.zeros(self.size)
        return float(value), grad

    def eager(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """U(z) and ∇U(z) by running the model."""
        # argument checks ran when the model was initialized; along a trajectory they would only cost time, or
        # raise where a parameter underflows (e.g. a scale exp(u) = 0), which must instead be a divergence
        validating = is_validation_enabled()
        enable_validation(False)
        try:
            with np.errstate(all="ignore"):  # an overflow along a trajectory is a divergence, reported as such
                energy, grad = self.info.value_and_grad_fn(self.unpack(z))
        except LinAlgError:  # e.g. a covariance that stopped being positive definite: no density there
            return math.inf, np.zeros(self.size)
        finally:
            enable_validation(validating)
        return float(energy.item()), self.pack(grad)

    def __call__(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            return self.unguarded(np.asarray(z, dtype=np.float64))

    def unguarded(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """``self(z)`` for a caller that passes a flat float64 array and has silenced NumPy's floating-point
        warnings itself (HMC and NUTS do, once per transition rather than once per step)."""
        if self.compiled is None:
            return self.eager(z)
        self.calls += 1
        if self.calls % self.CHECK_EVERY == 0 and not agrees_with(self._replay, self.eager, [z], self._rtol()):
            _warn_disagreed("potential", "Draws made", "evaluations")
            self.compiled = None
            self.why_not_compiled = "disagreed with the model during sampling"
            return self.eager(z)
        return self._replay_unguarded(z)

    def constrain(self, z: np.ndarray) -> dict[str, np.ndarray]:
        """The constrained latent values and the deterministic sites at z. When the potential is compiled,
        this is compiled too (on the first call: a trace of the model's postprocessing, replayed for every
        draw after it agrees with the model's at z and a perturbed point), else the model runs per call."""
        if self.compiled is not None and self._constrain_names is None:
            self._compile_constrain(np.asarray(z, dtype=np.float64))
        if self._constrain_replay is None:
            return self._constrain_eager(z)
        with np.errstate(all="ignore"):
            values = self._constrain_replay(np.asarray(z, dtype=np.float64))
        out = {name: np.array(v) for name, v in zip(self._constrain_names, values)}
        self.constrain_calls += 1
        if self.constrain_calls % self.CHECK_EVERY == 0 and not _same_values(out, self._constrain_eager(z)):
            _warn_disagreed("postprocessing of draws", "Draws postprocessed", "draws")
            self._constrain_replay = None
            return self._constrain_eager(z)
        return out

    def _constrain_eager(self, z: np.ndarray) -> dict[str, np.ndarray]:
        with no_grad():
            return {k: v.numpy() for k, v in self.info.postprocess_fn(self.unpack(z)).items()}

    def _compile_constrain(self, z: np.ndarray) -> None:
        names: list[str] = []
        self._constrain_names = names  # tried once, whatever comes of it
        x = Tensor(z.copy(), requires_grad=True)

        def constrained() -> list[Tensor]:
            out = self.info.postprocess_fn(self._sites(x))
            names.extend(out)
            return list(out.values())

        try:
            with _quiet_trace():
                replay = compile_forward(constrained, [x])
        except (NotCompilable, LinAlgError):
            return
        rng = np.random.default_rng(1)
        for point in (z, z + 0.1 * rng.standard_normal(z.size)):
            with np.errstate(all="ignore"):
                got = dict(zip(names, replay(point)))
            if not _same_values(got, self._constrain_eager(point)):
                return
        self._constrain_replay = replay


@contextmanager
def _quiet_trace():
    """While a model is traced for compilation: no argument checks (they only read values) and no floating-point
    warnings (the trace point may overflow somewhere; the agreement check judges the result)."""
    validating = is_validation_enabled()
    enable_validation(False)
    try:
        with np.errstate(all="ignore"):
            yield
    finally:
        enable_validation(validating)


def _warn_disagreed(what: str, since: str, unit: str, instead: str = "the uncompiled model") -> None:
    warnings.warn(f"NUTS/HMC: the compiled {what} disagreed with the model's (the model's graph depends on its "
                  f"values); switching to {instead}. {since} since the previous check (at most "
                  f"{FlatModel.CHECK_EVERY} {unit} ago) may be affected: rerun with jit_compile=False.",
                  RuntimeWarning, stacklevel=3)


def _same_values(got: dict[str, Any], want: dict[str, np.ndarray]) -> bool:
    """Whether two dicts of arrays have the same names in the same order and equal values (NaN equal to NaN)."""
    return list(got) == list(want) and all(np.array_equal(np.asarray(g), w, equal_nan=True)
                                           for g, w in zip(got.values(), want.values()))


class FlatPotential:
    """A user's ``potential_fn(z: Tensor) -> scalar Tensor`` on a flat vector, with its gradient by the engine."""

    __slots__ = ("fn", "_vg", "size")

    def __init__(self, fn: Callable[[Tensor], Tensor], size: int) -> None:
        self.fn, self._vg, self.size = fn, value_and_grad(fn), size

    def __call__(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            with np.errstate(all="ignore"):
                energy, grad = self._vg(to_tensor(z))
        except LinAlgError:
            return math.inf, np.zeros(self.size)
        return float(energy.item()), np.asarray(grad.numpy(), dtype=np.float64).reshape(-1)

    unguarded = __call__

    def constrain(self, z: np.ndarray) -> dict[str, np.ndarray]:
        return {"z": z}


# ---------------------------------------------------------------------------- the kernels
def _check_positive(owner: str, name: str, value: Any, integer: bool = False) -> None:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0 or not math.isfinite(value):
        what = "a positive int" if integer else "a positive number"
        raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")


class HMC:
    """Hamiltonian Monte Carlo with a fixed trajectory: ``num_steps`` leapfrog steps (or trajectory_length /
    step_size of them), then a Metropolis accept/reject on the energy error (Neal 2011).

    Args:
        model: a model function (its latent sites must be continuous), or None with ``potential_fn``.
        potential_fn: ``z -> U(z)`` on a flat Tensor (the negative log density up to a constant), for a
            hand-written target; then ``MCMC.run(init_params=...)`` gives the start.
        step_size: the initial step size (searched and adapted during warmup when ``adapt_step_size``).
        trajectory_length: the integration time ε·L; default 2π when ``num_steps`` is None.
        num_steps: a fixed number of leapfrog steps (overrides ``trajectory_length``).
        adapt_step_size, adapt_mass_matrix: warmup adaptation (see the module docstring).
        dense_mass: adapt a dense mass matrix (else diagonal).
        target_accept_prob: the dual-averaging target δ.
        init_strategy: how initial values are chosen (:mod:`probdl.infer.initialization`).
        jit_compile: compile the model's potential by trace and replay (see :class:`FlatModel`); it is used only
            where it provably agrees with the model, so turning it off is for models whose Python branches on
            the values of latent variables in ways the checks cannot see.
    """

    def __init__(self, model: Callable | None = None, potential_fn: Callable | None = None, step_size: float = 1.0,
                 trajectory_length: float | None = None, num_steps: int | None = None, adapt_step_size: bool = True,
                 adapt_mass_matrix: bool = True, dense_mass: bool = False, target_accept_prob: float = 0.8,
                 init_strategy: Callable = init_to_uniform, jit_compile: bool = True) -> None:
        name = type(self).__name__
        if (model is None) == (potential_fn is None):
            raise ValueError(f"{name}: give exactly one of model and potential_fn")
        for fn, what in ((model, "model"), (potential_fn, "potential_fn"), (init_strategy, "init_strategy")):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name}: {what} must be callable, got {type(fn).__name__}")
        _check_positive(name, "step_size", step_size)
        if trajectory_length is not None:
            _check_positive(name, "trajectory_length", trajectory_length)
        if num_steps is not None:
            _check_positive(name, "num_steps", num_steps, integer=True)
        if not (isinstance(target_accept_prob, (int, float)) and 0 < target_accept_prob < 1):
            raise ValueError(f"{name}: target_accept_prob must be in (0, 1), got {target_accept_prob!r}")
        self.model, self.potential_fn = model, potential_fn
        self.step_size = float(step_size)
        self.trajectory_length = 2 * math.pi if trajectory_length is None and num_steps is None else trajectory_length
        self.num_steps = num_steps
        self.adapt_step_size, self.adapt_mass_matrix = bool(adapt_step_size), bool(adapt_mass_matrix)
        self.dense_mass = bool(dense_mass)
        self.target_accept_prob = float(target_accept_prob)
        self.init_strategy = init_strategy
        self.jit_compile = bool(jit_compile)
        self.potential: FlatModel | FlatPotential | None = None

    # ------------------------------------------------------------------ set-up
    def init(self, rng: Any, num_warmup: int, init_params: Any = None, model_args: tuple = (),
             model_kwargs: dict | None = None, inverse_mass_matrix: np.ndarray | None = None) -> HMCState:
        """The chain's starting state: initial values (by the init strategy, or ``init_params``: constrained
        values by site for a model, a flat array for a potential_fn), the initial step size search, and the
        warmup's adaptation state."""
        gen = as_generator(rng)
        z = self._setup_potential(gen, init_params, model_args, model_kwargs or {})
        u, grad = self.potential(z)
        if not (math.isfinite(u) and np.all(np.isfinite(grad))):
            raise ValueError(f"{type(self).__name__}: the potential energy or its gradient is not finite at the "
                             f"initial parameters (U = {u})")
        size = z.size
        if inverse_mass_matrix is None:
            inverse_mass_matrix = np.eye(size) if self.dense_mass else np.ones(size)
        metric = Metric(inverse_mass_matrix)
        step_size = self.step_size
        if self.adapt_step_size and num_warmup > 0:
            step_size = find_reasonable_step_size(self.potential, metric, z, u, grad, step_size, gen)
        adapt = None
        if num_warmup > 0 and (self.adapt_step_size or self.adapt_mass_matrix):
            adapt = _Adaptation(num_warmup, size, step_size, self.target_accept_prob, self.adapt_step_size,
                                self.adapt_mass_matrix, self.dense_mass)
        return HMCState(-1, z, u, grad, u, 0, 0, 0.0, False, step_size, metric.inverse_mass_matrix, adapt, gen)

    def _setup_potential(self, gen: np.random.Generator, init_params: Any, model_args: tuple,
                         model_kwargs: dict) -> np.ndarray:
        name = type(self).__name__
        if self.potential_fn is not None:
            if init_params is None:
                raise ValueError(f"{name}: with a potential_fn, MCMC.run needs init_params (a flat array)")
            z = np.asarray(init_params.numpy() if isinstance(init_params, Tensor) else init_params, dtype=np.float64)
            if z.ndim != 1 or not np.all(np.isfinite(z)):
                raise ValueError(f"{name}: init_params for a potential_fn must be a finite 1-D array, got shape "
                                 f"{z.shape}")
            self.potential = FlatPotential(self.potential_fn, z.size)
            return z.copy()
        strategy = self.init_strategy
        if init_params is not None:
            if not isinstance(init_params, dict):
                raise TypeError(f"{name}: init_params for a model must be a dict of site name -> constrained value, "
                                f"got {type(init_params).__name__}")
            strategy = init_to_value(values=init_params)
        info = initialize_model(self.model, model_args, model_kwargs, init_strategy=strategy, rng=gen)
        self.potential = FlatModel(info, self.jit_compile)
        return self.potential.pack(info.params)

    def resume(self, state: HMCState, model_args: tuple = (), model_kwargs: dict | None = None) -> HMCState:
        """Continue from ``state`` (a chain's ``MCMC.last_state``) without warmup: the potential is rebuilt for
        ``model_args`` and evaluated at the state's position, whose step size, mass matrix and generator are
        kept (so a continued chain draws what one longer run would have)."""
        if not isinstance(state, HMCState):
            raise TypeError(f"{type(self).__name__}: expected an HMCState to resume from, got {type(state).__name__}")
        init = state.z if self.potential_fn is not None else None
        self._setup_potential(np.random.default_rng(0), init, model_args, model_kwargs or {})
        if self.potential.size != state.z.size:
            raise ValueError(f"{type(self).__name__}: the state to resume has {state.z.size} unconstrained "
                             f"dimensions, the model now has {self.potential.size}")
        u, grad = self.potential(state.z)
        return state._replace(i=-1, potential_energy=u, grad=grad, adapt=None)

    def postprocess(self, z: np.ndarray) -> dict[str, np.ndarray]:
        """The constrained latent and deterministic values at a flat unconstrained position."""
        return self.potential.constrain(z)

    # ------------------------------------------------------------------ one iteration
    def sample(self, state: HMCState) -> HMCState:
        """One transition from ``state``, then the warmup's adaptation when ``state.adapt`` is set."""
        metric = Metric(state.inverse_mass_matrix)
        with np.errstate(all="ignore"):  # a diverging trajectory overflows: it is reported as a divergence
            new = self._transition(state, metric)
        if state.adapt is not None:
            new = self._adapt(new, metric)
        return new

    def _transition(self, state: HMCState, metric: Metric) -> HMCState:
        rng, eps = state.rng, state.step_size
        steps = self.num_steps or max(1, int(math.ceil(self.trajectory_length / eps)))
        start = IntegratorState(state.z, metric.sample_momentum(rng), state.potential_energy, state.grad)
        h0 = start.potential_energy + metric.kinetic(start.r)
        point, diverging = start, False
        for _ in range(steps):
            point = leapfrog_unguarded(self.potential.unguarded, metric, point, eps)
            if not math.isfinite(point.potential_energy):
                diverging = True
                break
        h = point.potential_energy + metric.kinetic(point.r) if not diverging else math.inf
        h = h if math.isfinite(h) else math.inf
        diverging = diverging or h - h0 > MAX_ENERGY_ERROR
        accept_prob = 0.0 if diverging else min(1.0, math.exp(h0 - h))
        if rng.random() < accept_prob:
            return state._replace(i=state.i + 1, z=point.z, potential_energy=point.potential_energy, grad=point.grad,
                                  energy=h, num_steps=steps, accept_prob=accept_prob, diverging=diverging)
        return state._replace(i=state.i + 1, energy=h0, num_steps=steps, accept_prob=accept_prob, diverging=diverging)

    def _adapt(self, state: HMCState, metric: Metric) -> HMCState:
        """Stan's warmup after iteration ``state.i``: dual averaging, Welford in slow windows, and at a window's
        end a new mass matrix, a fresh step size search and a restarted dual averaging."""
        ad: _Adaptation = state.adapt
        i, step_size, inv_mass = state.i, state.step_size, state.inverse_mass_matrix
        if ad.adapt_step_size:
            step_size = ad.dual_averaging.update(state.accept_prob)
        window = ad.window_of(i)
        if window is not None:
            ad.welford.update(state.z)
            if i == window[1] - 1:
                inv_mass = ad.welford.covariance()
                ad.welford.reset(state.z.size)
                if ad.adapt_step_size:
                    step_size = find_reasonable_step_size(self.potential, Metric(inv_mass), state.z,
                                                          state.potential_energy, state.grad, step_size, state.rng)
                    ad.dual_averaging.restart(step_size)
        if i == ad.num_warmup - 1:  # the end of warmup: the averaged step size from now on
            if ad.adapt_step_size:
                step_size = ad.dual_averaging.final_step_size
            return state._replace(step_size=step_size, inverse_mass_matrix=inv_mass, adapt=None)
        return state._replace(step_size=step_size, inverse_mass_matrix=inv_mass)

    def copy(self) -> HMC:
        """An independent kernel with the same settings (one per chain)."""
        out = copy.copy(self)
        out.potential = None
        return out


# ---------------------------------------------------------------------------- NUTS
class _Tree(NamedTuple):
    """A subtree built in one direction: ``first`` is its end next to where it started, ``last`` its far end."""

    first: IntegratorState
    last: IntegratorState
    proposal: IntegratorState
    proposal_energy: float
    log_weight: float      # log Σ e^{-(H - H0)} over its points
    rho: np.ndarray        # Σ r over its points
    num_steps: int
    sum_accept: float      # Σ min(1, e^{-(H - H0)})
    valid: bool            # no U-turn and no divergence inside
    diverging: bool


def _no_u_turn(rho: np.ndarray, v_a: np.ndarray, v_b: np.ndarray) -> bool:
    """Betancourt's generalized criterion: the trajectory with momentum sum ρ and end velocities v_a = M⁻¹r_a,
    v_b = M⁻¹r_b keeps going while ρ·v_a > 0 and ρ·v_b > 0."""
    return float(rho.dot(v_a)) > 0.0 and float(rho.dot(v_b)) > 0.0  # ndarray.dot: half the call cost of @


def _log_add_exp(a: float, b: float) -> float:
    """log(e^a + e^b) on floats (np.logaddexp costs a ufunc call on scalars)."""
    if a < b:
        a, b = b, a
    if b == -math.inf or a == math.inf:
        return a
    return a + math.log1p(math.exp(b - a))


class NUTS(HMC):
    """The No-U-Turn Sampler: HMC whose trajectory length is chosen per iteration (see the module docstring).

    Arguments as :class:`HMC` (``trajectory_length`` and ``num_steps`` are not used), plus ``max_tree_depth``:
    at most 2^max_tree_depth - 1 leapfrog steps per iteration (10, as in Stan and NumPyro).
    """

    def __init__(self, model: Callable | None = None, potential_fn: Callable | None = None, step_size: float = 1.0,
                 adapt_step_size: bool = True, adapt_mass_matrix: bool = True, dense_mass: bool = False,
                 target_accept_prob: float = 0.8, max_tree_depth: int = 10, init_strategy: Callable = init_to_uniform,
                 trajectory_length: float | None = None, num_steps: int | None = None,
                 jit_compile: bool = True) -> None:
        super().__init__(model, potential_fn, step_size, None, 1, adapt_step_size, adapt_mass_matrix, dense_mass,
                         target_accept_prob, init_strategy, jit_compile)
        _check_positive("NUTS", "max_tree_depth", max_tree_depth, integer=True)
        self.max_tree_depth = int(max_tree_depth)
        self.num_steps = None

    def _leaf(self, metric: Metric, point: IntegratorState, eps: float, h0: float) -> _Tree:
        new = leapfrog_unguarded(self.potential.unguarded, metric, point, eps)
        h = new.potential_energy + 0.5 * float(new.r.dot(new.velocity))
        if not math.isfinite(h):
            h = math.inf
        delta = h - h0
        diverging = delta > MAX_ENERGY_ERROR
        accept = 1.0 if delta <= 0 else math.exp(-delta)
        return _Tree(new, new, new, h, -delta, new.r, 1, accept, not diverging, diverging)

    def _build(self, metric: Metric, point: IntegratorState, depth: int, eps: float, h0: float,
               rng: np.random.Generator) -> _Tree:
        """A subtree of 2^depth leapfrog steps of size ``eps`` (negative: backwards) starting after ``point``."""
        if depth == 0:
            return self._leaf(metric, point, eps, h0)
        inner = self._build(metric, point, depth - 1, eps, h0, rng)
        if not inner.valid:
            return inner
        outer = self._build(metric, inner.last, depth - 1, eps, h0, rng)
        num_steps, sum_accept = inner.num_steps + outer.num_steps, inner.sum_accept + outer.sum_accept
        if not outer.valid:
            return outer._replace(num_steps=num_steps, sum_accept=sum_accept)
        log_weight = _log_add_exp(inner.log_weight, outer.log_weight)
        # uniform progressive sampling: the outer half's proposal with probability w_outer / (w_inner + w_outer)
        take_outer = rng.random() < math.exp(outer.log_weight - log_weight)
        proposal, proposal_energy = ((outer.proposal, outer.proposal_energy) if take_outer
                                     else (inner.proposal, inner.proposal_energy))
        rho = inner.rho + outer.rho
        valid = (_no_u_turn(rho, inner.first.velocity, outer.last.velocity)
                 and _no_u_turn(inner.rho + outer.first.r, inner.first.velocity, outer.first.velocity)
                 and _no_u_turn(outer.rho + inner.last.r, inner.last.velocity, outer.last.velocity))
        return _Tree(inner.first, outer.last, proposal, proposal_energy, log_weight, rho, num_steps, sum_accept,
                     valid, False)

    def _transition(self, state: HMCState, metric: Metric) -> HMCState:
        rng, eps = state.rng, state.step_size
        r0 = metric.sample_momentum(rng)
        start = IntegratorState(state.z, r0, state.potential_energy, state.grad, metric.velocity(r0))
        h0 = start.potential_energy + 0.5 * float(r0.dot(start.velocity))
        left = right = start
        proposal, proposal_energy = start, h0
        log_weight, rho = 0.0, start.r
        depth = num_steps = 0
        sum_accept, diverging = 0.0, False
        while depth < self.max_tree_depth:
            forward = rng.random() > 0.5
            sub = self._build(metric, right if forward else left, depth, eps if forward else -eps, h0, rng)
            num_steps += sub.num_steps
            sum_accept += sub.sum_accept
            if not sub.valid:
                diverging = sub.diverging
                break
            depth += 1
            # biased progressive sampling: a heavier new subtree always wins
            if sub.log_weight > log_weight or rng.random() < math.exp(sub.log_weight - log_weight):
                proposal, proposal_energy = sub.proposal, sub.proposal_energy
            log_weight = _log_add_exp(log_weight, sub.log_weight)
            old_rho, rho = rho, rho + sub.rho
            if forward:
                keep = (_no_u_turn(rho, left.velocity, sub.last.velocity)
                        and _no_u_turn(old_rho + sub.first.r, left.velocity, sub.first.velocity)
                        and _no_u_turn(sub.rho + right.r, right.velocity, sub.last.velocity))
                right = sub.last
            else:
                keep = (_no_u_turn(rho, sub.last.velocity, right.velocity)
                        and _no_u_turn(sub.rho + left.r, sub.last.velocity, left.velocity)
                        and _no_u_turn(old_rho + sub.first.r, sub.first.velocity, right.velocity))
                left = sub.last
            if not keep:
                break
        return state._replace(i=state.i + 1, z=proposal.z, potential_energy=proposal.potential_energy,
                              grad=proposal.grad, energy=proposal_energy, num_steps=num_steps, tree_depth=depth,
                              accept_prob=sum_accept / max(num_steps, 1), diverging=diverging)
