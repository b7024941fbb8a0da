"""The MCMC driver: runs a kernel (HMC, NUTS) for several chains, sequentially or in parallel processes, keeps
the draws and the sampler statistics, and hands them to the diagnostics and to ArviZ.

Each chain draws from its own generator, spawned from ``seed`` by ``numpy.random.SeedSequence``; a chain's
result depends only on its generator, so ``chain_method="parallel"`` (one process per chain, standard library
``multiprocessing`` with the fork start method) gives exactly the draws of ``"sequential"`` with the same seed.

``chain_method="vectorized"`` (NUTS only) advances the chains together as batches
(:mod:`probdl.infer.batched_nuts`): one batched replay of the potential per leapfrog step for all the chains of
a batch, so that Python's cost per step is paid once per batch instead of once per chain. The chains are split
into one batch per CPU core (at most), each batch in its own process as with "parallel" (in this process when
there is one batch or no fork). Its draws follow the same distribution as "sequential"'s but are not the same
numbers: the batched tree picks its proposals with other random numbers. They depend only on the seed and on
how the chains are split (which can change the last bits of a batched product).
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

import numpy as np

from .batched_nuts import BatchedNUTS, batch_potential
from .hmc import HMC, NUTS, HMCState

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


class _ChainRecord:
    """What a chain keeps while it runs: the kept draws and statistics, and its progress counters."""

    __slots__ = ("chain", "report", "warmup", "total", "thinning", "z", "fields", "row", "divergences",
                 "accept_sum", "accept_n", "last_report")

    def __init__(self, mcmc: MCMC, chain: int, size: int, report: Any) -> None:
        self.chain, self.report = chain, report
        self.warmup, self.total, self.thinning = mcmc._warmup_iterations, mcmc._total_iterations, mcmc.thinning
        kept = len(range(self.warmup, self.total, self.thinning))
        self.z = np.empty((kept, size))
        self.fields = {name: np.empty(kept, dtype=bool if name == "diverging" else
                                      (np.int64 if name in ("num_steps", "tree_depth") else np.float64))
                       for name in mcmc._extra_fields}
        self.row, self.divergences, self.accept_sum, self.accept_n, self.last_report = 0, 0, 0.0, 0, 0.0

    def add(self, i: int, state: HMCState) -> None:
        """The state after iteration ``i`` (0-based)."""
        self.divergences += bool(state.diverging)
        self.accept_sum, self.accept_n = self.accept_sum + state.accept_prob, self.accept_n + 1
        if i >= self.warmup and (i - self.warmup) % self.thinning == 0:
            self.z[self.row] = state.z
            for name, values in self.fields.items():
                values[self.row] = getattr(state, name)
            self.row += 1
        now = time.perf_counter()
        if now - self.last_report > _PROGRESS_EVERY or i + 1 == self.total:
            self.report(self.chain, i, state.step_size, self.accept_sum / self.accept_n, self.divergences)
            self.last_report = now
        if i + 1 == self.warmup:
            self.accept_sum, self.accept_n = 0.0, 0

    def result(self, kernel: HMC, state: HMCState) -> _ChainResult:
        samples = _stack([kernel.postprocess(zi) for zi in self.z])
        return _ChainResult(self.z, self.fields, state._replace(i=-1), samples,
                            list(getattr(kernel.potential, "names", [])))


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
        chain_method: "sequential" (one after the other in this process), "parallel" (one process per chain,
            at most ``os.cpu_count()`` at a time) or "vectorized" (NUTS only: the chains advance together, in
            one batch per core; see the module docstring).
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
        if chain_method not in ("sequential", "parallel", "vectorized"):
            raise ValueError(f"MCMC: chain_method must be 'sequential', 'parallel' or 'vectorized', got "
                             f"{chain_method!r}")
        if chain_method == "vectorized" and not isinstance(kernel, NUTS):
            raise ValueError(f"MCMC: chain_method='vectorized' runs NUTS kernels, got {type(kernel).__name__}; "
                             "use 'sequential' or 'parallel'")
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
        cores = min(self.num_chains, os.cpu_count() or 1)
        if self.chain_method == "parallel" and self.num_chains > 1:
            self._results = self._run_parallel(seeds, inits)
        elif self.chain_method == "vectorized" and cores > 1 and _can_fork():
            batches = [[int(c) for c in b] for b in np.array_split(np.arange(self.num_chains), cores)]
            self._results = self._run_parallel(seeds, inits, batches)
        elif self.chain_method == "vectorized":
            progress = _Progress(self.progress_bar, self.num_chains, self._total_iterations, self._warmup_iterations)
            try:
                self._results = self._run_batch(list(range(self.num_chains)), seeds, inits, progress.update)
            finally:
                progress.close()
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

    def _start(self, chain: int, seed: np.random.SeedSequence, init: Any) -> tuple[HMC, HMCState]:
        """A kernel of its own for a chain, and the chain's first state (after warmup's start, or resumed)."""
        kernel = self.kernel.copy()
        if self.post_warmup_state is not None:
            return kernel, kernel.resume(self.post_warmup_state[chain], self.model_args, self.model_kwargs)
        return kernel, kernel.init(np.random.default_rng(seed), self.num_warmup, init, self.model_args,
                                   self.model_kwargs)

    def _run_chain(self, chain: int, seed: np.random.SeedSequence, init: Any, report: Any) -> _ChainResult:
        kernel, state = self._start(chain, seed, init)
        record = _ChainRecord(self, chain, state.z.size, report)
        for i in range(self._total_iterations):
            state = kernel.sample(state)
            record.add(i, state)
        return record.result(kernel, state)

    def _run_batch(self, chains: list[int], seeds: list[np.random.SeedSequence], inits: list[Any],
                   report: Any) -> list[_ChainResult]:
        """The chains advanced together by :class:`~probdl.infer.batched_nuts.BatchedNUTS` in this process."""
        started = [self._start(c, seeds[c], inits[c]) for c in chains]
        kernels, states = [k for k, _ in started], [s for _, s in started]
        records = [_ChainRecord(self, c, states[0].z.size, report) for c in chains]
        total = self._total_iterations

        def on_transition(k: int, state: HMCState) -> HMCState | None:
            records[k].add(state.i, state)
            return state if state.i + 1 < total else None

        batch = BatchedNUTS(kernels, batch_potential(kernels[0].potential, len(chains)), states, on_transition)
        batch.run()
        return [r.result(k, s) for r, k, s in zip(records, kernels, batch.final_states)]

    def _run_parallel(self, seeds: list[np.random.SeedSequence], inits: list[Any],
                      batches: list[list[int]] | None = None) -> list[_ChainResult]:
        """One process per chain, or per batch of chains when ``batches`` is given (fork: the model and data are
        inherited, nothing needs pickling but the results); the children report progress through a queue that
        this process displays."""
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
            if batches is None:
                worker, tasks = _parallel_chain, [(c, seeds[c], inits[c]) for c in range(self.num_chains)]
            else:
                worker, tasks = _parallel_batch, [(b, seeds, inits) for b in batches]
            with ctx.Pool(min(len(tasks), os.cpu_count() or 1)) as pool:
                pending = pool.starmap_async(worker, tasks)
                while not pending.ready():
                    _drain(queue, progress)
                    pending.wait(0.05)
                _drain(queue, progress)
                results = pending.get()
        finally:
            progress.close()
            _PARALLEL = None
        return results if batches is None else [r for batch in results for r in batch]

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


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


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


def _report_to(queue: Any) -> Any:
    def report(*item: Any) -> None:
        queue.put(item)

    return report


def _parallel_chain(chain: int, seed: np.random.SeedSequence, init: Any) -> _ChainResult:
    mcmc, queue = _PARALLEL
    return mcmc._run_chain(chain, seed, init, _report_to(queue))


def _parallel_batch(chains: list[int], seeds: list[np.random.SeedSequence], inits: list[Any]) -> list[_ChainResult]:
    mcmc, queue = _PARALLEL
    return mcmc._run_batch(chains, seeds, inits, _report_to(queue))

