"""``/sdapi/v1/extra-single-image`` and ``/extra-batch-images``: A1111's Extras through its API.

Request and response shapes are A1111 1.10's (ExtrasBaseRequest, ExtrasSingleImageRequest,
ExtrasBatchImagesRequest).  As in A1111 the API returns the images and saves none (the Extras tab saves).
Asking for face restoration, which this version does not have, answers 501 with the reason.
"""

from __future__ import annotations

import base64
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from runtime.engine import Engine
from runtime.extras import ExtrasOptions, FaceRestorationUnavailable, encode_png, html_info, infotext, png_texts
from runtime.upscale.errors import UpscalerNotFound


class ExtrasBody(BaseModel):
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
    upscale_first: bool = False  # A1111 ≥ 1.6 accepts it and orders the steps itself

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


def build_extras_router(engine: Engine, lang: str) -> APIRouter:
    from runtime.api.routes import decode_image, error_response

    router = APIRouter()

    def run(images: list[str], body: ExtrasBody, field: str) -> tuple[list[str], str] | JSONResponse:
        if not images:
            from runtime.errors import InvalidRequest

            raise InvalidRequest("no image given", field=field, detail_zh="没有给出图片")
        pictures = [decode_image(data, f"{field}[{i}]" if field == "imageList" else field)
                    for i, data in enumerate(images)]  # fmt: skip
        try:
            done = engine.postprocess(pictures, body.options())
        except (FaceRestorationUnavailable, UpscalerNotFound) as e:
            answer = error_response(e, lang)
            answer.status_code = 501 if isinstance(e, FaceRestorationUnavailable) else 404
            return answer
        encoded, text = [], ""
        for source, (image, notes) in zip(pictures, done, strict=True):
            text = infotext(notes)
            encoded.append(base64.b64encode(encode_png(image, png_texts(source, text, saved=False))).decode("ascii"))
        return encoded, html_info(text)

    @router.post("/extra-single-image", response_model=ExtrasSingleImageResponse)
    def extra_single_image(body: ExtrasSingleImageBody) -> object:
        out = run([body.image] if body.image else [], body, "image")
        if isinstance(out, JSONResponse):
            return out
        return ExtrasSingleImageResponse(image=out[0][0], html_info=out[1])

    @router.post("/extra-batch-images", response_model=ExtrasBatchImagesResponse)
    def extra_batch_images(body: ExtrasBatchImagesBody) -> object:
        out = run([f.data for f in body.imageList], body, "imageList")
        if isinstance(out, JSONResponse):
            return out
        return ExtrasBatchImagesResponse(images=out[0], html_info=out[1])

    return router
