"""ControlNet inside any diffusers pipeline, the way the extension hooks A1111's UNet.

:func:`controlled_unet` puts a forward pre-hook on the pipeline's UNet: before each UNet call it runs every
active unit's ControlNet on the same latents, timestep and text embeddings, adds their residuals, and
hands them to the UNet as ``down_block_additional_residuals`` / ``mid_block_additional_residual``.  So
txt2img, img2img, inpainting and the hires pass get ControlNet without a pipeline of their own, and
several units share one UNet call.  The extension's rules:

* **Steps**: a unit acts while ``step / steps`` lies in ``[guidance_start, guidance_end]``.
* **Control mode**: "Balanced" adds ``weight × residual`` to every row; the other two use the extension's
  soft injection, per-layer scales ``weight × 0.825^(12-i)`` for the 13 residuals (deep layers keep more);
  "ControlNet is more important" adds the control to the conditional rows only (CFG then amplifies it).
* **Weight 0** adds nothing: the image equals the one without the unit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

SOFT_BASE = 0.825


@dataclass(frozen=True)
class ActiveUnit:
    """A unit ready to run: its network, its map as a tensor (1, 3, H, W) in [0, 1], and its settings."""

    model: Any
    hint: torch.Tensor
    weight: float
    start: float
    end: float
    control_mode: str

    def scales(self, count: int) -> list[float]:
        if self.control_mode == "Balanced":
            return [self.weight] * count
        return [self.weight * SOFT_BASE ** float(12 - i) for i in range(13)][:count] + [self.weight] * max(0, count - 13)


def acts_at(unit: ActiveUnit, step: int, steps: int) -> bool:
    done = step / max(1, steps)
    return unit.start <= done <= unit.end and unit.weight != 0


@contextmanager
def controlled_unet(pipe: Any, units: Sequence[ActiveUnit], progress: Callable[[], tuple[int, int]]) -> Iterator[None]:
    """While active, every UNet call of ``pipe`` gets the units' residuals; ``progress()`` is (step, steps)."""
    if not units:
        yield
        return

    def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        text = args[2] if len(args) > 2 else kwargs["encoder_hidden_states"]
        step, steps = progress()
        down: list[torch.Tensor] | None = None
        mid: torch.Tensor | None = None
        for unit in units:
            if not acts_at(unit, step, steps):
                continue
            d, m = _residuals(unit, sample, timestep, text, kwargs)
            down = d if down is None else [a + b for a, b in zip(down, d, strict=True)]
            mid = m if mid is None else mid + m
        if down is None or mid is None:
            return args, kwargs
        kwargs = dict(kwargs)
        if kwargs.get("down_block_additional_residuals") is not None:  # a pipeline's own ControlNet, added to
            down = [a + b for a, b in zip(kwargs["down_block_additional_residuals"], down, strict=True)]
            mid = kwargs["mid_block_additional_residual"] + mid
        kwargs["down_block_additional_residuals"] = down
        kwargs["mid_block_additional_residual"] = mid
        return args, kwargs

    handle = pipe.unet.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def _residuals(unit: ActiveUnit, sample: torch.Tensor, timestep: Any, text: torch.Tensor, kwargs: dict[str, Any]
               ) -> tuple[list[torch.Tensor], torch.Tensor]:  # fmt: skip
    model = unit.model
    rows = sample.shape[0]
    hint = unit.hint.to(sample.device, model.dtype)
    size = (sample.shape[-2] * 8, sample.shape[-1] * 8)
    if tuple(hint.shape[-2:]) != size:  # the hires pass: the map follows the larger image (bilinear)
        hint = torch.nn.functional.interpolate(hint, size=size, mode="bilinear", align_corners=False)
    hint = hint.expand(rows, -1, -1, -1) if hint.shape[0] == 1 else hint
    extra = {k: kwargs[k] for k in ("added_cond_kwargs", "timestep_cond") if kwargs.get(k) is not None}
    with torch.no_grad():
        down, mid = model(sample.to(model.dtype), timestep, encoder_hidden_states=text.to(model.dtype),
                          controlnet_cond=hint, conditioning_scale=1.0, return_dict=False, **extra)  # fmt: skip
    outputs = [*down, mid]
    scales = unit.scales(len(outputs))
    mark = None
    if unit.control_mode == "ControlNet is more important" and rows % 2 == 0:
        # diffusers batches [unconditional; conditional]: only the conditional half gets the control
        mark = torch.zeros(rows, 1, 1, 1, device=sample.device, dtype=sample.dtype)
        mark[rows // 2 :] = 1
    scaled = []
    for out, scale in zip(outputs, scales, strict=True):
        out = out.to(sample.dtype) * scale
        scaled.append(out * mark if mark is not None else out)
    return scaled[:-1], scaled[-1]
