"""``/sdapi/v1``: A1111's API over the same engine the UI uses.

Blocking work (generation, model switching) runs in FastAPI's thread pool;
the engine's lock queues concurrent requests.  Errors from the engine become
JSON answers with the error's stable code: a bad field is a 422 naming the
field, as pydantic's own validation errors are.

Gradio's ``auth=`` protects only Gradio's pages, so these routes check the
same credentials themselves (HTTP Basic, as A1111's ``--api-auth``).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import secrets
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from bootstrap.errors import ExitCode, YijianError
from runtime import samplers, upscale
from runtime.api.extras import build_extras_router
from runtime.api.schemas import (
    GenerationResponse,
    Img2ImgBody,
    LoraItem,
    ModelItem,
    SamplerItem,
    Txt2ImgBody,
    UpscalerItem,
)
from runtime.engine import Engine
from runtime.errors import (
    ArchitectureConfigMissing,
    HostNotAllowed,
    InvalidRequest,
    ModelLoadFailed,
    ModelNotFound,
    NoModel,
    OutOfMemory,
    PickleNotAllowed,
)
from runtime.pnginfo import parse_parameters, read_parameters
from runtime.request import GenerationRequest

# A model that cannot be switched to is the client's request failing (4xx), not the server: the model loaded
# before stays loaded and keeps generating.
STATUS = {InvalidRequest: 422, ModelNotFound: 404, PickleNotAllowed: 403, ModelLoadFailed: 422,
          ArchitectureConfigMissing: 422, HostNotAllowed: 421, NoModel: 503, OutOfMemory: 507}  # fmt: skip


def error_response(err: YijianError, lang: str = "en") -> JSONResponse:
    status = next((code for cls, code in STATUS.items() if isinstance(err, cls)), None)
    if status is None:
        status = 422 if err.exit_code == ExitCode.USAGE else 500  # e.g. an unknown sampler name
    body: dict[str, Any] = {"error": err.code, "detail": err.message(lang), "hint": err.hint(lang), "code": err.code}
    if isinstance(err, InvalidRequest):
        field = err.params.get("field", "")
        body["detail"] = [{"loc": ["body", field], "msg": err.message(lang), "type": "value_error"}]
    return JSONResponse(body, status_code=status)


class BasicAuth:
    """A dependency that checks HTTP Basic credentials (none configured: everyone may call).

    The header is decoded as UTF-8 (FastAPI's ``HTTPBasic`` takes ASCII only),
    so Chinese passwords work.
    """

    def __init__(self, credentials: tuple[str, str] | None) -> None:
        self.credentials = credentials

    async def __call__(self, request: Request) -> None:
        if self.credentials is None:
            return
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        ok = scheme.lower() == "basic" and bool(sep) and \
            secrets.compare_digest(user.encode(), self.credentials[0].encode()) and \
            secrets.compare_digest(password.encode(), self.credentials[1].encode())  # fmt: skip
        if not ok:
            raise HTTPException(401, "Incorrect credentials", headers={"WWW-Authenticate": "Basic"})


def decode_image(data: str, field: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    raw = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        return Image.open(io.BytesIO(base64.b64decode(raw, validate=False))).convert("RGB")
    except (binascii.Error, UnidentifiedImageError, ValueError, OSError) as e:
        raise InvalidRequest(f"not a base64-encoded image ({e})", field=field,
                             detail_zh=f"不是 base64 编码的图片（{e}）") from e  # fmt: skip


def encode_image(image: Any, infotext: str) -> str:
    from runtime.pnginfo import pnginfo_for

    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=pnginfo_for(infotext) if infotext else None)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def to_request(body: Txt2ImgBody, engine: Engine) -> GenerationRequest:
    sampler = body.sampler_name or body.sampler_index or "Euler a"
    samplers.resolve(sampler, body.scheduler or "Automatic")  # unknown names fail here, before any work
    clip_skip = clip_skip_option(body.override_settings.get("CLIP_stop_at_last_layers", engine.clip_skip),
                                 "override_settings.CLIP_stop_at_last_layers")  # fmt: skip
    model = body.override_settings.get("sd_model_checkpoint")
    return GenerationRequest(
        prompt=body.prompt, negative_prompt=body.negative_prompt, steps=body.steps, sampler_name=sampler,
        scheduler=body.scheduler or "Automatic", cfg_scale=body.cfg_scale, width=body.width, height=body.height,
        seed=body.seed, n_iter=body.n_iter, batch_size=body.batch_size, clip_skip=clip_skip, tiling=body.tiling,
        vae=str(body.override_settings.get("sd_vae", engine.vae_name)),
        model=str(model) if model else None, restore_model=body.override_settings_restore_afterwards,
        enable_hr=body.enable_hr, hr_scale=body.hr_scale, hr_upscaler=body.hr_upscaler or "Latent",
        hr_second_pass_steps=body.hr_second_pass_steps, hr_resize_x=body.hr_resize_x, hr_resize_y=body.hr_resize_y,
        hr_denoising_strength=body.denoising_strength if body.enable_hr else None, save_images=body.save_images,
        controlnet=tuple(controlnet_units(body.alwayson_scripts)),
    )  # fmt: skip


def controlnet_units(scripts: dict[str, Any]) -> list[Any]:
    """The units of ``alwayson_scripts["controlnet"]`` (any capitalisation of the name, as A1111 matches it)."""
    from runtime.controlnet.units import units_from_script_args

    found = [v for k, v in scripts.items() if k.casefold() == "controlnet"]
    return units_from_script_args(found[0]) if found else []


def clip_skip_option(value: Any, field: str) -> int:
    if isinstance(value, float) and value.is_integer():  # some clients send 2.0
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 12:
        raise InvalidRequest("must be an integer from 1 to 12", field=field, detail_zh="应为 1 到 12 的整数")
    return value


def build_router(engine: Engine, credentials: tuple[str, str] | None, lang: str = "en") -> APIRouter:
    router = APIRouter(prefix="/sdapi/v1", dependencies=[Depends(BasicAuth(credentials))])

    def run(req: GenerationRequest, body: Txt2ImgBody) -> GenerationResponse:
        result = engine.generate(req)
        images = [encode_image(im, text) for im, text in zip(result.images, result.infotexts, strict=True)]
        images += [encode_image(m, "") for m in result.detected_maps]  # ControlNet's maps last, as the extension
        params = body.model_dump(exclude={"init_images"})
        return GenerationResponse(images=images if body.send_images else [], parameters=params,
                                  info=json.dumps(result.info, ensure_ascii=False))  # fmt: skip

    @router.post("/txt2img", response_model=GenerationResponse)
    def txt2img(body: Txt2ImgBody) -> GenerationResponse:
        return run(to_request(body, engine), body)

    @router.post("/img2img", response_model=GenerationResponse)
    def img2img(body: Img2ImgBody) -> GenerationResponse:
        req = to_request(body, engine)
        req.init_images = [decode_image(s, f"init_images[{i}]") for i, s in enumerate(body.init_images)]
        req.denoising_strength = body.denoising_strength if body.denoising_strength is not None else 0.75
        req.resize_mode = min(body.resize_mode, 2)
        return run(req, body)

    @router.get("/sd-models", response_model=list[ModelItem])
    def sd_models() -> list[ModelItem]:
        return [ModelItem(title=c.title, model_name=c.model_name, hash=c.short_hash, sha256=c.sha256,
                          filename=str(c.path)) for c in engine.checkpoints]  # fmt: skip

    @router.post("/refresh-checkpoints")
    def refresh() -> dict[str, str]:
        engine.refresh()
        return {}

    @router.get("/samplers", response_model=list[SamplerItem])
    def sampler_list() -> list[dict[str, Any]]:
        return samplers.api_samplers()

    @router.get("/schedulers")
    def scheduler_list() -> list[dict[str, Any]]:
        return samplers.api_schedulers()

    @router.get("/upscalers", response_model=list[UpscalerItem])
    def upscaler_list() -> list[UpscalerItem]:
        return [UpscalerItem(name=u.name, model_name=u.name if u.path else None,
                             model_path=str(u.path) if u.path else None)
                for u in upscale.list_upscalers(engine.view.upscalers_dir) if not upscale.is_latent(u.name)]  # fmt: skip

    @router.get("/latent-upscale-modes")
    def latent_modes() -> list[dict[str, str]]:
        return [{"name": name} for name in upscale.LATENT_MODES]

    @router.get("/loras", response_model=list[LoraItem])
    def loras() -> list[LoraItem]:
        return [LoraItem(name=p.stem, alias=p.stem, path=str(p)) for p in engine.view.loras.values()]

    @router.get("/sd-vae")
    def vaes() -> list[dict[str, str]]:
        return [{"model_name": name, "filename": str(path)} for name, path in engine.view.vaes.items()]

    # async: these run on the event loop, never in the worker threads that queued generations fill, and they
    # never wait on the engine's lock (the progress object has its own, held only for a copy), so they answer
    # while a generation runs and any number of others wait.
    @router.get("/progress")
    async def progress() -> dict[str, object]:
        return engine.progress.snapshot().to_a1111()

    @router.post("/interrupt")
    async def interrupt() -> dict[str, str]:
        engine.interrupt()
        return {}

    @router.get("/options")
    def get_options() -> dict[str, Any]:
        model = engine.model
        return {"sd_model_checkpoint": model.checkpoint.title if model else None, "sd_vae": engine.vae_name,
                "samples_save": True, "outdir_samples": str(engine.outputs.root),
                "CLIP_stop_at_last_layers": engine.clip_skip}  # fmt: skip

    @router.post("/options")
    def set_options(body: dict[str, Any]) -> dict[str, Any]:
        clip_skip = body.get("CLIP_stop_at_last_layers")
        engine.set_options(
            checkpoint=str(body["sd_model_checkpoint"]) if "sd_model_checkpoint" in body else None,
            vae=str(body["sd_vae"]) if "sd_vae" in body else None,
            clip_skip=None if clip_skip is None else clip_skip_option(clip_skip, "CLIP_stop_at_last_layers"),
        )
        return {}

    @router.post("/png-info")
    def png_info(body: dict[str, Any]) -> dict[str, Any]:
        from PIL import Image, UnidentifiedImageError

        raw = str(body.get("image", ""))
        try:
            data = base64.b64decode(raw.split(",", 1)[1] if raw.startswith("data:") else raw)
            text = read_parameters(Image.open(io.BytesIO(data))) or ""
        except (binascii.Error, UnidentifiedImageError, ValueError, OSError) as e:
            raise InvalidRequest(f"not a base64-encoded image ({e})", field="image",
                                 detail_zh=f"不是 base64 编码的图片（{e}）") from e  # fmt: skip
        return {"info": text, "items": {"parameters": text} if text else {},
                "parameters": parse_parameters(text) if text else {}}  # fmt: skip

    router.include_router(build_extras_router(engine, lang))
    return router


def install_error_handlers(app: Any, lang: str) -> None:
    @app.exception_handler(YijianError)
    async def on_error(request: Request, err: YijianError) -> JSONResponse:
        return error_response(err, lang)
