"""Resumable downloads with checksums (standard library only).

Bytes go to ``<file>.part``; an interrupted transfer is resumed with an HTTP ``Range``
request (automatically, a few times, and again on the next call), the finished file is
checked against its md5 and only then renamed into place. A cancelled download keeps its
``.part`` file so the next call resumes it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from core.data.sources.svhn import OFFICIAL_URL, SVHN_FILES, SVHN_MD5
from core.progress import Cancelled, ProgressFn, check_cancel, no_progress

CHUNK = 1 << 16
ByteProgress = Callable[[int, int | None], None]


class DownloadError(RuntimeError):
    """A download failed; the message says why and what to do."""


class ChecksumError(DownloadError):
    """The downloaded file's md5 is not the expected one (the file was deleted)."""


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Interrupted(Exception):
    pass


def download_file(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    progress: ByteProgress | None = None,
    cancel: threading.Event | None = None,
    retries: int = 3,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``); verify ``md5`` if given."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and (md5 is None or md5_of(dest) == md5):
        return dest
    part = dest.with_name(dest.name + ".part")
    attempts = 0
    while True:
        try:
            _fetch(url, part, progress, cancel, timeout)
            break
        except _Interrupted as exc:
            attempts += 1
            if attempts > retries:
                raise DownloadError(
                    f"The download of {url} was interrupted {attempts} times ({exc}); "
                    f"{part.stat().st_size if part.exists() else 0} bytes are kept in {part}. "
                    "Run it again to resume."
                ) from None
    if md5 is not None:
        got = md5_of(part)
        if got != md5:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"Checksum mismatch for {dest.name} from {url}: expected md5 {md5}, got {got}. "
                "The file was deleted; try again."
            )
    os.replace(part, dest)
    return dest


def _fetch(
    url: str,
    part: Path,
    progress: ByteProgress | None,
    cancel: threading.Event | None,
    timeout: float,
) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "ram-workbench"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # we already have every byte
            return
        raise DownloadError(f"The server refused {url}: HTTP {exc.code} {exc.reason}") from None
    except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"Cannot reach {url}: {reason}") from None
    with response:
        total: int | None = None
        if response.status == 206:
            match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                offset = 0  # a range we did not ask for: start again
                part.unlink(missing_ok=True)
                raise _Interrupted("unexpected Content-Range")
            total = int(match.group(2)) if match.group(2) != "*" else None
            mode = "ab"
        else:
            offset = 0  # the server ignored the range and sends everything
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        done = offset
        with open(part, mode) as handle:
            while True:
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"download of {url} cancelled; {done} bytes kept in {part}")
                try:
                    block = response.read(CHUNK)
                except (TimeoutError, http.client.IncompleteRead, ConnectionError) as exc:
                    raise _Interrupted(type(exc).__name__) from None
                if not block:
                    break
                handle.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
        if total is not None and done < total:
            raise _Interrupted(f"connection closed after {done} of {total} bytes")


def download_svhn(
    dest_dir: Path,
    *,
    base_url: str = OFFICIAL_URL,
    splits: Sequence[str] = ("train", "test"),
    md5s: dict[str, str] | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    timeout: float = 30.0,
) -> Path:
    """Fetch the official SVHN .mat files into ``dest_dir`` (skips files already verified)."""
    progress = progress or no_progress
    md5s = SVHN_MD5 if md5s is None else md5s
    names = [SVHN_FILES[s] for s in splits]
    for k, name in enumerate(names):
        check_cancel(cancel)
        url = base_url.rstrip("/") + "/" + name

        def report(done: int, total: int | None, k: int = k, name: str = name) -> None:
            frac = done / total if total else 0.0
            size = f"{done / 1e6:.1f} / {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
            progress((k + min(frac, 1.0)) / len(names), f"Downloading {name}: {size}")

        try:
            download_file(
                url,
                Path(dest_dir) / name,
                md5=md5s.get(name),
                progress=report,
                cancel=cancel,
                timeout=timeout,
            )
        except ChecksumError:
            raise
        except DownloadError as exc:
            if "Cannot reach" in str(exc):
                raise DownloadError(
                    f"SVHN could not be downloaded (offline?): {exc}. Download the files from "
                    f"{base_url} by hand, or point the workbench at existing "
                    "train_32x32.mat and test_32x32.mat files instead."
                ) from None
            raise
    progress(1.0, "SVHN downloaded")
    return Path(dest_dir)
