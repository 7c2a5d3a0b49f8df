"""What a sampling algorithm is given besides the model: its sigmas, options and noise.

An algorithm is a generator: ``x, denoised = yield x, sigma`` asks for the model's
denoised prediction at noise level ``sigma`` for the latents ``x`` (in k-diffusion's
space, where ``x = x0 + sigma * noise``) and gets back the latents the model saw
and its prediction; the generator's return value is the final latents.

Noise comes from each image's own seeded generator, continuing the sequence its
starting noise was drawn from (A1111's ``ImageRNG``), and for the SDE samplers
from a Brownian tree per image seeded with the image's seed (k-diffusion's
``BrownianTreeNoiseSampler``, which A1111 seeds with the batch's seeds).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from runtime.sampling.schedules import DiscreteSigmas

Request = tuple[torch.Tensor, float]
Algorithm = Generator[Request, tuple[torch.Tensor, torch.Tensor], torch.Tensor]
NoiseSampler = Callable[[float, float], torch.Tensor]


@dataclass
class Context:
    """One run of an algorithm: the step sigmas (ending at 0 or sigma_min), the model's table, noise sources."""

    sigmas: list[float]
    model: DiscreteSigmas
    eta: float = 1.0
    s_noise: float = 1.0
    img2img: bool = False  # the run is the tail of a longer schedule
    solver_type: str = "midpoint"
    generators: Sequence[torch.Generator] | torch.Generator | None = None
    seeds: Sequence[int] | None = None
    dry: bool = False  # a planning run: noise is zero, the model is a stand-in
    uncond: torch.Tensor | None = None  # the unconditional prediction of the last evaluation (DDIM CFG++), as x0
    extra: dict[str, Any] = field(default_factory=dict)

    def randn(self, like: torch.Tensor) -> torch.Tensor:
        """The next normal noise of each image's generator."""
        if self.dry:
            return torch.zeros_like(like)
        gens = self.generators
        if isinstance(gens, Sequence) and len(gens) == like.shape[0]:
            rows = [torch.randn(like.shape[1:], generator=g, device=g.device, dtype=torch.float32) for g in gens]
            return torch.stack(rows).to(like.device, like.dtype)
        single = gens[0] if isinstance(gens, Sequence) and gens else gens
        device = single.device if isinstance(single, torch.Generator) else like.device
        noise = torch.randn(like.shape, generator=single, device=device, dtype=torch.float32)  # type: ignore[arg-type]
        out: torch.Tensor = noise.to(like.device, like.dtype)
        return out

    def brownian(self, like: torch.Tensor) -> NoiseSampler:
        """k-diffusion's Brownian-tree noise sampler over this run's sigma range, one tree per image seed."""
        positive = [_f32(s) for s in self.sigmas if s > 0]  # k-diffusion's sigmas are float32 tensors
        lo, hi = min(positive), max(positive)
        if self.dry or lo >= hi:
            return lambda sigma, sigma_next: torch.zeros_like(like) if self.dry else self.randn(like)
        import torchsde  # type: ignore[import-untyped]

        if self.seeds:
            seeds = list(self.seeds)
        else:  # no seeded generators: one random seed, a tree per image
            first = int(torch.randint(0, 2**31 - 1, ()).item())
            seeds = [first + i for i in range(like.shape[0])]
        w0 = torch.zeros_like(like[0], dtype=torch.float32)
        trees = [torchsde.BrownianTree(lo, w0, hi, entropy=seed) for seed in seeds]
        if len(trees) != like.shape[0]:
            trees = (trees * like.shape[0])[: like.shape[0]]

        def sample(sigma: float, sigma_next: float) -> torch.Tensor:
            a, b = (min(max(_f32(v), lo), hi) for v in sorted((sigma, sigma_next)))
            sign = 1.0 if sigma < sigma_next else -1.0
            with warnings.catch_warnings():  # torchsde keeps its ends to 7 digits and warns at the float32 ones
                warnings.filterwarnings("ignore", message="Should have t", category=UserWarning)
                w = torch.stack([tree(a, b) for tree in trees]) * sign
            out: torch.Tensor = (w / math.sqrt(b - a)).to(like.dtype)
            return out

        return sample


def _f32(value: float) -> float:
    return float(torch.tensor(value, dtype=torch.float32))


def to_d(x: torch.Tensor, sigma: float, denoised: torch.Tensor) -> torch.Tensor:
    """The probability-flow ODE's derivative dx/dsigma."""
    return (x - denoised) / sigma


def ancestral_step(sigma_from: float, sigma_to: float, eta: float = 1.0) -> tuple[float, float]:
    """(sigma_down, sigma_up): the deterministic target and the noise to add back, for an ancestral step."""
    if not eta or sigma_to == 0:
        return sigma_to, 0.0
    up = min(sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
    return (sigma_to**2 - up**2) ** 0.5, up
