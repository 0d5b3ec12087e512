"""``FakeBackend``'s model files: a domain's adapters exported and imported, the trunk saved
and loaded, the whole model written; real safetensors files with core's metadata
(``workbench.fake.files``)."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

from core.clock import utc_now
from core.config import ConfigError
from core.files.adapter_header import domain_spec_for
from core.files.adapter_weights import check_adapter_intact, read_adapter_weights
from core.model.parameters import trunk_parameter_count
from core.progress import ProgressFn
from core.workspace.state import restored_status
from workbench.fake.files import (
    ADAPTER_SUFFIX,
    check_adapter_fits,
    check_adapter_weights,
    read_adapter,
    read_trunk,
    write_adapter,
    write_trunk,
)
from workbench.fake.host import FakeHost


class FakeModelFiles(FakeHost):
    """Mixin of ``FakeBackend`` (uses its config, trunk fingerprint and trained domains)."""

    def export_adapters(
        self, domain: str, path: Path, progress: ProgressFn, cancel: threading.Event
    ) -> str:
        path = Path(path)
        if not path.name.endswith(ADAPTER_SUFFIX) or path.name == ADAPTER_SUFFIX:
            raise ValueError(
                f"An adapter file name must end in '{ADAPTER_SUFFIX}'. Received: {str(path)!r}"
            )
        info = self._trained_info(domain)
        self._steps(cancel, progress, f"exporting {domain}")
        with self._lock:
            budget = self._domain_budget(domain)
        params = budget.domain_parameters
        size = write_adapter(
            path,
            info["spec"],
            self._config,
            info["trunk"],
            {
                "domain_parameters": params,
                "head_parameters": budget.head_parameters,
                "moving_statistics": budget.moving_statistics,
                "trunk_parameters": budget.model_parameters - params,
            },
            status={
                "mode": info["mode"],
                "epochs": info.get("epochs", 0),
                "val_accuracy": info["val_accuracy"],
                "test_accuracy": info["test"],
                "best_epoch": None,
                "updated": utc_now(),
            },
        )
        return f"wrote {path} ({size:,} bytes, {params:,} parameters)"

    def import_adapters(self, path: Path, *, name: str | None = None, replace: bool = False) -> str:
        found = read_adapter(Path(path))
        check_adapter_fits(found, self._config, self._fingerprint)
        held = spec = domain_spec_for(self._config, found)  # the adapters the file holds
        if name is not None and name != spec.name:
            try:
                spec = dataclasses.replace(spec, name=name)
            except ConfigError as exc:
                raise ValueError(f"Invalid domain name: {exc}") from None
        name = spec.name
        if name in self._trained and not replace:
            raise ValueError(
                f"A domain named '{name}' exists already; import under another name or "
                f"replace it. Received: name={name!r}"
            )
        metadata, weights, stored = read_adapter_weights(Path(path))  # the engine's checks
        check_adapter_weights(weights, held, self._config)  # named as written
        check_adapter_intact(metadata, stored, Path(path))
        restored = restored_status(found.status or {})  # core's own reading of the record
        with self._lock:
            self._trained[name] = {
                "mode": restored["mode"],
                "epochs": restored["epochs"],
                "val_accuracy": restored["val_accuracy"],
                "test": restored["test_accuracy"],
                "trunk": self._fingerprint,
                "spec": spec,
                "probe": self._fingerprint,  # an exported file carries its probe
            }
            self._recheck_probes(f"importing {name}")
        return name

    def import_reference(self, path: Path, name: str = "imagenet") -> str:
        raise ValueError(
            "The demo engine (--fake) has no network to load a checkpoint into; start the "
            "workbench without --fake."
        )

    def export_deployment(
        self, domain: str, path: Path, fmt: str, progress: ProgressFn, cancel: threading.Event
    ) -> str:
        raise ValueError(
            "The demo engine (--fake) has no network to deploy; start the workbench without --fake."
        )

    def save_trunk(self, path: Path) -> str:
        trunk = trunk_parameter_count(self._config)
        write_trunk(Path(path), self._config, self._fingerprint, trunk)
        return f"wrote {path} ({trunk:,} parameters)"

    def load_trunk(self, path: Path) -> str:
        self._fingerprint = read_trunk(Path(path), self._config)
        with self._lock:
            self._recheck_probes("loading a trunk")
        return f"loaded {Path(path).name}; trunk fingerprint {self._fingerprint[:12]}"

    def export_model(self, path: Path, progress: ProgressFn, cancel: threading.Event) -> str:
        self._steps(cancel, progress, "exporting the model")
        Path(path).write_text(json.dumps({"domains": list(self._trained)}))
        return f"wrote {path} ({len(self._trained)} domains)"

    def set_trunk_fingerprint(self, fingerprint: str) -> None:
        """Tests: pretend the trunk changed (imports of older adapters must be refused)."""
        self._fingerprint = fingerprint
