"""``/controlnet/*``: the sd-webui-controlnet extension's own routes, with its shapes.

``version`` (API version 2), ``model_list`` (models by the extension's ``name [hash]``), ``module_list``
(the preprocessors this runtime has, with their sliders), ``control_types``, ``settings`` (the unit count)
and ``detect`` (run a preprocessor on images, answered as the extension answers).  They sit behind the same
login as ``/sdapi/v1``.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException

from runtime.controlnet import models, preprocessors
from runtime.controlnet.run import decode
from runtime.controlnet.units import MAX_UNITS, ControlNetUnitInvalid

API_VERSION = 2
# The extension's control types that this runtime's preprocessors serve; "All" lists everything.
CONTROL_TYPES = {"Canny": ("canny", "invert"), "Lineart": ("lineart_standard", "invert"), "Tile": ("tile_resample",)}


def _png_b64(array: Any) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def build_controlnet_router(model_folders: Any, credentials: tuple[str, str] | None) -> APIRouter:
    """The routes; ``model_folders()`` gives the folders to list ControlNet models from (read on every call)."""
    from runtime.api.routes import BasicAuth

    router = APIRouter(prefix="/controlnet", dependencies=[Depends(BasicAuth(credentials))])

    def names() -> list[str]:
        return [f.name for f in models.list_models(model_folders())]

    @router.get("/version")
    async def version() -> dict[str, int]:
        return {"version": API_VERSION}

    @router.get("/model_list")
    def model_list(update: bool = True) -> dict[str, list[str]]:
        return {"model_list": names()}

    @router.get("/module_list")
    async def module_list(alias_names: bool = False) -> dict[str, Any]:
        return {"module_list": list(preprocessors.PREPROCESSORS), "module_detail": preprocessors.module_detail()}

    @router.get("/control_types")
    def control_types() -> dict[str, Any]:
        listed = names()
        out: dict[str, Any] = {}
        for tag, modules in {"All": tuple(preprocessors.PREPROCESSORS), **CONTROL_TYPES}.items():
            fitting = listed if tag == "All" else [n for n in listed if tag.lower() in n.lower()]
            out[tag] = {"module_list": list(modules), "model_list": ["None", *fitting],
                        "default_option": modules[0] if tag != "All" else "none",
                        "default_model": fitting[0] if fitting and tag != "All" else "None"}  # fmt: skip
        return {"control_types": out}

    @router.get("/settings")
    async def settings() -> dict[str, int]:
        return {"control_net_unit_count": MAX_UNITS}

    @router.post("/detect")
    def detect(
        controlnet_module: str = Body("none"),
        controlnet_input_images: list[str] = Body([]),  # noqa: B008 - FastAPI's way of naming body fields
        controlnet_processor_res: int = Body(-1),
        controlnet_threshold_a: float = Body(-1),
        controlnet_threshold_b: float = Body(-1),
        controlnet_masks: list[str] = Body([]),  # noqa: B008
        low_vram: bool = Body(False),
        controlnet_images: list[str] = Body([]),  # noqa: B008 - the older name clients (webuiapi) still send
    ) -> dict[str, Any]:
        controlnet_input_images = controlnet_input_images or controlnet_images
        try:
            pre = preprocessors.find(controlnet_module)
        except preprocessors.PreprocessorUnknown as e:
            raise HTTPException(422, f"Module not available: {e.message('en')}") from e
        if not controlnet_input_images:
            raise HTTPException(422, "No image selected")
        images = []
        for i, data in enumerate(controlnet_input_images):
            try:
                source = decode(data, i, "controlnet_input_images")
            except ControlNetUnitInvalid as e:
                raise HTTPException(422, e.message("en")) from e
            images.append(_png_b64(pre(source, controlnet_processor_res, controlnet_threshold_a,
                                       controlnet_threshold_b)))  # fmt: skip
        return {"info": "Success", "images": images}

    return router
