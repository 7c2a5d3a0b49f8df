"""The installer command lines, for uv and for pip, and running them with a log.

Two steps, as the PyTorch indexes need (they also host numpy, pillow …, and
uv's first-index rule would take those from them):

1. the torch trio from the torch channel (an index, a flat listing, or a
   folder), with PyPI for their own dependencies;
2. the runtime requirements from PyPI only, under a constraints file that
   pins the trio, so nothing can swap CUDA torch for another build.

Both installers get the mirror environment and none of the user's pip or uv
settings (``--isolated`` / ``--no-config`` and a cleaned environment).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bootstrap import proc
from bootstrap.credentials import installer_credentials
from bootstrap.redact import redact, redact_argv
from launcher.mirrors.sources import Source


@dataclass(frozen=True)
class InstallSpec:
    """What to install from where: the same for uv and for pip."""

    pypi: Source
    torch: Source | None  # None: the trio comes from PyPI (the torch channel's route around)
    torch_reqs: Sequence[str]  # pins, or paths of prefetched wheels
    runtime: Path  # requirements file
    constraints: Path  # the trio's pins


@dataclass(frozen=True)
class Step:
    """One installer run."""

    what: str  # "torch" | "runtime"
    argv: list[str]


def uv_bin() -> Path | None:
    try:
        from uv import find_uv_bin

        return Path(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return None


def sources_uv(pypi: Source, extra: Source | None) -> list[str]:
    args: list[str] = []
    if extra is not None:
        if extra.kind == "pep503":
            args += ["--index", f"pytorch={extra.url}"]
        else:
            args += ["--find-links", extra.url]
    if pypi.local:
        args += ["--no-index", "--find-links", pypi.url]
    else:
        args += ["--default-index", pypi.url]
    return args


def uv_steps(uv: Path, env_python: Path, spec: InstallSpec) -> list[Step]:
    base = [str(uv), "pip", "install", "--no-config", "--python", str(env_python)]
    runtime = ["--constraint", str(spec.constraints), "--requirement", str(spec.runtime)]
    return [
        Step("torch", [*base, *sources_uv(spec.pypi, spec.torch), *spec.torch_reqs]),
        Step("runtime", [*base, *sources_uv(spec.pypi, None), *runtime]),
    ]


def _sources_pip(pypi: Source, extra: Source | None) -> list[str]:
    args: list[str] = []
    if pypi.local:
        args += ["--no-index", "--find-links", pypi.url]
    else:
        args += ["--index-url", pypi.url]
        if pypi.url.startswith("http://"):
            args += ["--trusted-host", pypi.url.split("/")[2].split(":")[0]]
    if extra is not None:
        args += ["--extra-index-url", extra.url] if extra.kind == "pep503" else ["--find-links", extra.url]
    return args


def pip_steps(env_python: Path, spec: InstallSpec, cache: Path) -> list[Step]:
    # The launcher environment's pip installs into the target with --python (pip >= 22.3).
    base = [sys.executable, "-m", "pip", "--python", str(env_python), "install", "--isolated",
            "--disable-pip-version-check", "--no-input", "--cache-dir", str(cache), "--progress-bar", "off",
            "--retries", "1", "--timeout", "30"]  # fmt: skip
    runtime = ["--constraint", str(spec.constraints), "--requirement", str(spec.runtime)]
    return [
        Step("torch", [*base, *_sources_pip(spec.pypi, spec.torch), *spec.torch_reqs]),
        Step("runtime", [*base, *_sources_pip(spec.pypi, None), *runtime]),
    ]


def installer_env(base: dict[str, str]) -> dict[str, str]:
    """The mirror environment minus every PIP_/UV_ variable: flags carry all choices."""
    env = {k: v for k, v in base.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["UV_NO_CONFIG"] = "1"
    env.pop("PYTHONPATH", None)
    # uv's cache lives in the bundle beside env/, so it hardlinks packages into the environment (seconds, not
    # minutes, for a 1.5 GB stack) and the bundle stays one movable folder.
    for key in ("UV_CACHE_DIR", "UV_PYTHON_INSTALL_DIR", "UV_PYTHON_INSTALL_MIRROR"):
        if key in base:
            env[key] = base[key]
    # Yijian falls back to the next mirror itself, so a dead one should fail fast rather than be retried for 12 s.
    env["UV_HTTP_RETRIES"] = "1"
    env["UV_HTTP_TIMEOUT"] = "30"
    return env


def run_logged(argv: list[str], env: dict[str, str], log: Path, on_line: Callable[[str], None] | None = None) -> int:
    """Run one installer; everything it prints goes to ``log``.  Index passwords go by a private netrc file."""
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("\n$ " + redact_argv(argv) + "\n")
        fh.flush()
        with installer_credentials(argv, env) as (run_argv, run_env):
            child = proc.start(run_argv, env=run_env)
            assert child.stdout is not None
            for line in child.stdout:
                fh.write(redact(line))
                if on_line is not None:
                    on_line(line.rstrip("\n"))
            return child.wait()
