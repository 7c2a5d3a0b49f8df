"""Fixtures for the http stand-ins: a fault-injecting file server, a fake Hugging Face hub, a fake ModelScope.

Both are function-scoped: each test gets a fresh server on its own port, stopped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.civitai_endpoint import CivitaiEndpoint
from tests.support.fileserver import FileServer
from tests.support.fileserver import refused_url as _refused_url
from tests.support.hf_endpoint import HfEndpoint
from tests.support.modelscope_endpoint import ModelScopeEndpoint


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    """A running :class:`FileServer`; register files with ``file_server.add(path, data)``."""
    srv = FileServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def hf_endpoint() -> Iterator[HfEndpoint]:
    """A running :class:`HfEndpoint`; pass ``endpoint=hf_endpoint.url`` to huggingface_hub."""
    hub = HfEndpoint()
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def modelscope_endpoint() -> Iterator[ModelScopeEndpoint]:
    """A running :class:`ModelScopeEndpoint`; publish with ``add_repo``/``add_folder``, download from ``file_url``."""
    ms = ModelScopeEndpoint()
    ms.start()
    try:
        yield ms
    finally:
        ms.stop()


@pytest.fixture
def civitai_endpoint() -> Iterator[CivitaiEndpoint]:
    """A running :class:`CivitaiEndpoint`; publish with ``add_model``, point the civitai channel at ``.url``."""
    site = CivitaiEndpoint()
    site.start()
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture
def refused_url() -> str:
    """An http URL on 127.0.0.1 where the connection is refused."""
    return _refused_url("/model.safetensors")
