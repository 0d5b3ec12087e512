"""Read a ``torch.save`` file without torch and without running anything from it.

A ``torch.save`` file is a pickle, and unpickling may call any importable function the file
names. ``load`` uses a restricted unpickler instead: it rebuilds tensors (as numpy arrays),
their storages, plain containers and the attribute trees of a known list of module classes
(as ``ModuleStub`` objects, never the real classes), and refuses any other global by name
before it is looked up. Both of torch's formats are read: the zip one (torch >= 1.6) and the
legacy one (magic number, pickles, then raw storages: the PyTorch of 2017-18). Storages on
CUDA are read to the CPU, whatever the location tag says.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

STORAGE_DTYPES: dict[str, npt.DTypeLike] = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchFileError(ValueError):
    """The file is not a torch checkpoint this reader accepts; the message says why."""


class ModuleStub:
    """The attributes of a pickled ``nn.Module`` (or DataParallel), without its code."""

    stub_class = "?"

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise TorchFileError(
                f"A module's pickled state must be a dict. Received: {type(state).__name__}"
            )
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"<{self.stub_class}>"


class StorageType:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class Storage:
    """A flat storage; ``data`` is filled when its bytes are read."""

    def __init__(self, storage_type: StorageType, key: str, location: str, numel: int) -> None:
        self.type = storage_type
        self.key = key
        self.location = location
        self.numel = int(numel)
        self.data: np.ndarray | None = None
        self.view: tuple[Storage, int, int] | None = None  # (root, offset, size), legacy views

    def array(self) -> np.ndarray:
        if self.view is not None:
            root, offset, size = self.view
            return root.array()[offset : offset + size]
        if self.data is None:
            raise TorchFileError(f"Storage '{self.key}' has no data (truncated file?)")
        return self.data


class TensorRef:
    """A tensor as (storage, offset, size, stride); ``array()`` copies it out."""

    def __init__(self, storage: Storage, offset: int, size: Iterable[int], stride: Iterable[int]):
        if not isinstance(storage, Storage):
            raise TorchFileError(f"A tensor without a storage. Received: {type(storage).__name__}")
        self.storage = storage
        self.offset = int(offset)
        self.size = tuple(int(s) for s in size)
        self.stride = tuple(int(s) for s in stride)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.size

    def array(self) -> np.ndarray:
        flat = self.storage.array()
        if not self.size:
            return flat[self.offset : self.offset + 1].reshape(()).copy()
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if self.offset < 0 or last >= len(flat) and 0 not in self.size:
            raise TorchFileError(
                f"A tensor reaches past its storage (damaged file). Received: size={self.size}, "
                f"offset={self.offset}, storage numel={len(flat)}"
            )
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], self.size, tuple(s * item for s in self.stride), writeable=False
        )
        return np.array(view, copy=True)


# === The functions a checkpoint may name: safe re-implementations, never torch's ===


def _rebuild_tensor(
    storage: Storage, offset: int, size: Iterable[int], stride: Iterable[int], *_rest: object
) -> TensorRef:
    return TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, *_rest):
    return data


def _parameter(data=None, requires_grad=True):  # torch 0.3: Parameter(data, requires_grad)
    return data


class _DTypeStub:
    def __init__(self, spec: str, *_args: object) -> None:
        self.spec = spec
        self.order = "="

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in "<>|=":
            self.order = state[1]


def _numpy_scalar(dtype: Any, data: bytes = b"") -> Any:
    if not isinstance(dtype, _DTypeStub) or not isinstance(data, bytes):
        raise TorchFileError("A numpy scalar with an unexpected encoding was refused.")
    kind = np.dtype(dtype.spec)
    if kind.hasobject:
        raise TorchFileError(f"A numpy object scalar was refused. Received: dtype={dtype.spec}")
    if dtype.order in "<>":
        kind = kind.newbyteorder("<" if dtype.order == "<" else ">")
    return np.frombuffer(data, kind, count=1)[0].item()


def _latin1_bytes(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode``: how protocol 2 pickles Python 3 bytes (a numpy scalar's)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise TorchFileError("_codecs.encode with unexpected arguments was refused.")
    return text.encode("latin1")


def _device(*args: object) -> str:
    return ":".join(str(a) for a in args)


def _reconstructor(cls, base, state=None):  # copyreg._reconstructor for protocol < 2
    if not (isinstance(cls, type) and issubclass(cls, ModuleStub)) or base is not object:
        raise TorchFileError(f"copyreg._reconstructor on {cls!r} was refused.")
    return cls.__new__(cls)


_FUNCTIONS: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.nn.parameter", "Parameter"): _parameter,
    ("torch", "device"): _device,
    ("_codecs", "encode"): _latin1_bytes,
    ("torch", "Size"): tuple,
    ("torch.nn.backends.thnn", "_get_thnn_function_backend"): lambda: None,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,
    ("numpy", "dtype"): _DTypeStub,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(
        self,
        file: Any,
        modules: frozenset[tuple[str, str]],
        load_storage: Callable[[Storage], None] | None,
    ) -> None:
        super().__init__(file, encoding="latin1")
        self.modules = modules
        self.load_storage = load_storage
        self.stubs: dict[tuple[str, str], type[ModuleStub]] = {}
        self.storages: dict[str, Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _FUNCTIONS:
            return _FUNCTIONS[key]
        if module in ("torch", "torch.cuda") and name in STORAGE_DTYPES:
            return StorageType(name)
        if key in self.modules:
            if key not in self.stubs:
                self.stubs[key] = type(name, (ModuleStub,), {"stub_class": f"{module}.{name}"})
            return self.stubs[key]
        raise TorchFileError(
            f"The file names '{module}.{name}', which a checkpoint of the reference network "
            "does not hold; refused without running it."
        )

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise TorchFileError(f"An unknown persistent id was refused. Received: {pid!r}")
        kind = pid[0].decode() if isinstance(pid[0], bytes) else pid[0]
        if kind == "module" and len(pid) >= 2:  # legacy: the class; its source is ignored
            return pid[1]
        if kind != "storage" or len(pid) < 5 or not isinstance(pid[1], StorageType):
            raise TorchFileError(f"An unknown persistent id was refused. Received: {pid[:2]!r}")
        storage_type, key, location, numel = pid[1], str(pid[2]), str(pid[3]), pid[4]
        if key not in self.storages:
            storage = Storage(storage_type, key, location, numel)
            self.storages[key] = storage
            if self.load_storage is not None:
                self.load_storage(storage)
        root = self.storages[key]
        view = pid[5] if len(pid) > 5 else None
        if view:  # legacy view: (view key, offset, size)
            view_key, offset, size = view
            if view_key not in self.storages:
                child = Storage(storage_type, str(view_key), location, size)
                child.view = (root, int(offset), int(size))
                self.storages[str(view_key)] = child
            return self.storages[str(view_key)]
        return root


def _bytes_to_array(raw: bytes, dtype: Any, numel: int | None, key: str) -> np.ndarray:
    if dtype == "bfloat16":
        halves = np.frombuffer(raw, "<u2")
        array = (halves.astype(np.uint32) << 16).view(np.float32)
    else:
        array = np.frombuffer(raw, np.dtype(dtype).newbyteorder("<"))
    if numel is not None and len(array) != numel:
        raise TorchFileError(
            f"Storage '{key}' is short (truncated file?). Expected: {numel} elements. "
            f"Received: {len(array)}"
        )
    return array.astype(array.dtype.newbyteorder("="))


def _load_zip(path: Path, modules: frozenset[tuple[str, str]]) -> Any:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise TorchFileError(f"A damaged or truncated zip checkpoint ({exc}).") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pickles) != 1:
            raise TorchFileError(
                f"Not a torch zip checkpoint (expected one data.pkl). Received: {pickles[:3]}"
            )
        prefix = pickles[0][: -len("data.pkl")]
        names = set(archive.namelist())
        order = "little"
        if f"{prefix}byteorder" in names:
            order = archive.read(f"{prefix}byteorder").decode().strip()
        if order != "little":
            raise TorchFileError(f"Big-endian checkpoints are not supported. Received: {order}")

        def load_storage(storage: Storage) -> None:
            member = f"{prefix}data/{storage.key}"
            if member not in names:
                raise TorchFileError(f"The checkpoint lacks storage '{storage.key}' (truncated?)")
            storage.data = _bytes_to_array(
                archive.read(member), storage.type.dtype, storage.numel, storage.key
            )

        try:
            data = archive.read(pickles[0])
            return _RestrictedUnpickler(io.BytesIO(data), modules, load_storage).load()
        except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError, OSError) as exc:
            raise TorchFileError(f"A damaged or truncated zip checkpoint ({exc}).") from None


def _load_legacy(path: Path, modules: frozenset[tuple[str, str]]) -> Any:
    with open(path, "rb") as f:
        try:
            header = [_RestrictedUnpickler(f, frozenset(), None).load() for _ in range(3)]
        except (EOFError, pickle.UnpicklingError, ValueError, IndexError) as exc:
            if isinstance(exc, TorchFileError):
                raise
            raise TorchFileError(f"Not a torch checkpoint ({type(exc).__name__}).") from None
        magic, protocol, sys_info = header
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL or not isinstance(sys_info, dict):
            raise TorchFileError("Not a torch checkpoint (no torch.save header).")
        if not sys_info.get("little_endian", True):
            raise TorchFileError("Big-endian checkpoints are not supported.")
        unpickler = _RestrictedUnpickler(f, modules, None)
        try:
            result = unpickler.load()
            keys = _RestrictedUnpickler(f, frozenset(), None).load()
        except (EOFError, pickle.UnpicklingError, struct.error) as exc:
            raise TorchFileError(f"A truncated or damaged checkpoint ({exc}).") from None
        if not isinstance(keys, list):
            raise TorchFileError("A damaged checkpoint (no storage list).")
        for key in keys:
            storage = unpickler.storages.get(str(key))
            if storage is None:
                raise TorchFileError(f"A damaged checkpoint (unknown storage '{key}').")
            head = f.read(8)
            if len(head) != 8:
                raise TorchFileError(f"A truncated checkpoint: storage '{key}' is missing.")
            (numel,) = struct.unpack("<q", head)
            itemsize = (
                2 if storage.type.dtype == "bfloat16" else np.dtype(storage.type.dtype).itemsize
            )
            raw = f.read(numel * itemsize)
            if len(raw) != numel * itemsize:
                raise TorchFileError(
                    f"A truncated checkpoint: storage '{key}' has {len(raw)} of "
                    f"{numel * itemsize} bytes."
                )
            storage.data = _bytes_to_array(raw, storage.type.dtype, numel, str(key))
        return result


def load(path: str | Path, modules: Iterable[tuple[str, str]]) -> Any:
    """Unpickle a ``torch.save`` file; ``modules``: (module, class) names allowed as stubs."""
    path = Path(path)
    if not path.is_file():
        raise TorchFileError(f"File not found. Received: path={str(path)!r}")
    with open(path, "rb") as f:
        head = f.read(4)
    allowed = frozenset(modules)
    if head == b"PK\x03\x04":
        return _load_zip(path, allowed)
    if not head:
        raise TorchFileError("The file is empty.")
    return _load_legacy(path, allowed)


def module_children(module: ModuleStub) -> dict[str, Any]:
    return dict(getattr(module, "_modules", None) or {})


def flat_state(module: Any, prefix: str = "") -> dict[str, TensorRef]:
    """``state_dict``-style names -> tensors of a module stub tree (parameters and buffers)."""
    if not isinstance(module, ModuleStub):
        raise TorchFileError(f"Expected a module. Received: {type(module).__name__}")
    out: dict[str, TensorRef] = {}
    for attr in ("_parameters", "_buffers"):
        for name, value in (getattr(module, attr, None) or {}).items():
            if value is None:
                continue
            if not isinstance(value, TensorRef):
                raise TorchFileError(f"'{prefix}{name}' is not a tensor.")
            out[f"{prefix}{name}"] = value
    for name, child in module_children(module).items():
        if child is not None:
            out.update(flat_state(child, f"{prefix}{name}."))
    return out
