"""Fitting a module's parameters by minimizing a loss: SciPy's L-BFGS-B or any probdl optimizer.

L-BFGS-B (Byrd, Lu, Nocedal & Zhu, "A limited memory algorithm for bound constrained optimization", SIAM J.
Sci. Comput. 16, 1995) works on the concatenated unconstrained parameters; the loss and its gradient come
from one forward and one backward pass of the engine per evaluation. It is the usual choice for a GP's few
hyperparameters and a full-batch objective; a stochastic optimizer (Adam) is the choice for mini-batches.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize

from ..nn.module import Module
from ..optim.optimizer import Optimizer
from ..tensor import Tensor

__all__ = ["fit_module"]


def _loss_value(loss: Any, who: str) -> Tensor:
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise TypeError(f"{who}: the loss function must return a scalar Tensor, got {type(loss).__name__}")
    return loss


def fit_module(module: Module, loss_fn: Callable[[], Tensor], method: str | Optimizer = "lbfgs",
               num_steps: int = 1000, tol: float = 1e-9, who: str = "fit") -> list[float]:
    """Minimize ``loss_fn()`` over the parameters of ``module`` that require grad; returns the losses seen.

    ``method="lbfgs"``: SciPy's L-BFGS-B for at most ``num_steps`` iterations (stopping when the relative
    decrease is below ``tol``). An Optimizer instance: ``num_steps`` steps of it (it must hold the module's
    parameters). The parameters are left at the last point (L-BFGS-B: its optimum).
    """
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{who}: {type(module).__name__} has no parameters that require grad")
    if int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"{who}: num_steps must be a positive integer, got {num_steps!r}")
    losses: list[float] = []
    if isinstance(method, Optimizer):
        for _ in range(int(num_steps)):
            method.zero_grad()
            loss = _loss_value(loss_fn(), who)
            loss.backward()
            method.step()
            losses.append(float(loss.data))
        return losses
    if method != "lbfgs":
        raise ValueError(f"{who}: method must be 'lbfgs' or a probdl Optimizer, got {method!r}")
    shapes = [p.data.shape for p in params]
    sizes = [p.data.size for p in params]
    splits = np.cumsum(sizes)[:-1]

    def set_params(x: np.ndarray) -> None:
        for p, chunk, shape in zip(params, np.split(x, splits), shapes):
            p.data[...] = chunk.reshape(shape)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        set_params(x)
        for p in params:
            p.grad = None
        loss = _loss_value(loss_fn(), who)
        value = float(loss.data)
        losses.append(value)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(x)
        loss.backward()
        grad = np.concatenate([np.zeros(p.data.size) if p.grad is None else np.asarray(p.grad.data).ravel()
                               for p in params])
        return value, grad

    x0 = np.concatenate([np.asarray(p.data, dtype=np.float64).ravel() for p in params])
    result = minimize(fun, x0, jac=True, method="L-BFGS-B", options={"maxiter": int(num_steps), "ftol": tol})
    set_params(result.x)
    for p in params:
        p.grad = None
    return losses
