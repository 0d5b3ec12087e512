"""The catalogue of domains with what each one holds: data, training, accuracy, size.

The panel shows ``DomainState`` rows and turns clicks into signals; the window runs the
jobs. When SVHN is absent a banner offers the download, a folder of existing .mat files,
and (always one click away, e.g. offline) the built-in street-digits domain.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.backend.protocol import DomainState, describe_bytes
from workbench.panels.flow_layout import FlowLayout
from workbench.status_text import MODE_WORDS, percent

# What a person looks for first (is it trained, how well) comes first: it must be
# readable without scrolling sideways in a narrow dock.
COLUMNS = (
    "Domain",
    "Trained",
    "Test acc",
    "Val acc",
    "Probe",
    "Classes",
    "Data",
    "Train/val/test",
    "Source",
    "Adapters",
    "Parameters",
    "Export",
)
PROBE_COLUMN = COLUMNS.index("Probe")  # old domains shown unchanged (core.model.probe)
TRAINED_WORDS = MODE_WORDS
BUILTIN_DIGITS = "digits_street"
ROW_PADDING = 6  # pixels above and below a row's text
MIN_TABLE_ROWS = 4  # the table never shrinks below this many rows' height


def _pct(value: float | None) -> str:
    return percent(value)


def _cells(d: DomainState) -> tuple[str, ...]:
    """One row's texts, in ``COLUMNS`` order."""
    sizes = "/".join(str(d.sizes.get(k, 0)) for k in ("train", "val", "test"))
    trained = "" if not d.trained else TRAINED_WORDS.get(d.mode or "", d.mode or "yes")
    if d.stale:
        trained += " (stale)"
    if d.data_changed:
        trained += " (data changed)"
    if d.problem:
        trained = "damaged"
    return (
        f"★ {d.name}" if d.is_trunk_source else d.name,
        trained,
        _pct(d.test_accuracy),
        _pct(d.val_accuracy),
        d.probe,
        str(d.num_classes),
        "present" if d.present else ("built on first use" if d.source == "builtin" else "absent"),
        sizes if d.sizes else "",
        d.source,
        d.adapters,
        "" if d.parameters is None else f"{d.parameters:,}",
        describe_bytes(d.export_bytes),
    )


class DomainsPanel(QWidget):
    """Domains table, catalogue actions and the SVHN banner.

    Signals:
        domain_selected(str), prepare_requested(str), evaluate_requested(str),
        add_folder_requested(), new_domain_requested(), add_archive_requested(), svhn_download_requested(),
        svhn_locate_requested(), builtin_digits_requested()
    """

    domain_selected = Signal(str)
    prepare_requested = Signal(str)
    evaluate_requested = Signal(str)
    add_folder_requested = Signal()
    new_domain_requested = Signal()
    add_archive_requested = Signal()
    svhn_download_requested = Signal()
    svhn_locate_requested = Signal()
    builtin_digits_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._states: list[DomainState] = []
        self._engine_busy = False
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        rows = self.table.verticalHeader()  # compact rows: a laptop screen shows 8 and more
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.fontMetrics().height() + ROW_PADDING)
        self.table.setMinimumHeight(MIN_TABLE_ROWS * rows.defaultSectionSize())
        self.table.itemSelectionChanged.connect(self._selection_changed)

        self.prepare_button = QPushButton("Prepare data")
        self.prepare_button.setToolTip("Build or read the selected domain's images now")
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Test accuracy of the selected trained domain")
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.setToolTip("An image folder with one sub-folder per class")
        self.add_archive_button = QPushButton("Add archive…")
        self.new_domain_button = QPushButton("New domain…")
        self.new_domain_button.setToolTip("Make a domain: name classes, drop your images into them")
        self.new_domain_button.clicked.connect(self.new_domain_requested)
        self.add_archive_button.setToolTip("The Visual Decathlon archive (.tar or folder)")
        self.prepare_button.clicked.connect(self._prepare)
        self.evaluate_button.clicked.connect(self._evaluate)
        self.add_folder_button.clicked.connect(self.add_folder_requested)
        self.add_archive_button.clicked.connect(self.add_archive_requested)
        buttons = FlowLayout()  # one line in a wide dock, two in a narrow one
        for b in (
            self.prepare_button,
            self.evaluate_button,
            self.add_folder_button,
            self.add_archive_button,
            self.new_domain_button,
        ):
            buttons.addWidget(b)

        self._build_svhn_banner()

        self.legend = QLabel("★ = source domain of the shared trunk")
        self.legend.setStyleSheet("color: #666;")
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #1f4e8c;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.hint)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.svhn_banner)
        layout.addWidget(self.legend)
        self._update_buttons()

    def _build_svhn_banner(self) -> None:
        """The offer to get SVHN (or keep the built-in digits), shown while it is missing."""
        self.svhn_banner = QFrame()
        self.svhn_banner.setFrameShape(QFrame.Shape.StyledPanel)
        self.svhn_message = QLabel(
            "SVHN is not on this machine. Download it (about 240 MB, checksummed, resumable), "
            "or point at existing train_32x32.mat / test_32x32.mat files. The built-in "
            "street-digits domain needs no download."
        )
        self.svhn_message.setWordWrap(True)
        self.svhn_download_button = QPushButton("Download SVHN")
        self.svhn_locate_button = QPushButton("Locate .mat files…")
        self.builtin_button = QPushButton("Use built-in street digits")
        self.svhn_download_button.clicked.connect(self.svhn_download_requested)
        self.svhn_locate_button.clicked.connect(self.svhn_locate_requested)
        self.builtin_button.clicked.connect(self.builtin_digits_requested)
        banner = QVBoxLayout(self.svhn_banner)
        banner.setContentsMargins(6, 4, 6, 4)
        banner.addWidget(self.svhn_message)
        row = FlowLayout()
        for b in (self.svhn_download_button, self.svhn_locate_button, self.builtin_button):
            row.addWidget(b)
        banner.addLayout(row)
        self.svhn_banner.setVisible(False)

    # === State ===

    def set_domains(self, states: Sequence[DomainState]) -> None:
        """Show ``states``, keeping the selection on the same domain name."""
        selected = self.selected_domain()
        self._states = list(states)
        self.table.blockSignals(True)
        self.table.setRowCount(len(self._states))
        bold = QFont()
        bold.setBold(True)
        for r, d in enumerate(self._states):
            for c, text in enumerate(_cells(d)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, d.name)
                if d.is_trunk_source:
                    item.setFont(bold)
                    item.setToolTip("Source domain of the shared trunk")
                elif c == 0:
                    item.setToolTip(d.description or d.title)
                if c == 1 and d.stale:
                    item.setToolTip("Trained on an earlier trunk: retrain it on this one")
                if c == PROBE_COLUMN and d.probe_detail:
                    item.setToolTip(d.probe_detail)
                if c == 1 and d.data_changed and not d.problem:
                    item.setToolTip(
                        "Images were added or changed since it was trained: train it again "
                        "(from its current adapters, or anew)"
                    )
                if c == 1 and d.problem:
                    item.setToolTip(f"{d.problem} File > Check data folder… can repair it.")
                self.table.setItem(r, c, item)
        self.table.blockSignals(False)
        names = [d.name for d in self._states]
        if selected in names:
            self.select(selected)
        elif self._states:
            default = next((d.name for d in self._states if d.default_source), names[0])
            self.select(default)
        svhn = next((d for d in self._states if d.source == "svhn"), None)
        self.svhn_banner.setVisible(svhn is not None and not svhn.present)
        self._update_buttons()

    def set_hint(self, text: str) -> None:
        self.hint.setText(text)

    def states(self) -> list[DomainState]:
        return list(self._states)

    def state(self, name: str) -> DomainState | None:
        return next((d for d in self._states if d.name == name), None)

    def selected_domain(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def select(self, name: str) -> None:
        for r, d in enumerate(self._states):
            if d.name == name:
                self.table.selectRow(r)
                return

    def trained_domains(self) -> list[str]:
        return [d.name for d in self._states if d.trained]

    def set_svhn_message(self, text: str) -> None:
        self.svhn_message.setText(text)
        self.svhn_banner.setVisible(True)

    def set_busy(self, engine_busy: bool) -> None:
        """Evaluate needs the engine; it waits while a run trains."""
        self._engine_busy = engine_busy
        self._update_buttons()

    def _update_buttons(self) -> None:
        state = self.state(self.selected_domain() or "")
        self.prepare_button.setEnabled(state is not None and state.source != "imported")
        self.evaluate_button.setEnabled(
            state is not None and state.trained and not self._engine_busy
        )

    # === Slots ===

    @Slot()
    def _selection_changed(self) -> None:
        self._update_buttons()
        name = self.selected_domain()
        if name is not None:
            self.domain_selected.emit(name)

    @Slot()
    def _prepare(self) -> None:
        name = self.selected_domain()
        if name:
            self.prepare_requested.emit(name)

    @Slot()
    def _evaluate(self) -> None:
        name = self.selected_domain()
        if name:
            self.evaluate_requested.emit(name)
