"""``POST /txt2img`` and ``/img2img``: an A1111 body becomes a :class:`GenerationRequest`.

What A1111 does before ``process_images`` happens here: the styles are
applied to the prompts, ``override_settings`` are checked (a key A1111 does
not have, or a read-only one with another value, is a 422 naming it) and
mapped onto the request, ``script_name`` / ``alwayson_scripts`` naming a
script we do not have answer 422 as A1111's, and fields of features Yijian
does not have yet (face restoration, a refiner or hires checkpoint, infotext)
answer 501 instead of being ignored.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter

from runtime import samplers
from runtime.api.context import ApiContext
from runtime.api.images import decode_image, encode_image
from runtime.api.schemas import GenerationResponse, Img2ImgBody, Txt2ImgBody
from runtime.errors import FeatureNotAvailable, InvalidRequest, ScriptNotFound
from runtime.inpaint.fields import apply_api_fields
from runtime.outputs import GridSpec
from runtime.request import GenerationRequest

SAME = ("", "Use same sampler", "Use same scheduler", "Use same checkpoint")  # A1111's UI words for "the same"


def clip_skip_option(value: Any, field: str) -> int:
    if isinstance(value, float) and value.is_integer():  # some clients send 2.0
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 12:
        raise InvalidRequest("must be an integer from 1 to 12", field=field, detail_zh="应为 1 到 12 的整数")
    return value


def check_scripts(body: Txt2ImgBody) -> None:
    """A1111 answers 422 for a script it does not have; of the always-on scripts Yijian has ControlNet's."""
    if body.script_name:
        raise ScriptNotFound(name=repr(body.script_name), what_en="Script", what_zh="")
    for name in body.alwayson_scripts or {}:
        if name.casefold() != "controlnet":
            raise ScriptNotFound(name=name, what_en="always on script", what_zh="（always on script）")


def controlnet_units(scripts: dict[str, Any] | None) -> list[Any]:
    """The units of ``alwayson_scripts["controlnet"]`` (any capitalisation of the name, as A1111 matches it)."""
    from runtime.controlnet.units import units_from_script_args

    found = [v for k, v in (scripts or {}).items() if k.casefold() == "controlnet"]
    return units_from_script_args(found[0]) if found else []


def check_features(body: Txt2ImgBody) -> None:
    """Fields that ask for a feature Yijian does not have yet: 501, never a silent success."""
    missing = []
    if body.restore_faces:
        missing.append(("restore_faces: face restoration", "restore_faces：面部修复"))
    if body.refiner_checkpoint and body.refiner_checkpoint not in ("None", *SAME):
        missing.append(("refiner_checkpoint: a refiner model", "refiner_checkpoint：精炼模型"))
    if body.enable_hr and body.hr_checkpoint_name and body.hr_checkpoint_name not in SAME:
        missing.append(("hr_checkpoint_name: another model for the hires pass", "hr_checkpoint_name：高清修复换模型"))
    if body.infotext:
        missing.append(("infotext: parameters taken from an infotext", "infotext：从生成参数文本读取参数"))
    if missing:
        raise FeatureNotAvailable(feature="; ".join(en for en, _ in missing),
                                  feature_zh="；".join(zh for _, zh in missing))  # fmt: skip


def _same_or(value: str | None) -> str | None:
    return None if value is None or value in SAME else value


def to_request(body: Txt2ImgBody, ctx: ApiContext) -> GenerationRequest:
    engine, settings = ctx.engine, ctx.settings
    check_scripts(body)
    check_features(body)
    overrides = dict(body.override_settings or {})
    settings.check(overrides)

    def option(key: str) -> Any:
        return overrides[key] if key in overrides else settings.get(key)

    sampler = body.sampler_name or body.sampler_index or "Euler"  # A1111's API model defaults sampler_index to Euler
    scheduler = body.scheduler or "Automatic"
    samplers.resolve(sampler, scheduler)  # unknown names fail here, before any work
    hr_sampler, hr_scheduler = _same_or(body.hr_sampler_name), _same_or(body.hr_scheduler)
    if body.enable_hr and (hr_sampler or hr_scheduler):
        samplers.resolve(hr_sampler or sampler, hr_scheduler or scheduler)
    clip_skip = clip_skip_option(overrides.get("CLIP_stop_at_last_layers", engine.clip_skip),
                                 "override_settings.CLIP_stop_at_last_layers")  # fmt: skip
    prompt, negative = ctx.styles.apply(body.styles, body.prompt, body.negative_prompt)
    hr_prompt, hr_negative = body.hr_prompt, body.hr_negative_prompt
    if body.styles and (hr_prompt or hr_negative):  # A1111 styles the hires prompts too
        hr_prompt, hr_negative = ctx.styles.apply(body.styles, hr_prompt, hr_negative)
    model = overrides.get("sd_model_checkpoint")
    grid = None
    if body.save_images:  # A1111's API: do_not_save_grid = not save_images
        grid = GridSpec(return_grid=bool(option("return_grid")), save=bool(option("grid_save")),
                        rows=int(option("n_rows")), only_if_multiple=bool(option("grid_only_if_multiple")),
                        prevent_empty_spots=bool(option("grid_prevent_empty_spots")),
                        background=str(option("grid_background_color")))  # fmt: skip
    return GenerationRequest(
        prompt=prompt, negative_prompt=negative, styles=list(body.styles), steps=body.steps, sampler_name=sampler,
        scheduler=scheduler, cfg_scale=body.cfg_scale, width=body.width, height=body.height, seed=body.seed,
        subseed=body.subseed, subseed_strength=body.subseed_strength,
        seed_resize_from_w=max(body.seed_resize_from_w, 0), seed_resize_from_h=max(body.seed_resize_from_h, 0),
        n_iter=body.n_iter, batch_size=body.batch_size, clip_skip=clip_skip, tiling=body.tiling,
        emphasis=str(option("emphasis")), old_scheduling=bool(option("use_old_scheduling")),
        vae=str(overrides.get("sd_vae", engine.vae_name)),
        model=str(model) if model else None, restore_model=body.override_settings_restore_afterwards,
        enable_hr=body.enable_hr, hr_scale=body.hr_scale, hr_upscaler=body.hr_upscaler or "Latent",
        hr_second_pass_steps=body.hr_second_pass_steps, hr_resize_x=body.hr_resize_x, hr_resize_y=body.hr_resize_y,
        hr_denoising_strength=body.denoising_strength if body.enable_hr else None,
        hr_prompt=hr_prompt, hr_negative_prompt=hr_negative, hr_sampler_name=hr_sampler, hr_scheduler=hr_scheduler,
        save_images=body.save_images and bool(option("samples_save")), grid=grid,
        controlnet=tuple(controlnet_units(body.alwayson_scripts)),
    )  # fmt: skip


def keep_overrides(body: Txt2ImgBody, ctx: ApiContext) -> None:
    """``override_settings_restore_afterwards: false``: the overrides stay, as if POSTed to /options."""
    overrides = {k: v for k, v in (body.override_settings or {}).items() if k != "sd_model_checkpoint"}
    if not body.override_settings_restore_afterwards and overrides:
        from runtime.api.settings import set_options

        set_options(ctx, overrides)


def router(ctx: ApiContext) -> APIRouter:
    r = APIRouter()
    engine = ctx.engine

    def run(req: GenerationRequest, body: Txt2ImgBody, exclude: set[str]) -> GenerationResponse:
        result = engine.generate(req)
        keep_overrides(body, ctx)
        images = [encode_image(im, text) for im, text in zip(result.images, result.infotexts, strict=True)]
        images += [encode_image(m) for m in result.detected_maps]  # ControlNet's maps last, as the extension
        params = body.model_dump(exclude=exclude)
        return GenerationResponse(images=images if body.send_images else [], parameters=params,
                                  info=json.dumps(result.info, ensure_ascii=False))  # fmt: skip

    @r.post("/txt2img", response_model=GenerationResponse)
    def txt2img(body: Txt2ImgBody) -> GenerationResponse:
        return run(to_request(body, ctx), body, set())

    @r.post("/img2img", response_model=GenerationResponse)
    def img2img(body: Img2ImgBody) -> GenerationResponse:
        req = to_request(body, ctx)
        req.init_images = [decode_image(s, f"init_images[{i}]") for i, s in enumerate(body.init_images)]
        req.denoising_strength = body.denoising_strength if body.denoising_strength is not None else 0.75
        apply_api_fields(body, req)  # resize_mode and the inpainting fields (runtime/inpaint)
        return run(req, body, set() if body.include_init_images else {"init_images", "mask"})

    return r
