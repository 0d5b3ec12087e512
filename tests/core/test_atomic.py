"""The one atomic-write helper: a failed write leaves the old file and no temporary file."""

import json
import os

import pytest

from core.atomic_write import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    write_atomically,
)


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_failure_mid_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"old": true}')

    def half_then_fail(temp):
        temp.write_text('{"new": tr')  # half the new content is on disk in the temp file
        assert temp.parent == tmp_path and temp != path and temp.exists()
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, half_then_fail)
    assert path.read_text() == '{"old": true}'
    assert _names(tmp_path) == ["state.json"]

    # Also when the file did not exist before: nothing is left behind.
    fresh = tmp_path / "sub" / "new.bin"
    with pytest.raises(KeyboardInterrupt):
        write_atomically(fresh, lambda temp: (temp.write_bytes(b"x"), _interrupt()))
    assert _names(tmp_path / "sub") == []


def _interrupt():
    raise KeyboardInterrupt


def test_on_success_the_file_is_complete_and_the_temp_file_gone(tmp_path):
    data = os.urandom(1 << 20)
    atomic_write_bytes(tmp_path / "a.bin", data)
    atomic_write_text(tmp_path / "b.txt", "héllo\n")
    atomic_write_json(tmp_path / "c.json", {"b": 1, "a": [1, 2]})
    assert (tmp_path / "a.bin").read_bytes() == data
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    assert json.loads((tmp_path / "c.json").read_text()) == {"a": [1, 2], "b": 1}
    assert _names(tmp_path) == ["a.bin", "b.txt", "c.json"]
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    atomic_write_text(tmp_path / "b.txt", "replaced")
    assert (tmp_path / "b.txt").read_text() == "replaced"


def test_atomic_path_keeps_the_suffix_for_writers_that_need_a_name(tmp_path):
    path = tmp_path / "a.keras"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert _names(tmp_path) == ["a.keras"]
    with atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp.suffix == ".keras"  # Keras insists on it
        tmp.write_text("new")
    assert path.read_text() == "new"
    assert _names(tmp_path) == ["a.keras"]
