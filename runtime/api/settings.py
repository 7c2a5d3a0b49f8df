"""``GET|POST /options``: A1111's whole settings object (see :mod:`runtime.webui_settings`).

GET answers every key A1111 1.10 has: the live ones (the model, the VAE,
clip skip) from the engine, the others from the bundle's saved settings or
A1111's defaults.  POST checks every key before changing anything (one bad
key changes nothing), then switches the model and the VAE, sets clip skip and
the other applied keys, and saves.  As A1111's, a successful POST answers
``null``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from runtime.api.context import ApiContext


def options_of(ctx: ApiContext) -> dict[str, Any]:
    engine = ctx.engine
    values = ctx.settings.snapshot()
    model = engine.model
    values["sd_model_checkpoint"] = model.checkpoint.title if model else None
    values["sd_vae"] = engine.vae_name
    values["CLIP_stop_at_last_layers"] = engine.clip_skip
    return values


def set_options(ctx: ApiContext, body: dict[str, Any]) -> None:
    from runtime.api.generation import clip_skip_option

    ctx.settings.check(body)
    clip_skip = body.get("CLIP_stop_at_last_layers")
    clip_skip = None if clip_skip is None else clip_skip_option(clip_skip, "CLIP_stop_at_last_layers")
    vae = body.get("sd_vae")
    ctx.engine.set_options(
        checkpoint=str(body["sd_model_checkpoint"]) if body.get("sd_model_checkpoint") else None,
        vae=str(vae) if vae is not None else None,
        clip_skip=clip_skip,
    )
    ctx.settings.update(body)
    ctx.apply_previews()


def router(ctx: ApiContext) -> APIRouter:
    r = APIRouter()

    @r.get("/options")
    def get_options() -> dict[str, Any]:
        return options_of(ctx)

    @r.post("/options")
    def post_options(body: dict[str, Any]) -> None:
        set_options(ctx, body)

    return r
