"""Optimizers, learning-rate schedules and gradient clipping, with PyTorch's names and semantics.

``SGD``, ``Adam``, ``AdamW``, ``Adamax``, ``RMSprop``, ``Adagrad`` follow ``torch.optim``;
``ClippedAdam`` follows Pyro. Schedules live in ``probdl.optim.lr_scheduler``; gradient
clipping is ``clip_grad_norm_`` and ``clip_grad_value_``::

    opt = probdl.optim.Adam([w, b], lr=1e-2)
    for x, y in batches:
        opt.zero_grad()
        loss_fn(w, b, x, y).backward()
        opt.step()
"""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .clip import clip_grad_norm_, clip_grad_value_
from .clipped_adam import ClippedAdam
from .lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    StepLR,
)
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adamax", "RMSprop", "Adagrad", "ClippedAdam", "lr_scheduler",
           "LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "OneCycleLR",
           "ReduceLROnPlateau", "clip_grad_norm_", "clip_grad_value_"]
