"""A1111's variation seeds: the starting noise of an image from its seed, its subseed and a strength.

As A1111's ``rng.ImageRNG``: each image's noise is drawn from its seed; with a
variation strength it is spherically interpolated (``slerp``) towards the noise
of its subseed (strength 1 gives the subseed's noise exactly); with "resize
seed from" W×H the noise is drawn at that size and placed, centred, into noise
of the real size drawn from the same seed, so a picture keeps its composition
when the size changes.  The draws are the ones the pipeline makes without
variation (one generator per image, on the generation device), so strength 0
gives the same image as no variation at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def slerp(val: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """A1111's ``slerp``, with its linear fallback.  A1111 calls it on one image's ``[C, H, W]`` noise, so the
    norms and angles are taken over dim 1, the rows: so are they here."""
    import torch

    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:  # (almost) parallel: A1111 mixes linearly, with its own weights
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(1) * high


def _randn(seed: int, shape: tuple[int, ...], device: str, dtype: torch.dtype | None) -> torch.Tensor:
    """``[C, H, W]`` noise drawn as diffusers draws one image's latents (``[1, C, H, W]``, one generator each)."""
    import torch

    gen = torch.Generator(device).manual_seed(seed)
    return torch.randn((1, *shape), generator=gen, device=device, dtype=dtype)[0]


def variation_noise(
    seeds: list[int],
    subseeds: list[int],
    strength: float,
    shape: tuple[int, int, int],
    device: str,
    resize_from: tuple[int, int] = (0, 0),
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """The ``[N, C, H, W]`` starting noise of a batch (``shape`` is one latent's ``C, H, W``)."""
    import torch

    channels, height, width = shape
    from_w, from_h = resize_from
    noise_shape = (channels, from_h // 8, from_w // 8) if from_w > 0 and from_h > 0 else shape
    out = []
    for i, seed in enumerate(seeds):
        noise = _randn(seed, noise_shape, device, dtype)
        if strength:
            sub = _randn(subseeds[i] if i < len(subseeds) else 0, noise_shape, device, dtype)
            noise = slerp(strength, noise, sub)
        if noise_shape != shape:
            x = _randn(seed, shape, device, dtype)
            dx, dy = (width - noise_shape[2]) // 2, (height - noise_shape[1]) // 2
            w = noise_shape[2] if dx >= 0 else noise_shape[2] + 2 * dx
            h = noise_shape[1] if dy >= 0 else noise_shape[1] + 2 * dy
            tx, ty = max(dx, 0), max(dy, 0)
            sx, sy = max(-dx, 0), max(-dy, 0)
            x[:, ty : ty + h, tx : tx + w] = noise[:, sy : sy + h, sx : sx + w]
            noise = x
        out.append(noise)
    return torch.stack(out)


@contextmanager
def replaced_noise(scheduler: Any, noise: Any) -> Iterator[None]:
    """While active, the noise an img2img pipeline adds to the init latents (``scheduler.add_noise``) is ``noise``
    (the variation noise), whatever the pipeline drew; ``None`` changes nothing.  Other wrappers of
    ``add_noise`` (the noise multiplier) keep working around it."""
    if noise is None:
        yield
        return
    own = vars(scheduler)
    had, before, current = "add_noise" in own, own.get("add_noise"), scheduler.add_noise

    def use(samples: Any, given: Any, timesteps: Any) -> Any:
        return current(samples, noise.to(given.device, given.dtype).reshape(given.shape), timesteps)

    scheduler.add_noise = use
    try:
        yield
    finally:
        if had:
            scheduler.add_noise = before
        else:
            del scheduler.add_noise
