"""``probdl.nn.functional``: the functions behind the layers and losses (PyTorch's ``torch.nn.functional``)."""
from ..tensor import elu, gelu, leaky_relu, log_sigmoid, log_softmax, one_hot, relu, sigmoid, silu, softmax, softplus
from ..tensor import tanh
from .linear import linear
from .losses import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, gaussian_nll_loss,
                     huber_loss, kl_div, l1_loss, mse_loss, nll_loss)

__all__ = ["linear", "relu", "tanh", "sigmoid", "silu", "gelu", "softplus", "elu", "leaky_relu", "log_sigmoid",
           "softmax", "log_softmax", "one_hot", "mse_loss", "l1_loss", "huber_loss", "cross_entropy", "nll_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "gaussian_nll_loss", "kl_div"]
