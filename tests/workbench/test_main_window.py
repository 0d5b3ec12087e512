"""The window over the fake engine: controls, training, jobs, files, runs, preferences."""

import json
import re
import threading

import safetensors

from core.config import LrStage, TrainingConfig
from core.events import TrainingFinished
from workbench.backend.jobs import JobError
from workbench.fake.backend import FakeBackend
from workbench.panels.dialogs import ScriptedDialogs

from .conftest import open_window

ONE_EPOCH = TrainingConfig(stages=(LrStage(0.1, 1),), batch_size=8)


def run_to_end(qtbot, window, config=ONE_EPOCH, domain="digits_street"):
    window.domains.select(domain)
    with qtbot.waitSignal(window.catalogue.refreshed, timeout=10_000):
        with qtbot.waitSignal(window.training_ended, timeout=10_000) as blocker:
            assert window.start_training(config=config)
    return blocker.args[0]


def test_window_opens_on_the_catalogue_with_controls_in_the_right_state(window):
    names = [d.name for d in window.domains.states()]
    assert names[:3] == ["digits_street", "digits_hand", "signs"]
    assert window.domains.selected_domain() == "digits_street"  # the default source
    assert window.status_label.text().startswith("Ready")
    assert window.commands.train.isEnabled()
    assert not any(
        a.isEnabled()
        for a in (window.commands.pause, window.commands.stop, window.commands.stop_epoch)
    )
    assert not window.domains.svhn_banner.isHidden()
    assert window.commands.train.shortcuts()[0].toString() == "F5"


def test_engine_widgets_wait_for_the_backend(qtbot, home, prefs):
    gate = threading.Event()
    backend = FakeBackend(home)

    def slow_factory(model_config):
        gate.wait(10)
        return backend

    from workbench.main_window import MainWindow

    w = MainWindow(slow_factory, prefs, ScriptedDialogs())
    qtbot.addWidget(w)
    w.show()
    w.start_loading()
    assert w.status_label.text() == "Loading TensorFlow…"
    assert not w.commands.train.isEnabled() and not w.domains.isEnabled()
    # The load shows in the jobs bar (its start arrives from the engine thread, queued).
    qtbot.waitUntil(lambda: w.jobs_bar.current() is not None, timeout=5000)
    assert w.jobs_bar.isVisibleTo(w) and w.jobs_bar.current().title == "Loading TensorFlow…"
    with qtbot.waitSignal(w.catalogue.refreshed, timeout=10_000):
        gate.set()
    assert w.domains.isEnabled() and w.commands.train.isEnabled()
    w.shutdown()


def test_training_streams_events_to_curves_progress_and_domains(qtbot, window):
    config = TrainingConfig(stages=(LrStage(0.1, 2), LrStage(0.01, 1)), batch_size=8, mode="full")
    outcome = run_to_end(qtbot, window, config)
    assert outcome.reason == "completed" and outcome.epochs_completed == 3
    assert len(window.curves.history.series("batch_loss")) == 30
    assert len(window.curves.history.series("val_accuracy")) == 3
    assert window.curves.stage_band_count == 2
    assert window.progress.bar.value() == 1000
    assert "Training finished after 3 epoch(s)" in window.progress.log_text()
    state = window.domains.state("digits_street")
    assert state.trained and state.is_trunk_source and state.mode == "full"
    assert window.domains.table.item(0, 0).text() == "★ digits_street"
    assert window.classify.chosen_domains() == ["digits_street"]
    assert len(window.runs.runs()) == 1
    assert [r.part for r in window.parameters.rows()] == [
        "shared trunk",
        "digits_street (10 classes)",
    ]
    assert window.commands.train.isEnabled() and not window.commands.stop.isEnabled()


def test_pause_resume_stop_and_no_second_run(qtbot, window, fake_backend):
    fake_backend.step_delay = 0.01
    window.domains.select("digits_street")
    config = TrainingConfig(stages=(LrStage(0.1, 50),), batch_size=8)
    assert window.start_training(config=config)
    assert not window.commands.train.isEnabled() and not window.start_training(config=config)
    assert window.commands.stop.isEnabled() and window.commands.pause.isEnabled()
    assert not window.recipe.isEnabled() and not window.commands.export_adapters.isEnabled()
    qtbot.waitUntil(lambda: len(window.curves.history.series("batch_loss")) > 3, timeout=5000)
    window.commands.pause.trigger()
    assert window.commands.pause.text() == "Resume" and window.session.paused
    qtbot.wait(150)
    count = len(window.curves.history.series("batch_loss"))
    qtbot.wait(200)
    assert len(window.curves.history.series("batch_loss")) <= count + 1
    window.commands.pause.trigger()
    assert window.commands.pause.text() == "Pause"
    qtbot.waitUntil(
        lambda: len(window.curves.history.series("batch_loss")) > count + 2, timeout=5000
    )
    with qtbot.waitSignal(window.training_ended, timeout=10_000) as blocker:
        window.commands.stop.trigger()
    assert blocker.args[0].reason == "stopped"
    assert window.commands.train.isEnabled() and window.recipe.isEnabled()


def test_stop_says_resumed_only_when_the_run_was_paused(qtbot, window, fake_backend):
    fake_backend.step_delay = 0.01
    config = TrainingConfig(stages=(LrStage(0.1, 50),), batch_size=8)
    for pause_first in (False, True):
        window.domains.select("digits_street")
        assert window.start_training(config=config)
        qtbot.waitUntil(lambda: len(window.curves.history.series("batch_loss")) > 0, timeout=5000)
        if pause_first:
            window.commands.pause.trigger()
            assert window.commands.pause.text() == "Resume"
        before = window.progress.log_text().count("Resumed.")
        with qtbot.waitSignal(window.training_ended, timeout=10_000):
            window.commands.stop.trigger()
        assert window.progress.log_text().count("Resumed.") == before + int(pause_first)
        assert window.commands.pause.text() == "Pause"


def test_stop_after_this_epoch(qtbot, window, fake_backend):
    fake_backend.step_delay = 0.005
    window.domains.select("signs")
    assert window.start_training(config=TrainingConfig(stages=(LrStage(0.1, 20),)))
    qtbot.waitUntil(lambda: len(window.curves.history.series("batch_loss")) > 0, timeout=5000)
    with qtbot.waitSignal(window.training_ended, timeout=10_000) as blocker:
        window.commands.stop_epoch.trigger()
    outcome = blocker.args[0]
    assert outcome.reason == "stopped_after_epoch" and 1 <= outcome.epochs_completed < 20


def test_closing_during_training_asks_then_stops_cleanly(qtbot, home, prefs):
    backend = FakeBackend(home, step_delay=0.01)
    dialogs = ScriptedDialogs()
    w = open_window(qtbot, home, prefs, backend=backend, dialogs=dialogs)
    assert w.start_training(config=TrainingConfig(stages=(LrStage(0.1, 100),)))
    qtbot.waitUntil(lambda: len(w.curves.history.series("batch_loss")) > 0, timeout=5000)
    dialogs.queue(False)
    assert not w.close()  # the user said no: still training
    assert w.session.training_active and ("confirm", "Quit") in dialogs.asked
    dialogs.queue(True)
    with qtbot.waitSignal(w.training_ended, timeout=10_000):
        w.close()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=5000)
    assert not w.session.engine_jobs.alive and not w.session.side_jobs.alive


def test_a_failing_run_is_reported_not_raised(qtbot, window, fake_backend, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fake_backend, "train", boom)
    outcome = run_to_end(qtbot, window)
    assert isinstance(outcome, JobError) and outcome.message == "disk full"
    assert "Training failed: disk full" in window.progress.log_text()
    assert window.commands.train.isEnabled()


def test_invalid_recipe_disables_train_with_the_reason(window):
    window.recipe.batch_size.setText("-3")
    assert not window.commands.train.isEnabled()
    assert "batch_size" in window.commands.train.toolTip()
    window.recipe.batch_size.setText("16")
    assert window.commands.train.isEnabled()


def test_export_and_import_adapters_and_trunk_mismatch(qtbot, window, fake_backend, tmp_path):
    run_to_end(qtbot, window)
    out = tmp_path / "digits.adapter.safetensors"
    window.dialogs.queue(str(out))
    with qtbot.waitSignal(window.files.done, timeout=5000):
        window.commands.export_adapters.trigger()
    with safetensors.safe_open(str(out), framework="numpy") as handle:
        assert json.loads(handle.metadata()["domain_spec"])["name"] == "digits_street"
    window.dialogs.queue(str(out), True)  # file, then "replace the existing domain?" -> yes
    with qtbot.waitSignal(window.catalogue.refreshed, timeout=5000):
        window.commands.import_adapters.trigger()
    assert "imported domain 'digits_street'" in window.progress.log_text()
    fake_backend.set_trunk_fingerprint("another-trunk")
    window.dialogs.queue(str(out), True)
    with qtbot.waitSignal(window.files.failed, timeout=5000) as blocker:
        window.commands.import_adapters.trigger()
    assert "another trunk" in blocker.args[0]
    assert any(kind == "warn" and "another trunk" in text for kind, text in window.dialogs.asked)


def test_trunk_files_and_whole_model(qtbot, window, tmp_path):
    run_to_end(qtbot, window)
    window.dialogs.queue(str(tmp_path / "t.safetensors"))
    with qtbot.waitSignal(window.files.done, timeout=5000):
        window.commands.save_trunk.trigger()
    window.dialogs.queue(str(tmp_path / "t.safetensors"), True)
    with qtbot.waitSignal(window.catalogue.refreshed, timeout=5000):
        window.commands.load_trunk.trigger()
    window.dialogs.queue(str(tmp_path / "m.keras"))
    with qtbot.waitSignal(window.files.done, timeout=5000):
        window.commands.export_model.trigger()
    assert (tmp_path / "m.keras").exists() and (tmp_path / "t.safetensors").exists()


def test_svhn_offline_says_so_and_offers_the_builtin_domain(qtbot, window):
    with qtbot.waitSignal(window.catalogue.failed, timeout=5000):
        window.domains.svhn_download_button.click()
    text = window.domains.svhn_message.text()
    assert text.startswith("Offline: No network") and "built-in street-digits" in text
    window.domains.select("signs")
    with qtbot.waitSignal(window.catalogue.refreshed, timeout=5000):
        window.domains.builtin_button.click()
    assert window.domains.selected_domain() == "digits_street"


def test_svhn_download_shows_progress_and_can_be_cancelled(qtbot, window, fake_backend):
    fake_backend.svhn_online = True
    fake_backend.step_delay = 0.05
    window.domains.svhn_download_button.click()
    qtbot.waitUntil(
        lambda: window.jobs_bar.current() is not None and window.jobs_bar.current().fraction > 0,
        timeout=5000,
    )
    assert window.jobs_bar.label.text().startswith("Downloading SVHN: downloading")
    assert window.jobs_bar.cancel_button.isEnabled()
    window.jobs_bar.cancel_button.click()
    qtbot.waitUntil(lambda: window.jobs_bar.current() is None, timeout=5000)
    assert "Download paused" in window.domains.svhn_message.text()
    fake_backend.step_delay = 0.0
    with qtbot.waitSignal(window.catalogue.refreshed, timeout=5000):
        window.domains.svhn_download_button.click()
    assert window.domains.state("svhn_cropped").present and window.domains.svhn_banner.isHidden()


def test_locate_svhn_files(qtbot, window, tmp_path):
    for name in ("train_32x32.mat", "test_32x32.mat"):
        (tmp_path / name).write_bytes(b"x")
    window.dialogs.queue(str(tmp_path))
    with qtbot.waitSignal(window.catalogue.refreshed, timeout=5000):
        window.domains.svhn_locate_button.click()
    assert window.domains.state("svhn_cropped").present


def test_prepare_and_evaluate_are_background_jobs(qtbot, window):
    window.domains.select("signs")
    with qtbot.waitSignal(window.catalogue.refreshed, timeout=5000):
        window.domains.prepare_button.click()
    log = window.progress.log_text()
    assert "Domain 'signs' is ready" in log
    assert "{" not in log and "'train'" not in log  # sizes in words, not a Python dict
    assert re.search(r"images: [\d,]+ train, [\d,]+ validation, [\d,]+ test\.", log), log
    assert not window.domains.evaluate_button.isEnabled()
    run_to_end(qtbot, window, domain="signs")
    assert window.domains.evaluate_button.isEnabled()
    with qtbot.waitSignal(window.catalogue.refreshed, timeout=5000):
        window.domains.evaluate_button.click()
    assert "signs test: accuracy" in window.progress.log_text()


def test_past_runs_overlay_and_resume(qtbot, window, fake_backend):
    run_to_end(qtbot, window)  # completed: nothing to resume
    window.runs.select_path(window.runs.runs()[0].path)
    assert not window.runs.resume_button.isEnabled()
    window.domains.select("signs")
    fake_backend.step_delay = 0.01  # slow enough that the stop request lands in epoch 1
    with qtbot.waitSignal(window.training_ended, timeout=10_000):
        window.start_training(config=TrainingConfig(stages=(LrStage(0.1, 1), LrStage(0.01, 2))))
        window.session.stop_after_epoch()
    qtbot.waitUntil(lambda: any(r.domain == "signs" for r in window.runs.runs()), timeout=10_000)
    stopped = next(r for r in window.runs.runs() if r.domain == "signs")
    assert stopped.epochs == 1 and stopped.can_resume
    window.runs.select_path(stopped.path)
    window.runs.overlay_button.click()
    qtbot.waitUntil(lambda: window.curves.overlay_keys == [stopped.path], timeout=5000)
    window.recipe.momentum.setText("0.5")  # the resume uses the run's recipe, not this one
    fake_backend.step_delay = 0.0
    with qtbot.waitSignal(window.training_ended, timeout=10_000) as blocker:
        window.runs.resume_button.click()
    assert "Resumed from epoch 1." in window.progress.log_text()
    # epochs_completed counts the whole run (core's monitor), the resumed epoch included
    assert blocker.args[0].reason == "completed" and blocker.args[0].epochs_completed == 3
    assert len(window.curves.history.series("train_loss")) == 3  # 1 from the run + 2 new
    assert window.domains.selected_domain() == "signs"
    assert fake_backend.calls[-1].startswith("train signs adapters momentum=0.9 ")


def test_model_change_with_trained_domains_asks_first(qtbot, window):
    run_to_end(qtbot, window)
    window.recipe.width_factor.setText("0.5")
    window.dialogs.queue(False)
    assert not window.start_training(config=ONE_EPOCH)
    assert ("confirm", "New model") in window.dialogs.asked
    window.dialogs.queue(True)
    with qtbot.waitSignal(window.training_ended, timeout=10_000):
        assert window.start_training(config=ONE_EPOCH)


def test_curves_export_through_the_window(qtbot, window, tmp_path):
    run_to_end(qtbot, window)
    for kind, action in (
        ("png", window.curves.png_action),
        ("svg", window.curves.svg_action),
        ("csv", window.curves.csv_action),
    ):
        window.dialogs.queue(str(tmp_path / f"c.{kind}"))
        action.trigger()
        assert (tmp_path / f"c.{kind}").stat().st_size > 100


def test_preferences_survive_a_restart(qtbot, home, prefs):
    w = open_window(qtbot, home, prefs)
    w.resize(1500, 1000)
    w.recipe.apply_preset("cpu")
    w.recipe.momentum.setText("0.85")
    w.curves.smoothing_slider.setValue(30)
    w.close()
    w2 = open_window(qtbot, home, prefs)
    # The saved recipe comes back, but the model shown is the open workspace's (the fake
    # engine's is the tiny preset's), never a preset the workspace does not have.
    assert w2.recipe.training_config().momentum == 0.85
    assert w2.recipe.preset.currentData() == "tiny"
    assert w2.recipe.model_config() == w2.session.backend.model_config
    assert w2.curves.smoothing == 0.3
    # The offscreen screen is 800x800, so Qt clamps the restored geometry; the default
    # (no stored geometry) would be 1400x900.
    assert prefs.get_bytes("window/geometry") is not None
    assert (w2.width(), w2.height()) != (1400, 900)
    w2.close()


def test_finished_event_with_nan_is_a_warning(window):
    window.progress.on_event(TrainingFinished("nan", 1, None, None, 1.0))
    assert "WARNING: Training stopped: the loss became NaN" in window.progress.log_text()


def test_devices_menu_switches_the_strategy(qtbot, window, fake_backend):
    mirrored = [a for a in window.commands.devices.actions() if "Mirrored" in a.text()][0]
    assert mirrored.isEnabled() and not mirrored.isChecked()
    with qtbot.waitSignal(window.files.done, timeout=5000) as blocker:
        mirrored.trigger()
    assert fake_backend.strategy == "mirrored"
    assert "Mirrored" in blocker.args[0] and mirrored.isChecked()
    run_to_end(qtbot, window)
    assert all(a.isEnabled() for a in window.commands.devices.actions())


def _cancel_current_job(qtbot, window, title_start):
    qtbot.waitUntil(
        lambda: window.jobs_bar.current() is not None and window.jobs_bar.current().fraction > 0,
        timeout=5000,
    )
    assert window.jobs_bar.label.text().startswith(title_start)
    assert window.jobs_bar.cancel_button.isEnabled()
    window.jobs_bar.cancel_button.click()


def test_export_and_evaluate_can_be_cancelled_midway(qtbot, window, fake_backend, tmp_path):
    run_to_end(qtbot, window)
    fake_backend.step_delay = 0.2
    out = tmp_path / "digits.adapter.safetensors"
    window.dialogs.queue(str(out))
    with qtbot.waitSignal(window.files.cancelled, timeout=5000):
        window.commands.export_adapters.trigger()
        _cancel_current_job(qtbot, window, "Export of digits_street")
    assert not out.exists()
    assert "cancelled, the file was left as it was" in window.progress.log_text()
    window.dialogs.queue(str(tmp_path / "m.keras"))
    with qtbot.waitSignal(window.files.cancelled, timeout=5000):
        window.commands.export_model.trigger()
        _cancel_current_job(qtbot, window, "Export of the model")
    assert not (tmp_path / "m.keras").exists()
    window.domains.select("digits_street")
    window.domains.evaluate_button.click()
    _cancel_current_job(qtbot, window, "Evaluating digits_street")
    qtbot.waitUntil(lambda: window.jobs_bar.current() is None, timeout=5000)
    assert "Evaluating digits_street: cancelled." in window.progress.log_text()
    assert not any(kind == "warn" for kind, _ in window.dialogs.asked)


def test_garbage_is_settled_after_the_tracing_epoch_and_released_after_the_run(
    qtbot, window, monkeypatch
):
    calls = []
    monkeypatch.setattr(window.collector, "settle", lambda release=False: calls.append(release))
    config = TrainingConfig(stages=(LrStage(0.1, 3),), batch_size=32)
    for _ in range(2):  # each run settles once after its first epoch, once at its end
        run_to_end(qtbot, window, config=config)
    assert calls == [False, True, False, True]
