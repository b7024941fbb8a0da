"""Callbacks: code the Trainer runs at fixed points of ``fit``, for stopping, checkpointing and reporting."""
from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any

from ..tensor import Tensor

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "LearningRateMonitor", "ProgressBar"]


class Callback:
    """Base class; override any of the hooks. ``logs`` is the dict of this epoch's metrics."""

    def on_fit_start(self, trainer: Trainer, module: Any) -> None:
        pass

    def on_epoch_start(self, trainer: Trainer, module: Any, epoch: int) -> None:
        pass

    def on_train_batch_end(self, trainer: Trainer, module: Any, batch_index: int, loss: float) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, module: Any, logs: dict[str, float]) -> None:
        pass

    def on_fit_end(self, trainer: Trainer, module: Any) -> None:
        pass


def _monitored(logs: dict[str, float], monitor: str, who: str) -> float:
    if monitor not in logs:
        raise KeyError(f"{who}: monitored metric {monitor!r} is not among this epoch's metrics {sorted(logs)}; "
                       "pass val_loader to fit() for val_* metrics")
    return float(logs[monitor])


class _Improvement:
    """Tracks the best value of a metric and whether a new one improves on it by more than ``min_delta``."""

    def __init__(self, mode: str, min_delta: float, who: str) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"{who}: mode must be 'min' or 'max', got {mode!r}")
        self.mode, self.min_delta = mode, abs(min_delta)
        self.best = math.inf if mode == "min" else -math.inf

    def update(self, value: float) -> bool:
        better = value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        if better:
            self.best = value
        return better


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs;
    with ``restore_best_weights`` the module ends with the weights of its best epoch."""

    def __init__(self, monitor: str = "val_loss", mode: str = "min", patience: int = 3, min_delta: float = 0.0,
                 restore_best_weights: bool = False) -> None:
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}")
        self.monitor, self.patience, self.restore_best_weights = monitor, patience, restore_best_weights
        self._tracker = _Improvement(mode, min_delta, "EarlyStopping")
        self.wait, self.stopped_epoch, self._best_state = 0, None, None

    @property
    def best(self) -> float:
        return self._tracker.best

    def on_epoch_end(self, trainer: Trainer, module: Any, logs: dict[str, float]) -> None:
        if self._tracker.update(_monitored(logs, self.monitor, "EarlyStopping")):
            self.wait = 0
            if self.restore_best_weights:
                self._best_state = {k: Tensor._wrap(v.data.copy()) for k, v in module.state_dict().items()}
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = logs["epoch"]
            trainer.should_stop = True

    def on_fit_end(self, trainer: Trainer, module: Any) -> None:
        if self.restore_best_weights and self._best_state is not None:
            module.load_state_dict(self._best_state)


class ModelCheckpoint(Callback):
    """Save the module's ``state_dict`` (``probdl.save``, ``.npz``) whenever ``monitor`` improves
    (every epoch with ``save_best_only=False``). ``filepath`` may use the epoch's metrics,
    e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``. ``best_model_path`` and ``best_score`` tell the best."""

    def __init__(self, filepath: str, monitor: str = "val_loss", mode: str = "min",
                 save_best_only: bool = True) -> None:
        self.filepath, self.monitor, self.save_best_only = str(filepath), monitor, save_best_only
        self._tracker = _Improvement(mode, 0.0, "ModelCheckpoint")
        self.best_model_path: str | None = None

    @property
    def best_score(self) -> float:
        return self._tracker.best

    def on_epoch_end(self, trainer: Trainer, module: Any, logs: dict[str, float]) -> None:
        from ..serialization import save  # noqa: PLC0415  (only needed when a checkpoint is written)

        improved = self._tracker.update(_monitored(logs, self.monitor, "ModelCheckpoint"))
        if improved or not self.save_best_only:
            path = self.filepath.format(**logs)
            save(module.state_dict(), path)
            if improved:
                self.best_model_path = path


class LearningRateMonitor(Callback):
    """Add the learning rate of each parameter group to the epoch's metrics (``lr``, or ``lr_group{i}``)."""

    def on_epoch_end(self, trainer: Trainer, module: Any, logs: dict[str, float]) -> None:
        groups = trainer.optimizer.param_groups
        if len(groups) == 1:
            logs["lr"] = float(groups[0]["lr"])
        else:
            for i, g in enumerate(groups):
                logs[f"lr_group{i}"] = float(g["lr"])


class ProgressBar(Callback):
    """A live tqdm bar per epoch on a terminal; one plain line per epoch when output is not a terminal
    (a log file, CI), so logs stay readable."""

    def __init__(self, stream: Any = None, live: bool | None = None) -> None:
        self.stream = stream
        self.live = live
        self._bar = None
        self._start = 0.0

    def _out(self) -> Any:
        return self.stream if self.stream is not None else sys.stderr

    def on_epoch_start(self, trainer: Trainer, module: Any, epoch: int) -> None:
        self._start = time.perf_counter()
        live = self.live if self.live is not None else getattr(self._out(), "isatty", lambda: False)()
        if live:
            from tqdm.auto import tqdm  # noqa: PLC0415

            total = len(trainer.train_loader) if hasattr(trainer.train_loader, "__len__") else None
            self._bar = tqdm(total=total, desc=f"epoch {epoch + 1}/{trainer.max_epochs}", file=self._out(),
                             leave=False, dynamic_ncols=True)

    def on_train_batch_end(self, trainer: Trainer, module: Any, batch_index: int, loss: float) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def on_epoch_end(self, trainer: Trainer, module: Any, logs: dict[str, float]) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        parts = [f"epoch {logs['epoch'] + 1}/{trainer.max_epochs}"]
        parts += [f"{k} {v:.4g}" for k, v in logs.items() if k not in ("epoch", "time")]
        parts.append(f"({logs.get('time', time.perf_counter() - self._start):.2f} s)")
        print("  ".join(parts), file=self._out(), flush=True)
