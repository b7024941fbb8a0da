"""Stochastic gradient descent, with optional (Nesterov) momentum and weight decay."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..backend import get_array_module
from .optimizer import Optimizer, check_foreach, check_nonnegative

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, as in PyTorch.

    With gradient :math:`g_t` of parameter :math:`x_{t-1}` (negated when ``maximize``):

    .. math::
        g_t &\leftarrow g_t + \lambda x_{t-1}                      && \text{(weight\_decay } \lambda \ne 0)\\
        b_t &= g_t \text{ at } t = 1, \quad b_t = \mu b_{t-1} + (1 - \tau) g_t  && \text{(momentum } \mu \ne 0)\\
        g_t &\leftarrow g_t + \mu b_t \text{ (nesterov), else } b_t\\
        x_t &= x_{t-1} - \gamma g_t

    Args:
        params: Tensors or parameter groups; ``None`` to add groups later.
        lr: learning rate :math:`\gamma`.
        momentum: momentum factor :math:`\mu`.
        dampening: dampening :math:`\tau` of the momentum.
        weight_decay: L2 penalty :math:`\lambda`, added to the gradient.
        nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening = 0``).
        maximize: ascend the objective instead of descending it.
        foreach: update the group's parameters together (``True``), one by one (``False``), or
            decide by their sizes (``None``); see :mod:`probdl.optim.optimizer`. The numbers are the same.

    State per parameter: ``momentum_buffer`` (when ``momentum != 0``).

    References: Polyak, "Some methods of speeding up the convergence of iteration methods" (1964);
    Sutskever et al., "On the importance of initialization and momentum in deep learning", ICML (2013).
    """

    def __init__(self, params: Iterable[Any] | None = None, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None) -> None:
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                         nesterov=nesterov, maximize=maximize, foreach=foreach)

    def _check_options(self, group: dict[str, Any]) -> None:
        check_nonnegative("SGD", group, "lr", "momentum", "dampening", "weight_decay")
        check_foreach("SGD", group)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']!r} and dampening={group['dampening']!r}")

    def _update(self, x: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = get_array_module(x)
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        if group["maximize"]:
            g = -g
        if weight_decay:
            g = g + weight_decay * x
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = xp.array(g)  # a copy, and an array even for a 0-d g
            else:
                buf *= momentum
                buf += (1.0 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        x -= group["lr"] * g
