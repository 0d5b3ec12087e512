"""The GUI-thread collector's settle: freezing the long-lived objects costs no walk over the
old generation (the full collection it replaced stalled the window 0.6-1.7 s when the
engine arrived, issue 26); a release collects everything, a finished run's garbage too."""

from __future__ import annotations

import gc
import weakref

import pytest

from workbench.gc_guard import GuiThreadCollector


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def collector(qapp):
    c = GuiThreadCollector()
    c.start()
    yield c
    c.stop()


def _generations(fn) -> list[int]:
    """The generations collected while ``fn`` runs."""
    seen: list[int] = []

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(callback)
    try:
        fn()
    finally:
        gc.callbacks.remove(callback)
    return seen


def test_settle_freezes_without_walking_the_old_generation(collector):
    old = Node()
    gc.collect()  # ``old`` now lives in the oldest generation
    old_ref = weakref.ref(old)
    del old  # ... as garbage only a full collection would find
    young = Node()
    young_ref = weakref.ref(young)
    del young

    assert _generations(collector.settle) == [1]
    assert young_ref() is None  # young garbage went
    assert old_ref() is not None  # the old generation was not walked: frozen as it was
    assert gc.get_freeze_count() > 0

    assert _generations(lambda: collector.settle(release=True)) == [2]
    assert old_ref() is None  # a release thaws and collects everything
