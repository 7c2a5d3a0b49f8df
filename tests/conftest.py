"""Fixtures every test shares.

``sealed`` (autouse) gives each test its own HOME and bundle root and clears
every PIP_/UV_/HF_ variable, so neither the developer's machine nor another
test leaks in.  The network stand-ins live in ``tests.support``; their
fixtures are defined here so any test can ask for them by name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hermetic import Sealed, sealed_environ

os.environ.setdefault("OMP_NUM_THREADS", "1")
# huggingface_hub, diffusers and gradio read these once, at import (before any fixture runs):
# set them now so the test process itself never reaches out or writes to the real HOME.
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="yijian-test-hf-")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.pop("HF_ENDPOINT", None)


@pytest.fixture(autouse=True)
def sealed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sealed]:
    s, changes = sealed_environ(tmp_path / "sealed")
    for key, value in changes.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    yield s


# The stand-ins' fixtures, one plugin module per stand-in.
pytest_plugins = [
    "tests.support.plugin_index",
    "tests.support.plugin_http",
    "tests.support.plugin_sd",
    "tests.support.plugin_gpu",
    "tests.support.plugin_mirrors",
]
