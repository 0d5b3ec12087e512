"""Fixtures shared by the tests of one data folder used by several programs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.shared_folder import make_template


@pytest.fixture(scope="session")
def trunk_folder(tmp_path_factory) -> Path:
    """A data folder with six small domains and the trunk trained on ``sa`` (built once)."""
    return make_template(tmp_path_factory.mktemp("template"))
