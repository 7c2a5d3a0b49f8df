"""k-diffusion's samplers as A1111 1.10 runs them, written as generators (see :mod:`runtime.sampling.context`).

The algorithms are those of crowsonkb/k-diffusion's ``sampling.py`` (Karras et
al. 2022; DPM-Solver++ by Lu et al. 2022) and A1111's own Restart
(``sd_samplers_extra.py``) and LCM (``sd_samplers_lcm.py``), with A1111's
defaults: eta 1 and noise scale 1 for the ancestral and SDE samplers, no churn.
"""

from __future__ import annotations

import math

import torch

from runtime.sampling.context import Algorithm, Context, ancestral_step, to_d
from runtime.sampling.schedules import karras


def _t(sigma: float) -> float:
    return -math.log(sigma)


def _sigma(t: float) -> float:
    return math.exp(-t)


def euler(ctx: Context, x: torch.Tensor) -> Algorithm:
    s = ctx.sigmas
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        x = x + to_d(x, s[i], denoised) * (s[i + 1] - s[i])
    return x


def euler_a(ctx: Context, x: torch.Tensor) -> Algorithm:
    s = ctx.sigmas
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        down, up = ancestral_step(s[i], s[i + 1], ctx.eta)
        x = x + to_d(x, s[i], denoised) * (down - s[i])
        if s[i + 1] > 0:
            x = x + ctx.randn(x) * ctx.s_noise * up
    return x


def _heun_step(x: torch.Tensor, denoised: torch.Tensor, sigma: float, target: float) -> Algorithm:
    """Heun's step from ``sigma`` to ``target`` (Euler's when the target is 0)."""
    d, dt = to_d(x, sigma, denoised), target - sigma
    if target == 0:
        return x + d * dt
    x_2, denoised_2 = yield x + d * dt, target
    return x + (d + to_d(x_2, target, denoised_2)) / 2 * dt


def heun(ctx: Context, x: torch.Tensor) -> Algorithm:
    s = ctx.sigmas
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        x = yield from _heun_step(x, denoised, s[i], s[i + 1])
    return x


def _dpm_2_step(x: torch.Tensor, denoised: torch.Tensor, sigma: float, target: float) -> Algorithm:
    """DPM2's step: the derivative at the midpoint in log sigma (Euler's when the target is 0)."""
    d = to_d(x, sigma, denoised)
    if target == 0:
        return x + d * (target - sigma)
    mid = math.sqrt(sigma * target)
    x_2, denoised_2 = yield x + d * (mid - sigma), mid
    return x + to_d(x_2, mid, denoised_2) * (target - sigma)


def dpm_2(ctx: Context, x: torch.Tensor) -> Algorithm:
    s = ctx.sigmas
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        x = yield from _dpm_2_step(x, denoised, s[i], s[i + 1])
    return x


def dpm_2_a(ctx: Context, x: torch.Tensor) -> Algorithm:
    s = ctx.sigmas
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        down, up = ancestral_step(s[i], s[i + 1], ctx.eta)
        x = yield from _dpm_2_step(x, denoised, s[i], down)
        x = x + ctx.randn(x) * ctx.s_noise * up
    return x


def lms(ctx: Context, x: torch.Tensor, order: int = 4) -> Algorithm:
    s = ctx.sigmas
    ds: list[torch.Tensor] = []
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        ds = [*ds, to_d(x, s[i], denoised)][-order:]
        current = min(i + 1, order)
        for j, d in zip(range(current), reversed(ds), strict=False):
            x = x + lms_coefficient(s, current, i, j) * d
    return x


def dpmpp_2s_a(ctx: Context, x: torch.Tensor) -> Algorithm:
    s = ctx.sigmas
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        down, up = ancestral_step(s[i], s[i + 1], ctx.eta)
        if down == 0:
            x = x + to_d(x, s[i], denoised) * (down - s[i])
        else:
            t, t_next = _t(s[i]), _t(down)
            h = t_next - t
            mid = _sigma(t + h / 2)
            x_2 = (mid / s[i]) * x - math.expm1(-h / 2) * denoised
            x_2, denoised_2 = yield x_2, mid
            x = (down / s[i]) * x - math.expm1(-h) * denoised_2
        if s[i + 1] > 0:
            x = x + ctx.randn(x) * ctx.s_noise * up
    return x


def dpmpp_2m(ctx: Context, x: torch.Tensor) -> Algorithm:
    s = ctx.sigmas
    old: torch.Tensor | None = None
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        if s[i + 1] == 0:
            x = denoised
        else:
            h = _t(s[i + 1]) - _t(s[i])
            if old is not None:
                r = (_t(s[i]) - _t(s[i - 1])) / h
                denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old
            else:
                denoised_d = denoised
            x = (s[i + 1] / s[i]) * x - math.expm1(-h) * denoised_d
        old = denoised
    return x


def dpmpp_sde(ctx: Context, x: torch.Tensor, r: float = 0.5) -> Algorithm:
    s = ctx.sigmas
    noise = ctx.brownian(x)
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        if s[i + 1] == 0:
            x = x + to_d(x, s[i], denoised) * (s[i + 1] - s[i])
            continue
        t, t_next = _t(s[i]), _t(s[i + 1])
        h = t_next - t
        mid = _sigma(t + h * r)
        fac = 1 / (2 * r)
        down, up = ancestral_step(s[i], mid, ctx.eta)
        x_2 = (down / s[i]) * x - math.expm1(t - _t(down)) * denoised
        x_2 = x_2 + noise(s[i], mid) * ctx.s_noise * up
        x_2, denoised_2 = yield x_2, mid
        down, up = ancestral_step(s[i], s[i + 1], ctx.eta)
        denoised_d = (1 - fac) * denoised + fac * denoised_2
        x = (down / s[i]) * x - math.expm1(t - _t(down)) * denoised_d
        x = x + noise(s[i], s[i + 1]) * ctx.s_noise * up
    return x


def dpmpp_2m_sde(ctx: Context, x: torch.Tensor) -> Algorithm:
    s, eta = ctx.sigmas, ctx.eta
    noise = ctx.brownian(x)
    old: torch.Tensor | None = None
    h_last = 0.0
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        if s[i + 1] == 0:
            x = denoised
        else:
            h = _t(s[i + 1]) - _t(s[i])
            eta_h = eta * h
            x = (s[i + 1] / s[i]) * math.exp(-eta_h) * x - math.expm1(-h - eta_h) * denoised
            if old is not None:
                r = h_last / h
                if ctx.solver_type == "heun":
                    x = x + (-math.expm1(-h - eta_h) / (-h - eta_h) + 1) * (1 / r) * (denoised - old)
                else:
                    x = x - 0.5 * math.expm1(-h - eta_h) * (1 / r) * (denoised - old)
            if eta:
                x = x + noise(s[i], s[i + 1]) * s[i + 1] * math.sqrt(-math.expm1(-2 * eta_h)) * ctx.s_noise
            h_last = h
        old = denoised
    return x


def dpmpp_2m_sde_heun(ctx: Context, x: torch.Tensor) -> Algorithm:
    ctx.solver_type = "heun"
    return (yield from dpmpp_2m_sde(ctx, x))


def dpmpp_3m_sde(ctx: Context, x: torch.Tensor) -> Algorithm:
    s, eta = ctx.sigmas, ctx.eta
    noise = ctx.brownian(x)
    d_1: torch.Tensor | None = None
    d_2: torch.Tensor | None = None
    h_1: float | None = None
    h_2: float | None = None
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        if s[i + 1] == 0:
            x = denoised
            continue
        h = _t(s[i + 1]) - _t(s[i])
        h_eta = h * (eta + 1)
        x = math.exp(-h_eta) * x - math.expm1(-h_eta) * denoised
        phi_2 = math.expm1(-h_eta) / h_eta + 1
        if h_2 is not None and h_1 is not None and d_1 is not None and d_2 is not None:
            r0, r1 = h_1 / h, h_2 / h
            d1_0, d1_1 = (denoised - d_1) / r0, (d_1 - d_2) / r1
            d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
            d2 = (d1_0 - d1_1) / (r0 + r1)
            x = x + phi_2 * d1 - (phi_2 / h_eta - 0.5) * d2
        elif h_1 is not None and d_1 is not None:
            x = x + phi_2 * (denoised - d_1) / (h_1 / h)
        if eta:
            x = x + noise(s[i], s[i + 1]) * s[i + 1] * math.sqrt(-math.expm1(-2 * h * eta)) * ctx.s_noise
        d_1, d_2 = denoised, d_1
        h_1, h_2 = h, h_1
    return x


def restart(ctx: Context, x: torch.Tensor) -> Algorithm:
    """A1111's Restart (Xu et al. 2023): Heun steps, and from 20 steps a stretch run again after renoising."""
    s = list(ctx.sigmas)
    steps = len(s) - 1
    restarts: dict[float, tuple[int, int, float]] = {}
    if steps >= 20:
        restart_steps, times = (steps // 4, 2) if steps >= 36 else (9, 1)
        s = karras(steps - restart_steps * times, s[-2], s[0])
        restarts = {0.1: (restart_steps + 1, times, 2.0)}
    at = {min(range(len(s)), key=lambda k: abs(s[k] - key)): value for key, value in restarts.items()}
    pairs: list[tuple[float, float]] = []
    for i in range(len(s) - 1):
        pairs.append((s[i], s[i + 1]))
        if i + 1 in at:
            count, times, top = at[i + 1]
            high = min(range(len(s)), key=lambda k: abs(s[k] - top))
            if high < i + 1:
                again = karras(count, s[i + 1], s[high])[:-1]
                pairs += list(zip(again[:-1], again[1:], strict=True)) * times
    last: float | None = None
    for old_sigma, new_sigma in pairs:
        if last is not None and last < old_sigma:
            x = x + ctx.randn(x) * ctx.s_noise * (old_sigma**2 - last**2) ** 0.5
        x, denoised = yield x, old_sigma
        x = yield from _heun_step(x, denoised, old_sigma, new_sigma)
        last = new_sigma
    return x


def lcm(ctx: Context, x: torch.Tensor) -> Algorithm:
    """A1111's LCM: jump to the prediction, then noise it to the next level."""
    s = ctx.sigmas
    for i in range(len(s) - 1):
        x, denoised = yield x, s[i]
        x = denoised
        if s[i + 1] > 0:
            x = x + s[i + 1] * ctx.randn(x)
    return x


def lms_coefficient(sigmas: list[float], order: int, t: int, current_order: int) -> float:
    """k-diffusion's ``linear_multistep_coeff`` (it calls ``scipy.integrate.quad``), integrated exactly.

    The integral over [sigmas[t], sigmas[t + 1]] of the Lagrange basis polynomial
    through sigmas[t - k] (k < order) that is 1 at sigmas[t - current_order].
    """
    coefficients = [1.0]  # lowest degree first
    anchor = sigmas[t - current_order]
    for k in range(order):
        if k == current_order:
            continue
        root, scale = sigmas[t - k], 1.0 / (anchor - sigmas[t - k])
        shifted = [0.0, *coefficients]  # multiply by (tau - root) * scale
        for i, c in enumerate(coefficients):
            shifted[i] -= root * c
        coefficients = [c * scale for c in shifted]
    lo, hi = sigmas[t], sigmas[t + 1]
    return sum(c * (hi ** (i + 1) - lo ** (i + 1)) / (i + 1) for i, c in enumerate(coefficients))
