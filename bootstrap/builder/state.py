"""What is installed in an environment, read without running it.

``importlib.metadata.distributions(path=...)`` reads the dist-info folders
of another environment from this process in a few tens of milliseconds, so
"is every pin already satisfied?" needs no subprocess; that is what makes a
no-op ``setup`` fast.  Versions keep their local labels (``2.7.1+cu128``).
"""

from __future__ import annotations

import json
import os
import re
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

from bootstrap.atomic import write_atomic

STAMP = "yijian-env.json"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def site_packages(env: Path) -> list[str]:
    if os.name == "nt":
        return [str(env / "Lib" / "site-packages")]
    return [str(p) for p in sorted((env / "lib").glob("python3*/site-packages"))]


def installed(env: Path) -> dict[str, str]:
    """Normalised distribution name → version, for every package in ``env``."""
    paths = site_packages(env)
    if not paths:
        return {}
    return {normalize(d.metadata["Name"]): d.version for d in distributions(path=paths) if d.metadata["Name"]}


def pin_of(requirement: str) -> tuple[str, str] | None:
    """``name==version`` → (normalised name, version); anything looser → None."""
    m = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)\s*", requirement)
    return (normalize(m.group(1)), m.group(2)) if m else None


def unmet(env: Path, requirements: list[str]) -> list[str]:
    """The ``==`` pins not satisfied exactly (``torch==2.7.1`` accepts ``2.7.1+cu128``)."""
    have = installed(env)
    missing = []
    for req in requirements:
        pin = pin_of(req)
        if pin is None:
            continue
        name, version = pin
        got = have.get(name)
        if got is None:
            missing.append(req)
        elif "+" in version:
            if got != version:
                missing.append(req)
        elif got != version and got.split("+")[0] != version:
            missing.append(req)
    return missing


def read_stamp(env: Path) -> dict[str, Any]:
    try:
        data = json.loads((env / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_stamp(env: Path, data: dict[str, Any]) -> None:
    write_atomic(env / STAMP, json.dumps(data, indent=1, ensure_ascii=False))


def make_portable(env: Path, bundle_root: Path) -> None:
    """Point ``bin/python*`` at a bundled interpreter by a relative link, so the bundle can move.

    uv writes absolute symlinks; when the base interpreter lives inside the
    bundle (``python/``), a relative one keeps working wherever the folder
    goes.  Interpreters outside the bundle are left alone.
    """
    if os.name == "nt":
        return  # no symlinks there: pyvenv.cfg's home is healed instead (heal_home)
    root = bundle_root.resolve()
    for link in (env / "bin").glob("python*"):
        if not link.is_symlink():
            continue
        target = Path(os.readlink(link))
        if target.is_absolute() and target.resolve().is_relative_to(root):
            link.unlink()
            link.symlink_to(os.path.relpath(target, link.parent))


def heal_home(env: Path, bundle_root: Path) -> bool:
    """Rewrite pyvenv.cfg's ``home`` after the bundle moved; True when it changed anything.

    The stamp records where the base interpreter is relative to the bundle
    (``python_rel``); a move leaves ``home`` pointing at the old place.
    """
    cfg = env / "pyvenv.cfg"
    rel = read_stamp(env).get("python_rel")
    try:
        lines = cfg.read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    if not rel:
        return False
    home = str((bundle_root / rel).parent)
    out, changed = [], False
    for line in lines:
        key, sep, value = line.partition("=")
        if key.strip() == "home" and sep and value.strip() != home:
            line, changed = f"home = {home}", True
        out.append(line)
    if changed:
        write_atomic(cfg, "\n".join(out) + "\n")  # a torn pyvenv.cfg would break the environment
    return changed
