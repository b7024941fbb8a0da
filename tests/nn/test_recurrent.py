"""LSTM, GRU and their cells: outputs and final states against a NumPy loop with the same weights,
gradients against finite differences, PyTorch's parameter names, dropout between layers, errors,
and PyTorch as an oracle when it is installed."""
import warnings

import numpy as np
import pytest

import probdl as pd
from probdl.nn.dropout import dropout
from probdl.nn.recurrent import GRU, LSTM, GRUCell, LSTMCell, _unbind
from probdl.testing import gradcheck


# ------------------------------------------------------------------ NumPy references
def sig(x):
    return 1 / (1 + np.exp(-x))


def np_lstm_step(x, h, c, w_ih, w_hh, b_ih, b_hh):
    i, f, g, o = np.split(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 4, axis=-1)
    c = sig(f) * c + sig(i) * np.tanh(g)
    return sig(o) * np.tanh(c), c


def np_gru_step(x, h, w_ih, w_hh, b_ih, b_hh):
    xr, xz, xn = np.split(x @ w_ih.T + b_ih, 3, axis=-1)
    hr, hz, hn = np.split(h @ w_hh.T + b_hh, 3, axis=-1)
    r, z = sig(xr + hr), sig(xz + hz)
    n = np.tanh(xn + r * hn)
    return (1 - z) * n + z * h


def np_rnn(mode, params, x, h0, c0, num_layers, bidirectional, batch_first):
    """The multi-layer recurrence written out step by step; x is (L, N, I) or (N, L, I) with batch_first."""
    D = 2 if bidirectional else 1
    inp = x.transpose(1, 0, 2) if batch_first else x
    L = inp.shape[0]
    hn, cn = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w = [params[n + sfx] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            k = layer * D + d
            h, c = h0[k], c0[k] if c0 is not None else None
            out = [None] * L
            for t in (range(L - 1, -1, -1) if d else range(L)):
                if mode == "LSTM":
                    h, c = np_lstm_step(inp[t], h, c, *w)
                else:
                    h = np_gru_step(inp[t], h, *w)
                out[t] = h
            outs.append(np.stack(out))
            hn.append(h)
            cn.append(c)
        inp = np.concatenate(outs, axis=-1)
    out = inp.transpose(1, 0, 2) if batch_first else inp
    return out, np.stack(hn), (np.stack(cn) if mode == "LSTM" else None)


def numpy_params(module):
    return {k: v.numpy() for k, v in module.state_dict().items()}


def with_params(module, names, run):
    """A function of (x, *params) that runs ``run(module, x)`` with the given tensors as its parameters."""
    def f(x, *ps):
        for n, p in zip(names, ps):
            module._parameters[n] = p
        return run(module, x)
    return f


# ------------------------------------------------------------------ values
@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize("num_layers,bidirectional,batch_first", [(1, False, False), (2, False, True),
                                                                  (3, True, False), (2, True, True)])
def test_matches_numpy_loop(cls, num_layers, bidirectional, batch_first, rng):
    n_in, H, L, N = 3, 4, 5, 2
    D = 2 if bidirectional else 1
    m = cls(n_in, H, num_layers, batch_first=batch_first, bidirectional=bidirectional, rng=0)
    x = rng.normal(size=(N, L, n_in) if batch_first else (L, N, n_in))
    h0 = rng.normal(size=(num_layers * D, N, H))
    c0 = rng.normal(size=(num_layers * D, N, H))
    mode = cls.__name__
    ref_out, ref_h, ref_c = np_rnn(mode, numpy_params(m), x, h0, c0 if mode == "LSTM" else None, num_layers,
                                   bidirectional, batch_first)
    if mode == "LSTM":
        out, (h, c) = m(pd.tensor(x), (pd.tensor(h0), pd.tensor(c0)))
        np.testing.assert_allclose(c.numpy(), ref_c, rtol=1e-12, atol=1e-12)
    else:
        out, h = m(pd.tensor(x), pd.tensor(h0))
    assert out.shape == ((N, L, D * H) if batch_first else (L, N, D * H))
    np.testing.assert_allclose(out.numpy(), ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h.numpy(), ref_h, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_zero_initial_state_and_no_bias(cls, rng):
    m = cls(2, 3, num_layers=2, bias=False, rng=1)
    assert list(m.state_dict()) == ["weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"]
    x = rng.normal(size=(4, 2, 2))
    p = numpy_params(m)
    for k in list(p):
        if k.startswith("weight"):
            p[k.replace("weight", "bias")] = np.zeros(p[k].shape[0])
    zeros = np.zeros((2, 2, 3))
    ref_out, ref_h, _ = np_rnn(cls.__name__, p, x, zeros, zeros, 2, False, False)
    out, state = m(pd.tensor(x))
    h = state[0] if cls is LSTM else state
    np.testing.assert_allclose(out.numpy(), ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h.numpy(), ref_h, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_unbatched_input_equals_a_batch_of_one(cls, rng):
    m = cls(3, 2, num_layers=2, bidirectional=True, rng=2)
    x, h0, c0 = rng.normal(size=(4, 3)), rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    if cls is LSTM:
        out, (h, c) = m(pd.tensor(x), (pd.tensor(h0), pd.tensor(c0)))
        out1, (h1, c1) = m(pd.tensor(x[:, None]), (pd.tensor(h0[:, None]), pd.tensor(c0[:, None])))
        np.testing.assert_allclose(c.numpy(), c1.numpy()[:, 0], rtol=1e-14)
    else:
        out, h = m(pd.tensor(x), pd.tensor(h0))
        out1, h1 = m(pd.tensor(x[:, None]), pd.tensor(h0[:, None]))
    assert out.shape == (4, 4) and h.shape == (4, 2)
    np.testing.assert_allclose(out.numpy(), out1.numpy()[:, 0], rtol=1e-14)
    np.testing.assert_allclose(h.numpy(), h1.numpy()[:, 0], rtol=1e-14)


def test_cells_match_numpy(rng):
    x, h, c = rng.normal(size=(3, 4)), rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    lstm, gru = LSTMCell(4, 5, rng=3), GRUCell(4, 5, rng=4)
    pl, pg = numpy_params(lstm), numpy_params(gru)
    wl = [pl[n] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    wg = [pg[n] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    h1, c1 = lstm(pd.tensor(x), (pd.tensor(h), pd.tensor(c)))
    rh, rc = np_lstm_step(x, h, c, *wl)
    np.testing.assert_allclose(h1.numpy(), rh, rtol=1e-13)
    np.testing.assert_allclose(c1.numpy(), rc, rtol=1e-13)
    np.testing.assert_allclose(gru(pd.tensor(x), pd.tensor(h)).numpy(), np_gru_step(x, h, *wg), rtol=1e-13)
    # No state given: zeros. Unbatched: (I,) in, (H,) out.
    np.testing.assert_allclose(gru(pd.tensor(x)).numpy(), np_gru_step(x, 0 * h, *wg), rtol=1e-13)
    h2, c2 = lstm(pd.tensor(x[0]), (pd.tensor(h[0]), pd.tensor(c[0])))
    assert h2.shape == (5,)
    np.testing.assert_allclose(h2.numpy(), rh[0], rtol=1e-13)
    np.testing.assert_allclose(c2.numpy(), rc[0], rtol=1e-13)


def test_gru_reset_gate_multiplies_the_hidden_bias(rng):
    """b_hn sits inside r ⊙ (W_hn h + b_hn): with h = 0 the new gate still depends on r through b_hn."""
    cell = GRUCell(2, 3, rng=5)
    x = rng.normal(size=(1, 2))
    base = cell(pd.tensor(x)).numpy()
    cell.bias_hh.data[:3] += 1.0  # moves r only; with b_hn outside the product this would change nothing
    assert not np.allclose(cell(pd.tensor(x)).numpy(), base)


# ------------------------------------------------------------------ parameters and initialisation
def test_parameter_names_and_shapes_are_pytorchs():
    m = LSTM(3, 4, num_layers=2, bidirectional=True)
    expected = []
    for layer in range(2):
        for sfx in ("", "_reverse"):
            expected += [f"{n}_l{layer}{sfx}" for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert list(m.state_dict()) == expected
    assert m.weight_ih_l0.shape == (16, 3) and m.weight_hh_l0.shape == (16, 4) and m.bias_ih_l0.shape == (16,)
    assert m.weight_ih_l1_reverse.shape == (16, 8)
    g = GRU(3, 4, num_layers=2)
    assert g.weight_ih_l0.shape == (12, 3) and g.weight_ih_l1.shape == (12, 4) and g.bias_hh_l1.shape == (12,)
    assert list(LSTMCell(3, 4).state_dict()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    assert GRUCell(3, 4).weight_hh.shape == (12, 4)
    assert len(m.all_weights) == 4 and len(m.all_weights[0]) == 4
    assert repr(m) == "LSTM(3, 4, num_layers=2, bidirectional=True)"
    assert repr(GRU(2, 5, bias=False, batch_first=True)) == "GRU(2, 5, bias=False, batch_first=True)"
    assert repr(GRUCell(2, 5)) == "GRUCell(2, 5)"


@pytest.mark.parametrize("cls", [LSTM, GRU, LSTMCell, GRUCell])
def test_init_is_uniform_within_one_over_sqrt_hidden(cls):
    m = cls(30, 25, rng=6)
    k = 1 / np.sqrt(25)
    values = np.concatenate([p.numpy().ravel() for p in m.parameters()])
    assert np.all(np.abs(values) <= k)
    n = values.size  # U(-k, k): mean 0, variance k²/3
    assert abs(values.mean()) < 5 * k / np.sqrt(3 * n)
    assert abs(values.var() - k ** 2 / 3) < 5 * k ** 2 * np.sqrt(4 / 45 / n)
    for p, q in zip(m.parameters(), cls(30, 25, rng=6).parameters()):  # reproducible from the seed
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    heads = [p.numpy().ravel()[:20] for p in m.parameters()]  # one stream, not a restarted one per parameter
    assert not any(np.allclose(heads[0], h) for h in heads[1:])


# ------------------------------------------------------------------ gradients
def _lstm_run(m, x, h0, c0):
    out, (h, c) = m(x, (h0, c0))
    return pd.concatenate([out.reshape(-1), h.reshape(-1), c.reshape(-1)])


def _gru_run(m, x, h0):
    out, h = m(x, h0)
    return pd.concatenate([out.reshape(-1), h.reshape(-1)])


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_gradcheck_two_layers_three_steps(bidirectional, rng):
    m = LSTM(2, 2, num_layers=2, batch_first=True, bidirectional=bidirectional, rng=7)
    D = 2 if bidirectional else 1
    names = list(m.state_dict())
    params = [rng.normal(scale=0.7, size=p.shape) for p in m.parameters()]
    x, h0, c0 = rng.normal(size=(2, 3, 2)), rng.normal(size=(2 * D, 2, 2)), rng.normal(size=(2 * D, 2, 2))

    def f(x, h0, c0, *ps):
        return with_params(m, names, lambda mod, x: _lstm_run(mod, x, h0, c0))(x, *ps)

    gradcheck(f, [x, h0, c0, *params])


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gru_gradcheck_two_layers_three_steps(bidirectional, rng):
    m = GRU(2, 2, num_layers=2, bidirectional=bidirectional, rng=8)
    D = 2 if bidirectional else 1
    names = list(m.state_dict())
    params = [rng.normal(scale=0.7, size=p.shape) for p in m.parameters()]
    x, h0 = rng.normal(size=(3, 2, 2)), rng.normal(size=(2 * D, 2, 2))

    def f(x, h0, *ps):
        return with_params(m, names, lambda mod, x: _gru_run(mod, x, h0))(x, *ps)

    gradcheck(f, [x, h0, *params])


def test_second_order_gradients(rng):
    lstm, gru = LSTM(2, 2, rng=9), GRU(2, 2, rng=10)
    x = rng.normal(size=(2, 1, 2))
    gradcheck(lambda x, w: with_params(lstm, ["weight_hh_l0"], lambda m, x: m(x)[0])(x, w),
              [x, rng.normal(size=(8, 2))], order=2)
    gradcheck(lambda x, w: with_params(gru, ["weight_hh_l0"], lambda m, x: m(x)[0])(x, w),
              [x, rng.normal(size=(6, 2))], order=2)


def test_cell_gradcheck(rng):
    lstm, gru = LSTMCell(3, 2, rng=11), GRUCell(3, 2, rng=12)
    names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    x, h, c = rng.normal(size=(2, 3)), rng.normal(size=(2, 2)), rng.normal(size=(2, 2))

    def f_lstm(x, h, c, *ps):
        def run(m, x):
            h1, c1 = m(x, (h, c))
            return pd.concatenate([h1, c1], axis=-1)
        return with_params(lstm, names, run)(x, *ps)

    gradcheck(f_lstm, [x, h, c, *[rng.normal(size=p.shape) for p in lstm.parameters()]])
    gradcheck(lambda x, h, *ps: with_params(gru, names, lambda m, x: m(x, h))(x, *ps),
              [x, h, *[rng.normal(size=p.shape) for p in gru.parameters()]])


def test_unbind_slices_and_gradient(rng):
    x = pd.tensor(rng.normal(size=(7, 2)), requires_grad=True)
    parts = _unbind(x)
    assert len(parts) == 7
    for t, p in enumerate(parts):
        np.testing.assert_array_equal(p.numpy(), x.numpy()[t])
    weights = rng.normal(size=(7, 2))
    sum(p * pd.tensor(w) for p, w in zip(parts, weights)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), weights, rtol=1e-15)


# ------------------------------------------------------------------ dropout between layers
@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_dropout_between_layers_in_training_only(cls, rng):
    m = cls(3, 4, num_layers=2, dropout=0.5, rng=13)
    single = [cls(3, 4), cls(4, 4)]  # the two layers of m, one by one
    for layer, s in enumerate(single):
        s.load_state_dict({k.replace(f"_l{layer}", "_l0"): v for k, v in m.state_dict().items()
                           if k.endswith(f"_l{layer}")})
    x = pd.tensor(rng.normal(size=(5, 2, 3)))
    twin = np.random.default_rng()
    twin.bit_generator.state = m.rng.bit_generator.state  # the masks m is about to draw
    out = m(x)[0]
    mid = dropout(single[0](x)[0], 0.5, rng=twin)
    expected = single[1](mid)[0]
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-14)
    assert np.any(mid.numpy() == 0)
    m.eval()
    np.testing.assert_allclose(m(x)[0].numpy(), single[1](single[0](x)[0])[0].numpy(), rtol=1e-14)


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match="with num_layers=1 it does nothing"):
        LSTM(2, 3, dropout=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GRU(2, 3, num_layers=2, dropout=0.2)


# ------------------------------------------------------------------ errors
def test_errors(rng):
    lstm, gru = LSTM(3, 4, num_layers=2), GRU(3, 4, batch_first=True)
    with pytest.raises(ValueError, match=r"LSTM: expected a non-empty input of shape \(L, N, input_size\).*"
                                         r"input_size=3.*got shape \(5, 2, 2\)"):
        lstm(pd.tensor(rng.normal(size=(5, 2, 2))))
    with pytest.raises(ValueError, match=r"GRU: expected a non-empty input of shape \(N, L, input_size\).*"
                                         r"\(2, 2, 2, 3\)"):
        gru(pd.tensor(rng.normal(size=(2, 2, 2, 3))))
    with pytest.raises(ValueError, match=r"got shape \(2, 0, 3\)"):
        gru(pd.zeros(2, 0, 3))
    x = pd.tensor(rng.normal(size=(5, 2, 3)))
    with pytest.raises(ValueError, match=r"expected hx\[0\] \(h_0\) of shape \(2, 2, 4\), got \(1, 2, 4\)"):
        lstm(x, (pd.zeros(1, 2, 4), pd.zeros(2, 2, 4)))
    with pytest.raises(ValueError, match=r"expected hx\[1\] \(c_0\) of shape \(2, 2, 4\), got \(2, 3, 4\)"):
        lstm(x, (pd.zeros(2, 2, 4), pd.zeros(2, 3, 4)))
    with pytest.raises(ValueError, match=r"LSTM: hx must be a tuple \(h_0, c_0\)"):
        lstm(x, pd.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="for unbatched 2-D input, hx \\(h_0\\) should be 2-D"):
        GRU(3, 4)(pd.tensor(rng.normal(size=(5, 3))), pd.zeros(1, 1, 4))
    with pytest.raises(ValueError, match="dropout should be a number in"):
        LSTM(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        GRU(3, 0)
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        LSTM(3, 4, num_layers=0)
    with pytest.raises(ValueError, match=r"LSTMCell: expected an input of shape \(N, 3\) or \(3,\), got .*\(2, 4\)"):
        LSTMCell(3, 4)(pd.zeros(2, 4))
    with pytest.raises(ValueError, match=r"GRUCell: expected hx of shape \(2, 4\), got \(2, 5\)"):
        GRUCell(3, 4)(pd.zeros(2, 3), pd.zeros(2, 5))


# ------------------------------------------------------------------ PyTorch as an oracle
def _torch_twin(ours, theirs, torch):
    theirs = theirs.double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    return theirs


def _assert_close(a, b):
    np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_torch_multilayer_batch_first(cls, bidirectional, rng):
    torch = pytest.importorskip("torch")
    kw = dict(num_layers=3, batch_first=True, bidirectional=bidirectional)
    ours = {"LSTM": LSTM, "GRU": GRU}[cls](3, 5, **kw, rng=14)
    theirs = _torch_twin(ours, getattr(torch.nn, cls)(3, 5, **kw), torch)
    D = 2 if bidirectional else 1
    arrays = [rng.normal(size=(2, 6, 3)), rng.normal(size=(3 * D, 2, 5)), rng.normal(size=(3 * D, 2, 5))]
    po = [pd.tensor(a, requires_grad=True) for a in arrays]
    pt = [torch.tensor(a, requires_grad=True) for a in arrays]
    if cls == "LSTM":
        out_o, (h_o, c_o) = ours(po[0], (po[1], po[2]))
        out_t, (h_t, c_t) = theirs(pt[0], (pt[1], pt[2]))
        _assert_close(c_o, c_t)
        finals_o, finals_t = [h_o, c_o], [h_t, c_t]
    else:
        out_o, h_o = ours(po[0], po[1])
        out_t, h_t = theirs(pt[0], pt[1])
        finals_o, finals_t = [h_o], [h_t]
    _assert_close(out_o, out_t)
    _assert_close(h_o, h_t)
    probes = [rng.normal(size=t.shape) for t in [out_o, *finals_o]]
    sum((t * pd.tensor(p)).sum() for t, p in zip([out_o, *finals_o], probes)).backward()
    sum((t * torch.from_numpy(p)).sum() for t, p in zip([out_t, *finals_t], probes)).backward()
    n_inputs = 3 if cls == "LSTM" else 2
    for a, b in zip(po[:n_inputs], pt[:n_inputs]):
        _assert_close(a.grad, b.grad)
    for (name, p), (tname, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == tname
        _assert_close(p.grad, q.grad)


def test_unbatched_matches_torch(rng):
    torch = pytest.importorskip("torch")
    ours = GRU(2, 3, num_layers=2, rng=15)
    theirs = _torch_twin(ours, torch.nn.GRU(2, 3, num_layers=2), torch)
    x = rng.normal(size=(4, 2))
    out_o, h_o = ours(pd.tensor(x))
    out_t, h_t = theirs(torch.from_numpy(x))
    _assert_close(out_o, out_t)
    _assert_close(h_o, h_t)


def test_cells_match_torch(rng):
    torch = pytest.importorskip("torch")
    lstm, gru = LSTMCell(3, 4, rng=16), GRUCell(3, 4, rng=17)
    tl = _torch_twin(lstm, torch.nn.LSTMCell(3, 4), torch)
    tg = _torch_twin(gru, torch.nn.GRUCell(3, 4), torch)
    x, h, c = rng.normal(size=(2, 3)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    h_o, c_o = lstm(pd.tensor(x), (pd.tensor(h), pd.tensor(c)))
    h_t, c_t = tl(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)))
    _assert_close(h_o, h_t)
    _assert_close(c_o, c_t)
    _assert_close(gru(pd.tensor(x), pd.tensor(h)), tg(torch.from_numpy(x), torch.from_numpy(h)))


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_float32_parameters_and_input_stay_float32(cls, rng):
    m = cls(3, 4, num_layers=2, bidirectional=True, dtype=np.float32, rng=18)
    out, state = m(pd.tensor(rng.normal(size=(5, 2, 3)), dtype=pd.float32))
    h = state[0] if cls is LSTM else state
    assert m.weight_ih_l1_reverse.dtype == np.float32
    assert out.dtype == np.float32 and h.dtype == np.float32
