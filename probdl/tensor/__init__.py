"""The tensor engine: Tensor, autograd, ops and function transforms."""
from . import autograd  # noqa: F401  (first: tensor.py and autograd.py import each other)
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .creation import arange, as_tensor, empty, eye, full, full_like, linspace, ones, ones_like, tensor, zeros, zeros_like
from .functional import grad, hessian, hvp, jacobian, value_and_grad, vjp
from .ops import *  # noqa: F403
from .tensor import Tensor
from . import methods  # noqa: F401,E402  (binds operators and methods to Tensor)
