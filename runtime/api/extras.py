"""``/extra-single-image`` and ``/extra-batch-images``: A1111's Extras upscaling, with Yijian's upscalers.

As A1111's upscale postprocessing: ``resize_mode`` 0 scales by
``upscaling_resize``, 1 to ``upscaling_resize_w`` x ``upscaling_resize_h``
(with ``upscaling_crop`` the image is scaled to cover that size and cut to it,
centred); the target side is rounded down to a multiple of 8 as A1111's
upscalers do; ``upscaler_1`` "None" leaves the size alone; ``upscaler_2`` is
blended in with ``extras_upscaler_2_visibility``.  Face restoration
(``gfpgan_visibility``, ``codeformer_visibility``) is not in Yijian yet: a
request that asks for it answers 501 naming it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from runtime import upscale
from runtime.api.context import ApiContext
from runtime.api.images import decode_image, encode_image
from runtime.errors import FeatureNotAvailable

CACHE = upscale.ModelCache()


class ExtrasBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    resize_mode: int = Field(0, ge=0, le=1)
    show_extras_results: bool = True
    gfpgan_visibility: float = Field(0, ge=0, le=1)
    codeformer_visibility: float = Field(0, ge=0, le=1)
    codeformer_weight: float = Field(0, ge=0, le=1)
    upscaling_resize: float = Field(2, gt=0, le=8)
    upscaling_resize_w: int = Field(512, ge=1, le=8192)
    upscaling_resize_h: int = Field(512, ge=1, le=8192)
    upscaling_crop: bool = True
    upscaler_1: str = "None"
    upscaler_2: str = "None"
    extras_upscaler_2_visibility: float = Field(0, ge=0, le=1)
    upscale_first: bool = False


class ExtrasSingleBody(ExtrasBody):
    image: str = ""


class FileData(BaseModel):
    data: str
    name: str = ""


class ExtrasBatchBody(ExtrasBody):
    imageList: list[FileData] = Field(default_factory=list)


def _target(image: Any, body: ExtrasBody) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """(the upscalers' size, the crop size or None), as A1111's upscale postprocessing computes them."""
    if body.resize_mode == 1:
        w, h = body.upscaling_resize_w, body.upscaling_resize_h
        scale = max(w / image.width, h / image.height)
        crop = (w, h) if body.upscaling_crop else None
    else:
        scale, crop = body.upscaling_resize, None
    size = (int(image.width * scale) // 8 * 8, int(image.height * scale) // 8 * 8)
    return (max(size[0], 8), max(size[1], 8)), crop


def process(image: Any, body: ExtrasBody, ctx: ApiContext) -> Any:
    from PIL import Image

    if body.upscaler_1 == "None" and (body.upscaler_2 == "None" or not body.extras_upscaler_2_visibility):
        return image
    size, crop = _target(image, body)
    engine = ctx.engine
    device = engine.placement.device if engine.placement is not None else "cpu"
    esrgan = engine.view.upscalers_dir

    def run(name: str) -> Any:
        return upscale.upscale_image(image, name, size=size, esrgan_dir=esrgan, device=device, cache=CACHE)

    out = run(body.upscaler_1) if body.upscaler_1 != "None" else image.resize(size, Image.Resampling.LANCZOS)
    if body.upscaler_2 != "None" and body.extras_upscaler_2_visibility > 0:
        out = Image.blend(out, run(body.upscaler_2), body.extras_upscaler_2_visibility)
    if crop is not None:
        canvas = Image.new("RGB", crop)
        canvas.paste(out, (crop[0] // 2 - out.width // 2, crop[1] // 2 - out.height // 2))
        out = canvas
    return out


def _check(body: ExtrasBody) -> None:
    if body.gfpgan_visibility or body.codeformer_visibility:
        raise FeatureNotAvailable(feature="face restoration (GFPGAN / CodeFormer) in Extras",
                                  feature_zh="附加功能里的面部修复（GFPGAN / CodeFormer）")  # fmt: skip


def router(ctx: ApiContext) -> APIRouter:
    r = APIRouter()

    @r.post("/extra-single-image")
    def single(body: ExtrasSingleBody) -> dict[str, str]:
        _check(body)
        image = decode_image(body.image, "image")
        out = ctx.engine.exclusive(lambda: process(image, body, ctx))
        return {"html_info": "", "image": encode_image(out) if body.show_extras_results else ""}

    @r.post("/extra-batch-images")
    def batch(body: ExtrasBatchBody) -> dict[str, Any]:
        _check(body)
        images = [decode_image(f.data, f"imageList[{i}].data") for i, f in enumerate(body.imageList)]
        outs = ctx.engine.exclusive(lambda: [process(im, body, ctx) for im in images])
        return {"html_info": "", "images": [encode_image(o) for o in outs] if body.show_extras_results else []}

    return r
