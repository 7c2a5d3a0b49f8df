"""``/extra-single-image`` and ``/extra-batch-images``: A1111's Extras through its API.

Request and response shapes are A1111 1.10's (ExtrasBaseRequest, ExtrasSingleImageRequest,
ExtrasBatchImagesRequest); the work is :mod:`runtime.extras` (A1111's upscale rules), under the engine's
lock.  As in A1111 the API returns the images and saves none (the Extras tab saves); ``html_info`` is the
``postprocessing`` text as A1111's ``plaintext_to_html`` writes it.  Face restoration, which this version
does not have, answers 501 naming it.
"""

from __future__ import annotations

import base64
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from runtime.api.context import ApiContext
from runtime.api.images import decode_image
from runtime.errors import InvalidRequest
from runtime.extras import ExtrasOptions, encode_png, html_info, infotext, png_texts


class ExtrasBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    resize_mode: Literal[0, 1] = 0
    show_extras_results: bool = True
    gfpgan_visibility: float = Field(0, ge=0, le=1)
    codeformer_visibility: float = Field(0, ge=0, le=1)
    codeformer_weight: float = Field(0, ge=0, le=1)
    upscaling_resize: float = Field(2, ge=1, le=8)
    upscaling_resize_w: int = Field(512, ge=1)
    upscaling_resize_h: int = Field(512, ge=1)
    upscaling_crop: bool = True
    upscaler_1: str = "None"
    upscaler_2: str = "None"
    extras_upscaler_2_visibility: float = Field(0, ge=0, le=1)
    upscale_first: bool = False  # A1111 >= 1.6 accepts it and orders the steps itself

    def options(self) -> ExtrasOptions:
        return ExtrasOptions(**self.model_dump(include=set(ExtrasOptions.__dataclass_fields__)))


class ExtrasSingleImageBody(ExtrasBody):
    image: str = ""


class FileData(BaseModel):
    data: str
    name: str = ""


class ExtrasBatchImagesBody(ExtrasBody):
    imageList: list[FileData] = Field(default_factory=list)


class ExtrasSingleImageResponse(BaseModel):
    html_info: str
    image: str


class ExtrasBatchImagesResponse(BaseModel):
    html_info: str
    images: list[str]


def router(ctx: ApiContext) -> APIRouter:
    r = APIRouter()

    def run(images: list[str], body: ExtrasBody, field: str) -> tuple[list[str], str]:
        opts = body.options()
        opts.check()  # first: face restoration is refused whatever else the request holds
        if not images:
            raise InvalidRequest("no image given", field=field, detail_zh="没有给出图片")
        pictures = [decode_image(data, f"{field}[{i}].data" if field == "imageList" else field)
                    for i, data in enumerate(images)]  # fmt: skip
        done = ctx.engine.postprocess(pictures, opts)
        encoded, text = [], ""
        for source, (image, notes) in zip(pictures, done, strict=True):
            text = infotext(notes)
            encoded.append(base64.b64encode(encode_png(image, png_texts(source, text, saved=False))).decode("ascii"))
        return encoded, html_info(text)

    @r.post("/extra-single-image", response_model=ExtrasSingleImageResponse)
    def extra_single_image(body: ExtrasSingleImageBody) -> ExtrasSingleImageResponse:
        images, info = run([body.image] if body.image else [], body, "image")
        return ExtrasSingleImageResponse(image=images[0], html_info=info)

    @r.post("/extra-batch-images", response_model=ExtrasBatchImagesResponse)
    def extra_batch_images(body: ExtrasBatchImagesBody) -> ExtrasBatchImagesResponse:
        images, info = run([f.data for f in body.imageList], body, "imageList")
        return ExtrasBatchImagesResponse(images=images, html_info=info)

    return r
