"""An engine over a bundle holding the tiny model, shared by the runtime tests of one module.

The bundle has the tiny model as a diffusers folder (``tiny``) and as a
single file whose architecture config folder is in ``cache/configs/sd15``,
a LoRA, and an embedding.  Generation is on the CPU with one thread.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bootstrap.layout import Bundle
from tests.support.tiny_sd import TinySD


def make_bundle(root: Path, tiny: TinySD) -> Bundle:
    bundle = Bundle(root)
    models = root / "models"
    shutil.copytree(tiny.diffusers_dir, models / "Stable-diffusion" / "tiny")
    (models / "Lora").mkdir(parents=True)
    shutil.copy(tiny.lora, models / "Lora" / "tiny-lora.safetensors")
    (models / "embeddings").mkdir(parents=True)
    shutil.copy(tiny.embedding, models / "embeddings" / "tinyemb.safetensors")
    (models / "ESRGAN").mkdir(parents=True)
    shutil.copytree(tiny.config_dir, root / "cache" / "configs" / "sd15")
    return bundle


@pytest.fixture(scope="module")
def engine(tiny_sd: TinySD, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    import torch

    from runtime.engine import Engine

    torch.set_num_threads(1)
    e = Engine(make_bundle(tmp_path_factory.mktemp("bundle"), tiny_sd))
    e.load("tiny")
    yield e


LOCAL = "http://127.0.0.1:7860"  # a loopback Host: any other is refused (DNS rebinding)
LOGIN: Any = ("ann", "秘密pw".encode())  # the login of `locked`, as HTTP Basic sends it (UTF-8)


@pytest.fixture(scope="module")
def client(engine: object) -> Iterator[object]:
    """The app over the module's engine, UI included, no login."""
    from fastapi.testclient import TestClient

    from runtime.options import parse
    from runtime.server import build_app

    with TestClient(build_app(engine, parse(["--no-browser"], {})), base_url=LOCAL) as c:  # type: ignore[arg-type]
        yield c


@pytest.fixture(scope="module")
def locked(engine: object) -> Iterator[object]:
    """The same app with a login (a Chinese password: the header is UTF-8)."""
    from fastapi.testclient import TestClient

    from runtime.options import parse
    from runtime.server import build_app

    with TestClient(build_app(engine, parse(["--auth", "ann:秘密pw", "--no-browser"], {})), base_url=LOCAL) as c:  # type: ignore[arg-type]
        yield c
