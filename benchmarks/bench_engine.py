"""Benchmarks of the probdl tensor engine against a hand-written NumPy lower bound and PyTorch.

Three measurements, each printed next to its target:

1. Per-op overhead: forward and forward+backward of ``(a * b + c).sum()`` on 10-element
   float64 leaves, in microseconds per iteration (target: no worse than PyTorch).
2. One SGD step of a 64-256-256-10 ReLU MLP (batch 128, softmax cross-entropy) in float64
   and float32, written three ways: probdl on raw tensors, hand-written NumPy forward and
   backward, and PyTorch on raw tensors (target: probdl within 1.3x of NumPy). Before timing,
   probdl's loss and gradients are checked against the NumPy version on the same weights.
3. Memory of the float64 MLP loop, each implementation in a fresh subprocess: resident set
   size after the warm-up steps and at the end (target: no growth), and the peak RSS.

Timings are medians over repeats of a fixed number of iterations, taken after warm-up runs,
with the implementations interleaved within each repeat; the garbage collector stays on (it is
part of the cost a user pays) but runs a full collection before each timed block. PyTorch is
optional: without it the torch columns say "not installed".

Usage::

    PYTHONPATH=. python benchmarks/bench_engine.py            # full run (a few minutes)
    PYTHONPATH=. python benchmarks/bench_engine.py --quick    # smoke run
    PYTHONPATH=. python benchmarks/bench_engine.py --json out.json --threads 1
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    import probdl as pd
except ImportError:  # run from a checkout without PYTHONPATH: use the repository's package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import probdl as pd

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "bench_engine.json"

LAYER_SIZES = (64, 256, 256, 10)
BATCH = 128
LEARNING_RATE = 0.01
PEROP_SIZE = 10

MLP_RATIO_TARGET = 1.3          # probdl step time / hand-written NumPy step time
MEMORY_GROWTH_LIMIT_MIB = 1.0   # RSS growth after warm-up that still counts as "no growth"
MEMORY_WARMUP_STEPS = 100
SETTLE_SECONDS = 0.2            # pause before each timed block (OpenBLAS workers spin ~0.1 s after a call)
MIB = 1024.0 * 1024.0
NOT_INSTALLED = "not installed"


@dataclass(frozen=True)
class Settings:
    """How long each measurement runs."""

    perop_iters: int
    mlp_iters: int
    repeats: int
    warmup_iters: int
    memory_steps: int

    @staticmethod
    def for_mode(quick: bool) -> Settings:
        if quick:
            return Settings(perop_iters=300, mlp_iters=10, repeats=3, warmup_iters=20, memory_steps=1_000)
        return Settings(perop_iters=2_000, mlp_iters=60, repeats=7, warmup_iters=20, memory_steps=10_000)


# --------------------------------------------------------------------------- threads
def _openblas() -> ctypes.CDLL | None:
    """The OpenBLAS library that NumPy loaded (found in /proc/self/maps), or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.rsplit("/", 1)[-1].lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _blas_function(kind: str) -> Callable | None:
    """OpenBLAS's ``get``/``set`` thread-count function under the names NumPy's wheels use."""
    lib = _openblas()
    if lib is None:
        return None
    for name in (f"scipy_openblas_{kind}_num_threads64_", f"openblas_{kind}_num_threads64_",
                 f"openblas_{kind}_num_threads"):
        fn = getattr(lib, name, None)
        if fn is not None:
            return fn
    return None


def numpy_blas_threads() -> int | None:
    """How many threads NumPy's BLAS uses (None when it is not an OpenBLAS we can ask)."""
    get = _blas_function("get")
    return int(get()) if get is not None else None


def set_numpy_blas_threads(n: int) -> bool:
    """Set NumPy's BLAS thread count; False when the BLAS cannot be reached."""
    setter = _blas_function("set")
    if setter is None:
        return False
    setter(ctypes.c_int(n))
    return True


def import_torch() -> Any:
    """PyTorch, or None when it is not installed (imported only in the parent process)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def pin_threads(requested: int | None, torch: Any) -> dict:
    """Give NumPy's BLAS and PyTorch the same intra-op thread count; return what was set."""
    if requested is not None:
        set_numpy_blas_threads(requested)
    blas = numpy_blas_threads()
    n = requested or blas or os.cpu_count() or 1
    info = {"cpu_count": os.cpu_count(), "numpy_blas_threads": blas if blas is not None else "unknown",
            "torch_threads": NOT_INSTALLED, "requested": requested}
    if torch is not None:
        torch.set_num_threads(n)
        info["torch_threads"] = torch.get_num_threads()
    return info


# --------------------------------------------------------------------------- timing
def minor_page_faults() -> int:
    """Minor page faults of this process so far (fresh memory the kernel had to map in)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_interleaved(fns: dict[str, Callable[[], Any]], iters: int, repeats: int,
                     warmup: int) -> dict[str, dict[str, list[float]]]:
    """Seconds and minor page faults per iteration of each function, one figure per repeat.

    Every function is warmed up first; then each repeat times ``iters`` calls of every
    function in turn (the order rotating between repeats), so drift in the machine's
    speed touches all of them alike. Before each timed block the garbage collector runs
    and the process pauses briefly, so that the worker threads of the library timed just
    before (OpenBLAS, OpenMP) stop spinning and do not steal cores from the next one.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    names = list(fns)
    out: dict[str, dict[str, list[float]]] = {name: {"seconds": [], "page_faults": []} for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn = fns[name]
            gc.collect()
            time.sleep(SETTLE_SECONDS)
            faults = minor_page_faults()
            start = time.perf_counter()
            for _ in range(iters):
                fn()
            out[name]["seconds"].append((time.perf_counter() - start) / iters)
            out[name]["page_faults"].append((minor_page_faults() - faults) / iters)
    return out


def summarize(timings: dict[str, list[float]], scale: float) -> dict:
    """Median, min and max of the per-iteration times in the unit given by ``scale`` (1e6: µs),
    and the median number of minor page faults per iteration."""
    per_iter = timings["seconds"]
    return {"median": statistics.median(per_iter) * scale, "min": min(per_iter) * scale,
            "max": max(per_iter) * scale, "repeats": [t * scale for t in per_iter],
            "page_faults": statistics.median(timings["page_faults"])}


# --------------------------------------------------------------------------- 1. per-op overhead
def perop_probdl(rng: np.random.Generator) -> tuple[Callable, Callable]:
    """Forward and forward+backward of (a*b+c).sum() in probdl."""
    a, b, c = (pd.tensor(rng.standard_normal(PEROP_SIZE), requires_grad=True) for _ in range(3))

    def forward():
        return (a * b + c).sum()

    def forward_backward():
        a.grad = b.grad = c.grad = None
        (a * b + c).sum().backward()

    return forward, forward_backward


def perop_numpy(rng: np.random.Generator) -> tuple[Callable, Callable]:
    """The same by hand on NumPy arrays: the floor any engine's overhead sits on."""
    a, b, c = (rng.standard_normal(PEROP_SIZE) for _ in range(3))

    def forward():
        return (a * b + c).sum()

    def forward_backward():
        (a * b + c).sum()
        seed = np.ones_like(a)  # d(sum)/d(a*b+c), then through + and *
        return seed * b, seed * a, seed

    return forward, forward_backward


def perop_torch(torch: Any, rng: np.random.Generator) -> tuple[Callable, Callable]:
    """The same in PyTorch."""
    a, b, c = (torch.tensor(rng.standard_normal(PEROP_SIZE), requires_grad=True) for _ in range(3))

    def forward():
        return (a * b + c).sum()

    def forward_backward():
        a.grad = b.grad = c.grad = None
        (a * b + c).sum().backward()

    return forward, forward_backward


def bench_perop(settings: Settings, torch: Any) -> dict:
    """Microseconds per iteration of forward and forward+backward, per implementation."""
    makers = {"probdl": perop_probdl, "numpy": perop_numpy}
    if torch is not None:
        makers["torch"] = lambda rng: perop_torch(torch, rng)
    pairs = {name: make(np.random.default_rng(0)) for name, make in makers.items()}
    result: dict[str, dict] = {}
    for index, phase in enumerate(("forward", "forward_backward")):
        times = time_interleaved({name: fns[index] for name, fns in pairs.items()},
                                 settings.perop_iters, settings.repeats, settings.warmup_iters * 10)
        result[phase] = {name: summarize(t, 1e6) for name, t in times.items()}
    return result


# --------------------------------------------------------------------------- 2. MLP step
@dataclass
class Problem:
    """Inputs, integer labels and initial weights [W1, b1, W2, b2, W3, b3] of the MLP."""

    x: np.ndarray
    y: np.ndarray
    params: list[np.ndarray]


def make_problem(dtype: np.dtype, seed: int = 0) -> Problem:
    """A random batch and He-scaled weights, all in ``dtype`` (labels int64)."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(LAYER_SIZES[:-1], LAYER_SIZES[1:]):
        params.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(dtype))
        params.append((0.1 * rng.standard_normal(fan_out)).astype(dtype))
    x = rng.standard_normal((BATCH, LAYER_SIZES[0])).astype(dtype)
    y = rng.integers(0, LAYER_SIZES[-1], size=BATCH)
    return Problem(x, y, params)


class ProbdlMLP:
    """The MLP on raw probdl tensors, its gradients from ``backward``."""

    name = "probdl"

    def __init__(self, problem: Problem) -> None:
        self.params = [pd.tensor(p.copy(), requires_grad=True) for p in problem.params]
        self.x = pd.tensor(problem.x)
        self.y = problem.y
        self.rows = np.arange(BATCH)

    def loss(self):
        w1, b1, w2, b2, w3, b3 = self.params
        logits = pd.relu(pd.relu(self.x @ w1 + b1) @ w2 + b2) @ w3 + b3
        return -pd.log_softmax(logits, axis=-1)[self.rows, self.y].mean()

    def loss_and_grads(self) -> tuple[float, list[np.ndarray]]:
        loss = self.loss()
        loss.backward()
        grads = [p.grad.data.copy() for p in self.params]
        for p in self.params:
            p.grad = None
        return float(loss.item()), grads

    def step(self) -> None:
        self.loss().backward()
        for p in self.params:
            p.data -= LEARNING_RATE * p.grad.data
            p.grad = None


class NumpyMLP:
    """The MLP with its backward pass written out by hand: the practical lower bound."""

    name = "numpy"

    def __init__(self, problem: Problem) -> None:
        self.params = [p.copy() for p in problem.params]
        self.x = problem.x
        self.y = problem.y
        self.rows = np.arange(BATCH)

    def loss_and_grads(self) -> tuple[float, list[np.ndarray]]:
        w1, b1, w2, b2, w3, b3 = self.params
        z1 = self.x @ w1 + b1
        h1 = np.maximum(z1, 0)
        z2 = h1 @ w2 + b2
        h2 = np.maximum(z2, 0)
        logits = h2 @ w3 + b3
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        loss = np.log(total[:, 0]).mean() - shifted[self.rows, self.y].mean()

        d3 = e / total  # d loss / d logits = (softmax - one_hot) / batch
        d3[self.rows, self.y] -= 1
        d3 /= BATCH
        d2 = d3 @ w3.T
        d2 *= z2 > 0
        d1 = d2 @ w2.T
        d1 *= z1 > 0
        grads = [self.x.T @ d1, d1.sum(axis=0), h1.T @ d2, d2.sum(axis=0), h2.T @ d3, d3.sum(axis=0)]
        return float(loss), grads

    def step(self) -> None:
        _, grads = self.loss_and_grads()
        for p, g in zip(self.params, grads):
            p -= LEARNING_RATE * g


class TorchMLP:
    """The MLP on raw PyTorch tensors with a manual SGD step under ``torch.no_grad()``."""

    name = "torch"

    def __init__(self, problem: Problem, torch: Any) -> None:
        self.torch = torch
        self.params = [torch.tensor(p, requires_grad=True) for p in problem.params]
        self.x = torch.from_numpy(problem.x)
        self.y = torch.from_numpy(problem.y)
        self.rows = torch.arange(BATCH)

    def loss(self):
        w1, b1, w2, b2, w3, b3 = self.params
        relu = self.torch.relu
        logits = relu(relu(self.x @ w1 + b1) @ w2 + b2) @ w3 + b3
        return -self.torch.log_softmax(logits, dim=-1)[self.rows, self.y].mean()

    def loss_and_grads(self) -> tuple[float, list[np.ndarray]]:
        loss = self.loss()
        loss.backward()
        grads = [p.grad.numpy().copy() for p in self.params]
        for p in self.params:
            p.grad = None
        return float(loss.item()), grads

    def step(self) -> None:
        self.loss().backward()
        with self.torch.no_grad():
            for p in self.params:
                p -= LEARNING_RATE * p.grad
                p.grad = None


def tolerances(dtype: np.dtype) -> dict:
    """np.allclose tolerances: NumPy's defaults in float64, looser in float32 (summation order)."""
    return {} if np.dtype(dtype) == np.float64 else {"rtol": 1e-4, "atol": 1e-6}


def check_gradients(problem: Problem, models: list) -> dict:
    """Assert that every model's loss and gradients match the hand-written NumPy ones."""
    ref_loss, ref_grads = NumpyMLP(problem).loss_and_grads()
    tol = tolerances(problem.x.dtype)
    report = {}
    for model in models:
        loss, grads = model.loss_and_grads()
        ok = np.allclose(loss, ref_loss, **tol) and all(
            g.dtype == r.dtype and np.allclose(g, r, **tol) for g, r in zip(grads, ref_grads))
        worst = max(float(np.max(np.abs(g.astype(np.float64) - r))) for g, r in zip(grads, ref_grads))
        if not ok:  # raised explicitly so that python -O checks too
            raise AssertionError(f"{model.name} disagrees with the hand-written NumPy MLP ({problem.x.dtype}): "
                                 f"loss {loss} vs {ref_loss}, max |grad difference| {worst:.3g}")
        report[model.name] = {"loss": loss, "numpy_loss": ref_loss, "max_abs_grad_diff": worst, "allclose": ok}
    return report


def bench_mlp(settings: Settings, torch: Any, dtype: np.dtype) -> dict:
    """Milliseconds per SGD step for each implementation, after the gradient check."""
    problem = make_problem(dtype)
    models = [ProbdlMLP(problem)] + ([TorchMLP(problem, torch)] if torch is not None else [])
    check = check_gradients(problem, models)
    steps = {m.name: m.step for m in models + [NumpyMLP(problem)]}
    times = time_interleaved(steps, settings.mlp_iters, settings.repeats, settings.warmup_iters)
    return {"check": check, "ms_per_step": {name: summarize(t, 1e3) for name, t in times.items()}}


# --------------------------------------------------------------------------- 3. memory
def current_rss_bytes() -> int:
    """Resident set size now, from /proc/self/statm (Linux); the peak where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss_bytes()


def ru_maxrss_bytes() -> int:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in bytes (it is KiB on Linux, bytes on macOS).

    On Linux this figure survives fork and exec: a child started by a parent that once held
    350 MiB reports at least 350 MiB. :func:`peak_rss_bytes` prefers the per-process figure.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size of this process image: VmHWM from /proc/self/status, else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return ru_maxrss_bytes()


def memory_child(kind: str, steps: int) -> dict:
    """Run the float64 MLP loop in this (fresh) process and report its memory, in MiB."""
    problem = make_problem(np.float64)
    model = ProbdlMLP(problem) if kind == "probdl" else NumpyMLP(problem)
    gc.collect()
    rss_start = current_rss_bytes()
    warmup = min(MEMORY_WARMUP_STEPS, steps)
    for _ in range(warmup):
        model.step()
    gc.collect()
    rss_warm = current_rss_bytes()
    objects_warm = len(gc.get_objects())
    samples = []
    for i in range(warmup, steps):
        model.step()
        if (i + 1) % 100 == 0:
            samples.append(current_rss_bytes() / MIB)
    gc.collect()
    rss_end = current_rss_bytes()
    return {"kind": kind, "steps": steps, "warmup_steps": warmup,
            "rss_start_mib": rss_start / MIB, "rss_after_warmup_mib": rss_warm / MIB, "rss_end_mib": rss_end / MIB,
            "growth_mib": (rss_end - rss_warm) / MIB, "max_sampled_rss_mib": max(samples, default=rss_end / MIB),
            "peak_rss_mib": peak_rss_bytes() / MIB, "peak_above_start_mib": (peak_rss_bytes() - rss_start) / MIB,
            "ru_maxrss_mib": ru_maxrss_bytes() / MIB, "gc_objects_growth": len(gc.get_objects()) - objects_warm}


def run_memory_child(kind: str, steps: int, threads: int | None) -> dict:
    """Start a fresh interpreter on this script for one memory measurement; return its report."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", kind, "--steps", str(steps)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory child {kind} failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_memory(settings: Settings, threads: int | None) -> dict:
    """Memory of the probdl and NumPy loops, each in its own process, so their peaks stay apart."""
    return {kind: run_memory_child(kind, settings.memory_steps, threads) for kind in ("probdl", "numpy")}


# --------------------------------------------------------------------------- report
def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join(["  " + line(headers), "  " + line(["-" * w for w in widths])] + ["  " + line(r) for r in rows])


def median_of(block: dict, name: str) -> float | None:
    return block[name]["median"] if name in block else None


def figure(value: float | None, digits: int = 1) -> str:
    return NOT_INSTALLED if value is None else f"{value:.{digits}f}"


def ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None else num / den


def ratio_text(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def spread_line(blocks: list[dict]) -> str:
    """The worst max/min over repeats of each implementation: how far the machine's noise reached."""
    worst: dict[str, float] = {}
    for block in blocks:
        for name, t in block.items():
            worst[name] = max(worst.get(name, 1.0), t["max"] / t["min"])
    return "  noise (largest max/min over repeats): " + ", ".join(f"{n} {w:.2f}" for n, w in worst.items())


def evaluate_targets(results: dict) -> list[dict]:
    """Each target with its figure and PASS / MISS (n/a when the comparison is missing)."""
    targets = []
    fb = results["perop"]["forward_backward"]
    r = ratio(median_of(fb, "probdl"), median_of(fb, "torch"))
    targets.append({"target": "per-op fwd+bwd no worse than torch", "ok": None if r is None else r <= 1.0,
                    "figure": "torch not installed" if r is None else
                    f"{fb['probdl']['median']:.1f} us vs {fb['torch']['median']:.1f} us ({r:.2f}x)"})
    for dtype, block in results["mlp"].items():
        ms = block["ms_per_step"]
        r = ms["probdl"]["median"] / ms["numpy"]["median"]
        targets.append({"target": f"MLP step ({dtype}) within {MLP_RATIO_TARGET}x of hand-written NumPy",
                        "ok": r <= MLP_RATIO_TARGET, "figure": f"{r:.2f}x"})
    mem = results["memory"]["probdl"]
    targets.append({"target": f"no RSS growth over {mem['steps'] - mem['warmup_steps']} probdl MLP steps "
                              f"(< {MEMORY_GROWTH_LIMIT_MIB:g} MiB)",
                    "ok": abs(mem["growth_mib"]) < MEMORY_GROWTH_LIMIT_MIB, "figure": f"{mem['growth_mib']:+.2f} MiB"})
    return targets


def report(results: dict) -> str:
    """The printed summary of all three measurements and the targets."""
    env, s = results["environment"], results["settings"]
    th = env["threads"]
    how = f"both set by --threads {th['requested']}" if th["requested"] else "torch set to match numpy"
    torch_threads = f"torch intra-op {th['torch_threads']} ({how})" if env["torch"] != NOT_INSTALLED else \
        "torch not installed"
    out = [f"probdl {env['probdl']} engine benchmarks | python {env['python']} | numpy {env['numpy']} | "
           f"torch {env['torch']}",
           f"machine: {env['machine']}, {th['cpu_count']} cores; threads: numpy BLAS {th['numpy_blas_threads']}, "
           f"{torch_threads}",
           f"timing: median of {s['repeats']} repeats x N iterations after warm-up, implementations interleaved"
           f"{' (--quick)' if s['quick'] else ''}; probdl at commit {env['git_commit']}; "
           f"load average {env['load_average_start']} at start, {results['load_average_end']} at end", ""]

    perop = results["perop"]
    out.append(f"1. Per-op overhead: (a*b+c).sum() on {PEROP_SIZE}-element float64 leaves, us per iteration "
               f"(N={s['perop_iters']}; numpy = the same by hand, no autograd)")
    rows = []
    for phase, label in (("forward", "forward"), ("forward_backward", "forward+backward")):
        b = perop[phase]
        p, n, t = median_of(b, "probdl"), median_of(b, "numpy"), median_of(b, "torch")
        rows.append([label, figure(p), figure(n), figure(t), ratio_text(ratio(p, t))])
    out += [table(["", "probdl", "numpy", "torch", "probdl/torch"], rows), spread_line(list(perop.values())), ""]

    out.append(f"2. MLP {'-'.join(map(str, LAYER_SIZES))} ReLU, batch {BATCH}, softmax cross-entropy, one SGD step, "
               f"ms per step (N={s['mlp_iters']})")
    rows = []
    for dtype, block in results["mlp"].items():
        ms = block["ms_per_step"]
        p, n, t = median_of(ms, "probdl"), median_of(ms, "numpy"), median_of(ms, "torch")
        rows.append([dtype, figure(p, 3), figure(n, 3), figure(t, 3), ratio_text(ratio(p, n)), ratio_text(ratio(p, t))])
    out.append(table(["dtype", "probdl", "numpy", "torch", "probdl/numpy", "probdl/torch"], rows))
    checks = ", ".join(f"{dtype}: " + ", ".join(f"{name} max|dgrad| {c['max_abs_grad_diff']:.1e}"
                                                 for name, c in block["check"].items())
                       for dtype, block in results["mlp"].items())
    faults = "; ".join(f"{dtype}: " + ", ".join(f"{n} {t['page_faults']:.0f}" for n, t in b["ms_per_step"].items())
                       for dtype, b in results["mlp"].items())
    out += [spread_line([b["ms_per_step"] for b in results["mlp"].values()]),
            f"  minor page faults per step (freed activations re-mapped by the kernel): {faults}",
            f"  gradient check vs hand-written NumPy (np.allclose, asserted): OK ({checks})", ""]

    mem = results["memory"]
    out.append(f"3. Memory of the float64 MLP loop, {mem['probdl']['steps']} steps, each in a fresh process, MiB "
               f"(growth = end - after {mem['probdl']['warmup_steps']} warm-up steps; peak = VmHWM)")
    rows = [[kind, f"{m['rss_start_mib']:.1f}", f"{m['rss_after_warmup_mib']:.1f}", f"{m['rss_end_mib']:.1f}",
             f"{m['growth_mib']:+.2f}", f"{m['gc_objects_growth']:+d}", f"{m['peak_rss_mib']:.1f}",
             f"{m['peak_above_start_mib']:.1f}"] for kind, m in mem.items()]
    out.append(table(["", "start", "after warm-up", "end", "growth", "gc objects", "peak", "peak - start"], rows))
    out += [f"  peak RSS probdl - numpy: {mem['probdl']['peak_rss_mib'] - mem['numpy']['peak_rss_mib']:+.1f} MiB "
            f"(ru_maxrss in the children, {mem['probdl']['ru_maxrss_mib']:.1f} and {mem['numpy']['ru_maxrss_mib']:.1f}"
            " MiB, also counts the parent's peak, which Linux carries through fork and exec)", ""]

    out.append("Targets")
    out.append(table(["target", "figure", "verdict"],
                     [[t["target"], t["figure"], verdict(t["ok"])] for t in results["targets"]]))
    return "\n".join(out)


def load_average() -> str:
    """The 1-minute load average (other work on the machine shows up here as noise in the timings)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def git_commit() -> str:
    """The short commit of the checkout probdl was imported from, with '+dirty' for local changes."""
    repo = Path(pd.__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "probdl"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def environment(threads: dict, torch: Any) -> dict:
    return {"probdl": pd.__version__, "git_commit": git_commit(), "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__ if torch is not None else NOT_INSTALLED,
            "machine": f"{platform.system()} {platform.machine()} {platform.processor() or ''}".strip(),
            "threads": threads, "load_average_start": load_average()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer iterations and 1000 memory steps (a smoke run)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON,
                   help=f"where to write the results (default {DEFAULT_JSON.relative_to(HERE.parent)})")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for NumPy's BLAS and PyTorch (default: NumPy's own count, which torch then matches)")
    p.add_argument("--memory-child", choices=("probdl", "numpy"), help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.memory_child:
        if args.threads is not None:
            set_numpy_blas_threads(args.threads)
        print(json.dumps(memory_child(args.memory_child, args.steps)))
        return

    settings = Settings.for_mode(args.quick)
    torch = import_torch()
    threads = pin_threads(args.threads, torch)
    started = time.perf_counter()
    results: dict[str, Any] = {"environment": environment(threads, torch),
                               "settings": {**settings.__dict__, "quick": args.quick}}
    results["perop"] = bench_perop(settings, torch)
    results["mlp"] = {np.dtype(dt).name: bench_mlp(settings, torch, np.dtype(dt)) for dt in (np.float64, np.float32)}
    results["memory"] = bench_memory(settings, args.threads)
    results["targets"] = evaluate_targets(results)
    results["load_average_end"] = load_average()
    results["wall_seconds"] = time.perf_counter() - started

    print(report(results))
    print(f"\n(wall time {results['wall_seconds']:.0f} s; results written to {args.json})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
