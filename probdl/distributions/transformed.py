"""Distributions of transformed variables: ``TransformedDistribution`` (Y = f(X) for bijections f, by the
change of variables) and ``FoldedDistribution`` (Y = |X|), with KL(p ‖ q) for two distributions that
transform their bases by the same bijections.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import tensor as T
from ..tensor import Tensor, no_grad
from ..tensor.ops.base import to_tensor
from . import constraints
from .combinators import Independent, log_prob_or_neg_inf
from .distribution import Distribution
from .kl import kl_divergence, register_kl
from .transforms import AbsTransform, AffineTransform, ComposeTransform, PowerTransform, Transform

__all__ = ["TransformedDistribution", "FoldedDistribution"]


def _sum_rightmost(t: Tensor, n: int) -> Tensor:
    return t.sum(tuple(range(-n, 0))) if n > 0 else t


def _flatten(transforms: Any) -> list[Transform]:
    """A Transform or a list of them as a flat list, a ``ComposeTransform`` replaced by its parts (so that
    each part's own domain and codomain event dims are used)."""
    items = transforms if isinstance(transforms, (list, tuple)) else [transforms]
    out: list[Transform] = []
    for t in items:
        if not isinstance(t, Transform):
            raise TypeError(f"TransformedDistribution: transforms must be Transforms, got {type(t).__name__}")
        out += _flatten(t.parts) if isinstance(t, ComposeTransform) else [t]
    return out


def _parameters(t: Transform) -> list[Tensor]:
    """The elementwise parameters of an affine or power transform (under an inverse or IndependentTransform)."""
    while hasattr(t, "base") and isinstance(t.base, Transform):
        t = t.base
    return [t.loc, t.scale] if isinstance(t, AffineTransform) else [t.exponent] if isinstance(t, PowerTransform) \
        else []


def _elementwise_sign(t: Transform) -> Any:
    """The sign of dy/dx per element: an array for an affine (power) transform with scales (exponents) of both
    signs, where ``t.sign`` is 0."""
    params = _parameters(t)
    return t.sign if t.sign or not params else np.sign(params[-1].data)


def _broadcast_shape(t: Transform, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` broadcast with an elementwise transform's parameters: an AffineTransform with a loc of
    shape (3,) maps a scalar to 3 values (PyTorch's ``forward_shape``; ours keeps the value's shape)."""
    return np.broadcast_shapes(shape, *(p.shape for p in _parameters(t)))


class TransformedDistribution(Distribution):
    """Y = t_n(... t_1(X)) for X ~ ``base_distribution`` and bijections ``transforms`` (a Transform or a list,
    applied left to right). By the change of variables,

        log p_Y(y) = log p_X(x) - Σᵢ log |det ∂tᵢ/∂xᵢ|,   x = t₁⁻¹(... t_n⁻¹(y)),

    each log-Jacobian summed over the event dims it does not already cover (an elementwise transform of a
    vector-valued base adds one term per coordinate). The event dim is that of the base pushed through the
    transforms: a transform of event dim 1 (``StickBreakingTransform``) reinterprets one batch dim of a
    univariate base as an event dim. ``rsample`` transforms the base's reparameterized draws.
    """

    arg_constraints: dict = {}

    def __init__(self, base_distribution: Distribution, transforms: Transform | list[Transform],
                 validate_args: bool | None = None) -> None:
        self.transforms = _flatten(transforms)
        base, base_event_dim = base_distribution, len(base_distribution.event_shape)
        # The event dim the transforms need at their input (a walk back from the last one).
        needed = self.transforms[-1].codomain.event_dim if self.transforms else 0
        for t in reversed(self.transforms):
            needed = max(needed + t.domain.event_dim - t.codomain.event_dim, t.domain.event_dim)
        if needed > len(base.shape()):
            raise ValueError(f"TransformedDistribution: the transforms need an event of {needed} dims but the base "
                             f"{type(base).__name__} has shape {base.shape()}")
        shape = base.shape()
        for t in self.transforms:
            shape = _broadcast_shape(t, t.forward_shape(shape))
        base_shape = shape
        for t in reversed(self.transforms):
            base_shape = _broadcast_shape(t, t.inverse_shape(base_shape))
        if base_shape != base.shape():  # the transforms' parameters broadcast the base to a larger batch
            base = base.expand(base_shape[:len(base_shape) - base_event_dim])
        if needed > base_event_dim:  # batch dims of the base that the transforms treat as one event
            base = Independent(base, needed - base_event_dim)
        event_dim = max(needed, base_event_dim)
        for t in self.transforms:
            event_dim = t.codomain.event_dim + event_dim - t.domain.event_dim
        self.base_dist = base
        cut = len(shape) - event_dim
        super().__init__(shape[:cut], shape[cut:], base._validate_args if validate_args is None else validate_args)

    has_rsample = property(lambda self: self.base_dist.has_rsample)

    @property
    def support(self) -> constraints.Constraint:
        if not self.transforms:
            return self.base_dist.support
        support = self.transforms[-1].codomain
        extra = len(self.event_shape) - support.event_dim
        return constraints.independent(support, extra) if extra > 0 else support

    def _forward(self, x: Tensor) -> Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def rsample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        return self._forward(self.base_dist.rsample(sample_shape, rng))

    def sample(self, sample_shape: Any = (), rng: Any = None) -> Tensor:
        with no_grad():
            return self._forward(self.base_dist.sample(sample_shape, rng)).detach()

    def log_prob(self, value: Any) -> Tensor:
        y = to_tensor(value)
        self._validate_sample(y)
        event_dim, log_det = len(self.event_shape), 0.0
        for t in reversed(self.transforms):
            x = t.inv(y)
            event_dim += t.domain.event_dim - t.codomain.event_dim
            log_det = log_det + _sum_rightmost(t.log_abs_det_jacobian(x, y), event_dim - t.domain.event_dim)
            y = x
        return _sum_rightmost(self.base_dist.log_prob(y), event_dim - len(self.base_dist.event_shape)) - log_det

    def _sign(self) -> Any:
        """The sign of dy/dx (1, -1, or an array of them for an affine map with scales of both signs); an error
        unless every transform is an elementwise monotone bijection and the base univariate."""
        sign: Any = 1
        for t in self.transforms:
            if t.domain.event_dim or t.codomain.event_dim or not t.bijective:
                sign = 0
                break
            sign = sign * _elementwise_sign(t)
        if np.any(sign == 0) or self.base_dist.event_shape:
            raise NotImplementedError(f"{type(self).__name__}: cdf and icdf need a univariate base and elementwise "
                                      f"monotone bijections, got {self.transforms}")
        return sign

    @staticmethod
    def _flip(u: Tensor, sign: Any) -> Tensor:
        """u where the transforms increase, 1 - u where they decrease."""
        return u if np.all(sign == 1) else T.where(sign > 0, u, 1 - u)

    def cdf(self, value: Any) -> Tensor:
        """P(Y ≤ y) = F_X(x), or 1 - F_X(x) where the transforms decrease."""
        sign, x = self._sign(), to_tensor(value)
        for t in reversed(self.transforms):
            x = t.inv(x)
        return self._flip(self.base_dist.cdf(x), sign)

    def icdf(self, q: Any) -> Tensor:
        return self._forward(self.base_dist.icdf(self._flip(to_tensor(q), self._sign())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_dist!r}, {self.transforms})"


class FoldedDistribution(TransformedDistribution):
    """Y = |X| for a univariate X ~ ``base_dist``: p_Y(y) = p_X(y) + p_X(-y) on y ≥ 0 (a HalfNormal is a
    folded centred Normal). Draws fold the base's draws, so ``rsample`` is reparameterized when the base's is."""

    def __init__(self, base_dist: Distribution, validate_args: bool | None = None) -> None:
        if base_dist.event_shape:
            raise ValueError(f"FoldedDistribution: only univariate distributions can be folded; got "
                             f"{type(base_dist).__name__} with event shape {base_dist.event_shape}")
        super().__init__(base_dist, AbsTransform(), validate_args)

    def log_prob(self, value: Any) -> Tensor:
        y = to_tensor(value)
        self._validate_sample(y)
        # Each branch is -inf where ±y lies outside the base's support (folding an Exponential, say).
        return T.logaddexp(log_prob_or_neg_inf(self.base_dist, y), log_prob_or_neg_inf(self.base_dist, -y))

    def cdf(self, value: Any) -> Tensor:
        y = to_tensor(value)
        return T.clip(self.base_dist.cdf(y) - self.base_dist.cdf(-y), 0.0, 1.0)


def _same(a: Any, b: Any) -> bool:
    """Value equality of transforms: the same type and equal parameters (tensors compared by value)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, Tensor):
        return a.shape == b.shape and bool(np.array_equal(a.numpy(), b.numpy()))
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (Transform, constraints.Constraint)):
        return _same(vars(a), vars(b))
    return bool(np.all(a == b))


@register_kl(TransformedDistribution, TransformedDistribution)
def _kl_transformed(p, q):
    """KL is invariant under a bijection applied to both arguments: KL(f(X) ‖ f(Z)) = KL(X ‖ Z)."""
    if not (_same(p.transforms, q.transforms) and p.event_shape == q.event_shape
            and all(t.bijective for t in p.transforms)):
        raise NotImplementedError(f"kl_divergence: {type(p).__name__} ‖ {type(q).__name__} has a closed form only "
                                  f"when both apply the same bijections; got {p.transforms} and {q.transforms}")
    kl = kl_divergence(p.base_dist, q.base_dist)
    return _sum_rightmost(kl, kl.ndim - max(len(p.batch_shape), len(q.batch_shape)))
