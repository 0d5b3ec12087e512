"""Where the window's panels sit: tabs in the middle, docks around them, and the window's
size and dock layout kept across launches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QDockWidget,
    QMainWindow,
    QScrollArea,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.panels.curves_panel import CurvesPanel
from workbench.panels.recipe_panel import RecipePanel
from workbench.preferences import Preferences

PREFERRED_SIZE = QSize(1400, 900)
DOMAINS_WIDTH = 340  # the table's first columns (name, trained, accuracies) without scrolling
PROGRESS_HEIGHT = 180  # a plan of three lines above a log of four (the log gives way)
LAYOUT_VERSION = 2  # 2: full-height side docks, class counts as a tab


def default_size(available: QSize | None) -> QSize:
    """1400x900 where it fits; on a smaller screen, the screen less room for a frame."""
    if available is None:
        return PREFERRED_SIZE
    return QSize(
        min(PREFERRED_SIZE.width(), available.width() - 16),
        min(PREFERRED_SIZE.height(), available.height() - 40),
    )


class Arrangement(NamedTuple):
    tabs: QTabWidget
    recipe_scroll: QScrollArea
    docks: tuple[QDockWidget, ...]  # domains, recipe, progress: the View menu shows or hides them


def arrange(
    window: QMainWindow,
    *,
    tabs: Sequence[tuple[QWidget, str, str]],
    domains: QWidget,
    recipe: RecipePanel,
    progress: QWidget,
) -> Arrangement:
    """The tabs as the central widget; the domains left and the recipe right, both the full
    height of the window (on a 720 px screen the domains table needs it); the progress and
    log under the tabs. Every dock can be closed and brought back from the View menu."""
    tab_widget = QTabWidget()
    # Every tab stays in sight: on a screen too narrow for all titles they end in "…" and
    # the tooltip says the whole title, rather than hiding tabs behind scroll arrows.
    tab_widget.setUsesScrollButtons(False)
    tab_widget.setElideMode(Qt.TextElideMode.ElideRight)
    for widget, title, tip in tabs:
        tab_widget.setTabToolTip(tab_widget.addTab(widget, title), f"{title}: {tip}")
    window.setCentralWidget(tab_widget)
    for corner, area in (
        (Qt.Corner.TopLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea),
        (Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea),
        (Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea),
        (Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea),
    ):
        window.setCorner(corner, area)
    recipe_scroll = QScrollArea()
    recipe_scroll.setWidgetResizable(True)
    recipe_scroll.setWidget(recipe)
    # Both ways: a narrow dock scrolls sideways to every field instead of cutting them off.
    recipe_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    recipe_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    recipe_scroll.setMinimumWidth(160)
    recipe_column = QWidget()  # the recipe, and under it (always in sight) what is wrong in it
    column = QVBoxLayout(recipe_column)
    column.setContentsMargins(0, 0, 0, 0)
    column.addWidget(recipe_scroll, 1)
    column.addWidget(recipe.error_label)
    domains_dock = _dock(window, "Domains", domains, Qt.DockWidgetArea.LeftDockWidgetArea)
    recipe_dock = _dock(
        window, "Model and recipe", recipe_column, Qt.DockWidgetArea.RightDockWidgetArea
    )
    progress_dock = _dock(
        window, "Progress and log", progress, Qt.DockWidgetArea.BottomDockWidgetArea
    )
    scroll_bar = window.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
    window.resizeDocks(
        [domains_dock, recipe_dock],
        [DOMAINS_WIDTH, recipe.minimumSizeHint().width() + scroll_bar + 4],
        Qt.Orientation.Horizontal,
    )
    window.resizeDocks([progress_dock], [PROGRESS_HEIGHT], Qt.Orientation.Vertical)
    return Arrangement(tab_widget, recipe_scroll, (domains_dock, recipe_dock, progress_dock))


def _dock(window: QMainWindow, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(title.replace(" ", "_"))
    dock.setWidget(widget)
    dock.setFeatures(
        QDockWidget.DockWidgetFeature.DockWidgetMovable
        | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        | QDockWidget.DockWidgetFeature.DockWidgetClosable
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
    if state is not None:  # a state saved by an older layout is ignored (version differs)
        window.restoreState(state, LAYOUT_VERSION)


def save_geometry(window: QMainWindow, prefs: Preferences) -> None:
    prefs.set_bytes("window/geometry", window.saveGeometry())
    prefs.set_bytes("window/state", window.saveState(LAYOUT_VERSION))


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
