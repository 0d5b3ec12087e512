"""What the next Train will take, said before it starts: an estimate measured on this machine.

The speed of the recipe's model comes from earlier runs of it (their run folders); when
there are none, a short probe measures it on the side thread (a throwaway network of that
shape trains a few batches: ``core.training.estimate``). The estimate is shown between runs
in the progress panel (with what the first Train of a data folder does), always called an
estimate and saying where its figure comes from; the run's log starts with it.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from core.config import ModelConfig
from core.training.estimate import SpeedMeasurement, TrainingEstimate, estimate
from workbench.actions.run_preparation import RunPreparation
from workbench.backend.jobs import Job, JobError
from workbench.backend.protocol import DomainState
from workbench.guidance import first_train_words
from workbench.panels.progress_panel import ProgressPanel

Shape = tuple[ModelConfig, str, int]  # model, mode, batch size: what decides the speed


def about(seconds: float) -> str:
    """A duration as a person says an estimate: 'about 40 s', 'about 4 min', 'about 1 h 10 min'."""
    if seconds < 60:
        return f"about {max(5, round(seconds / 5) * 5):.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60:02d} min"


def estimate_for(state: DomainState, speed: SpeedMeasurement, epochs: int) -> TrainingEstimate:
    sizes = state.sizes
    return estimate(
        speed,
        epochs=epochs,
        train_images=int(sizes.get("train", 0)),
        val_images=int(sizes.get("val", 0)),
        test_images=int(sizes.get("test", 0)),
    )


def describe_estimate(found: TrainingEstimate) -> str:
    speed = found.speed
    epochs = "1 epoch" if found.epochs == 1 else f"{found.epochs} epochs"
    return (
        f"{about(found.seconds)} ({epochs} of {found.train_images:,} images at "
        f"{speed.images_per_second:,.0f} images/s, measured on this computer: {speed.detail})"
    )


class PlanActions(QObject):
    """Keeps the estimate of the selected domain's next run up to date.

    Signals:
        planned(str): the plan line now shown ("" when there is nothing to say).
    """

    planned = Signal(str)

    def __init__(
        self, preparation: RunPreparation, progress: ProgressPanel, parent: QObject | None = None
    ) -> None:
        """``preparation`` gives the recipe, the domains and the session as Train sees them;
        the plan line goes to ``progress``. The window connects ``replan`` (its catalogue
        refreshed) and ``run_ended``."""
        super().__init__(parent)
        self.prep = preparation
        self.progress = progress
        self._speeds: dict[Shape, SpeedMeasurement] = {}
        self._asked: set[Shape] = set()  # shapes whose runs were read (or probed) already
        self._probe: Job | None = None
        preparation.domains.domain_selected.connect(self._domain_selected)
        preparation.recipe.changed.connect(self.replan)

    def _shape(self) -> Shape | None:
        try:
            config = self.prep.recipe.training_config()
            return (self.prep.recipe_model(), config.mode, config.batch_size)
        except ValueError:  # the recipe has an error (it is shown there)
            return None

    def current(self, domain: str | None = None) -> TrainingEstimate | None:
        """The estimate of the next run of ``domain`` (default: the selected one)."""
        name = domain or self.prep.domains.selected_domain()
        state = None if name is None else self.prep.domains.state(name)
        shape = self._shape()
        speed = None if shape is None else self._speeds.get(shape)
        if state is None or speed is None or not state.sizes:
            return None
        return estimate_for(state, speed, self.prep.recipe.training_config().total_epochs)

    def measuring(self) -> bool:
        return self._probe is not None

    @Slot(str)
    def _domain_selected(self, _name: str) -> None:
        self.replan()

    @Slot()
    def replan(self) -> None:
        """Show the plan line; ask the engine for the speed of a shape not asked yet."""
        self._show()
        shape = self._shape()
        session = self.prep.session
        if shape is None or shape in self._asked or not session.ready:
            return
        if not session.probe_jobs.alive:  # the window is closing
            return
        if session.training_active or self._probe is not None:
            return
        self._asked.add(shape)
        probe = shape not in self._speeds
        model_config, mode, batch = shape

        def done(speed: SpeedMeasurement | None) -> None:
            self._probe = None
            if speed is not None:
                self._speeds[shape] = speed
            self.replan()  # the recipe may have changed meanwhile

        def failed(error: JobError) -> None:
            self._probe = None
            if error.cancelled:
                self._asked.discard(shape)  # a run started: measure again after it
            else:
                self.prep.log(
                    "warning", f"No estimate: the speed could not be measured ({error.message})."
                )
            self._show()

        self._probe = session.run_probe_job(
            "Measuring this computer's training speed (for the estimate)",
            lambda b, ctx: b.training_speed(
                model_config, mode, batch, probe=probe, cancel=ctx.cancel
            ),
            on_done=done,
            on_error=failed,
        )
        self._show()

    def stop_measuring(self) -> None:
        """A run starts: the probe must not take its CPU (it is asked again later)."""
        if self._probe is not None:
            self._probe.request_cancel()

    @Slot(object)
    def run_ended(self, _outcome: object) -> None:
        self._asked.clear()  # the new run folder is a better measurement
        self.replan()

    def text(self) -> str:
        """What the next Train of the selected domain does and takes (the plan line)."""
        name = self.prep.domains.selected_domain()
        if name is None or self._shape() is None:
            return ""
        found = self.current()
        state = self.prep.domains.state(name)
        building = state is not None and not state.present
        if found is not None:
            when = (
                f"Train {name}: {describe_estimate(found)}"
                + (", plus building its data first" if building else "")
                + ". An estimate."
            )
        elif self._probe is not None:
            when = f"Train {name}: measuring this computer's speed for an estimate…"
        else:
            when = ""
        first = first_train_words(name, self.prep.recipe.mode_value(), self.prep.domains.states())
        return " ".join(t for t in (first, when) if t)

    def _show(self) -> None:
        text = self.text()
        self.progress.set_plan(text)
        self.planned.emit(text)
