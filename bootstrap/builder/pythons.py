"""The interpreter a pack's environment is made from.

In order: the bundle's own ``python/`` (if it is the pack's version), a
Python that uv installed into the bundle earlier, a matching system Python
(only with ``setup.python = system``), and last ``uv python install``
through the ``python`` mirror into ``python/uv``.  Every candidate is run
once to check it really is that version: a pyenv shim for an inactive
version exists but does not run.

With ``setup.python = bundled`` (the default) a system Python is never used:
an environment made from it points into the user's own installation, and the
folder stops being portable.  :func:`plan_python` says which it will be and
why, for ``setup --dry-run``; the build stops with
:class:`~launcher.errors.BundledPythonUnavailable` when none can be had.
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


def find_python(bundle: Bundle, wanted: str, *, system: bool = True) -> PythonChoice | None:
    """An interpreter of version ``wanted`` ("3.11"), without installing anything; the bundle's own only unless ``system``."""
    sources = (("bundled", _bundled(bundle)), ("system", _system(wanted) if system else []))
    for source, candidates in sources:
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
    return find_python(bundle, wanted, system=False)


@dataclass(frozen=True)
class PythonPlan:
    """The Python ``setup`` will use, and why: for the plan (``setup --dry-run --json``) and the build."""

    setting: str  # setup.python: bundled | system
    choice: PythonChoice | None
    source: str  # bundled | system | unavailable
    status: str  # found | to install | unavailable
    note_zh: str
    note_en: str

    def note(self, lang: str) -> str:
        return self.note_zh if lang == "zh" else self.note_en

    def to_dict(self, lang: str = "en") -> dict[str, str]:
        found = self.choice.to_dict() if self.choice else {}
        return {**found, "source": self.source, "status": self.status, "setting": self.setting,
                "note": self.note(lang)}  # fmt: skip


PORTABILITY_ZH = "环境会指向这台电脑上的 Python：整合包只能在这台电脑上用，拷到别的电脑不能运行，这个 Python 升级或卸载后环境也会坏。"
PORTABILITY_EN = ("the environment then points into this computer's Python: the bundle works only on this computer, "
                  "cannot be copied to another PC, and breaks if that Python is upgraded or removed.")  # fmt: skip


def plan_python(bundle: Bundle, wanted: str, setting: str, *, installable: str = "") -> PythonPlan:
    """Which Python the environment gets.  ``installable``: "" if ``uv python install`` can be tried, else why not."""
    found = find_python(bundle, wanted, system=setting == "system")
    if found is not None and found.source == "system":
        return PythonPlan(setting, found, "system", "found",
                          f"setup.python = system：使用系统的 Python {found.version}（{found.path}）；{PORTABILITY_ZH}",
                          f"setup.python = system: using the system's Python {found.version} ({found.path}); {PORTABILITY_EN}")  # fmt: skip
    if found is not None:
        return PythonPlan(setting, found, "bundled", "found", f"使用整合包自带的 Python {found.version}（可整体拷走）。",
                          f"Using the bundle's own Python {found.version} (the folder stays portable).")  # fmt: skip
    if not installable:
        return PythonPlan(setting, None, "bundled", "to install",
                          f"整合包里还没有 Python {wanted}：构建时会通过 python 镜像通道装进 python/uv（不会改用系统的 Python）。",
                          f"The bundle has no Python {wanted} yet: setup installs it into python/uv through the python "
                          "mirror channel (it does not fall back to the system's Python).")  # fmt: skip
    how_zh, how_en = unavailable_fix(wanted)
    return PythonPlan(setting, None, "unavailable", "unavailable",
                      f"整合包里没有 Python {wanted}，也无法安装（{installable}）。{how_zh}",
                      f"The bundle has no Python {wanted} and cannot install one ({installable}). {how_en}")  # fmt: skip


def unavailable_fix(wanted: str, os_name: str | None = None) -> tuple[str, str]:
    """(zh, en): the ways to a Python when the bundled one cannot be had."""
    windows = (os.name == "nt") if os_name is None else os_name == "windows"
    by_hand_zh = ("" if windows else
                  "2) 在能上网的电脑下载 bootstrap/python-builds.toml 中写明的安装包，放进 cache/python/，"
                  "然后运行 sh bootstrap/fetch-python.sh .（先校验再解压到 python/）；")  # fmt: skip
    by_hand_en = ("" if windows else
                  "2) on a machine with access, download the file named in bootstrap/python-builds.toml into "
                  "cache/python/ and run sh bootstrap/fetch-python.sh . (it is verified, then unpacked into python/); ")  # fmt: skip
    n = "2" if windows else "3"
    return (f"办法：1) 换一个能用的 python 镜像：./start.sh mirrors test --channel python，再 ./start.sh mirrors use python 镜像id；"
            f"{by_hand_zh}{n}) 或者运行 ./start.sh config set setup.python system 改用系统里的 Python {wanted}——{PORTABILITY_ZH}",
            f"Ways: 1) pick a python mirror that works: ./start.sh mirrors test --channel python, then "
            f"./start.sh mirrors use python ID; {by_hand_en}{n}) or run ./start.sh config set setup.python system to use "
            f"the system's Python {wanted}; {PORTABILITY_EN}")  # fmt: skip
