"""Fixtures for mirror and start-up tests: a farm of good and bad PyPI mirrors.

``mirror_farm`` starts one server per behaviour a real mirror shows: fast,
slow (answers after the probe timeout), refusing connections, 403, and an
HTML maintenance page answered with 200.  Each serves a real PEP 503 index
with a ``pip`` project (from the interpreter's own ensurepip wheel), as every
PyPI mirror has.  ``launcher_index`` serves the launcher's locked wheels, so
``./start.sh`` can build ``env/launcher`` without the internet.
"""

from __future__ import annotations

import ensurepip
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.bundle_copy import launcher_wheels
from tests.support.httpbase import free_port
from tests.support.pypi_index import PackageIndex
from tests.support.wheels import small_packages


def pip_wheel() -> Path:
    bundled = Path(ensurepip.__file__).parent / "_bundled"
    return next(bundled.glob("pip-*.whl"))


@dataclass
class MirrorFarm:
    fast: PackageIndex
    slow: PackageIndex
    forbidden: PackageIndex
    html: PackageIndex
    dead_url: str  # a port nobody listens on

    def all(self) -> list[PackageIndex]:
        return [self.fast, self.slow, self.forbidden, self.html]


@pytest.fixture(scope="session")
def mirror_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mirror-wheels")
    small_packages(folder)
    shutil.copy2(pip_wheel(), folder)
    return folder


@pytest.fixture
def mirror_farm(mirror_wheels: Path) -> Iterator[MirrorFarm]:
    servers = [PackageIndex(root=mirror_wheels).start() for _ in range(4)]
    fast, slow, forbidden, html = servers
    slow.slow_down(30)  # far beyond any probe timeout a test uses
    forbidden.forbid(403)
    html.serve_error_page()
    try:
        yield MirrorFarm(fast, slow, forbidden, html, f"http://127.0.0.1:{free_port()}")
    finally:
        for s in servers:
            s.heal()
            s.stop()


@pytest.fixture(scope="session")
def launcher_wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The launcher's locked wheels plus pip's: what a PyPI mirror would offer stage 0."""
    folder = tmp_path_factory.mktemp("launcher-wheels")
    for wheel in launcher_wheels().glob("*.whl"):
        shutil.copy2(wheel, folder)
    shutil.copy2(pip_wheel(), folder)
    return folder


@pytest.fixture(scope="session")
def launcher_index(launcher_wheel_dir: Path) -> Iterator[PackageIndex]:
    with PackageIndex(root=launcher_wheel_dir) as index:
        yield index
