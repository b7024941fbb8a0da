"""Learning-rate schedules, as in ``torch.optim.lr_scheduler``.

A scheduler wraps an optimizer and sets each parameter group's ``lr`` from the group's
``initial_lr`` (recorded when the scheduler is made) and a step counter, ``last_epoch``.
Making the scheduler sets the rate for step 0; call :meth:`LRScheduler.step` after each
``optimizer.step()`` (per batch or per epoch, as the schedule is meant)::

    opt = probdl.optim.SGD(model_params, lr=0.1, momentum=0.9)
    sched = probdl.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    for epoch in range(100):
        train_one_epoch(opt)
        sched.step()

The schedules here are closed forms of ``last_epoch`` (PyTorch's ``_get_closed_form_lr``):
each ``step()`` *sets* the rate, so two schedulers on one optimizer do not compound (the
last one to step wins). :class:`ReduceLROnPlateau` is the exception: it reacts to a
metric and scales the current rate.

A parameter group added to the optimizer after the scheduler was made (as SVI does)
joins the schedule at the scheduler's next ``step()``, with its ``lr`` then as its
``initial_lr``.
"""
from __future__ import annotations

import bisect
import math
import types
from collections.abc import Callable, Sequence
from typing import Any

from .optimizer import Optimizer

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "OneCycleLR", "ReduceLROnPlateau"]


class LRScheduler:
    """Base of the schedules: subclasses give :meth:`get_lr`, the rates at step ``last_epoch``.

    Args:
        optimizer: the optimizer whose groups' ``lr`` to set.
        last_epoch: the index of the last step taken; -1 (the default) starts afresh and
            records each group's ``lr`` as its ``initial_lr``. To resume, pass the step
            reached; the groups must then already hold ``initial_lr``.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected a probdl Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr', needed to resume "
                                   f"with last_epoch={last_epoch}; load the optimizer's state_dict first, or pass "
                                   "last_epoch=-1 to start afresh")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self.step()

    def get_lr(self) -> list[float]:
        """The rate of every group at step ``last_epoch``."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one step and set every group's ``lr``."""
        self._step_count += 1
        self._adopt_new_groups()
        self.last_epoch += 1
        groups = self.optimizer.param_groups
        for group, lr in zip(groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in groups]

    def get_last_lr(self) -> list[float]:
        """The rates the last :meth:`step` set, one per parameter group."""
        return list(self._last_lr)

    def _adopt_new_groups(self) -> None:
        """Groups added to the optimizer since the last step join the schedule."""
        for group in self.optimizer.param_groups[len(self.base_lrs):]:
            group.setdefault("initial_lr", group["lr"])
            self._adopt(group)
            self.base_lrs.append(group["initial_lr"])

    def _adopt(self, group: dict[str, Any]) -> None:
        """Give a late group the per-group settings the schedule needs (a subclass's hook)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer, as plain data."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        self.__dict__.update({k: (list(v) if isinstance(v, list) else v) for k, v in state_dict.items()})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, last_lr={self._last_lr})"


class LambdaLR(LRScheduler):
    r"""The rate of each group is its initial rate times a function of the step: :math:`\gamma_0 \, f(t)`.

    Args:
        optimizer: the optimizer.
        lr_lambda: a function of the step count, or a list of them, one per group.
        last_epoch: as in :class:`LRScheduler`.

    The functions are not part of :meth:`state_dict` (functions do not pickle); for a callable
    object, its ``__dict__`` is, as in PyTorch.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"LambdaLR: expected {n} lr_lambdas (one per parameter group), got {len(lr_lambda)}")
            self._single = None
            self.lr_lambdas = list(lr_lambda)
        else:
            self._single = lr_lambda  # also scheduled onto groups added later
            self.lr_lambdas = [lr_lambda] * n
        if not all(callable(f) for f in self.lr_lambdas):
            raise TypeError("LambdaLR: lr_lambda must be a callable (or a list of callables) taking the step count")
        super().__init__(optimizer, last_epoch)

    def _adopt(self, group: dict[str, Any]) -> None:
        if self._single is None:
            raise ValueError("LambdaLR: a parameter group was added to the optimizer, but lr_lambda is a list with "
                             "one function per group; pass a single function to schedule groups added later")
        self.lr_lambdas.append(self._single)

    def get_lr(self) -> list[float]:
        return [base * f(self.last_epoch) for base, f in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        del state["_single"]
        state["lr_lambdas"] = [_attributes(f) for f in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        saved = state.pop("lr_lambdas", None) or []
        lambdas, single = self.lr_lambdas, self._single
        super().load_state_dict(state)
        self.lr_lambdas, self._single = lambdas, single
        for f, attrs in zip(lambdas, saved):
            if attrs is not None:
                vars(f).update(attrs)


class StepLR(LRScheduler):
    r"""Decay by ``gamma`` every ``step_size`` steps.

    .. math:: \gamma_t = \gamma_0 \, \text{gamma}^{\lfloor t / \text{step\_size} \rfloor}
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        if not (isinstance(step_size, int) and step_size > 0):
            raise ValueError(f"StepLR: invalid step_size={step_size!r}; expected a positive integer")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        factor = self.gamma ** (self.last_epoch // self.step_size)
        return [base * factor for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    r"""Decay by ``gamma`` at each milestone.

    .. math:: \gamma_t = \gamma_0 \, \text{gamma}^{\#\{m \in \text{milestones}:\ m \le t\}}

    A milestone listed twice decays twice, as in PyTorch.
    """

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        milestones = list(milestones)
        if not all(isinstance(m, int) and m >= 0 for m in milestones):
            raise ValueError(f"MultiStepLR: invalid milestones={milestones!r}; expected integers >= 0")
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        factor = self.gamma ** bisect.bisect_right(self.milestones, self.last_epoch)
        return [base * factor for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    r"""Decay by ``gamma`` every step: :math:`\gamma_0 \, \text{gamma}^t`."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        factor = self.gamma**self.last_epoch
        return [base * factor for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the initial rate to ``eta_min`` over ``T_max`` steps.

    .. math::
        \gamma_t = \eta_{\min} + \tfrac12 (\gamma_0 - \eta_{\min}) \left(1 + \cos\frac{\pi t}{T_{\max}}\right)

    Past ``T_max`` the cosine continues, so the rate climbs back (period ``2 * T_max``),
    as in PyTorch.

    References: Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR (2017).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        if not (isinstance(T_max, int) and T_max > 0):
            raise ValueError(f"CosineAnnealingLR: invalid T_max={T_max!r}; expected a positive integer")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        c = 0.5 * (1.0 + math.cos(math.pi * self.last_epoch / self.T_max))
        return [self.eta_min + (base - self.eta_min) * c for base in self.base_lrs]


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy: warm up from ``max_lr / div_factor`` to ``max_lr``, then anneal far below, as in PyTorch.

    Over ``total_steps`` steps (or ``epochs * steps_per_epoch``), with
    :math:`\gamma_{\text{init}} = \text{max\_lr}/\text{div\_factor}` and
    :math:`\gamma_{\min} = \gamma_{\text{init}}/\text{final\_div\_factor}`, the rate moves
    through these phases, each annealed by ``anneal_strategy``
    (``"cos"``: :math:`b + \tfrac12 (a - b)(1 + \cos \pi u)`; ``"linear"``: :math:`a + (b - a) u`,
    for :math:`u` going from 0 to 1 across the phase):

    - two phases: :math:`\gamma_{\text{init}} \to \text{max\_lr}` until step
      ``pct_start * total_steps - 1``, then :math:`\text{max\_lr} \to \gamma_{\min}` until
      step ``total_steps - 1``;
    - ``three_phase``: :math:`\gamma_{\text{init}} \to \text{max\_lr} \to \gamma_{\text{init}}`
      symmetrically (ending at step ``2 * pct_start * total_steps - 2``), then
      :math:`\gamma_{\text{init}} \to \gamma_{\min}`.

    With ``cycle_momentum``, the momentum (SGD's and RMSprop's ``momentum``, or Adam's
    :math:`\beta_1`) moves the opposite way, between ``max_momentum`` and ``base_momentum``.
    Stepping past ``total_steps`` is an error.

    References: Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks Using
    Large Learning Rates", arXiv:1708.07120 (2017).
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | Sequence[float] = 0.85, max_momentum: float | Sequence[float] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"OneCycleLR: expected a probdl Optimizer, got {type(optimizer).__name__}")
        if total_steps is not None:
            if not (isinstance(total_steps, int) and total_steps > 0):
                raise ValueError(f"OneCycleLR: invalid total_steps={total_steps!r}; expected a positive integer")
        elif epochs is not None and steps_per_epoch is not None:
            for name, v in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
                if not (isinstance(v, int) and v > 0):
                    raise ValueError(f"OneCycleLR: invalid {name}={v!r}; expected a positive integer")
            total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("OneCycleLR: give total_steps, or both epochs and steps_per_epoch")
        if not (isinstance(pct_start, float) and 0.0 <= pct_start <= 1.0):
            raise ValueError(f"OneCycleLR: invalid pct_start={pct_start!r}; expected a float in [0, 1]")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: invalid anneal_strategy={anneal_strategy!r}; expected 'cos' or 'linear'")
        self.total_steps = total_steps
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = cycle_momentum
        self.div_factor, self.final_div_factor = div_factor, final_div_factor
        up = float(pct_start * total_steps) - 1
        if three_phase:  # (end step, start, end of lr, start, end of momentum)
            self._phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                            (float(2 * pct_start * total_steps) - 2, "max_lr", "initial_lr", "base_momentum",
                             "max_momentum"),
                            (total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self._phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                            (total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        groups = optimizer.param_groups
        self._max_lr, self._base_momentum, self._max_momentum = max_lr, base_momentum, max_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"OneCycleLR: cycle_momentum=True needs an optimizer with momentum or betas; "
                                 f"{type(optimizer).__name__} has neither (pass cycle_momentum=False)")
            self.use_beta1 = "betas" in optimizer.defaults
        if last_epoch == -1:
            for i, group in enumerate(groups):
                self._init_group(group, i, len(groups))
        super().__init__(optimizer, last_epoch)

    def _init_group(self, group: dict[str, Any], i: int, n: int) -> None:
        max_lr = _per_group("OneCycleLR", "max_lr", self._max_lr, i, n)
        group["initial_lr"] = max_lr / self.div_factor
        group["max_lr"] = max_lr
        group["min_lr"] = group["initial_lr"] / self.final_div_factor
        if self.cycle_momentum:
            top = _per_group("OneCycleLR", "max_momentum", self._max_momentum, i, n)
            group["max_momentum"] = top
            group["base_momentum"] = _per_group("OneCycleLR", "base_momentum", self._base_momentum, i, n)
            self._set_momentum(group, top)

    def _adopt(self, group: dict[str, Any]) -> None:
        for name in ("max_lr", "base_momentum", "max_momentum"):
            if isinstance(getattr(self, "_" + name), (list, tuple)):
                raise ValueError(f"OneCycleLR: a parameter group was added to the optimizer, but {name} is a list "
                                 "with one value per group; pass a single value to schedule groups added later")
        self._init_group(group, 0, 1)

    def _set_momentum(self, group: dict[str, Any], momentum: float) -> None:
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def _anneal(self, start: float, end: float, u: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * u) + 1)
        return (end - start) * u + start

    def get_lr(self) -> list[float]:
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {t} times, past total_steps={self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            begin = 0.0
            for k, (end, lr0, lr1, m0, m1) in enumerate(self._phases):
                if t <= end or k == len(self._phases) - 1:
                    u = (t - begin) / (end - begin)
                    lrs.append(self._anneal(group[lr0], group[lr1], u))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[m0], group[m1], u))
                    break
                begin = end
        return lrs


class ReduceLROnPlateau(LRScheduler):
    r"""Scale the rate by ``factor`` when a metric has stopped improving, as in PyTorch.

    Call ``step(metric)`` once per evaluation. The metric improves when it beats the best
    so far by the threshold: in ``"min"`` mode, :math:`a < \text{best}\,(1 - \text{threshold})`
    (``"rel"``) or :math:`a < \text{best} - \text{threshold}` (``"abs"``); mirrored in
    ``"max"`` mode. After more than ``patience`` steps in a row without improvement, every
    group's rate becomes :math:`\max(\gamma \cdot \text{factor}, \text{min\_lr})` (a change
    smaller than ``eps`` is skipped), and the next ``cooldown`` steps count no bad steps.

    Args:
        optimizer: the optimizer.
        mode: ``"min"`` (lower is better) or ``"max"``.
        factor: the scale, in (0, 1).
        patience: how many bad steps in a row are tolerated.
        threshold: the margin of a real improvement.
        threshold_mode: ``"rel"`` or ``"abs"``.
        cooldown: steps after a reduction during which bad steps are not counted.
        min_lr: a lower bound on the rate, or a list of bounds, one per group.
        eps: the smallest change of rate that is applied.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ReduceLROnPlateau: expected a probdl Optimizer, got {type(optimizer).__name__}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: invalid mode={mode!r}; expected 'min' or 'max'")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: invalid threshold_mode={threshold_mode!r}; expected 'rel' or 'abs'")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: invalid factor={factor!r}; expected a number in (0, 1)")
        for name, v in (("patience", patience), ("cooldown", cooldown)):
            if not (isinstance(v, int) and v >= 0):
                raise ValueError(f"ReduceLROnPlateau: invalid {name}={v!r}; expected an integer >= 0")
        n = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n:
                raise ValueError(f"ReduceLROnPlateau: expected {n} min_lrs (one per parameter group), "
                                 f"got {len(min_lr)}")
            self.default_min_lr, self.min_lrs = None, list(min_lr)
        else:
            self.default_min_lr, self.min_lrs = min_lr, [min_lr] * n
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = cooldown, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, a: float, best: float) -> bool:
        """Whether metric ``a`` improves on ``best`` by more than the threshold."""
        if self.mode == "min":
            return a < best * (1.0 - self.threshold) if self.threshold_mode == "rel" else a < best - self.threshold
        return a > best * (1.0 + self.threshold) if self.threshold_mode == "rel" else a > best + self.threshold

    def step(self, metrics: Any) -> None:  # type: ignore[override]
        """Record one value of the metric (a number or a one-element Tensor) and reduce the rate if it stalled."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(self.min_lrs) != len(groups):
            if self.default_min_lr is None:
                raise ValueError(f"ReduceLROnPlateau: the optimizer now has {len(groups)} parameter groups but "
                                 f"min_lr lists {len(self.min_lrs)}; set min_lrs to one value per group")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new


def _attributes(f: Callable) -> dict | None:
    """The attributes of a callable object (its saveable state); ``None`` for a plain function."""
    if isinstance(f, types.FunctionType) or not hasattr(f, "__dict__"):
        return None
    return dict(vars(f))


def _per_group(owner: str, name: str, value: Any, i: int, n: int) -> float:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{owner}: expected {n} values of {name} (one per parameter group), got {len(value)}")
        return value[i]
    return value
