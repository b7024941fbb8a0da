"""Convergence diagnostics of MCMC draws, from ArviZ: a thin layer, not a second implementation.

Every function takes draws of shape ``(chains, draws, *event)`` (a NumPy array or a probdl Tensor; a 1-D
array is one chain) and hands them to ArviZ, which is imported on first use so that ``import probdl`` stays
fast. The estimators are ArviZ's: the rank-normalized split R-hat and the bulk and tail effective sample
sizes of Vehtari, Gelman, Simpson, Carpenter & Bürkner, "Rank-normalization, folding, and localization: an
improved R̂ for assessing convergence of MCMC", Bayesian Analysis 16 (2021); the Monte Carlo standard error
of the mean, sd / sqrt(ESS_mean); and the highest-density interval.
"""
from __future__ import annotations

import itertools
import sys
from typing import Any, TextIO

import numpy as np

from ..tensor import Tensor

__all__ = ["effective_sample_size", "split_gelman_rubin", "mcse", "hpdi", "summary", "print_summary"]


def _arviz() -> Any:
    try:
        import arviz
    except ImportError as e:  # pragma: no cover - arviz is a dependency
        raise ImportError("probdl.infer.diagnostics needs ArviZ: pip install arviz") from e
    return arviz


def _chains(x: Any, name: str = "x", min_draws: int = 4) -> np.ndarray:
    """``x`` as a float array of shape (chains, draws, *event), checked."""
    a = np.asarray(x.numpy() if isinstance(x, Tensor) else x)
    if a.dtype == bool:
        a = a.astype(np.float64)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"diagnostics: {name} must hold numbers, got dtype {a.dtype}")
    if a.ndim == 0:
        raise ValueError(f"diagnostics: {name} must have shape (chains, draws, ...) or (draws,), got a scalar")
    if a.ndim == 1:
        a = a[None]
    if a.shape[1] < min_draws:
        raise ValueError(f"diagnostics: {name} has {a.shape[1]} draws per chain; at least {min_draws} are needed")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"diagnostics: {name} has non-finite draws (NaN or inf)")
    return a.astype(np.float64, copy=False)


def _per_component(fn: Any, a: np.ndarray) -> np.ndarray:
    """Apply an ArviZ function of a (chains, draws) array to every component of the event shape."""
    event = a.shape[2:]
    flat = a.reshape(a.shape[:2] + (-1,))
    out = np.array([float(fn(flat[:, :, j])) for j in range(flat.shape[2])])
    return out.reshape(event)


def effective_sample_size(x: Any, method: str = "bulk") -> np.ndarray:
    """ArviZ's effective sample size (``method`` "bulk", "tail", "mean", "sd", ...) of each component."""
    az = _arviz()
    return _per_component(lambda c: az.ess(c, method=method), _chains(x))


def split_gelman_rubin(x: Any) -> np.ndarray:
    """ArviZ's rank-normalized split R-hat of each component (needs at least 4 draws per chain)."""
    az = _arviz()
    return _per_component(lambda c: az.rhat(c, method="rank"), _chains(x))


def mcse(x: Any) -> np.ndarray:
    """ArviZ's Monte Carlo standard error of the mean of each component."""
    az = _arviz()
    return _per_component(lambda c: az.mcse(c, method="mean"), _chains(x))


def hpdi(x: Any, prob: float = 0.9) -> np.ndarray:
    """The highest posterior density interval of mass ``prob`` of each component, chains pooled: an array of
    shape ``(2, *event)`` (lower, upper), by ArviZ's ``hdi``."""
    if not 0 < prob < 1:
        raise ValueError(f"hpdi: prob must be in (0, 1), got {prob!r}")
    az = _arviz()
    a = _chains(x, min_draws=1)
    flat = a.reshape((-1,) + a.shape[2:]).reshape(a.shape[0] * a.shape[1], -1)
    bounds = np.array([az.hdi(flat[:, j], hdi_prob=prob) for j in range(flat.shape[1])])
    return bounds.T.reshape((2,) + a.shape[2:])


def _component_names(name: str, event: tuple[int, ...]) -> list[str]:
    if not event:
        return [name]
    return [f"{name}[{','.join(map(str, idx))}]" for idx in itertools.product(*map(range, event))]


def summary(samples: dict[str, Any], prob: float = 0.9, group_by_chain: bool = True) -> dict[str, dict[str, float]]:
    """For every scalar component of every site (``theta[0]``, ``L[0,1]``: 0-based, row-major), its mean, sd,
    median, the equal-tailed ``prob`` interval (keys ``"5.0%"`` and ``"95.0%"`` for 0.9), ``ess_bulk``,
    ``ess_tail`` and ``r_hat``.

    ``samples``: site name -> draws of shape ``(chains, draws, *shape)``, or ``(draws, *shape)`` with
    ``group_by_chain=False`` (one chain).
    """
    if not isinstance(samples, dict):
        raise TypeError(f"summary: samples must be a dict of site name -> draws, got {type(samples).__name__}")
    if not 0 < prob < 1:
        raise ValueError(f"summary: prob must be in (0, 1), got {prob!r}")
    az = _arviz()
    low_q, high_q = (1 - prob) / 2, (1 + prob) / 2
    low_key, high_key = f"{100 * low_q:.1f}%", f"{100 * high_q:.1f}%"
    out: dict[str, dict[str, float]] = {}
    for name, x in samples.items():
        a = np.asarray(x.numpy() if isinstance(x, Tensor) else x)
        if not group_by_chain:
            a = a[None]
        if a.ndim < 2:
            raise ValueError(f"summary: site {name!r} has shape {a.shape}; expected (chains, draws, ...)")
        a = _chains(a, f"site {name!r}")
        flat = a.reshape(a.shape[:2] + (-1,))
        for j, label in enumerate(_component_names(name, a.shape[2:])):
            c = flat[:, :, j]
            pooled = c.ravel()
            out[label] = {
                "mean": float(pooled.mean()), "sd": float(pooled.std(ddof=1)), "median": float(np.median(pooled)),
                low_key: float(np.quantile(pooled, low_q)), high_key: float(np.quantile(pooled, high_q)),
                "ess_bulk": float(az.ess(c, method="bulk")), "ess_tail": float(az.ess(c, method="tail")),
                "r_hat": float(az.rhat(c, method="rank")),
            }
    return out


def print_summary(samples: dict[str, Any], prob: float = 0.9, group_by_chain: bool = True,
                  num_divergences: int | None = None, file: TextIO | None = None) -> None:
    """Print :func:`summary` as an aligned table, one row per scalar component, and the number of divergences
    when given."""
    table = summary(samples, prob, group_by_chain)
    out = file or sys.stdout
    if not table:
        print("(no parameters)", file=out)
        return
    columns = list(next(iter(table.values())))
    width = max(8, *(len(k) for k in table)) + 2
    print(" " * width + "".join(f"{c:>10s}" for c in columns), file=out)
    for label, row in table.items():
        cells = "".join(f"{row[c]:>10.0f}" if c.startswith("ess") else f"{row[c]:>10.2f}" for c in columns)
        print(f"{label:>{width}s}{cells}", file=out)
    if num_divergences is not None:
        print(f"\nNumber of divergences: {num_divergences}", file=out)
