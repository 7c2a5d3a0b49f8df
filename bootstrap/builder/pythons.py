"""The interpreter a pack's environment is made from.

In order: the bundle's own ``python/`` (if it is the pack's version), a
Python that uv installed into the bundle earlier, a matching system Python,
and last ``uv python install`` through the ``python`` mirror into
``python/uv``.  Every candidate is run once to check it really is that
version: a pyenv shim for an inactive version exists but does not run.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from bootstrap import proc
from bootstrap.layout import Bundle
from bootstrap.redact import redact

PROBE = "import sys, platform; print('%d.%d.%d' % sys.version_info[:3], platform.architecture()[0], sys.executable)"


@dataclass(frozen=True)
class PythonChoice:
    path: Path
    version: str  # "3.11.7"
    source: str  # bundled | uv | system

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "version": self.version, "source": self.source}


def version_of(python: Path, timeout: float = 10.0) -> tuple[str, Path] | None:
    """(``3.11.7``, the real executable) if ``python`` runs and is 64-bit, else None.

    The real executable matters: a pyenv shim or a Windows launcher stub must
    not become the base of an environment.
    """
    try:
        out = proc.run([python, "-I", "-c", PROBE], timeout=timeout)
    except (OSError, proc.TimeoutExpired):
        return None
    parts = out.stdout.strip().split(" ", 2)
    if out.returncode != 0 or len(parts) != 3 or parts[1] != "64bit":
        return None
    return parts[0], Path(parts[2])


def _bundled(bundle: Bundle) -> list[Path]:
    base = bundle.python_dir
    names = [base / "python.exe"] if os.name == "nt" else [base / "bin" / "python3"]
    if any(base.glob("python*._pth")):
        # The Windows embeddable Python (start.bat's): its ._pth fixes sys.path, so a venv made from it would
        # not see its own site-packages.  The environment gets a full CPython (uv, below) instead.
        names = []
    uv_dir = base / "uv"
    if uv_dir.is_dir():
        pattern = "*/python.exe" if os.name == "nt" else "*/bin/python3"
        names += sorted(uv_dir.glob(pattern), reverse=True)
    return names


def _system(wanted: str) -> list[Path]:
    found: list[Path] = []
    for name in (f"python{wanted}", "python3", "python"):
        path = shutil.which(name)
        if path:
            found.append(Path(path))
    return found


def find_python(bundle: Bundle, wanted: str) -> PythonChoice | None:
    """An interpreter of version ``wanted`` ("3.11"), without installing anything."""
    for source, candidates in (("bundled", _bundled(bundle)), ("system", _system(wanted))):
        for path in candidates:
            if not path.exists():
                continue
            found = version_of(path)
            if found and (found[0] == wanted or found[0].startswith(wanted + ".")):
                return PythonChoice(found[1], found[0], "uv" if "uv" in path.parts[-4:] else source)
    return None


def install_python(bundle: Bundle, wanted: str, uv: Path, env: dict[str, str], log: Path) -> PythonChoice | None:
    """``uv python install`` into the bundle (through UV_PYTHON_INSTALL_MIRROR if set)."""
    run_env = {**env, "UV_PYTHON_INSTALL_DIR": str(bundle.python_dir / "uv")}
    done = proc.run([uv, "python", "install", wanted], timeout=None, env=run_env, stderr=proc.STDOUT)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(redact(done.stdout or ""))
    if done.returncode != 0:
        return None
    return find_python(bundle, wanted)
