"""Convergence diagnostics of MCMC draws, from ArviZ: a thin layer, not a second implementation.

Every function takes draws ``x`` of shape ``(chains, draws, *event)`` (a NumPy array or a probdl Tensor; a 1-D
array is one chain) and returns one value per component, an array of shape ``event``. The estimators are
ArviZ's; ArviZ is imported on first use, so that ``import probdl`` stays fast.

With :math:`M` chains of :math:`N` draws, each chain split in half (so :math:`M' = 2M` chains of
:math:`N' = N/2` draws, which also detects a trend within a chain), chain means :math:`\\bar x_m` and
variances :math:`s_m^2`:

- **split R-hat**: :math:`W = \\frac{1}{M'} \\sum_m s_m^2`, :math:`B = \\frac{N'}{M'-1} \\sum_m (\\bar x_m -
  \\bar x)^2`, :math:`\\widehat{\\mathrm{var}}^+ = \\frac{N'-1}{N'} W + \\frac{B}{N'}` and
  :math:`\\hat R = \\sqrt{\\widehat{\\mathrm{var}}^+ / W}`, which tends to 1 as the chains mix. The
  *rank-normalized* version computes it on :math:`z = \\Phi^{-1}((r - 3/8) / (MN + 1/4))` of the pooled ranks
  :math:`r` of the draws (robust to heavy tails) and on the same of the folded draws :math:`|x - \\mathrm{median}|`
  (sensitive to different scales), and reports the larger.
- **effective sample size**: :math:`\\mathrm{ESS} = MN / \\hat\\tau` with :math:`\\hat\\tau = 1 + 2 \\sum_t
  \\hat\\rho_t`, the autocorrelations :math:`\\hat\\rho_t` combined across chains and summed while Geyer's
  initial monotone sequence stays positive. *Bulk* ESS is that of the rank-normalized split chains (how well
  means and medians are estimated); *tail* ESS the smaller of those of the indicators
  :math:`I(x \\le q_{0.05})` and :math:`I(x \\ge q_{0.95})` (how well the 5% and 95% quantiles are); *mean* ESS
  that of the raw draws.
- **Monte Carlo standard error** of the mean: :math:`\\mathrm{sd}(x) / \\sqrt{\\mathrm{ESS}_{\\mathrm{mean}}}`.
- **highest posterior density interval**: the shortest interval holding a fraction ``prob`` of the pooled draws.

References: Vehtari, Gelman, Simpson, Carpenter & Bürkner, "Rank-normalization, folding, and localization: an
improved R̂ for assessing convergence of MCMC", Bayesian Analysis 16 (2021); Gelman & Rubin, "Inference from
iterative simulation using multiple sequences", Statistical Science 7 (1992); Geyer, "Practical Markov chain
Monte Carlo", Statistical Science 7 (1992).
"""
from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np

from ..tensor import Tensor

__all__ = ["effective_sample_size", "split_gelman_rubin", "mcse", "hpdi", "summary", "print_summary"]

_MIN_DRAWS = 4  # split R-hat and bulk ESS split each chain in two halves of at least two draws


def _arviz() -> Any:
    """ArviZ, imported on first use."""
    try:
        import arviz  # noqa: PLC0415  (lazy: keeps ``import probdl`` fast)
    except ImportError as e:  # pragma: no cover - arviz is a dependency
        raise ImportError("probdl's MCMC diagnostics and InferenceData come from ArviZ, which is not installed: "
                          "pip install arviz") from e
    return arviz


def _as_numpy(x: Any) -> np.ndarray:
    return np.asarray(x.numpy() if isinstance(x, Tensor) else x)


def _chains(x: Any, who: str, min_draws: int = _MIN_DRAWS) -> np.ndarray:
    """``x`` as a float64 array of shape ``(chains, draws, *event)`` (a 1-D ``x`` is one chain), checked;
    ``who`` names it in errors (``"effective_sample_size: x"``, ``"summary: site 'theta'"``)."""
    a = _as_numpy(x)
    if a.dtype == bool:
        a = a.astype(np.float64)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{who} must hold real numbers, got dtype {a.dtype}")
    if a.ndim == 0:
        raise ValueError(f"{who} is a scalar; expected draws of shape (chains, draws, ...) or (draws,)")
    if a.ndim == 1:
        a = a[None]
    if a.shape[1] < min_draws:
        raise ValueError(f"{who} has shape {a.shape}: {a.shape[1]} draws per chain, and at least {min_draws} are "
                         "needed (split R-hat and ESS split each chain in two halves)")
    if not np.all(np.isfinite(a)):
        bad = int(np.sum(~np.isfinite(a)))
        raise ValueError(f"{who} has {bad} NaN or infinite value(s) among its {a.size}; diagnostics need finite "
                         "draws")
    return a.astype(np.float64, copy=False)


def _per_component(fn: Callable[[np.ndarray], Any], a: np.ndarray) -> np.ndarray:
    """``fn`` (an ArviZ function of one ``(chains, draws)`` array) of every component of the event shape."""
    event = a.shape[2:]
    flat = a.reshape(a.shape[:2] + (math.prod(event),))
    return np.array([float(fn(flat[:, :, j])) for j in range(flat.shape[2])]).reshape(event)


def effective_sample_size(x: Any, method: str = "bulk", prob: float | tuple[float, float] | None = None
                          ) -> np.ndarray:
    """ArviZ's effective sample size of each component of ``x`` (``(chains, draws, *event)``), shape ``event``.

    ``method``: ``"bulk"`` (rank-normalized split chains, the default), ``"tail"``, ``"mean"``, ``"sd"``,
    ``"median"``, ``"mad"``, ``"quantile"`` / ``"local"`` (with ``prob``), ... as ``arviz.ess``.
    """
    az = _arviz()
    kwargs = {} if prob is None else {"prob": prob}
    return _per_component(lambda c: az.ess(c, method=method, **kwargs), _chains(x, "effective_sample_size: x"))


def split_gelman_rubin(x: Any) -> np.ndarray:
    """ArviZ's rank-normalized split R-hat (``arviz.rhat(method="rank")``) of each component of ``x``
    (``(chains, draws, *event)``, at least 4 draws per chain), shape ``event``."""
    az = _arviz()
    return _per_component(lambda c: az.rhat(c, method="rank"), _chains(x, "split_gelman_rubin: x"))


def mcse(x: Any, method: str = "mean", prob: float | None = None) -> np.ndarray:
    """ArviZ's Monte Carlo standard error of each component of ``x`` (``(chains, draws, *event)``), shape
    ``event``: of the mean by default, :math:`\\mathrm{sd} / \\sqrt{\\mathrm{ESS}_{\\mathrm{mean}}}`; ``method``
    ``"sd"``, ``"median"`` or ``"quantile"`` (with ``prob``) as ``arviz.mcse``."""
    az = _arviz()
    kwargs = {} if prob is None else {"prob": prob}
    return _per_component(lambda c: az.mcse(c, method=method, **kwargs), _chains(x, "mcse: x"))


def hpdi(x: Any, prob: float = 0.9) -> np.ndarray:
    """The highest posterior density interval of mass ``prob`` of each component of ``x``, the chains pooled, by
    ArviZ's ``hdi``: an array of shape ``(2, *event)``, lower bounds then upper bounds (NumPyro's layout)."""
    if not 0 < prob < 1:
        raise ValueError(f"hpdi: prob must be in (0, 1), got {prob!r}")
    az = _arviz()
    a = _chains(x, "hpdi: x", min_draws=1)
    flat = a.reshape((a.shape[0] * a.shape[1], math.prod(a.shape[2:])))
    bounds = np.array([az.hdi(flat[:, j], hdi_prob=prob) for j in range(flat.shape[1])]).reshape(-1, 2)
    return bounds.T.reshape((2,) + a.shape[2:])


def _component_names(name: str, event: tuple[int, ...]) -> list[str]:
    """``theta`` -> ``["theta"]``; shape (2,) -> ``theta[0]``, ``theta[1]``; (2, 2) -> ``L[0,0]``, ``L[0,1]``, ...
    (0-based, row-major, as NumPyro)."""
    if not event:
        return [name]
    return [f"{name}[{','.join(map(str, idx))}]" for idx in itertools.product(*map(range, event))]


def _interval_keys(prob: float) -> tuple[str, str]:
    low, high = (1 - prob) / 2, (1 + prob) / 2
    return f"{100 * low:.1f}%", f"{100 * high:.1f}%"


def summary(samples: dict[str, Any], prob: float = 0.9, group_by_chain: bool = True) -> dict[str, dict[str, float]]:
    """Posterior statistics and convergence diagnostics of every scalar component of every site.

    Returns ``{component: {"mean", "sd", "median", low, high, "ess_bulk", "ess_tail", "r_hat"}}``, components
    named ``theta`` for a scalar site, ``theta[0]`` for a vector, ``L[0,1]`` for a matrix (0-based, row-major, as
    NumPyro), in the order of ``samples``. ``low`` and ``high`` are the equal-tailed ``prob`` interval, the
    :math:`(1 - p)/2` and :math:`(1 + p)/2` quantiles of the pooled draws, under keys that name those levels:
    ``"5.0%"`` and ``"95.0%"`` for ``prob=0.9`` (NumPyro puts HPDI bounds under the same keys; :func:`hpdi`
    gives those). ``sd`` has ``ddof=1``, as ArviZ's. ESS and R-hat are ArviZ's, as in
    :func:`effective_sample_size` and :func:`split_gelman_rubin`.

    Args:
        samples: site name -> draws of shape ``(chains, draws, *site shape)``, or ``(draws, *site shape)`` with
            ``group_by_chain=False`` (one chain). At least 4 draws per chain.
        prob: the mass of the interval, in (0, 1).
        group_by_chain: whether the draws have a leading chain dim.
    """
    if not isinstance(samples, dict):
        raise TypeError(f"summary: samples must be a dict of site name -> draws, got {type(samples).__name__}")
    if not 0 < prob < 1:
        raise ValueError(f"summary: prob must be in (0, 1), got {prob!r}")
    az = _arviz()
    low_q, high_q = (1 - prob) / 2, (1 + prob) / 2
    low_key, high_key = _interval_keys(prob)
    out: dict[str, dict[str, float]] = {}
    for name, x in samples.items():
        a = _as_numpy(x)
        expected, lead = ("(chains, draws, ...)", 2) if group_by_chain else ("(draws, ...)", 1)
        if a.ndim < lead:
            hint = "; for one chain's draws pass group_by_chain=False" if group_by_chain and a.ndim == 1 else ""
            raise ValueError(f"summary: site {name!r} has shape {a.shape}; expected {expected}{hint}")
        a = _chains(a if group_by_chain else a[None], f"summary: site {name!r}")
        flat = a.reshape(a.shape[:2] + (math.prod(a.shape[2:]),))
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
    """Print :func:`summary` as a table, one row per scalar component, columns right-aligned, then
    ``Number of divergences: N`` when ``num_divergences`` is given. ``file`` defaults to ``sys.stdout``.

    Example output::

                   mean     sd  median   5.0%  95.0%  ess_bulk  ess_tail  r_hat
              mu   1.02   0.29    1.02   0.55   1.49      1873      2410   1.00
        theta[0]  -0.13   1.01   -0.12  -1.80   1.52      3904      2731   1.00

        Number of divergences: 0
    """
    table = summary(samples, prob, group_by_chain)
    out = sys.stdout if file is None else file
    if table:
        columns = list(next(iter(table.values())))
        cells = [[f"{row[c]:.0f}" if c.startswith("ess") else f"{row[c]:.2f}" for c in columns]
                 for row in table.values()]
        label_width = max(len(label) for label in table)
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        print(" " * label_width + "".join(f"  {c:>{w}}" for c, w in zip(columns, widths)), file=out)
        for label, row in zip(table, cells):
            print(f"{label:>{label_width}}" + "".join(f"  {v:>{w}}" for v, w in zip(row, widths)), file=out)
    else:
        print("(no sites to summarize)", file=out)
    if num_divergences is not None:
        print(f"\nNumber of divergences: {int(num_divergences)}", file=out)
