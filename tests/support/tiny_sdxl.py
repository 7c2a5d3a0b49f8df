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
ship them: one safetensors file with a ``clip_l`` and a ``clip_g`` vector set.

The cross-attention width is not 2048, so the launcher's library reports the folder as
``unknown (cross-attention 80)``; the runtime recognises it as SDXL by its second text
encoder when it loads.  All weights derive from ``seed``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.demo import IMAGE_SIZE, write_tokenizer_sources

__all__ = [
    "CROSS_ATTENTION_DIM",
    "IMAGE_SIZE",
    "POOLED_WIDTH",
    "TinySDXL",
    "build_tiny_sdxl",
    "build_tiny_sdxl_pipeline",
]

if TYPE_CHECKING:
    from diffusers import StableDiffusionXLPipeline

TEXT_WIDTH = 32  # CLIP ViT-L stand-in (768 in SDXL)
TEXT_WIDTH_2 = 48  # OpenCLIP ViT-bigG stand-in (1280 in SDXL)
POOLED_WIDTH = 24  # text_encoder_2's projection_dim (1280 in SDXL)
TIME_EMBED_WIDTH = 8  # addition_time_embed_dim (256 in SDXL)
CROSS_ATTENTION_DIM = TEXT_WIDTH + TEXT_WIDTH_2  # both encoders' hidden states side by side (2048 in SDXL)
ADDED_COND_DIM = POOLED_WIDTH + 6 * TIME_EMBED_WIDTH  # pooled text + (original size, crop, target size) (2816)
EMBEDDING_VECTORS = 2

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


def build_tiny_sdxl(dest: Path, *, seed: int = 0) -> TinySDXL:
    """Build the artefacts under ``dest`` (created if needed); same seed, same weights."""
    import torch
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    dest.mkdir(parents=True, exist_ok=True)
    tiny = TinySDXL(diffusers_dir=dest / "diffusers", embedding=dest / "tiny-xl-embedding.safetensors")
    build_tiny_sdxl_pipeline(seed).save_pretrained(tiny.diffusers_dir, safe_serialization=True)
    gen = torch.Generator("cpu").manual_seed(seed + 1)
    vectors = {name: torch.randn(EMBEDDING_VECTORS, width, generator=gen) * 0.5
               for name, width in (("clip_l", TEXT_WIDTH), ("clip_g", TEXT_WIDTH_2))}  # fmt: skip
    save_file(vectors, str(tiny.embedding))
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
        vae = AutoencoderKL(
            sample_size=IMAGE_SIZE,
            layers_per_block=2,
            block_out_channels=(8, 8, 16, 16),
            norm_num_groups=4,
            latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            scaling_factor=0.13025,
            force_upcast=True,
        )
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
