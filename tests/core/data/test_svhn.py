"""SVHN: the official .mat layout, and the downloader against a local HTTP server only."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from core.data.pipeline.file_dataset import DataError
from core.data.sources.download import ChecksumError, DownloadError, download_file, download_svhn
from core.data.sources.svhn import load_svhn, read_svhn_mat
from core.progress import Cancelled
from tests.core.data.fixtures import write_svhn_mat


def test_mat_layout_and_label_10_means_zero(tmp_path):
    labels = np.array([[10], [1], [9], [10], [5]], np.uint8)
    x, _ = write_svhn_mat(tmp_path / "train_32x32.mat", 5, labels=labels)
    images, digits = read_svhn_mat(tmp_path / "train_32x32.mat")
    assert images.shape == (5, 32, 32, 3) and images.dtype == np.uint8
    assert digits.tolist() == [0, 1, 9, 0, 5]
    np.testing.assert_array_equal(images[2], x[:, :, :, 2])  # [32,32,3,N] -> [N,32,32,3]


def test_bad_mat_files_stop_with_the_file_named(tmp_path):
    write_svhn_mat(tmp_path / "a.mat", 3, labels=np.array([[1], [11], [0]], np.uint8))
    with pytest.raises(DataError, match=r"a.mat: labels must be 1..10.*0.0, 11.0"):
        read_svhn_mat(tmp_path / "a.mat")
    (tmp_path / "b.mat").write_bytes(b"not matlab")
    with pytest.raises(DataError, match="b.mat"):
        read_svhn_mat(tmp_path / "b.mat")
    from scipy.io import savemat

    savemat(tmp_path / "c.mat", {"images": np.zeros((2, 2))})
    with pytest.raises(DataError, match="c.mat has no 'X' and 'y'"):
        read_svhn_mat(tmp_path / "c.mat")


def test_load_svhn_splits(tmp_path):
    write_svhn_mat(tmp_path / "train_32x32.mat", 40, seed=1)
    write_svhn_mat(tmp_path / "test_32x32.mat", 12, seed=2)
    data = load_svhn(tmp_path, image_size=16)
    assert (data.num_examples("train"), data.num_examples("val"), data.num_examples("test")) == (
        36,
        4,
        12,
    )
    assert data.spec.name == "svhn_cropped" and data.spec.class_names[0] == "0"
    x, y = next(iter(data.dataset("train", batch_size=8, training=True)))
    assert x.shape == (8, 16, 16, 3) and int(y.numpy().max()) <= 9


# --- a local HTTP server with Range support ---


class _Server:
    def __init__(self, files: dict[str, bytes], cut_first_at: int | None = None) -> None:
        self.files, self.cut_first_at = files, cut_first_at
        self.requests: list[tuple[str, str | None]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                rng = self.headers.get("Range")
                owner.requests.append((name, rng))
                if name not in owner.files:
                    self.send_error(404)
                    return
                data = owner.files[name]
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(data):
                    self.send_response(416)
                    self.end_headers()
                    return
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if owner.cut_first_at is not None:
                    body, owner.cut_first_at = body[: owner.cut_first_at], None
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/housenumbers/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def svhn_files(tmp_path):
    src = tmp_path / "src"
    write_svhn_mat(src / "train_32x32.mat", 30, seed=1)
    write_svhn_mat(src / "test_32x32.mat", 10, seed=2)
    files = {p.name: p.read_bytes() for p in src.iterdir()}
    md5s = {n: hashlib.md5(b).hexdigest() for n, b in files.items()}
    return files, md5s


def test_download_svhn_with_progress_then_loads(tmp_path, svhn_files):
    files, md5s = svhn_files
    server = _Server(files)
    reports = []
    try:
        out = download_svhn(
            tmp_path / "dl",
            base_url=server.url,
            md5s=md5s,
            progress=lambda f, m: reports.append((f, m)),
        )
    finally:
        server.close()
    assert (out / "train_32x32.mat").read_bytes() == files["train_32x32.mat"]
    assert not list(out.glob("*.part"))
    assert reports[-1][0] == 1.0 and any("train_32x32.mat" in m for _, m in reports)
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions)
    assert load_svhn(out).num_examples("test") == 10


def test_download_resumes_with_a_range_request(tmp_path, svhn_files):
    files, md5s = svhn_files
    server = _Server(files, cut_first_at=1000)
    try:
        download_file(
            server.url + "train_32x32.mat",
            tmp_path / "train_32x32.mat",
            md5=md5s["train_32x32.mat"],
        )
    finally:
        server.close()
    assert (tmp_path / "train_32x32.mat").read_bytes() == files["train_32x32.mat"]
    assert server.requests == [("train_32x32.mat", None), ("train_32x32.mat", "bytes=1000-")]


def test_resume_of_a_part_file_left_by_an_earlier_run(tmp_path, svhn_files):
    files, md5s = svhn_files
    data = files["test_32x32.mat"]
    (tmp_path / "test_32x32.mat.part").write_bytes(data[:500])
    server = _Server(files)
    try:
        download_file(
            server.url + "test_32x32.mat", tmp_path / "test_32x32.mat", md5=md5s["test_32x32.mat"]
        )
    finally:
        server.close()
    assert (tmp_path / "test_32x32.mat").read_bytes() == data
    assert server.requests == [("test_32x32.mat", "bytes=500-")]


def test_checksum_mismatch_deletes_the_file(tmp_path, svhn_files):
    files, _ = svhn_files
    server = _Server(files)
    try:
        with pytest.raises(ChecksumError, match="expected md5 0+"):
            download_file(server.url + "train_32x32.mat", tmp_path / "dl" / "t.mat", md5="0" * 32)
    finally:
        server.close()
    assert not list((tmp_path / "dl").iterdir())


def test_offline_gives_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(
        DownloadError,
        match=r"SVHN could not be downloaded \(offline\?\).*"
        r"point the workbench at existing train_32x32.mat and test_32x32.mat files",
    ):
        download_svhn(tmp_path, base_url=f"http://127.0.0.1:{port}/", timeout=5)


def test_cancel_keeps_the_part_file_for_resume(tmp_path, svhn_files):
    files, md5s = svhn_files
    server = _Server(files)
    cancel = threading.Event()

    def progress(done, total):
        cancel.set()  # cancel after the first chunk

    try:
        with pytest.raises(Cancelled):
            download_file(
                server.url + "train_32x32.mat",
                tmp_path / "train_32x32.mat",
                md5=md5s["train_32x32.mat"],
                progress=progress,
                cancel=cancel,
            )
    finally:
        server.close()
    assert not (tmp_path / "train_32x32.mat").exists()
    part = Path(tmp_path / "train_32x32.mat.part")
    assert 0 < part.stat().st_size < len(files["train_32x32.mat"])
