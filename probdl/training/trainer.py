"""The Trainer: the built-in training loop for users who want ``fit`` rather than writing the loop.

It is a few dozen lines over the same pieces a hand-written loop uses (``module(x)``,
``loss.backward()``, ``optimizer.step()``), so the two stay interchangeable.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from ..optim.lr_scheduler import ReduceLROnPlateau
from ..tensor import Tensor, concatenate, no_grad
from .callbacks import Callback, ProgressBar

__all__ = ["Trainer"]


def _split(batch: Any) -> tuple[tuple, Any]:
    """A batch ``(x, y)`` or ``(x1, x2, ..., y)`` → (inputs, target)."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return tuple(batch[:-1]), batch[-1]
    raise TypeError(f"Trainer: a training batch must be a tuple (inputs..., target), got {type(batch).__name__}; "
                    "use a DataLoader over a TensorDataset(x, y) or a custom collate_fn")


def _size(target: Any) -> int:
    return len(target) if hasattr(target, "__len__") and getattr(target, "ndim", 1) > 0 else 1


class Trainer:
    """Fit a module with a loss and an optimizer, epoch by epoch, with validation, metrics and callbacks.

    Args:
        max_epochs: number of passes over the training data.
        callbacks: :class:`Callback` objects (EarlyStopping, ModelCheckpoint, LearningRateMonitor, ...).
        progress_bar: add a :class:`ProgressBar` (a live bar on a terminal, plain lines otherwise).
        gradient_clip_norm: clip the total gradient norm to this value before each step.

    After ``fit``, ``history`` holds one dict per epoch of that fit: ``epoch``, ``train_loss``, ``train_<metric>``,
    ``val_loss``, ``val_<metric>`` (with a validation loader), ``time``, and what callbacks add.

    Example::

        trainer = Trainer(max_epochs=10, callbacks=[EarlyStopping(patience=2)])
        trainer.fit(model, train_loader, val_loader, loss_fn=nn.CrossEntropyLoss(),
                    optimizer=optim.Adam(lr=1e-3), metrics={"accuracy": accuracy})
    """

    def __init__(self, max_epochs: int = 10, callbacks: Iterable[Callback] = (), progress_bar: bool = True,
                 gradient_clip_norm: float | None = None) -> None:
        if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
            raise ValueError(f"Trainer: max_epochs must be a positive int, got {max_epochs!r}")
        self.max_epochs = max_epochs
        self.callbacks = list(callbacks)
        if progress_bar and not any(isinstance(c, ProgressBar) for c in self.callbacks):
            self.callbacks.append(ProgressBar())
        self.gradient_clip_norm = gradient_clip_norm
        self.history: list[dict[str, float]] = []
        self.should_stop = False
        self.loss_fn: Callable | None = None
        self.optimizer: Any = None
        self.scheduler: Any = None
        self.metrics: dict[str, Callable] = {}
        self.train_loader: Any = None

    # ------------------------------------------------------------------ fit
    def fit(self, module: Any, train_loader: Iterable, val_loader: Iterable | None = None, *,
            loss_fn: Callable, optimizer: Any, scheduler: Any = None,
            metrics: dict[str, Callable] | None = None) -> list[dict[str, float]]:
        """Train ``module`` and return ``history``.

        ``optimizer`` may be built without parameters (``optim.Adam(lr=1e-3)``): the module's are added.
        ``scheduler`` is stepped once per epoch (``ReduceLROnPlateau`` with ``val_loss``, or
        ``train_loss`` without a validation loader).
        """
        if loss_fn is None or optimizer is None:
            raise ValueError("Trainer.fit: pass loss_fn= and optimizer=")
        self.loss_fn, self.optimizer, self.scheduler = loss_fn, optimizer, scheduler
        self.metrics = dict(metrics or {})
        self.train_loader = train_loader
        self._attach_parameters(module, optimizer)
        self.should_stop = False
        self.history = []  # one fit's epochs
        for cb in self.callbacks:
            cb.on_fit_start(self, module)
        for epoch in range(self.max_epochs):
            start = time.perf_counter()
            for cb in self.callbacks:
                cb.on_epoch_start(self, module, epoch)
            logs: dict[str, float] = {"epoch": epoch}
            logs.update(self._train_epoch(module, train_loader))
            if val_loader is not None:
                logs.update(self.validate(module, val_loader))
            logs["time"] = time.perf_counter() - start
            for cb in self.callbacks:  # before the scheduler steps: callbacks see the rate this epoch used
                cb.on_epoch_end(self, module, logs)
            self._step_scheduler(logs)
            self.history.append(logs)
            if self.should_stop:
                break
        for cb in self.callbacks:
            cb.on_fit_end(self, module)
        return self.history

    @staticmethod
    def _attach_parameters(module: Any, optimizer: Any) -> None:
        have = {id(p) for g in optimizer.param_groups for p in g["params"]}
        new = [p for p in module.parameters() if id(p) not in have]
        if new and not have:
            optimizer.add_param_group({"params": new})
        elif not have and not new:
            raise ValueError("Trainer.fit: the module has no parameters to train")

    def _train_epoch(self, module: Any, loader: Iterable) -> dict[str, float]:
        module.train()
        totals: dict[str, float] = {}
        count = 0
        for i, batch in enumerate(loader):
            inputs, target = _split(batch)
            self.optimizer.zero_grad()
            output = module(*inputs)
            loss = self.loss_fn(output, target)
            loss.backward()
            if self.gradient_clip_norm is not None:
                from ..optim import clip_grad_norm_  # noqa: PLC0415

                clip_grad_norm_(module.parameters(), self.gradient_clip_norm)
            self.optimizer.step()
            n = _size(target)
            count += n
            value = float(loss.item())
            totals["loss"] = totals.get("loss", 0.0) + value * n
            for name, fn in self.metrics.items():
                totals[name] = totals.get(name, 0.0) + float(fn(output.detach(), target)) * n
            for cb in self.callbacks:
                cb.on_train_batch_end(self, module, i, value)
        if count == 0:
            raise ValueError("Trainer.fit: the training loader yielded no batches")
        return {f"train_{k}": v / count for k, v in totals.items()}

    def _step_scheduler(self, logs: dict[str, float]) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(logs.get("val_loss", logs["train_loss"]))
        else:
            self.scheduler.step()

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, module: Any, loader: Iterable, prefix: str, loss_fn: Callable | None,
                  metrics: dict[str, Callable] | None) -> dict[str, float]:
        loss_fn = loss_fn or self.loss_fn
        metrics = self.metrics if metrics is None else metrics
        if loss_fn is None:
            raise ValueError(f"Trainer: pass loss_fn= to {prefix and prefix.rstrip('_') or 'evaluate'}, or fit first")
        was_training = module.training
        module.eval()
        totals: dict[str, float] = {}
        count = 0
        with no_grad():
            for batch in loader:
                inputs, target = _split(batch)
                output = module(*inputs)
                n = _size(target)
                count += n
                totals["loss"] = totals.get("loss", 0.0) + float(loss_fn(output, target).item()) * n
                for name, fn in metrics.items():
                    totals[name] = totals.get(name, 0.0) + float(fn(output, target)) * n
        module.train(was_training)
        if count == 0:
            raise ValueError(f"Trainer: the {prefix.rstrip('_')} loader yielded no batches")
        return {f"{prefix}{k}": v / count for k, v in totals.items()}

    def validate(self, module: Any, loader: Iterable, loss_fn: Callable | None = None,
                 metrics: dict[str, Callable] | None = None) -> dict[str, float]:
        """Mean loss and metrics over ``loader`` in eval mode without gradients: ``val_loss``, ``val_<metric>``."""
        return self._evaluate(module, loader, "val_", loss_fn, metrics)

    def test(self, module: Any, loader: Iterable, loss_fn: Callable | None = None,
             metrics: dict[str, Callable] | None = None) -> dict[str, float]:
        """As :meth:`validate`, with keys ``test_loss``, ``test_<metric>``."""
        return self._evaluate(module, loader, "test_", loss_fn, metrics)

    def predict(self, module: Any, loader: Iterable) -> Tensor:
        """The module's outputs over ``loader`` (eval mode, no gradients), concatenated along the batch dim.

        A batch may be the inputs alone, or a tuple whose last element (the target) is ignored.
        """
        was_training = module.training
        module.eval()
        outputs = []
        with no_grad():
            for batch in loader:
                if isinstance(batch, (tuple, list)):
                    inputs = tuple(batch[:-1]) if len(batch) >= 2 else tuple(batch)
                else:
                    inputs = (batch,)
                outputs.append(module(*inputs))
        module.train(was_training)
        if not outputs:
            raise ValueError("Trainer.predict: the loader yielded no batches")
        return concatenate(outputs, 0)
