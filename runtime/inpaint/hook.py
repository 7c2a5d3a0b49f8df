"""What :mod:`runtime.passes` calls: when a pass is an inpaint, running it, and finishing its images."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from runtime.inpaint import latents
from runtime.inpaint.prepare import LATENT_UPSCALE, prepare

if TYPE_CHECKING:
    from PIL import Image

    from runtime.checkpoints import LoadedModel
    from runtime.passes import BatchOutput
    from runtime.request import GenerationRequest


def is_inpainting_model(model: LoadedModel) -> bool:
    return latents.is_inpainting_unet(model.pipe.unet)


def wanted(req: GenerationRequest, model: LoadedModel) -> bool:
    """An img2img pass goes through the inpainting pass with a mask, an inpainting model or a latent upscale."""
    return req.mask is not None or req.resize_mode == LATENT_UPSCALE or is_inpainting_model(model)


def img2img(model: LoadedModel, req: GenerationRequest, seeds: list[int], generators: list[Any],
            run_kwargs: dict[str, Any], out: BatchOutput) -> Any:  # fmt: skip
    prepared = prepare(req)
    out.warnings += [w for w in prepared.warnings if w not in out.warnings]
    out.fields.update(prepared.fields)
    out.inpaint = prepared
    return latents.sample(model, req, prepared, seeds, generators, run_kwargs)


def whole_image(model: LoadedModel, image: Any, width: int, height: int, seeds: list[int], generators: list[Any],
                run_kwargs: dict[str, Any]) -> Any:  # fmt: skip
    if image is None:  # txt2img: strength 1 starts from noise; the picture only has to have the size
        from PIL import Image as PILImage

        image = [PILImage.new("RGB", (width, height), (128, 128, 128))] * len(seeds)
    return latents.whole_image(model, image, width, height, seeds, generators, run_kwargs)


def noise_multiplier(model: LoadedModel, req: GenerationRequest) -> AbstractContextManager[None]:
    return latents.noise_multiplier(model.pipe.scheduler, req.noise_multiplier)


def finish(out: BatchOutput, images: list[Image.Image]) -> list[Image.Image]:
    """The decoded images, with an inpaint's originals laid over them outside the mask."""
    return out.inpaint.finish(images) if out.inpaint is not None else images
