"""Inpainting checkpoints: a UNet whose first convolution takes 9 channels (latents, mask, masked-image latents).

SD 1.5 and SDXL inpainting models (``sd-v1-5-inpainting``,
``sd_xl_base_1.0_inpainting``, and their fine-tunes) share their
architecture's config folder with the normal models except for that number,
so a single file is recognised from its header (the shape of
``input_blocks.0.0.weight``) and its UNet is built with ``in_channels=9``
before the pipeline is assembled around it.  A diffusers folder says it in
``unet/config.json`` and needs nothing here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.inpaint.latents import INPAINTING_CHANNELS

CONV_IN = "model.diffusion_model.input_blocks.0.0.weight"


def unet_in_channels(path: Path) -> int | None:
    """The input channels of a single-file checkpoint's UNet, from its header; None when it cannot tell."""
    if path.suffix.lower() != ".safetensors":
        return None
    from launcher.models.safetensors_header import HeaderError, read_header

    try:
        shape = read_header(path).shape(CONV_IN)
    except (HeaderError, OSError):
        return None
    return shape[1] if shape and len(shape) == 4 else None


def is_inpainting_file(path: Path) -> bool:
    return unet_in_channels(path) == INPAINTING_CHANNELS


def single_file_overrides(path: Path, config: Path, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Components to hand to ``from_single_file``: a 9-channel UNet for an inpainting checkpoint, else nothing."""
    if not is_inpainting_file(path):
        return {}
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_single_file(str(path), config=str(config), subfolder="unet",
                                                 in_channels=INPAINTING_CHANNELS, **kwargs)  # fmt: skip
    return {"unet": unet}
