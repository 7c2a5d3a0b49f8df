"""The inpainting fields of a request: their checks, and the API body's fields mapped onto a request."""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runtime.errors import InvalidRequest

if TYPE_CHECKING:
    from PIL import Image

    from runtime.request import GenerationRequest

MAX_BLUR = 64  # A1111's UI slider ends here; the API takes more, the blur only gets wider
MAX_PADDING = 256


def check_inpaint_fields(req: GenerationRequest, bad: Callable[[str, str, str], InvalidRequest]) -> None:
    """Raise ``bad(field, zh, en)`` for the first inpainting field out of range."""
    if not 0 <= req.resize_mode <= 3:
        raise bad("resize_mode", "应为 0 到 3（仅调整大小、裁剪后缩放、缩放后填充空白、调整大小（潜空间放大））",
                  "must be 0 to 3 (just resize, crop and resize, resize and fill, just resize (latent upscale))")  # fmt: skip
    for name in ("mask_blur_x", "mask_blur_y"):
        v = getattr(req, name)
        if not 0 <= v <= 4 * MAX_BLUR:
            raise bad(name, f"{v} 不在 0 到 {4 * MAX_BLUR} 之间", f"{v} is not between 0 and {4 * MAX_BLUR}")
    if req.inpainting_fill not in (0, 1, 2, 3):
        raise bad("inpainting_fill", "应为 0 填充、1 原图、2 潜空间噪声、3 潜空间数值零",
                  "must be 0 fill, 1 original, 2 latent noise or 3 latent nothing")  # fmt: skip
    if not 0 <= req.inpaint_full_res_padding <= 4 * MAX_PADDING:
        raise bad("inpaint_full_res_padding", f"应在 0 到 {4 * MAX_PADDING} 像素之间",
                  f"must be 0 to {4 * MAX_PADDING} pixels")  # fmt: skip
    if req.inpainting_mask_invert not in (0, 1):
        raise bad("inpainting_mask_invert", "应为 0（重绘蒙版内容）或 1（重绘非蒙版内容）",
                  "must be 0 (inpaint masked) or 1 (inpaint not masked)")  # fmt: skip
    if not 0 <= req.noise_multiplier <= 1.5:
        raise bad("initial_noise_multiplier", "应在 0 到 1.5 之间", "must be between 0 and 1.5")


def decode_mask(data: str) -> Image.Image:
    """The API's base64 mask, its transparency kept (A1111 takes the alpha of a partly transparent mask)."""
    from PIL import Image, UnidentifiedImageError

    raw = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        image = Image.open(io.BytesIO(base64.b64decode(raw, validate=False)))
        image.load()
    except (binascii.Error, UnidentifiedImageError, ValueError, OSError) as e:
        raise InvalidRequest(f"not a base64-encoded image ({e})", field="mask",
                             detail_zh=f"不是 base64 编码的图片（{e}）") from e  # fmt: skip
    return image if image.mode in ("RGBA", "L", "RGB") else image.convert("RGBA")


def apply_api_fields(body: Any, req: GenerationRequest) -> None:
    """Copy A1111's img2img inpainting fields (and ``resize_mode``) of an API body onto ``req``."""
    if body.mask:
        req.mask = decode_mask(body.mask)
    req.resize_mode = body.resize_mode
    req.mask_blur_x, req.mask_blur_y = body.mask_blur_x, body.mask_blur_y
    if body.mask_blur is not None:  # A1111: mask_blur, when given, sets both
        req.mask_blur_x = req.mask_blur_y = body.mask_blur
    req.mask_round = body.mask_round
    req.inpainting_fill = body.inpainting_fill
    req.inpaint_full_res = bool(body.inpaint_full_res)
    req.inpaint_full_res_padding = body.inpaint_full_res_padding
    req.inpainting_mask_invert = body.inpainting_mask_invert
    req.initial_noise_multiplier = body.initial_noise_multiplier
