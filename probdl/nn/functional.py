"""``probdl.nn.functional``: the functions behind the layers and losses (PyTorch's ``torch.nn.functional``)."""
from ..tensor import (
                     elu,
                     gelu,
                     leaky_relu,
                     log_sigmoid,
                     log_softmax,
                     one_hot,
                     relu,
                     sigmoid,
                     silu,
                     softmax,
                     softplus,
                     tanh,
)
from .conv import conv1d, conv2d
from .dropout import dropout
from .embedding import embedding
from .linear import linear
from .losses import (
                     binary_cross_entropy,
                     binary_cross_entropy_with_logits,
                     cross_entropy,
                     gaussian_nll_loss,
                     huber_loss,
                     kl_div,
                     l1_loss,
                     mse_loss,
                     nll_loss,
)
from .normalization import batch_norm, layer_norm
from .pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d

__all__ = ["linear", "relu", "tanh", "sigmoid", "silu", "gelu", "softplus", "elu", "leaky_relu", "log_sigmoid",
           "softmax", "log_softmax", "one_hot", "mse_loss", "l1_loss", "huber_loss", "cross_entropy", "nll_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "gaussian_nll_loss", "kl_div", "conv1d",
           "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "dropout", "embedding", "batch_norm",
           "layer_norm"]
