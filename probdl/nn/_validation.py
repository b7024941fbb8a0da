"""Argument checks shared by the layers, so every layer words its errors the same way."""
from __future__ import annotations

from typing import Any

import numpy as np


def positive_int(name: str, v: Any, cls: str) -> int:
    """``v`` as an int, or a ValueError naming the layer, the argument and the value."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{cls}: {name} must be a positive int, got {v!r}")
    return int(v)
