"""Constraints: membership inside and outside the support, batch shapes, feasible points."""
import math

import numpy as np
import pytest

import probdl as pd
from probdl.distributions import constraints as C


def spd(rng, n=3, batch=()):
    a = rng.normal(size=batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def corr(rng, n=3):
    s = spd(rng, n)
    d = 1 / np.sqrt(np.diag(s))
    return s * d[:, None] * d[None, :]


@pytest.fixture
def r():
    return np.random.default_rng(0)


# constraint, a value inside, a value outside (each with the constraint's event shape)
CASES = [
    (C.real, 1.5, np.nan),
    (C.real_vector, [1.0, -2.0], [1.0, np.inf]),
    (C.positive, 0.1, 0.0),
    (C.nonnegative, 0.0, -1e-12),
    (C.unit_interval, 1.0, 1.0001),
    (C.interval(-2.0, 3.0), -2.0, 3.5),
    (C.open_interval(-2.0, 3.0), 2.9, 3.0),
    (C.greater_than(1.0), 1.5, 1.0),
    (C.greater_than_eq(1.0), 1.0, 0.99),
    (C.less_than(1.0), 0.5, 1.0),
    (C.circular, math.pi, 3.2),
    (C.simplex, [0.2, 0.3, 0.5], [0.2, 0.3, 0.6]),
    (C.simplex, [1.0, 0.0], [1.2, -0.2]),
    (C.ordered_vector, [-1.0, 0.0, 2.0], [0.0, 0.0, 1.0]),
    (C.positive_ordered_vector, [0.5, 1.0], [-0.5, 1.0]),
    (C.lower_cholesky, [[1.0, 0.0], [-3.0, 0.5]], [[1.0, 0.1], [0.0, 1.0]]),
    (C.lower_cholesky, [[2.0, 0.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]),
    (C.corr_cholesky, [[1.0, 0.0], [0.6, 0.8]], [[1.0, 0.0], [0.6, 0.9]]),
    (C.positive_definite, [[2.0, 1.0], [1.0, 2.0]], [[1.0, 2.0], [2.0, 1.0]]),
    (C.positive_definite, [[2.0, 1.0], [1.0, 2.0]], [[2.0, 1.0], [0.0, 2.0]]),  # not symmetric
    (C.positive_semidefinite, [[1.0, 1.0], [1.0, 1.0]], [[1.0, 2.0], [2.0, 1.0]]),
    (C.corr_matrix, [[1.0, 0.3], [0.3, 1.0]], [[2.0, 0.3], [0.3, 1.0]]),
    (C.integer_interval(0, 5), 5.0, 2.5),
    (C.integer_interval(0, 5), 0, 6),
    (C.nonnegative_integer, 0, -1),
    (C.positive_integer, 3.0, 0.0),
    (C.boolean, 1.0, 0.5),
    (C.independent(C.positive, 2), [[1.0, 2.0]], [[1.0, -2.0]]),
]


@pytest.mark.parametrize("constraint,inside,outside", CASES, ids=[repr(c[0]) for c in CASES])
def test_membership_and_batch_shape(constraint, inside, outside):
    good, bad = np.asarray(inside, dtype=float), np.asarray(outside, dtype=float)
    assert bool(constraint.check(good)) and not bool(constraint(bad))
    batch = np.stack([good, bad, good])  # a batch of three values: the answer has the batch shape
    np.testing.assert_array_equal(constraint.check(batch), [True, False, True])
    assert bool(constraint.check(pd.tensor(good)))  # Tensors are checked by their data


def test_event_dims_and_discreteness():
    assert C.real.event_dim == 0 and C.real_vector.event_dim == 1 and C.simplex.event_dim == 1
    assert C.lower_cholesky.event_dim == 2 and C.independent(C.simplex, 2).event_dim == 3
    assert C.boolean.is_discrete and C.integer_interval(0, 3).is_discrete and C.nonnegative_integer.is_discrete
    assert not C.positive.is_discrete and C.independent(C.boolean, 1).is_discrete


def test_bounds_may_be_arrays_and_broadcast():
    c = C.interval(np.array([0.0, 1.0]), np.array([1.0, 2.0]))
    np.testing.assert_array_equal(c(np.array([[0.5, 1.5], [1.5, 0.5]])), [[True, True], [False, False]])


def test_feasible_points_lie_in_the_support(r):
    shapes = {0: (4, 3), 1: (4, 3), 2: (4, 3, 3)}
    for constraint in [c for c, _, _ in CASES]:
        proto = np.zeros(shapes[min(constraint.event_dim, 2)])
        point = constraint.feasible_like(proto)
        assert point.shape == proto.shape and constraint.check(point).all(), constraint


def test_matrix_constraints_on_random_batches(r):
    s = spd(r, 4, (5,))
    L = np.linalg.cholesky(s)
    assert C.positive_definite(s).all() and C.lower_cholesky(L).all() and not C.lower_cholesky(s).any()
    cm = corr(r, 4)
    assert C.corr_matrix(cm) and C.corr_cholesky(np.linalg.cholesky(cm))
    assert C.positive_semidefinite(np.outer([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]))  # rank one


def test_repr_and_bad_arguments():
    assert [repr(c) for c in (C.real, C.simplex, C.lower_cholesky, C.real_vector)] == [
        "real", "simplex", "lower_cholesky", "independent(real, 1)"]
    assert repr(C.interval(0, 1)) == "interval(lower_bound=0, upper_bound=1)"
    with pytest.raises(TypeError, match="base must be a Constraint"):
        C.independent("real", 1)
    with pytest.raises(ValueError, match="non-negative int"):
        C.independent(C.real, -1)
