"""Fixtures for the fake ``nvidia-smi`` (see :mod:`tests.support.fake_nvidia_smi`).

``fake_gpu("rtx5090-572")`` installs the stub for that recording in a per-test bin folder, puts it first on
PATH and returns the :class:`Recording`, so a test compares what the product found against the recording's
facts.  ``fake_gpu("absent")`` and ``no_nvidia_smi`` leave PATH without any ``nvidia-smi``: a folder holding a
real one is replaced by a shadow folder of symlinks to everything else in it, so other tools stay reachable.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.fake_nvidia_smi import Recording, install_fake_nvidia_smi, load_recording

NVIDIA_SMI_NAMES = ("nvidia-smi", "nvidia-smi.exe")


def path_without_nvidia_smi(path: str, shadow_root: Path) -> str:
    """``path`` with every folder that holds an nvidia-smi swapped for a shadow copy without it."""
    entries = []
    for entry in path.split(os.pathsep):
        folder = Path(entry)
        if not entry or not any((folder / name).exists() for name in NVIDIA_SMI_NAMES):
            entries.append(entry)
            continue
        shadow_root.mkdir(parents=True, exist_ok=True)
        shadow = Path(tempfile.mkdtemp(prefix="path-", dir=shadow_root))
        for child in folder.iterdir():
            if child.name not in NVIDIA_SMI_NAMES:
                (shadow / child.name).symlink_to(child)
        entries.append(str(shadow))
    return os.pathsep.join(entries)


@pytest.fixture
def no_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """PATH without nvidia-smi (set in os.environ); returns the new PATH."""
    path = path_without_nvidia_smi(os.environ.get("PATH", ""), tmp_path / "no-nvidia-smi")
    monkeypatch.setenv("PATH", path)
    return path


@pytest.fixture
def fake_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Recording]:
    """Factory: ``fake_gpu(name)`` makes ``nvidia-smi`` on PATH replay recording ``name``."""

    def install(recording: str) -> Recording:
        rec = load_recording(recording)
        path = path_without_nvidia_smi(os.environ.get("PATH", ""), tmp_path / "no-nvidia-smi")
        if rec.mode != "absent":
            launcher = install_fake_nvidia_smi(tmp_path / "fake-gpu-bin", recording)
            path = os.pathsep.join([str(launcher.parent), path])
        monkeypatch.setenv("PATH", path)
        return rec

    return install
