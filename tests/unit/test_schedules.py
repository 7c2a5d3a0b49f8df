"""A1111 1.10's schedule types against references: diffusers' own schedules, closed forms and published tables."""

from __future__ import annotations

import math
from typing import Any

import pytest

from runtime.sampling import schedules
from runtime.sampling.schedules import DiscreteSigmas

SD15: dict[str, Any] = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                        "beta_schedule": "scaled_linear"}  # fmt: skip
MODEL = DiscreteSigmas(schedules.alphas_cumprod(SD15))


def _euler(**config: Any) -> Any:
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler.from_config({**SD15, **config})


def test_the_model_s_sigmas_are_diffusers_own() -> None:
    reference = [float(s) for s in _euler().sigmas[:-1]][::-1]  # diffusers keeps them descending, then 0
    assert len(MODEL.sigmas) == 1000
    assert MODEL.sigmas == pytest.approx(reference, rel=3e-5)  # diffusers: float32
    assert (MODEL.sigma_min, MODEL.sigma_max) == pytest.approx((0.0292, 14.6146), abs=1e-4)


def test_sigma_to_t_is_diffusers_log_interpolation() -> None:
    import numpy as np

    scheduler = _euler()
    log_sigmas = np.log(np.array(MODEL.sigmas))
    for sigma in (0.0292, 0.05, 0.31, 1.0, 2.5, 7.77, 14.6):
        assert MODEL.sigma_to_t(sigma) == pytest.approx(
            float(scheduler._sigma_to_t(np.array(sigma), log_sigmas)), abs=1e-6
        )
        assert MODEL.t_to_sigma(MODEL.sigma_to_t(sigma)) == pytest.approx(sigma, rel=1e-9)


@pytest.mark.parametrize("steps", [2, 7, 20, 33])
def test_karras_is_diffusers_karras(steps: int) -> None:
    scheduler = _euler(use_karras_sigmas=True)
    scheduler.set_timesteps(steps)
    ours = schedules.sigmas("karras", steps, MODEL)
    assert len(ours) == steps + 1 and ours[-1] == 0
    assert ours == pytest.approx([float(s) for s in scheduler.sigmas], rel=2e-5)


def test_one_karras_step_starts_at_the_top_as_in_k_diffusion() -> None:
    """diffusers' one-step Karras starts at its one timestep's sigma (the lowest); k-diffusion's ramp starts at the top."""
    assert schedules.sigmas("karras", 1, MODEL) == pytest.approx([MODEL.sigma_max, 0.0])


@pytest.mark.parametrize("steps", [2, 10, 25])
def test_exponential_and_polyexponential_are_diffusers_exponential(steps: int) -> None:
    scheduler = _euler(use_exponential_sigmas=True)
    scheduler.set_timesteps(steps)
    reference = [float(s) for s in scheduler.sigmas]
    assert schedules.sigmas("exponential", steps, MODEL) == pytest.approx(reference, rel=2e-5)
    assert schedules.sigmas("polyexponential", steps, MODEL) == pytest.approx(reference, rel=2e-5)  # rho 1


def test_polyexponential_rho_bends_the_log_sigmas() -> None:
    lo, hi = math.log(MODEL.sigma_min), math.log(MODEL.sigma_max)
    got = schedules.polyexponential(5, MODEL.sigma_min, MODEL.sigma_max, rho=2.0)
    want = [math.exp(((4 - i) / 4) ** 2 * (hi - lo) + lo) for i in range(5)] + [0.0]
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("steps", [4, 10, 30])
def test_normal_and_uniform_walk_diffusers_linspace_timesteps(steps: int) -> None:
    scheduler = _euler(timestep_spacing="linspace")
    scheduler.set_timesteps(steps)
    want = [float(t) for t in scheduler.timesteps]  # linspace(999, 0, steps)
    for ident in ("normal", None, "uniform"):
        got = schedules.sigmas(ident, steps, MODEL)
        assert [MODEL.sigma_to_t(s) for s in got[:-1]] == pytest.approx(want, abs=1e-4) and got[-1] == 0  # float32


@pytest.mark.parametrize("steps", [4, 10, 25])
def test_sgm_uniform_is_diffusers_trailing_spacing_to_a_timestep(steps: int) -> None:
    """A1111 spaces ``n + 1`` points from 999 to 0 and drops the last; diffusers' "trailing" rounds the same walk."""
    scheduler = _euler(timestep_spacing="trailing")
    scheduler.set_timesteps(steps)
    got = [MODEL.sigma_to_t(s) for s in schedules.sigmas("sgm_uniform", steps, MODEL)[:-1]]
    assert got == pytest.approx([float(t) for t in scheduler.timesteps], abs=1.0)
    assert got == pytest.approx([999 * (1 - k / steps) for k in range(steps)], abs=1e-6)


@pytest.mark.parametrize("steps", [5, 10, 20, 30])
def test_the_ddim_schedule_takes_diffusers_ddim_timesteps(steps: int) -> None:
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config({**SD15, "timestep_spacing": "leading", "steps_offset": 1})
    scheduler.set_timesteps(steps)
    got = schedules.sigmas("ddim", steps, MODEL)
    want = [MODEL.sigmas[int(t)] for t in reversed(scheduler.timesteps)]
    assert got[-2::-1][: len(want)] == want  # 1000 // steps apart from timestep 1 (30 steps: A1111 makes 31)
    assert got[-1] == 0 and len(got) - 1 == len(range(1, 1000, 1000 // steps))


def test_simple_takes_every_len_over_n_th_sigma_from_the_top() -> None:
    got = schedules.sigmas("simple", 10, MODEL)
    assert got == [MODEL.sigmas[999 - 100 * k] for k in range(10)] + [0.0]
    assert schedules.sigmas("simple", 3, MODEL)[:3] == [MODEL.sigmas[999], MODEL.sigmas[666], MODEL.sigmas[333]]


def test_kl_optimal_is_even_in_arctan_sigma() -> None:
    got = schedules.sigmas("kl_optimal", 8, MODEL)
    assert len(got) == 9 and got[0] == pytest.approx(MODEL.sigma_max) and got[-1] == pytest.approx(MODEL.sigma_min)
    angles = [math.atan(s) for s in got]
    gaps = [a - b for a, b in zip(angles, angles[1:], strict=False)]
    assert gaps == pytest.approx([(math.atan(MODEL.sigma_max) - math.atan(MODEL.sigma_min)) / 8] * 8, rel=1e-9)


def test_align_your_steps_uses_nvidia_s_published_tables() -> None:
    sd15 = [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029]
    sdxl = [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029]
    assert schedules.sigmas("align_your_steps", 11, MODEL) == [*sd15, 0.0]  # A1111: the table as is for n == 11
    assert schedules.sigmas("align_your_steps", 11, MODEL, sdxl=True) == [*sdxl, 0.0]
    twenty_one = schedules.sigmas("align_your_steps", 21, MODEL)
    assert twenty_one[:-1:2] == pytest.approx(sd15, rel=1e-12)  # log-linear: every other point is the table's
    assert twenty_one[1] == pytest.approx(math.sqrt(sd15[0] * sd15[1]), rel=1e-12)
    ten = schedules.sigmas("align_your_steps", 10, MODEL)
    assert len(ten) == 11 and ten[0] == pytest.approx(14.615) and ten[-2] == pytest.approx(0.029)


@pytest.mark.parametrize(
    ("a", "b", "ppf"),
    [
        (0.5, 0.5, lambda p: math.sin(math.pi * p / 2) ** 2),  # the arcsine distribution
        (1.0, 1.0, lambda p: p),
        (2.0, 1.0, math.sqrt),
        (1.0, 2.0, lambda p: 1 - math.sqrt(1 - p)),
        (1.0, 3.0, lambda p: 1 - (1 - p) ** (1 / 3)),
    ],
)
def test_beta_quantiles_match_closed_forms(a: float, b: float, ppf: Any) -> None:
    for p in (0.001, 0.05, 0.25, 0.5, 0.77, 0.999):
        assert schedules.beta_ppf(p, a, b) == pytest.approx(ppf(p), abs=1e-12)


def test_the_beta_schedule_with_a1111_s_alpha_and_beta() -> None:
    got = schedules.sigmas("beta", 9, MODEL)
    assert got[0] == pytest.approx(MODEL.sigma_max) and got[-2] == pytest.approx(MODEL.sigma_min) and got[-1] == 0
    assert got[4] == pytest.approx((MODEL.sigma_min + MODEL.sigma_max) / 2)  # 0.6, 0.6 is symmetric
    for p in (0.1, 0.3):
        assert schedules.beta_ppf(p, 0.6, 0.6) == pytest.approx(1 - schedules.beta_ppf(1 - p, 0.6, 0.6), abs=1e-12)
        # the cdf by Simpson's rule on the substitution x = u ** (1 / 0.6), which removes the singularity at 0
        x = schedules.beta_ppf(p, 0.6, 0.6)
        assert _beta_cdf_numeric(x) == pytest.approx(p, abs=1e-7)


def _beta_cdf_numeric(x: float, n: int = 20000) -> float:
    norm = math.exp(math.lgamma(1.2) - 2 * math.lgamma(0.6))
    top = x**0.6

    def f(u: float) -> float:  # pdf(x) dx with x = u^(1/0.6): x^-0.4 (1-x)^-0.4 * (1/0.6) u^(1/0.6 - 1) du
        xx = u ** (1 / 0.6)
        return (1 - xx) ** -0.4 / 0.6

    h = top / n
    total = f(0) + f(top) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, n))
    return norm * total * h / 3


@pytest.mark.parametrize("ident", ["karras", "exponential", None, "sgm_uniform", "normal"])
def test_discard_penultimate_makes_one_step_more_then_drops_it(ident: str | None) -> None:
    full = schedules.sigmas(ident, 11, MODEL)
    assert schedules.sigmas(ident, 10, MODEL, discard_penultimate=True) == [*full[:-2], full[-1]]


def test_steps_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        schedules.sigmas("karras", 0, MODEL)


def test_the_lcm_table_is_fifty_of_the_model_s_timesteps() -> None:
    lcm = schedules.LCMSigmas(schedules.alphas_cumprod(SD15))
    assert len(lcm.sigmas) == 50 and lcm.sigmas[0] == MODEL.sigmas[19] and lcm.sigmas[-1] == MODEL.sigmas[999]
    assert lcm.sigma_to_t(MODEL.sigmas[500]) == 499.0  # snapped to the nearest of 19, 39, … 999
    assert lcm.t_to_sigma(999) == pytest.approx(MODEL.sigmas[999])
