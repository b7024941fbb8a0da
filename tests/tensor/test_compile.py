"""Trace-and-replay compilation of a value and its gradient: agreement with the eager engine for every op kind
(templated and not, with broadcasting), refusal when the graph may depend on values, and its use by NUTS."""
import warnings

import numpy as np
import pytest

import probdl as pd
import probdl.distributions as dist
from probdl.infer import MCMC, NUTS
from probdl.infer.hmc import FlatModel
from probdl.infer.util import initialize_model
from probdl.primitives import deterministic, plate, sample
from probdl.tensor import value_and_grad
from probdl.tensor.autograd import Op, apply
from probdl.tensor.compile import NotCompilable, agrees_with, compile_forward, compile_value_and_grad

RNG = np.random.default_rng(0)
DATA = RNG.normal(size=(4, 3))


def eager(fn):
    vg = value_and_grad(fn)

    def f(x):
        v, g = vg(pd.tensor(x))
        return float(v.data), g.numpy()

    return f


def templated_ops(x):
    """Every op with a generated template, broadcasting against data of another shape."""
    a = x[:3]                       # GetItem (basic)
    m = x[3:15].reshape(4, 3)       # GetItem + Reshape
    s = (m * a + DATA) / (1.5 + a * a) - a   # Mul, Add, Div, Square-free, Sub with broadcasting (4,3) vs (3,)
    t = pd.exp(-s) + pd.log1p(pd.exp(s)) + pd.expm1(0.1 * a) + pd.tanh(s) + pd.sqrt(1 + m ** 2)
    u = pd.sigmoid(m) * pd.softplus(-m) + pd.log(2.0 + pd.square(a)) - (-a)
    batched = (m.reshape(2, 2, 3) @ DATA.T).transpose(0, 2, 1)  # MatMul with a batch dim, Transpose
    low = pd.tril(m[:3] * a)                                    # Tril
    bern = pd.bernoulli_log_likelihood(m, pd.tensor([0.0, 1.0, 0.3]))  # BernoulliLogLikelihood, broadcast
    return ((t.sum(0) * u.sum(axis=0, keepdims=True)).sum() + (t ** 3).sum() / 100 + (batched ** 2).mean()
            + low.sum() + pd.diagonal(low, 0, -2, -1).sum() + bern.sum())


def generic_ops(x):
    """Ops without templates go through their own Tensor-level rules: indexing with arrays, matmul,
    Cholesky, special functions, reductions, where."""
    L = pd.tril(x[:9].reshape(3, 3)) + 3 * pd.eye(3)
    K = L @ L.mT
    C = pd.cholesky(K)
    v = pd.solve_triangular(C, x[9:12], lower=True)
    w = pd.where(x[12:15] > 0, x[12:15], 0.5 * x[12:15])
    fancy = x[np.array([0, 0, 2])]
    return (pd.lgamma(2 + v * v).sum() + pd.logsumexp(w, 0) + (fancy * fancy).sum()
            + pd.log(pd.diagonal(C, 0, -2, -1)).sum() + pd.maximum(w, 0.1).mean())


def shape_specific_ops(x):
    """Ops whose replay is specialized to their shapes: einsum (array rules, and the Tensor rule where an
    operand repeats a letter or sums one alone), triangles, diagonals, transposes, a triangular solve."""
    m = x[:9].reshape(3, 3)
    v = x[9:12]
    quad = pd.einsum("ij,jk->ik", m, m.mT).sum() + pd.einsum("i,i->", v, v) + pd.einsum("ij,j->i", m, v).sum()
    fallback = pd.einsum("ii->i", m).sum() + pd.einsum("ij->i", m * v).sum()
    tri = pd.triu(m, 1).sum() + pd.tril(m, -1).sum() * 2
    L = pd.tril(m) + pd.diag_embed(pd.exp(v))
    w = pd.solve_triangular(L, m.mT, lower=True)
    return quad + fallback + tri + (w * w).sum() + pd.log(pd.diagonal(L, 0, -2, -1)).sum()


@pytest.mark.parametrize("fn, size", [(templated_ops, 15), (generic_ops, 15), (shape_specific_ops, 12)])
def test_replay_matches_the_engine(fn, size):
    x0 = RNG.normal(size=size)
    compiled = compile_value_and_grad(fn, x0)
    ref = eager(fn)
    points = [x0, x0 + 0.3 * RNG.normal(size=size), RNG.normal(size=size)]
    for z in points:
        v_c, g_c = compiled(z)
        v_e, g_e = ref(z)
        assert v_c == pytest.approx(v_e, rel=1e-13)
        np.testing.assert_allclose(g_c, g_e, rtol=1e-12, atol=1e-14)
    assert agrees_with(compiled, ref, points)


def identities(x):
    """Ops that compute nothing (x - 0, x / 1, 1 * x, -(-x), a reshape to the same shape, a sum over no axes, a
    Where on a constant condition) around real work, with operands broadcast from (1, 3) and ()."""
    m = x.reshape(2, 3)
    row, scalar = x[:3].reshape(1, 3), x[4]
    y = -(-((m - pd.zeros(3)) / pd.ones((2, 3)) * 1.0)).reshape(2, 3)
    z = pd.where(np.ones((2, 3), dtype=bool), y * row, 7.0) + pd.where(np.zeros(3, dtype=bool), 7.0, scalar * y)
    return (z * z).sum() + pd.exp(row).sum(axis=()).sum() + pd.lgamma(2 + scalar * scalar)


def test_identities_are_skipped_and_the_replay_is_exact():
    x0 = RNG.normal(size=6)
    compiled = compile_value_and_grad(identities, x0)
    names = compiled.compiled.op_names
    assert "Div" not in names and "Neg" not in names and "Where" not in names, names
    ref = eager(identities)
    for z in (x0, RNG.normal(size=6)):
        v_c, g_c = compiled(z)
        v_e, g_e = ref(z)
        assert v_c == v_e  # every rewrite is exact
        np.testing.assert_array_equal(g_c, g_e)


class StopGradient(Op):
    """An op from outside the engine (no array template): identity forward, a rule that gives no gradient."""

    forward = staticmethod(lambda x: x.copy())
    backward = staticmethod(lambda node, out, g: (None,))


def test_a_rule_that_gives_no_gradient_cuts_the_path_behind_it():
    def fn(x):
        hidden = pd.exp(apply(StopGradient, (x * 3.0 + 1.0,)))  # x * 3 (+ 1) reached only through the rule
        return (hidden * 2.0).sum() + (x * x).sum()

    x0 = RNG.normal(size=4)
    compiled = compile_value_and_grad(fn, x0)
    value, grad = compiled(x0)
    assert value == pytest.approx(2 * np.exp(3 * x0 + 1).sum() + (x0 * x0).sum(), rel=1e-14)
    np.testing.assert_allclose(grad, 2 * x0, rtol=1e-14)


def test_large_values_reuse_their_buffers_without_changing_earlier_results():
    """Values of 2^14 elements and more are written into buffers kept between replays; what a replay returns
    must not be one of them, or the next replay would overwrite it."""
    data = RNG.normal(size=(200, 100))

    def fn(x):
        h = pd.tanh(pd.tensor(data) @ x + x.sum())  # MatMul, Add, Tanh on (200, 100): buffered
        return (h * h).sum()

    x1, x2 = RNG.normal(size=(100, 100)), RNG.normal(size=(100, 100))
    compiled = compile_value_and_grad(fn, x1)
    assert "out=B" in compiled.source
    v1, g1 = compiled(x1)
    kept = g1.copy()
    v2, g2 = compiled(x2)
    np.testing.assert_array_equal(g1, kept)
    for x, v, g in ((x1, v1, g1), (x2, v2, g2)):
        v_e, g_e = eager(fn)(x)
        assert v == v_e
        np.testing.assert_array_equal(g, g_e)


def test_input_of_any_shape_and_a_constant_leaf():
    w = pd.tensor(RNG.normal(size=(3,)), requires_grad=True)  # a parameter: frozen in the replay, like data

    def fn(x):
        return ((x * w) ** 2).sum()

    x0 = RNG.normal(size=(2, 3))
    compiled = compile_value_and_grad(fn, x0)
    v, g = compiled(x0)
    np.testing.assert_allclose(g, 2 * x0 * w.numpy() ** 2, rtol=1e-14)
    assert g.shape == (2, 3)


@pytest.mark.parametrize("fn, what", [
    (lambda x: x.sum() if float(x[0]) > 0 else -x.sum(), "__float__"),
    (lambda x: (x * x).sum() if bool(x[0] > 0) else x.sum(), "__bool__"),
    (lambda x: (x * pd.tensor(x.numpy() > 0)).sum(), "numpy"),
    (lambda x: (x * x.detach()).sum(), "detach"),
])
def test_value_reads_make_a_function_not_compilable(fn, what):
    with pytest.raises(NotCompilable, match=what):
        compile_value_and_grad(fn, np.ones(3))


def test_random_ops_are_not_compilable():
    with pytest.raises(NotCompilable, match="random draw"):
        compile_value_and_grad(lambda x: (x * pd.randn(3)).sum(), np.ones(3))


def test_agreement_check_catches_a_hidden_branch():
    def fn(x):  # branches on the raw .data, which the trace cannot see
        return (x * x).sum() if x.data[0] > 0 else (x * x * x).sum()

    compiled = compile_value_and_grad(fn, np.ones(3))
    assert agrees_with(compiled, eager(fn), [np.ones(3), 2 * np.ones(3)])
    assert not agrees_with(compiled, eager(fn), [-np.ones(3)])


Y = pd.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = pd.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def eight_schools(y, sigma):
    mu = sample("mu", dist.Normal(0.0, 5.0))
    tau = sample("tau", dist.HalfCauchy(5.0))
    with plate("school", 8):
        theta_tilde = sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = deterministic("theta", mu + tau * theta_tilde)
        sample("y", dist.Normal(theta, sigma), obs=y)


def test_nuts_draws_are_the_same_compiled_or_not():
    runs = []
    for jit in (True, False):
        mcmc = MCMC(NUTS(eight_schools, jit_compile=jit), num_warmup=100, num_samples=100, progress_bar=False)
        mcmc.run(Y, SIGMA, seed=3)
        runs.append(mcmc.get_samples())
    for name in runs[0]:
        np.testing.assert_allclose(runs[0][name], runs[1][name], rtol=1e-9, atol=1e-12)


def branching_model():
    x = sample("x", dist.Normal(0.0, 1.0))
    if float(x) > 0:  # a Python branch on a latent value: compiling would freeze one side
        sample("y", dist.Normal(x, 1.0), obs=pd.tensor(0.5))


def test_a_branching_model_runs_uncompiled():
    fm = FlatModel(initialize_model(branching_model), jit_compile=True)
    assert fm.compiled is None and "__float__" in fm.why_not_compiled


def test_disagreement_during_sampling_falls_back_with_a_warning():
    fm = FlatModel(initialize_model(eight_schools, (Y, SIGMA)), jit_compile=True)
    assert fm.compiled is not None
    z = fm.pack(fm.info.params)
    real = fm.compiled
    fm._replay_fn = lambda x: (0.0, (np.zeros_like(x),))  # a replay that has gone wrong
    fm.calls = fm.CHECK_EVERY - 1
    with pytest.warns(RuntimeWarning, match="switching to the uncompiled model"):
        u, g = fm(z)
    assert fm.compiled is None
    assert (u, list(g)) == (fm.eager(z)[0], list(fm.eager(z)[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert real(z)[0] == pytest.approx(u, rel=1e-13)


def test_forward_of_several_outputs_an_identity_and_a_constant():
    x = pd.tensor(RNG.normal(size=5), requires_grad=True)
    data = pd.tensor(DATA[0])

    def fn():
        return [pd.exp(x[:2]), x, (x[2:] * data).sum(), data * 2.0, pd.neg(pd.neg(x[3:])) / 1.0]

    compiled = compile_forward(fn, [x])
    for z in (x.numpy(), RNG.normal(size=5)):
        got = compiled(z)
        want = [np.exp(z[:2]), z, (z[2:] * DATA[0]).sum(), DATA[0] * 2.0, z[3:]]
        assert len(got) == 5
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_nuts_constrains_draws_by_a_compiled_replay():
    fm = FlatModel(initialize_model(eight_schools, (Y, SIGMA)), jit_compile=True)
    z0 = fm.pack(fm.info.params)
    for z in (z0, z0 + RNG.normal(size=z0.size)):
        got = fm.constrain(z)
        want = fm._constrain_eager(z)
        assert list(got) == list(want) == ["mu", "tau", "theta_tilde", "theta"]
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
    assert fm._constrain_replay is not None
    assert fm.constrain(z0)["tau"] > 0  # HalfCauchy: exp of the unconstrained value
    fm._constrain_replay = lambda z: tuple(np.zeros(4) for _ in range(4))  # a replay that has gone wrong
    fm.constrain_calls = fm.CHECK_EVERY - 1
    with pytest.warns(RuntimeWarning, match="postprocessing of draws disagreed"):
        out = fm.constrain(z0)
    assert fm._constrain_replay is None and out["tau"] > 0


def test_masks_and_comparisons_are_recomputed():
    def fn(x):
        mask = x > 0
        k = (x * 3).astype(np.int64).astype(np.float64)  # an integer cast: no gradient, but a value
        return (pd.where(mask, x * x, -x) + k * x).sum() + pd.logdet(pd.eye(2) * (2 + x[0] * x[0]))

    x0 = np.array([0.5, -0.2, 1.3])
    compiled = compile_value_and_grad(fn, x0)
    ref = eager(fn)
    for z in (np.array([-0.5, 0.4, -1.2]), np.array([1.0, 1.0, -1.0])):  # other signs and other integer parts
        v_c, g_c = compiled(z)
        v_e, g_e = ref(z)
        assert v_c == pytest.approx(v_e, rel=1e-13)
        np.testing.assert_allclose(g_c, g_e, rtol=1e-13)


def test_a_float32_model_compiles_and_agrees_to_float32_rounding():
    previous = pd.get_default_dtype()
    pd.set_default_dtype(np.float32)
    try:
        y32, sigma32 = pd.tensor(Y.numpy().astype(np.float32)), pd.tensor(SIGMA.numpy().astype(np.float32))
        fm = FlatModel(initialize_model(eight_schools, (y32, sigma32)), jit_compile=True)
        assert fm.compiled is not None, fm.why_not_compiled
        assert fm._rtol() == pytest.approx(1000 * np.finfo(np.float32).eps)
        z = fm.pack(fm.info.params) + 0.3
        (u_c, g_c), (u_e, g_e) = fm(z), fm.eager(z)
    finally:
        pd.set_default_dtype(previous)
    assert u_c == pytest.approx(u_e, rel=1e-5)
    np.testing.assert_allclose(g_c, g_e, rtol=1e-4, atol=1e-5)


def test_bernoulli_of_binary_data_is_specialized_and_exact_at_infinite_logits():
    """Observations that are all 0 or 1 (data) get the -softplus(s l) form: the same values and gradients as the
    op's, and 0 or -inf (never NaN) with a finite gradient at infinite logits."""
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])

    def loglik(x):
        return pd.bernoulli_log_likelihood(x * 3.0, y).sum()

    compiled = compile_value_and_grad(loglik, np.zeros(5))
    assert "BB" in compiled.source
    from scipy.special import expit
    for z in (RNG.normal(size=5), 40 * RNG.normal(size=5)):
        value, grad = compiled(z)
        v_e, g_e = eager(loglik)(z)
        assert value == pytest.approx(v_e, rel=1e-14, abs=1e-14)
        np.testing.assert_allclose(grad, g_e, rtol=1e-12, atol=1e-15)
        # 3 (y - σ(3z)) with no cancellation: where σ(3z) rounds to 1 the op's y - σ gives 0, this form the tail
        exact = np.where(y == 1, 3 * expit(-3 * z), -3 * expit(3 * z))
        np.testing.assert_allclose(grad, exact, rtol=1e-13)
    with np.errstate(all="ignore"):
        value, grad = compiled(np.array([np.inf, np.inf, -np.inf, -np.inf, np.inf]))
    assert value == -np.inf  # y = 0 at +inf and y = 1 at -inf are impossible
    assert np.all(np.isfinite(grad))
    value, grad = compiled(np.array([-np.inf, np.inf, np.inf, -np.inf, np.inf]))
    assert value == 0.0 and np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.0, 0.0, 0.0])
