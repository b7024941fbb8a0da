"""The Tensor: one NumPy or CuPy array plus what reverse-mode differentiation needs.

Operators and methods (``+``, ``@``, ``.exp()``, ``.sum()``, ...) are bound in
``probdl.tensor.methods`` from the op functions, so each op is written once.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import as_dtype, device_of, get_array_module, get_default_dtype, is_floating, ndarray_types, to_device
from ..backend.arrays import Device

__all__ = ["Tensor", "as_array", "as_tensor_like"]


class Tensor:
    """An n-dimensional array that records the ops applied to it, so gradients can flow back.

    Attributes:
        data: the underlying ``numpy.ndarray`` or ``cupy.ndarray``.
        grad: the gradient accumulated by :meth:`backward` (a Tensor), or ``None``.
        requires_grad: whether ops on this tensor are recorded.
    """

    __slots__ = ("data", "grad", "requires_grad", "_node", "_retain", "__weakref__")
    __array_ufunc__ = None  # NumPy defers to Tensor's reflected operators: ndarray * Tensor -> Tensor
    __array_priority__ = 1000

    def __init__(self, data: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> None:
        self.data = as_array(data, dtype, device)
        self.grad = None
        self._node = None
        self._retain = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _wrap(data: Any) -> Tensor:
        """A constant tensor around an array, with no checks or copies (internal fast path)."""
        if type(data) is not np.ndarray and isinstance(data, np.generic):  # NumPy scalars become 0-d arrays
            data = np.asarray(data)
        t = Tensor.__new__(Tensor)
        t.data = data
        t.grad = None
        t.requires_grad = False
        t._node = None
        t._retain = False
        return t

    # ----------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def device(self) -> Device:
        return device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by a recorded op."""
        return self._node is None

    @property
    def grad_fn(self):
        """The graph node that made this tensor, or ``None`` for a leaf."""
        return self._node

    def numel(self) -> int:
        """Number of elements."""
        return int(self.data.size)

    def size(self, dim: int | None = None):
        """The shape, or the length of one dimension (as in PyTorch)."""
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    __hash__ = object.__hash__  # == is elementwise, so hash by identity

    # ------------------------------------------------------------------ autograd
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place on a leaf; only floating tensors can require grad."""
        if requires_grad and not is_floating(self.data.dtype):
            raise TypeError(f"only floating tensors can require gradients; this tensor has dtype {self.data.dtype}")
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use .detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` on this non-leaf tensor during backward."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retain = True
        return self

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor._wrap(self.data)

    def backward(self, grad: Any = None, retain_graph: bool = False, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf that requires grad.

        Args:
            grad: the gradient of some scalar with respect to ``self``; may be omitted
                only when ``self`` holds a single element.
            retain_graph: keep the graph so backward can walk it again.
            create_graph: record the backward pass itself, for higher derivatives.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and was not made from one that does")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be omitted only for a single-element output; this one has shape "
                    f"{self.data.shape}; pass grad= of the same shape or reduce it first (e.g. .sum())")
            g = Tensor._wrap(get_array_module(self.data).ones(self.data.shape, self.data.dtype))
        else:
            g = grad if isinstance(grad, Tensor) else Tensor._wrap(as_array(grad, self.data.dtype, self.device))
            if g.shape != self.shape:
                raise ValueError(f"backward: grad has shape {g.shape} but the tensor has shape {self.shape}")
        _autograd.run_backward([self], [g], retain_graph=retain_graph, create_graph=create_graph)

    # --------------------------------------------------------------- conversions
    def item(self) -> Any:
        if self.data.size != 1:
            raise ValueError(f"item: only a single-element tensor converts to a Python number; shape {self.shape}")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied off the GPU when needed); shares memory on the CPU."""
        return to_device(self.data, "cpu")

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors can be used as an index; dtype {self.data.dtype}")
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() or .all()")
        return bool(self.data.item())

    def __repr__(self) -> str:
        a = self.numpy()
        prefix = "tensor("
        body = np.array2string(a, separator=", ", prefix=prefix, threshold=200, precision=4)
        extras = []
        if a.dtype != get_default_dtype() and not (a.dtype.kind in "ib" and a.dtype in (np.int64, np.bool_)):
            extras.append(f"dtype={a.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self._node is not None:
            extras.append(f"grad_fn={self._node!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return prefix + body + "".join(", " + e for e in extras) + ")"


# ------------------------------------------------------------------------ helpers
def as_array(data: Any, dtype: Any = None, device: Any = None) -> Any:
    """Turn data (a Tensor, array, number or nested list) into an array of the right dtype and device.

    Python floats and lists of them take the default floating dtype; arrays keep theirs.
    """
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = as_dtype(dtype)
    if isinstance(data, ndarray_types()):
        arr = data if dtype is None else data.astype(dtype, copy=False)
    else:
        arr = np.asarray(data, dtype=dtype)
        if dtype is None and not isinstance(data, np.generic):  # NumPy scalars keep their dtype
            if arr.dtype.kind == "f" and arr.dtype != get_default_dtype():
                arr = arr.astype(get_default_dtype())
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"cannot make a tensor from {type(data).__name__} {data!r}: it gives dtype {arr.dtype}; "
                            "tensors hold booleans, integers or floats")
    if device is not None:
        arr = to_device(arr, device)
    return arr


def as_tensor_like(x: Any, ref: Tensor) -> Tensor:
    """Make ``x`` a Tensor for an op with ``ref``; Python numbers adopt ``ref``'s dtype where it can hold them.

    A Python float with an integer tensor becomes the default floating dtype, as in PyTorch.
    """
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (float, int)):
        kind = ref.data.dtype.kind
        if kind in "fc" or (isinstance(x, int) and kind in "iu" and not isinstance(x, bool)) or (
                isinstance(x, bool) and kind == "b"):
            dt = ref.data.dtype
        elif isinstance(x, float):
            dt = get_default_dtype()
        else:
            dt = np.result_type(ref.data.dtype, np.int64) if not isinstance(x, bool) else np.bool_
        xp = get_array_module(ref.data)
        return Tensor._wrap(xp.asarray(x, dtype=dt))
    arr = as_array(x)
    xp = get_array_module(ref.data)
    if get_array_module(arr) is not xp:
        arr = xp.asarray(arr)
    return Tensor._wrap(arr)


from . import autograd as _autograd  # noqa: E402  (autograd needs Tensor defined first)
