"""Where the window's panels sit: tabs in the middle, docks around them, and the window's
size and dock layout kept across launches."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QScrollArea, QSplitter, QTabWidget, QWidget

from workbench.panels.curves_panel import CurvesPanel
from workbench.panels.recipe_panel import RecipePanel
from workbench.preferences import Preferences

PREFERRED_SIZE = QSize(1400, 900)


def default_size(available: QSize | None) -> QSize:
    """1400x900 where it fits; on a smaller screen, the screen less room for a frame."""
    if available is None:
        return PREFERRED_SIZE
    return QSize(
        min(PREFERRED_SIZE.width(), available.width() - 16),
        min(PREFERRED_SIZE.height(), available.height() - 40),
    )


def arrange(
    window: QMainWindow,
    *,
    tabs: Sequence[tuple[QWidget, str]],
    domains: QWidget,
    class_counts: QWidget,
    recipe: QWidget,
    progress: QWidget,
) -> tuple[QTabWidget, QScrollArea]:
    """The tabs as the central widget, the domains (over their class counts) docked left,
    the recipe right (scrolling), the progress and log at the bottom."""
    tab_widget = QTabWidget()
    for widget, title in tabs:
        tab_widget.addTab(widget, title)
    window.setCentralWidget(tab_widget)
    recipe_scroll = QScrollArea()
    recipe_scroll.setWidgetResizable(True)
    recipe_scroll.setWidget(recipe)
    recipe_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    recipe_scroll.setMinimumWidth(300)
    domains_column = QSplitter(Qt.Orientation.Vertical)  # the table, its class counts
    domains_column.addWidget(domains)
    domains_column.addWidget(class_counts)
    domains_column.setStretchFactor(0, 3)
    domains_column.setStretchFactor(1, 1)
    domains_dock = _dock(window, "Domains", domains_column, Qt.DockWidgetArea.LeftDockWidgetArea)
    recipe_dock = _dock(
        window, "Model and recipe", recipe_scroll, Qt.DockWidgetArea.RightDockWidgetArea
    )
    progress_dock = _dock(
        window, "Progress and log", progress, Qt.DockWidgetArea.BottomDockWidgetArea
    )
    window.resizeDocks(
        [domains_dock, recipe_dock],
        [470, recipe.sizeHint().width() + 30],
        Qt.Orientation.Horizontal,
    )
    window.resizeDocks([progress_dock], [150], Qt.Orientation.Vertical)
    return tab_widget, recipe_scroll


def _dock(window: QMainWindow, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(title.replace(" ", "_"))
    dock.setWidget(widget)
    dock.setFeatures(
        QDockWidget.DockWidgetFeature.DockWidgetMovable
        | QDockWidget.DockWidgetFeature.DockWidgetFloatable
    )
    window.addDockWidget(area, dock)
    return dock


def restore_geometry(window: QMainWindow, prefs: Preferences) -> None:
    """The last size, place and dock layout; the default size where none fits this screen."""
    geometry = prefs.get_bytes("window/geometry")
    if geometry is not None:
        window.restoreGeometry(geometry)
    screen = window.screen().availableGeometry() if window.screen() else None
    if geometry is None or (screen is not None and not screen.contains(window.geometry())):
        window.resize(default_size(screen.size() if screen is not None else None))
    state = prefs.get_bytes("window/state")
    if state is not None:
        window.restoreState(state)


def save_geometry(window: QMainWindow, prefs: Preferences) -> None:
    prefs.set_bytes("window/geometry", window.saveGeometry())
    prefs.set_bytes("window/state", window.saveState())


def restore_window(
    window: QMainWindow, prefs: Preferences, recipe: RecipePanel, curves: CurvesPanel
) -> None:
    """Geometry, the last recipe and the curves' smoothing, as the user left them."""
    restore_geometry(window, prefs)
    saved = prefs.get_json("recipe")
    if isinstance(saved, dict):
        recipe.apply_dict(saved)
    smoothing = prefs.get_float("curves/smoothing", curves.smoothing)
    if 0.0 <= smoothing < 1.0:
        curves.smoothing_slider.setValue(round(smoothing * 100))


def save_window(
    window: QMainWindow, prefs: Preferences, recipe: RecipePanel, curves: CurvesPanel
) -> None:
    save_geometry(window, prefs)
    prefs.set_json("recipe", recipe.to_dict())
    prefs.set_float("curves/smoothing", curves.smoothing)
    prefs.sync()
