"""Moving between devices and copying, as differentiable ops."""
from __future__ import annotations

from typing import Any

from ...backend import device as _device
from ...backend import device_of, get_array_module, to_device
from .base import Op, Tensor, apply, to_tensor

__all__ = ["to", "clone"]


class ToDevice(Op):
    forward = staticmethod(lambda x, device: to_device(x, device))

    @staticmethod
    def backward(node, out, g):
        return (apply(ToDevice, (g,), {"device": device_of(node.inputs[0].data)}),)


class Clone(Op):
    forward = staticmethod(lambda x: get_array_module(x).array(x, copy=True))

    @staticmethod
    def backward(node, out, g):
        return (g,)


def to(x: Any, device: Any) -> Tensor:
    """The tensor on ``device`` ("cpu", "cuda", "cuda:1"); the gradient flows back to the original device."""
    x = to_tensor(x)
    dev = _device(device)
    if x.device == dev:
        return x
    dev.xp  # noqa: B018  (raises a clear error when the device is not present)
    return apply(ToDevice, (x,), {"device": dev})


def clone(x: Any) -> Tensor:
    """A copy of the data that stays in the graph."""
    return apply(Clone, (to_tensor(x),))
