"""Whole bundles for end-to-end tests of ./start.sh.

A test gets its own copy of the shipped files (start scripts, code, data) in
a fresh folder, so it can move it, put a space in its path, point its
mirrors at local servers, and run ``./start.sh`` exactly as a user would.
The launcher's locked wheels are downloaded once into ``.venv/test-cache``
(PyPI is reachable here and in CI) and served from there afterwards.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.hermetic import REPO

SHIPPED = (
    "start.sh",
    "start.bat",
    "bootstrap",
    "launcher",
    "runtime",
    "requirements",
    "mirrors.toml",
    "packs",
    "models",
)
CACHE = REPO / ".venv" / "test-cache"


def copy_bundle(dest: Path) -> Path:
    """A fresh bundle at ``dest`` holding what a release ships (no env, no config)."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SHIPPED:
        src = REPO / name
        if name == "models":  # the layout, catalog and shipped configs only, never a developer's model files
            for sub in src.iterdir():
                if sub.name == "configs":
                    shutil.copytree(sub, dest / name / sub.name, ignore=ignore)
                elif sub.is_dir():
                    (dest / name / sub.name).mkdir(parents=True, exist_ok=True)
                    (dest / name / sub.name / ".gitkeep").touch()
                elif sub.suffix == ".toml":
                    shutil.copy2(sub, dest / name / sub.name)
        elif src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore, symlinks=True)
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def set_mirror_urls(mirrors_toml: Path, channel: str, urls: dict[str, str]) -> None:
    """Point the ``channel`` entries with these ids at new URLs (others untouched)."""
    text = mirrors_toml.read_text(encoding="utf-8")
    parts = re.split(r"(?m)^(?=\[\[)", text)
    out = []
    for part in parts:
        m = re.match(rf"\[\[{channel}\]\]\s*\nid = \"([^\"]+)\"", part)
        if m and m.group(1) in urls:
            part = re.sub(r'(?m)^url = "[^"]*"', f'url = "{urls[m.group(1)]}"', part, count=1)
        out.append(part)
    mirrors_toml.write_text("".join(out), encoding="utf-8")


def isolate_mirrors(bundle: Path) -> str:
    """Point every catalog mirror of ``bundle`` at a local port nobody listens on; returns that base URL.

    Whatever a test leaves on ``auto`` (or falls back to) is refused at once, never fetched from the internet;
    a test then points the channels it uses at its stand-ins.
    """
    from tests.support.httpbase import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    catalog = bundle / "mirrors.toml"
    text = catalog.read_text(encoding="utf-8")
    catalog.write_text(re.sub(r"https://([\w.-]+)", rf"{dead}/\1", text), encoding="utf-8")
    return dead


def pypi_ids(mirrors_toml: Path) -> list[str]:
    return re.findall(r'(?m)^\[\[pypi\]\]\s*\nid = "([^"]+)"', mirrors_toml.read_text(encoding="utf-8"))


def pypi_download(name: str, args: list[str]) -> Path:
    """``pip download ARGS`` from PyPI into CACHE/name once; later calls return the folder (a ``.complete`` marker)."""
    folder = CACHE / name
    if (folder / ".complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--isolated", "--disable-pip-version-check", "--quiet",
         "--index-url", "https://pypi.org/simple", "-d", str(folder), *args],
        check=True, env=env,
    )  # fmt: skip
    (folder / ".complete").write_text("ok", encoding="utf-8")
    return folder


def launcher_wheels() -> Path:
    """A folder holding every wheel of requirements/launcher.txt for this Python."""
    lock = REPO / "requirements" / "launcher.txt"
    key = hashlib.sha256(lock.read_bytes() + sys.version.encode()).hexdigest()[:12]
    return pypi_download(f"launcher-wheels-{key}", ["--only-binary=:all:", "-r", str(lock)])


def run_start(bundle: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``./start.sh ARGS`` in ``bundle``, as a user runs it (the bundle is its own root)."""
    run_env = dict(os.environ if env is None else env)
    run_env.pop("YIJIAN_HOME", None)
    return subprocess.run(
        [str(bundle / "start.sh"), *args], capture_output=True, text=True, env=run_env, timeout=timeout,
        cwd=cwd or bundle, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def run_cli(bundle: Path, *args: str, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``python -m launcher ARGS`` from a bundle copy, in the dev environment (no stage 0); ``env`` adds variables."""
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if k != "YIJIAN_HOME"}  # the bundle is its own root
    env["PYTHONPATH"] = str(bundle)
    env.update(extra)
    return subprocess.run([sys.executable, "-m", "launcher", *args], capture_output=True, text=True, env=env,
                          cwd=bundle, timeout=timeout)  # fmt: skip


def kill_9_mid_download(bundle: Path, args: list[str], journal: Path, log: Path, timeout: float = 60) -> None:
    """Run ``python -m launcher ARGS`` as a child, and ``kill -9`` it once ``journal`` (a download's
    ``NAME.part.log``) shows a few finished spans: the crash a resume must survive.  ``log`` keeps its output."""
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if k != "YIJIAN_HOME"}
    env["PYTHONPATH"] = str(bundle)
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, "-m", "launcher", *args], env=env, cwd=bundle,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (journal.exists() and journal.stat().st_size > 600):
        time.sleep(0.02)
    assert proc.poll() is None, log.read_text(encoding="utf-8")  # it ended before the kill: say why
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
