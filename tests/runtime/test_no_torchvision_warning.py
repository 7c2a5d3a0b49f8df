"""Loading a checkpoint where torchvision is absent (the CPU pack built from a folder holding only torch, and this
dev venv) prints none of transformers' "requires torchvision" warnings: the runtime loads no image processor."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.hermetic import REPO
from tests.support.tiny_sd import TinySD, repo_config_files

LOAD = """
import sys
from pathlib import Path
from runtime.checkpoints import Checkpoint, load_checkpoint
ckpt = Checkpoint(Path(sys.argv[1]), "safetensors", "sd15", False)
loaded = load_checkpoint(ckpt, Path(sys.argv[2]), architecture="sd15")
print("feature_extractor:", getattr(loaded.pipe, "feature_extractor", None))
"""


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed here")
def test_loading_a_checkpoint_prints_no_torchvision_warning(tiny_sd: TinySD, tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    for name, data in repo_config_files(tiny_sd.config_dir).items():  # with the feature extractor SD 1.5 names
        (configs / "sd15" / name).parent.mkdir(parents=True, exist_ok=True)
        (configs / "sd15" / name).write_bytes(data)
    out = subprocess.run([sys.executable, "-c", LOAD, str(tiny_sd.checkpoint), str(configs)], cwd=REPO,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "feature_extractor: None" in out.stdout
    assert "torchvision" not in out.stderr + out.stdout, out.stderr
