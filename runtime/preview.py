"""Live previews for ``/sdapi/v1/progress``: A1111's "Approx cheap" latent-to-RGB map.

A fixed linear map from the 4 latent channels to RGB per architecture (the
coefficients of A1111's ``sd_vae_approx.cheap_approximation``: one table for
SD 1.x/2.x, one for SDXL), then ``x * 0.5 + 0.5`` clamped to 0..1, as A1111
turns a sample into an image.  It costs one small matrix product, so it runs
when a client asks, on the latents of the last finished step, at latent size
(1/8 of the image's side), as A1111's cheap previews are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

# rows: latent channels 0..3; columns: R, G, B
CHEAP_SD = ((0.298, 0.207, 0.208), (0.187, 0.286, 0.173), (-0.158, 0.189, 0.264), (-0.184, -0.271, -0.473))
CHEAP_SDXL = (
    (0.3448, 0.4168, 0.4395),
    (-0.1953, -0.0290, 0.0250),
    (0.1074, 0.0886, -0.0163),
    (-0.3730, -0.2499, -0.2088),
)


def cheap_preview(latent: Any, architecture: str) -> Image.Image | None:
    """One image's ``[4, H, W]`` latent as an RGB picture of ``W x H`` pixels (None for other latent shapes)."""
    import torch
    from PIL import Image

    if latent.dim() != 3 or latent.shape[0] != 4:
        return None
    coefs = torch.tensor(CHEAP_SDXL if architecture == "sdxl" else CHEAP_SD, dtype=torch.float32)
    rgb = torch.einsum("lxy,lr->rxy", latent.detach().to("cpu", torch.float32), coefs)
    rgb = torch.clamp(rgb * 0.5 + 0.5, 0.0, 1.0)
    pixels = (255.0 * rgb).permute(1, 2, 0).numpy().astype("uint8")
    return Image.fromarray(pixels, "RGB")
