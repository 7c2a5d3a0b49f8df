"""A1111 1.10's timestep samplers DDIM, DDIM CFG++ and PLMS (``sd_samplers_timesteps_impl.py``).

They walk A1111's own timesteps, ``range(0, 1000, 1000 // steps) + 1`` from the
top, and ignore the schedule type.  As in A1111 the list's first timestep (1) is
only stepped to, never evaluated: 20 steps make 19 model evaluations, and the
result is the latents at timestep 1.  They are written here in k-diffusion's
space (``x / sqrt(ᾱ)``, noise level ``sigma = sqrt((1 - ᾱ) / ᾱ)``), where a
DDIM step with eta 0 is an Euler step in sigma; the scheduler hands the pipeline
the final latents scaled back to the model's space.
"""

from __future__ import annotations

import math

import torch

from runtime.sampling.context import Algorithm, Context
from runtime.sampling.schedules import DiscreteSigmas

CFGPP_SCALE = 1 / 12.5  # DDIM CFG++ maps CFG 0-12.5 onto its guidance 0-1


def timesteps(steps: int, count: int = 1000) -> list[int]:
    """A1111's DDIM/PLMS timesteps, ascending: ``clip(range(0, count, count // steps) + 1, 0, count - 1)``."""
    return [min(max(t + 1, 0), count - 1) for t in range(0, count, max(count // steps, 1))]


def timestep_sigmas(steps: int, model: DiscreteSigmas) -> list[float]:
    """The noise levels of :func:`timesteps`, from the top: the run evaluates all but the last."""
    return [model.sigmas[t] for t in reversed(timesteps(steps, len(model.sigmas)))]


def _ddim_step(ctx: Context, x: torch.Tensor, sigma: float, sigma_prev: float, x0: torch.Tensor,
               direction: torch.Tensor) -> torch.Tensor:  # fmt: skip
    a_t, a_prev = 1 / (1 + sigma**2), 1 / (1 + sigma_prev**2)
    noise_level = ctx.eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
    keep = math.sqrt(max(1 - a_prev - noise_level**2, 0.0) / a_prev)
    return x0 + keep * direction + noise_level / math.sqrt(a_prev) * ctx.randn(x)


def ddim(ctx: Context, x: torch.Tensor) -> Algorithm:
    s = ctx.sigmas
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        x = _ddim_step(ctx, x, s[i], s[i + 1], denoised, (x - denoised) / s[i])
    return x


def ddim_cfgpp(ctx: Context, x: torch.Tensor) -> Algorithm:
    """CFG++ (Chung et al. 2024): the guided prediction for x0, the unconditional noise for the way back."""
    s = ctx.sigmas
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        uncond = ctx.uncond if ctx.uncond is not None else denoised
        x = _ddim_step(ctx, x, s[i], s[i + 1], denoised, (x - uncond) / s[i])
    return x


def plms(ctx: Context, x: torch.Tensor) -> Algorithm:
    """Pseudo linear multistep: a pseudo improved Euler first step, then Adams-Bashforth on the noise up to order 4."""
    s = ctx.sigmas
    old: list[torch.Tensor] = []
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        e_t = (x - denoised) / s[i]
        if not old:
            x_next = x + (s[i + 1] - s[i]) * e_t
            x_next, denoised_next = yield x_next, s[i + 1]
            e_prime = (e_t + (x_next - denoised_next) / s[i + 1]) / 2
        elif len(old) == 1:
            e_prime = (3 * e_t - old[-1]) / 2
        elif len(old) == 2:
            e_prime = (23 * e_t - 16 * old[-1] + 5 * old[-2]) / 12
        else:
            e_prime = (55 * e_t - 59 * old[-1] + 37 * old[-2] - 9 * old[-3]) / 24
        x = x + (s[i + 1] - s[i]) * e_prime
        old = [*old, e_t][-3:]
    return x
