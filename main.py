"""RAM Workbench: with no arguments opens the window, with a command runs headless.

``python main.py`` starts the workbench; ``python main.py --help`` lists the command line
(train, eval, classify, export, import, info, ...). The window paints before TensorFlow loads.
"""

import os
import sys


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    if not argv or argv[0] in ("gui", "--gui"):
        from workbench.app import run

        return run(argv[1:])
    from core.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
