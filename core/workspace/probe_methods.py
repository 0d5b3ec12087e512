"""The workspace's side of the probes (``core.model.probe``): old domains shown unchanged.

A domain's probe is taken when the domain is trained here (from its validation split) or
comes with an imported adapter file, and is kept in ``domains/<name>.probe.safetensors``
(written atomically while the workspace holds the domain's lease). After a training, an
import or a trunk load the other domains' probes are run again; each verdict
(``ProbeCheck``) is kept in ``probes.json`` beside the index, so ``main.py results`` and
the domains table show it without TensorFlow.

Cost: a re-run is one batch of ``PROBE_IMAGES`` images per domain. Domains the engine
has built already are always re-run; a domain still deferred (a workspace opens its domains
unbuilt, issue 26) is built for it only while at most ``CHECK_BUILD_MAX`` deferred domains
have been built for this check, so a workspace of 100 domains does not build them all after
every run. The others keep their last verdict, marked as not re-run since that event.
Nothing runs when a workspace opens.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from core.clock import utc_now
from core.files.digests import tensors_digest
from core.model.probe import (
    CHECKS_FILE,
    NOT_RERUN,
    PROBE_IMAGES,
    Probe,
    ProbeCheck,
    compare,
    read_checks,
)
from core.workspace.base import WorkspaceBase
from core.workspace.state import PROBE_SUFFIX

CHECK_BUILD_MAX = 8  # deferred domains built for one check (see the module docstring)


class ProbeMethods(WorkspaceBase):
    """Taking, keeping and re-running the domains' probes (``Workspace`` puts it together)."""

    def probe_file(self, name: str) -> Path:
        return self.layout.domains_dir / f"{name}{PROBE_SUFFIX}"

    def probe_of(self, name: str) -> Probe | None:
        """The domain's probe, as its file holds it now (another program that trained the
        domain wrote a new one), read again only when the file changed; one that could not
        be saved is kept in memory. None: it has none, or its file is damaged."""
        from core.files.digests import read_safetensors

        path = self.probe_file(name)
        seen = _signature(path)
        with self._lock:
            kept = self._probes.get(name)
        if kept is not None and kept[0] == seen:
            return kept[1]  # the file as read (or, None: never written)
        if seen is None:
            return None
        try:
            metadata, tensors = read_safetensors(path)
            probe = Probe.from_tensors(tensors, metadata)
        except (OSError, ValueError):
            return None
        with self._lock:
            self._probes[name] = (seen, probe)
        return probe

    def take_probe(self, name: str, data: Any) -> Probe | None:
        """Take the probe of ``name`` from the first ``PROBE_IMAGES`` images of its
        validation split (its test split, else its training split, when it has none) and
        save it; None when it has no images."""
        split = next(
            (s for s in ("val", "test", "train") if data.has_split(s) and data.num_examples(s)),
            None,
        )
        if split is None:
            return None
        images, _ = next(iter(data.dataset(split, batch_size=PROBE_IMAGES, training=False)))
        images = np.asarray(images, np.float32)[:PROBE_IMAGES].astype(np.float16)
        with self._lock, self._scope():
            logits = self._probe_logits(name, images)
            weights = tensors_digest(self.engine.weight_arrays(name))
            probe = Probe(images, logits, self.engine.trunk_fingerprint(), weights, utc_now())
        self._keep_probe(name, probe)
        return probe

    def _probe_logits(self, name: str, images: np.ndarray) -> np.ndarray:
        model = self.engine.domain(name).model  # a deferred domain is built now
        return np.asarray(model(images.astype(np.float32), training=False), np.float32)

    def _keep_probe(self, name: str, probe: Probe) -> None:
        """In its file under the domain's lease; its last verdict is dropped (it was about
        the weights the domain had before). Kept in memory with the file's signature after
        the write, so one that could not be saved still counts until the file changes."""
        self._update_checks({}, drop={name})
        if not self.read_only:
            self._write_beside(name, self.probe_file(name), probe.to_tensors(), "probe")
        with self._lock:
            self._probes[name] = (_signature(self.probe_file(name)), probe)

    def keep_imported_probe(self, name: str, path: Path) -> bool:
        """Keep the probe an imported adapter file carries (``import_adapters``); a probe
        of the domain's earlier weights is dropped either way."""
        from core.files.digests import read_safetensors

        self.forget_probe(name)
        try:
            metadata, tensors = read_safetensors(path)
            probe = Probe.from_tensors(tensors, metadata)
        except (OSError, ValueError):
            return False
        self._keep_probe(name, probe)
        return True

    def forget_probe(self, name: str) -> None:
        """The domain's probe and verdict are gone (it was removed or replaced)."""
        with self._lock:
            self._probes.pop(name, None)
        self._update_checks({}, drop={name})
        if not self.read_only:
            try:
                self.probe_file(name).unlink(missing_ok=True)
            except OSError as exc:
                self.notes.append(f"The old probe of '{name}' was not removed: {exc}")

    def check_probes(
        self, after: str, *, skip: Collection[str] = (), build_max: int = CHECK_BUILD_MAX
    ) -> dict[str, ProbeCheck]:
        """Run every trained domain's probe again (but ``skip``'s), keep and return the
        verdicts; ``after`` says why (``"training glyphs"``)."""
        checks: dict[str, ProbeCheck] = {}
        left_out: list[str] = []
        built = 0
        now = utc_now()
        for name in self.trained_domains():
            probe = None if name in skip else self.probe_of(name)
            if probe is None:
                continue
            if not self.engine.is_built(name):
                if built >= build_max:
                    left_out.append(name)
                    continue
                built += 1
            try:
                with self._lock, self._scope():
                    logits = self._probe_logits(name, probe.images)
                    trunk = self.engine.trunk_fingerprint()
            except (OSError, ValueError, KeyError) as exc:  # a damaged file, say
                self.notes.append(f"The probe of '{name}' could not be run: {exc}")
                continue
            checks[name] = compare(probe, logits, trunk, now, after)
        self._update_checks(checks, left_out=left_out, after=after, now=now)
        return checks

    def probe_checks(self) -> dict[str, ProbeCheck]:
        """Each domain's last verdict (``probes.json``)."""
        return read_checks(self.dir)

    def _update_checks(
        self,
        checks: dict[str, ProbeCheck],
        *,
        drop: Collection[str] = (),
        left_out: Collection[str] = (),
        after: str = "",
        now: str = "",
    ) -> None:
        """``probes.json`` with ``checks`` in, ``drop`` out, and the ``left_out`` domains'
        verdicts marked as not re-run since ``after``."""
        if self.read_only:
            return
        from core.atomic_write import atomic_write_json

        try:
            with self.store.locked():
                kept = read_checks(self.dir)
                for name in drop:
                    kept.pop(name, None)
                for name in left_out:
                    old = kept.get(name)
                    kept[name] = (
                        old.not_rerun(now, after)
                        if old is not None
                        else ProbeCheck(NOT_RERUN, float("nan"), "", now, after)
                    )
                kept.update(checks)
                if not kept and not (self.dir / CHECKS_FILE).exists():
                    return
                payload = {n: c.to_dict() for n, c in sorted(kept.items())}
                atomic_write_json(self.dir / CHECKS_FILE, payload)
        except OSError as exc:
            self.notes.append(f"The probes' verdicts were not saved: {exc}")


def _signature(path: Path) -> tuple[int, int] | None:
    """(mtime in ns, size) of a file; None when there is none."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
