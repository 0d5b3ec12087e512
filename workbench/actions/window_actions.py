"""The window's actions: toolbar, File and Run menus, their shortcuts and wiring.

They are one declared object, ``Actions``, that the window holds (``MainWindow.commands``),
not attributes set on the window from here. Every action connects through ``no_args``
(``make_action``: ``triggered`` sends ``checked: bool``, which a slot with optional
parameters would take for one of them: the Train button's first click failed that way).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QToolBar

from workbench.actions.help_actions import build_help
from workbench.wiring import make_action

if TYPE_CHECKING:
    from workbench.main_window import MainWindow


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunControls:
    """Run: Train, Pause, Sweep, Stop and Stop after this epoch."""

    train: QAction
    pause: QAction
    sweep: QAction
    stop: QAction
    stop_epoch: QAction


@dataclasses.dataclass(frozen=True, kw_only=True)
class EngineFileActions:
    """What works on the engine's files, and the devices: enabled only while it is idle."""

    export_adapters: QAction
    import_adapters: QAction
    save_trunk: QAction
    load_trunk: QAction
    export_model: QAction
    export_deployment: QAction
    import_reference: QAction
    devices: QActionGroup

    @property
    def engine_files(self) -> tuple[QAction, ...]:
        return (
            self.export_adapters,
            self.import_adapters,
            self.save_trunk,
            self.load_trunk,
            self.export_model,
            self.export_deployment,
            self.import_reference,
            *self.devices.actions(),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Actions(RunControls, EngineFileActions):
    """The window's actions, one attribute each: the toolbar, the menus, the shortcut list
    and the tests all reach them here (``MainWindow.commands``)."""

    open_images: QAction
    check_folder: QAction
    shortcuts: QAction
    docs: QAction
    about: QAction


def build_actions(w: MainWindow) -> Actions:
    """The window's actions, its toolbar and its menus (File, Run, then View and Help)."""
    run = _run_actions(w)
    toolbar = QToolBar("Run")
    toolbar.setObjectName("run_toolbar")
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    for a in (run.train, run.pause, run.stop, run.stop_epoch):
        toolbar.addAction(a)
    w.addToolBar(toolbar)
    files = _file_actions(w)
    open_images, check_folder = _build_file_menu(w, files)
    run_menu = w.menuBar().addMenu("&Run")
    for a in (run.train, run.sweep, run.pause, run.stop, run.stop_epoch):
        run_menu.addAction(a)
    devices = run_menu.addMenu("Devices (tf.distribute)")
    for a in files.devices.actions():
        devices.addAction(a)
    shortcuts, docs, about = build_help(w, files.devices)
    actions = Actions(
        train=run.train,
        pause=run.pause,
        sweep=run.sweep,
        stop=run.stop,
        stop_epoch=run.stop_epoch,
        export_adapters=files.export_adapters,
        import_adapters=files.import_adapters,
        save_trunk=files.save_trunk,
        load_trunk=files.load_trunk,
        export_model=files.export_model,
        export_deployment=files.export_deployment,
        import_reference=files.import_reference,
        devices=files.devices,
        open_images=open_images,
        check_folder=check_folder,
        shortcuts=shortcuts,
        docs=docs,
        about=about,
    )
    for a in (*actions.engine_files, actions.train):
        a.setEnabled(False)
    return actions


def _run_actions(w: MainWindow) -> RunControls:
    """Train, Pause, Sweep, Stop and Stop after this epoch (Sweep follows Train's state)."""
    train = make_action(
        w,
        "Train",
        w.start_training,
        "F5",
        "Ctrl+R",
        tip="Train the selected domain with this recipe",
    )
    sweep = make_action(
        w,
        "Sweep…",
        w.insight.sweep,
        tip="Train the selected domain once per weight decay (and learning rate) and keep the best",
    )
    train.changed.connect(lambda: sweep.setEnabled(train.isEnabled()))
    return RunControls(
        train=train,
        pause=make_action(w, "Pause", w.toggle_pause, "F6", "Ctrl+P"),
        sweep=sweep,
        stop=make_action(
            w, "Stop", w.session.stop, "Shift+F5", "Ctrl+.", tip="Stop after the current batch"
        ),
        stop_epoch=make_action(
            w,
            "Stop after this epoch",
            w.stop_after_epoch,
            "Ctrl+Shift+E",
            tip="Finish the epoch in progress (with its validation), then stop",
        ),
    )


def _file_actions(w: MainWindow) -> EngineFileActions:
    """The engine's files: adapters, trunk, model, deployment, reference; the devices."""
    f = w.files
    devices = QActionGroup(w)
    for kind, text in (
        ("default", "This device"),
        ("mirrored", "All local devices (MirroredStrategy)"),
    ):
        action = make_action(w, text, functools.partial(f.set_devices, kind))
        action.setCheckable(True)
        action.setChecked(kind == "default")
        devices.addAction(action)
    return EngineFileActions(
        export_adapters=make_action(
            w, "Export adapters…", lambda: f.export_adapters(w.domains.selected_domain())
        ),
        import_adapters=make_action(w, "Import adapters…", f.import_adapters),
        save_trunk=make_action(w, "Save trunk…", f.save_trunk),
        load_trunk=make_action(w, "Load trunk…", f.load_trunk),
        export_model=make_action(w, "Export whole model…", f.export_model),
        export_deployment=make_action(
            w,
            "Export for deployment…",
            lambda: f.export_deployment(w.domains.selected_domain()),
            tip="The selected domain as one standalone model (ONNX, LiteRT or SavedModel)",
        ),
        import_reference=make_action(w, "Import reference checkpoint…", f.import_reference),
        devices=devices,
    )


def _build_file_menu(w: MainWindow, files: EngineFileActions) -> tuple[QAction, QAction]:
    """File: open and add images and domains, files of the engine, check, quit; gives
    (Open images, Check data folder)."""
    menu = w.menuBar().addMenu("&File")
    open_images = make_action(
        w,
        "Open images…",
        lambda: _open_images(w),
        QKeySequence.StandardKey.Open,
        "Ctrl+O",
        tip="Classify image files under the trained domains (or drop them on the window)",
    )
    menu.addAction(open_images)
    menu.addSeparator()
    menu.addAction(make_action(w, "Add image folder…", w.catalogue.add_folder))
    menu.addAction(make_action(w, "New domain…", w.catalogue.new_domain))
    menu.addAction(make_action(w, "Edit domain images…", w.catalogue.edit_domain))
    menu.addAction(make_action(w, "Label next…", w.catalogue.label_next))
    menu.addAction(make_action(w, "Add decathlon archive…", w.catalogue.add_archive))
    for group in (
        (files.export_adapters, files.import_adapters, files.import_reference),
        (files.save_trunk, files.load_trunk),
        (files.export_model, files.export_deployment),
    ):
        menu.addSeparator()
        for a in group:
            menu.addAction(a)
    menu.addSeparator()
    check_folder = make_action(
        w,
        "Check data folder…",
        w.data_folder.check,
        tip="Check every file of the data folder and repair what the intact files allow",
    )
    menu.addAction(check_folder)
    menu.addSeparator()
    menu.addAction(make_action(w, "Quit", w.close, QKeySequence.StandardKey.Quit, "Ctrl+Q"))
    return open_images, check_folder


def _open_images(w: MainWindow) -> None:
    """File > Open images…: the Classify tab comes forward, where the cards will be."""
    w.tabs.setCurrentWidget(w.classify)
    w.catalogue.open_images()
