"""A tiny random-weight Stable Diffusion 1.x model, built offline in well under a second after imports.

:func:`build_tiny_sd` writes every artefact the runtime handles for SD 1.x, with
the real layouts and tiny widths (CLIP width 32, UNet/VAE channels 8-16, 64x64
images from 8x8 latents):

* ``diffusers_dir``: a ``StableDiffusionPipeline`` saved with safetensors;
* ``config_dir``: the same folder without weights (configs and tokenizer only),
  which is what the runtime keeps per architecture so that
  ``from_single_file(ckpt, config=config_dir)`` never goes online;
* ``checkpoint``: one ``.safetensors`` file in the original LDM/A1111 layout
  (``model.diffusion_model.*``, ``first_stage_model.*``,
  ``cond_stage_model.transformer.text_model.*``);
* ``lora``: a kohya-format LoRA (``lora_unet_*`` / ``lora_te_*`` with
  ``lora_down``/``lora_up``/``alpha``) and kohya-style metadata;
* ``embedding``: an A1111 textual-inversion embedding (``emb_params``).

:func:`write_pickle_checkpoint` adds the same weights as a pickled ``.ckpt``,
which the runtime must refuse or gate.  All weights derive from ``seed``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.demo import CROSS_ATTENTION_DIM, IMAGE_SIZE, build_demo_pipeline

__all__ = ["CROSS_ATTENTION_DIM", "IMAGE_SIZE", "TinySD", "build_tiny_sd", "write_pickle_checkpoint"]

if TYPE_CHECKING:
    import torch
    from diffusers import StableDiffusionPipeline

LORA_RANK = 4
EMBEDDING_VECTORS = 2
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")


@dataclass(frozen=True)
class TinySD:
    """Paths of one built tiny model; see the module docstring."""

    diffusers_dir: Path
    config_dir: Path
    checkpoint: Path
    lora: Path
    embedding: Path


def build_tiny_sd(dest: Path, *, seed: int = 0) -> TinySD:
    """Build all artefacts under ``dest`` (created if needed); same seed, same weights."""
    import torch
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    dest.mkdir(parents=True, exist_ok=True)
    pipe = build_demo_pipeline(seed)

    tiny = TinySD(
        diffusers_dir=dest / "diffusers",
        config_dir=dest / "config",
        checkpoint=dest / "tiny-sd15.safetensors",
        lora=dest / "tiny-lora.safetensors",
        embedding=dest / "tiny-embedding.safetensors",
    )
    pipe.save_pretrained(tiny.diffusers_dir, safe_serialization=True)
    shutil.copytree(tiny.diffusers_dir, tiny.config_dir, ignore=_weight_files)
    save_file(to_original_layout(pipe), str(tiny.checkpoint))

    gen = torch.Generator("cpu").manual_seed(seed + 1)
    lora, metadata = _kohya_lora(pipe, gen)
    save_file(lora, str(tiny.lora), metadata=metadata)
    embedding = torch.randn(EMBEDDING_VECTORS, CROSS_ATTENTION_DIM, generator=gen) * 0.5
    save_file({"emb_params": embedding}, str(tiny.embedding))
    return tiny


def write_pickle_checkpoint(tiny: TinySD, dest: Path) -> Path:
    """Write the single-file weights as a pickled ``.ckpt`` (``{"state_dict": ...}``), return its path."""
    import torch
    from safetensors.torch import load_file

    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": load_file(str(tiny.checkpoint))}, dest)
    return dest


def _weight_files(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n.endswith(WEIGHT_SUFFIXES)}


# --- the model -----------------------------------------------------------------------------------------------------


# --- diffusers -> original (LDM) layout ----------------------------------------------------------------------------

UNET_RESNET = {
    "norm1.": "in_layers.0.",
    "conv1.": "in_layers.2.",
    "time_emb_proj.": "emb_layers.1.",
    "norm2.": "out_layers.0.",
    "conv2.": "out_layers.3.",
    "conv_shortcut.": "skip_connection.",
}
VAE_RESNET = {"conv_shortcut.": "nin_shortcut."}
VAE_ATTENTION = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}
NO_RENAMES: dict[str, str] = {}

# (diffusers prefix, original prefix, renames inside the block)
Prefixes = list[tuple[str, str, dict[str, str]]]


def _unet_prefixes() -> Prefixes:
    out: Prefixes = [
        ("time_embedding.linear_1.", "time_embed.0.", NO_RENAMES),
        ("time_embedding.linear_2.", "time_embed.2.", NO_RENAMES),
        ("conv_in.", "input_blocks.0.0.", NO_RENAMES),
        ("conv_norm_out.", "out.0.", NO_RENAMES),
        ("conv_out.", "out.2.", NO_RENAMES),
        ("mid_block.attentions.0.", "middle_block.1.", NO_RENAMES),
    ]
    out += [(f"mid_block.resnets.{j}.", f"middle_block.{2 * j}.", UNET_RESNET) for j in range(2)]
    for i in range(4):
        for j in range(2):  # input_blocks 1..11 hold (resnet, attention) pairs; every third is a downsampler
            out.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{3 * i + j + 1}.0.", UNET_RESNET))
            if i < 3:  # the lowest level has no attention
                out.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{3 * i + j + 1}.1.", NO_RENAMES))
        if i < 3:
            out.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{3 * i + 3}.0.op.", NO_RENAMES))
        for j in range(3):
            out.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{3 * i + j}.0.", UNET_RESNET))
            if i > 0:
                out.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{3 * i + j}.1.", NO_RENAMES))
        if i < 3:
            slot = 1 if i == 0 else 2  # the upsampler follows the attention, which up block 0 lacks
            out.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{3 * i + 2}.{slot}.", NO_RENAMES))
    return out


def _vae_prefixes() -> Prefixes:
    out: Prefixes = [(p, p, NO_RENAMES) for p in ("quant_conv.", "post_quant_conv.")]
    for part in ("encoder", "decoder"):
        out += [(f"{part}.{p}", f"{part}.{p}", NO_RENAMES) for p in ("conv_in.", "conv_out.")]
        out.append((f"{part}.conv_norm_out.", f"{part}.norm_out.", NO_RENAMES))
        out.append((f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1.", VAE_ATTENTION))
        out += [(f"{part}.mid_block.resnets.{j}.", f"{part}.mid.block_{j + 1}.", VAE_RESNET) for j in range(2)]
    for i in range(4):
        out += [(f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}.", VAE_RESNET) for j in range(2)]
        # the original decoder counts its levels from the bottom
        out += [(f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{3 - i}.block.{j}.", VAE_RESNET) for j in range(3)]
        if i < 3:
            out.append((f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample.", NO_RENAMES))
            out.append((f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{3 - i}.upsample.", NO_RENAMES))
    return out


def _rename(key: str, prefixes: Prefixes) -> str:
    for new_prefix, old_prefix, renames in prefixes:
        if key.startswith(new_prefix):
            rest = key[len(new_prefix) :]
            for new, old in renames.items():
                if rest.startswith(new):
                    rest = old + rest[len(new) :]
                    break
            return old_prefix + rest
    raise KeyError(f"no original-layout name for {key!r}")


def _convert(state: dict[str, torch.Tensor], prefixes: Prefixes, target: str) -> Iterator[tuple[str, torch.Tensor]]:
    for key, tensor in state.items():
        yield target + _rename(key, prefixes), tensor.contiguous()


def to_original_layout(pipe: StableDiffusionPipeline) -> dict[str, torch.Tensor]:
    """The pipeline's weights under the names of an A1111/LDM single-file SD 1.x checkpoint."""
    out = dict(_convert(pipe.unet.state_dict(), _unet_prefixes(), "model.diffusion_model."))
    for key, tensor in _convert(pipe.vae.state_dict(), _vae_prefixes(), "first_stage_model."):
        is_attention_linear = ".mid.attn_1." in key and key.endswith(".weight") and tensor.ndim == 2
        out[key] = tensor.reshape(*tensor.shape, 1, 1) if is_attention_linear else tensor  # original: 1x1 convs
    for key, tensor in pipe.text_encoder.state_dict().items():
        # transformers >= 5.6 drops the ``text_model.`` prefix; checkpoints always carry it
        bare = key.removeprefix("text_model.")
        out[f"cond_stage_model.transformer.text_model.{bare}"] = tensor.contiguous()
    return out


# --- kohya LoRA ----------------------------------------------------------------------------------------------------

UNET_LORA_TARGETS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k",
                     "attn2.to_v", "attn2.to_out.0", "ff.net.0.proj", "ff.net.2")  # fmt: skip
TE_LORA_TARGETS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.out_proj",
    "mlp.fc1",
    "mlp.fc2",
)


def _linear_layers(
    module: torch.nn.Module, suffixes: tuple[str, ...], inside: str = ""
) -> Iterator[tuple[str, torch.nn.Linear]]:
    """The Linear submodules whose names end with one of ``suffixes`` and contain ``inside``."""
    import torch

    for name, sub in module.named_modules():
        if isinstance(sub, torch.nn.Linear) and inside in name and name.endswith(suffixes):
            yield name, sub


def _kohya_lora(pipe: StableDiffusionPipeline, gen: torch.Generator) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Random rank-4 kohya LoRA over the UNet attention/FF layers and all CLIP layers, with kohya metadata."""
    import torch

    tensors: dict[str, torch.Tensor] = {}

    def add(kohya_name: str, layer: torch.nn.Linear) -> None:
        down = torch.randn(LORA_RANK, layer.in_features, generator=gen) / layer.in_features**0.5
        up = torch.randn(layer.out_features, LORA_RANK, generator=gen) * 0.5
        tensors[f"{kohya_name}.lora_down.weight"] = down
        tensors[f"{kohya_name}.lora_up.weight"] = up
        tensors[f"{kohya_name}.alpha"] = torch.tensor(float(LORA_RANK))

    for name, layer in _linear_layers(pipe.unet, UNET_LORA_TARGETS, inside=".transformer_blocks."):
        add("lora_unet_" + name.replace(".", "_"), layer)
    for name, layer in _linear_layers(pipe.text_encoder, TE_LORA_TARGETS):
        bare = name.removeprefix("text_model.")
        add("lora_te_text_model_" + bare.replace(".", "_"), layer)
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(LORA_RANK),
        "ss_network_alpha": str(LORA_RANK),
        "ss_base_model_version": "sd_v1",
    }
    return tensors, metadata


def repo_config_files(config_dir: Path) -> dict[str, bytes]:
    """A config folder as the SD 1.5 repository serves it: path -> bytes, with the feature extractor it names.

    As in the real repository, model_index.json names a CLIPImageProcessor whose config must be there.
    """
    import json

    files = {p.relative_to(config_dir).as_posix(): p.read_bytes() for p in config_dir.rglob("*") if p.is_file()}
    index = json.loads(files["model_index.json"])
    index["feature_extractor"] = ["transformers", "CLIPImageProcessor"]
    files["model_index.json"] = json.dumps(index, indent=2).encode()
    files["feature_extractor/preprocessor_config.json"] = json.dumps({
        "crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3, "size": 224, "feature_extractor_type": "CLIPFeatureExtractor",
    }).encode()  # fmt: skip
    return files
