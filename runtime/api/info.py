"""What the runtime has and is doing: samplers, upscalers, styles, scripts, memory, progress, PNG info."""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
from typing import Any

from fastapi import APIRouter

from runtime import samplers, upscale
from runtime.api.context import ApiContext
from runtime.api.images import encode_image
from runtime.api.schemas import (
    MemoryResponse,
    PNGInfoResponse,
    ProgressResponse,
    PromptStyleItem,
    RealesrganItem,
    SamplerItem,
    ScriptsList,
    UpscalerItem,
)
from runtime.errors import InvalidRequest
from runtime.pnginfo import parse_parameters, read_parameters

_SCALE = re.compile(r"(?<![0-9])([1-8])x|x([1-8])(?![0-9])", re.IGNORECASE)


def model_scale(name: str) -> int | None:
    """The scale an ESRGAN-family model's name states (``4x-UltraSharp``, ``RealESRGAN_x4plus``), if any."""
    found = _SCALE.search(name)
    return int(found.group(1) or found.group(2)) if found else None


def ram() -> dict[str, Any]:
    """A1111's ``ram``: this process's resident memory and the machine's total and free."""
    try:
        import psutil  # type: ignore[import-untyped]

        process = psutil.Process(os.getpid())
        used = process.memory_info().rss
        vm = psutil.virtual_memory()
        return {"free": vm.available, "used": used, "total": vm.total}
    except Exception as e:  # psutil comes with accelerate; without it the key says why
        return {"error": f"{e}"}


def cuda() -> dict[str, Any]:
    """A1111's ``cuda`` block (torch's allocator counters), or ``{"error": "unavailable"}`` without a GPU."""
    try:
        import torch

        if not torch.cuda.is_available():
            return {"error": "unavailable"}
        free, total = torch.cuda.mem_get_info()
        s = torch.cuda.memory_stats()

        def pair(name: str) -> dict[str, int]:
            return {"current": int(s.get(f"{name}.all.current", 0)), "peak": int(s.get(f"{name}.all.peak", 0))}

        return {"system": {"free": free, "used": total - free, "total": total}, "active": pair("active_bytes"),
                "allocated": pair("allocated_bytes"), "reserved": pair("reserved_bytes"),
                "inactive": pair("inactive_split_bytes"),
                "events": {"retries": int(s.get("num_alloc_retries", 0)), "oom": int(s.get("num_ooms", 0))}}  # fmt: skip
    except Exception as e:
        return {"error": f"{e}"}


def png_info(data: str) -> PNGInfoResponse:
    from PIL import Image, UnidentifiedImageError

    raw = data.strip()
    try:
        image = Image.open(io.BytesIO(base64.b64decode(raw.split(",", 1)[1] if raw.startswith("data:") else raw)))
        text = read_parameters(image) or ""
    except (binascii.Error, UnidentifiedImageError, ValueError, OSError) as e:
        raise InvalidRequest(f"not a base64-encoded image ({e})", field="image",
                             detail_zh=f"不是 base64 编码的图片（{e}）") from e  # fmt: skip
    # A1111's read_info_from_image: the parameters text is taken out; the other text chunks are the items
    items = {k: v for k, v in image.info.items() if isinstance(k, str) and isinstance(v, str) and k != "parameters"}
    return PNGInfoResponse(info=text, items=items, parameters=parse_parameters(text) if text else {})


def router(ctx: ApiContext) -> APIRouter:
    r = APIRouter()
    engine = ctx.engine

    @r.get("/samplers", response_model=list[SamplerItem])
    def sampler_list() -> list[dict[str, Any]]:
        return samplers.api_samplers()

    @r.get("/schedulers")
    def scheduler_list() -> list[dict[str, Any]]:
        return samplers.api_schedulers()

    @r.get("/upscalers", response_model=list[UpscalerItem])
    def upscaler_list() -> list[UpscalerItem]:
        return [UpscalerItem(name=u.name, model_name=u.name if u.path else None,
                             model_path=str(u.path) if u.path else None,
                             scale=model_scale(u.name) if u.path else None)
                for u in upscale.list_upscalers(engine.view.upscalers_dir) if not upscale.is_latent(u.name)]  # fmt: skip

    @r.get("/latent-upscale-modes")
    def latent_modes() -> list[dict[str, str]]:
        return [{"name": name} for name in upscale.LATENT_MODES]

    @r.get("/realesrgan-models", response_model=list[RealesrganItem])
    def realesrgan_models() -> list[RealesrganItem]:
        # A1111 lists its Real-ESRGAN models; ours are the ESRGAN-family files of models/ESRGAN (the hires fix uses them)
        return [RealesrganItem(name=u.name, path=str(u.path), scale=model_scale(u.name))
                for u in upscale.list_upscalers(engine.view.upscalers_dir) if u.path is not None]  # fmt: skip

    @r.get("/face-restorers")
    def face_restorers() -> list[dict[str, Any]]:
        return []  # face restoration (CodeFormer, GFPGAN) is not in Yijian yet

    @r.get("/prompt-styles", response_model=list[PromptStyleItem])
    def prompt_styles() -> list[PromptStyleItem]:
        return [PromptStyleItem(name=s.name, prompt=s.prompt, negative_prompt=s.negative_prompt)
                for s in ctx.styles.styles().values()]  # fmt: skip

    @r.get("/scripts", response_model=ScriptsList)
    def scripts() -> ScriptsList:
        return ScriptsList(txt2img=[], img2img=[])  # no A1111 scripts or extensions run here

    @r.get("/script-info")
    def script_info() -> list[dict[str, Any]]:
        return []

    @r.get("/extensions")
    def extensions() -> list[dict[str, Any]]:
        return []

    @r.get("/memory", response_model=MemoryResponse)
    def memory() -> MemoryResponse:
        return MemoryResponse(ram=ram(), cuda=cuda())

    # async: these run on the event loop, never in the worker threads that queued generations fill, and they
    # never wait on the engine's lock (the progress object has its own, held only for a copy), so they answer
    # while a generation runs and any number of others wait.
    @r.get("/progress", response_model=ProgressResponse)
    async def progress(skip_current_image: bool = False) -> dict[str, object]:
        body = engine.progress.snapshot().to_a1111()
        preview = None if skip_current_image else engine.progress.preview_latents()
        if preview is not None:
            from runtime.preview import cheap_preview

            image = cheap_preview(*preview)
            body["current_image"] = encode_image(image) if image is not None else None
        return body

    @r.post("/interrupt")
    async def interrupt() -> dict[str, str]:
        engine.interrupt()
        return {}

    @r.post("/skip")
    async def skip() -> None:
        engine.progress.skip()

    @r.post("/png-info", response_model=PNGInfoResponse)
    def png_info_route(body: dict[str, Any]) -> PNGInfoResponse:
        return png_info(str(body.get("image", "")))

    return r
