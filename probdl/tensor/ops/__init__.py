"""Every differentiable op, one module per family; each is a top-level ``probdl`` function."""
from .base import broadcast_to, identity, sum_to
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

__all__ = ["broadcast_to", "identity", "sum_to", "clone", "to",
           *_elementwise, *_indexing, *_linalg, *_random, *_reduction, *_shape, *_special]
