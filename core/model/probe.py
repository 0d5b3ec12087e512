"""A domain's probe: a few of its validation images and the logits its weights gave them.

Adapters promise that training one domain leaves every other domain as it was; the probe
shows it. When a domain is trained its probe is taken (``PROBE_IMAGES`` validation images,
after the evaluation transform, kept as float16, and the float32 logits of those very
float16 images); after any training, import or trunk load the other domains' probes are
run again and compared:

- ``unchanged``: every logit within ``TOLERANCE`` of the stored one (the digest, over the
  logits rounded to ``DIGEST_DECIMALS`` places, is the short name of what was stored; the
  comparison uses the logits themselves, so float noise near a rounding boundary cannot
  flip it);
- ``stale``: the trunk is not the one the probe was taken on (a trunk retrained or
  loaded): the domain was trained on another trunk, whatever its logits say;
- ``changed``: same trunk, other logits (its adapter weights changed on disk, say), with
  the largest logit difference.

Stored with the domain (``domains/<name>.probe.safetensors``) and in its exported adapter
file (tensors named ``probe.*``, one metadata entry), so an import keeps it. Nothing here
imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

PROBE_IMAGES = 8
TOLERANCE = 1e-3  # largest logit difference still called unchanged
DIGEST_DECIMALS = 2
PREFIX = "probe."
METADATA_KEY = "probe"
VERSION = 1
UNCHANGED, STALE, CHANGED = "unchanged", "stale", "changed"
CHECKS_FILE = "probes.json"  # the verdicts, beside the workspace's index
NOT_RERUN = "not re-run"  # a check left this domain out (see core.workspace.probe_methods)
STATES = (UNCHANGED, STALE, CHANGED, NOT_RERUN)


def logits_digest(logits: np.ndarray) -> str:
    """sha256 (first 16 hex digits) of the logits rounded to ``DIGEST_DECIMALS`` places."""
    rounded = np.round(np.asarray(logits, np.float64), DIGEST_DECIMALS) + 0.0  # no -0.0
    data = np.ascontiguousarray(rounded, dtype="<f8")
    return hashlib.sha256(str(data.shape).encode() + data.tobytes()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Probe:
    """The images (evaluation-transformed, float16), their logits and what made them:
    ``trunk`` (fingerprint) and ``weights`` (the domain's tensors digest)."""

    images: np.ndarray  # [N, H, W, 3] float16
    logits: np.ndarray  # [N, C] float32
    trunk: str
    weights: str
    made: str  # core.clock.utc_now()

    @property
    def digest(self) -> str:
        return logits_digest(self.logits)

    def to_tensors(self) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        tensors: dict[str, np.ndarray] = {
            PREFIX + "images": np.ascontiguousarray(self.images, np.float16),
            PREFIX + "logits": np.ascontiguousarray(self.logits, np.float32),
        }
        meta = {
            "version": VERSION,
            "trunk": self.trunk,
            "weights": self.weights,
            "made": self.made,
            "digest": self.digest,
        }
        return tensors, {METADATA_KEY: json.dumps(meta, sort_keys=True)}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> Probe:
        """The probe stored by ``to_tensors`` (``ValueError`` when absent or damaged)."""
        try:
            meta = json.loads(metadata[METADATA_KEY])
            if int(meta["version"]) != VERSION:
                raise ValueError(f"version {meta['version']}, expected {VERSION}")
            probe = cls(
                np.asarray(tensors[PREFIX + "images"], np.float16),
                np.asarray(tensors[PREFIX + "logits"], np.float32),
                str(meta["trunk"]),
                str(meta["weights"]),
                str(meta["made"]),
            )
            if probe.digest != meta["digest"]:
                raise ValueError("its logits do not match their digest")
            if probe.images.ndim != 4 or len(probe.images) != len(probe.logits):
                raise ValueError(f"shapes {probe.images.shape} and {probe.logits.shape}")
            return probe
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"no usable probe ({exc})") from None


@dataclasses.dataclass(frozen=True)
class ProbeCheck:
    """One re-run of a domain's probe: the verdict, the largest logit difference, when and
    after what (``"training glyphs"``, ``"importing …"``, ``"loading a trunk"``)."""

    state: str  # one of STATES
    max_diff: float
    digest: str  # of the logits now
    checked: str  # core.clock.utc_now()
    after: str
    before: str = ""  # NOT_RERUN: the verdict of the last re-run ("" when none)

    def text(self) -> str:
        """``unchanged``, ``stale``, ``changed (max logit difference 0.12)`` or
        ``not re-run``."""
        if self.state == CHANGED:
            return f"changed (max logit difference {self.max_diff:.3g})"
        return self.state

    def not_rerun(self, checked: str, after: str) -> ProbeCheck:
        """This verdict, left out of a later check (``after``)."""
        before = self.before if self.state == NOT_RERUN else self.text()
        return ProbeCheck(NOT_RERUN, self.max_diff, self.digest, checked, after, before)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> ProbeCheck:
        state = str(d["state"])
        if state not in STATES:
            raise ValueError(f"probe state {state!r}")
        return cls(
            state,
            float(d["max_diff"]),  # type: ignore[arg-type]
            str(d["digest"]),
            str(d["checked"]),
            str(d["after"]),
            str(d.get("before", "")),
        )


def compare(probe: Probe, logits: np.ndarray, trunk: str, checked: str, after: str) -> ProbeCheck:
    """The verdict on ``logits`` (the probe's images run now on the trunk ``trunk``)."""
    logits = np.asarray(logits, np.float32)
    if logits.shape != probe.logits.shape:
        diff = float("inf")  # another head: nothing is as it was
    else:
        diff = float(np.max(np.abs(logits.astype(np.float64) - probe.logits)))
    if trunk != probe.trunk:
        state = STALE
    else:
        state = UNCHANGED if diff <= TOLERANCE else CHANGED
    digest = logits_digest(logits) if np.isfinite(diff) else ""
    return ProbeCheck(state, diff, digest, checked, after)


def read_checks(folder: Path) -> dict[str, ProbeCheck]:
    """The verdicts kept in ``folder/probes.json`` (none when it is missing or damaged)."""
    try:
        raw = json.loads((Path(folder) / CHECKS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    out: dict[str, ProbeCheck] = {}
    for name, value in raw.items() if isinstance(raw, dict) else ():
        try:
            out[str(name)] = ProbeCheck.from_dict(value)
        except (KeyError, TypeError, ValueError):
            continue
    return out
