"""Tiny random inpainting models: the tiny SD 1.x and SDXL stand-ins with a 9-channel UNet.

An inpainting checkpoint differs from its base only in the UNet's first
convolution, which reads 9 channels: the noisy latents (4), the mask (1) and
the VAE latents of the masked image (4), concatenated in that order.
:func:`build_tiny_inpaint` writes the SD 1.x one as a diffusers folder and
as one ``.safetensors`` file in the original (A1111) layout, whose header
shows ``input_blocks.0.0.weight`` with 9 input channels;
:func:`build_tiny_sdxl_inpaint` writes the SDXL one as a diffusers folder.
The extra input weights are drawn large on purpose, so that the mask and the
masked image visibly steer the output.  All weights derive from ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from runtime.demo import build_demo_pipeline
from tests.support.tiny_sd import to_original_layout

IN_CHANNELS = 9


@dataclass(frozen=True)
class TinyInpaint:
    diffusers_dir: Path
    checkpoint: Path


def inpainting_unet(unet: Any, seed: int) -> Any:
    """A copy of ``unet`` whose ``conv_in`` takes 9 channels: the first 4 as before, 5 new ones random."""
    import torch
    from diffusers import UNet2DConditionModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wide = UNet2DConditionModel.from_config(unet.config, in_channels=IN_CHANNELS)
        state = unet.state_dict()
        old = state["conv_in.weight"]
        extra = torch.randn(old.shape[0], IN_CHANNELS - old.shape[1], *old.shape[2:]) * old.abs().max() * 4
        state["conv_in.weight"] = torch.cat([old, extra], dim=1)
    wide.load_state_dict(state)
    return wide


def build_tiny_inpaint(dest: Path, *, seed: int = 0) -> TinyInpaint:
    from safetensors.torch import save_file

    dest.mkdir(parents=True, exist_ok=True)
    pipe = build_demo_pipeline(seed)
    pipe.unet = inpainting_unet(pipe.unet, seed + 7)
    tiny = TinyInpaint(dest / "diffusers", dest / "tiny-sd15-inpainting.safetensors")
    pipe.save_pretrained(tiny.diffusers_dir, safe_serialization=True)
    save_file(to_original_layout(pipe), str(tiny.checkpoint))
    return tiny


def build_tiny_sdxl_inpaint(dest: Path, *, seed: int = 0) -> Path:
    """The tiny SDXL with a 9-channel UNet, as a diffusers folder (returned)."""
    from tests.support.tiny_sdxl import build_tiny_sdxl_pipeline

    pipe = build_tiny_sdxl_pipeline(seed)
    pipe.unet = inpainting_unet(pipe.unet, seed + 7)
    folder = dest / "tiny-xl-inpainting"
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def noise_image(w: int, h: int, seed: int = 0) -> Image.Image:
    """A picture of random pixels: any pixel a model repaints shows."""
    return Image.fromarray((np.random.RandomState(seed).rand(h, w, 3) * 255).astype(np.uint8))


def box_mask(w: int, h: int, box: tuple[int, int, int, int]) -> Image.Image:
    """A black mask, white (inpaint) inside ``box`` (x1, y1, x2, y2)."""
    m = Image.new("L", (w, h), 0)
    m.paste(255, box)
    return m
