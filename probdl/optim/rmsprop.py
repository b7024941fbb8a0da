"""RMSprop: gradient scaled by a running root mean square, optionally centered and with momentum."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..backend import get_array_module
from .optimizer import Optimizer, check_foreach, check_nonnegative

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop, as in PyTorch.

    With gradient :math:`g_t` of parameter :math:`x_{t-1}` (negated when ``maximize``):

    .. math::
        g_t &\leftarrow g_t + \lambda x_{t-1}                       && \text{(weight\_decay } \lambda\text{, L2)}\\
        v_t &= \alpha v_{t-1} + (1 - \alpha) g_t^2\\
        \bar g_t &= \alpha \bar g_{t-1} + (1 - \alpha) g_t,
            \quad d_t = \sqrt{v_t - \bar g_t^2} + \epsilon      && \text{(centered)}\\
        d_t &= \sqrt{v_t} + \epsilon                             && \text{(otherwise)}\\
        b_t &= \mu b_{t-1} + g_t / d_t, \quad x_t = x_{t-1} - \gamma b_t   && \text{(momentum } \mu > 0)\\
        x_t &= x_{t-1} - \gamma\, g_t / d_t                       && \text{(otherwise)}

    with :math:`v_0 = \bar g_0 = b_0 = 0`.

    Args:
        params: Tensors or parameter groups; ``None`` to add groups later.
        lr: learning rate :math:`\gamma`.
        alpha: smoothing constant :math:`\alpha`.
        eps: :math:`\epsilon`, added to the denominator.
        weight_decay: L2 penalty :math:`\lambda`, added to the gradient.
        momentum: momentum factor :math:`\mu`.
        centered: normalize by an estimate of the gradient's variance instead of its second moment.
        maximize: ascend the objective instead of descending it.
        foreach: update the group's parameters together (``True``), one by one (``False``), or
            decide by their sizes (``None``); see :mod:`probdl.optim.optimizer`. The numbers are the same.

    State per parameter: ``step``, ``square_avg`` (:math:`v`), ``grad_avg`` (:math:`\bar g`,
    centered) and ``momentum_buffer`` (:math:`b`, momentum > 0).

    References: Tieleman & Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for
    Machine Learning (2012); Graves, "Generating Sequences With Recurrent Neural Networks",
    arXiv:1308.0850 (2013), eqs. 38-45 (the centered form).
    """

    def __init__(self, params: Iterable[Any] | None = None, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None) -> None:
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                         centered=centered, maximize=maximize, foreach=foreach)

    def _check_options(self, group: dict[str, Any]) -> None:
        check_nonnegative("RMSprop", group, "lr", "alpha", "eps", "weight_decay", "momentum")
        check_foreach("RMSprop", group)

    def _update(self, x: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = get_array_module(x)
        alpha, weight_decay, momentum = group["alpha"], group["weight_decay"], group["momentum"]
        if group["maximize"]:
            g = -g
        if not state:
            state["step"], state["square_avg"] = 0, xp.zeros_like(x)
        state["step"] += 1
        if weight_decay:
            g = g + weight_decay * x
        v = state["square_avg"]
        v *= alpha
        v += (1.0 - alpha) * (g * g)
        if group["centered"]:
            gbar = state.get("grad_avg")
            if gbar is None:
                gbar = state["grad_avg"] = xp.zeros_like(x)
            gbar *= alpha
            gbar += (1.0 - alpha) * g
            denom = xp.sqrt(v - gbar * gbar)
        else:
            denom = xp.sqrt(v)
        denom += group["eps"]
        if momentum > 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = xp.zeros_like(x)
            buf *= momentum
            buf += g / denom
            x -= group["lr"] * buf
        else:
            update = g / denom
            update *= group["lr"]
            x -= update
