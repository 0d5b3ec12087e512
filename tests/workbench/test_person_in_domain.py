"""A person asks the Classify tab whether images belong to a domain, over the real engine
(CoreBackend) at the tiny preset: an image unlike the chosen domain is greyed and marked,
with its score against the domain's threshold in a tooltip; under "All trained domains" the
card says which domain the image looks like.

The data folder holds digits_street (the trunk) and glyphs (adapters), trained through the
workspace before the window opens, as a person's earlier session would have left them.
"""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLabel

from core.config import LrStage, TrainingConfig
from core.presets import get_preset
from core.training.request import TrainingRequest
from core.workspace import Workspace
from workbench.main_window import MainWindow
from workbench.panels.dialogs import ScriptedDialogs
from workbench.preferences import Preferences, open_settings

from .person import click, close_window, drop_files, plain, wait_until

pytestmark = pytest.mark.timeout(900)
SCALE = 0.1
RECIPE = TrainingConfig(stages=(LrStage(0.1, 3),), batch_size=32, validation=False)


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    from workbench.backend.core_backend import CoreBackend

    root = tmp_path_factory.mktemp("person_in_domain")
    home = root / "home"
    ws = Workspace(home, get_preset("tiny").model, builtin_scale=SCALE)
    ws.train(TrainingRequest("digits_street", dataclasses.replace(RECIPE, mode="full")))
    ws.train(TrainingRequest("glyphs", RECIPE))
    images = {}
    for name, other in (("digits_street", "glyphs"), ("glyphs", "digits_street")):
        pixels, _ = ws.load_data(name).arrays("test")
        images[name] = root / f"{name}_test.png"
        Image.fromarray(_typical(ws, name, other, pixels[:20])).save(images[name])
    w = MainWindow(
        lambda mc: CoreBackend(home, mc, builtin_scale=SCALE),
        Preferences(open_settings(root / "settings.ini")),
        ScriptedDialogs(),
    )
    w.resize(1366, 768)
    w.show()
    w.start_loading()
    wait_until(lambda: w.session.ready, 180, "the engine to load")
    wait_until(lambda: w.classify.domain.count() == 3, 60, "the trained domains")
    w.test_images = images  # type: ignore[attr-defined]
    yield w
    close_window(w)


def _typical(ws, name: str, other: str, pixels) -> object:
    """A test image of ``name`` that the engine itself routes to ``name`` and judges unlike
    ``other``, the surest of them: at the 5% threshold about one own test image in twenty is
    called unlike by design, so the first image alone made the test fail now and then."""
    images = list(pixels)
    predictions = ws.classify([name, other], images)
    routes = ws.route(images, results=predictions)
    fits = [
        (p.in_domain.score - p.in_domain.threshold, i)
        for i, (p, q, r) in enumerate(
            zip(predictions[name], predictions[other], routes, strict=True)
        )
        if r.domain == name and not p.in_domain.unlike and q.in_domain.unlike
    ]
    assert fits, f"no test image of {name} is routed to it and unlike {other}"
    return images[max(fits)[1]]


def show_classify(w) -> None:
    bar = w.tabs.tabBar()
    index = next(i for i in range(bar.count()) if plain(bar.tabText(i)) == "Classify")
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())


def choose_domain(w, text: str) -> None:
    """Open the Domain list with a click and pick ``text`` with the arrow keys."""
    combo = w.classify.domain
    click(combo)
    popup = combo.view()
    wait_until(popup.isVisible, 5, "the domain list to open")
    steps = combo.findText(text) - combo.currentIndex()
    key = Qt.Key.Key_Down if steps > 0 else Qt.Key.Key_Up
    for _ in range(abs(steps)):
        QTest.keyClick(popup, key)
    QTest.keyClick(popup, Qt.Key.Key_Return)
    wait_until(lambda: combo.currentText() == text, 5, f"domain {text}")


def classify(w, paths) -> list[dict[str, QLabel]]:
    done: list[object] = []
    w.catalogue.classified.connect(done.append)
    assert drop_files(w.classify, paths)
    wait_until(lambda: done, 180, "the predictions")
    w.catalogue.classified.disconnect(done.append)
    cards = []
    for frame in w.classify._card_frames:
        labels = frame.findChildren(QLabel)
        cards.append(
            {"route": [lbl for lbl in labels if lbl.objectName() == "route"]}
            | {
                lbl.text().split("</b>")[0].removeprefix("<b>"): lbl
                for lbl in labels
                if lbl.objectName() == "prediction"
            }
        )
    return cards


def test_an_image_unlike_the_chosen_domain_is_greyed_and_marked(window):
    show_classify(window)
    choose_domain(window, "glyphs")
    street, glyph = window.test_images["digits_street"], window.test_images["glyphs"]
    unlike, like = classify(window, [street, glyph])
    label = unlike["glyphs"]
    assert "<i>unlike glyphs</i>" in label.text() and "color: #8a8a8a" in label.styleSheet()
    assert label.toolTip().startswith("Unlike glyphs: score ") and "threshold" in label.toolTip()
    assert label.text().count("%") == 5  # the top-5 stays readable, greyed
    assert "unlike" not in like["glyphs"].text() and not like["glyphs"].styleSheet()
    assert like["glyphs"].toolTip().startswith("Like glyphs: score ")
    assert unlike["route"] == [] and like["route"] == []  # one domain chosen: no router


def test_all_trained_domains_say_which_domain_a_test_image_looks_like(window):
    show_classify(window)
    choose_domain(window, "All trained domains")
    street, glyph = window.test_images["digits_street"], window.test_images["glyphs"]
    glyph_card, street_card = classify(window, [glyph, street])
    (route,) = glyph_card["route"]
    assert route.text().startswith("Looks like glyphs: glyph_") and route.text().endswith("%")
    (route,) = street_card["route"]
    assert route.text().startswith("Looks like digits_street: ")
    assert "<i>unlike glyphs</i>" in street_card["glyphs"].text()
