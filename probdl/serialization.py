"""Saving and loading tensors, arrays and state dicts, safely: ``probdl.save(obj, path)``, ``probdl.load(path)``.

The file is a NumPy ``.npz`` archive (a zip of ``.npy`` files). Every tensor and array is one
member; one more member, ``__probdl_structure__.json`` (the UTF-8 bytes of a JSON document, as a
uint8 array), records how they nest in dicts, lists and tuples, with the Python scalars, strings
and ``None`` in between. Both sides use ``allow_pickle=False``, so loading a file, whoever wrote
it, reads numbers and text and never runs code. The archive opens with ``numpy.load`` too.

What can be saved: Tensors (their values; a tensor comes back on the CPU, or on
``map_location``, without ``requires_grad``: restore parameters into a model with
``load_state_dict``), NumPy arrays of any non-object dtype, NumPy scalars, ``None``, ``bool``,
``int``, ``float``, ``complex``, ``str``, and ``list``, ``tuple``, ``dict`` and ``OrderedDict``
of these, with ``str`` or ``int`` keys. Key order, key types, list versus tuple, dict versus
OrderedDict, dtypes and shapes come back exactly. An object stored twice (a tied weight) is
written once and loads as one object.

The JSON document is ``{"format": "probdl", "version": 1, "root": NODE}``, where a NODE is a JSON
null, bool, number or string standing for itself, or an object with one key: ``{"list": [NODE,
...]}``, ``{"tuple": [...]}``, ``{"dict": [[KEY, NODE], ...]}``, ``{"odict": [...]}``,
``{"complex": [re, im]}``, or ``{"tensor" | "ndarray" | "npscalar": MEMBER}`` naming an array member.
"""
from __future__ import annotations

import contextlib
import json
import os
import uuid
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .backend import device, to_device
from .tensor import Tensor

__all__ = ["save", "load", "SerializationError"]

STRUCTURE = "__probdl_structure__.json"
FORMAT, VERSION = "probdl", 1
_ARRAY_TAGS = ("tensor", "ndarray", "npscalar")
_SEQ_TAGS = ("list", "tuple")
_DICT_TAGS = ("dict", "odict")


class SerializationError(ValueError):
    """A file that :func:`load` cannot read: not an npz archive, not written by :func:`save`, or damaged."""


def _name(f: Any) -> str:
    """How error messages name a file: its path, or a file object's name."""
    if isinstance(f, (str, os.PathLike)):
        return repr(os.fspath(f))
    name = getattr(f, "name", None)
    return repr(name) if isinstance(name, str) else f"<{type(f).__name__}>"


# ---------------------------------------------------------------------------------------------- save
class _Encoder:
    """Turn an object into a JSON-able node tree plus the arrays it references, checking every type."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self._memo: dict[int, tuple[str, Any]] = {}  # id -> (member, obj): an object saved twice is stored once
        self._active: set[int] = set()  # containers being encoded, to catch cycles

    def encode(self, obj: Any, where: str) -> Any:
        t = type(obj)
        if obj is None or t in (bool, int, float, str):  # exact types: an IntEnum or a str subclass is refused
            return obj
        if t is complex:
            return {"complex": [obj.real, obj.imag]}
        if isinstance(obj, Tensor):
            return {"tensor": self._member(obj, lambda: obj.detach().numpy(), where)}
        if t is np.ndarray:
            return {"ndarray": self._member(obj, lambda: obj, where)}
        if isinstance(obj, np.generic) and t is not np.object_:
            return {"npscalar": self._member(obj, lambda: np.asarray(obj), where)}
        if t in (list, tuple):
            with self._entering(obj, where):
                return {t.__name__: [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        if t in (dict, OrderedDict):
            with self._entering(obj, where):
                items = []
                for k, v in obj.items():
                    if type(k) not in (str, int):
                        raise TypeError(f"dict keys must be str or int, but {where} has the key {k!r} of type "
                                        f"{type(k).__name__}")
                    items.append([k, self.encode(v, f"{where}[{k!r}]")])
            return {"odict" if t is OrderedDict else "dict": items}
        hint = ""
        if isinstance(obj, dict):
            hint = "; convert it with dict(...) first"
        elif isinstance(obj, tuple) and hasattr(obj, "_fields"):
            hint = "; save a namedtuple as obj._asdict() or tuple(obj)"
        elif isinstance(obj, (set, frozenset)):
            hint = "; save a set as a sorted list"
        elif callable(getattr(obj, "state_dict", None)):
            hint = "; save its state_dict() (and restore it with load_state_dict)"
        raise TypeError(f"cannot save {where}, of type {t.__module__}.{t.__qualname__}: probdl.save stores Tensors, "
                        f"NumPy arrays and scalars, None, bool, int, float, complex, str, and lists, tuples and "
                        f"dicts of them{hint}")

    def _member(self, obj: Any, to_array: Any, where: str) -> str:
        hit = self._memo.get(id(obj))
        if hit is not None:
            return hit[0]
        arr = to_array()
        if arr.dtype.hasobject:
            raise TypeError(f"cannot save {where}: an array of dtype {arr.dtype} holds Python objects, which "
                            "need pickle; probdl.save writes only plain numeric and text arrays")
        name = f"a{len(self.arrays)}"
        self.arrays[name] = arr
        self._memo[id(obj)] = (name, obj)  # holding obj keeps its id unique until saving ends
        return name

    @contextlib.contextmanager
    def _entering(self, obj: Any, where: str) -> Iterator[None]:
        if id(obj) in self._active:
            raise ValueError(f"cannot save {where}: it contains itself (a circular reference)")
        self._active.add(id(obj))
        try:
            yield
        finally:
            self._active.discard(id(obj))


def _write_npz(fileobj: Any, structure: bytes, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed npz archive, written as ``numpy.savez`` writes one, with ``allow_pickle=False``."""
    with zipfile.ZipFile(fileobj, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        members = {STRUCTURE: np.frombuffer(structure, dtype=np.uint8), **arrays}
        for name, arr in members.items():
            with zf.open(name + ".npy", mode="w", force_zip64=True) as m:
                np.lib.format.write_array(m, np.asanyarray(arr), allow_pickle=False)


def save(obj: Any, f: str | os.PathLike | Any) -> None:
    """Save ``obj`` (tensors, arrays, and dicts/lists/tuples of them with Python scalars) to ``f``.

    Args:
        obj: what to save; see the module docstring for the types allowed.
        f: a path (``str`` or ``pathlib.Path``; written exactly there, with no suffix added, through
            a temporary file in the same directory that is renamed into place, so that a crash never
            leaves a half-written file), or a binary file object open for writing.

    Raises:
        TypeError: ``obj`` holds something that cannot be saved without pickle (a function, a set,
            an object array, a dict key that is not str or int, ...); the message says where.
            Nothing is written then.

    Example:
        >>> import io, probdl as pd
        >>> buf = io.BytesIO()
        >>> save({"w": pd.tensor([1.0, 2.0]), "step": 3}, buf)
        >>> _ = buf.seek(0)
        >>> load(buf)
        {'w': tensor([1., 2.]), 'step': 3}
    """
    enc = _Encoder()
    try:
        root = enc.encode(obj, "obj")
    except (TypeError, ValueError) as e:
        raise type(e)(f"probdl.save to {_name(f)}: {e}") from None
    doc = {"format": FORMAT, "version": VERSION, "root": root}
    structure = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if not isinstance(f, (str, os.PathLike)):
        if not hasattr(f, "write"):
            raise TypeError(f"probdl.save: f must be a path or a binary file object, got {type(f).__name__}")
        _write_npz(f, structure, enc.arrays)
        return
    path = Path(f)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"probdl.save: the directory {str(path.parent)!r} of {str(path)!r} does not exist")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            _write_npz(out, structure, enc.arrays)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------- load
def _show(node: Any) -> str:
    text = json.dumps(node)
    return text if len(text) <= 80 else text[:77] + "..."


class _Decoder:
    """Rebuild the object from the node tree, reading each referenced member once."""

    def __init__(self, npz: Any, where: str, place: Any) -> None:
        self.npz, self.where, self.place = npz, where, place
        self.members = set(npz.files)
        self._cache: dict[tuple[str, str], Any] = {}

    def bad(self, what: str) -> SerializationError:
        return SerializationError(f"probdl.load: {self.where} is damaged or not a probdl file: {what}")

    def decode(self, node: Any) -> Any:
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is not dict or len(node) != 1:
            raise self.bad(f"unexpected node {_show(node)} in the structure")
        ((tag, val),) = node.items()
        if tag in _ARRAY_TAGS:
            return self._array(tag, val)
        if tag in _SEQ_TAGS and type(val) is list:
            items = [self.decode(v) for v in val]
            return items if tag == "list" else tuple(items)
        if tag in _DICT_TAGS and type(val) is list:
            out = {} if tag == "dict" else OrderedDict()
            for pair in val:
                if type(pair) is not list or len(pair) != 2 or type(pair[0]) not in (str, int):
                    raise self.bad(f"a dict entry {_show(pair)} is not a [str-or-int key, value] pair")
                out[pair[0]] = self.decode(pair[1])
            return out
        if tag == "complex" and type(val) is list and len(val) == 2 and all(type(v) in (int, float) for v in val):
            return complex(*val)
        raise self.bad(f"unknown node {_show(node)} in the structure")

    def _array(self, tag: str, name: Any) -> Any:
        if type(name) is not str:
            raise self.bad(f"a {tag} node names its member with {name!r}, not a string")
        key = (tag, name)
        if key in self._cache:
            return self._cache[key]
        if name not in self.members or name == STRUCTURE:
            raise self.bad(f"the structure refers to a member {name!r} that is not in the archive")
        arr = _read_member(self.npz, name, self.where)
        if tag == "npscalar":
            if arr.ndim != 0:
                raise self.bad(f"member {name!r} should hold a scalar but has shape {arr.shape}")
            out = arr[()]
        elif tag == "tensor":
            if arr.dtype.kind not in "biufc":
                raise self.bad(f"member {name!r} holds a tensor of dtype {arr.dtype}; tensors hold numbers")
            out = Tensor._wrap(arr if self.place is None else to_device(arr, self.place))
        else:
            out = arr
        self._cache[key] = out
        return out


def _read_member(npz: Any, name: str, where: str) -> np.ndarray:
    try:
        arr = npz[name]
    except ValueError as e:
        if "allow_pickle" in str(e) or "pickled" in str(e) or "Object arrays" in str(e):
            raise SerializationError(f"probdl.load: {where}: member {name!r} holds pickled Python objects; "
                                     "probdl.load never unpickles (it could run code)") from None
        raise SerializationError(f"probdl.load: {where} is damaged: member {name!r} cannot be read ({e})") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, zlib.error, RuntimeError) as e:
        raise SerializationError(f"probdl.load: {where} is damaged (truncated or corrupted?): member {name!r} "
                                 f"cannot be read ({type(e).__name__}: {e})") from None
    if not isinstance(arr, np.ndarray):
        raise SerializationError(f"probdl.load: {where}: member {name!r} is not an array")
    if arr.dtype.hasobject:
        raise SerializationError(f"probdl.load: {where}: member {name!r} holds Python objects; refused")
    if not arr.flags.writeable:
        arr = arr.copy()
    return arr


def load(f: str | os.PathLike | Any, map_location: Any = None) -> Any:
    """Load what :func:`save` wrote, without ever running code from the file.

    Args:
        f: a path (``str`` or ``pathlib.Path``) or a binary file object open for reading.
        map_location: ``None`` or ``"cpu"`` puts tensors on the CPU; ``"cuda"`` or ``"cuda:N"`` (or a
            :class:`probdl.Device`) on that GPU. NumPy arrays always load as NumPy arrays.

    Returns:
        The saved object. Tensors come back as new leaf Tensors with ``requires_grad=False``; to
        restore a model's parameters, pass the loaded state dict to ``model.load_state_dict``.

    Raises:
        SerializationError (a ValueError): the file is not an npz archive, was not written by
            :func:`save` (no structure member), is truncated or corrupted, refers to a missing
            member, or holds pickled objects. The message names the file.
        FileNotFoundError: no file at the path.
    """
    place = None if map_location is None else device(map_location)
    if place is not None and place.type == "cpu":
        place = None
    where = _name(f)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            return _load(fh, where, place)
    if not hasattr(f, "read"):
        raise TypeError(f"probdl.load: f must be a path or a binary file object, got {type(f).__name__}")
    return _load(f, where, place)


def _load(fh: Any, where: str, place: Any) -> Any:
    try:
        npz = np.load(fh, allow_pickle=False)
    except ValueError as e:  # neither zip nor .npy: NumPy would fall back to pickle, which allow_pickle forbids
        if "pickle" in str(e):
            raise SerializationError(f"probdl.load: {where} is not a probdl file (not an npz archive)") from None
        raise SerializationError(f"probdl.load: {where} cannot be read as an npz archive ({e})") from None
    except EOFError:
        raise SerializationError(f"probdl.load: {where} is empty or truncated (no data to read)") from None
    except (zipfile.BadZipFile, OSError, zlib.error) as e:
        raise SerializationError(f"probdl.load: {where} is damaged (truncated or corrupted?): it starts as an "
                                 f"npz archive but cannot be opened ({type(e).__name__}: {e})") from None
    if isinstance(npz, np.ndarray):
        raise SerializationError(f"probdl.load: {where} holds a single .npy array, not a probdl npz archive; "
                                 "read it with numpy.load")
    with npz:
        if STRUCTURE not in npz.files:
            raise SerializationError(f"probdl.load: {where} is an npz archive that probdl.save did not write (it "
                                     f"has no {STRUCTURE!r} member; its members are {npz.files[:10]}); read it with "
                                     "numpy.load(path, allow_pickle=False)")
        raw = _read_member(npz, STRUCTURE, where)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise SerializationError(f"probdl.load: {where}: the structure member should be 1-d uint8, got "
                                     f"{raw.dtype} of shape {raw.shape}")
        try:
            doc = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise SerializationError(f"probdl.load: {where}: the structure member is not valid JSON ({e})") from None
        if type(doc) is not dict or doc.get("format") != FORMAT or "root" not in doc:
            raise SerializationError(f"probdl.load: {where}: the structure member is not a probdl structure")
        if doc.get("version") != VERSION:
            raise SerializationError(f"probdl.load: {where} has format version {doc.get('version')!r}; this "
                                     f"probdl reads version {VERSION} (a newer probdl may have written it)")
        try:
            return _Decoder(npz, where, place).decode(doc["root"])
        except RecursionError:
            raise SerializationError(f"probdl.load: {where}: the structure is nested too deeply") from None

