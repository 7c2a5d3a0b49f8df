"""DPM fast and DPM adaptive: k-diffusion's ``DPMSolver`` (Lu et al. 2022) as A1111 1.10 calls it.

Both run between two noise levels rather than along a schedule: in txt2img the
model's smallest and largest sigma (the schedule type does not reach them, as in
A1111), in img2img the first and the last non-zero sigma of the run.  DPM fast
spends exactly ``steps`` model evaluations in third-order steps evenly spaced in
log sigma; DPM adaptive picks its own step sizes with a PID controller on the
difference between a second- and a third-order step.  A1111 passes its ancestral
eta (1) to both.  They end at the smallest sigma, not at 0, as in A1111.
"""

from __future__ import annotations

import math

import torch

from runtime.sampling.context import Algorithm, Context, ancestral_step
from runtime.sampling.schedules import linspace


def _sigma(t: float) -> float:
    return math.exp(-t)


def _t(sigma: float) -> float:
    return -math.log(sigma)


def _range(ctx: Context) -> tuple[float, float]:
    """(sigma_min, sigma_max): the model's in txt2img; in img2img the run's first and next-to-last sigma."""
    if ctx.img2img:
        return ctx.sigmas[-2], ctx.sigmas[0]
    return ctx.model.sigma_min, ctx.model.sigma_max


class _Solver:
    """The DPM-Solver steps of orders 1-3, each asking the model through the generator protocol."""

    def __init__(self) -> None:
        self.cache: dict[str, torch.Tensor] = {}
        self.seen: dict[str, torch.Tensor] = {}  # the latents the model was given, per evaluation

    def eps(self, key: str, x: torch.Tensor, t: float) -> Algorithm:
        if key in self.cache:
            return self.cache[key]
        sigma = _sigma(t)
        x, denoised = yield x, sigma
        self.seen[key] = x
        self.cache[key] = (x - denoised) / sigma
        return self.cache[key]

    def step_1(self, x: torch.Tensor, t: float, t_next: float) -> Algorithm:
        eps = yield from self.eps("eps", x, t)
        x = self.seen["eps"]
        return x - _sigma(t_next) * math.expm1(t_next - t) * eps

    def step_2(self, x: torch.Tensor, t: float, t_next: float, r1: float = 0.5) -> Algorithm:
        h = t_next - t
        eps = yield from self.eps("eps", x, t)
        x = self.seen["eps"]
        s1 = t + r1 * h
        u1 = x - _sigma(s1) * math.expm1(r1 * h) * eps
        eps_r1 = yield from self.eps("eps_r1", u1, s1)
        return x - _sigma(t_next) * math.expm1(h) * eps - _sigma(t_next) / (2 * r1) * math.expm1(h) * (eps_r1 - eps)

    def step_3(self, x: torch.Tensor, t: float, t_next: float, r1: float = 1 / 3, r2: float = 2 / 3) -> Algorithm:
        h = t_next - t
        eps = yield from self.eps("eps", x, t)
        x = self.seen["eps"]
        s1, s2 = t + r1 * h, t + r2 * h
        u1 = x - _sigma(s1) * math.expm1(r1 * h) * eps
        eps_r1 = yield from self.eps("eps_r1", u1, s1)
        u2 = (x - _sigma(s2) * math.expm1(r2 * h) * eps
              - _sigma(s2) * (r2 / r1) * (math.expm1(r2 * h) / (r2 * h) - 1) * (eps_r1 - eps))  # fmt: skip
        eps_r2 = yield from self.eps("eps_r2", u2, s2)
        return x - _sigma(t_next) * math.expm1(h) * eps - _sigma(t_next) / r2 * (math.expm1(h) / h - 1) * (eps_r2 - eps)


def _noisy_target(ctx: Context, t: float, t_next: float, t_end: float) -> tuple[float, float]:
    """(where the deterministic step ends, the noise to add back) for an ancestral DPM-Solver step."""
    if not ctx.eta:
        return t_next, 0.0
    down, _ = ancestral_step(_sigma(t), _sigma(t_next), ctx.eta)
    target = min(t_end, _t(down)) if down > 0 else t_end
    return target, max(_sigma(t_next) ** 2 - _sigma(target) ** 2, 0.0) ** 0.5


def dpm_fast(ctx: Context, x: torch.Tensor) -> Algorithm:
    sigma_min, sigma_max = _range(ctx)
    nfe = len(ctx.sigmas) - 1
    t_start, t_end = _t(sigma_max), _t(sigma_min)
    m = nfe // 3 + 1
    ts = linspace(t_start, t_end, m + 1)
    orders = [3] * (m - 2) + [2, 1] if nfe % 3 == 0 else [3] * (m - 1) + [nfe % 3]
    for i, order in enumerate(orders):
        t, t_next = ts[i], ts[i + 1]
        target, up = _noisy_target(ctx, t, t_next, t_end)
        solver = _Solver()
        if order == 1:
            x = yield from solver.step_1(x, t, target)
        elif order == 2:
            x = yield from solver.step_2(x, t, target)
        else:
            x = yield from solver.step_3(x, t, target)
        x = x + up * ctx.s_noise * ctx.randn(x)
    return x


def dpm_adaptive(ctx: Context, x: torch.Tensor, order: int = 3, rtol: float = 0.05, atol: float = 0.0078,
                 h_init: float = 0.05, accept_safety: float = 0.81) -> Algorithm:  # fmt: skip
    """The adaptive solver with k-diffusion's defaults (an integral controller: icoeff 1, pcoeff = dcoeff = 0)."""
    sigma_min, sigma_max = _range(ctx)
    t_end = _t(sigma_min)
    s = _t(sigma_max)
    x_prev = x
    h = h_init
    exponent = 1 / (1.5 if ctx.eta else order)  # the controller's b1 = icoeff / order
    while s < t_end - 1e-5:
        t = min(t_end, s + h)
        target, up = _noisy_target(ctx, s, t, t_end)
        solver = _Solver()
        x_low = yield from solver.step_2(x, s, target, r1=1 / 3)
        x_high = yield from solver.step_3(x, s, target)
        x = solver.seen["eps"]
        delta = torch.maximum(torch.tensor(atol), rtol * torch.maximum(x_low.abs(), x_prev.abs()))
        error = float(torch.linalg.norm((x_low - x_high) / delta) / x.numel() ** 0.5)
        factor = 1 + math.atan((1 / (error + 1e-8)) ** exponent - 1)
        if ctx.dry:
            factor = max(factor, 1.0)
        h *= factor
        if factor >= accept_safety:
            x_prev = x_low
            x = x_high + up * ctx.s_noise * ctx.randn(x)
            s = t
    return x
