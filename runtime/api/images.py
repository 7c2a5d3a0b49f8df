"""Images in and out of the API: base64 (with or without a ``data:`` prefix), PNG with the parameters text."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from runtime.errors import InvalidRequest


def decode_image(data: str, field: str) -> Any:
    """A base64-encoded image as an RGB PIL image; a broken one is a 422 naming ``field``."""
    from PIL import Image, UnidentifiedImageError

    raw = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        return Image.open(io.BytesIO(base64.b64decode(raw, validate=False))).convert("RGB")
    except (binascii.Error, UnidentifiedImageError, ValueError, OSError) as e:
        raise InvalidRequest(f"not a base64-encoded image ({e})", field=field,
                             detail_zh=f"不是 base64 编码的图片（{e}）") from e  # fmt: skip


def encode_image(image: Any, infotext: str | None = None) -> str:
    """``image`` as base64 PNG, with A1111's ``parameters`` text chunk when ``infotext`` is given."""
    from runtime.pnginfo import pnginfo_for

    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=pnginfo_for(infotext) if infotext else None)
    return base64.b64encode(buf.getvalue()).decode("ascii")
