"""Recurrent layers: ``LSTMCell``, ``GRUCell``, and the multi-layer, optionally bidirectional ``LSTM`` and ``GRU``.

Parameter names, shapes, gate orders, state layouts and initialisation are PyTorch's, so a
``state_dict`` moves between the two unchanged. With hidden size H, the LSTM gates (i, f, g, o)
and the GRU gates (r, z, n) are stacked along the first dim of ``weight_ih`` / ``weight_hh``::

    LSTM                                   GRU
    i = σ(W_ii x + b_ii + W_hi h + b_hi)    r = σ(W_ir x + b_ir + W_hr h + b_hr)
    f = σ(W_if x + b_if + W_hf h + b_hf)    z = σ(W_iz x + b_iz + W_hz h + b_hz)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg) n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    o = σ(W_io x + b_io + W_ho h + b_ho)    h' = (1 - z) ⊙ n + z ⊙ h
    c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c')

Each layer projects the whole input sequence with one matrix product; only the recurrent
part runs as a Python loop over time steps.

References:
    Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997.
    Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for Statistical
    Machine Translation", EMNLP 2014 (the GRU).
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..backend import as_generator, get_array_module, get_default_dtype
from ..tensor import Tensor, concatenate, sigmoid, stack, tanh
from ..tensor.ops.base import to_tensor
from . import init
from ._validation import positive_int
from .dropout import dropout as _dropout
from .linear import linear
from .module import Module, Parameter

__all__ = ["LSTMCell", "GRUCell", "LSTM", "GRU"]


# ------------------------------------------------------------------ the steps
def _lstm_step(gates: Tensor, c: Tensor, hidden_size: int) -> tuple[Tensor, Tensor]:
    """(h', c') from the summed gate pre-activations (N, 4H), gate order i, f, g, o."""
    H = hidden_size
    s = sigmoid(gates)
    i, f, o = s[..., :H], s[..., H:2 * H], s[..., 3 * H:]
    c = f * c + i * tanh(gates[..., 2 * H:3 * H])
    return o * tanh(c), c


def _gru_step(gx: Tensor, gh: Tensor, h: Tensor, hidden_size: int) -> Tensor:
    """h' from the input part ``gx = W_ih x + b_ih`` and the hidden part ``gh = W_hh h + b_hh`` (N, 3H),
    gate order r, z, n; b_hn stays inside the reset gate's product, as in PyTorch."""
    H = hidden_size
    rz = sigmoid(gx[..., :2 * H] + gh[..., :2 * H])
    r, z = rz[..., :H], rz[..., H:]
    n = tanh(gx[..., 2 * H:] + r * gh[..., 2 * H:])
    return n + z * (h - n)  # = (1 - z) n + z h


def _unbind(x: Tensor) -> list[Tensor]:
    """``[x[0], x[1], ...]``: the time steps. Backward adds the steps' gradients into one buffer, so
    this costs O(L) for L steps."""
    return [x[t] for t in range(x.shape[0])]


# ------------------------------------------------------------------ argument checks
def _check_state(cls: str, what: str, t: Any, shape: tuple[int, ...]) -> Tensor:
    t = to_tensor(t)
    if t.shape != shape:
        raise ValueError(f"{cls}: expected {what} of shape {shape}, got {t.shape}")
    return t


def _zeros(shape: tuple[int, ...], like: Tensor) -> Tensor:
    return Tensor._wrap(get_array_module(like.data).zeros(shape, dtype=like.dtype))


# ------------------------------------------------------------------ cells
class _CellBase(Module):
    _gates = 0

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, dtype: Any = None,
                 rng: Any = None) -> None:
        super().__init__()
        cls = type(self).__name__
        self.input_size = positive_int("input_size", input_size, cls)
        self.hidden_size = positive_int("hidden_size", hidden_size, cls)
        self.bias = bool(bias)
        dt = dtype or get_default_dtype()
        G = self._gates * self.hidden_size
        self.weight_ih = Parameter(np.empty((G, self.input_size), dtype=dt))
        self.weight_hh = Parameter(np.empty((G, self.hidden_size), dtype=dt))
        if self.bias:
            self.bias_ih = Parameter(np.empty(G, dtype=dt))
            self.bias_hh = Parameter(np.empty(G, dtype=dt))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """Every weight and bias from U(-1/√H, 1/√H), as PyTorch."""
        k, gen = 1.0 / math.sqrt(self.hidden_size), as_generator(rng)
        for p in self.parameters():
            init.uniform_(p, -k, k, rng=gen)

    def _input(self, x: Any) -> tuple[Tensor, bool]:
        """The input as (N, input_size), and whether it came with a batch dim."""
        cls, x = type(self).__name__, to_tensor(x)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{cls}: expected an input of shape (N, {self.input_size}) or ({self.input_size},), "
                             f"got shape {x.shape}")
        return (x, True) if x.ndim == 2 else (x.reshape(1, -1), False)

    def _state(self, t: Any, what: str, x: Tensor, batched: bool) -> Tensor:
        H, N = self.hidden_size, x.shape[0]
        if t is None:
            return _zeros((N, H), x)
        t = _check_state(type(self).__name__, what, t, (N, H) if batched else (H,))
        return t if batched else t.reshape(1, H)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class LSTMCell(_CellBase):
    """One LSTM step: ``(h', c') = cell(x, (h, c))``.

    Args:
        input_size, hidden_size: I and H.
        bias: learn ``bias_ih`` and ``bias_hh`` (4H,).
        dtype: of the parameters; rng: for their initialisation, U(-1/√H, 1/√H).

    Shapes: input (N, I) or unbatched (I,); h and c (N, H) or (H,), zeros when ``hx`` is None.
    Parameters: ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), gate order i, f, g, o.
    """

    _gates = 4

    def forward(self, input: Any, hx: tuple[Any, Any] | None = None) -> tuple[Tensor, Tensor]:
        x, batched = self._input(input)
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ValueError("LSTMCell: hx must be a tuple (h, c) or None")
        h = self._state(None if hx is None else hx[0], "hx[0] (h)", x, batched)
        c = self._state(None if hx is None else hx[1], "hx[1] (c)", x, batched)
        gates = linear(x, self.weight_ih, self.bias_ih) + linear(h, self.weight_hh, self.bias_hh)
        h, c = _lstm_step(gates, c, self.hidden_size)
        return (h, c) if batched else (h.reshape(-1), c.reshape(-1))


class GRUCell(_CellBase):
    """One GRU step: ``h' = cell(x, h)``.

    Args:
        input_size, hidden_size: I and H.
        bias: learn ``bias_ih`` and ``bias_hh`` (3H,).
        dtype: of the parameters; rng: for their initialisation, U(-1/√H, 1/√H).

    Shapes: input (N, I) or unbatched (I,); h (N, H) or (H,), zeros when ``hx`` is None.
    Parameters: ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), gate order r, z, n.
    """

    _gates = 3

    def forward(self, input: Any, hx: Any = None) -> Tensor:
        x, batched = self._input(input)
        h = self._state(hx, "hx", x, batched)
        h = _gru_step(linear(x, self.weight_ih, self.bias_ih), linear(h, self.weight_hh, self.bias_hh), h,
                      self.hidden_size)
        return h if batched else h.reshape(-1)


# ------------------------------------------------------------------ multi-layer sequences
class _RNNBase(Module):
    """What LSTM and GRU share: parameters per layer and direction, input and state layouts, stacking."""

    _gates = 0

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *,
                 dtype: Any = None, rng: Any = None) -> None:
        super().__init__()
        cls = type(self).__name__
        self.input_size = positive_int("input_size", input_size, cls)
        self.hidden_size = positive_int("hidden_size", hidden_size, cls)
        self.num_layers = positive_int("num_layers", num_layers, cls)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"{cls}: dropout should be a number in [0, 1] (the probability of zeroing an element "
                             f"between layers), got {dropout!r}")
        if dropout > 0 and self.num_layers == 1:
            warnings.warn(f"{cls}: dropout={dropout} acts only between layers, so with num_layers=1 it does nothing",
                          stacklevel=2)
        self.bias, self.batch_first, self.bidirectional = bool(bias), bool(batch_first), bool(bidirectional)
        self.dropout = float(dropout)
        # The generator this layer owns (None: the global one) draws the dropout masks after the initial weights.
        self.rng = None if rng is None else as_generator(rng)
        dt = dtype or get_default_dtype()
        H, G, D = self.hidden_size, self._gates * self.hidden_size, self.num_directions
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else D * H
            for d in range(D):
                sfx = self._suffix(layer, d)
                setattr(self, "weight_ih" + sfx, Parameter(np.empty((G, in_size), dtype=dt)))
                setattr(self, "weight_hh" + sfx, Parameter(np.empty((G, H), dtype=dt)))
                if self.bias:
                    setattr(self, "bias_ih" + sfx, Parameter(np.empty(G, dtype=dt)))
                    setattr(self, "bias_hh" + sfx, Parameter(np.empty(G, dtype=dt)))
        self.reset_parameters(self.rng)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction else "")

    def _layer_params(self, layer: int, direction: int) -> list[Parameter | None]:
        sfx = self._suffix(layer, direction)
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return [self._parameters.get(n + sfx) for n in names]

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """[weight_ih, weight_hh, (bias_ih, bias_hh)] for each layer and direction, as PyTorch."""
        return [[p for p in self._layer_params(layer, d) if p is not None]
                for layer in range(self.num_layers) for d in range(self.num_directions)]

    def reset_parameters(self, rng: Any = None) -> None:
        """Every weight and bias from U(-1/√H, 1/√H), as PyTorch."""
        k, gen = 1.0 / math.sqrt(self.hidden_size), as_generator(rng)
        for p in self.parameters():
            init.uniform_(p, -k, k, rng=gen)

    def flatten_parameters(self) -> None:
        """Does nothing: PyTorch packs the weights for cuDNN here; probdl has nothing to pack."""

    def _direction(self, x: Tensor, params: list, h: Tensor, c: Tensor | None, reverse: bool) -> tuple[Tensor, ...]:
        """One layer in one direction over the time-major input x (L, N, ·) from the states h (and c):
        (output (L, N, H), h_n) for a GRU, (output, h_n, c_n) for an LSTM."""
        raise NotImplementedError

    def _run(self, input: Any, states: list[Any], names: list[str]) -> tuple[Tensor, list[Tensor]]:
        """Check the input and initial states, run every layer and direction, and lay the results out."""
        cls, x = type(self).__name__, to_tensor(input)
        layout = "(N, L, input_size)" if self.batch_first else "(L, N, input_size)"
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size or 0 in x.shape:
            raise ValueError(f"{cls}: expected a non-empty input of shape {layout}, or (L, input_size) unbatched, "
                             f"with input_size={self.input_size}, got shape {x.shape}")
        batched = x.ndim == 3
        if not batched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)  # time-major from here on
        N, H, D = x.shape[1], self.hidden_size, self.num_directions
        state_shape = (self.num_layers * D, N, H) if batched else (self.num_layers * D, H)
        given: list[Tensor | None] = []
        for s, name in zip(states, names):
            if s is None:
                given.append(None)
                continue
            s = to_tensor(s)
            if s.ndim != len(state_shape):
                kind = "batched 3-D" if batched else "unbatched 2-D"
                raise ValueError(f"{cls}: for {kind} input, {name} should be {len(state_shape)}-D, got shape {s.shape}")
            s = _check_state(cls, name, s, state_shape)
            given.append(s if batched else s.unsqueeze(1))
        finals: list[list[Tensor]] = [[] for _ in states]
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                k = layer * D + d
                start = [_zeros((N, H), x) if s is None else s[k] for s in given]  # [h0] or [h0, c0]
                c0 = start[1] if len(start) > 1 else None
                out, *last = self._direction(x, self._layer_params(layer, d), start[0], c0, reverse=d == 1)
                outs.append(out)
                for f, t in zip(finals, last):
                    f.append(t)
            x = outs[0] if D == 1 else concatenate(outs, axis=-1)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                x = _dropout(x, self.dropout, True, self.rng)
        final = [stack(f, axis=0) for f in finals]
        if not batched:
            return x.squeeze(1), [f.squeeze(1) for f in final]
        return (x.transpose(0, 1) if self.batch_first else x), final

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


_SEQUENCE_DOC = """
    Args:
        input_size, hidden_size: I and H.
        num_layers: stacked layers; layer k > 0 reads the outputs of layer k - 1.
        bias: learn ``bias_ih_l{{k}}`` and ``bias_hh_l{{k}}``.
        batch_first: input and output are (N, L, ·) instead of (L, N, ·); the states are not affected.
        dropout: probability of dropout on the outputs of every layer but the last, in training mode.
        bidirectional: also run each layer backwards in time (parameters ``*_l{{k}}_reverse``); the outputs of
            both directions are concatenated, so D = 2 and layer k > 0 reads 2H features.
        dtype: of the parameters.
        rng: initialises the parameters, U(-1/√H, 1/√H), and then draws the dropout masks (``None``: the
            global generator).

    Shapes: input (L, N, I) (or (N, L, I) with ``batch_first``), or unbatched (L, I); {states} of shape
    (num_layers·D, N, H), or (num_layers·D, H) unbatched, zeros when not given; output (L, N, D·H) with
    the last layer's hidden state at every step.
"""


class LSTM(_RNNBase):
    """A multi-layer long short-term memory network: ``output, (h_n, c_n) = lstm(input, (h_0, c_0))``.

    Parameters per layer k: ``weight_ih_l{k}`` (4H, I or D·H), ``weight_hh_l{k}`` (4H, H), ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (4H,), gate order i, f, g, o.
    """

    __doc__ += _SEQUENCE_DOC.format(states="h_0, c_0, h_n and c_n")
    _gates = 4

    def _direction(self, x, params, h, c, reverse):
        w_ih, w_hh, b_ih, b_hh = params
        L, N = x.shape[:2]
        bias = None if b_ih is None else b_ih + b_hh  # both biases add, so add them once to the projection
        steps = _unbind(linear(x.reshape(L * N, -1), w_ih, bias).reshape(L, N, -1))
        out = [None] * L
        for t in (range(L - 1, -1, -1) if reverse else range(L)):
            h, c = _lstm_step(steps[t] + linear(h, w_hh), c, self.hidden_size)
            out[t] = h
        return stack(out, axis=0), h, c

    def forward(self, input: Any, hx: tuple[Any, Any] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ValueError("LSTM: hx must be a tuple (h_0, c_0) or None")
        states = [None, None] if hx is None else list(hx)
        output, (h_n, c_n) = self._run(input, states, ["hx[0] (h_0)", "hx[1] (c_0)"])
        return output, (h_n, c_n)


class GRU(_RNNBase):
    """A multi-layer gated recurrent unit network: ``output, h_n = gru(input, h_0)``.

    Parameters per layer k: ``weight_ih_l{k}`` (3H, I or D·H), ``weight_hh_l{k}`` (3H, H), ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (3H,), gate order r, z, n.
    """

    __doc__ += _SEQUENCE_DOC.format(states="h_0 and h_n")
    _gates = 3

    def _direction(self, x, params, h, c, reverse):
        w_ih, w_hh, b_ih, b_hh = params
        L, N = x.shape[:2]
        steps = _unbind(linear(x.reshape(L * N, -1), w_ih, b_ih).reshape(L, N, -1))
        out = [None] * L
        for t in (range(L - 1, -1, -1) if reverse else range(L)):
            h = _gru_step(steps[t], linear(h, w_hh, b_hh), h, self.hidden_size)
            out[t] = h
        return stack(out, axis=0), h

    def forward(self, input: Any, hx: Any = None) -> tuple[Tensor, Tensor]:
        output, (h_n,) = self._run(input, [hx], ["hx (h_0)"])
        return output, h_n
