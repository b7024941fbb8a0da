"""Adagrad: per-coordinate steps scaled by the accumulated squared gradients."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..backend import get_array_module
from .optimizer import Optimizer, check_foreach, check_nonnegative

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad, as in PyTorch.

    With gradient :math:`g_t` of parameter :math:`x_{t-1}` (negated when ``maximize``):

    .. math::
        g_t &\leftarrow g_t + \lambda x_{t-1}                       && \text{(weight\_decay } \lambda\text{, L2)}\\
        \tilde\gamma_t &= \gamma / (1 + (t - 1)\,\eta)             && \text{(lr\_decay } \eta)\\
        s_t &= s_{t-1} + g_t^2\\
        x_t &= x_{t-1} - \tilde\gamma_t \, \frac{g_t}{\sqrt{s_t} + \epsilon}

    with :math:`s_0` = ``initial_accumulator_value``.

    Args:
        params: Tensors or parameter groups; ``None`` to add groups later.
        lr: learning rate :math:`\gamma`.
        lr_decay: :math:`\eta`; the step size decays as :math:`1 / (1 + (t-1)\eta)`.
        weight_decay: L2 penalty :math:`\lambda`, added to the gradient.
        initial_accumulator_value: the starting value :math:`s_0` of the sum of squares.
        eps: :math:`\epsilon`, added to the denominator.
        maximize: ascend the objective instead of descending it.
        foreach: update the group's parameters together (``True``), one by one (``False``), or
            decide by their sizes (``None``); see :mod:`probdl.optim.optimizer`. The numbers are the same.

    State per parameter: ``step`` and ``sum`` (:math:`s`), made at the parameter's first update.

    References: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization", JMLR 12 (2011).
    """

    def __init__(self, params: Iterable[Any] | None = None, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10, *,
                 maximize: bool = False, foreach: bool | None = None) -> None:
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize,
                         foreach=foreach)

    def _check_options(self, group: dict[str, Any]) -> None:
        check_nonnegative("Adagrad", group, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")
        check_foreach("Adagrad", group)

    def _update(self, x: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = get_array_module(x)
        if group["maximize"]:
            g = -g
        if not state:
            state["step"], state["sum"] = 0, xp.full_like(x, group["initial_accumulator_value"])
        t = state["step"] = state["step"] + 1
        if group["weight_decay"]:
            g = g + group["weight_decay"] * x
        acc = state["sum"]
        acc += g * g
        denom = xp.sqrt(acc)
        denom += group["eps"]
        update = g / denom
        update *= group["lr"] / (1.0 + (t - 1) * group["lr_decay"])
        x -= update
