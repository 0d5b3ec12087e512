"""Preferences keep their types across launches (QSettings INI)."""

from PySide6.QtCore import QByteArray

from workbench.preferences import Preferences, open_settings


def test_values_keep_their_types_in_a_new_settings_object(tmp_path, qapp):
    path = tmp_path / "wb.ini"
    p = Preferences(open_settings(path))
    p.set_float("lr", 0.01)
    p.set_bool("flag", False)
    p.set_int("count", 7)
    p.set_json("recipe", {"stages": [["0.1", "2"]]})
    p.set_bytes("geometry", QByteArray(b"\x01\x02"))
    p.remember_dir("images", tmp_path / "x.png")
    p.sync()
    q = Preferences(open_settings(path))
    assert q.get_float("lr") == 0.01  # exact, not 0.0099999997
    assert q.get_bool("flag", True) is False
    assert q.get_int("count") == 7
    assert q.get_json("recipe") == {"stages": [["0.1", "2"]]}
    assert bytes(q.get_bytes("geometry").data()) == b"\x01\x02"
    assert q.last_dir("images") == str(tmp_path)
    assert q.get_float("missing", 0.5) == 0.5


def test_settings_go_under_the_workbench_home(monkeypatch, tmp_path, qapp):
    monkeypatch.setenv("RAM_WORKBENCH_HOME", str(tmp_path))
    assert Preferences(open_settings()).path == str(tmp_path / "workbench.ini")


def test_the_window_icon_resource_loads(qapp):
    from workbench.resources import app_icon, resource_path

    assert resource_path("icon.svg").is_file()
    assert not app_icon().pixmap(32, 32).isNull()
