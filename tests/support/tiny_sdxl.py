"""A tiny random-weight SDXL model, built offline in well under a second after imports.

:func:`build_tiny_sdxl` writes a ``StableDiffusionXLPipeline`` as a diffusers folder
(safetensors) with the real SDXL layout at tiny widths, so the engine's SDXL path runs end
to end on the CPU:

* two text encoders, as in SDXL: ``text_encoder`` a ``CLIPTextModel`` (the CLIP-L
  stand-in, width :data:`TEXT_WIDTH`) and ``text_encoder_2`` a
  ``CLIPTextModelWithProjection`` (the OpenCLIP-G stand-in, width :data:`TEXT_WIDTH_2`,
  pooled projection :data:`POOLED_WIDTH`).  The three widths differ on purpose: an
  engine that mixes the encoders up, or pools from the wrong one, fails on a shape;
* two CLIP tokenizers over :func:`runtime.demo.write_tokenizer_sources`' byte-level
  vocabulary; the second pads with ``!`` as SDXL's OpenCLIP tokenizer does;
* a UNet with SDXL's three levels (no attention at the top one), linear projections,
  ``transformer_layers_per_block`` growing with depth, cross-attention over both
  encoders' hidden states concatenated (:data:`CROSS_ATTENTION_DIM`) and the
  ``text_time`` added conditioning: the pooled text embedding plus six size/crop
  numbers of :data:`TIME_EMBED_WIDTH` each (``add_time_ids``);
* SDXL's VAE settings (scaling factor 0.13025, ``force_upcast``) on 4 levels, 8x down;
* SDXL's own scheduler, ``EulerDiscreteScheduler`` with its ``model_index.json`` settings.

Next to the folder it writes an SDXL textual-inversion embedding as A1111 and Civitai
ship them: one safetensors file with a ``clip_l`` and a ``clip_g`` vector set; and an SDXL
LoRA as kohya's sd-scripts writes them (see :func:`kohya_sdxl_lora_targets`):
``lora_te1_*`` for CLIP-L, ``lora_te2_*`` for OpenCLIP-G and ``lora_unet_*`` named after
the original (sgm) SDXL UNet's ``input_blocks``/``middle_block``/``output_blocks``, each
with ``lora_down``/``lora_up``/``alpha`` and kohya's safetensors metadata.

The cross-attention width is not 2048, so the launcher's library reports the folder as
``unknown (cross-attention 80)``; the runtime recognises it as SDXL by its second text
encoder when it loads.  All weights derive from ``seed``.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.demo import IMAGE_SIZE, VAE_CONFIG, write_tokenizer_sources

__all__ = [
    "CROSS_ATTENTION_DIM",
    "IMAGE_SIZE",
    "POOLED_WIDTH",
    "TEXT_WIDTH",
    "TinySDXL",
    "build_tiny_sdxl",
    "build_tiny_sdxl_pipeline",
    "kohya_sdxl_lora_targets",
]

if TYPE_CHECKING:
    import torch
    from diffusers import StableDiffusionXLPipeline

TEXT_WIDTH = 32  # CLIP ViT-L stand-in (768 in SDXL)
TEXT_WIDTH_2 = 48  # OpenCLIP ViT-bigG stand-in (1280 in SDXL)
POOLED_WIDTH = 24  # text_encoder_2's projection_dim (1280 in SDXL)
TIME_EMBED_WIDTH = 8  # addition_time_embed_dim (256 in SDXL)
CROSS_ATTENTION_DIM = TEXT_WIDTH + TEXT_WIDTH_2  # both encoders' hidden states side by side (2048 in SDXL)
ADDED_COND_DIM = POOLED_WIDTH + 6 * TIME_EMBED_WIDTH  # pooled text + (original size, crop, target size) (2816)
EMBEDDING_VECTORS = 2
LORA_RANK = 4

# SDXL base 1.0's scheduler/scheduler_config.json, minus the keys Euler ignores.
SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "interpolation_type": "linear",
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "use_karras_sigmas": False,
}


@dataclass(frozen=True)
class TinySDXL:
    """Paths of one built tiny SDXL model; see the module docstring."""

    diffusers_dir: Path
    embedding: Path
    lora: Path


def build_tiny_sdxl(dest: Path, *, seed: int = 0) -> TinySDXL:
    """Build the artefacts under ``dest`` (created if needed); same seed, same weights."""
    import torch
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    dest.mkdir(parents=True, exist_ok=True)
    tiny = TinySDXL(
        diffusers_dir=dest / "diffusers",
        embedding=dest / "tiny-xl-embedding.safetensors",
        lora=dest / "tiny-xl-lora.safetensors",
    )
    pipe = build_tiny_sdxl_pipeline(seed)
    pipe.save_pretrained(tiny.diffusers_dir, safe_serialization=True)
    gen = torch.Generator("cpu").manual_seed(seed + 1)
    vectors = {name: torch.randn(EMBEDDING_VECTORS, width, generator=gen) * 0.5
               for name, width in (("clip_l", TEXT_WIDTH), ("clip_g", TEXT_WIDTH_2))}  # fmt: skip
    save_file(vectors, str(tiny.embedding))
    lora, metadata = _kohya_sdxl_lora(pipe, gen)
    save_file(lora, str(tiny.lora), metadata=metadata)
    return tiny


def build_tiny_sdxl_pipeline(seed: int = 0) -> StableDiffusionXLPipeline:
    """The tiny random SDXL pipeline; see the module docstring."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as src:
        torch.manual_seed(seed)  # the constructors draw from the global RNG; fork_rng restores it after
        write_tokenizer_sources(Path(src))
        tokenizer = CLIPTokenizer.from_pretrained(src, model_max_length=77)
        tokenizer_2 = CLIPTokenizer.from_pretrained(src, model_max_length=77, pad_token="!")
        vocab = tokenizer.get_vocab()

        def text_config(width: int, pad: str, **extra: int) -> CLIPTextConfig:
            return CLIPTextConfig(
                hidden_size=width,
                intermediate_size=2 * width + 5,
                num_attention_heads=4,
                num_hidden_layers=3,  # clip skip 2 reads a real layer, not the token embeddings
                hidden_act="gelu",  # OpenCLIP's activation; SD 1.x's CLIP-L uses quick_gelu
                vocab_size=len(vocab),
                bos_token_id=vocab["<|startoftext|>"],
                eos_token_id=vocab["<|endoftext|>"],
                pad_token_id=vocab[pad],
                max_position_embeddings=77,
                **extra,
            )

        text_encoder = CLIPTextModel(text_config(TEXT_WIDTH, "<|endoftext|>"))
        text_encoder_2 = CLIPTextModelWithProjection(text_config(TEXT_WIDTH_2, "!", projection_dim=POOLED_WIDTH))
        unet = UNet2DConditionModel(
            sample_size=IMAGE_SIZE // 8,
            layers_per_block=2,
            block_out_channels=(8, 16, 32),
            norm_num_groups=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 1, 2),
            attention_head_dim=(2, 2, 4),  # SDXL's config names head counts so (5, 10, 20)
            use_linear_projection=True,
            cross_attention_dim=CROSS_ATTENTION_DIM,
            addition_embed_type="text_time",
            addition_time_embed_dim=TIME_EMBED_WIDTH,
            projection_class_embeddings_input_dim=ADDED_COND_DIM,
        )
        vae = AutoencoderKL(**VAE_CONFIG, scaling_factor=0.13025, force_upcast=True)
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=EulerDiscreteScheduler(**SCHEDULER_CONFIG),
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )


# --- kohya SDXL LoRA ----------------------------------------------------------------------------------------------

# kohya's default LoRA (networks.lora) wraps every Linear of the UNet's transformer blocks (Transformer2DModel:
# proj_in/proj_out, attention and feed-forward) and of the CLIP encoder layers.
UNET_LORA_TARGETS = ("proj_in", "proj_out", "attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
                     "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0", "ff.net.0.proj", "ff.net.2")  # fmt: skip
TE_LORA_TARGETS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.out_proj",
    "mlp.fc1",
    "mlp.fc2",
)


def _sgm_attention_block(diffusers_block: str, layers_per_block: int) -> str:
    """The original SDXL UNet's name for a diffusers UNet's attention module (``down_blocks.1.attentions.0``).

    The sgm UNet numbers its blocks flat: ``input_blocks.0`` is conv_in, then each level has
    ``layers_per_block`` (resnet, attention) pairs and one downsampler; ``output_blocks`` has
    ``layers_per_block + 1`` pairs a level; ``middle_block`` is (resnet, attention, resnet).
    The attention is always sub-module 1 of its block.
    """
    if diffusers_block == "mid_block.attentions.0":
        return "middle_block.1"
    match = re.fullmatch(r"(down|up)_blocks\.(\d+)\.attentions\.(\d+)", diffusers_block)
    assert match, diffusers_block
    level, layer = int(match[2]), int(match[3])
    if match[1] == "down":
        return f"input_blocks.{1 + level * (layers_per_block + 1) + layer}.1"
    return f"output_blocks.{level * (layers_per_block + 1) + layer}.1"


def kohya_sdxl_lora_targets(pipe: StableDiffusionXLPipeline) -> Iterator[tuple[str, str, str, torch.nn.Linear]]:
    """(kohya LoRA name, pipeline component, module name in it, layer) for each layer the SDXL LoRA wraps."""
    import torch

    for component, prefix in (("text_encoder", "lora_te1_"), ("text_encoder_2", "lora_te2_")):
        for name, layer in getattr(pipe, component).named_modules():
            if isinstance(layer, torch.nn.Linear) and name.endswith(TE_LORA_TARGETS):
                # transformers >= 5.6 drops CLIPTextModel's ``text_model.`` prefix; kohya's names always carry it
                bare = name.removeprefix("text_model.")
                yield prefix + "text_model_" + bare.replace(".", "_"), component, name, layer
    layers_per_block = pipe.unet.config.layers_per_block
    for name, layer in pipe.unet.named_modules():
        if isinstance(layer, torch.nn.Linear) and ".attentions." in name and name.endswith(UNET_LORA_TARGETS):
            match = re.fullmatch(r"(.*?\.attentions\.\d+)\.(.*)", name)
            assert match, name
            sgm = _sgm_attention_block(match[1], layers_per_block) + "." + match[2]
            yield "lora_unet_" + sgm.replace(".", "_"), "unet", name, layer


def _kohya_sdxl_lora(
    pipe: StableDiffusionXLPipeline, gen: torch.Generator
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Random rank-4 kohya SDXL LoRA over :func:`kohya_sdxl_lora_targets`, with kohya metadata."""
    import torch

    tensors: dict[str, torch.Tensor] = {}
    for kohya_name, _component, _name, layer in kohya_sdxl_lora_targets(pipe):
        tensors[f"{kohya_name}.lora_down.weight"] = (
            torch.randn(LORA_RANK, layer.in_features, generator=gen) / layer.in_features**0.5
        )
        tensors[f"{kohya_name}.lora_up.weight"] = torch.randn(layer.out_features, LORA_RANK, generator=gen) * 0.5
        tensors[f"{kohya_name}.alpha"] = torch.tensor(float(LORA_RANK))
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(LORA_RANK),
        "ss_network_alpha": str(LORA_RANK),
        "ss_base_model_version": "sdxl_base_v1-0",
    }
    return tensors, metadata
