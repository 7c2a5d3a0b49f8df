"""The pixel side of an inpaint: mask, crop, overlay and fill, from one request (A1111 1.10's order of operations).

:func:`prepare` turns the request's init images and mask into the images the
VAE encodes (processing size, cropped to the mask's area for "only masked",
masked content filled), the mask at that size, and what goes back over the
result afterwards (:meth:`Prepared.finish`): the original outside the blurred
mask, at the original place and size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PIL import Image

from runtime.inpaint import crop, fill
from runtime.inpaint import mask as masks
from runtime.inpaint.resize import resize_image

if TYPE_CHECKING:
    from runtime.request import GenerationRequest

LATENT_UPSCALE = 3  # resize mode "just resize (latent upscale)": the latent is interpolated, not the pixels
BACKGROUND = (255, 255, 255)  # A1111's img2img_background_color: what transparent pixels of an init image become


@dataclass
class Prepared:
    images: list[Image.Image]  # RGB, what the VAE encodes, one per init image
    mask: Image.Image | None  # L, the processing size's mask (white: paint); None: the whole image is sampled
    overlays: list[Image.Image] = field(default_factory=list)  # RGBA, the original outside the mask, per init image
    paste_to: tuple[int, int, int, int] | None = None  # x, y, w, h of the crop in the original ("only masked")
    fields: dict[str, object] = field(default_factory=dict)  # A1111's infotext keys
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def finish(self, images: list[Image.Image]) -> list[Image.Image]:
        """The decoded results with the originals laid over them (and pasted back into the crop)."""
        if not self.overlays:
            return images
        return [crop.apply_overlay(im, self.paste_to, self.overlays[i % len(self.overlays)])
                for i, im in enumerate(images)]  # fmt: skip


def flatten(image: Image.Image) -> Image.Image:
    """An init image with transparency put on A1111's white background."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        base.alpha_composite(rgba)
        return base.convert("RGB")
    return image.convert("RGB")


def prepare(req: GenerationRequest) -> Prepared:
    width, height, mode = req.width, req.height, req.resize_mode
    fields: dict[str, object] = {}
    warnings: list[tuple[str, str]] = []
    image_mask: Image.Image | None = None
    overlay_mask: Image.Image | None = None
    region: crop.Box | None = None
    paste_to = None
    if req.mask is not None:
        image_mask = masks.binary_mask(req.mask, round_=req.mask_round)
        if req.init_images and image_mask.size != req.init_images[0].size:  # a mask drawn at another size
            image_mask = image_mask.resize(req.init_images[0].size, Image.Resampling.LANCZOS)
        if req.inpainting_mask_invert:
            image_mask = masks.invert(image_mask)
            fields["Mask mode"] = "Inpaint not masked"
        image_mask = masks.blur(image_mask, req.mask_blur_x, req.mask_blur_y)
        if req.mask_blur_x > 0 or req.mask_blur_y > 0:
            if req.mask_blur_x == req.mask_blur_y:  # A1111 writes one "Mask blur"; unequal x/y write nothing
                fields["Mask blur"] = req.mask_blur_x
        if req.inpaint_full_res:
            overlay_mask = image_mask
            region = crop.crop_region(image_mask, req.inpaint_full_res_padding)
            if region is not None:
                region = crop.expand_crop_region(region, width, height, image_mask.width, image_mask.height)
                x1, y1, x2, y2 = region
                image_mask = resize_image(2, image_mask.crop(region), width, height).convert("L")
                paste_to = (x1, y1, x2 - x1, y2 - y1)
                fields["Inpaint area"] = "Only masked"
                fields["Masked area padding"] = req.inpaint_full_res_padding
            else:
                image_mask = overlay_mask = None
                warnings.append(("蒙版是空的，无法“仅重绘蒙版区域”，本次按普通图生图生成。",
                                 'The mask is blank: "only masked" cannot work, so this was a plain img2img.'))  # fmt: skip
        else:
            image_mask = resize_image(mode, image_mask, width, height).convert("L")
            overlay_mask = masks.doubled(image_mask)

    images: list[Image.Image] = []
    overlays: list[Image.Image] = []
    for init in req.init_images:
        image = flatten(init)
        if region is None and mode != LATENT_UPSCALE:
            image = resize_image(mode, image, width, height)
        if image_mask is not None and overlay_mask is not None:
            if overlay_mask.size != image.size:
                overlay_mask = resize_image(mode, overlay_mask, image.width, image.height).convert("L")
            overlays.append(crop.overlay(image, overlay_mask))
        if region is not None:
            image = resize_image(2, image.crop(region), width, height)
        if image_mask is not None and req.inpainting_fill != fill.ORIGINAL:
            image = fill.fill(image, image_mask)
        images.append(image)
    if image_mask is not None and req.inpainting_fill != fill.ORIGINAL:
        fields["Masked content"] = fill.NAMES[req.inpainting_fill]
    return Prepared(images, image_mask, overlays, paste_to, fields, warnings)
