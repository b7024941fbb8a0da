"""The MCMC driver: runs a kernel (HMC, NUTS) for several chains, sequentially or in parallel processes, keeps
the draws and the sampler statistics, and hands them to the diagnostics and to ArviZ.

Each chain draws from its own generator, spawned from ``seed`` by ``numpy.random.SeedSequence``; a chain's
result depends only on its generator, so ``chain_method="parallel"`` (one process per chain, standard library
``multiprocessing`` with the fork start method) gives exactly the draws of ``"sequential"`` with the same seed.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

import numpy as np

from .hmc import HMC, HMCState

__all__ = ["MCMC", "EXTRA_FIELDS"]

EXTRA_FIELDS = ("diverging", "energy", "num_steps", "tree_depth", "accept_prob", "step_size", "potential_energy")
_PROGRESS_EVERY = 0.1  # seconds between progress updates of a chain


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"MCMC: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class _Progress:
    """Per-chain progress: a tqdm bar per chain on a terminal, else a plain line per chain every 10% of its
    iterations (as the Trainer's progress callback does)."""

    def __init__(self, enabled: bool, num_chains: int, total: int, num_warmup: int, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.enabled, self.total, self.num_warmup = enabled, total, num_warmup
        self.live = enabled and getattr(self.out, "isatty", lambda: False)()
        self.bars: list[Any] = []
        self.next_line = [0] * num_chains
        if self.live:
            from tqdm.auto import tqdm  # noqa: PLC0415  (loaded only when a bar is shown)

            self.bars = [tqdm(total=total, desc=f"chain {c + 1}", position=c, file=self.out, leave=True,
                              dynamic_ncols=True) for c in range(num_chains)]

    def update(self, chain: int, i: int, step_size: float, accept: float, divergences: int) -> None:
        """Chain ``chain`` has finished iteration ``i`` (0-based)."""
        if not self.enabled:
            return
        phase = "warmup" if i < self.num_warmup else "sample"
        text = f"{phase}, step size {step_size:.2e}, acc. prob {accept:.2f}, divergences {divergences}"
        if self.live:
            bar = self.bars[chain]
            bar.set_description(f"chain {chain + 1} {phase}", refresh=False)
            bar.set_postfix_str(text.split(", ", 1)[1], refresh=False)
            bar.update(i + 1 - bar.n)
        elif i + 1 >= self.next_line[chain] or i + 1 == self.total:
            print(f"chain {chain + 1}: {i + 1}/{self.total} {text}", file=self.out, flush=True)
            self.next_line[chain] = i + 1 + max(1, self.total // 10)

    def close(self) -> None:
        for bar in self.bars:
            bar.close()


class _ChainResult:
    """What one chain returns: its flat draws, the statistics, its last state and the kernel's postprocess."""

    __slots__ = ("z", "fields", "last_state", "samples", "latent_names")

    def __init__(self, z: np.ndarray, fields: dict[str, np.ndarray], last_state: HMCState,
                 samples: dict[str, np.ndarray], latent_names: list[str]) -> None:
        self.z, self.fields, self.last_state, self.samples = z, fields, last_state, samples
        self.latent_names = latent_names  # the latent sites (the others in samples are deterministic)


class MCMC:
    """Markov chain Monte Carlo with a kernel, as in NumPyro:

        mcmc = MCMC(NUTS(model), num_warmup=1000, num_samples=1000, num_chains=4)
        mcmc.run(x, y, seed=0)
        mcmc.print_summary()
        samples = mcmc.get_samples()           # site -> array (num_chains * num_samples, *site shape)

    Args:
        kernel: an :class:`~probdl.infer.hmc.HMC` or :class:`~probdl.infer.hmc.NUTS` kernel.
        num_warmup: warmup (adaptation) iterations per chain, discarded.
        num_samples: kept iterations per chain (before thinning).
        num_chains: independent chains, each with its own generator spawned from the run's seed.
        chain_method: "sequential" (one after the other in this process) or "parallel" (one process per chain,
            at most ``os.cpu_count()`` at a time).
        thinning: keep every ``thinning``-th draw.
        progress_bar: show per-chain progress (tqdm bars on a terminal, plain lines otherwise).
    """

    def __init__(self, kernel: HMC, num_warmup: int, num_samples: int, num_chains: int = 1,
                 chain_method: str = "sequential", thinning: int = 1, progress_bar: bool = True) -> None:
        if not isinstance(kernel, HMC):
            raise TypeError(f"MCMC: kernel must be an HMC or NUTS kernel, got {type(kernel).__name__}")
        self.kernel = kernel
        self.num_warmup = _check_count("num_warmup", num_warmup, 0)
        self.num_samples = _check_count("num_samples", num_samples, 1)
        self.num_chains = _check_count("num_chains", num_chains, 1)
        self.thinning = _check_count("thinning", thinning, 1)
        if chain_method not in ("sequential", "parallel"):
            raise ValueError(f"MCMC: chain_method must be 'sequential' or 'parallel', got {chain_method!r}")
        self.chain_method = chain_method
        self.progress_bar = bool(progress_bar)
        self.post_warmup_state: list[HMCState] | None = None
        self.model_args: tuple = ()
        self.model_kwargs: dict = {}
        self._results: list[_ChainResult] | None = None
        self._extra_fields: tuple[str, ...] = EXTRA_FIELDS
        self.wall_time: float | None = None

    @property
    def model(self) -> Any:
        """The kernel's model (None for a kernel on a potential_fn)."""
        return self.kernel.model

    # ------------------------------------------------------------------ running
    def run(self, *args: Any, seed: Any = None, init_params: Any = None, extra_fields: Iterable[str] = (),
            **kwargs: Any) -> None:
        """Run every chain on the model's ``(*args, **kwargs)``.

        Args:
            seed: an int (or None: fresh entropy) from which each chain's generator is spawned.
            init_params: initial values: for a model, a dict of constrained values by site (the same for every
                chain) or a list of such dicts, one per chain; for a potential_fn, a flat array or a
                (num_chains, D) array.
            extra_fields: the sampler statistics to keep, among ``EXTRA_FIELDS`` (default: all of them).

        When ``post_warmup_state`` is set (e.g. ``mcmc.post_warmup_state = mcmc.last_state``), each chain
        continues from it without warmup, with its adapted step size and mass matrix.
        """
        fields = tuple(extra_fields) or EXTRA_FIELDS
        unknown = sorted(set(fields) - set(EXTRA_FIELDS))
        if unknown:
            raise ValueError(f"MCMC.run: unknown extra_fields {unknown}; available: {list(EXTRA_FIELDS)}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"MCMC.run: seed must be None or a non-negative int, got {seed!r}")
        if self.post_warmup_state is not None and len(self.post_warmup_state) != self.num_chains:
            raise ValueError(f"MCMC.run: post_warmup_state has {len(self.post_warmup_state)} chains, the MCMC has "
                             f"{self.num_chains}")
        self._extra_fields = fields
        self.model_args, self.model_kwargs = args, kwargs
        inits = self._per_chain_inits(init_params)
        seeds = np.random.SeedSequence(seed).spawn(self.num_chains)
        start = time.perf_counter()
        if self.chain_method == "parallel" and self.num_chains > 1:
            self._results = self._run_parallel(seeds, inits)
        else:
            progress = _Progress(self.progress_bar, self.num_chains, self._total_iterations, self._warmup_iterations)
            try:
                self._results = [self._run_chain(c, seeds[c], inits[c], progress.update)
                                 for c in range(self.num_chains)]
            finally:
                progress.close()
        self.wall_time = time.perf_counter() - start

    @property
    def _warmup_iterations(self) -> int:
        return 0 if self.post_warmup_state is not None else self.num_warmup

    @property
    def _total_iterations(self) -> int:
        return self._warmup_iterations + self.num_samples

    def _per_chain_inits(self, init_params: Any) -> list[Any]:
        if init_params is None:
            return [None] * self.num_chains
        if isinstance(init_params, (list, tuple)):
            if len(init_params) != self.num_chains:
                raise ValueError(f"MCMC.run: init_params is a list of {len(init_params)}, expected one per chain "
                                 f"({self.num_chains})")
            return list(init_params)
        if self.kernel.potential_fn is not None:
            z = np.asarray(init_params, dtype=np.float64)
            if z.ndim == 2:
                if z.shape[0] != self.num_chains:
                    raise ValueError(f"MCMC.run: init_params of shape {z.shape} has {z.shape[0]} rows, expected one "
                                     f"per chain ({self.num_chains})")
                return list(z)
        return [init_params] * self.num_chains

    def _run_chain(self, chain: int, seed: np.random.SeedSequence, init: Any, report: Any) -> _ChainResult:
        kernel = self.kernel.copy()
        if self.post_warmup_state is not None:
            state = kernel.resume(self.post_warmup_state[chain], self.model_args, self.model_kwargs)
        else:
            state = kernel.init(np.random.default_rng(seed), self.num_warmup, init, self.model_args, self.model_kwargs)
        warmup, total = self._warmup_iterations, self._total_iterations
        kept = list(range(warmup, total, self.thinning))
        z = np.empty((len(kept), state.z.size))
        fields = {name: np.empty(len(kept), dtype=bool if name == "diverging" else
                                 (np.int64 if name in ("num_steps", "tree_depth") else np.float64))
                  for name in self._extra_fields}
        divergences, accept_sum, accept_n, last_report = 0, 0.0, 0, 0.0
        row = 0
        for i in range(total):
            state = kernel.sample(state)
            divergences += bool(state.diverging)
            accept_sum, accept_n = accept_sum + state.accept_prob, accept_n + 1
            if i >= warmup and (i - warmup) % self.thinning == 0:
                z[row] = state.z
                for name in fields:
                    fields[name][row] = getattr(state, name)
                row += 1
            now = time.perf_counter()
            if now - last_report > _PROGRESS_EVERY or i + 1 == total:
                report(chain, i, state.step_size, accept_sum / accept_n, divergences)
                last_report = now
            if i + 1 == warmup:
                accept_sum, accept_n = 0.0, 0
        samples = _stack([kernel.postprocess(zi) for zi in z])
        return _ChainResult(z, fields, state._replace(i=-1), samples, list(getattr(kernel.potential, "names", [])))

    def _run_parallel(self, seeds: list[np.random.SeedSequence], inits: list[Any]) -> list[_ChainResult]:
        """One process per chain (fork: the model and data are inherited, nothing needs pickling but the
        results); the children report progress through a queue that this process displays."""
        global _PARALLEL  # noqa: PLW0603  (the fork start method hands the MCMC and queue to the children this way)
        try:
            ctx = multiprocessing.get_context("fork")
        except ValueError as e:
            raise RuntimeError("MCMC: chain_method='parallel' needs the 'fork' start method (Linux, macOS); use "
                               "'sequential'") from e
        queue = ctx.Queue()
        _PARALLEL = (self, queue)
        progress = _Progress(self.progress_bar, self.num_chains, self._total_iterations, self._warmup_iterations)
        try:
            with ctx.Pool(min(self.num_chains, os.cpu_count() or 1)) as pool:
                pending = pool.starmap_async(_parallel_chain, [(c, seeds[c], inits[c])
                                                               for c in range(self.num_chains)])
                while not pending.ready():
                    _drain(queue, progress)
                    pending.wait(0.05)
                _drain(queue, progress)
                return pending.get()
        finally:
            progress.close()
            _PARALLEL = None

    # ------------------------------------------------------------------ results
    def _require_results(self, who: str) -> list[_ChainResult]:
        if self._results is None:
            raise RuntimeError(f"MCMC.{who}: call run() first")
        return self._results

    def get_samples(self, group_by_chain: bool = False) -> dict[str, np.ndarray]:
        """Draws of every latent and deterministic site: ``(num_chains * num_draws, *shape)``, or
        ``(num_chains, num_draws, *shape)`` with ``group_by_chain``."""
        return self._combine([r.samples for r in self._require_results("get_samples")], group_by_chain)

    def get_extra_fields(self, group_by_chain: bool = False) -> dict[str, np.ndarray]:
        """The sampler statistics of every kept iteration (see ``EXTRA_FIELDS``): diverging, energy (H at the
        draw), num_steps (leapfrog steps), tree_depth, accept_prob (mean Metropolis acceptance along the
        trajectory), step_size, potential_energy."""
        return self._combine([r.fields for r in self._require_results("get_extra_fields")], group_by_chain)

    @staticmethod
    def _combine(per_chain: list[dict[str, np.ndarray]], group_by_chain: bool) -> dict[str, np.ndarray]:
        out = {k: np.stack([d[k] for d in per_chain]) for k in per_chain[0]}
        if not group_by_chain:
            out = {k: v.reshape((-1,) + v.shape[2:]) for k, v in out.items()}
        return out

    @property
    def last_state(self) -> list[HMCState]:
        """Each chain's state after its last iteration; ``mcmc.post_warmup_state = mcmc.last_state`` makes the
        next ``run`` continue from there."""
        return [r.last_state for r in self._require_results("last_state")]

    def print_summary(self, prob: float = 0.9, exclude_deterministic: bool = True, file: TextIO | None = None) -> None:
        """Mean, sd, median, the ``prob`` interval, bulk and tail ESS and split R-hat of every scalar parameter
        (from ArviZ), and the number of divergences."""
        from .diagnostics import print_summary  # noqa: PLC0415  (ArviZ is imported lazily)

        samples = self.get_samples(group_by_chain=True)
        latent = self._require_results("print_summary")[0].latent_names
        if exclude_deterministic and latent:
            samples = {k: v for k, v in samples.items() if k in latent}
        divergences = None
        if "diverging" in self._extra_fields:
            divergences = int(self.get_extra_fields()["diverging"].sum())
        print_summary(samples, prob=prob, group_by_chain=True, num_divergences=divergences, file=file)

    def to_arviz(self, **kwargs: Any) -> Any:
        """An ArviZ ``InferenceData`` of this run (see :func:`probdl.infer.inference_data.to_inference_data`)."""
        from .inference_data import to_inference_data  # noqa: PLC0415  (ArviZ is imported lazily)

        return to_inference_data(self, **kwargs)


def _stack(draws: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([np.asarray(d[k]) for d in draws]) for k in draws[0]}


def _drain(queue: Any, progress: _Progress) -> None:
    while True:
        try:
            item = queue.get_nowait()
        except Exception:  # noqa: BLE001  (queue.Empty, from the multiprocessing queue's own module)
            return
        progress.update(*item)


_PARALLEL: tuple[MCMC, Any] | None = None  # (the MCMC, the progress queue), inherited by forked workers


def _parallel_chain(chain: int, seed: np.random.SeedSequence, init: Any) -> _ChainResult:
    mcmc, queue = _PARALLEL

    def report(*item: Any) -> None:
        queue.put(item)

    return mcmc._run_chain(chain, seed, init, report)

