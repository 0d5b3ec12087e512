"""RAM Workbench: with no arguments opens the window, with a command runs headless.

``python main.py`` starts the workbench; ``python main.py --help`` lists the command line
(train, eval, classify, export, import, info, ...). The window paints before TensorFlow loads.
"""

import os
import sys

# The window's options (``--root`` and ``--debug`` the command line has too): with only these,
# and no command, a person wants the window.
_SHARED_FLAGS = ("--debug", "--fake")
_SHARED_VALUES = ("--root", "--settings", "--builtin-scale")


def _only_shared_options(argv: list[str]) -> bool:
    """True when ``argv`` names no command, only options the window takes."""
    rest = list(argv)
    while rest:
        word = rest.pop(0)
        if word in _SHARED_VALUES and rest:
            rest.pop(0)
        elif not (word in _SHARED_FLAGS or word.startswith(tuple(f"{v}=" for v in _SHARED_VALUES))):
            return False
    return True


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    if not argv or argv[0] in ("gui", "--gui") or _only_shared_options(argv):
        from workbench.app import run

        return run(argv[1:] if argv and argv[0] in ("gui", "--gui") else argv)
    from core.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
