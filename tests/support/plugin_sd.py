"""Fixtures for the tiny Stable Diffusion stand-in (see :mod:`tests.support.tiny_sd`).

``tiny_sd`` builds the model once per test session.  torch and diffusers are
imported only when it builds, so tests that never ask for it don't pay for them.
"""

from __future__ import annotations

import pytest

from tests.support.tiny_sd import TinySD, build_tiny_sd


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> TinySD:
    """The tiny SD 1.x artefacts (diffusers folder, config folder, single file, LoRA, embedding); treat as read-only."""
    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd"))
