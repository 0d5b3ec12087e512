"""The catalogue of visual domains: built-in, SVHN, the Visual Decathlon and user folders.

One place answers "which domains can I train, is their data here, how big are they" and
turns a domain name into a ``DomainData``. User-added sources persist in
``<data_root>/sources.json``; built-in domains are built on first use and cached.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from core.data.entries import (
    DomainEntry,
    builtin_entry,
    folder_entry,
    resized_spec,
    svhn_entry,
)
from core.data.pipeline.datasource import ArrayDomainData, DomainData
from core.data.pipeline.file_dataset import DataError, FileDomainData
from core.data.sources import decathlon as dec
from core.data.sources.builtin import BUILTIN_DOMAINS, DEFAULT_SEED, BuiltinDomain
from core.data.sources.builtin import cache as builtin_cache
from core.data.sources.decathlon_archive import archive_destination, is_tar_name, unpack_domain_tars
from core.data.sources.download import download_svhn as _download_svhn
from core.data.sources.folders import folder_spec, sanitize_name, scan_folder
from core.data.sources.registry import (
    FolderSource,
    Sources,
    load_sources,
    save_sources,
    sources_lock,
)
from core.data.sources.svhn import NAME as SVHN_NAME
from core.data.sources.svhn import OFFICIAL_URL, load_svhn, svhn_present
from core.data.sources.tar_safety import safe_extract
from core.data_root import default_data_root
from core.progress import ProgressFn, check_cancel, no_progress, within


class DomainNotAvailable(DataError):
    """The domain is catalogued but its data is not here; the message says how to get it."""


class Catalogue:
    """Domains by name. ``builtin_scale`` < 1 builds smaller built-in domains (tests)."""

    def __init__(
        self,
        data_root: Path | None = None,
        *,
        builtin_scale: float = 1.0,
        builtin_seed: int = DEFAULT_SEED,
        memory_budget: int | None = None,
    ) -> None:
        self._root = Path(data_root) if data_root is not None else default_data_root()
        self._scale = builtin_scale
        self._seed = builtin_seed
        self._budget = memory_budget
        self._lock = threading.Lock()
        self._sources, problem = load_sources(self._root)
        self._warnings = [problem] if problem else []
        self._summaries: dict[tuple, tuple[tuple[str, ...], dict[str, int]]] = {}

    @property
    def data_root(self) -> Path:
        return self._root

    def warnings(self) -> Sequence[str]:
        return tuple(self._warnings)

    # --- listing ---

    def entries(self) -> list[DomainEntry]:
        out = [
            builtin_entry(self._root, d, self._seed, self._scale) for d in BUILTIN_DOMAINS.values()
        ]
        out.append(svhn_entry(self._svhn_dir()))
        out += self._decathlon_entries()
        out += [folder_entry(f) for f in self._sources.folders]
        return out

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def entry(self, name: str) -> DomainEntry:
        for e in self.entries():
            if e.name == name:
                return e
        raise KeyError(f"Unknown domain. Known domains: {self.names()}. Received: {name!r}")

    def default_source(self) -> DomainEntry:
        return next(e for e in self.entries() if e.default_source)

    def _svhn_dir(self) -> Path:
        if self._sources.svhn_dir:
            return Path(self._sources.svhn_dir)
        return self._root / "svhn"

    def _decathlon_root(self) -> Path | None:
        if not self._sources.decathlon_root:
            return None
        try:
            return dec.find_root(Path(self._sources.decathlon_root))
        except DataError:
            return None

    def _decathlon_summary(self, root: Path, key: str) -> tuple[tuple[str, ...], dict[str, int]]:
        paths = [
            dec.annotation_path(root, key, s) for s in ("train", "val", "test", "test_stripped")
        ]
        stamp = tuple(
            (str(p), p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else None for p in paths
        )
        if stamp not in self._summaries:
            data = dec.load_decathlon(root, key)
            sizes = data.listed_sizes()
            self._summaries[stamp] = (data.spec.class_names, sizes)
        return self._summaries[stamp]

    def _decathlon_entries(self) -> list[DomainEntry]:
        root = self._decathlon_root()
        keys = set(dec.available_keys(root)) if root else set()
        out = []
        for key, info in dec.DECATHLON.items():
            present = root is not None and key in keys and (root / "data" / key).is_dir()
            class_names: tuple[str, ...] = ()
            sizes = dict(zip(("train", "val", "test"), info.sizes, strict=True))
            description = f"Visual Decathlon domain {info.number}: {info.title}."
            if root is not None and key in keys:
                try:
                    class_names, sizes = self._decathlon_summary(root, key)
                except DataError as exc:
                    present = False
                    description += f" Its annotations cannot be used: {exc}"
                else:
                    if not sizes.get("train"):
                        present = False
                        description += (
                            f" No training image found under data/{key}/ (is its .tar unpacked?)."
                        )
            if not present and not description.endswith("."):
                description += "."
            if not present:
                description += " Not here: add the Visual Decathlon archive (folder or .tar)."
            out.append(
                DomainEntry(
                    name=info.name,
                    title=info.title,
                    source="decathlon",
                    present=present,
                    num_classes=len(class_names) or info.num_classes,
                    class_names=class_names,
                    sizes=sizes,
                    description=description,
                    location=str(root / "data" / key) if root and key in keys else None,
                )
            )
        return out

    # --- loading ---

    def load(
        self,
        name: str,
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        image_size: int | None = None,
    ) -> DomainData:
        """The domain's data, ready for training (built, checked and cached as needed).

        ``image_size`` overrides the crop the network sees (``resize_shorter`` keeps its
        ratio), e.g. 16 for the ``tiny`` preset.
        """
        progress = progress or no_progress
        if name in BUILTIN_DOMAINS:
            return self._load_builtin(BUILTIN_DOMAINS[name], progress, cancel, image_size)
        entry = self.entry(name)  # KeyError listing the known names
        if not entry.present:
            raise DomainNotAvailable(f"The data of '{name}' is not here. {entry.description}")
        check_cancel(cancel)
        if entry.source == "svhn":
            progress(0.0, "Reading SVHN .mat files")
            svhn = load_svhn(self._svhn_dir(), image_size=image_size)
            progress(1.0, "SVHN ready")
            return svhn
        if entry.source == "decathlon":
            key = next(k for k, i in dec.DECATHLON.items() if i.name == name)
            root = self._decathlon_root()
            if root is None:  # the folder went away since the entry was listed
                raise DomainNotAvailable(f"The data of '{name}' is not here any more.")
            decathlon = dec.load_decathlon(
                root, key, image_size=image_size, memory_budget=self._budget
            )
            return decathlon.prepare(progress, cancel)
        source = next(f for f in self._sources.folders if f.name == name)
        scan = scan_folder(Path(source.path))
        spec = folder_spec(
            name, scan.class_names, random_crop=source.random_crop, allow_flip=source.allow_flip
        )
        spec = resized_spec(spec, image_size)
        files = FileDomainData(
            spec,
            scan.splits,
            warnings=scan.warnings,
            compute_stats=True,
            memory_budget=self._budget,
        )
        return files.prepare(progress, cancel)

    def _load_builtin(
        self,
        domain: BuiltinDomain,
        progress: ProgressFn,
        cancel: threading.Event | None,
        image_size: int | None,
    ) -> ArrayDomainData:
        with self._lock:
            splits, meta = builtin_cache.load_or_build(
                self._root,
                domain,
                seed=self._seed,
                scale=self._scale,
                progress=progress,
                cancel=cancel,
            )
        spec = domain.spec(tuple(meta["mean"]), tuple(meta["std"]))
        return ArrayDomainData(resized_spec(spec, image_size), splits)

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold ``sources.json`` against other threads and programs, re-read as it is now
        (another program may have added to it since), for one change."""
        with self._lock, sources_lock(self._root):
            current, problem = load_sources(self._root)
            if problem:
                self._warnings.append(problem)
            self._sources = current
            yield

    def _save(self, sources: Sources) -> None:
        save_sources(self._root, sources)
        self._sources = sources

    def add_folder(
        self,
        path: Path | str,
        name: str | None = None,
        *,
        random_crop: bool = True,
        allow_flip: bool = True,
    ) -> DomainEntry:
        """Register a class-per-sub-folder image folder as a domain (checked now)."""
        path = Path(path).expanduser().resolve()
        scan_folder(path)  # refuse a folder that cannot be a domain
        with self._changing():
            for existing in self._sources.folders:
                if Path(existing.path) == path and (name is None or name == existing.name):
                    return self.entry(existing.name)
            taken = set(self.names())
            if name is not None:
                if sanitize_name(name) != name:
                    raise ValueError(
                        "A domain name holds only a-z, 0-9 and '_' and starts with a letter. "
                        f"Received: name={name!r}"
                    )
                if name in taken:
                    raise ValueError(f"A domain named {name!r} exists already. Received: {name!r}")
            else:
                base = sanitize_name(path.name)
                name, k = base, 2
                while name in taken:
                    name, k = f"{base[:44]}_{k}", k + 1
            source = FolderSource(name, str(path), random_crop, allow_flip)
            self._save(
                dataclasses.replace(self._sources, folders=self._sources.folders + (source,))
            )
        return self.entry(name)

    def remove_source(self, name: str) -> None:
        """Forget a user folder (its files are not touched)."""
        with self._changing():
            folders = tuple(f for f in self._sources.folders if f.name != name)
            if len(folders) == len(self._sources.folders):
                raise KeyError(f"No user folder named {name!r}. Received: {name!r}")
            self._save(dataclasses.replace(self._sources, folders=folders))

    def add_decathlon(
        self,
        root_or_tar: Path | str | Sequence[Path | str],
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> list[DomainEntry]:
        """Use a Visual Decathlon archive: its folder, or the .tar files (unpacked safely
        into ``<data_root>/decathlon``). Returns the decathlon entries found."""
        progress = progress or no_progress
        items = [root_or_tar] if isinstance(root_or_tar, (str, Path)) else list(root_or_tar)
        paths = [Path(p).expanduser().resolve() for p in items]
        tars: list[Path] = []
        root: Path | None = None
        for path in paths:
            if path.is_file():
                tars.append(path)
            elif path.is_dir():
                try:
                    root = dec.find_root(path)
                except DataError:
                    found = sorted(p for p in path.iterdir() if is_tar_name(p.name))
                    if not found:
                        raise
                    tars += found
            else:
                raise DataError(f"No such file or folder: {path}")
        if tars:
            target = self._root / "decathlon"
            for k, tar in enumerate(tars):
                check_cancel(cancel)
                safe_extract(
                    tar,
                    archive_destination(tar, target),
                    cancel=cancel,
                    progress=within(progress, k / len(tars) * 0.9, (k + 1) / len(tars) * 0.9),
                )
            root = dec.find_root(target)
            unpack_domain_tars(root, progress, cancel, keep=False)
        else:
            assert root is not None
            # A folder unpacked half-way (the reference's download_data.sh unpacks the data
            # archive into data/, then each <domain>.tar there): unpack what is left.
            unpack_domain_tars(root, progress, cancel, keep=True)
        assert root is not None
        if not dec.available_keys(root):
            raise DataError(f"{root}/annotations holds no <domain>_train.json file.")
        with self._changing():
            self._save(dataclasses.replace(self._sources, decathlon_root=str(root)))
        progress(1.0, "Visual Decathlon added")
        # Domains without training images come back with present=False and the reason in
        # their description (the command line prints it as a warning).
        return [e for e in self.entries() if e.source == "decathlon" and e.location]

    def set_svhn_dir(self, path: Path | str) -> DomainEntry:
        """Use existing official SVHN .mat files in ``path``."""
        path = Path(path).expanduser().resolve()
        if not svhn_present(path):
            raise DataError(
                f"{path} needs train_32x32.mat and test_32x32.mat (the official SVHN files)."
            )
        with self._changing():
            self._save(dataclasses.replace(self._sources, svhn_dir=str(path)))
        return self.entry(SVHN_NAME)

    def download_svhn(
        self,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        base_url: str = OFFICIAL_URL,
        *,
        md5s: dict[str, str] | None = None,
        include_extra: bool = False,
    ) -> DomainEntry:
        """Download the official SVHN files into ``<data_root>/svhn`` and use them."""
        splits = ("train", "test", "extra") if include_extra else ("train", "test")
        folder = _download_svhn(
            self._root / "svhn",
            base_url=base_url,
            splits=splits,
            md5s=md5s,
            progress=progress,
            cancel=cancel,
        )
        return self.set_svhn_dir(folder)
