"""An engine over a bundle holding the tiny model, shared by the runtime tests of one module.

The bundle has the tiny model as a diffusers folder (``tiny``) and as a
single file whose architecture config folder is in ``cache/configs/sd15``,
a LoRA, and an embedding.  Generation is on the CPU with one thread.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

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
