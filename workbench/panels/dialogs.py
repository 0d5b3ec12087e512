"""The questions the window asks the user, behind one object tests can replace.

Modal dialogs block a headless test forever; panels therefore never call ``QFileDialog``
or ``QMessageBox`` directly but ask a ``Dialogs`` instance. Tests pass ``ScriptedDialogs``,
which answers from queues and records what was asked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence
from typing import Any

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from workbench.panels.import_dialog import ImportChoice, ImportNameDialog
from workbench.status_text import for_people


def choice_box(
    title: str, text: str, options: Sequence[str], parent: QWidget | None = None
) -> QMessageBox:
    box = QMessageBox(
        QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, parent
    )
    for k, option in enumerate(options):
        button = box.addButton(option, QMessageBox.ButtonRole.AcceptRole)
        if k == 0:
            box.setDefaultButton(button)
    box.addButton(QMessageBox.StandardButton.Cancel)
    return box


def chosen(box: QMessageBox, options: Sequence[str]) -> int | None:
    clicked = box.clickedButton()
    text = clicked.text() if clicked is not None else ""
    return options.index(text) if text in options else None


class Dialogs:
    """Real dialogs, parented to the window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.parent = parent

    def choose_dir(self, title: str, start: str = "") -> str:
        return QFileDialog.getExistingDirectory(self.parent, title, start)

    def open_file(self, title: str, start: str = "", filters: str = "") -> str:
        return QFileDialog.getOpenFileName(self.parent, title, start, filters)[0]

    def open_files(self, title: str, start: str = "", filters: str = "") -> list[str]:
        return list(QFileDialog.getOpenFileNames(self.parent, title, start, filters)[0])

    def save_file(self, title: str, start: str = "", filters: str = "") -> str:
        return QFileDialog.getSaveFileName(self.parent, title, start, filters)[0]

    def confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self.parent,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def warn(self, title: str, text: str) -> None:
        QMessageBox.warning(self.parent, title, for_people(text))

    def choose(self, title: str, text: str, options: Sequence[str]) -> int | None:
        """One of ``options`` (its index), each a button; None: Cancel."""
        box = choice_box(title, text, options, self.parent)
        box.exec()
        return chosen(box, options)

    def import_name(self, name: str, taken: Collection[str], what: str = "") -> ImportChoice | None:
        """Adapters of a domain that exists: under another name, replacing it, or None."""
        dialog = ImportNameDialog(name, taken, what, self.parent)
        dialog.exec()
        return dialog.choice

    def inform(self, title: str, text: str) -> None:
        """A note to read (Help menu); rich text, its links open in the desktop's viewer."""
        QMessageBox.about(self.parent, title, text)

    def sweep_request(self, domain: str) -> Any:
        """Run > Sweep…: the values to try (a ``SweepRequest``), or None when cancelled."""
        from workbench.panels.sweep_dialog import SweepDialog

        dialog = SweepDialog(domain, self.parent)
        if dialog.exec() != SweepDialog.DialogCode.Accepted:
            return None
        return dialog.request()


class ScriptedDialogs(Dialogs):
    """Answers queued in advance (tests); every question is recorded in ``asked``."""

    def __init__(self) -> None:
        super().__init__(None)
        self.answers: deque[Any] = deque()
        self.asked: list[tuple[str, str]] = []
        self.shown: list[str] = []  # every question's and warning's text, as a person reads it
        self.default_confirm = True

    def queue(self, *answers: Any) -> None:
        self.answers.extend(answers)

    def _next(self, kind: str, title: str, default: Any) -> Any:
        self.asked.append((kind, title))
        return self.answers.popleft() if self.answers else default

    def choose_dir(self, title: str, start: str = "") -> str:
        return str(self._next("choose_dir", title, ""))

    def open_file(self, title: str, start: str = "", filters: str = "") -> str:
        return str(self._next("open_file", title, ""))

    def open_files(self, title: str, start: str = "", filters: str = "") -> list[str]:
        return [str(p) for p in self._next("open_files", title, [])]

    def save_file(self, title: str, start: str = "", filters: str = "") -> str:
        return str(self._next("save_file", title, ""))

    def confirm(self, title: str, text: str) -> bool:
        self.shown.append(f"{title}: {text}")
        return bool(self._next("confirm", title, self.default_confirm))

    def choose(self, title: str, text: str, options: Sequence[str]) -> int | None:
        """A queued answer (an option's text; None: Cancel; nothing queued: the first)
        clicked on a real choice box."""
        self.shown.append(f"{title}: {text}")
        answer = self._next("choose", title, options[0])
        box = choice_box(title, text, options)
        box.show()
        if answer in options:
            target = next(b for b in box.buttons() if b.text() == answer)
        else:
            target = box.button(QMessageBox.StandardButton.Cancel)
        target.click()
        index = chosen(box, options)
        box.deleteLater()
        return index

    def warn(self, title: str, text: str) -> None:
        self.shown.append(f"{title}: {for_people(text)}")
        self.asked.append(("warn", f"{title}: {for_people(text)}"))

    def import_name(self, name: str, taken: Collection[str], what: str = "") -> ImportChoice | None:
        """A queued answer typed into a real ``ImportNameDialog``: a name (typed into its
        field, then its import button, when enabled), ``True`` (its Replace button) or
        ``False``/nothing (Cancel). What the dialog said is recorded in ``asked``."""
        answer = self._next("import_name", name, False)
        dialog = ImportNameDialog(name, taken, what)
        self.asked.append(("import_name_suggested", dialog.name_field.text()))
        if isinstance(answer, str):
            dialog.name_field.setText(answer)
            self.asked.append(("import_name_problem", dialog.problem.text()))
            if dialog.import_button.isEnabled():
                dialog.import_button.click()
        elif answer is True:
            dialog.replace_button.click()
        choice = dialog.choice
        dialog.deleteLater()
        return choice

    def inform(self, title: str, text: str) -> None:
        self.asked.append(("inform", f"{title}: {text}"))

    def sweep_request(self, domain: str) -> Any:
        """A queued ``SweepRequest``, or a dict of the dialog's field texts
        (``weight_decays``, ``learning_rates``, ``seeds``) typed into a real ``SweepDialog``."""
        answer = self._next("sweep_request", domain, None)
        if not isinstance(answer, dict):
            return answer
        from workbench.panels.sweep_dialog import SweepDialog

        dialog = SweepDialog(domain)
        for field, text in answer.items():
            getattr(dialog, field).setText(text)
        request = dialog.request()
        dialog.deleteLater()
        return request
