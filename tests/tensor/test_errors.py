"""Bad input to the tensor engine: every error is raised, has the right type, and says what went wrong.

Each test feeds one public entry point a wrong shape, dtype, device, axis or value and checks that
the message names the op and the offending shapes, dtypes or values, so a user can fix the call
from the message alone.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import probdl as pd


def _all(*parts: str, regex: bool = False) -> str:
    """A pattern for ``pytest.raises(match=...)`` that needs every one of ``parts`` somewhere in the message.

    ``parts`` are literal text unless ``regex`` is true.
    """
    return "(?s)" + "".join(f"(?=.*{p if regex else re.escape(p)})" for p in parts)


# ----------------------------------------------------------------- shapes in binary ops
A23 = np.ones((2, 3))
B45 = np.ones((4, 5))


@pytest.mark.parametrize("name, fn", [
    ("add", lambda a, b: a + b),
    ("add", lambda a, b: pd.add(a, b)),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("mul", lambda a, b: pd.mul(a, b)),
    ("div", lambda a, b: a / b),
    ("pow", lambda a, b: a ** b),
    ("maximum", lambda a, b: pd.maximum(a, b)),
    ("minimum", lambda a, b: pd.minimum(a, b)),
    ("logaddexp", lambda a, b: pd.logaddexp(a, b)),
])
def test_elementwise_binary_shape_mismatch_names_op_and_shapes(name, fn):
    a, b = pd.tensor(A23), pd.tensor(B45)
    with pytest.raises(ValueError, match=_all(name, "(2, 3)", "(4, 5)")):
        fn(a, b)


def test_elementwise_shape_mismatch_with_requires_grad_names_op_and_shapes():
    a = pd.tensor(np.ones((3,)), requires_grad=True)
    b = pd.tensor(np.ones((2, 4)), requires_grad=True)
    with pytest.raises(ValueError, match=_all("mul", "(3,)", "(2, 4)")):
        a * b


def test_matmul_inner_dim_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=_all("matmul", "(2, 3)", "(4, 5)")):
        pd.tensor(A23) @ pd.tensor(B45)
    with pytest.raises(ValueError, match=_all("matmul", "(2, 3)", "(4, 5)")):
        pd.matmul(pd.tensor(A23), pd.tensor(B45))


def test_matmul_batch_dims_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=_all("matmul", "(2, 3, 4)", "(5, 4, 2)")):
        pd.matmul(pd.ones(2, 3, 4), pd.ones(5, 4, 2))


@pytest.mark.parametrize("sa, sb", [((3,), (4,)), ((3,), (4, 2)), ((2, 3), (4,))])
def test_matmul_with_a_vector_names_the_shapes_the_user_passed(sa, sb):
    # The message must name the operands as given, not the internal (1, n) / (n, 1) reshapes.
    with pytest.raises(ValueError, match=_all("matmul", str(sa), str(sb))):
        pd.matmul(pd.ones(*sa), pd.ones(*sb))


def test_matmul_of_a_0d_tensor_names_op_and_shapes():
    with pytest.raises(ValueError, match=_all("matmul", "()", "(3,)")):
        pd.matmul(pd.tensor(1.0), pd.ones(3))


def test_where_shape_mismatch_names_op_and_shapes():
    cond = pd.tensor(np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match=_all("where", "(2, 3)", "(4, 5)")):
        pd.where(cond, pd.tensor(A23), pd.tensor(B45))
    # a condition that does not broadcast with the values
    with pytest.raises(ValueError, match=_all("where", "(5,)", "(2, 3)")):
        pd.where(pd.tensor(np.ones(5, dtype=bool)), pd.tensor(A23), pd.tensor(A23))


def test_concatenate_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=_all("concatenate", "(2, 3)", "(4, 5)")):
        pd.concatenate([pd.tensor(A23), pd.tensor(B45)])
    with pytest.raises(ValueError, match=_all("concatenate", "(2, 3)", "(4, 5)")):
        pd.cat([pd.tensor(A23), pd.tensor(B45)], dim=1)
    with pytest.raises(ValueError, match=_all("concatenate", "(2, 3)", "(3,)")):
        pd.concatenate([pd.tensor(A23), pd.ones(3)])


def test_concatenate_bad_axis_names_op_and_axis():
    with pytest.raises(ValueError, match=_all("concatenate", "axis 2", "2 dimensions")):
        pd.concatenate([pd.tensor(A23), pd.tensor(A23)], axis=2)


def test_stack_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=_all("stack", "(2, 3)", "(4, 5)")):
        pd.stack([pd.tensor(A23), pd.tensor(B45)])


def test_stack_and_concatenate_of_nothing():
    with pytest.raises(ValueError, match="stack"):
        pd.stack([])
    with pytest.raises(ValueError, match="concatenate"):
        pd.concatenate([])
    with pytest.raises(TypeError, match=_all("stack", "list or tuple")):
        pd.stack(pd.tensor(A23))


# ----------------------------------------------------------------- devices
_MIXED_DEVICE_OPS = [
    ("add", lambda a, b: a + b),
    ("mul", lambda a, b: a * b),
    ("matmul", lambda a, b: pd.matmul(a.reshape(1, 3), b.reshape(3, 1))),
    ("where", lambda a, b: pd.where(pd.tensor([True, False, True]), a, b)),
    ("concatenate", lambda a, b: pd.concatenate([a, b])),
    ("stack", lambda a, b: pd.stack([a, b])),
]


@pytest.mark.cuda
@pytest.mark.parametrize("name, fn", _MIXED_DEVICE_OPS, ids=[n for n, _ in _MIXED_DEVICE_OPS])
@pytest.mark.parametrize("cuda_first", [False, True])
def test_mixed_devices_name_op_and_both_devices(name, fn, cuda_first):
    if not pd.cuda_is_available():
        pytest.skip("needs a GPU: CuPy is missing or sees no device")
    cpu = pd.tensor([1.0, 2.0, 3.0])
    gpu = pd.tensor([1.0, 2.0, 3.0], device="cuda")
    a, b = (gpu, cpu) if cuda_first else (cpu, gpu)
    with pytest.raises(RuntimeError, match=_all(name, "cpu", "cuda")):
        fn(a, b)


# ----------------------------------------------------------------- backward
def test_backward_on_non_scalar_without_grad_names_the_shape():
    x = pd.tensor(np.ones((2, 3)), requires_grad=True)
    y = x.exp()
    with pytest.raises(RuntimeError, match=_all("backward", "(2, 3)")):
        y.backward()


def test_backward_with_wrong_grad_shape_names_both_shapes():
    x = pd.tensor(np.ones((2, 3)), requires_grad=True)
    y = x.exp()
    with pytest.raises(ValueError, match=_all("backward", "(3,)", "(2, 3)")):
        y.backward(pd.ones(3))


@pytest.mark.parametrize("build", [
    lambda x: x.sum(),
    lambda x: (x * x).sum(),
    lambda x: pd.exp(x).sum(),
    lambda x: pd.logsumexp(x * 2.0),
])
def test_second_backward_through_freed_graph_raises_and_says_retain_graph(build):
    x = pd.tensor([1.0, 2.0], requires_grad=True)
    y = build(x)
    y.backward()
    with pytest.raises(RuntimeError, match=_all("freed", "retain_graph")):
        y.backward()


def test_retain_graph_allows_a_second_backward_and_gradients_accumulate():
    x = pd.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="freed"):
        y.backward()  # the second call did not retain it


def test_backward_on_tensor_that_does_not_require_grad():
    y = pd.tensor([1.0, 2.0]).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        pd.tensor(3.0).backward()


def test_backward_under_no_grad_result_does_not_require_grad():
    x = pd.tensor([1.0, 2.0], requires_grad=True)
    with pd.no_grad():
        y = (x * x).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


# ----------------------------------------------------------------- non-float differentiation
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_non_float_tensor_cannot_require_grad(dtype):
    name = np.dtype(dtype).name
    with pytest.raises(TypeError, match=_all("floating", name)):
        pd.tensor(np.array([1, 0], dtype=dtype), requires_grad=True)
    with pytest.raises(TypeError, match=_all("floating", name)):
        pd.tensor(np.array([1, 0], dtype=dtype)).requires_grad_()
    with pytest.raises(TypeError, match=_all("floating", name)):
        pd.ones(2, dtype=dtype, requires_grad=True)


def test_int_list_with_requires_grad_raises_naming_int64():
    with pytest.raises(TypeError, match=_all("floating", "int64")):
        pd.tensor([1, 2], requires_grad=True)


@pytest.mark.parametrize("arg", [np.array([1, 2]), pd.tensor([1, 2]), 3],
                         ids=["int-array", "int-tensor", "python-int"])
def test_grad_of_non_float_argument_names_transform_and_dtype(arg):
    with pytest.raises(TypeError, match=_all("grad", "int64")):
        pd.grad(lambda x: (x * x).sum())(arg)
    with pytest.raises(TypeError, match=_all("grad", "int64")):
        pd.value_and_grad(lambda x: (x * x).sum())(arg)


def test_vjp_of_non_float_argument_names_transform_and_dtype():
    with pytest.raises(TypeError, match=_all("vjp", "int64")):
        pd.vjp(lambda x: x * 2, np.array([1, 2]))


def test_jacobian_of_non_float_argument_names_jacobian_and_dtype():
    # The message should name the transform the user called, not an internal one.
    with pytest.raises(TypeError, match=_all("jacobian", "int64")):
        pd.jacobian(lambda x: x * 2)(np.array([1, 2]))


def test_grad_of_a_function_returning_a_non_scalar_names_the_shape():
    with pytest.raises(ValueError, match=_all("grad", "(3,)")):
        pd.grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(ValueError, match=_all("grad", "(2, 3)")):
        pd.value_and_grad(lambda x: pd.exp(x))(np.ones((2, 3)))


def test_grad_of_a_function_returning_a_non_tensor_names_the_type():
    with pytest.raises(TypeError, match=_all("grad", "float")):
        pd.grad(lambda x: 3.0)(np.ones(3))


def test_grad_argnums_out_of_range():
    with pytest.raises(ValueError, match=_all("grad", "argnums")):
        pd.grad(lambda x: x.sum(), argnums=2)(np.ones(3))


# ----------------------------------------------------------------- reduction axes
_REDUCTIONS = {
    "sum": pd.sum, "mean": pd.mean, "prod": pd.prod, "max": pd.max, "min": pd.min,
    "logsumexp": pd.logsumexp, "var": pd.var, "std": lambda x, axis: pd.std(x, axis),
    "softmax": pd.softmax, "log_softmax": pd.log_softmax, "cumsum": pd.cumsum,
    "norm": lambda x, axis: pd.norm(x, axis=axis),
}


@pytest.mark.parametrize("name", list(_REDUCTIONS))
@pytest.mark.parametrize("axis", [2, -3, 7])
def test_reduction_axis_out_of_range_names_op_axis_and_ndim(name, axis):
    fn = _REDUCTIONS[name]
    x = pd.ones(2, 3)
    with pytest.raises(ValueError, match=_all(f"{name}: ", f"axis {axis}", "2 dimensions")):
        fn(x, axis)


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min", "logsumexp", "var"])
def test_reduction_axis_tuple_with_bad_or_repeated_axis(name):
    fn = _REDUCTIONS[name]
    x = pd.ones(2, 3)
    with pytest.raises(ValueError, match=_all(name, "axis 3")):
        fn(x, (0, 3))
    with pytest.raises(ValueError, match=_all(name, "repeated axis")):
        fn(x, (1, -1))


def test_reduction_method_axis_out_of_range():
    with pytest.raises(ValueError, match=_all("sum", "axis 2")):
        pd.ones(2, 3).sum(axis=2)
    with pytest.raises(ValueError, match=_all("mean", "axis -3")):
        pd.ones(2, 3).mean(-3)


def test_var_with_too_large_ddof_names_ddof():
    with pytest.raises(ValueError, match=_all("var", "ddof=3")):
        pd.var(pd.ones(3), ddof=3)


# ----------------------------------------------------------------- linear algebra
@pytest.mark.parametrize("name", ["cholesky", "inv", "det", "slogdet", "eigh"])
@pytest.mark.parametrize("shape", [(2, 3), (3,), (4, 2, 3)])
def test_square_matrix_ops_reject_non_square_naming_the_shape(name, shape):
    with pytest.raises(ValueError, match=_all(name, "square", str(shape))):
        getattr(pd, name)(pd.ones(*shape))


@pytest.mark.parametrize("b_shape", [(4,), (4, 2), (2, 4, 1)])
def test_solve_with_mismatched_b_names_both_shapes(b_shape):
    with pytest.raises(ValueError, match=_all("solve", "(3, 3)", str(b_shape))):
        pd.solve(pd.eye(3), pd.ones(*b_shape))


def test_solve_with_non_square_a_names_the_shape():
    with pytest.raises(ValueError, match=_all("solve", "(3, 2)")):
        pd.solve(pd.ones(3, 2), pd.ones(3))


def test_solve_with_non_broadcasting_batches_names_both_shapes():
    with pytest.raises(ValueError, match=_all("solve", "(2, 3, 3)", "(3, 3, 1)")):
        pd.solve(pd.ones(2, 3, 3), pd.ones(3, 3, 1))


def test_solve_triangular_with_mismatched_b_names_both_shapes():
    with pytest.raises(ValueError, match=_all("solve_triangular", "(3, 3)", "(4,)")):
        pd.solve_triangular(pd.eye(3), pd.ones(4), lower=True)


def test_cholesky_solve_with_mismatched_b_names_itself_and_both_shapes():
    with pytest.raises(ValueError, match=_all("cholesky_solve", "(3, 3)", "(4,)")):
        pd.cholesky_solve(pd.ones(4), pd.eye(3))


@pytest.mark.parametrize("a", [
    [[1.0, 2.0], [2.0, 1.0]],                       # indefinite
    [[-1.0, 0.0], [0.0, -1.0]],                     # negative definite
    [[0.0, 0.0], [0.0, 0.0]],                       # singular
], ids=["indefinite", "negative", "zero"])
def test_cholesky_of_non_positive_definite_raises_linalg_error(a):
    with pytest.raises(pd.LinAlgError, match=_all("cholesky", "positive definite", "(2, 2)")):
        pd.cholesky(pd.tensor(a))


def test_cholesky_of_a_batch_with_one_bad_matrix_raises_linalg_error():
    batch = pd.tensor(np.stack([np.eye(2), -np.eye(2)]))
    with pytest.raises(pd.LinAlgError, match=_all("cholesky", "positive definite")):
        pd.cholesky(batch)


def test_linalg_error_is_numpys():
    assert issubclass(pd.LinAlgError, np.linalg.LinAlgError)


def test_solve_and_inv_of_singular_matrix_raise_linalg_error():
    with pytest.raises(pd.LinAlgError, match=_all("solve", "singular")):
        pd.solve(pd.zeros(3, 3), pd.ones(3))
    with pytest.raises(pd.LinAlgError, match=_all("inv", "singular")):
        pd.inv(pd.zeros(3, 3))


# ----------------------------------------------------------------- settings and devices
@pytest.mark.parametrize("dtype", [np.int32, np.int64, "int64", bool, np.complex128])
def test_set_default_dtype_rejects_non_real_float_dtypes(dtype):
    before = pd.get_default_dtype()
    name = np.dtype(dtype).name
    with pytest.raises(TypeError, match=_all("set_default_dtype", name)):
        pd.set_default_dtype(dtype)
    assert pd.get_default_dtype() == before  # a failed call changes nothing


def test_set_default_dtype_rejects_a_non_dtype_naming_it():
    with pytest.raises(TypeError, match="floaty"):
        pd.set_default_dtype("floaty")


@pytest.mark.parametrize("seed", [1.5, "7", None, True, [1, 2]], ids=["float", "str", "None", "bool", "list"])
def test_set_rng_seed_rejects_non_ints_naming_the_type(seed):
    with pytest.raises(TypeError, match=_all("set_rng_seed", type(seed).__name__)):
        pd.set_rng_seed(seed)


def test_set_rng_seed_accepts_numpy_ints():
    pd.set_rng_seed(np.int64(3))
    a = pd.get_rng().normal()
    pd.set_rng_seed(3)
    assert pd.get_rng().normal() == a


@pytest.mark.parametrize("make", [
    lambda: pd.device("tpu"),
    lambda: pd.Device("tpu"),
    lambda: pd.tensor([1.0], device="tpu"),
    lambda: pd.ones(2, device="tpu"),
    lambda: pd.ones(2).to("tpu"),
], ids=["device", "Device", "tensor", "ones", "to"])
def test_unknown_device_type_names_it_and_the_known_ones(make):
    with pytest.raises(ValueError, match=_all("tpu", "cpu", "cuda")):
        make()


def test_malformed_device_index_names_the_device_string():
    with pytest.raises(ValueError, match=_all("device", "cuda:x")):
        pd.device("cuda:x")


def test_moving_to_cuda_without_a_gpu_says_so():
    if pd.cuda_is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match=_all("cuda", "CuPy")):
        pd.ones(2).to("cuda")


# ----------------------------------------------------------------- special functions, one_hot, reshape
@pytest.mark.parametrize("n", [-1, -2, 1.5, True], ids=["-1", "-2", "1.5", "bool"])
def test_polygamma_with_bad_order_names_the_order(n):
    with pytest.raises(ValueError, match=_all("polygamma", "non-negative int", repr(n))):
        pd.polygamma(n, pd.ones(2))


def test_polygamma_method_with_negative_order():
    with pytest.raises(ValueError, match=_all("polygamma", "-1")):
        pd.ones(2).polygamma(-1)


@pytest.mark.parametrize("indices, num_classes, lo, hi", [
    ([0, 3], 3, 0, 3),
    ([-1, 1], 3, -1, 1),
    ([[0, 5], [1, 2]], 4, 0, 5),
])
def test_one_hot_out_of_range_names_the_range_and_the_values(indices, num_classes, lo, hi):
    with pytest.raises(ValueError, match=_all("one_hot", f"[0, {num_classes})", f"from {lo} to {hi}")):
        pd.one_hot(pd.tensor(indices), num_classes)


def test_one_hot_of_float_indices_names_the_dtype():
    with pytest.raises(TypeError, match=_all("one_hot", "float64")):
        pd.one_hot(pd.tensor([0.0, 1.0]), 3)


@pytest.mark.parametrize("call, target", [
    (lambda x: x.reshape(4, 2), r"\(4, ?2\)"),
    (lambda x: pd.reshape(x, (5,)), r"\(5,\)"),
    (lambda x: x.view(7), r"\(7,?\)"),
])
def test_bad_reshape_names_op_sizes_and_target_shape(call, target):
    x = pd.ones(2, 3)
    with pytest.raises(ValueError, match=_all("reshape", "size 6", target, r"\(2, 3\)", regex=True)):
        call(x)


def test_reshape_with_two_unknown_dims_names_op():
    with pytest.raises(ValueError, match=_all("reshape", "unknown dimension")):
        pd.ones(2, 3).reshape(-1, -1)


def test_permute_with_a_non_permutation_names_dims_and_shape():
    with pytest.raises(ValueError, match=_all("permute", "(0, 0)", "(2, 3)")):
        pd.ones(2, 3).permute(0, 0)


def test_item_of_a_multi_element_tensor_names_the_shape():
    with pytest.raises(ValueError, match=_all("item", "(2, 3)")):
        pd.ones(2, 3).item()
    with pytest.raises(ValueError, match=_all("ambiguous", "(2, 3)")):
        bool(pd.ones(2, 3))
