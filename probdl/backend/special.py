"""Special functions on raw arrays (scipy.special on the CPU, cupyx.scipy.special on the GPU)."""
from __future__ import annotations

from types import ModuleType

import numpy as np
import scipy.special

__all__ = ["special"]


def special(xp: ModuleType) -> ModuleType:
    """The module of special functions (``gammaln``, ``digamma``, ``ndtr``, ...) for ``xp``."""
    if xp is np:
        return scipy.special
    import cupyx.scipy.special  # noqa: PLC0415

    return cupyx.scipy.special
