"""Shared fixtures: float64 on the CPU by default, fixed seeds, and a device parameter that skips cuda without a GPU."""
import numpy as np
import pytest

import probdl
from probdl.testing import DEVICES, skip_unless_device


@pytest.fixture(autouse=True)
def _defaults():
    """Every test starts from float64 and a fixed global seed, and leaves them as it found them."""
    old = probdl.get_default_dtype()
    probdl.set_default_dtype(np.float64)
    probdl.set_rng_seed(0)
    yield
    probdl.set_default_dtype(old)


@pytest.fixture(params=DEVICES)
def device(request):
    """Run the test on every device present; "cuda" is skipped without a GPU."""
    skip_unless_device(request.param)
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
