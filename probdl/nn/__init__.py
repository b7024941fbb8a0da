"""Neural-network modules, layers, initialisation and losses (PyTorch's ``torch.nn``, on probdl's engine)."""
from . import functional, init
from .activation import ELU, GELU, LeakyReLU, LogSoftmax, ReLU, SiLU, Sigmoid, Softmax, Softplus, Tanh
from .containers import ModuleDict, ModuleList, Sequential
from .linear import Flatten, Identity, Linear
from .losses import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, GaussianNLLLoss, HuberLoss, KLDivLoss, L1Loss,
                     MSELoss, NLLLoss)
from .module import Module, Parameter
