"""A1111 1.10's schedule types: the noise levels (sigmas) of ``n`` steps, in plain Python.

Each function follows the formula of ``modules/sd_schedulers.py`` and
k-diffusion's ``get_sigmas_*``; those that read the model ("need_inner_model")
get a :class:`DiscreteSigmas`, the model's own noise levels, built from its
``alphas_cumprod`` as k-diffusion's ``DiscreteSchedule`` builds them (with its
``sigma_to_t`` / ``t_to_sigma`` interpolation in log sigma).  The result has one
more entry than steps and ends at 0 (KL Optimal ends at the smallest sigma, as
in A1111).  No torch is needed: the lists are short.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# Align Your Steps (NVIDIA's published 10-step tables, as A1111 ships them), SD 1.5 and SDXL.
AYS_SD15 = (14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029)
AYS_SDXL = (14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029)
BETA_ALPHA = BETA_BETA = 0.6  # A1111's defaults for "Beta" (options beta_dist_alpha, beta_dist_beta)


def linspace(start: float, end: float, n: int) -> list[float]:
    if n == 1:
        return [start]
    return [start + (end - start) * i / (n - 1) for i in range(n)]


class DiscreteSigmas:
    """A model's noise levels, ``sqrt((1 - ᾱ_t) / ᾱ_t)`` for each training timestep, ascending."""

    def __init__(self, alphas_cumprod: Sequence[float]) -> None:
        self.sigmas = [math.sqrt((1 - a) / a) for a in alphas_cumprod]
        self.log_sigmas = [math.log(s) for s in self.sigmas]

    @property
    def sigma_min(self) -> float:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> float:
        return self.sigmas[-1]

    def t_to_sigma(self, t: float) -> float:
        """Interpolates log sigma between the neighbouring timesteps."""
        t = min(max(t, 0.0), len(self.sigmas) - 1.0)
        low, high = math.floor(t), math.ceil(t)
        w = t - low
        return math.exp((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high])

    def sigma_to_t(self, sigma: float) -> float:
        """The (fractional) timestep of ``sigma``: k-diffusion's ``DiscreteSchedule.sigma_to_t``."""
        log_sigma = math.log(sigma)
        low = min(max(bisect.bisect_right(self.log_sigmas, log_sigma) - 1, 0), len(self.sigmas) - 2)
        lo, hi = self.log_sigmas[low], self.log_sigmas[low + 1]
        w = min(max((lo - log_sigma) / (lo - hi), 0.0), 1.0)
        return (1 - w) * low + w * (low + 1)

    def model_timestep(self, sigma: float) -> float:
        """The timestep the UNet is given for ``sigma``."""
        return self.sigma_to_t(sigma)


class LCMSigmas(DiscreteSigmas):
    """A1111's LCM denoiser: 50 of the model's timesteps (19, 39, …, 999), a sigma snapped to the nearest."""

    ORIGINAL = 50

    def __init__(self, alphas_cumprod: Sequence[float]) -> None:
        self.skip = len(alphas_cumprod) // self.ORIGINAL
        last = len(alphas_cumprod) - 1
        super().__init__([alphas_cumprod[last - x * self.skip] for x in reversed(range(self.ORIGINAL))])

    def sigma_to_t(self, sigma: float) -> float:
        log_sigma = math.log(sigma)
        index = min(range(len(self.log_sigmas)), key=lambda i: abs(log_sigma - self.log_sigmas[i]))
        return float(index * self.skip + self.skip - 1)

    def t_to_sigma(self, t: float) -> float:
        return super().t_to_sigma((t - (self.skip - 1)) / self.skip)


def _append_zero(sigmas: list[float]) -> list[float]:
    return [*sigmas, 0.0]


def uniform(n: int, model: DiscreteSigmas) -> list[float]:
    """The model's timesteps evenly from the last to the first (k-diffusion's ``get_sigmas``)."""
    start, end = model.sigma_to_t(model.sigma_max), model.sigma_to_t(model.sigma_min)
    return _append_zero([model.t_to_sigma(t) for t in linspace(start, end, n)])


def karras(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> list[float]:
    """Karras et al. (2022): evenly spaced in ``sigma ** (1 / rho)``."""
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _append_zero([(hi + r * (lo - hi)) ** rho for r in linspace(0, 1, n)])


def exponential(n: int, sigma_min: float, sigma_max: float) -> list[float]:
    """Evenly spaced in log sigma."""
    return _append_zero([math.exp(v) for v in linspace(math.log(sigma_max), math.log(sigma_min), n)])


def polyexponential(n: int, sigma_min: float, sigma_max: float, rho: float = 1.0) -> list[float]:
    """Log sigma along ``ramp ** rho`` (rho 1: the exponential schedule)."""
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    return _append_zero([math.exp(r**rho * (hi - lo) + lo) for r in linspace(1, 0, n)])


def sgm_uniform(n: int, model: DiscreteSigmas) -> list[float]:
    """Timesteps evenly from the last, ``n + 1`` of them with the last dropped ("trailing" spacing)."""
    start, end = model.sigma_to_t(model.sigma_max), model.sigma_to_t(model.sigma_min)
    return _append_zero([model.t_to_sigma(t) for t in linspace(start, end, n + 1)[:-1]])


def kl_optimal(n: int, sigma_min: float, sigma_max: float) -> list[float]:
    """Evenly spaced in ``arctan(sigma)`` (Sabour et al. 2024), from sigma_max to sigma_min: ``n + 1`` values."""
    a_min, a_max = math.atan(sigma_min), math.atan(sigma_max)
    return [math.tan(i / n * a_min + (1 - i / n) * a_max) for i in range(n + 1)]


def align_your_steps(n: int, *, sdxl: bool = False) -> list[float]:
    """NVIDIA's 10-step table, log-linearly interpolated to ``n`` steps."""
    table = list(AYS_SDXL if sdxl else AYS_SD15)
    if n == len(table):
        return _append_zero(table)
    xs = linspace(0, 1, len(table))
    ys = [math.log(s) for s in reversed(table)]
    out = []
    for x in linspace(0, 1, n):
        i = min(bisect.bisect_right(xs, x) - 1, len(xs) - 2)
        w = (x - xs[i]) / (xs[i + 1] - xs[i])
        out.append(math.exp(ys[i] + w * (ys[i + 1] - ys[i])))
    return _append_zero(out[::-1])


def simple(n: int, model: DiscreteSigmas) -> list[float]:
    """Every ``len / n``-th of the model's sigmas from the top."""
    stride = len(model.sigmas) / n
    return _append_zero([model.sigmas[-(1 + int(x * stride))] for x in range(n)])


def normal(n: int, model: DiscreteSigmas) -> list[float]:
    """Timesteps evenly from the last to the first, ``n`` of them."""
    start, end = model.sigma_to_t(model.sigma_max), model.sigma_to_t(model.sigma_min)
    return _append_zero([model.t_to_sigma(t) for t in linspace(start, end, n)])


def ddim(n: int, model: DiscreteSigmas) -> list[float]:
    """Every ``len // n``-th of the model's sigmas from the second: may give a few more than ``n`` steps."""
    stride = max(len(model.sigmas) // n, 1)
    return _append_zero(model.sigmas[1::stride][::-1])


def beta(n: int, sigma_min: float, sigma_max: float, a: float = BETA_ALPHA, b: float = BETA_BETA) -> list[float]:
    """Beta-distribution quantiles of ``1 - linspace(0, 1, n)`` (Lee et al. 2024), from sigma_max to sigma_min."""
    return _append_zero([sigma_min + beta_ppf(1 - x, a, b) * (sigma_max - sigma_min) for x in linspace(0, 1, n)])


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)`` (continued fraction, modified Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast only below the mean: use the symmetry
        return 1.0 - beta_cdf(1 - x, b, a)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):  # fmt: skip
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * f


def beta_ppf(p: float, a: float, b: float) -> float:
    """The inverse of :func:`beta_cdf` in ``x`` (bisection to double precision)."""
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if beta_cdf(mid, a, b) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


Builder = Callable[..., list[float]]
_NEEDS_MODEL: Mapping[str, Builder] = {
    "uniform": uniform, "sgm_uniform": sgm_uniform, "simple": simple, "normal": normal, "ddim": ddim,
}  # fmt: skip
_NEEDS_RANGE: Mapping[str, Builder] = {
    "karras": karras, "exponential": exponential, "polyexponential": polyexponential,
    "kl_optimal": kl_optimal, "beta": beta,
}  # fmt: skip


def sigmas(ident: str | None, steps: int, model: DiscreteSigmas, *, sdxl: bool = False,
           discard_penultimate: bool = False, **options: Any) -> list[float]:  # fmt: skip
    """The sigmas A1111 1.10 samples ``steps`` steps with (``KDiffusionSampler.get_sigmas``).

    ``ident`` None is the model's uniform spacing (a sampler without a default, Automatic).
    ``discard_penultimate`` (DPM2, DPM2 a, DPM++ 3M SDE) makes one step more and drops the next-to-last sigma.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps}")
    n = steps + 1 if discard_penultimate else steps
    if ident is None or ident in _NEEDS_MODEL:
        out = _NEEDS_MODEL[ident or "uniform"](n, model)
    elif ident in _NEEDS_RANGE:
        out = _NEEDS_RANGE[ident](n, model.sigma_min, model.sigma_max, **options)
    elif ident == "align_your_steps":
        out = align_your_steps(n, sdxl=sdxl)
    else:
        raise KeyError(ident)
    if discard_penultimate and len(out) > 2:
        out = [*out[:-2], out[-1]]
    return out


def alphas_cumprod(config: Mapping[str, Any]) -> list[float]:
    """The training ``ᾱ_t`` of a checkpoint's scheduler config (linear and scaled_linear betas, as diffusers)."""
    count = int(config.get("num_train_timesteps", 1000))
    start, end = float(config.get("beta_start", 0.00085)), float(config.get("beta_end", 0.012))
    kind = str(config.get("beta_schedule", "scaled_linear"))
    if config.get("trained_betas"):
        betas = [float(b) for b in config["trained_betas"]]
    elif kind == "scaled_linear":
        betas = [v * v for v in linspace(start**0.5, end**0.5, count)]
    elif kind == "linear":
        betas = linspace(start, end, count)
    elif kind == "squaredcos_cap_v2":

        def bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        betas = [min(1 - bar((i + 1) / count) / bar(i / count), 0.999) for i in range(count)]
    else:
        raise ValueError(f"beta_schedule {kind!r} is not supported")
    out, product = [], 1.0
    for b in betas:
        product *= 1 - b
        out.append(product)
    return out
