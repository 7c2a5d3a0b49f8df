"""The pinned Python builds (``bootstrap/python-builds.toml``), read with the standard library.

The start scripts read the same file with awk and PowerShell; ``yijian
release`` reads it here.  A build's download URL on a mirror follows the
mirror's ``kind``: python-build-standalone mirrors are a base URL (the
layout of uv's ``UV_PYTHON_INSTALL_MIRROR``), embeddable-zip mirrors are a
URL template with ``{version}``.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import NamedTuple

from bootstrap.tomlread import load

BUILDS_FILE = Path(__file__).resolve().parent / "python-builds.toml"
TARGETS = ("linux-x64", "linux-arm64", "macos-x64", "macos-arm64", "win-x64")


class PythonBuild(NamedTuple):
    target: str
    kind: str  # pbs | embed
    version: str  # 3.11.9
    release: str  # python-build-standalone release tag; "" for embed
    file: str
    size: int  # 0 = not recorded
    sha256: str

    def url(self, mirror: str) -> str:
        """Where ``mirror`` (a python-channel URL of this build's kind) serves the file."""
        if self.kind == "embed":
            return mirror.replace("{version}", self.version)
        return f"{mirror.rstrip('/')}/{self.release}/{self.file.replace('+', '%2B')}"


def load_builds(path: Path | None = None) -> dict[str, PythonBuild]:
    """Every pinned build, by target."""
    data = load(path or BUILDS_FILE)
    out: dict[str, PythonBuild] = {}
    for entry in data.get("build", []):
        build = PythonBuild(
            target=str(entry["target"]),
            kind=str(entry["kind"]),
            version=str(entry["version"]),
            release=str(entry.get("release", "")),
            file=str(entry["file"]),
            size=int(entry.get("size", 0)),
            sha256=str(entry["sha256"]).lower(),
        )
        out[build.target] = build
    return out


def host_target() -> str | None:
    """This machine's target name, or None where no build is pinned."""
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    system = {"linux": "linux", "darwin": "macos", "win32": "win"}.get(sys.platform)
    if arch is None or system is None:
        return None
    name = f"{system}-{arch}"
    return name if name in TARGETS else None
