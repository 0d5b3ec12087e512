"""What a person can do to the window, as test helpers: click, press keys, open menus, drop.

Everything goes through Qt's input path (``QTest`` mouse and key events on the widget a
person would touch, a drop event carrying file URLs); nothing calls the window's methods.
File dialogs are the one seam: they are answered by ``ScriptedDialogs``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QAction, QDrag, QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QMainWindow,
    QMenu,
    QTableWidget,
    QToolButton,
    QWidget,
)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
    """Spin the event loop until ``predicate()``; fail with ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        QApplication.processEvents()
        if predicate():
            return
        time.sleep(0.01)
    QApplication.processEvents()
    if not predicate():
        raise AssertionError(f"timed out after {timeout:g} s waiting for: {what or predicate}")


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def plain(text: str) -> str:
    return text.replace("&", "")


def click(widget: QWidget) -> None:
    """A left click in the middle of a visible, enabled widget."""
    assert widget.isVisible(), f"{widget} is not visible"
    assert widget.isEnabled(), f"{plain(getattr(widget, 'text', lambda: '')())} is disabled"
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)


def button(root: QWidget, text: str) -> QAbstractButton:
    """The visible button (push or tool button) labelled ``text``."""
    found = [
        b for b in root.findChildren(QAbstractButton) if plain(b.text()) == text and b.isVisible()
    ]
    assert found, f"no visible button labelled {text!r}"
    return found[0]


def toolbar_button(window: QMainWindow, text: str) -> QToolButton:
    found = [
        b for b in window.findChildren(QToolButton) if plain(b.text()) == text and b.isVisible()
    ]
    assert found, f"no toolbar button {text!r}"
    return found[0]


def press(window: QWidget, key: str) -> None:
    """A shortcut as a person types it: 'F5', 'Ctrl+R', 'Shift+F5', 'Ctrl+Shift+E'."""
    from PySide6.QtGui import QKeySequence

    window.activateWindow()
    combo = QKeySequence(key)[0]
    QTest.keyClick(window, combo.key(), combo.keyboardModifiers())


def click_row(table: QTableWidget, row: int, column: int = 0) -> None:
    table.scrollToItem(table.item(row, column))
    rect = table.visualRect(table.model().index(row, column))
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def click_row_with(table: QTableWidget, text: str, column: int = 0) -> None:
    for r in range(table.rowCount()):
        item = table.item(r, column)
        if item is not None and plain(item.text()).lstrip("★ ").strip() == text:
            click_row(table, r, column)
            return
    raise AssertionError(f"no row {text!r} in column {column}")


def _menu_action(menu: QMenu, text: str) -> QAction:
    for action in menu.actions():
        if plain(action.text()) == text:
            return action
    raise AssertionError(
        f"no item {text!r} in the menu; it has {[plain(a.text()) for a in menu.actions()]}"
    )


def choose_menu(window: QMainWindow, *path: str) -> None:
    """Open a menu of the menu bar with the mouse and click through ``path``."""
    bar = window.menuBar()
    top = next((a for a in bar.actions() if plain(a.text()) == path[0]), None)
    assert top is not None, f"no menu {path[0]!r}"
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.actionGeometry(top).center())
    menu = top.menu()
    wait_until(menu.isVisible, 5, f"the {path[0]} menu to open")
    for i, text in enumerate(path[1:], 1):
        action = _menu_action(menu, text)
        assert action.isEnabled(), f"menu item {text!r} is disabled"
        if action.menu() is not None and i < len(path) - 1:
            # Down arrows to the entry, Right opens it (as a person does with the keyboard)
            for _ in range(len(menu.actions()) + 1):
                if menu.activeAction() is action:
                    break
                QTest.keyClick(menu, Qt.Key.Key_Down)
            assert menu.activeAction() is action, f"could not reach {text!r}"
            QTest.keyClick(menu, Qt.Key.Key_Right)
            sub = action.menu()
            wait_until(sub.isVisible, 5, f"the {text} submenu to open")
            menu = sub
            continue
        pos = menu.actionGeometry(action).center()
        QTest.mouseClick(menu, Qt.MouseButton.LeftButton, pos=pos)
    QApplication.processEvents()


def drop_files(widget: QWidget, paths: Sequence[Path | str]) -> bool:
    """Drag files from a file manager and drop them on ``widget``; True if it was accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    at = widget.rect().center()
    enter = QDragEnterEvent(
        QPoint(at),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(
        QPointF(at),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


def table_text(table: QTableWidget, row_key: str, column: str) -> str:
    """The text a person reads in ``column`` of the row whose first cell is ``row_key``."""
    return table_item(table, row_key, column).text()


def table_item(table: QTableWidget, row_key: str, column: str):
    """The cell in ``column`` of the row whose first cell is ``row_key`` (its tooltip too)."""
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    c = headers.index(column)
    for r in range(table.rowCount()):
        if plain(table.item(r, 0).text()).lstrip("★ ").strip() == row_key:
            return table.item(r, c)
    raise AssertionError(f"no row {row_key!r}")


def close_window(window) -> None:
    """Stop a run that is still going, shut the window down and let Qt delete it."""
    if window.session.training_active:
        window.session.stop()
        wait_until(lambda: not window.session.training_active, 60, "the run to stop")
    window.shutdown()
    window.deleteLater()
    QApplication.processEvents()


def drag_thumbnail(view: QAbstractItemView, row: int, target: QWidget) -> bool:
    """Press on the item at ``row`` of ``view`` and move the mouse: the view starts a real
    ``QDrag``; its data is then dropped on ``target`` (real drag-enter, move and drop
    events). True if ``target`` took it. (The offscreen platform ends a ``QDrag`` at once as
    dropped nowhere; the drag's own data is what is dropped.)"""
    at = view.visualRect(view.model().index(row, 0)).center()
    QTest.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=at)
    step = max(2, QApplication.startDragDistance())
    for k in range(1, 6):
        QTest.mouseMove(view.viewport(), at + QPoint(step * k, step * k))
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=at + QPoint(5 * step, 0))
    drags = view.findChildren(QDrag)
    assert drags, "the view started no drag"
    source = drags[-1].mimeData()
    mime = QMimeData()
    for kind in source.formats():
        mime.setData(kind, source.data(kind))
    for drag in drags:
        drag.deleteLater()
    return _drop(target, mime, Qt.DropAction.MoveAction)


def _drop(widget: QWidget, mime: QMimeData, action: Qt.DropAction) -> bool:
    at = widget.rect().center()
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPoint(at), action, mime, buttons, mods)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    move = QDragMoveEvent(QPoint(at), action, mime, buttons, mods)
    QApplication.sendEvent(widget, move)
    drop = QDropEvent(QPointF(at), action, mime, buttons, mods)
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


def ctrl_key(widget: QWidget, key: Qt.Key) -> None:
    """Ctrl+``key`` as a person types it, Ctrl let go after: ``QTest.keyClick`` leaves the
    application's modifier state at Ctrl, so a later click would be a Ctrl+click."""
    QTest.keyClick(widget, key, Qt.KeyboardModifier.ControlModifier)
    QTest.keyRelease(widget, Qt.Key.Key_Control)
