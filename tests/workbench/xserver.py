"""A real X display for tests: Xvfb of a given screen size, installed with apt-get where it
is missing and we are root (CI is); otherwise the reason it cannot be had."""

from __future__ import annotations

import os
import shutil
import subprocess

from workbench.platform_check import DEBIAN_PACKAGES, missing_xcb_libraries

DISPLAY_PACKAGES = ["xvfb", "xdotool", "x11-utils", *sorted(set(DEBIAN_PACKAGES.values()))]


def missing() -> list[str]:
    tools = [t for t in ("Xvfb", "xdotool") if shutil.which(t) is None]
    return tools + missing_xcb_libraries()


def install() -> str:
    """apt-get the display packages; '' on success, else why not."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root or no apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *DISPLAY_PACKAGES]
    try:
        if subprocess.run(command, env=env, capture_output=True, timeout=600).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                return f"apt-get install failed: {done.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        return "apt-get timed out"
    return ""


def unavailable() -> str:
    """'' when a display can be started, else the reason (after trying to install it)."""
    if not missing():
        return ""
    why = install()
    still = missing()
    return f"no real display can be had here: missing {still} ({why})" if still else ""


def start_xvfb(size: str = "1366x768") -> tuple[subprocess.Popen, str]:
    """An Xvfb server with one screen of ``size`` (WxH) and its display name (':N')."""
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    assert number, "Xvfb did not report a display number"
    return server, f":{number}"
