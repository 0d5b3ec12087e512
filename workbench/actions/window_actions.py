"""The window's actions: toolbar, File and Run menus, their shortcuts and wiring.

Every action connects through ``no_args`` (``triggered`` sends ``checked: bool``, which a
slot with optional parameters would take for one of them: the Train button's first click
failed that way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QToolBar

from workbench.wiring import no_args

if TYPE_CHECKING:
    from workbench.main_window import MainWindow


def make_action(
    w: MainWindow, text: str, slot: Any, *shortcuts: str | QKeySequence.StandardKey, tip: str = ""
) -> QAction:
    action = QAction(text, w)
    keys: list[QKeySequence] = []
    for s in shortcuts:  # a platform may map a standard key to nothing (offscreen)
        key = QKeySequence(s)
        if not key.isEmpty() and key not in keys:
            keys.append(key)
    if keys:
        action.setShortcuts(keys)
    action.setToolTip(
        f"{tip or text} ({', '.join(k.toString() for k in keys)})" if keys else tip or text
    )
    action.triggered.connect(no_args(slot))  # triggered sends checked: bool
    return action


def build_actions(w: MainWindow) -> None:
    """The window's actions, toolbar and menus, kept as the window's attributes."""
    s = w.session
    w.train_action = make_action(
        w,
        "Train",
        w.start_training,
        "F5",
        "Ctrl+R",
        tip="Train the selected domain with this recipe",
    )
    w.pause_action = make_action(w, "Pause", w.toggle_pause, "F6", "Ctrl+P")
    w.sweep_action = make_action(
        w,
        "Sweep…",
        w.insight.sweep,
        tip="Train the selected domain once per weight decay (and learning rate) and keep the best",
    )
    w.train_action.changed.connect(lambda: w.sweep_action.setEnabled(w.train_action.isEnabled()))
    w.stop_action = make_action(
        w, "Stop", s.stop, "Shift+F5", "Ctrl+.", tip="Stop after the current batch"
    )
    w.stop_epoch_action = make_action(
        w,
        "Stop after this epoch",
        w.stop_after_epoch,
        "Ctrl+Shift+E",
        tip="Finish the epoch in progress (with its validation), then stop",
    )
    toolbar = QToolBar("Run")
    toolbar.setObjectName("run_toolbar")
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    for a in (w.train_action, w.pause_action, w.stop_action, w.stop_epoch_action):
        toolbar.addAction(a)
    w.addToolBar(toolbar)
    f = w.files
    w.export_adapters_action = make_action(
        w, "Export adapters…", lambda: f.export_adapters(w.domains.selected_domain())
    )
    w.import_adapters_action = make_action(w, "Import adapters…", f.import_adapters)
    w.save_trunk_action = make_action(w, "Save trunk…", f.save_trunk)
    w.load_trunk_action = make_action(w, "Load trunk…", f.load_trunk)
    w.export_model_action = make_action(w, "Export whole model…", f.export_model)
    w.export_deployment_action = make_action(
        w,
        "Export for deployment…",
        lambda: f.export_deployment(w.domains.selected_domain()),
        tip="The selected domain as one standalone model (ONNX, LiteRT or SavedModel)",
    )
    w.import_reference_action = make_action(w, "Import reference checkpoint…", f.import_reference)
    w.device_actions = QActionGroup(w)
    for kind, text in (
        ("default", "This device"),
        ("mirrored", "All local devices (MirroredStrategy)"),
    ):
        action = make_action(w, text, lambda k=kind: f.set_devices(k))
        action.setCheckable(True)
        action.setChecked(kind == "default")
        w.device_actions.addAction(action)
    w.engine_file_actions = (
        w.export_adapters_action,
        w.import_adapters_action,
        w.save_trunk_action,
        w.load_trunk_action,
        w.export_model_action,
        w.export_deployment_action,
        w.import_reference_action,
        *w.device_actions.actions(),
    )
    _build_file_menu(w)
    run_menu = w.menuBar().addMenu("&Run")
    for a in (w.train_action, w.sweep_action, w.pause_action, w.stop_action, w.stop_epoch_action):
        run_menu.addAction(a)
    devices = run_menu.addMenu("Devices (tf.distribute)")
    for a in w.device_actions.actions():
        devices.addAction(a)
    for a in (*w.engine_file_actions, w.train_action):
        a.setEnabled(False)


def _build_file_menu(w: MainWindow) -> None:
    """File: open and add images and domains, files of the engine, check, quit."""
    menu = w.menuBar().addMenu("&File")
    w.open_images_action = make_action(
        w,
        "Open images…",
        lambda: _open_images(w),
        QKeySequence.StandardKey.Open,
        "Ctrl+O",
        tip="Classify image files under the trained domains (or drop them on the window)",
    )
    menu.addAction(w.open_images_action)
    menu.addSeparator()
    menu.addAction(make_action(w, "Add image folder…", w.catalogue.add_folder))
    menu.addAction(make_action(w, "New domain…", w.catalogue.new_domain))
    menu.addAction(make_action(w, "Edit domain images…", w.catalogue.edit_domain))
    menu.addAction(make_action(w, "Label next…", w.catalogue.label_next))
    menu.addAction(make_action(w, "Add decathlon archive…", w.catalogue.add_archive))
    for group in (
        (w.export_adapters_action, w.import_adapters_action, w.import_reference_action),
        (w.save_trunk_action, w.load_trunk_action),
        (w.export_model_action, w.export_deployment_action),
    ):
        menu.addSeparator()
        for a in group:
            menu.addAction(a)
    menu.addSeparator()
    w.check_folder_action = make_action(
        w,
        "Check data folder…",
        w.data_folder.check,
        tip="Check every file of the data folder and repair what the intact files allow",
    )
    menu.addAction(w.check_folder_action)
    menu.addSeparator()
    menu.addAction(make_action(w, "Quit", w.close, QKeySequence.StandardKey.Quit, "Ctrl+Q"))


def _open_images(w: MainWindow) -> None:
    """File > Open images…: the Classify tab comes forward, where the cards will be."""
    w.tabs.setCurrentWidget(w.classify)
    w.catalogue.open_images()
