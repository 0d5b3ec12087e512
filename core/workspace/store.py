"""``workspace.json`` read whatever state it is in, and changed one entry at a time.

The index names the model, the trunk, the source domain and each domain's record, plus the
sha256 of every weights file at its last save (``files``). A program changes it only inside
``Store.transaction``: under the index lock it re-reads the file, changes only what it
changed (one domain, the trunk) and writes it back atomically, so programs sharing a data
folder never undo each other's work.

Reading never refuses a damaged file: ``read_index`` says what is wrong (``StoreProblem``)
and what can be read. An index from a newer RAM Workbench is read as far as possible and
never written (``read_only``); a damaged one is rebuilt from the files at the next change
(``core.workspace.rebuild``), the damaged copy kept aside. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from core.clock import file_stamp
from core.files.digests import GENERATION_KEY as GENERATION_KEY  # re-exported
from core.weights_version import WEIGHTS_FORMAT_VERSION
from core.workspace.locks import IndexLock, locks_dir
from core.workspace.state import DomainStatus, Layout, WorkspaceError, write_state

TRUNK_ENTRY = "trunk.safetensors"  # the key of the trunk's record in ``files``


def domain_entry(name: str) -> str:
    return f"domains/{name}.adapter.safetensors"


@dataclasses.dataclass(frozen=True)
class FileRecord:
    """A weights file as saved: its bytes' and its tensors' sha256, its size, and the index
    generation that wrote it (the file carries it too: ``GENERATION_KEY``)."""

    sha256: str
    tensors_sha256: str
    bytes: int
    generation: int = 0

    @classmethod
    def from_dict(cls, data: Any) -> FileRecord | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                str(data["sha256"]),
                str(data.get("tensors_sha256", "")),
                int(data["bytes"]),
                int(data.get("generation", 0)),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclasses.dataclass(frozen=True)
class StoreProblem:
    """A file of the data folder that cannot be used as it is, and what that affects."""

    path: Path
    what: str  # e.g. "is missing", "is damaged (…)"
    affected: str  # e.g. "domain 'glyphs' is not loaded"
    domain: str | None = None  # the domain it concerns; None: the index or the trunk

    def message(self) -> str:
        return f"{self.path} {self.what}; {self.affected}."


def status_from_dict(name: str, data: Mapping[str, Any]) -> DomainStatus:
    """A ``DomainStatus`` from a saved record (unknown keys ignored, for newer writers)."""
    fields = {f.name for f in dataclasses.fields(DomainStatus)}
    values = {k: v for k, v in data.items() if k in fields}
    values["name"] = name
    return DomainStatus(**values)


@dataclasses.dataclass
class Index:
    """``workspace.json`` in memory (mutable inside a transaction)."""

    model_config: dict[str, Any]
    workspace_id: str = ""
    source_domain: str | None = None
    trunk_fingerprint: str = ""
    domains: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    files: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    generation: int = 0  # bumped by every change
    removed: dict[str, int] = dataclasses.field(default_factory=dict)  # domain -> generation
    schema_version: int = WEIGHTS_FORMAT_VERSION
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # keys of newer writers

    _KNOWN = (
        "schema_version",
        "workspace_id",
        "generation",
        "model_config",
        "source_domain",
        "trunk_fingerprint",
        "domains",
        "files",
        "removed",
    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Index:
        if not isinstance(data.get("model_config"), dict):
            raise ValueError("it has no model config")
        domains = data.get("domains") or {}
        files = data.get("files") or {}
        removed = data.get("removed") or {}
        if not all(isinstance(m, dict) for m in (domains, files, removed)):
            raise ValueError("its domains, files or removed are not mappings")
        return cls(
            model_config=dict(data["model_config"]),
            workspace_id=str(data.get("workspace_id") or ""),
            source_domain=data.get("source_domain"),
            trunk_fingerprint=str(data.get("trunk_fingerprint") or ""),
            domains={str(k): dict(v) for k, v in domains.items() if isinstance(v, dict)},
            files={str(k): dict(v) for k, v in files.items() if isinstance(v, dict)},
            generation=int(data.get("generation") or 0),
            removed={str(k): int(v) for k, v in removed.items()},
            schema_version=int(data.get("schema_version") or 0),
            extra={k: v for k, v in data.items() if k not in cls._KNOWN},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "workspace_id": self.workspace_id,
            "generation": self.generation,
            "model_config": self.model_config,
            "source_domain": self.source_domain,
            "trunk_fingerprint": self.trunk_fingerprint,
            "domains": self.domains,
            "files": self.files,
            "removed": self.removed,
            **self.extra,
        }

    def status(self, name: str) -> DomainStatus | None:
        try:
            return status_from_dict(name, self.domains[name])
        except (KeyError, TypeError):
            return None

    def record(self, entry: str) -> FileRecord | None:
        return FileRecord.from_dict(self.files.get(entry))

    def set_domain(self, status: DomainStatus, record: FileRecord | None) -> None:
        self.domains[status.name] = dataclasses.asdict(status)
        self.removed.pop(status.name, None)
        if record is not None:
            self.files[domain_entry(status.name)] = dataclasses.asdict(record)

    def drop_domain(self, name: str, generation: int) -> None:
        self.domains.pop(name, None)
        self.files.pop(domain_entry(name), None)
        self.removed[name] = generation
        if self.source_domain == name:
            self.source_domain = None

    def reset(self, other: Index) -> None:
        """Become ``other`` (a workspace started anew in place of this one)."""
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(other, field.name))

    def set_trunk(self, fingerprint: str, record: FileRecord) -> None:
        self.trunk_fingerprint = fingerprint
        self.files[TRUNK_ENTRY] = dataclasses.asdict(record)


Signature = tuple[int, int, int]


def signature(path: Path) -> Signature | None:
    """What changes whenever the file is replaced (inode, size, mtime); None: no file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclasses.dataclass(frozen=True)
class IndexRead:
    """``workspace.json`` as found: its contents (None: none or unreadable), what is wrong."""

    index: Index | None
    problem: StoreProblem | None = None
    read_only: bool = False  # written by a newer version: never overwritten
    signature: Signature | None = None

    @property
    def exists(self) -> bool:
        return self.signature is not None


def newer_version(version: Any) -> bool:
    try:
        return int(version) > WEIGHTS_FORMAT_VERSION
    except (TypeError, ValueError):
        return False


def read_index(where: Layout) -> IndexRead:
    """``workspace.json`` read without ever raising on its contents."""
    path = where.state_file
    sig = signature(path)
    if sig is None:
        if where.trunk_file.is_file() or any(where.domains_dir.glob("*.adapter.safetensors")):
            return IndexRead(None, _index_problem(path, "is missing"))
        return IndexRead(None)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("it is not a JSON object")
    except (OSError, ValueError) as exc:
        what = "is empty" if sig[1] == 0 else f"is damaged (not readable: {exc})"
        return IndexRead(None, _index_problem(path, what), signature=sig)
    version = data.get("schema_version")
    index: Index | None
    problem: StoreProblem | None
    try:
        index = Index.from_dict(data)
    except (TypeError, ValueError) as exc:
        index = None
        problem = _index_problem(path, f"is damaged ({exc})")
    else:
        problem = None
    if newer_version(version):
        what = (
            f"was written by a newer RAM Workbench (format {version}; this one reads "
            f"{WEIGHTS_FORMAT_VERSION}). It is opened read-only and never overwritten here"
        )
        return IndexRead(index, _index_problem(path, what, newer=True), True, sig)
    return IndexRead(index, problem, signature=sig)


def _index_problem(path: Path, what: str, newer: bool = False) -> StoreProblem:
    affected = (
        "nothing can be trained, imported or removed in this data folder by this version"
        if newer
        else "the workspace is rebuilt from its trunk and adapter files (what only the "
        "index held, such as test accuracies recorded later, may be lost); the damaged "
        "copy is kept aside at the next save; `main.py doctor --repair` does it now"
    )
    return StoreProblem(path, what, affected)


def new_workspace_id() -> str:
    return uuid.uuid4().hex


def keep_aside(path: Path, why: str = "damaged") -> Path | None:
    """Move ``path`` to ``<path>.<why>-<stamp>`` beside it (never overwritten); its new path."""
    if not path.exists():
        return None
    target = path.with_name(f"{path.name}.{why}-{file_stamp()}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{why}-{file_stamp()}-{n}")
    os.replace(path, target)
    return target


class Store:
    """The data folder's ``workspace.json``: read it, change it under the index lock."""

    def __init__(self, where: Layout) -> None:
        self.layout = where
        self.locks = locks_dir(where.dir)
        self._index_lock = IndexLock(self.locks)

    def read(self) -> IndexRead:
        return read_index(self.layout)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The index lock alone (for checks that must not interleave with a change)."""
        with self._index_lock.held():
            yield

    @contextlib.contextmanager
    def transaction(self, new: Index, rebuild: Callable[[], Index]) -> Iterator[Index]:
        """Under the index lock: the index as on disk now (``new`` when there is none,
        ``rebuild()`` from the files when it is damaged); written back when the block ends
        without an error. An index of a newer version is refused (``WorkspaceError``)."""
        with self.locked():
            found = self.read()
            if found.read_only:
                assert found.problem is not None
                raise WorkspaceError(found.problem.message())
            damaged = found.problem is not None
            if found.index is not None and not damaged:
                index = found.index
            elif damaged:
                index = rebuild()
            else:
                index = new
            before = json.dumps(index.to_dict(), sort_keys=True)
            yield index
            if damaged:
                keep_aside(self.layout.state_file)
            if damaged or json.dumps(index.to_dict(), sort_keys=True) != before:
                self.write(index)

    def write(self, index: Index) -> None:
        index.schema_version = WEIGHTS_FORMAT_VERSION
        write_state(self.layout, index.to_dict())
