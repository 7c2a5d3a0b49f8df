"""The model library: checkpoints, VAEs, LoRAs, embeddings, hypernetworks, and loading/unloading the model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from runtime.api.context import ApiContext
from runtime.api.schemas import EmbeddingItem, EmbeddingsResponse, LoraItem, ModelItem

log = logging.getLogger("yijian.runtime")


def embedding_item(path: Path) -> EmbeddingItem | None:
    """An embedding file's vector count and width (A1111's ``vectors`` and ``shape``); None if unreadable."""
    try:
        tensor, meta = _embedding_tensor(path)
    except Exception as e:  # a damaged or foreign file: listed as skipped without a shape
        log.info("embedding %s could not be read: %s", path.name, e)
        return None
    vectors, shape = (int(tensor.shape[0]), int(tensor.shape[-1])) if tensor.dim() > 1 else (1, int(tensor.shape[0]))
    step = meta.get("step")
    return EmbeddingItem(step=int(step) if isinstance(step, int) else None,
                         sd_checkpoint=meta.get("sd_checkpoint"), sd_checkpoint_name=meta.get("sd_checkpoint_name"),
                         shape=shape, vectors=vectors)  # fmt: skip


def _embedding_tensor(path: Path) -> tuple[Any, dict[str, Any]]:
    import torch

    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        state: dict[str, Any] = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    if "string_to_param" in state:  # A1111's own .pt format
        tensor = next(iter(state["string_to_param"].values()))
        return tensor, {k: state.get(k) for k in ("step", "sd_checkpoint", "sd_checkpoint_name")}
    for key in ("emb_params", "clip_l"):  # diffusers/kohya SD 1.x files; SDXL files (clip_l + clip_g)
        if key in state:
            return state[key], {}
    tensors = [v for v in state.values() if isinstance(v, torch.Tensor)]
    if len(tensors) != 1:
        raise ValueError(f"{len(tensors)} tensors where an embedding has one")
    return tensors[0], {}


def router(ctx: ApiContext) -> APIRouter:
    r = APIRouter()
    engine = ctx.engine

    @r.get("/sd-models", response_model=list[ModelItem])
    def sd_models() -> list[ModelItem]:
        return [ModelItem(title=c.title, model_name=c.model_name, hash=c.short_hash, sha256=c.sha256,
                          filename=str(c.path)) for c in engine.checkpoints]  # fmt: skip

    @r.get("/sd-modules")
    def sd_modules() -> list[dict[str, str]]:
        return []  # separate text encoders/VAEs for models that need them (Flux, SD3): none of those here

    @r.post("/refresh-checkpoints")
    def refresh() -> None:
        engine.refresh()

    @r.post("/refresh-vae")
    def refresh_vae() -> None:
        engine.refresh()

    @r.post("/refresh-loras")
    def refresh_loras() -> None:
        engine.refresh()

    @r.get("/sd-vae")
    def vaes() -> list[dict[str, str]]:
        return [{"model_name": name, "filename": str(path)} for name, path in engine.view.vaes.items()]

    @r.get("/loras", response_model=list[LoraItem])
    def loras() -> list[LoraItem]:
        return [LoraItem(name=p.stem, alias=p.stem, path=str(p)) for p in engine.view.loras.values()]

    @r.get("/hypernetworks")
    def hypernetworks() -> list[dict[str, str]]:
        return []  # hypernetworks are not supported, so none is offered

    @r.get("/embeddings", response_model=EmbeddingsResponse)
    def embeddings() -> EmbeddingsResponse:
        loaded_words = set(engine.embeddings_loaded)
        loaded: dict[str, EmbeddingItem] = {}
        skipped: dict[str, EmbeddingItem] = {}
        for word, path in sorted(engine.view.embeddings.items()):
            item = embedding_item(path)
            if item is None:
                continue
            (loaded if word in loaded_words else skipped)[word] = item
        return EmbeddingsResponse(loaded=loaded, skipped=skipped)

    @r.post("/refresh-embeddings")
    def refresh_embeddings() -> None:
        engine.refresh_embeddings()

    @r.post("/unload-checkpoint")
    def unload() -> dict[str, Any]:
        engine.unload()
        return {}

    @r.post("/reload-checkpoint")
    def reload() -> dict[str, Any]:
        engine.reload()
        return {}

    return r
