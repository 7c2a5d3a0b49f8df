"""Fixtures the model-download tests share: a fresh bundle copy and a tiny real checkpoint's bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bundle_copy import copy_bundle
from tests.support.tiny_sd import TinySD


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A bundle copy of its own (modules that need another kind define their own ``bundle``)."""
    return copy_bundle(tmp_path / "bundle")


@pytest.fixture
def model_bytes(tiny_sd: TinySD) -> bytes:
    return tiny_sd.checkpoint.read_bytes()
