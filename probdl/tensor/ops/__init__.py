"""Every differentiable op, one module per family; each is a top-level ``probdl`` function."""
import functools
import inspect

from .base import broadcast_to, identity, sum_to
from .conv import fold, unfold
from .device import clone, to
from .elementwise import *  # noqa: F403
from .elementwise import __all__ as _elementwise
from .indexing import *  # noqa: F403
from .indexing import __all__ as _indexing
from .linalg import *  # noqa: F403
from .linalg import __all__ as _linalg
from .random import *  # noqa: F403
from .random import __all__ as _random
from .reduction import *  # noqa: F403
from .reduction import __all__ as _reduction
from .shape import *  # noqa: F403
from .shape import __all__ as _shape
from .special import *  # noqa: F403
from .special import __all__ as _special


def _accept_torch_names(fn):
    """Let a NumPy-style function also take PyTorch's ``dim=`` and ``keepdim=`` (``x.sum(dim=0)``)."""
    if not inspect.isfunction(fn) or "axis" not in inspect.signature(fn).parameters:
        return fn

    @functools.wraps(fn)
    def wrapper(*args, dim=_MISSING, keepdim=_MISSING, **kwargs):
        if dim is not _MISSING:
            if "axis" in kwargs:
                raise TypeError(f"{fn.__name__}: give axis or dim, not both")
            kwargs["axis"] = dim
        if keepdim is not _MISSING:
            kwargs["keepdims"] = keepdim
        return fn(*args, **kwargs)

    return wrapper


_MISSING = object()

__all__ = ["broadcast_to", "identity", "sum_to", "clone", "to", "unfold", "fold",
           *_elementwise, *_indexing, *_linalg, *_random, *_reduction, *_shape, *_special]

for _name in __all__:  # the public functions accept PyTorch's dim/keepdim too; internal code calls the originals
    globals()[_name] = _accept_torch_names(globals()[_name])
del _name
