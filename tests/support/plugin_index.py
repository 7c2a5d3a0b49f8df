"""Fixtures for the package index stand-in (see :mod:`tests.support.pypi_index`).

``wheelhouse`` (session) builds the fake wheels once: a PyPI-like folder and
one folder per torch variant (:data:`STACKS`).  ``package_index`` serves them
all from one server, the PyPI-like folder at ``/simple/`` and the variants at
``/whl/<variant>/simple/``; ``flat_index`` is a second, independent server
holding only the variants, like Aliyun's ``pytorch-wheels`` (use
``flat_index.flat_url("cu121")``).  Each test gets fresh servers, so faults
never leak; the wheel folders are shared: treat them as read-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.pypi_index import PackageIndex
from tests.support.wheels import fake_torch, fake_torch_stack, small_packages


@dataclass(frozen=True)
class Stack:
    """The versions of one fake torch variant."""

    torch: str
    torchvision: str
    xformers: str | None
    cuda: str | None


# A1111's pins (cu121), a current Blackwell-capable stack (cu128), and a CPU build (no xformers there).
STACKS: dict[str, Stack] = {
    "cu121": Stack("2.1.2+cu121", "0.16.2+cu121", "0.0.23.post1", "12.1"),
    "cu128": Stack("2.7.1+cu128", "0.22.1+cu128", "0.0.31", "12.8"),
    "cpu": Stack("2.7.1+cpu", "0.22.1+cpu", None, None),
}


@dataclass(frozen=True)
class Wheelhouse:
    """Folders of fake wheels: ``pypi`` and one per variant of :data:`STACKS`."""

    pypi: Path  # small_packages() plus PyPI's plain torch 2.7.1 (CUDA 12.6) and 2.9.0 (CUDA 12.8)
    variants: dict[str, Path]


def build_wheelhouse(root: Path) -> Wheelhouse:
    """Build every folder of :class:`Wheelhouse` under ``root`` (a few milliseconds)."""
    pypi = root / "pypi"
    small_packages(pypi)
    fake_torch(pypi, "2.7.1", cuda="12.6")
    fake_torch(pypi, "2.9.0", cuda="12.8")
    variants = {}
    for name, s in STACKS.items():
        variants[name] = root / name
        fake_torch_stack(variants[name], torch=s.torch, torchvision=s.torchvision, xformers=s.xformers, cuda=s.cuda)
    return Wheelhouse(pypi=pypi, variants=variants)


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    """The shared fake wheels; read-only."""
    return build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture
def package_index(wheelhouse: Wheelhouse) -> Iterator[PackageIndex]:
    """A PyPI mirror plus download.pytorch.org-like variants: ``simple_url()``, ``simple_url("cu128")``."""
    with PackageIndex(root=wheelhouse.pypi, variants=dict(wheelhouse.variants)) as index:
        yield index


@pytest.fixture
def flat_index(wheelhouse: Wheelhouse) -> Iterator[PackageIndex]:
    """A second origin with only the variant folders, for ``--find-links flat_index.flat_url("cu121")``."""
    with PackageIndex(variants=dict(wheelhouse.variants)) as index:
        yield index
