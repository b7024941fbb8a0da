"""probdl: probabilistic programming on its own autograd engine over NumPy and CuPy.

The everyday names live here: ``probdl.tensor``, ``probdl.Tensor``, the ops
(``probdl.exp``, ``probdl.logsumexp``, ``probdl.cholesky``, ...), the function
transforms (``probdl.grad``, ``probdl.value_and_grad``, ...), and the settings
(``probdl.set_rng_seed``, ``probdl.set_default_dtype``, ``probdl.device``), and the modelling
statements (``probdl.sample``, ``probdl.param``, ``probdl.plate``, ``probdl.deterministic``,
``probdl.factor``, ``probdl.module``, ``probdl.random_module``).
"""
from .backend import (
    Device,
    cuda_is_available,
    device,
    get_default_dtype,
    get_rng,
    set_default_dtype,
    set_rng_seed,
)
from .serialization import load, save  # noqa: E402
from .tensor import *  # noqa: F403
from .tensor import (  # noqa: F401
    Tensor,
    enable_grad,
    grad,
    hessian,
    hvp,
    is_grad_enabled,
    jacobian,
    no_grad,
    set_grad_enabled,
    value_and_grad,
    vjp,
)
from .tensor.ops import LinAlgError  # noqa: F401

tensor = __import__("sys").modules[__name__ + ".tensor"]  # the callable package: probdl.tensor([...]) makes a tensor

from numpy import bool_, float32, float64, int32, int64  # noqa: F401  (dtypes, as probdl.float32)

from .primitives import (  # noqa: E402, F401
    clear_param_store,
    deterministic,
    factor,
    get_param_store,
    module,
    param,
    plate,
    random_module,
    sample,
)

__version__ = "0.1.0"
