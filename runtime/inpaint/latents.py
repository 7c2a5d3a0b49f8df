"""The latent side of an inpaint: encoding, the latent mask, masked content, the pipeline call, the final blend.

Every pass goes through diffusers' inpainting pipeline (SD 1.x/2.x or SDXL,
made from the loaded pipeline's components), given latents rather than
pixels so that the masked-content modes can change the init latent as A1111
does.  With a normal (4-channel) UNet the pipeline keeps the init latent
outside the latent mask at every step; an inpainting UNet (9 channels) gets
A1111's masked-image conditioning instead: the mask and the VAE encoding of
the image with the masked area blanked, concatenated to its input.  At the end
the latent outside the mask is the init latent again (A1111's
``samples * nmask + init_latent * mask``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from runtime.inpaint import fill
from runtime.inpaint import mask as masks
from runtime.inpaint.prepare import LATENT_UPSCALE, Prepared

if TYPE_CHECKING:
    from collections.abc import Iterator

    from PIL import Image

    from runtime.checkpoints import LoadedModel
    from runtime.request import GenerationRequest

INPAINTING_CHANNELS = 9  # latents 4 + mask 1 + masked-image latents 4


def is_inpainting_unet(unet: Any) -> bool:
    return int(getattr(unet.config, "in_channels", 4)) == INPAINTING_CHANNELS


def derived_pipeline(model: LoadedModel, attr: str, auto_class: Any) -> Any:
    """A pipeline of another task over the loaded model's components, made once per model and kept on it.

    Its scheduler and VAE are the loaded pipeline's at each call: samplers and VAEs change between requests.
    """
    pipe = getattr(model, attr, None)
    if pipe is None:
        pipe = auto_class.from_pipe(model.pipe)
        pipe.set_progress_bar_config(disable=True)
        setattr(model, attr, pipe)
    pipe.scheduler = model.pipe.scheduler
    pipe.vae = model.pipe.vae
    return pipe


def inpaint_pipeline(model: LoadedModel) -> Any:
    """diffusers' inpainting pipeline over the loaded model's components (SD 1.x/2.x or SDXL)."""
    from diffusers import AutoPipelineForInpainting

    return derived_pipeline(model, "_inpaint", AutoPipelineForInpainting)


def encode(model: LoadedModel, images: list[Image.Image], seeds: list[int], hide: Image.Image | None = None) -> Any:
    """The VAE latents of ``images`` (one per seed, cycled), sampled with each image's seed, scaled for the UNet.

    With ``hide`` (a mask, white = hidden) the hidden area is blanked first: 0 in the VAE's [-1, 1] range, a
    mid grey, mixed in proportion where the mask is soft, as A1111's inpainting conditioning image.
    """
    import torch

    vae = model.pipe.vae
    pixels = model.pipe.image_processor.preprocess([images[i % len(images)] for i in range(len(seeds))])
    if hide is not None:
        m = torch.from_numpy(np.asarray(hide.convert("L"), dtype=np.float32) / 255)
        pixels = pixels * (1 - m)[None, None]
    # the pipeline's execution device: with model or sequential offload the VAE's own parameters may sit on the
    # CPU (or the meta device) until its hook moves them; the seed's noise is drawn on the CPU, as A1111's is
    pixels = pixels.to(model.pipe._execution_device, vae.dtype)
    with torch.inference_mode():
        out = []
        for i, seed in enumerate(seeds):
            dist = vae.encode(pixels[i : i + 1]).latent_dist
            out.append(dist.sample(generator=torch.Generator("cpu").manual_seed(seed)))
        latents = torch.cat(out)
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return (latents - shift) * vae.config.scaling_factor


@contextmanager
def noise_multiplier(scheduler: Any, factor: float) -> Iterator[None]:
    """A1111's ``initial_noise_multiplier``: the noise added to the init latent scaled by ``factor`` (this pass)."""
    if factor == 1.0:
        yield
        return
    original = scheduler.add_noise

    def scaled(samples: Any, noise: Any, timesteps: Any) -> Any:
        return original(samples, noise * factor, timesteps)

    scheduler.add_noise = scaled
    try:
        yield
    finally:
        del scheduler.add_noise  # the instance attribute goes; the class's method is back


def sample(model: LoadedModel, req: GenerationRequest, prepared: Prepared, seeds: list[int], generators: list[Any],
           run_kwargs: dict[str, Any]) -> Any:  # fmt: skip
    """Run one img2img batch with a mask (or with an inpainting model); return the latents.

    ``run_kwargs`` are the pass's pipeline arguments (strength, steps, prompts, callback, output type).
    """
    import torch

    width, height = req.width, req.height
    init = encode(model, prepared.images, seeds)
    if req.resize_mode == LATENT_UPSCALE and prepared.paste_to is None:
        init = torch.nn.functional.interpolate(init, size=(height // 8, width // 8), mode="bilinear")
    lh, lw = init.shape[-2:]
    if prepared.mask is not None:
        paint = masks.latent_mask(prepared.mask, lw, lh, round_=req.mask_round)
    else:
        paint = np.ones((lh, lw), dtype=np.float32)  # an inpainting model's plain img2img: all of it
    keep = torch.from_numpy(1 - paint).to(init.device, init.dtype)[None, None]
    init = fill.fill_latent(init, keep, req.inpainting_fill if prepared.mask is not None else fill.ORIGINAL, seeds)
    pipe = inpaint_pipeline(model)
    if is_inpainting_unet(pipe.unet):
        cond_mask = _conditioning_mask(prepared.mask, width, height, req.mask_round)
        mask_image: Image.Image = cond_mask
        masked = encode(model, prepared.images, seeds, hide=cond_mask)
    else:
        mask_image = masks.pixel_mask(paint, height // lh)
        masked = init  # unused by a 4-channel UNet; given so the pipeline does not mask the latents as pixels
    with noise_multiplier(pipe.scheduler, req.noise_multiplier):
        latents = pipe(image=init, mask_image=mask_image, masked_image_latents=masked, width=width, height=height,
                       generator=generators, **run_kwargs).images  # fmt: skip
    if prepared.mask is not None:
        latents = latents * (1 - keep) + init * keep
    return latents


def whole_image(model: LoadedModel, image: Any, width: int, height: int, seeds: list[int], generators: list[Any],
                run_kwargs: dict[str, Any]) -> Any:  # fmt: skip
    """A pass of an inpainting model with nothing masked off (txt2img, the hires fix): the mask is all white.

    A1111 gives such a pass a full mask and, as masked image, a blank (mid-grey) picture.
    """
    from PIL import Image as PILImage

    pipe = inpaint_pipeline(model)
    white = PILImage.new("L", (width, height), 255)
    masked = encode(model, [white.convert("RGB")], seeds, hide=white)
    return pipe(image=image, mask_image=white, masked_image_latents=masked, width=width, height=height,
                generator=generators, **run_kwargs).images  # fmt: skip


def _conditioning_mask(mask: Image.Image | None, width: int, height: int, round_: bool) -> Image.Image:
    from PIL import Image as PILImage

    if mask is None:
        return PILImage.new("L", (width, height), 255)
    return mask.point(lambda v: 255 if v >= 128 else 0) if round_ else mask
