"""What "fits the screen" means, measured on a shown window (used by ``layout_probe``).

Only Qt's own introspection: sizes, the style's margins and font metrics. A control counts
as cut when less than 85% of it is on screen and no scroll bar in that direction reaches
it; a text counts as elided when its widget is narrower (or, wrapped, shorter) than the
text needs, unless the widget's tooltip holds the whole text (eliding by design).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QRadioButton,
    QStyle,
    QStyleOptionButton,
    QStyleOptionComboBox,
    QStyleOptionToolButton,
    QStyleOptionViewItem,
    QTabBar,
    QTableView,
    QTableWidget,
    QToolButton,
    QWidget,
)

SHOWN = 0.85  # a control must show at least this much of itself (unless it can scroll there)
SLACK = 2  # pixels of rounding
CONTROLS = (QAbstractButton, QComboBox, QLineEdit, QAbstractSpinBox, QAbstractItemView)
TEXTS = (QLabel, QTabBar)  # cut by an edge (the window's, the screen's) counts as cut too


def name_of(widget: QWidget) -> str:
    text = ""
    for getter in ("text", "currentText", "windowTitle"):
        if hasattr(widget, getter):
            text = str(getattr(widget, getter)())
            if text:
                break
    label = (text or widget.objectName() or "").replace("&", "").replace("\n", " ")[:40]
    return f"{type(widget).__name__}({label!r})"


def domains_rows(window: QMainWindow) -> int:
    """Rows of the domains table (the one with a 'Domain' column) fully in its viewport."""
    best = 0
    for table in window.findChildren(QTableView):
        model = table.model()
        if not table.isVisible() or model is None or model.rowCount() < 5:
            continue
        heads = [
            str(model.headerData(c, Qt.Orientation.Horizontal)) for c in range(model.columnCount())
        ]
        if "Domain" not in heads:
            continue
        height = table.viewport().height()
        rows = sum(
            1
            for r in range(model.rowCount())
            if table.rowViewportPosition(r) >= 0
            and table.rowViewportPosition(r) + table.rowHeight(r) <= height
        )
        best = max(best, rows)
    return best


def window_fits(window: QMainWindow, screen: QSize) -> list[str]:
    out = []
    frame = window.frameGeometry()
    if frame.width() > screen.width() or frame.height() > screen.height():
        out.append(f"window {frame.width()}x{frame.height()} larger than the screen")
    least = window.minimumSizeHint().expandedTo(window.minimumSize())
    if least.width() > screen.width() or least.height() > screen.height():
        out.append(f"window cannot be made smaller than {least.width()}x{least.height()}")
    return out


def _scrolls(area: QAbstractScrollArea) -> tuple[bool, bool]:
    h, v = area.horizontalScrollBar(), area.verticalScrollBar()
    return (h.isVisible() and h.maximum() > 0, v.isVisible() and v.maximum() > 0)


def shown_part(window: QMainWindow, widget: QWidget) -> tuple[float, str]:
    """The share of ``widget`` on screen, and the direction in which it is cut with no scroll
    bar to reach it ('' when nothing is cut that way). The two directions are clipped apart:
    a field scrolled out of view vertically is not "cut sideways"."""
    full = QRect(widget.mapTo(window, widget.rect().topLeft()), widget.size())
    x0, x1, y0, y1 = full.left(), full.right() + 1, full.top(), full.bottom() + 1
    parent = widget.parentWidget()
    can_h = can_v = False
    clips = []
    while parent is not None and parent is not window:
        clips.append(QRect(parent.mapTo(window, parent.rect().topLeft()), parent.size()))
        area = parent if isinstance(parent, QAbstractScrollArea) else parent.parentWidget()
        if isinstance(area, QAbstractScrollArea):
            h, v = _scrolls(area)
            can_h, can_v = can_h or h, can_v or v
        parent = parent.parentWidget()
    clips.append(QRect(0, 0, window.width(), window.height()))
    screen = window.screen().geometry()  # a window wider than the screen is cut by its edge
    clips.append(QRect(window.mapFromGlobal(screen.topLeft()), screen.size()))
    for clip in clips:
        x0, x1 = max(x0, clip.left()), min(x1, clip.right() + 1)
        y0, y1 = max(y0, clip.top()), min(y1, clip.bottom() + 1)
    shown_w, shown_h = max(0, x1 - x0), max(0, y1 - y0)
    share = shown_w * shown_h / max(1, full.width() * full.height())
    cut = ""
    if shown_w < SHOWN * full.width() and not can_h:
        cut += "h"
    if shown_h < SHOWN * full.height() and not can_v:
        cut += "v"
    return share, cut


def _button_needs(button: QAbstractButton) -> int:
    """The width the button's text and icon need, with the style's margins and frame."""
    metrics = button.fontMetrics()
    text = button.text().replace("&&", "\0").replace("&", "").replace("\0", "&")
    icon = button.iconSize().width() + 4 if not button.icon().isNull() else 0
    content = QSize(metrics.horizontalAdvance(text) + icon, metrics.height())
    style = button.style()
    if isinstance(button, QToolButton):
        if button.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly:
            return 0
        option = QStyleOptionToolButton()
        if (
            button.menu() is not None
            or button.popupMode() != QToolButton.ToolButtonPopupMode.DelayedPopup
        ):
            content.setWidth(content.width() + 12)  # the menu arrow
        return style.sizeFromContents(
            QStyle.ContentsType.CT_ToolButton, option, content, button
        ).width()
    if isinstance(button, QPushButton):
        option = QStyleOptionButton()  # no text: the style's 80 px minimum does not apply
        if button.menu() is not None:
            content.setWidth(content.width() + 14)
        return style.sizeFromContents(
            QStyle.ContentsType.CT_PushButton, option, content, button
        ).width()
    if isinstance(button, (QCheckBox, QRadioButton)):
        return button.sizeHint().width()
    return 0


def _combo_elided(combo: QComboBox) -> bool:
    option = QStyleOptionComboBox()
    option.rect = combo.rect()
    option.editable = combo.isEditable()
    option.frame = combo.hasFrame()
    field = combo.style().subControlRect(
        QStyle.ComplexControl.CC_ComboBox, option, QStyle.SubControl.SC_ComboBoxEditField, combo
    )
    icon = combo.iconSize().width() + 4 if not combo.itemIcon(combo.currentIndex()).isNull() else 0
    return combo.fontMetrics().horizontalAdvance(combo.currentText()) + icon > field.width() + SLACK


def _label_elided(label: QLabel) -> bool:
    if not label.text().strip() or label.pixmap() is not None and not label.pixmap().isNull():
        return False
    if label.wordWrap():
        return label.height() + SLACK < label.heightForWidth(label.width())
    hint = label.sizeHint()
    return label.width() + SLACK < hint.width() or label.height() + SLACK < hint.height()


def _designed(widget: QWidget, text: str) -> bool:
    """Eliding is by design when the tooltip holds the whole text."""
    return bool(text) and text.replace("&", "") in widget.toolTip().replace("&", "")


def _text_problem(widget: QWidget) -> str:
    if isinstance(widget, QAbstractButton) and widget.text():
        needs = _button_needs(widget)
        if widget.width() + SLACK < needs and not _designed(widget, widget.text()):
            return f"text cut: {widget.width()} of {needs} px"
    elif isinstance(widget, QComboBox) and widget.currentText():
        if _combo_elided(widget) and not _designed(widget, widget.currentText()):
            return "text elided"
    elif isinstance(widget, QLabel) and _label_elided(widget):
        if not _designed(widget, widget.text()):
            size = f"{widget.width()}x{widget.height()}"
            return (
                f"text cut: {size} px for {widget.sizeHint().width()}x{widget.sizeHint().height()}"
            )
    return ""


def _tab_problems(bar: QTabBar) -> list[str]:
    out = []
    for i in range(bar.count()):
        rect, hint, text = bar.tabRect(i), bar.tabSizeHint(i), bar.tabText(i)
        whole = bar.rect().contains(rect) and rect.width() + SLACK >= hint.width()
        if not whole and text not in bar.tabToolTip(i):
            out.append(f"tab {text!r}: cut or behind the scroll arrows")
    return out


def _table_problems(table: QTableView) -> list[str]:
    """Columns no scroll bar reaches, header titles and cell texts cut to '…'."""
    out: list[str] = []
    header, model = table.horizontalHeader(), table.model()
    if model is None or not header.isVisible():
        return out
    can_h = _scrolls(table)[0]
    width = table.viewport().width()
    for c in range(model.columnCount()):
        if header.isSectionHidden(c):
            continue
        title = str(model.headerData(c, Qt.Orientation.Horizontal))
        x, size = header.sectionViewportPosition(c), header.sectionSize(c)
        if (x < 0 or x + size > width + SLACK) and not can_h:
            out.append(f"column {title!r} cut with no scroll bar to reach it")
        needs = header.sectionSizeHint(c)
        if size + SLACK < needs:
            out.append(f"column title {title!r} cut: {size} of {needs} px")
        if isinstance(table, QTableWidget):
            out += _cell_problems(table, c, title, size)
    return out


def _cell_problems(table: QTableWidget, column: int, title: str, size: int) -> list[str]:
    """A cell's text wider than its column is painted cut to '…' (the item delegate's sizes)."""
    delegate, option = table.itemDelegate(), QStyleOptionViewItem()
    for row in range(table.rowCount()):
        item = table.item(row, column)
        if item is None or table.isRowHidden(row) or not item.text():
            continue
        needs = delegate.sizeHint(option, table.model().index(row, column)).width()
        if size + SLACK < needs and item.text() not in (item.toolTip() or ""):
            return [f"column {title!r}: {item.text()!r} cut to '…' ({size} of {needs} px)"]
    return []


def _legend_problems(view: pg.GraphicsView) -> list[str]:
    """Plot legends are drawn in the view's scene: every entry must lie inside what it shows."""
    shown = view.mapToScene(view.viewport().rect()).boundingRect().adjusted(-1, -1, 1, 1)
    out = []
    for item in view.scene().items():
        if isinstance(item, pg.LegendItem) and item.isVisible():
            for _, label in item.items:
                if not shown.contains(label.sceneBoundingRect()):
                    out.append(f"legend entry {label.text!r} cut off the plot")
    return out


def problems(window: QMainWindow) -> list[str]:
    """Every visible control cut with no scroll bar to reach it, and every text cut short."""
    out: list[str] = []
    for widget in window.findChildren(QWidget):
        if not widget.isVisible() or widget.size().width() < 4 or widget.window() is not window:
            continue
        where = name_of(widget)
        if isinstance(widget, CONTROLS + TEXTS):
            share, cut = shown_part(window, widget)
            if cut:
                out.append(f"{where}: {100 * share:.0f}% shown, no scroll bar reaches the rest")
        text = _text_problem(widget)
        if text:
            out.append(f"{where}: {text}")
        if isinstance(widget, QTabBar):
            out += [f"{where}: {p}" for p in _tab_problems(widget)]
        if isinstance(widget, QTableView):
            out += [f"{where}: {p}" for p in _table_problems(widget)]
        if isinstance(widget, pg.GraphicsView):
            out += [f"{where}: {p}" for p in _legend_problems(widget)]
    return out
