"""probdl.save / probdl.load: exact round trips, no code execution, and clear errors on bad files."""
import io
import json
import math
import os
import zipfile
from collections import OrderedDict, namedtuple
from pathlib import Path

import numpy as np
import pytest

import probdl as pd
from probdl.serialization import STRUCTURE, SerializationError, load, save
from probdl.testing import skip_unless_device


def roundtrip(obj, tmp_path, **load_kwargs):
    path = tmp_path / "obj.pdl"
    save(obj, path)
    return load(path, **load_kwargs)


def assert_array_exact(a, b):
    assert type(a) is type(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


def write_npz(path, members, allow_pickle=False):
    """An npz archive with the given members (name -> array), written member by member."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in members.items():
            with zf.open(name + ".npy", "w") as m:
                np.lib.format.write_array(m, np.asanyarray(arr), allow_pickle=allow_pickle)


def structure(root, version=1):
    doc = {"format": "probdl", "version": version, "root": root}
    return np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("arr", [
    np.arange(6.0).reshape(2, 3),
    np.linspace(0, 1, 5, dtype=np.float32),
    np.array([-(2**62), 0, 2**62], dtype=np.int64),
    np.array([[True, False], [False, True]]),
    np.array(3.5),
    np.array(7, dtype=np.int8),
    np.zeros((0, 3)),
    np.zeros((2, 0, 4), dtype=np.int32),
    np.array([1 + 2j, -1j], dtype=np.complex128),
    np.array(["ab", "cde"]),
    np.arange(12.0).reshape(3, 4).T,  # not C-contiguous
    np.arange(3, dtype=">f4"),  # big-endian
], ids=lambda a: f"{a.dtype}{a.shape}")
def test_array_roundtrip_exact(arr, tmp_path):
    out = roundtrip(arr, tmp_path)
    assert_array_exact(out, arr)
    assert out.flags.writeable


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.bool_])
def test_tensor_roundtrip(dtype, tmp_path):
    t = pd.tensor(np.arange(6).reshape(3, 2).astype(dtype))
    out = roundtrip(t, tmp_path)
    assert isinstance(out, pd.Tensor)
    assert_array_exact(out.numpy(), t.numpy())
    assert out.device == "cpu" and not out.requires_grad


def test_tensor_with_grad_loads_as_leaf_without_grad(tmp_path):
    w = pd.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = w * 2.0
    out = roundtrip({"w": w, "y": y}, tmp_path)
    assert not out["w"].requires_grad and out["w"].is_leaf and out["w"].grad is None
    np.testing.assert_array_equal(out["y"].numpy(), [2.0, -4.0, 6.0])
    assert out["w"].data is not w.data


def test_zero_dim_and_empty_tensors(tmp_path):
    out = roundtrip([pd.tensor(2.5), pd.zeros(0, 2), pd.tensor(np.array(3, dtype=np.int32))], tmp_path)
    assert out[0].shape == () and out[0].item() == 2.5
    assert out[1].shape == (0, 2) and out[1].dtype == np.float64
    assert out[2].dtype == np.int32


def test_nested_structure_keeps_types_keys_and_order(tmp_path):
    obj = {
        "state": {3: {"step": 10, "exp_avg": pd.ones(2)}, 0: {"step": 10, "exp_avg": pd.zeros(2)}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [3, 0], "amsgrad": False, "name": None}],
        2: "int key", "2": "str key",
        "pair": (1, [2, (3,)]), "empty": ([], (), {}),
        "text": "ünïcödé \"quoted\" \n",
        "big": 2**80, "neg": -7, "flag": True, "zero": 0,
        "floats": [0.1, -0.0, math.inf, -math.inf, 1e-310],
        "complex": 1.5 - 2j,
        "np scalars": [np.float32(1.25), np.int16(-3), np.bool_(True), np.float64(2.0)],
    }
    out = roundtrip(obj, tmp_path)
    assert list(out) == list(obj)
    assert list(out["state"]) == [3, 0]
    assert out[2] == "int key" and out["2"] == "str key"
    assert out["param_groups"][0]["betas"] == (0.9, 0.999) and isinstance(out["param_groups"][0]["betas"], tuple)
    assert out["param_groups"][0]["params"] == [3, 0] and isinstance(out["param_groups"][0]["params"], list)
    assert out["pair"] == (1, [2, (3,)]) and type(out["pair"][1][1]) is tuple
    assert out["empty"] == ([], (), {}) and type(out["empty"]) is tuple
    for k in ("text", "big", "neg", "flag", "zero", "complex"):
        assert out[k] == obj[k] and type(out[k]) is type(obj[k]), k
    assert out["flag"] is True and type(out["zero"]) is int
    assert out["floats"][:1] + out["floats"][2:] == [0.1, math.inf, -math.inf, 1e-310]
    assert math.copysign(1.0, out["floats"][1]) == -1.0
    for a, b in zip(out["np scalars"], obj["np scalars"]):
        assert type(a) is type(b) and a == b
    assert out["param_groups"][0]["name"] is None
    np.testing.assert_array_equal(out["state"][3]["exp_avg"].numpy(), [1.0, 1.0])


def test_nan_roundtrip(tmp_path):
    out = roundtrip({"x": float("nan"), "a": np.array([np.nan, 1.0])}, tmp_path)
    assert math.isnan(out["x"]) and np.isnan(out["a"][0])


def test_state_dict_like_ordered_dict_keeps_order_and_type(tmp_path):
    names = ["layers.2.weight", "layers.0.bias", "layers.10.weight", "a", "z.bias"]
    sd = OrderedDict((n, pd.tensor(np.full((2, i + 1), float(i)))) for i, n in enumerate(names))
    out = roundtrip(sd, tmp_path)
    assert type(out) is OrderedDict and list(out) == names
    for n in names:
        assert_array_exact(out[n].numpy(), sd[n].numpy())
    assert type(roundtrip(dict(sd), tmp_path)) is dict


def test_shared_objects_load_as_one(tmp_path):
    w = pd.randn(3)
    a = np.arange(3)
    out = roundtrip({"encoder": w, "decoder": w, "arrays": [a, a], "other": pd.randn(3)}, tmp_path)
    assert out["encoder"] is out["decoder"]
    assert out["arrays"][0] is out["arrays"][1]
    assert out["other"] is not out["encoder"]
    with zipfile.ZipFile(tmp_path / "obj.pdl") as zf:
        assert len(zf.namelist()) == 4  # structure + w + a + other


def test_python_scalars_at_the_root(tmp_path):
    for obj in (None, True, 0, -3.25, "hi", 2**70, [], {}):
        out = roundtrip(obj, tmp_path)
        assert out == obj and type(out) is type(obj)


# ------------------------------------------------------------------------------------------ files and paths
def test_str_path_and_file_objects(tmp_path):
    obj = {"w": pd.tensor([1.0, 2.0])}
    save(obj, str(tmp_path / "a.pdl"))
    assert load(str(tmp_path / "a.pdl"))["w"].tolist() == [1.0, 2.0]
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    assert load(buf)["w"].tolist() == [1.0, 2.0]
    with open(tmp_path / "b.pdl", "wb") as fh:
        save(obj, fh)
    with open(tmp_path / "b.pdl", "rb") as fh:
        assert load(fh)["w"].tolist() == [1.0, 2.0]
        assert not fh.closed  # a file object the caller opened stays open


def test_writes_exactly_the_path_and_numpy_can_read_it(tmp_path):
    path = tmp_path / "model.pt"
    save({"w": np.arange(3.0)}, path)
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]  # no suffix added, no temporary file left behind
    with np.load(path, allow_pickle=False) as npz:
        assert STRUCTURE in npz.files
        assert npz[STRUCTURE].dtype == np.uint8
        doc = json.loads(npz[STRUCTURE].tobytes())
        assert doc["format"] == "probdl" and doc["root"] == {"dict": [["w", {"ndarray": "a0"}]]}
        np.testing.assert_array_equal(npz["a0"], [0.0, 1.0, 2.0])


def test_overwrite_and_failed_save_leaves_old_file(tmp_path):
    path = tmp_path / "ckpt.pdl"
    save({"v": 1}, path)
    save({"v": 2}, path)
    assert load(path) == {"v": 2}
    with pytest.raises(TypeError):
        save({"v": 3, "bad": {1, 2}}, path)
    assert load(path) == {"v": 2}
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pdl"]


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save(1, tmp_path / "nope" / "x.pdl")


def test_map_location(tmp_path):
    t = pd.tensor([1.0, 2.0])
    assert roundtrip(t, tmp_path, map_location="cpu").device == "cpu"
    assert roundtrip(t, tmp_path, map_location=pd.device("cpu")).device == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        load(tmp_path / "obj.pdl", map_location="tpu")


def test_map_location_cuda(tmp_path):
    skip_unless_device("cuda")
    out = roundtrip({"t": pd.tensor([1.0, 2.0]), "a": np.ones(2)}, tmp_path, map_location="cuda")
    assert out["t"].device == "cuda" and out["t"].tolist() == [1.0, 2.0]
    assert isinstance(out["a"], np.ndarray)
    back = roundtrip(out, tmp_path)  # a cuda tensor saves to the CPU
    assert back["t"].device == "cpu"


# --------------------------------------------------------------------------------------------------- safety
class _WritesMarker:
    """Unpickling this runs ``open(marker, "w")``: the code a malicious checkpoint would run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_member_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = np.array([_WritesMarker(str(marker))], dtype=object)
    path = tmp_path / "evil.pdl"
    write_npz(path, {STRUCTURE: structure({"ndarray": "a0"}), "a0": evil}, allow_pickle=True)
    with pytest.raises(SerializationError, match=r"evil.pdl.*member 'a0' holds pickled Python objects"):
        load(path)
    assert not marker.exists()
    with np.load(path, allow_pickle=True) as npz:  # the file really is malicious: unpickling it runs the code
        npz["a0"][0].close()
    assert marker.exists()


def test_pickled_structure_member_is_refused(tmp_path):
    path = tmp_path / "evil2.pdl"
    write_npz(path, {STRUCTURE: np.array([{"format": "probdl"}], dtype=object)}, allow_pickle=True)
    with pytest.raises(SerializationError, match="pickled"):
        load(path)


def test_plain_pickle_file_is_refused(tmp_path):
    import pickle

    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_WritesMarker(str(marker))))
    with pytest.raises(SerializationError, match="not a probdl file"):
        load(path)
    assert not marker.exists()


# ----------------------------------------------------------------------------------------------- bad files
def test_truncated_file(tmp_path):
    path = tmp_path / "ckpt.pdl"
    save({"w": pd.randn(1000), "step": 5}, path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 20, 100):
        path.write_bytes(data[:cut])
        with pytest.raises(SerializationError, match=r"ckpt.pdl.*damaged \(truncated or corrupted\?\)"):
            load(path)


def test_corrupted_member_bytes(tmp_path):
    path = tmp_path / "ckpt.pdl"
    save({"w": pd.randn(1000)}, path)
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(64)  # zero out part of the tensor's data
    path.write_bytes(bytes(data))
    with pytest.raises(SerializationError, match=r"ckpt.pdl.*member 'a0' cannot be read.*CRC"):
        load(path)


def test_random_bytes_and_empty_files(tmp_path):
    path = tmp_path / "noise.bin"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(SerializationError, match=r"'.*noise.bin' is not a probdl file \(not an npz archive\)"):
        load(path)
    empty = tmp_path / "empty.pdl"
    empty.write_bytes(b"")
    with pytest.raises(SerializationError, match="empty.pdl' is empty or truncated"):
        load(empty)
    with pytest.raises(SerializationError, match=r"<BytesIO> is not a probdl file"):
        load(io.BytesIO(b"\x00" * 100))


def test_foreign_npz_and_npy(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.ones(3), bias=np.zeros(1))
    with pytest.raises(SerializationError, match=r"foreign.npz' is an npz archive that probdl.save did not write "
                                                 r"\(it has no '__probdl_structure__.json' member"):
        load(path)
    npy = tmp_path / "single.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(SerializationError, match="single.npy' holds a single .npy array"):
        load(npy)


def test_structure_refers_to_missing_member(tmp_path):
    path = tmp_path / "partial.pdl"
    write_npz(path, {STRUCTURE: structure({"dict": [["w", {"tensor": "a0"}], ["b", {"tensor": "a1"}]]}),
                     "a0": np.ones(2)})
    with pytest.raises(SerializationError, match=r"partial.pdl.*refers to a member 'a1' that is not in the archive"):
        load(path)


@pytest.mark.parametrize("raw, message", [
    (np.frombuffer(b"{not json", dtype=np.uint8), "not valid JSON"),
    (np.frombuffer(b"\xff\xfe", dtype=np.uint8), "not valid JSON"),
    (structure({"set": [1, 2]}), r'unknown node \{"set": \[1, 2\]\} in the structure'),
    (structure({"dict": [["a"]]}), "is not a \\[str-or-int key, value\\] pair"),
    (structure({"tensor": 3}), "names its member with 3"),
    (structure(None, version=99), "format version 99; this probdl reads version 1"),
    (np.frombuffer(json.dumps({"root": 1}).encode(), dtype=np.uint8), "not a probdl structure"),
    (np.arange(3.0), "should be 1-d uint8"),
])
def test_bad_structure(raw, message, tmp_path):
    path = tmp_path / "bad.pdl"
    write_npz(path, {STRUCTURE: raw})
    with pytest.raises(SerializationError, match=message):
        load(path)


def test_load_argument_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.pdl")
    with pytest.raises(TypeError, match="f must be a path or a binary file object, got int"):
        load(3)
    with pytest.raises(TypeError, match="f must be a path or a binary file object, got int"):
        save({}, 3)


# ------------------------------------------------------------------------------------- unsupported on save
Pair = namedtuple("Pair", ["a", "b"])


class Custom:
    pass


@pytest.mark.parametrize("obj, message", [
    (lambda x: x, r"cannot save obj, of type builtins.function"),
    ({"opt": {"schedule": lambda s: s}}, r"cannot save obj\['opt'\]\['schedule'\], of type builtins.function"),
    ({1, 2}, "of type builtins.set.*save a set as a sorted list"),
    ([frozenset()], r"obj\[0\], of type builtins.frozenset"),
    ({(1, 2): 3}, "dict keys must be str or int, but obj has the key \\(1, 2\\) of type tuple"),
    ({1.5: 3}, "has the key 1.5 of type float"),
    ({"a": [0, Custom()]}, r"cannot save obj\['a'\]\[1\], of type .*Custom"),
    (np.array([1, None], dtype=object), "dtype object holds Python objects, which need pickle"),
    (Pair(1, 2), "save a namedtuple as obj._asdict\\(\\) or tuple\\(obj\\)"),
    (b"bytes", "of type builtins.bytes"),
    (np.float64, "of type builtins.type"),
])
def test_unsupported_types_on_save(obj, message, tmp_path):
    path = tmp_path / "x.pdl"
    with pytest.raises(TypeError, match=message) as info:
        save(obj, path)
    assert "x.pdl" in str(info.value)
    assert os.listdir(tmp_path) == []  # nothing written, no temporary file left


def test_circular_reference_on_save(tmp_path):
    loop = [1]
    loop.append(loop)
    with pytest.raises(ValueError, match=r"cannot save obj\[1\]: it contains itself"):
        save(loop, tmp_path / "x.pdl")
    d = {}
    d["self"] = [d]
    with pytest.raises(ValueError, match="circular reference"):
        save(d, io.BytesIO())


def test_path_objects_accepted(tmp_path):
    p = Path(tmp_path) / "p.pdl"
    save([1, 2], p)
    assert load(p) == [1, 2]


def test_docstring_examples():
    import doctest

    import probdl.serialization

    result = doctest.testmod(probdl.serialization, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_saving_a_module_suggests_its_state_dict(tmp_path):
    from probdl import nn

    with pytest.raises(TypeError, match="save its state_dict\\(\\)"):
        pd.save(nn.Linear(2, 2), tmp_path / "m.npz")
