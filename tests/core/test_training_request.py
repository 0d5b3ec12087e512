"""``TrainingRequest``: one validated object for what a run is asked to do, from the command
line to ``Workspace.train`` unchanged."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from core.cli import main
from core.config import ConfigError, LrStage, TrainingConfig
from core.training.request import TrainingRequest
from core.workspace import Workspace

RECIPE = TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=8)


@pytest.mark.parametrize(
    ("fields", "wrong", "received"),
    [
        ({"domain": ""}, "`domain` must be a non-empty domain name.", "domain=''"),
        ({"domain": 3}, "`domain` must be a non-empty domain name.", "domain=3"),
        ({"config": {"batch_size": 8}}, "`config` must be a TrainingConfig.", "config={"),
        ({"anew": 1}, "`anew` must be a bool.", "anew=1"),
        ({"save": "no"}, "`save` must be a bool.", "save='no'"),
        ({"sync_batch_norm": None}, "`sync_batch_norm` must be a bool.", "sync_batch_norm=None"),
        ({"init_from": ""}, "`init_from` must be a domain name or None.", "init_from=''"),
        (
            {"resume_run": "runs/x"},
            "`resume_run` must be a run folder (a Path) or None.",
            "resume_run='runs/x'",
        ),
        (
            {"anew": True, "resume_run": Path("runs/x")},
            "ask for one of them.",
            "anew=True, resume_run=PosixPath('runs/x')",
        ),
        ({"data": [1, 2]}, "`data` must be a DomainData or None.", "data='list'"),
    ],
)
def test_a_wrong_request_says_what_is_wrong_and_what_was_received(fields, wrong, received):
    values = {"domain": "glyphs", "config": RECIPE, **fields}
    with pytest.raises(ConfigError) as error:
        TrainingRequest(**values)
    message = str(error.value)
    assert wrong in message and f"Received: {received}" in message, message


def test_the_data_must_be_the_domains_own():
    from core.data.pipeline.datasource import ArrayDomainData
    from tests.core.training_helpers import blob_data

    data = blob_data(n_train=8, n_val=4)
    assert isinstance(data, ArrayDomainData)
    assert TrainingRequest(data.spec.name, RECIPE, data=data).data is data
    with pytest.raises(ConfigError, match=r"data of the domain to train.*data='blobs'"):
        TrainingRequest("glyphs", RECIPE, data=data)


def test_a_request_is_frozen_and_compared_by_what_it_asks():
    request = TrainingRequest("glyphs", RECIPE, anew=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.anew = False  # type: ignore[misc]
    assert request == TrainingRequest("glyphs", RECIPE, anew=True)
    assert request != TrainingRequest("glyphs", RECIPE)
    with pytest.raises(TypeError):
        TrainingRequest("glyphs", RECIPE, True)  # type: ignore[misc]  # options by name only


def test_workspace_train_takes_the_request_and_the_two_channels_only():
    """The training signature is written once (the request's fields), not as keywords."""
    assert list(inspect.signature(Workspace.train).parameters) == [
        "self",
        "request",
        "on_event",
        "control",
    ]


def test_the_command_line_passes_one_request_down(tmp_path, monkeypatch, capsys):
    seen: list[TrainingRequest] = []

    class Stop(Exception):
        pass

    def train(self, request, *, on_event, control):
        seen.append(request)
        raise Stop

    monkeypatch.setattr(Workspace, "train", train)
    argv = ["--debug", "--root", str(tmp_path), "train", "--domain", "glyphs", "--preset", "tiny"]
    argv += ["--stages", "0.05x1", "--anew", "--init-from", "digits_street", "--sync-bn"]
    with pytest.raises(Stop):
        main(argv)
    (request,) = seen
    assert (request.domain, request.config.stages) == ("glyphs", (LrStage(0.05, 1),))
    assert (request.anew, request.init_from, request.sync_batch_norm) == (
        True,
        "digits_street",
        True,
    )
    assert (request.resume_run, request.save, request.data) == (None, True, None)


def test_the_command_line_refuses_a_contradictory_request_before_any_work(tmp_path, capsys):
    code = main(
        ["--root", str(tmp_path), "train", "--domain", "glyphs", "--preset", "tiny"]
        + ["--anew", "--resume", str(tmp_path / "runs" / "r1")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "ask for one of them" in err
    assert not (tmp_path / "workspace").exists()  # refused before the workspace was opened
