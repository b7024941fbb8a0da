"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..backend import get_array_module
from .optimizer import Optimizer, check_betas, check_foreach, check_nonnegative

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam, as in PyTorch.

    With gradient :math:`g_t` of parameter :math:`x_{t-1}` (negated when ``maximize``):

    .. math::
        g_t &\leftarrow g_t + \lambda x_{t-1}                       && \text{(weight\_decay } \lambda\text{, L2)}\\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2\\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ (amsgrad), else } v_t\\
        x_t &= x_{t-1} - \frac{\gamma}{1 - \beta_1^t} \, \frac{m_t}{\sqrt{\hat v_t / (1 - \beta_2^t)} + \epsilon}

    with :math:`m_0 = v_0 = \hat v_0 = 0`.

    Args:
        params: Tensors or parameter groups; ``None`` to add groups later.
        lr: learning rate :math:`\gamma`.
        betas: :math:`(\beta_1, \beta_2)`, decay rates of the moment estimates, each in [0, 1).
        eps: :math:`\epsilon`, added to the denominator.
        weight_decay: L2 penalty :math:`\lambda`, added to the gradient (see :class:`AdamW` for
            the decoupled form).
        amsgrad: use the running maximum of :math:`v_t` (AMSGrad).
        maximize: ascend the objective instead of descending it.
        foreach: update the group's parameters together (``True``), one by one (``False``), or
            decide by their sizes (``None``); see :mod:`probdl.optim.optimizer`. The numbers are the same.

    State per parameter: ``step``, ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`) and,
    with amsgrad, ``max_exp_avg_sq`` (:math:`\hat v`).

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR (2015);
    Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR (2018).
    """

    _decoupled = False  # AdamW: decay the parameter instead of adding λx to the gradient

    def __init__(self, params: Iterable[Any] | None = None, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, maximize: bool = False, foreach: bool | None = None) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, foreach=foreach)

    def _check_options(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        check_nonnegative(name, group, "lr", "eps", "weight_decay")
        check_betas(name, group)
        check_foreach(name, group)

    def _update(self, x: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = get_array_module(x)
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        if group["maximize"]:
            g = -g
        if not state:
            state["step"], state["exp_avg"], state["exp_avg_sq"] = 0, xp.zeros_like(x), xp.zeros_like(x)
        t = state["step"] = state["step"] + 1
        if weight_decay:
            if self._decoupled:
                x *= 1.0 - lr * weight_decay
            else:
                g = g + weight_decay * x
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        if group["amsgrad"]:
            vmax = state.get("max_exp_avg_sq")
            if vmax is None:
                vmax = state["max_exp_avg_sq"] = xp.zeros_like(x)
            xp.maximum(vmax, v, out=vmax)
            v = vmax
        denom = xp.sqrt(v)
        denom *= 1.0 / math.sqrt(1.0 - beta2**t)
        denom += group["eps"]
        update = m / denom
        update *= lr / (1.0 - beta1**t)
        x -= update


class AdamW(Adam):
    r"""Adam with decoupled weight decay, as in PyTorch.

    The same update as :class:`Adam`, except that weight decay shrinks the parameter
    directly instead of entering the gradient (and so the moment estimates):

    .. math::
        x_{t-1} &\leftarrow (1 - \gamma \lambda)\, x_{t-1}\\
        x_t &= x_{t-1} - \frac{\gamma}{1 - \beta_1^t} \, \frac{m_t}{\sqrt{\hat v_t / (1 - \beta_2^t)} + \epsilon}

    Args: as :class:`Adam`, with ``weight_decay`` (:math:`\lambda`) defaulting to 1e-2.

    References: Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR (2019).
    """

    _decoupled = True

    def __init__(self, params: Iterable[Any] | None = None, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False, foreach: bool | None = None) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, foreach=foreach)
