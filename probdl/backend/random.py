"""The random generator.

One global ``numpy.random.Generator`` is a convenience for users
(:func:`set_rng_seed`); underneath, randomness is explicit: every sampling function
takes an optional ``rng`` and handlers or MCMC chains own generators derived with
:func:`spawn`, so runs are reproducible and chains independent.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["set_rng_seed", "get_rng", "spawn", "as_generator"]

_rng: np.random.Generator = np.random.default_rng()

#: while not None, every generator handed out by :func:`as_generator` is noted here: every random draw in probdl
#: gets its generator there, so ``probdl.tensor.compile`` sees the draws a replay could not repeat (the noise
#: it does repeat is drawn through ``generator_for_replay``)
draw_watch: list[str] | None = None


def set_rng_seed(seed: int) -> None:
    """Seed the global generator (and NumPy's legacy one, for code that still uses it)."""
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"set_rng_seed: seed must be an int, got {type(seed).__name__} {seed!r}")
    _rng = np.random.default_rng(seed)
    np.random.seed(seed % 2**32)


def get_rng() -> np.random.Generator:
    """The global generator."""
    return _rng


def as_generator(rng: Any = None) -> np.random.Generator:
    """``None`` → the global generator; an int → a new seeded generator; a Generator → itself."""
    if draw_watch is not None:
        draw_watch.append("a random draw")
    return generator_for_replay(rng)


def generator_for_replay(rng: Any = None) -> np.random.Generator:
    """:func:`as_generator` for the draws a compiled function records and repeats (unwatched)."""
    if rng is None:
        return _rng
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def spawn(n: int, rng: Any = None) -> list[np.random.Generator]:
    """``n`` independent child generators of ``rng`` (the global one by default)."""
    return list(as_generator(rng).spawn(n))
