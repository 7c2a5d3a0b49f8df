"""Kind and architecture come from header keys and shapes: fake headers of the real layouts, and the tiny model.

The fakes carry the keys that decide (with the real shapes of SD 1.5, SD 2.x
and SDXL) and nothing else; the tiny test model has cross-attention width 32,
which must be reported as unknown rather than guessed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from launcher.models.architecture import Detection, detect_diffusers, detect_header, is_diffusers_folder
from launcher.models.safetensors_header import read_header
from tests.support.fake_models import (
    CONV_ONLY_LORA,
    ESRGAN,
    SD2_CKPT,
    SD15_CKPT,
    SD15_LORA,
    SDXL_CKPT,
    SDXL_LORA,
    SDXL_REFINER,
    UNET,
    VAE,
    kohya_pair,
    write_safetensors,
)
from tests.support.tiny_sd import TinySD


def detect(
    tmp_path: Path, tensors: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str] | None = None
) -> Detection:
    return detect_header(read_header(write_safetensors(tmp_path / "m.safetensors", tensors, metadata)))


# --- single-file checkpoints ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tensors", "metadata", "arch", "v"),
    [
        (SD15_CKPT, None, "sd15", None),
        (SDXL_CKPT, None, "sdxl", None),
        (SD2_CKPT, None, "sd2", None),  # 512-base and 768-v cannot be told apart from the weights
        ({**SD2_CKPT, "v_pred": ()}, None, "sd2-v", True),  # ComfyUI marks v-prediction with this key
        (SD2_CKPT, {"modelspec.prediction_type": "v"}, "sd2-v", True),
        (SD2_CKPT, {"modelspec.prediction_type": "epsilon"}, "sd2", False),
        (SD2_CKPT, {"modelspec.architecture": "stable-diffusion-v2-768-v"}, "sd2-v", True),
        (SD2_CKPT, {"modelspec.architecture": "stable-diffusion-v2-512"}, "sd2", False),
        ({**SDXL_CKPT, "v_pred": ()}, None, "sdxl", True),
    ],
)
def test_checkpoint_architectures(
    tmp_path: Path, tensors: Mapping[str, tuple[int, ...]], metadata: dict[str, str] | None, arch: str, v: bool | None
) -> None:
    found = detect(tmp_path, tensors, metadata)
    assert (found.kind, found.architecture, found.v_prediction) == ("checkpoint", arch, v)
    assert found.label == arch


@pytest.mark.parametrize(
    ("tensors", "label"),
    [
        (SDXL_REFINER, "unknown (cross-attention 1280)"),
        ({k: v for k, v in SDXL_CKPT.items() if "attn2" in k}, "unknown (cross-attention 2048 without SDXL conditioning)"),
        ({**SD15_CKPT, UNET + "middle_block.1.transformer_blocks.0.attn2.to_k.weight": (1280, 1024)},
         "unknown (mixed cross-attention widths 768/1024)"),
        ({UNET + "out.2.weight": (4, 320, 3, 3)}, "unknown (no cross-attention)"),
    ],
)  # fmt: skip
def test_checkpoints_that_do_not_fit_are_unknown_not_guessed(
    tmp_path: Path, tensors: Mapping[str, tuple[int, ...]], label: str
) -> None:
    found = detect(tmp_path, tensors)
    assert (found.kind, found.architecture, found.label) == ("checkpoint", "unknown", label)


def test_the_tiny_model_is_unknown_with_its_width(tiny_sd: TinySD) -> None:
    found = detect_header(read_header(tiny_sd.checkpoint))
    assert (found.kind, found.label) == ("checkpoint", "unknown (cross-attention 32)")


# --- LoRA ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tensors", "metadata", "arch"),
    [
        (SD15_LORA, None, "sd15"),
        (SD15_LORA, {"ss_base_model_version": "sd_v1"}, "sd15"),
        (SDXL_LORA, None, "sdxl"),
        (SDXL_LORA, {"ss_base_model_version": "sd_v1"}, "sdxl"),  # the shapes outrank a wrong label
        (kohya_pair("lora_te2_text_model_encoder_layers_0_mlp_fc1", 4, 1280, 5120), None, "sdxl"),
        (kohya_pair("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 8, 1024, 320),
         {"ss_v2": "True", "ss_v_parameterization": "True"}, "sd2-v"),
        (kohya_pair("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 8, 1024, 320), None, "sd2"),
        (CONV_ONLY_LORA, {"ss_base_model_version": "sdxl_base_v1-0"}, "sdxl"),
        (CONV_ONLY_LORA, {"ss_base_model_version": "sd_v2", "ss_v2": "True"}, "sd2"),
        (CONV_ONLY_LORA, {"modelspec.architecture": "stable-diffusion-v1/lora"}, "sd15"),
        (CONV_ONLY_LORA, {"modelspec.architecture": "stable-diffusion-xl-v1-base/lora"}, "sdxl"),
    ],
)  # fmt: skip
def test_lora_base_models(
    tmp_path: Path, tensors: Mapping[str, tuple[int, ...]], metadata: dict[str, str] | None, arch: str
) -> None:
    found = detect(tmp_path, tensors, metadata)
    assert (found.kind, found.architecture) == ("lora", arch)


@pytest.mark.parametrize(
    "tensors",
    [
        CONV_ONLY_LORA,
        {"unet.down_blocks.0.attentions.0.proj_in.lora.down.weight": (4, 320)},  # diffusers' older format
        {"transformer.blocks.0.attn.to_q.lora_A.weight": (4, 64)},  # PEFT
    ],
)
def test_a_lora_without_any_clue_is_a_lora_of_unknown_base(
    tmp_path: Path, tensors: Mapping[str, tuple[int, ...]]
) -> None:
    found = detect(tmp_path, tensors)
    assert (found.kind, found.label) == ("lora", "unknown (no base model recorded)")


def test_the_tiny_lora_is_unknown_despite_its_sd_v1_label(tiny_sd: TinySD) -> None:
    header = read_header(tiny_sd.lora)
    assert header.metadata["ss_base_model_version"] == "sd_v1"
    found = detect_header(header)
    assert (found.kind, found.label) == ("lora", "unknown (cross-attention 32)")


# --- VAE, embeddings, upscalers, the rest --------------------------------------------------------------------------


def test_a_vae_has_no_architecture_to_report(tmp_path: Path) -> None:
    found = detect(tmp_path, VAE)
    assert (found.kind, found.architecture, found.label) == ("vae", "", None)


def test_a_diffusers_vae_file_is_a_vae(tmp_path: Path) -> None:
    found = detect(
        tmp_path,
        {"encoder.down_blocks.0.resnets.0.conv1.weight": (128, 128, 3, 3), "decoder.conv_in.weight": (512, 4, 3, 3)},
    )
    assert found.kind == "vae"


@pytest.mark.parametrize(
    ("tensors", "label"),
    [
        ({"emb_params": (8, 768)}, "sd15"),
        ({"emb_params": (2, 1024)}, "sd2"),
        ({"clip_g": (4, 1280), "clip_l": (4, 768)}, "sdxl"),
        ({"string_to_param.*": (1, 768)}, "sd15"),
        ({"emb_params": (2, 32)}, "unknown (width 32)"),
    ],
)
def test_embeddings(tmp_path: Path, tensors: Mapping[str, tuple[int, ...]], label: str) -> None:
    found = detect(tmp_path, tensors)
    assert (found.kind, found.label) == ("embedding", label)


def test_the_tiny_embedding_is_unknown_with_its_width(tiny_sd: TinySD) -> None:
    found = detect_header(read_header(tiny_sd.embedding))
    assert (found.kind, found.label) == ("embedding", "unknown (width 32)")


def test_an_upscaler(tmp_path: Path) -> None:
    found = detect(tmp_path, ESRGAN)
    assert (found.kind, found.label) == ("upscaler", None)


def test_something_else_is_not_recognised(tmp_path: Path) -> None:
    found = detect(tmp_path, {"transformer.h.0.attn.weight": (8, 8)})
    assert (found.kind, found.label) == ("", "unknown (unrecognised layout)")


# --- diffusers folders ---------------------------------------------------------------------------------------------


def diffusers_folder(base: Path, unet: dict[str, object] | None, scheduler: dict[str, object] | None = None) -> Path:
    base.mkdir(parents=True)
    (base / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}), encoding="utf-8")
    if unet is not None:
        (base / "unet").mkdir()
        (base / "unet" / "config.json").write_text(json.dumps(unet), encoding="utf-8")
    if scheduler is not None:
        (base / "scheduler").mkdir()
        (base / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler), encoding="utf-8")
    return base


@pytest.mark.parametrize(
    ("unet", "scheduler", "label", "v"),
    [
        ({"cross_attention_dim": 768}, None, "sd15", None),
        ({"cross_attention_dim": 1024}, {"prediction_type": "v_prediction"}, "sd2-v", True),
        ({"cross_attention_dim": 1024}, {"prediction_type": "epsilon"}, "sd2", False),
        ({"cross_attention_dim": 1024}, None, "sd2", None),
        ({"cross_attention_dim": 2048, "addition_embed_type": "text_time"}, None, "sdxl", None),
        ({"cross_attention_dim": 2048}, None, "unknown (cross-attention 2048 without SDXL conditioning)", None),
        ({"cross_attention_dim": [768, 768]}, None, "unknown (no cross-attention width)", None),
        (None, None, "unknown (no unet/config.json)", None),
    ],
)
def test_diffusers_folders(
    tmp_path: Path, unet: dict[str, object] | None, scheduler: dict[str, object] | None, label: str, v: bool | None
) -> None:
    folder = diffusers_folder(tmp_path / "pipe", unet, scheduler)
    assert is_diffusers_folder(folder)
    found = detect_diffusers(folder)
    assert (found.kind, found.label, found.v_prediction) == ("checkpoint", label, v)


def test_the_tiny_diffusers_folder_is_unknown_with_its_width(tiny_sd: TinySD, tmp_path: Path) -> None:
    assert detect_diffusers(tiny_sd.diffusers_dir).label == "unknown (cross-attention 32)"
    broken = shutil.copytree(tiny_sd.config_dir, tmp_path / "broken")
    (broken / "unet" / "config.json").write_text("{not json", encoding="utf-8")
    assert detect_diffusers(broken).label == "unknown (no unet/config.json)"
    assert not is_diffusers_folder(tmp_path)
