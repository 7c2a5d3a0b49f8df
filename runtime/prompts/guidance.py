"""The guidance step of composable diffusion (``AND``), inside a diffusers pipeline.

diffusers' pipelines run the UNet once on ``[unconditional; conditional]`` and then take
``uncond + scale * (cond - uncond)``.  For a prompt with sub-prompts A1111 takes
``uncond + scale * sum(weight_i * (cond_i - uncond))`` (its CFGDenoiser.combine_denoised).
:func:`composable_guidance` gets there without changing the pipeline: a forward hook on the UNet
runs it once more for every further sub-prompt and hands the pipeline, as its "conditional"
half, ``uncond + sum(weight_i * (cond_i - uncond))``; the pipeline's own guidance step then gives
A1111's result.  It needs the unconditional half, so with CFG scale 1 (no guidance) it does
nothing and the engine says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import torch

from runtime.prompts.conditioning import ConditioningSchedule


@contextmanager
def composable_guidance(pipe: Any, schedule: ConditioningSchedule) -> Iterator[None]:
    """While active, the pipeline's UNet calls combine the schedule's sub-prompts."""
    if not schedule.composable:
        yield
        return
    busy = False

    def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
        nonlocal busy
        if busy:  # our own extra call
            return output
        noise = output[0] if isinstance(output, tuple) else output.sample
        images = len(schedule.prompts)
        if noise.shape[0] % (2 * images):
            return output  # no unconditional half: guidance is off
        busy = True
        try:
            combined = _combine(module, args, kwargs, noise, schedule)
        finally:
            busy = False
        return (combined, *output[1:]) if isinstance(output, tuple) else replace(output, sample=combined)

    handle = pipe.unet.register_forward_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def _combine(
    unet: Any, args: tuple[Any, ...], kwargs: dict[str, Any], noise: torch.Tensor, schedule: ConditioningSchedule
) -> torch.Tensor:
    half = noise.shape[0] // 2
    repeat = half // len(schedule.prompts)
    uncond, cond = noise[:half], noise[half:]
    first = torch.tensor(schedule.first_weights, device=noise.device, dtype=noise.dtype)
    first = first.repeat_interleave(repeat).reshape(-1, *[1] * (noise.ndim - 1))
    combined = uncond + (cond - uncond) * first
    sample = args[0] if args else kwargs["sample"]
    timestep = args[1] if len(args) > 1 else kwargs["timestep"]
    rest = {k: v for k, v in kwargs.items() if k not in ("sample", "timestep", "encoder_hidden_states")}
    for image, subs in enumerate(schedule.sub_prompts_at(schedule.current_step)):
        rows = slice(half + image * repeat, half + (image + 1) * repeat)  # this image's conditional rows
        mine = slice(image * repeat, (image + 1) * repeat)
        for embeds, pooled, weight in subs:
            call = dict(rest, encoder_hidden_states=embeds.to(noise.device, noise.dtype).expand(repeat, -1, -1))
            added = kwargs.get("added_cond_kwargs")
            if added:  # SDXL: this sub-prompt's pooled embedding, the image's size conditioning
                call["added_cond_kwargs"] = {**added, "time_ids": added["time_ids"][rows]}
                if pooled is not None:
                    call["added_cond_kwargs"]["text_embeds"] = pooled.to(noise.device, noise.dtype).expand(repeat, -1)
            if kwargs.get("timestep_cond") is not None:
                call["timestep_cond"] = kwargs["timestep_cond"][rows]
            t = (
                timestep[rows]
                if torch.is_tensor(timestep) and timestep.ndim and len(timestep) == len(noise)
                else timestep
            )
            out = unet(sample[rows], t, **call)
            pred = out[0] if isinstance(out, tuple) else out.sample
            combined[mine] += (pred - uncond[mine]) * weight
    return torch.cat([uncond, combined])
