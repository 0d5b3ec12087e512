"""``main.py`` opens the window when it is given no command, only the data folder or --debug."""

import pytest

import main as entry


@pytest.mark.parametrize(
    ("argv", "window_args"),
    [
        ([], []),
        (["gui", "--root", "d"], ["--root", "d"]),
        (["--root", "d"], ["--root", "d"]),
        (["--root=d", "--debug"], ["--root=d", "--debug"]),
        (["--debug", "--root", "d"], ["--debug", "--root", "d"]),
        (["--root", "d", "--settings", "s.ini", "--builtin-scale", "0.1"], None),
        (["--fake"], ["--fake"]),
    ],
)
def test_no_command_opens_the_window(monkeypatch, argv, window_args) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr("workbench.app.run", lambda args: seen.append(list(args)) or 0)
    monkeypatch.setattr("core.cli.main", lambda args: pytest.fail(f"command line ran: {args}"))
    assert entry.main(argv) == 0
    assert seen == [argv if window_args is None else window_args]


@pytest.mark.parametrize(
    "argv", [["--root", "d", "domains"], ["domains"], ["--root"], ["--help"], ["--root", "d", "-h"]]
)
def test_a_command_runs_the_command_line(monkeypatch, argv) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr("core.cli.main", lambda args: seen.append(list(args)) or 0)
    monkeypatch.setattr("workbench.app.run", lambda args: pytest.fail(f"window opened: {args}"))
    assert entry.main(argv) == 0
    assert seen == [argv]
