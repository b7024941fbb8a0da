"""The built-in training loop: Trainer, callbacks and metrics."""
from .callbacks import Callback, EarlyStopping, LearningRateMonitor, ModelCheckpoint, ProgressBar
from .metrics import accuracy
from .trainer import Trainer
