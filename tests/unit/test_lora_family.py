"""A LoRA of another model family is refused by its header, before diffusers is asked to load it.

The header says what a LoRA was trained for (the cross-attention width of its UNet keys, kohya's
``lora_te1_``/``lora_te2_`` names, its metadata); loading an SD 1.5 LoRA into SDXL would fail with a
list of every mismatched tensor instead.  A LoRA whose family cannot be told is still tried.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runtime.lora import LoraSet, lora_family
from tests.support.fake_models import CONV_ONLY_LORA, SD15_LORA, SDXL_LORA, write_safetensors


class FakePipe:
    """Records what the LoRA set asks of a diffusers pipeline."""

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.adapters: list[tuple[list[str], list[float]]] = []

    def load_lora_weights(self, path: str, adapter_name: str, **_: Any) -> None:
        self.loaded.append(Path(path).name)

    def enable_lora(self) -> None:
        pass

    def disable_lora(self) -> None:
        pass

    def set_adapters(self, names: list[str], weights: list[float]) -> None:
        self.adapters.append((names, weights))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "anime-xl": write_safetensors(tmp_path / "anime-xl.safetensors", SDXL_LORA),
        "detail15": write_safetensors(tmp_path / "detail15.safetensors", SD15_LORA),
        "conv": write_safetensors(tmp_path / "conv.safetensors", CONV_ONLY_LORA),
    }


def test_the_family_comes_from_the_header(files: dict[str, Path], tmp_path: Path) -> None:
    assert lora_family(files["anime-xl"]) == "SDXL"
    assert lora_family(files["detail15"]) == "SD 1.5"
    assert lora_family(files["conv"]) is None  # no cross-attention key, no metadata: unknown
    (tmp_path / "broken.safetensors").write_bytes(b"<html>502</html>")
    assert lora_family(tmp_path / "broken.safetensors") is None
    assert lora_family(tmp_path / "old.pt") is None


def test_another_family_is_a_plain_warning_and_never_loaded(files: dict[str, Path]) -> None:
    pipe = FakePipe()
    lora = LoraSet(pipe, "sdxl")
    out = lora.apply([("detail15", 0.8, 0.8), ("anime-xl", 1.0, 1.0)], files)
    assert pipe.loaded == ["anime-xl.safetensors"] and out.names == ["anime-xl"]
    assert out.warnings == [(
        "LoRA「detail15」是 SD 1.5 的，当前模型是 SDXL，已忽略。请换用 SDXL 的 LoRA。",
        "LoRA 'detail15' is for SD 1.5 and the model is SDXL; ignored. Use a SDXL LoRA.",
    )]  # fmt: skip
    again = lora.apply([("detail15", 0.8, 0.8)], files)  # remembered, and said again for this image too
    assert pipe.loaded == ["anime-xl.safetensors"] and again.names == [] and again.warnings == out.warnings


def test_unknown_families_are_tried(files: dict[str, Path]) -> None:
    pipe = FakePipe()
    out = LoraSet(pipe, "sd15").apply([("conv", 1.0, 1.0)], files)
    assert pipe.loaded == ["conv.safetensors"] and out.names == ["conv"] and not out.warnings
    pipe = FakePipe()
    out = LoraSet(pipe, "unknown").apply([("anime-xl", 1.0, 1.0)], files)  # a model of unknown family tries them all
    assert pipe.loaded == ["anime-xl.safetensors"] and not out.warnings


def test_sd2_and_its_v_prediction_share_loras(files: dict[str, Path], tmp_path: Path) -> None:
    from tests.support.fake_models import kohya_pair

    sd2 = write_safetensors(tmp_path / "sd2.safetensors",
                            kohya_pair("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 8, 1024, 320))  # fmt: skip
    pipe = FakePipe()
    out = LoraSet(pipe, "sd2-v").apply([("sd2", 1.0, 1.0)], {"sd2": sd2})
    assert pipe.loaded == ["sd2.safetensors"] and not out.warnings
