"""Request and response bodies of the ``/sdapi/v1`` routes, in A1111's shapes.

Clients written for A1111 (Krita plugins, Photoshop plugins, batch scripts)
send more fields than we use; unknown fields are accepted and ignored, as
A1111 does.  Types are checked, so ``"width": "wide"`` answers 422 naming the
field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Txt2ImgBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: str = ""
    negative_prompt: str = ""
    styles: list[str] = Field(default_factory=list)
    seed: int = Field(-1, ge=-1, lt=2**32)
    subseed: int = -1
    subseed_strength: float = 0
    alwayson_scripts: dict[str, Any] = Field(default_factory=dict)
    sampler_name: str | None = None
    sampler_index: str | None = None  # older clients send the sampler's name here
    scheduler: str | None = None
    batch_size: int = Field(1, ge=1, le=64)
    n_iter: int = Field(1, ge=1, le=64)
    steps: int = Field(20, ge=1, le=150)
    cfg_scale: float = Field(7.0, ge=0, le=30)
    width: int = Field(512, ge=64, le=4096)
    height: int = Field(512, ge=64, le=4096)
    tiling: bool = False
    denoising_strength: float | None = Field(None, ge=0, le=1)
    enable_hr: bool = False
    hr_scale: float = Field(2.0, ge=1, le=4)
    hr_upscaler: str | None = None
    hr_second_pass_steps: int = Field(0, ge=0, le=150)
    hr_resize_x: int = Field(0, ge=0, le=4096)
    hr_resize_y: int = Field(0, ge=0, le=4096)
    override_settings: dict[str, Any] = Field(default_factory=dict)
    override_settings_restore_afterwards: bool = True
    send_images: bool = True
    save_images: bool = False


class Img2ImgBody(Txt2ImgBody):
    init_images: list[str] = Field(min_length=1)
    resize_mode: int = Field(0, ge=0, le=3)
    denoising_strength: float | None = Field(0.75, gt=0, le=1)
    include_init_images: bool = False


class GenerationResponse(BaseModel):
    images: list[str]
    parameters: dict[str, Any]
    info: str


class ModelItem(BaseModel):
    title: str
    model_name: str
    hash: str | None
    sha256: str | None
    filename: str
    config: str | None = None


class SamplerItem(BaseModel):
    name: str
    aliases: list[str]
    options: dict[str, Any]


class UpscalerItem(BaseModel):
    name: str
    model_name: str | None
    model_path: str | None
    model_url: str | None = None
    scale: float | None = None


class LoraItem(BaseModel):
    name: str
    alias: str
    path: str
    metadata: dict[str, Any] = Field(default_factory=dict)
