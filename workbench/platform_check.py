"""Say what is missing before Qt dies on it: the xcb platform plugin's system libraries.

Without them Qt aborts with "Could not load the Qt platform plugin "xcb"" and a list of
plugins, which tells a newcomer nothing they can act on. ``xcb_problem`` runs before the
``QApplication`` exists and names the Debian/Ubuntu packages to install, and the way to run
without a display.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

# soname -> Debian/Ubuntu package (PySide6 6.11's libqxcb.so and what it loads at run time)
DEBIAN_PACKAGES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
}
# Loaded with dlopen by the plugin, so ldd does not list it.
RUNTIME_LOADED = ("libxcb-cursor.so.0",)


def _plugin_files() -> list[Path]:
    import PySide6

    qt = Path(PySide6.__file__).parent / "Qt"
    return [
        p
        for p in (qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6")
        if p.exists()
    ]


def missing_xcb_libraries() -> list[str]:
    """Sonames the xcb plugin needs that this machine cannot load (Linux; else [])."""
    if not sys.platform.startswith("linux"):
        return []
    missing: list[str] = []
    for plugin in _plugin_files():
        try:
            out = subprocess.run(
                ["ldd", str(plugin)], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        for line in out.splitlines():
            if "not found" in line:
                name = line.split("=>")[0].strip()
                if name not in missing:
                    missing.append(name)
    for name in RUNTIME_LOADED:
        try:
            ctypes.CDLL(name)
        except OSError:
            if name not in missing:
                missing.append(name)
    return missing


def will_use_xcb(environ: Mapping[str, str] | None = None) -> bool:
    """Qt picks xcb on Linux unless told otherwise (or a Wayland session is there)."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0].split(";")[0] == "xcb"
    return not env.get("WAYLAND_DISPLAY")


def xcb_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """What to tell the user when the window cannot open on X11; None when it can."""
    env = os.environ if environ is None else environ
    if not will_use_xcb(env):
        return None
    missing = missing_xcb_libraries()
    if missing:
        packages = sorted({DEBIAN_PACKAGES.get(m, m) for m in missing})
        return (
            "The window cannot open: Qt's X11 (xcb) platform plugin needs system libraries "
            f"that are missing here: {', '.join(missing)}.\n"
            f"On Debian/Ubuntu: sudo apt-get install {' '.join(packages)}\n"
            "Without a display, use the command line (python main.py --help) or run the "
            "window offscreen: QT_QPA_PLATFORM=offscreen python main.py"
        )
    if not env.get("DISPLAY"):
        return (
            "The window cannot open: no display (DISPLAY is not set). Start it in a desktop "
            "session, under xvfb-run, or offscreen (QT_QPA_PLATFORM=offscreen python main.py); "
            "python main.py --help lists the command line."
        )
    return None
