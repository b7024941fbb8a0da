"""The pieces HMC and NUTS are built from, on flat float64 NumPy vectors: the Euclidean kinetic energy and its
mass matrix, the leapfrog integrator, the initial step-size search, dual averaging, Welford covariance
estimates and Stan's windowed warmup schedule.

Notation: z is the position (the unconstrained latent vector), r the momentum, U(z) the potential energy,
M the mass matrix and ``inverse_mass_matrix`` its inverse M⁻¹ (a vector for a diagonal M, a matrix for a
dense one), K(r) = ½ rᵀ M⁻¹ r the kinetic energy and H = U + K the Hamiltonian.

References:
    R. M. Neal, "MCMC using Hamiltonian dynamics", Handbook of MCMC (2011), ch. 5.
    M. D. Hoffman & A. Gelman, "The No-U-Turn Sampler", JMLR 15 (2014), algorithms 4-6 (step-size search
    and dual averaging).
    Stan Reference Manual, "HMC algorithm parameters" (warmup windows, metric regularisation).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.linalg

__all__ = ["Metric", "PotentialFn", "IntegratorState", "leapfrog", "leapfrog_unguarded", "find_reasonable_step_size",
           "DualAveraging", "WelfordCovariance", "warmup_windows", "regularize"]

PotentialFn = Callable[[np.ndarray], tuple[float, np.ndarray]]
"""z -> (U(z), ∇U(z)) on flat float64 vectors."""


class Metric:
    """The Euclidean metric given by the inverse mass matrix M⁻¹ (diagonal: a vector; dense: a matrix).

    ``velocity(r) = M⁻¹ r`` (the p♯ of Betancourt 2017), ``kinetic(r) = ½ rᵀ M⁻¹ r``, and
    ``sample_momentum(rng)`` draws r ~ Normal(0, M): for dense M⁻¹ = L Lᵀ, r = L⁻ᵀ ξ has covariance
    (L Lᵀ)⁻¹ = M, one triangular solve and no inverse.
    """

    __slots__ = ("inverse_mass_matrix", "dense", "_chol", "_sqrt_mass")

    def __init__(self, inverse_mass_matrix: np.ndarray) -> None:
        m = np.asarray(inverse_mass_matrix, dtype=np.float64)
        self.dense = m.ndim == 2
        self.inverse_mass_matrix = m
        if self.dense:
            self._chol = np.linalg.cholesky(m)
            self._sqrt_mass = None
        else:
            self._chol = None
            self._sqrt_mass = 1.0 / np.sqrt(m)

    @property
    def size(self) -> int:
        return self.inverse_mass_matrix.shape[0]

    def velocity(self, r: np.ndarray) -> np.ndarray:
        return self.inverse_mass_matrix @ r if self.dense else self.inverse_mass_matrix * r

    def kinetic(self, r: np.ndarray) -> float:
        with np.errstate(over="ignore", invalid="ignore"):  # inf for a diverging momentum
            return 0.5 * float(r @ self.velocity(r))

    def sample_momentum(self, rng: np.random.Generator) -> np.ndarray:
        xi = rng.standard_normal(self.size)
        if self.dense:
            return scipy.linalg.solve_triangular(self._chol, xi, lower=True, trans="T")
        return self._sqrt_mass * xi


class IntegratorState(NamedTuple):
    """A point of the trajectory: position, momentum, potential energy and its gradient, and (when known) the
    velocity M⁻¹ r, which the kinetic energy and the U-turn criterion both read."""

    z: np.ndarray
    r: np.ndarray
    potential_energy: float
    grad: np.ndarray
    velocity: np.ndarray | None = None


def leapfrog(potential_fn: PotentialFn, metric: Metric, state: IntegratorState, step_size: float) -> IntegratorState:
    """One velocity-Verlet step: r ← r - ε/2 ∇U(z); z ← z + ε M⁻¹ r; r ← r - ε/2 ∇U(z) (Neal 2011, eq. 5.18-5.20).

    A negative ``step_size`` integrates backwards in time. A non-finite potential is returned as it is (the
    caller treats the point as divergent). The new state carries its velocity M⁻¹ r."""
    with np.errstate(over="ignore", invalid="ignore"):
        return leapfrog_unguarded(potential_fn, metric, state, step_size)


def leapfrog_unguarded(potential_fn: PotentialFn, metric: Metric, state: IntegratorState,
                       step_size: float) -> IntegratorState:
    """:func:`leapfrog` for a caller that has already silenced NumPy's overflow warnings (a divergence
    overflows by design): HMC and NUTS, once per transition instead of once per step."""
    half = 0.5 * step_size
    r = state.r - half * state.grad
    z = state.z + step_size * metric.velocity(r)
    u, grad = potential_fn(z)
    r = r - half * grad
    return IntegratorState(z, r, u, grad, metric.velocity(r))


def _energy(state: IntegratorState, metric: Metric) -> float:
    h = state.potential_energy + metric.kinetic(state.r)
    return h if math.isfinite(h) else math.inf


def find_reasonable_step_size(potential_fn: PotentialFn, metric: Metric, z: np.ndarray, potential_energy: float,
                              grad: np.ndarray, step_size: float, rng: np.random.Generator,
                              target: float = 0.8) -> float:
    """Double or halve ``step_size`` until the acceptance probability of one leapfrog step from z, with fresh
    momentum, crosses ``target`` (Hoffman & Gelman 2014, algorithm 4, with Stan's threshold 0.8).

    Raises RuntimeError when the step size grows past 1e7 (an improper, flat posterior) or shrinks to 0."""
    direction = 0
    log_target = math.log(target)
    for _ in range(200):
        r = metric.sample_momentum(rng)
        start = IntegratorState(z, r, potential_energy, grad)
        h0 = _energy(start, metric)
        delta = h0 - _energy(leapfrog(potential_fn, metric, start, step_size), metric)
        if direction == 0:
            direction = 1 if delta > log_target else -1
        elif (direction == 1 and not delta > log_target) or (direction == -1 and not delta < log_target):
            return step_size
        step_size = step_size * 2.0 if direction == 1 else step_size * 0.5
        if step_size > 1e7:
            raise RuntimeError("find_reasonable_step_size: the step size grew past 1e7; the posterior looks "
                               "improper (flat in some direction): check the priors")
        if step_size < 1e-300:
            raise RuntimeError("find_reasonable_step_size: the step size fell to 0; the potential energy or its "
                               "gradient is not finite near the initial point")
    return step_size


class DualAveraging:
    """Nesterov's dual averaging of log ε towards a target acceptance rate δ (Hoffman & Gelman 2014, §3.2.1),
    with Stan's defaults γ = 0.05, t₀ = 10, κ = 0.75 and μ = log(10 ε₀):

        s̄ₜ = (1 - 1/(t + t₀)) s̄ₜ₋₁ + (δ - αₜ)/(t + t₀),   log εₜ = μ - √t s̄ₜ / γ,
        log ε̄ₜ = t^-κ log εₜ + (1 - t^-κ) log ε̄ₜ₋₁.

    ``update(accept_prob)`` returns the next ε; ``final_step_size`` is ε̄ (used after warmup).
    """

    __slots__ = ("target", "gamma", "t0", "kappa", "mu", "count", "s_bar", "log_step", "log_step_bar")

    def __init__(self, step_size: float, target: float = 0.8, gamma: float = 0.05, t0: float = 10.0,
                 kappa: float = 0.75) -> None:
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.restart(step_size)

    def restart(self, step_size: float) -> None:
        self.mu = math.log(10.0 * step_size)
        self.count, self.s_bar, self.log_step, self.log_step_bar = 0, 0.0, math.log(step_size), 0.0

    def update(self, accept_prob: float) -> float:
        accept_prob = min(1.0, accept_prob) if math.isfinite(accept_prob) else 0.0
        self.count += 1
        t = self.count
        eta = 1.0 / (t + self.t0)
        self.s_bar = (1.0 - eta) * self.s_bar + eta * (self.target - accept_prob)
        self.log_step = self.mu - math.sqrt(t) * self.s_bar / self.gamma
        weight = t ** (-self.kappa)
        self.log_step_bar = weight * self.log_step + (1.0 - weight) * self.log_step_bar
        return math.exp(self.log_step)

    @property
    def final_step_size(self) -> float:
        return math.exp(self.log_step_bar)


class WelfordCovariance:
    """Running mean and (co)variance of vectors by Welford's algorithm (numerically stable, one pass)."""

    __slots__ = ("dense", "n", "mean", "m2")

    def __init__(self, size: int, dense: bool) -> None:
        self.dense = dense
        self.reset(size)

    def reset(self, size: int) -> None:
        self.n, self.mean = 0, np.zeros(size)
        self.m2 = np.zeros((size, size)) if self.dense else np.zeros(size)

    def update(self, x: np.ndarray) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean = self.mean + delta / self.n
        self.m2 += np.outer(delta, x - self.mean) if self.dense else delta * (x - self.mean)

    def covariance(self) -> np.ndarray:
        """The sample (co)variance (n - 1 in the denominator), regularized as Stan does (:func:`regularize`)."""
        return regularize(self.m2 / (self.n - 1), self.n)


def regularize(cov: np.ndarray, n: int) -> np.ndarray:
    """Stan's shrinkage of a warmup (co)variance estimate from n draws towards 1e-3·I:
    (n / (n + 5)) Σ + 1e-3 (5 / (n + 5)) I."""
    shrink = 1e-3 * 5.0 / (n + 5.0)
    cov = (n / (n + 5.0)) * cov
    if cov.ndim == 2:
        return cov + shrink * np.eye(cov.shape[0])
    return cov + shrink


def warmup_windows(num_warmup: int, init_buffer: int = 75, term_buffer: int = 50,
                   base_window: int = 25) -> list[tuple[int, int]]:
    """Stan's windowed adaptation schedule: the (start, end) iterations (end exclusive) of the slow windows
    in which the mass matrix is estimated, after an initial fast buffer and before a terminal fast buffer
    where only the step size adapts. Windows double in length; the last one stretches to the terminal
    buffer. With fewer than 20 warmup iterations there is no slow window; when the default buffers do not
    fit, they become 15% / 10% of the warmup, as in Stan."""
    if num_warmup < 20:
        return []
    if init_buffer + base_window + term_buffer > num_warmup:
        init_buffer = int(0.15 * num_warmup)
        term_buffer = int(0.1 * num_warmup)
        base_window = num_warmup - (init_buffer + term_buffer)
    windows = []
    start, size = init_buffer, base_window
    end_slow = num_warmup - term_buffer
    while start < end_slow:
        end = start + size
        if end + 2 * size >= end_slow:  # the next window would not fit: this one runs to the terminal buffer
            end = end_slow
        windows.append((start, end))
        start, size = end, 2 * size
    return windows
