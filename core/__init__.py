"""The Keras engine of RAM Workbench (no Qt): vocabulary modules here, the rest in sub-packages.

Packages import only from their own layer or below (tests/test_architecture.py): vocabulary <
data (pipeline < sources < catalogue) < model < files < training < evaluation, deploy <
workspace < cli.
"""

__all__ = [
    # vocabulary: small modules every part of the engine speaks
    "atomic_write",
    "clock",
    "config",
    "config_checks",
    "control",
    "data_root",
    "events",
    "failure_report",
    "presets",
    "progress",
    "quiet_start",
    "seeding",
    "training_config",
    "weights_version",
    # sub-packages, by what the code is about
    "cli",
    "data",
    "deploy",
    "evaluation",
    "files",
    "model",
    "training",
    "workspace",  # the one door for the command line and the window
]
