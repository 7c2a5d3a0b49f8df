"""Upscalers for the hires fix ("upscale, then a second img2img pass") and for extras.

Names are AUTOMATIC1111's: six latent modes ("Latent", "Latent (antialiased)",
"Latent (bicubic)" …), "Lanczos", "Nearest", "None", and one entry per model
file in ``models/ESRGAN`` (.pth, .pt, .safetensors), named by its stem::

    upscalers = list_upscalers(bundle / "models" / "ESRGAN")
    if is_latent(name):
        latents = upscale_latents(latents, name, size=(width // 8, height // 8))
    else:
        image = upscale_image(image, name, size=(width, height), esrgan_dir=..., device="cuda", cache=cache)

The ESRGAN-family networks are Yijian's own code (``esrgan.py``); model files
are read without unpickling code (``loader.py``).
"""

from __future__ import annotations

from runtime.upscale.errors import UpscalerNotFound, UpscalerUnsupported
from runtime.upscale.esrgan import RRDBNet, SRNet, SRVGGNetCompact
from runtime.upscale.image import default_dtype, resize, run_tiled, upscale_image, upscale_with_model
from runtime.upscale.latent import upscale_latents
from runtime.upscale.loader import ModelCache, build_network, load_model, read_state_dict
from runtime.upscale.registry import (
    LATENT_MODES,
    Kind,
    LatentMode,
    UpscalerInfo,
    find_upscaler,
    is_latent,
    latent_mode,
    list_upscalers,
)

__all__ = [
    "LATENT_MODES",
    "Kind",
    "LatentMode",
    "ModelCache",
    "RRDBNet",
    "SRNet",
    "SRVGGNetCompact",
    "UpscalerInfo",
    "UpscalerNotFound",
    "UpscalerUnsupported",
    "build_network",
    "default_dtype",
    "find_upscaler",
    "is_latent",
    "latent_mode",
    "list_upscalers",
    "load_model",
    "read_state_dict",
    "resize",
    "run_tiled",
    "upscale_image",
    "upscale_latents",
    "upscale_with_model",
]
