"""Upscale a decoded image: a PIL resample, or an ESRGAN-family model run in tiles.

A model has a fixed factor (×1, ×2, ×4 …).  As in A1111, it is run up to three
times until the image covers the target size, and the result is then resized
to the exact target with Lanczos.  Tiles (with ``tile_pad`` pixels of context
on each side, discarded afterwards) keep memory bounded, so a 2048² image
never goes through the network in one piece.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from runtime.upscale.esrgan import SRNet
from runtime.upscale.loader import ModelCache, load_model
from runtime.upscale.registry import Kind, UpscalerInfo, find_upscaler

MAX_PASSES = 3
DEFAULT_TILE = 192  # input pixels per tile side; 0 turns tiling off
DEFAULT_TILE_PAD = 16
MODES = {1: "L", 3: "RGB", 4: "RGBA"}
RESAMPLE = {"lanczos": Image.Resampling.LANCZOS, "nearest": Image.Resampling.NEAREST}

TileProgress = Callable[[int, int], None]  # (tiles done, tiles in all); raise in it to cancel


def default_dtype(device: torch.device | str) -> torch.dtype:
    """float16 on CUDA, float32 elsewhere."""
    return torch.float16 if torch.device(device).type == "cuda" else torch.float32


def _spans(length: int, tile: int) -> list[tuple[int, int]]:
    """Split ``length`` into near-equal pieces of at most ``tile`` (so no sliver at the end)."""
    count = max(1, math.ceil(length / tile)) if tile > 0 else 1
    step = math.ceil(length / count)
    return [(start, min(start + step, length)) for start in range(0, length, step)]


def run_tiled(
    model: SRNet,
    pixels: Tensor,
    *,
    tile: int = DEFAULT_TILE,
    tile_pad: int = DEFAULT_TILE_PAD,
    on_tile: TileProgress | None = None,
) -> Tensor:
    """Run ``model`` over ``pixels`` (1, C, H, W, in [0, 1], any device) tile by tile.

    Each tile is fed with ``tile_pad`` pixels of its neighbours around it (more
    to keep a pixel-unshuffle grid aligned), and only its own part of the
    output is kept.  The result is float32 on the CPU.
    """
    param = next(model.parameters())
    _, _, height, width = pixels.shape
    s, a = model.scale, model.align
    out = torch.empty((1, model.out_channels, height * s, width * s), dtype=torch.float32)
    tiles = [(ys, xs) for ys in _spans(height, tile) for xs in _spans(width, tile)]
    with torch.inference_mode():
        for done, ((y0, y1), (x0, x1)) in enumerate(tiles, 1):
            py0, px0 = max(y0 - tile_pad, 0) // a * a, max(x0 - tile_pad, 0) // a * a
            py1, px1 = min(-(-(y1 + tile_pad) // a) * a, height), min(-(-(x1 + tile_pad) // a) * a, width)
            piece = pixels[..., py0:py1, px0:px1].to(device=param.device, dtype=param.dtype)
            result = model(piece)
            oy, ox = (y0 - py0) * s, (x0 - px0) * s
            kept = result[..., oy : oy + (y1 - y0) * s, ox : ox + (x1 - x0) * s]
            out[..., y0 * s : y1 * s, x0 * s : x1 * s] = kept.float().cpu()
            if on_tile is not None:
                on_tile(done, len(tiles))
    return out


def to_tensor(image: Image.Image, channels: int) -> Tensor:
    array = np.asarray(image.convert(MODES[channels]), dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_image(pixels: Tensor) -> Image.Image:
    array = pixels[0].clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array, MODES[array.shape[2]])


def upscale_with_model(
    model: SRNet,
    image: Image.Image,
    *,
    tile: int = DEFAULT_TILE,
    tile_pad: int = DEFAULT_TILE_PAD,
    on_tile: TileProgress | None = None,
) -> Image.Image:
    """One pass of ``model``: the image ``model.scale`` times larger.

    An image with alpha through a colour-only model keeps its alpha, resized with Lanczos.
    """
    if model.in_channels not in MODES or model.out_channels not in MODES:
        raise ValueError(f"a model with {model.in_channels} → {model.out_channels} channels has no image mode")
    alpha = image.getchannel("A") if "A" in image.getbands() and model.in_channels != 4 else None
    result = to_image(
        run_tiled(model, to_tensor(image, model.in_channels), tile=tile, tile_pad=tile_pad, on_tile=on_tile)
    )
    if alpha is not None and result.mode == "RGB":
        result.putalpha(alpha.resize(result.size, Image.Resampling.LANCZOS))
    return result


def resize(image: Image.Image, size: tuple[int, int], resample: str = "lanczos") -> Image.Image:
    """Resize to exactly ``size`` (width, height); the same image when it already is that size."""
    return image if image.size == size else image.resize(size, RESAMPLE[resample])


def target_size(image: Image.Image, scale: float | None, size: tuple[int, int] | None) -> tuple[int, int]:
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    if size is None:
        assert scale is not None
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    if size[0] < 1 or size[1] < 1:
        raise ValueError(f"the target size must be positive, not {size}")
    return size


def upscale_image(
    image: Image.Image,
    upscaler: str | UpscalerInfo,
    *,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    esrgan_dir: Path | Sequence[Path] = (),
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    tile: int = DEFAULT_TILE,
    tile_pad: int = DEFAULT_TILE_PAD,
    cache: ModelCache | None = None,
    on_tile: TileProgress | None = None,
) -> Image.Image:
    """``image`` upscaled by ``upscaler`` (an A1111 name or an entry of ``list_upscalers``).

    Give ``scale`` or the exact target ``size`` (width, height).  A model name
    is looked up in ``esrgan_dir``; ``cache`` keeps the model loaded between
    calls (without one it is read each time).  ``dtype`` defaults to float16 on
    CUDA and float32 elsewhere.  Latent upscalers do not apply to images: the
    caller uses ``upscale_latents`` for them.
    """
    info = upscaler if isinstance(upscaler, UpscalerInfo) else find_upscaler(upscaler, esrgan_dir)
    want = target_size(image, scale, size)
    if info.kind is Kind.LATENT:
        raise ValueError(f"{info.name!r} upscales latents, not images: use upscale_latents")
    if info.kind is Kind.RESAMPLE:
        return resize(image, want, info.resample or "lanczos")
    if info.path is None:
        raise ValueError(f"the model upscaler {info.name!r} has no file")
    same_size = image.size == want  # A1111 runs a model once at scale 1 (a 1x sharpening or denoising model)
    if image.width >= want[0] and image.height >= want[1] and not same_size:
        return resize(image, want)  # nothing to enlarge: the model would only be undone
    dtype = dtype or default_dtype(device)
    model = (
        cache.get(info.path, device=device, dtype=dtype) if cache else load_model(info.path, device=device, dtype=dtype)
    )
    for attempt in range(MAX_PASSES):
        if image.width >= want[0] and image.height >= want[1] and not (attempt == 0 and same_size):
            break
        before = image.size
        image = upscale_with_model(model, image, tile=tile, tile_pad=tile_pad, on_tile=on_tile)
        if image.size == before:  # a ×1 model (sharpening, denoising) runs once
            break
    return resize(image, want)
