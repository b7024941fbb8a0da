"""ClippedAdam: Pyro's Adam with clipped gradients and a learning rate that decays every step."""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..backend import get_array_module
from .optimizer import Optimizer, check_betas, check_foreach, check_nonnegative, check_positive

__all__ = ["ClippedAdam"]


class ClippedAdam(Optimizer):
    r"""Adam with gradient clipping and learning-rate decay, as Pyro's ``pyro.optim.ClippedAdam``.

    Each step first decays the group's learning rate, :math:`\gamma_t = \gamma_{t-1} \cdot`
    ``lrd`` (so after :math:`t` steps ``group["lr"]`` is :math:`\gamma_0\,\mathrm{lrd}^t`, and
    step :math:`t` used that rate), then updates every parameter with a gradient:

    .. math::
        g_t &\leftarrow \operatorname{clip}(g_t, -c, c)             && \text{(clip\_norm } c\text{, each element)}\\
        g_t &\leftarrow g_t + \lambda x_{t-1}                       && \text{(weight\_decay } \lambda\text{, L2)}\\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2\\
        x_t &= x_{t-1} - \gamma_t \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t} \, \frac{m_t}{\sqrt{v_t} + \epsilon}

    The clipping and the placement of :math:`\epsilon` are Pyro's (and NumPyro's): despite
    its name, ``clip_norm`` bounds each gradient *element* to :math:`[-c, c]`, and
    :math:`\epsilon` is added to :math:`\sqrt{v_t}` before the bias correction (the paper's
    :math:`\hat\epsilon` form), so trajectories match Pyro's exactly. Unlike Pyro,
    ``p.grad`` itself is left unclipped. To clip by norm, call :func:`clip_grad_norm_`
    before :meth:`step`.

    Args:
        params: Tensors or parameter groups; ``None`` to add groups later.
        lr: initial learning rate :math:`\gamma_0`.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon`.
        weight_decay: L2 penalty :math:`\lambda`, added to the clipped gradient.
        clip_norm: :math:`c > 0`, the bound on each gradient element.
        lrd: learning-rate decay factor per step (> 0; 1 for none).
        foreach: update the group's parameters together (``True``), one by one (``False``), or
            decide by their sizes (``None``); see :mod:`probdl.optim.optimizer`. The numbers are the same.

    State per parameter: ``step``, ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`).

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR (2015);
    Bingham et al., "Pyro: Deep Universal Probabilistic Programming", JMLR 20 (2019).
    """

    def __init__(self, params: Iterable[Any] | None = None, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 clip_norm: float = 10.0, lrd: float = 1.0, *, foreach: bool | None = None) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, clip_norm=clip_norm,
                         lrd=lrd, foreach=foreach)

    def _check_options(self, group: dict[str, Any]) -> None:
        check_nonnegative("ClippedAdam", group, "lr", "eps", "weight_decay")
        check_positive("ClippedAdam", group, "clip_norm", "lrd")
        check_betas("ClippedAdam", group)
        check_foreach("ClippedAdam", group)

    def _step_group(self, group: dict[str, Any]) -> None:
        group["lr"] *= group["lrd"]  # first, and whether or not any parameter has a gradient, as in Pyro
        super()._step_group(group)

    def _update(self, x: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = get_array_module(x)
        (beta1, beta2), clip = group["betas"], group["clip_norm"]
        g = xp.clip(g, -clip, clip)
        if not state:
            state["step"], state["exp_avg"], state["exp_avg_sq"] = 0, xp.zeros_like(x), xp.zeros_like(x)
        t = state["step"] = state["step"] + 1
        if group["weight_decay"]:
            g += group["weight_decay"] * x
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        denom = xp.sqrt(v)
        denom += group["eps"]
        update = m / denom
        update *= group["lr"] * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
        x -= update
