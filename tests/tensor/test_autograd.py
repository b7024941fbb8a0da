"""Semantics of the backward pass and the function transforms."""
import gc
import weakref

import numpy as np
import pytest

import probdl as pd


def leaf(*values):
    return pd.tensor(np.array(values, dtype=float), requires_grad=True)


def test_gradients_accumulate_across_backward_calls():
    x = leaf(1.0, 2.0)
    (x * x).sum().backward()
    (3 * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2 + 3, 4 + 3])


def test_shared_subexpression_gets_the_sum_of_its_uses():
    x = leaf(0.5, -1.0)
    y = pd.exp(x)
    z = (y * y + y).sum()  # dz/dx = (2 e^{2x} + e^x)
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(2 * x.numpy()) + np.exp(x.numpy()))


def test_retain_graph_allows_a_second_walk_and_its_absence_frees_the_graph():
    x = leaf(1.0, 2.0)
    y = (x ** 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="already been freed"):
        y.backward()


def test_backward_with_explicit_gradient_for_a_vector_output():
    x = leaf(1.0, 2.0, 3.0)
    (x * x).backward(pd.tensor([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, 12.0])


def test_no_grad_records_nothing_and_enable_grad_overrides_it():
    x = leaf(1.0)
    with pd.no_grad():
        y = x * 2
        with pd.enable_grad():
            z = x * 3
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and pd.is_grad_enabled()

    @pd.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    with pd.set_grad_enabled(False):
        assert not (x + 1).requires_grad


def test_detach_cuts_the_graph_and_retain_grad_keeps_an_intermediate_gradient():
    x = leaf(2.0)
    h = (x * x).retain_grad()
    y = h * x.detach()
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2 * 2.0 * 2.0])  # only through h
    np.testing.assert_allclose(h.grad.numpy(), [2.0])


def test_ops_on_constants_record_nothing():
    a = pd.tensor([1.0, 2.0])
    y = pd.exp(a) * 3
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf


def test_numpy_array_on_either_side_of_an_operator_keeps_the_gradient():
    x = leaf(1.0, 2.0)
    for y in (np.array([3.0, 4.0]) * x, np.ones((2, 2)) @ x, np.array([1.0, 1.0]) - x, 2.0 ** x):
        assert isinstance(y, pd.Tensor) and y.requires_grad
    (np.array([3.0, 4.0]) * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])


def test_gradient_dtype_matches_the_leaf_under_promotion():
    x = pd.tensor(np.ones(3, np.float32), requires_grad=True)
    w = pd.tensor(np.full(3, 2.0))
    y = (x * w).sum()
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float32


def test_two_leaves_never_share_one_gradient_array():
    a, b = leaf(1.0, 2.0), leaf(3.0, 4.0)
    (a + b).sum().backward()
    a.grad.data[0] = 100.0
    assert b.grad.numpy()[0] == 1.0


def test_a_very_deep_graph_needs_no_recursion():
    x = leaf(1.0)
    y = x
    for _ in range(20000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    assert x.grad.item() == 1.0


def test_graph_is_released_after_backward():
    x = leaf(1.0, 2.0)
    h = pd.exp(x)
    ref = weakref.ref(h)
    y = (h * 2).sum()
    del h
    y.backward()
    del y
    gc.collect()
    assert ref() is None


def test_graph_holds_no_reference_cycles():
    """Graphs are freed by reference counting alone: the garbage collector never has to find them."""
    gc.collect()
    gc.disable()
    try:
        x = leaf(1.0, 2.0)
        h = pd.tanh(x * 3)
        ref = weakref.ref(h)
        loss = (h * h).sum()
        del h, loss
        assert ref() is None
    finally:
        gc.enable()


# ------------------------------------------------------------- function transforms
def test_grad_value_and_grad_and_argnums():
    f = lambda x, y: (x * y ** 2).sum()
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    np.testing.assert_allclose(pd.grad(f)(x, y).numpy(), y ** 2)
    gx, gy = pd.grad(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gy.numpy(), 2 * x * y)
    v, g = pd.value_and_grad(f, 1)(x, y)
    assert v.item() == pytest.approx((x * y ** 2).sum()) and not v.requires_grad
    np.testing.assert_allclose(g.numpy(), 2 * x * y)


def test_grad_over_dicts_and_lists_with_aux():
    def loss(params, data):
        pred = params["w"] * data + params["b"][0]
        return ((pred - 1.0) ** 2).sum(), pred

    params = {"w": np.array(2.0), "b": [np.array(0.5)]}
    g, pred = pd.grad(loss, has_aux=True)(params, np.array([1.0, 2.0]))
    r = 2 * (np.array([2.5, 4.5]) - 1.0)
    np.testing.assert_allclose(g["w"].numpy(), (r * [1.0, 2.0]).sum())
    np.testing.assert_allclose(g["b"][0].numpy(), r.sum())
    assert pred.shape == (2,)


def test_grad_works_inside_no_grad_and_gives_zeros_for_unused_inputs():
    with pd.no_grad():
        g = pd.grad(lambda x, y: (x * 2).sum(), argnums=(0, 1))(np.ones(2), np.ones(3))
    np.testing.assert_allclose(g[0].numpy(), [2.0, 2.0])
    np.testing.assert_allclose(g[1].numpy(), np.zeros(3))


def test_grad_does_not_touch_leaf_grads():
    w = leaf(1.0, 2.0)
    pd.grad(lambda x: (x * w).sum())(np.ones(2))
    assert w.grad is None


def test_nested_grad_does_not_confuse_inner_and_outer_variables():
    """d/dx [ d/dy (x y) at y = x ] = d/dx x = 1 (perturbation confusion would give 2)."""
    outer = pd.grad(lambda x: pd.grad(lambda y: (x * y).sum())(x).sum())
    np.testing.assert_allclose(outer(np.array(3.0)).numpy(), 1.0)
    # Closure over the outer variable with a constant inner argument.
    outer2 = pd.grad(lambda x: pd.grad(lambda y: (x * x * y).sum())(np.array(5.0)).sum())
    np.testing.assert_allclose(outer2(np.array(3.0)).numpy(), 6.0)


def test_vjp_can_be_called_repeatedly_and_jacobian_matches_the_formula():
    x = np.array([0.3, -0.7, 1.1])
    out, vjp_fn = pd.vjp(lambda t: pd.tanh(t) * 2, x)
    d = 2 * (1 - np.tanh(x) ** 2)
    for v in (np.ones(3), np.array([1.0, 0.0, 2.0])):
        np.testing.assert_allclose(vjp_fn(v)[0].numpy(), v * d)
    a = np.random.default_rng(0).normal(size=(2, 3))
    J = pd.jacobian(lambda t: pd.tensor(a) @ pd.exp(t))(x)
    np.testing.assert_allclose(J.numpy(), a * np.exp(x))
    J0, J1 = pd.jacobian(lambda s, t: s * t, argnums=(0, 1))(x, 2 * x)
    np.testing.assert_allclose(J0.numpy(), np.diag(2 * x))
    np.testing.assert_allclose(J1.numpy(), np.diag(x))


def test_tensor_backward_inside_a_transform_is_independent():
    w = leaf(3.0)
    g = pd.grad(lambda x: (x * x).sum())(np.array([1.0]))
    (w * g).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [2.0])


def test_set_grad_enabled_acts_as_a_plain_call_and_restores_as_a_context():
    try:
        pd.set_grad_enabled(False)
        assert not pd.is_grad_enabled()
    finally:
        pd.set_grad_enabled(True)
    with pd.set_grad_enabled(False):
        assert not pd.is_grad_enabled()
    assert pd.is_grad_enabled()


def test_in_place_update_of_a_leaf_under_no_grad_keeps_the_same_tensor():
    w = leaf(1.0, 2.0)
    (w * w).sum().backward()
    same = w
    with pd.no_grad():
        w -= 0.5 * w.grad
        w *= 2.0
    assert w is same and w.requires_grad
    np.testing.assert_allclose(w.numpy(), [0.0, 0.0])


def test_in_place_update_while_recording_is_an_error():
    w = leaf(1.0)
    with pytest.raises(RuntimeError, match="in-place '-='.*requires grad"):
        w -= 1.0
    c = pd.tensor([1.0, 2.0])
    c += 1  # a constant may be updated in place at any time
    assert c.tolist() == [2.0, 3.0]


def test_many_slices_accumulate_into_one_gradient_buffer():
    """Slices, repeated advanced indices and dense uses of one tensor all add up; without a graph to record,
    the slices' gradients go into one buffer in place (O(L) work for L slices)."""
    rng = np.random.default_rng(0)
    x = pd.tensor(rng.normal(size=(6, 3)), requires_grad=True)
    w = rng.normal(size=3)
    total = sum((x[t] * w * (t + 1)).sum() for t in range(6))
    total = total + (x[np.array([0, 0, 5])] ** 2).sum() + (x * 3.0).sum()
    total.backward()
    expected = np.outer(np.arange(1, 7), w) + 3.0
    expected[0] += 2 * 2 * x.numpy()[0]
    expected[5] += 2 * x.numpy()[5]
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)
    g = pd.grad(lambda y: sum((y[t] ** 2).sum() for t in range(6)) + y[1:3].sum())(x.detach())
    np.testing.assert_allclose(g.numpy(), 2 * x.numpy() + np.isin(np.arange(6), [1, 2])[:, None], rtol=1e-12)
    # A float32 tensor sliced into a float64 computation gets a float32 gradient.
    y = pd.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    (y[0] * pd.tensor([1.0, 2.0])).sum().backward()
    assert y.grad.dtype == np.float32 and y.grad.tolist() == [[1.0, 2.0], [0.0, 0.0]]


def test_slices_inside_a_higher_order_derivative():
    """With create_graph the scatter is an op in the graph, so second derivatives through slices are right."""
    h = pd.hessian(lambda v: (v[0] * v[1] * v[1] + v[1:].sum() ** 2))(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(h.numpy(), [[0, 4, 0], [4, 2 + 2, 2], [0, 2, 2]], rtol=1e-12)
