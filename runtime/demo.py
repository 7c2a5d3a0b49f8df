"""The demo model: a tiny Stable Diffusion 1.x with random weights, built on the spot.

``python -m runtime --demo`` uses it so the UI, the API and the whole
launch path can be tried on a machine with no model (and the test suite
builds its fixtures from the same code).  It draws coloured noise, and every
place that shows the model's name says so.  The layout is SD 1.x (4 UNet and
VAE levels, 2 resnets each, a CLIP text encoder with a byte-level BPE
tokenizer) at widths of 8-32 instead of 320-1280: about 260 k parameters,
built in well under a second, and nothing is downloaded.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

DEMO_NAME = "demo-random-weights"  # shown as the model name; the UI adds a banner that it draws noise
CROSS_ATTENTION_DIM = 32  # CLIP hidden size == UNet cross-attention width (768 in a real SD 1.x)
IMAGE_SIZE = 64  # the UNet's nominal sample size x 8; any multiple of 64 works

# SD 1.5's scheduler settings (PNDM, as in the real model_index.json).
SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "skip_prk_steps": True,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "timestep_spacing": "leading",
}

# SD's VAE (4 levels, 4 latent channels) at widths 8-16; SDXL's differs only in its scaling factor.
VAE_CONFIG = {
    "sample_size": IMAGE_SIZE,
    "layers_per_block": 2,
    "block_out_channels": (8, 8, 16, 16),
    "norm_num_groups": 4,
    "latent_channels": 4,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
}


def byte_alphabet() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for the bytes 0..255, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def write_tokenizer_sources(folder: Path) -> None:
    """vocab.json + merges.txt of a minimal CLIP BPE: bytes, bytes + ``</w>``, ``cat``, specials."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = byte_alphabet()
    tokens = [*alphabet, *(c + "</w>" for c in alphabet), "ca", "cat</w>", "<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\nc a\nca t</w>\n", encoding="utf-8")


def build_demo_pipeline(seed: int = 0) -> StableDiffusionPipeline:
    """The tiny random SD 1.x pipeline; the same ``seed`` gives the same weights."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as src:
        torch.manual_seed(seed)  # the constructors draw from the global RNG; fork_rng restores it after
        write_tokenizer_sources(Path(src))
        tokenizer = CLIPTokenizer.from_pretrained(src, model_max_length=77)
        vocab = tokenizer.get_vocab()
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                hidden_size=CROSS_ATTENTION_DIM,
                intermediate_size=37,
                num_attention_heads=4,
                num_hidden_layers=2,
                vocab_size=len(vocab),
                bos_token_id=vocab["<|startoftext|>"],
                eos_token_id=vocab["<|endoftext|>"],
                pad_token_id=vocab["<|endoftext|>"],
                max_position_embeddings=77,
            )
        )
        unet = UNet2DConditionModel(
            sample_size=IMAGE_SIZE // 8,
            layers_per_block=2,
            block_out_channels=(8, 8, 16, 16),
            norm_num_groups=4,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=CROSS_ATTENTION_DIM,
            attention_head_dim=2,
        )
        vae = AutoencoderKL(**VAE_CONFIG)
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=PNDMScheduler(**SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
