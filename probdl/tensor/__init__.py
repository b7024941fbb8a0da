"""The tensor engine: Tensor, autograd, ops and function transforms.

``probdl.tensor`` is both this package and the function that makes tensors: the
package module is callable, so ``probdl.tensor([1.0, 2.0])`` makes a tensor while
``import probdl.tensor.ops`` still reaches the submodules.
"""
import sys
import types

from . import (
    autograd,  # noqa: F401  (first: tensor.py and autograd.py import each other)
    methods,  # noqa: F401,E402  (binds operators and methods to Tensor)
)
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .creation import __all__ as _creation
from .creation import (
    arange,
    as_tensor,
    empty,
    eye,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    tensor,
    zeros,
    zeros_like,
)
from .functional import grad, hessian, hvp, jacobian, value_and_grad, vjp
from .ops import *  # noqa: F403
from .ops import __all__ as _ops
from .tensor import Tensor

__all__ = ["Tensor", "enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled", "grad", "hessian", "hvp",
           "jacobian", "value_and_grad", "vjp", *_creation, *_ops]


class _CallableModule(types.ModuleType):
    """This package, callable as :func:`probdl.tensor.creation.tensor`."""

    def __call__(self, data, dtype=None, device=None, requires_grad=False):
        return tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


sys.modules[__name__].__class__ = _CallableModule
