"""Model and recipe: preset, adapter kind (and a low-rank adapter's rank), width, image size, LR stages and the optimiser.

Every field is checked as it is typed by core's own check of that field
(``core.config.field_problem``); then, once per edit, the panel builds the frozen
``ModelConfig`` / ``TrainingConfig`` the session trains with, or the reasons it cannot, and
keeps that one verdict (``RecipeCheck``) for everything that asks until the next edit.
Weight decay of a domain's own kernels is remembered per domain (the paper uses a decay per
dataset).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.config import (
    ADAPTER_KINDS,
    MAX_ADAPTER_RANK,
    DomainBudget,
    DomainSpec,
    ModelConfig,
    TrainingConfig,
    field_problem,
)
from core.presets import DEFAULT_PRESET, PRESETS, get_preset
from workbench.panels.fields import CheckedField, parse_float, parse_int
from workbench.panels.lr_stage_editor import LrStageEditor

KIND_LABELS = {"bn_only": "BN only", "lowrank": "low-rank"}
DEFAULT_RANK = 8
WORKSPACE_MODEL = "__workspace__"  # the preset box's entry for a model no preset has

MODES: tuple[tuple[str, str], ...] = (
    ("adapters", "Adapters on the frozen trunk"),
    ("full", "From scratch: whole network (trunk trainable)"),
    ("linear_probe", "Linear probe (head only)"),
)


def _checked(parse: Callable[[str], Any], config: type, field: str):
    """A field parser that lets core refuse a bad value with its own words."""

    def parse_and_check(text: str) -> Any:
        value = parse(text)
        problem = field_problem(config, field, value)
        if problem is not None:
            raise ValueError(problem)
        return value

    return parse_and_check


_width = _checked(parse_float, ModelConfig, "width_factor")
_image_size = _checked(parse_int, ModelConfig, "image_size")
_batch = _checked(parse_int, TrainingConfig, "batch_size")
_momentum = _checked(parse_float, TrainingConfig, "momentum")
_weight_decay = _checked(parse_float, TrainingConfig, "weight_decay")
# The value becomes the run's TrainingConfig.domain_weight_decay, in place of the domain's
# own DomainSpec.weight_decay: checked (and worded) as the domain's.
_domain_weight_decay = _checked(parse_float, DomainSpec, "weight_decay")
_seed = _checked(parse_int, TrainingConfig, "seed")


@dataclasses.dataclass(frozen=True)
class RecipeCheck:
    """One edit's verdict: each config, or the reason there is none, and every reason (the
    first is shown under the recipe and on the Train button)."""

    model: ModelConfig | str
    training: TrainingConfig | str
    reasons: tuple[str, ...]


def _adapter_widgets() -> tuple[QComboBox, QSpinBox, QCheckBox]:
    """The adapter kind of the domain a run trains, a low-rank adapter's rank, and whether
    the domain owns a copy of the trunk's last stage."""
    kind = QComboBox()
    for name in ADAPTER_KINDS:
        kind.addItem(KIND_LABELS.get(name, name), name)
    kind.setToolTip(
        "The adapters of the domain a run trains (each domain may have its own on the shared trunk)"
    )
    rank = QSpinBox()
    rank.setRange(1, MAX_ADAPTER_RANK)
    rank.setValue(DEFAULT_RANK)
    rank.setToolTip(
        "Rank of each low-rank adapter: its budget (about 1% of the network per domain "
        "at rank 1, about 20% at rank 24 on the cpu preset)"
    )
    own = QCheckBox("Own last stage")
    own.setToolTip(
        "The domain owns a copy of the trunk's last stage of 3x3 convolutions and trains it "
        "(last stage fine-tuned): more accuracy for many more parameters per domain"
    )
    return kind, rank, own


class RecipePanel(QWidget):
    """Edits the model and the training recipe.

    Signals:
        changed(): any field changed; ``errors()`` says whether the recipe is usable.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._domain: str | None = None
        self._domain_decay: dict[str, str] = {}
        self._loading = False
        self._check = RecipeCheck("Not checked yet.", "Not checked yet.", ("Not checked yet.",))
        # What the fields are laid over: a preset's configs, or the open workspace's model.
        self._model_base: ModelConfig = get_preset(DEFAULT_PRESET).model
        self._training_base: TrainingConfig = get_preset(DEFAULT_PRESET).training
        self._workspace_model: ModelConfig = self._model_base

        self.preset = QComboBox()
        for name, preset in PRESETS.items():
            self.preset.addItem(name, name)
            self.preset.setItemData(
                self.preset.count() - 1, preset.description, Qt.ItemDataRole.ToolTipRole
            )
        self.adapter_kind, self.adapter_rank, self.own_last_stage = _adapter_widgets()
        # not ``width``: that would hide QWidget.width() from layouts and tools
        self.width_factor = CheckedField(_width, hint="width factor (1 = the paper's ResNet-26)")
        self.image_size = CheckedField(_image_size, hint="input side in pixels")
        self.mode = QComboBox()
        for key, label in MODES:
            self.mode.addItem(label, key)
        for combo in (self.preset, self.adapter_kind, self.mode):
            # Whole entries, never "Adapters on t…": a narrow dock scrolls sideways instead.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.stages = LrStageEditor()
        self.batch_size = CheckedField(_batch)
        self.momentum = CheckedField(_momentum)
        self.weight_decay = CheckedField(_weight_decay, hint="L2 on trunk kernels (mode full)")
        self.domain_weight_decay = CheckedField(
            _domain_weight_decay, hint="L2 on this domain's own kernels"
        )
        self.bn_init = QComboBox()
        for key, label in (("source", "from the source domain"), ("fresh", "fresh")):
            self.bn_init.addItem(label, key)
        self.bn_init.setToolTip(
            "How a new domain's batch-norms start on a trained trunk: the source domain's "
            "gamma, beta and moving statistics (the reference code's way), or fresh ones"
        )
        self.seed = CheckedField(_seed)
        # Not in this panel's layout: the window shows it under the scrolling recipe, always in
        # sight (and a wrapped label here would make the scroll area ask for its preferred
        # height instead of its minimum, so a laptop screen would need scrolling).
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b3261e;")

        self._lay_out()

        self.apply_preset(DEFAULT_PRESET)
        self.preset.currentIndexChanged.connect(self._preset_chosen)
        for combo in (self.adapter_kind, self.mode, self.bn_init):
            combo.currentIndexChanged.connect(self._emit_changed)
        self._connect_adapters()
        for field in self._fields():
            field.checked.connect(self._emit_changed)
        self.stages.changed.connect(self._emit_changed)
        self._emit_changed()

    def _lay_out(self) -> None:
        """The Model box over the Recipe box (the error label is the window's to place)."""
        model_box = QGroupBox("Model")
        form = QFormLayout(model_box)
        form.addRow("Preset", self.preset)
        self._add_adapter_rows(form)
        form.addRow("Width factor", self.width_factor)
        form.addRow("Image size", self.image_size)
        recipe_box = QGroupBox("Recipe")
        form2 = QFormLayout(recipe_box)
        form2.addRow(QLabel("Training"))  # the mode's long names get the full width
        form2.addRow(self.mode)
        form2.addRow(QLabel("Learning-rate stages"))
        form2.addRow(self.stages)
        form2.addRow("Batch size", self.batch_size)
        form2.addRow("Momentum", self.momentum)
        form2.addRow("Trunk weight decay", self.weight_decay)
        self.domain_decay_label = QLabel("Domain weight decay")
        form2.addRow(self.domain_decay_label, self.domain_weight_decay)
        form2.addRow(QLabel("New domain's batch-norms"))  # a long choice: a row of its own
        form2.addRow(self.bn_init)
        form2.addRow("Seed", self.seed)
        layout = QVBoxLayout(self)
        layout.addWidget(model_box)
        layout.addWidget(recipe_box)
        layout.addStretch(1)

    def _fields(self) -> list[CheckedField]:
        return [
            self.width_factor,
            self.image_size,
            self.batch_size,
            self.momentum,
            self.weight_decay,
            self.domain_weight_decay,
            self.seed,
        ]

    # === Presets ===

    def apply_preset(self, name: str) -> None:
        preset = get_preset(name)
        self._loading = True
        try:
            self.preset.setCurrentIndex(self.preset.findData(name))
            self._model_base, self._training_base = preset.model, preset.training
            self._set_model(preset.model)
            self._set_training(preset.training)
            domain_decay = preset.training.domain_weight_decay
            if domain_decay is None:
                domain_decay = preset.training.weight_decay
            self.domain_weight_decay.setText(f"{domain_decay:g}")
            self._domain_decay.clear()
        finally:
            self._loading = False
        self._emit_changed()

    @Slot(int)
    def _preset_chosen(self, index: int) -> None:
        if self._loading:
            return
        name = self.preset.itemData(index)
        if name == WORKSPACE_MODEL:
            self._set_model(self._workspace_model)
            self._model_base = self._workspace_model
            self._emit_changed()
        else:
            self.apply_preset(name)

    def show_model(self, config: ModelConfig) -> None:
        """Show the open workspace's model: its preset when one has it, else as it is.

        The training fields stay as they are (the user's, or the default preset's).
        """
        self._workspace_model = config
        name = next((n for n, p in PRESETS.items() if p.model == config), None)
        index = self.preset.findData(WORKSPACE_MODEL)
        self._loading = True
        try:
            if name is None and index < 0:
                self.preset.insertItem(0, "this workspace's model", WORKSPACE_MODEL)
                self.preset.setItemData(
                    0,
                    "The model of the open workspace, which no preset has",
                    Qt.ItemDataRole.ToolTipRole,
                )
            elif name is not None and index >= 0:
                self.preset.removeItem(index)
            self.preset.setCurrentIndex(self.preset.findData(name or WORKSPACE_MODEL))
            self._model_base = config
            self._set_model(config)
        finally:
            self._loading = False
        self._emit_changed()

    def _add_adapter_rows(self, form: QFormLayout) -> None:
        form.addRow("Adapters", self.adapter_kind)
        form.addRow("Rank", self.adapter_rank)
        form.addRow(self.own_last_stage)

    def _connect_adapters(self) -> None:
        self.adapter_kind.currentIndexChanged.connect(self._kind_chosen)
        self.adapter_rank.valueChanged.connect(self._rank_changed)
        self.own_last_stage.toggled.connect(self._own_toggled)
        self._kind_chosen(self.adapter_kind.currentIndex())

    @Slot(int)
    def _kind_chosen(self, index: int) -> None:
        """The rank means something only for low-rank adapters."""
        self.adapter_rank.setEnabled(self.adapter_kind.itemData(index) == "lowrank")

    @Slot(int)
    def _rank_changed(self, value: int) -> None:
        self._emit_changed()

    @Slot(bool)
    def _own_toggled(self, checked: bool) -> None:
        self._emit_changed()

    def _set_model(self, model: ModelConfig) -> None:
        self.adapter_kind.setCurrentIndex(self.adapter_kind.findData(model.adapter_kind))
        if model.adapter_rank is not None:
            self.adapter_rank.setValue(model.adapter_rank)
        self.width_factor.setText(f"{model.width_factor:g}")
        self.image_size.setText(str(model.image_size))

    def _set_training(self, training: TrainingConfig) -> None:
        # The mode is not the preset's to choose: it follows the trunk and the domain.
        self.stages.set_stages(training.stages)
        self.batch_size.setText(str(training.batch_size))
        self.momentum.setText(f"{training.momentum:g}")
        self.weight_decay.setText(f"{training.weight_decay:g}")
        self.bn_init.setCurrentIndex(self.bn_init.findData(training.bn_init))
        self.seed.setText(str(training.seed))

    # === Domain ===

    def set_domain(self, name: str | None) -> None:
        """Show (and from now on edit) the weight decay of domain ``name``."""
        if self._domain is not None:
            self._domain_decay[self._domain] = self.domain_weight_decay.text()
        self._domain = name
        if name is not None and name in self._domain_decay:
            self.domain_weight_decay.setText(self._domain_decay[name])
        self.domain_decay_label.setText(
            f"Weight decay of {name}" if name else "Domain weight decay"
        )

    def show_budget(self, budget: DomainBudget) -> None:
        """Show a domain's adapters and own last stage, so that a run trains them as it has
        them unless the person chooses others (the window asks before replacing them)."""
        self._loading = True
        try:
            self.adapter_kind.setCurrentIndex(self.adapter_kind.findData(budget.adapter_kind))
            if budget.adapter_rank is not None:
                self.adapter_rank.setValue(budget.adapter_rank)
            self.own_last_stage.setChecked(budget.own_last_stage)
        finally:
            self._loading = False
        self._emit_changed()

    def budget(self) -> DomainBudget:
        """The adapters and own last stage a run from the recipe gives its domain."""
        kind = self.adapter_kind.currentData()
        rank = self.adapter_rank.value() if kind == "lowrank" else None
        return DomainBudget(kind, rank, self.own_last_stage.isChecked())

    def set_mode(self, mode: str) -> None:
        self.mode.setCurrentIndex(self.mode.findData(mode))

    def mode_value(self) -> str:
        return str(self.mode.currentData())

    # === Values ===

    def errors(self) -> list[str]:
        """Why the recipe cannot train as it stands ([]: it can), as of the last edit."""
        return list(self._check.reasons)

    def model_config(self) -> ModelConfig:
        """The model of the last edit (ValueError with the reason when there is none)."""
        if isinstance(self._check.model, str):
            raise ValueError(self._check.model)
        return self._check.model

    def training_config(self) -> TrainingConfig:
        """The recipe of the last edit, with the adapters (kind and rank, own last stage or
        not) of the domain it trains (ValueError with the reason when there is none)."""
        if isinstance(self._check.training, str):
            raise ValueError(self._check.training)
        return self._check.training

    def _validate(self) -> RecipeCheck:
        """The fields' own verdicts, then each config built once from valid fields."""
        labels = (
            "Width factor",
            "Image size",
            "Batch size",
            "Momentum",
            "Trunk weight decay",
            "Domain weight decay",
            "Seed",
        )
        fields = self._fields()
        reasons = [f"{n}: {f.error}" for n, f in zip(labels, fields, strict=True) if not f.valid]
        stage_reasons = self.stages.errors()
        reasons += stage_reasons
        model = self._build(self._build_model, fields[:2], [])
        training = self._build(self._build_training, fields[2:], stage_reasons)
        if not reasons:  # every field is valid alone: a config may still refuse the whole
            reasons += [r for r in (training, model) if isinstance(r, str)][:1]
        return RecipeCheck(model, training, tuple(reasons))

    @staticmethod
    def _build(
        build: Callable[[], Any], fields: list[CheckedField], stage_reasons: list[str]
    ) -> Any:
        """``build()``, or the first reason its fields give, or the reason it raises."""
        invalid = [f.error for f in fields if f.error is not None] + stage_reasons
        if invalid:
            return invalid[0]
        try:
            return build()
        except ValueError as exc:
            return str(exc)

    def _build_model(self) -> ModelConfig:
        kind = self.adapter_kind.currentData()
        return dataclasses.replace(
            self._model_base,
            adapter_kind=kind,
            adapter_rank=self.adapter_rank.value() if kind == "lowrank" else None,
            width_factor=self.width_factor.value(),
            image_size=self.image_size.value(),
        )

    def _build_training(self) -> TrainingConfig:
        kind = self.adapter_kind.currentData()
        return dataclasses.replace(
            self._training_base,
            adapter_kind=kind,
            adapter_rank=self.adapter_rank.value() if kind == "lowrank" else None,
            own_last_stage=self.own_last_stage.isChecked(),
            stages=self.stages.stages(),
            batch_size=self.batch_size.value(),
            momentum=self.momentum.value(),
            weight_decay=self.weight_decay.value(),
            mode=self.mode.currentData(),
            bn_init=self.bn_init.currentData(),
            seed=self.seed.value(),
            domain_weight_decay=self.domain_weight_decay.value(),
        )

    @Slot()
    def _emit_changed(self) -> None:
        if self._loading:
            return
        self._check = self._validate()
        errors = self._check.reasons
        self.error_label.setText("" if not errors else errors[0])
        self.changed.emit()

    # === Persistence ===

    def to_dict(self) -> dict[str, Any]:
        if self._domain is not None:
            self._domain_decay[self._domain] = self.domain_weight_decay.text()
        return {
            "preset": self.preset.currentData(),
            "adapter_kind": self.adapter_kind.currentData(),
            "adapter_rank": self.adapter_rank.value(),
            "own_last_stage": self.own_last_stage.isChecked(),
            "width": self.width_factor.text(),
            "image_size": self.image_size.text(),
            "mode": self.mode.currentData(),
            "bn_init": self.bn_init.currentData(),
            "stages": [list(row) for row in self.stages.row_texts()],
            "batch_size": self.batch_size.text(),
            "momentum": self.momentum.text(),
            "weight_decay": self.weight_decay.text(),
            "domain_weight_decay": self.domain_weight_decay.text(),
            "domain_decays": dict(self._domain_decay),
            "seed": self.seed.text(),
        }

    def apply_dict(self, data: dict[str, Any]) -> None:
        """Restore a saved recipe; unknown or malformed entries are skipped, not fatal."""
        if data.get("preset") in PRESETS:
            self.apply_preset(data["preset"])
        self._loading = True
        try:
            kind = self.adapter_kind.findData(data.get("adapter_kind"))
            if kind >= 0:
                self.adapter_kind.setCurrentIndex(kind)
            if isinstance(data.get("own_last_stage"), bool):
                self.own_last_stage.setChecked(data["own_last_stage"])
            rank = data.get("adapter_rank")
            if (
                isinstance(rank, int)
                and not isinstance(rank, bool)
                and 1 <= rank <= MAX_ADAPTER_RANK
            ):
                self.adapter_rank.setValue(rank)
            mode = self.mode.findData(data.get("mode"))
            if mode >= 0:
                self.mode.setCurrentIndex(mode)
            bn_init = self.bn_init.findData(data.get("bn_init"))
            if bn_init >= 0:
                self.bn_init.setCurrentIndex(bn_init)
            for key, field in (
                ("width", self.width_factor),
                ("image_size", self.image_size),
                ("batch_size", self.batch_size),
                ("momentum", self.momentum),
                ("weight_decay", self.weight_decay),
                ("domain_weight_decay", self.domain_weight_decay),
                ("seed", self.seed),
            ):
                if isinstance(data.get(key), str):
                    field.setText(data[key])
            rows = data.get("stages")
            if (
                isinstance(rows, list)
                and rows
                and all(isinstance(r, list) and len(r) == 2 for r in rows)
            ):
                self.stages.set_row_texts([(str(a), str(b)) for a, b in rows])
            decays = data.get("domain_decays")
            if isinstance(decays, dict):
                self._domain_decay = {str(k): str(v) for k, v in decays.items()}
        finally:
            self._loading = False
        self._emit_changed()
