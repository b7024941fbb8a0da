"""Adamax: Adam with the infinity norm in place of the second moment."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..backend import get_array_module
from .optimizer import Optimizer, check_betas, check_foreach, check_nonnegative

__all__ = ["Adamax"]


class Adamax(Optimizer):
    r"""Adamax, as in PyTorch.

    With gradient :math:`g_t` of parameter :math:`x_{t-1}` (negated when ``maximize``):

    .. math::
        g_t &\leftarrow g_t + \lambda x_{t-1}                       && \text{(weight\_decay } \lambda\text{, L2)}\\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t\\
        u_t &= \max(\beta_2 u_{t-1},\ |g_t| + \epsilon)\\
        x_t &= x_{t-1} - \frac{\gamma}{1 - \beta_1^t} \, \frac{m_t}{u_t}

    with :math:`m_0 = u_0 = 0`. As in PyTorch, :math:`\epsilon` sits inside the maximum
    (the paper has none), which keeps :math:`u_t > 0` when a gradient is exactly zero.

    Args:
        params: Tensors or parameter groups; ``None`` to add groups later.
        lr: learning rate :math:`\gamma`.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon`.
        weight_decay: L2 penalty :math:`\lambda`, added to the gradient.
        maximize: ascend the objective instead of descending it.
        foreach: update the group's parameters together (``True``), one by one (``False``), or
            decide by their sizes (``None``); see :mod:`probdl.optim.optimizer`. The numbers are the same.

    State per parameter: ``step``, ``exp_avg`` (:math:`m`), ``exp_inf`` (:math:`u`).

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR (2015), section 7.1.
    """

    def __init__(self, params: Iterable[Any] | None = None, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize,
                         foreach=foreach)

    def _check_options(self, group: dict[str, Any]) -> None:
        check_nonnegative("Adamax", group, "lr", "eps", "weight_decay")
        check_betas("Adamax", group)
        check_foreach("Adamax", group)

    def _update(self, x: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = get_array_module(x)
        (beta1, beta2), weight_decay = group["betas"], group["weight_decay"]
        if group["maximize"]:
            g = -g
        if not state:
            state["step"], state["exp_avg"], state["exp_inf"] = 0, xp.zeros_like(x), xp.zeros_like(x)
        t = state["step"] = state["step"] + 1
        if weight_decay:
            g = g + weight_decay * x
        m, u = state["exp_avg"], state["exp_inf"]
        m *= beta1
        m += (1.0 - beta1) * g
        u *= beta2
        a = xp.abs(g)
        a += group["eps"]
        xp.maximum(u, a, out=u)
        update = m / u
        update *= group["lr"] / (1.0 - beta1**t)
        x -= update
