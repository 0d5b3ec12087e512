"""The Keras engine of RAM Workbench (no Qt): vocabulary modules here, the rest in sub-packages."""

__all__ = [
    # vocabulary: small modules every part of the engine speaks
    "clock",
    "config",
    "config_checks",
    "control",
    "errors",
    "events",
    "formats",
    "presets",
    "progress",
    "quiet_start",
    "seeding",
    "training_config",
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
