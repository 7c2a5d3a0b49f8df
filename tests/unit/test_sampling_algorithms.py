"""A1111's sampling algorithms on a problem with a known answer, through the scheduler interface pipelines use.

The data are Gaussian, N(MU, S²) in every coordinate, so the exact denoiser is known in
closed form and so is the probability-flow ODE's solution: from noise level s0 the
latents move to ``MU + (x - MU) * sqrt(S² + s²) / sqrt(S² + s0²)``.  ODE samplers must
converge to it at their order; stochastic samplers must converge to the data's
distribution; and where diffusers implements the same algorithm its scheduler, driven
the same way, must give the same latents.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch

from runtime.samplers import make_scheduler, resolve
from runtime.sampling import schedules
from runtime.sampling.scheduler import KSamplerScheduler

MU, S = 0.5, 0.3
SD15: dict[str, Any] = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                        "beta_schedule": "scaled_linear"}  # fmt: skip
MODEL = schedules.DiscreteSigmas(schedules.alphas_cumprod(SD15))
Z = torch.linspace(-3, 3, 61).reshape(1, 61)


def exact_eps(model_input: torch.Tensor, sigma: float) -> torch.Tensor:
    """The noise an ideal epsilon model predicts for the Gaussian data (the input is the UNet's, x / sqrt(1 + s²))."""
    x = model_input.double() * math.sqrt(1 + sigma**2)
    denoised = (S**2 * x + sigma**2 * MU) / (S**2 + sigma**2)
    return ((x - denoised) / sigma).float()


def exact_v(model_input: torch.Tensor, sigma: float) -> torch.Tensor:
    """The same model's v prediction: v = alpha * eps - sigma_vp * x0 in the model's own space."""
    x = model_input.double() * math.sqrt(1 + sigma**2)
    denoised = (S**2 * x + sigma**2 * MU) / (S**2 + sigma**2)
    eps = (x - denoised) / sigma
    return ((eps - sigma * denoised) / math.sqrt(1 + sigma**2)).float()


def drive(scheduler: Any, steps: int, z: torch.Tensor, *, model: Callable[..., torch.Tensor] = exact_eps,
          sigma_of: Callable[[Any, Any], float] | None = None, generator: Any = None,
          start: float | None = None) -> torch.Tensor:  # fmt: skip
    """The loop of a diffusers pipeline: set_timesteps, init_noise_sigma, scale_model_input, the model, step."""
    scheduler.set_timesteps(steps)
    x = z * (scheduler.init_noise_sigma if start is None else start)
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, t)
        sigma = sigma_of(scheduler, t) if sigma_of else scheduler.sigma_of(t)
        kwargs = {"generator": generator} if generator is not None else {}
        x = scheduler.step(model(model_input, sigma), t, x, **kwargs).prev_sample
    return x


def ode(x_start: torch.Tensor, s0: float, s: float) -> torch.Tensor:
    return MU + (x_start.double() - MU) * math.sqrt(S**2 + s**2) / math.sqrt(S**2 + s0**2)


def denoise(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return (S**2 * x + sigma**2 * MU) / (S**2 + sigma**2)


def ode_error(name: str, schedule: str | None, steps: int) -> float:
    """Max error against the exact answer: the ODE down to the last non-zero sigma, then the final denoising step."""
    scheduler: Any = make_scheduler(resolve(name, schedule), SD15, eta=0.0)
    x = drive(scheduler, steps, Z).double()
    run = scheduler._run
    start = Z.double() * scheduler.init_noise_sigma
    if name in ("DPM fast", "DPM adaptive"):
        want = ode(start, MODEL.sigma_max, MODEL.sigma_min)
    elif name in ("DDIM", "PLMS"):  # A1111 returns the latents at timestep 1, in the model's space
        want = ode(start, run[0], run[-1]) / math.sqrt(1 + run[-1] ** 2)
    elif name == "LMS":  # its last multistep step integrates the ODE down to 0
        want = ode(start, run[0], 0.0)
    else:
        want = denoise(ode(start, run[0], run[-2]), run[-2])
    return float((x - want).abs().max())


@pytest.mark.parametrize(
    ("name", "schedule", "order"),
    [
        ("Euler", "Karras", 1.0),
        ("Euler", "Exponential", 1.0),
        ("Heun", "Karras", 2.0),
        ("DPM2", "Karras", 2.0),
        ("DPM++ 2M", "Karras", 2.0),
        ("DPM++ 2M", "Exponential", 2.0),
        ("LMS", "Karras", 3.0),
        ("DDIM", None, 0.8),
        ("PLMS", None, 1.2),
    ],
)
def test_ode_samplers_converge_at_their_order(name: str, schedule: str | None, order: float) -> None:
    errors = [ode_error(name, schedule, n) for n in (20, 40, 80)]
    observed = math.log2(errors[-2] / errors[-1])
    assert errors[0] > errors[1] > errors[2]
    assert order - 0.25 <= observed <= order + 0.75, (errors, observed)


def test_dpm_fast_and_adaptive_reach_the_answer() -> None:
    """With eta 0 they solve the ODE from the model's largest to its smallest sigma (A1111 gives them eta 1)."""
    fast = [ode_error("DPM fast", None, n) for n in (10, 40, 80)]
    assert fast[0] > fast[1] > fast[2] and fast[2] < 1e-3
    assert ode_error("DPM adaptive", None, 20) < 0.03  # its tolerances (rtol 0.05, atol 0.0078) decide, not steps


def _moments(name: str, steps: int, seeds: range = range(4), model: Callable[..., torch.Tensor] = exact_eps,
             **options: Any) -> tuple[float, float]:  # fmt: skip
    scheduler: Any = make_scheduler(resolve(name, "Karras"), SD15, **options)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    z = torch.stack([torch.randn(4000, generator=g) for g in gens])
    x = drive(scheduler, steps, z, generator=gens, model=model).double()
    return float(x.mean()), float(x.std())


@pytest.mark.parametrize(
    "name", ["Euler a", "DPM2 a", "DPM++ 2S a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 3M SDE",
             "Restart", "DPM fast", "DDIM CFG++"],
)  # fmt: skip
def test_stochastic_samplers_reach_the_data_distribution(name: str) -> None:
    """With more steps the samples' spread comes closer to the data's (A1111's defaults: eta 1, CFG++ with no CFG)."""
    (_, std_few), (mean, std) = _moments(name, 20), _moments(name, 80)
    assert mean == pytest.approx(MU, abs=0.01)
    assert std == pytest.approx(S, abs=0.02)  # Euler a, first order, is the slowest: 0.285 at 80 steps
    assert abs(std - S) < abs(std_few - S) or abs(std_few - S) < 0.006


def test_dpm_adaptive_reaches_the_distribution_as_its_tolerances_tighten() -> None:
    """A1111 runs it with k-diffusion's loose defaults (rtol 0.05, atol 0.0078) and eta 1; tighter, it converges."""
    from runtime.sampling import dpm_solver
    from runtime.sampling.context import Context

    spreads = []
    for rtol, atol in ((0.05, 0.0078), (0.002, 0.0002)):
        gens = [torch.Generator().manual_seed(s) for s in range(4)]
        z = torch.stack([torch.randn(4000, generator=g) for g in gens])
        run = dpm_solver.dpm_adaptive(Context([MODEL.sigma_max, 0.0], MODEL, generators=gens), z * MODEL.sigma_max,
                                      rtol=rtol, atol=atol)  # fmt: skip
        x, sigma = next(run)
        try:
            while True:
                x, sigma = run.send((x, denoise(x, sigma)))
        except StopIteration as done:
            spreads.append(float(done.value.std()))
    assert spreads[1] == pytest.approx(math.sqrt(S**2 + MODEL.sigma_min**2), abs=0.006)
    assert abs(spreads[1] - S) < abs(spreads[0] - S)


def test_lcm_with_an_ideal_consistency_model_keeps_the_data_distribution() -> None:
    """A consistency model maps any noisy latents to their ODE end point; LCM then renoises to the next level."""

    def consistency_eps(model_input: torch.Tensor, sigma: float) -> torch.Tensor:
        x = model_input.double() * math.sqrt(1 + sigma**2)
        end = MU + (x - MU) * S / math.sqrt(S**2 + sigma**2)
        return ((x - end) / sigma).float()

    for steps in (2, 4, 8):
        mean, std = _moments("LCM", steps, model=consistency_eps)
        assert mean == pytest.approx(MU, abs=0.01) and std == pytest.approx(S, abs=0.01)


def test_ancestral_noise_and_brownian_trees_follow_each_image_s_seed() -> None:
    """An image's latents depend on its own seed only, not on the batch around it (A1111's ImageRNG, BrownianTree)."""
    for name in ("Euler a", "DPM++ SDE", "DPM++ 2M SDE"):
        images = []
        for seeds in ([5, 6], [6]):
            scheduler: Any = make_scheduler(resolve(name), SD15)
            gens = [torch.Generator().manual_seed(s) for s in seeds]
            z = torch.stack([torch.randn(50, generator=g) for g in gens])
            images.append(drive(scheduler, 12, z, generator=gens))
        assert torch.allclose(images[0][1], images[1][0], atol=1e-6), name
        assert not torch.allclose(images[0][0], images[0][1])


def test_the_sde_samplers_use_torchsde_brownian_trees() -> None:
    from runtime.sampling.context import Context

    x = torch.zeros(2, 10)
    noise = Context([14.6, 1.0, 0.0], MODEL, seeds=[3, 4]).brownian(x)
    import torchsde

    tree = torchsde.BrownianTree(1.0, torch.zeros(10), 14.6, entropy=4)
    assert torch.allclose(noise(14.6, 1.0)[1], -tree(1.0, 14.6) / math.sqrt(13.6), atol=1e-6)


# --- the same algorithm in diffusers -----------------------------------------------------------------------------


def _t_sigma(scheduler: Any, t: Any) -> float:
    return MODEL.t_to_sigma(float(t))


@pytest.mark.parametrize(
    ("ours", "cls", "config"),
    [
        (dict(algorithm="euler", schedule="karras"), "EulerDiscreteScheduler", {"use_karras_sigmas": True}),
        (dict(algorithm="heun", schedule="karras"), "HeunDiscreteScheduler", {"use_karras_sigmas": True}),
        (dict(algorithm="euler", schedule=None), "EulerDiscreteScheduler", {}),  # Uniform: linspace timesteps
    ],
)
def test_k_diffusion_samplers_match_diffusers_ports(ours: dict[str, Any], cls: str, config: dict[str, Any]) -> None:
    import diffusers

    theirs = getattr(diffusers, cls).from_config({**SD15, "timestep_spacing": "linspace", **config})
    mine = KSamplerScheduler(**SD15, **ours)
    for steps in (5, 12):
        expected = drive(theirs, steps, Z, sigma_of=_t_sigma)
        # diffusers interpolates sigma linearly between timesteps, k-diffusion (and A1111) in log sigma
        assert torch.allclose(drive(mine, steps, Z), expected, atol=1e-3 if ours["schedule"] is None else 3e-4), steps


def test_dpmpp_2m_matches_diffusers_dpm_solver_plus_plus() -> None:
    from diffusers import DPMSolverMultistepScheduler

    theirs = DPMSolverMultistepScheduler.from_config({**SD15, "use_karras_sigmas": True, "final_sigmas_type": "zero"})

    def current_sigma(scheduler: Any, t: Any) -> float:
        return float(scheduler.sigmas[scheduler.step_index if scheduler.step_index is not None else 0])

    top = MODEL.sigma_max / math.sqrt(1 + MODEL.sigma_max**2)  # A1111 starts at noise * sigma_max, not unit noise
    for steps in (16, 25):  # below 15 steps diffusers also takes the next-to-last step at first order
        expected = drive(theirs, steps, Z, sigma_of=current_sigma, start=top)
        got = drive(make_scheduler(resolve("DPM++ 2M", "Karras"), SD15), steps, Z)
        assert torch.allclose(got, expected, atol=3e-4, rtol=1e-4), steps


def test_ddim_matches_diffusers_ddim_but_stops_at_timestep_1_as_a1111() -> None:
    """A1111's 10 DDIM steps make 9 evaluations, 901 … 101, and end at timestep 1: diffusers' first 9 steps."""
    from diffusers import DDIMScheduler

    theirs = DDIMScheduler.from_config({**SD15, "timestep_spacing": "leading", "steps_offset": 1,
                                        "set_alpha_to_one": False, "clip_sample": False})  # fmt: skip
    theirs.set_timesteps(10)
    x = Z.clone()
    for t in theirs.timesteps[:9]:
        x = theirs.step(exact_eps(x, MODEL.sigmas[int(t)]), t, x).prev_sample
    ours: Any = make_scheduler(resolve("DDIM"), SD15)
    got = drive(ours, 10, Z)
    assert len(ours._plan) == 9 and ours.init_noise_sigma == pytest.approx(math.sqrt(1 + MODEL.sigmas[901] ** 2))
    assert torch.allclose(got, x, atol=2e-5)


def test_ddim_cfg_pp_renoises_with_the_unconditional_prediction() -> None:
    """One step against CFG++'s formula in the model's space (Chung et al. 2024; A1111's ddim_cfgpp), CFG / 12.5."""
    scheduler: Any = make_scheduler(resolve("DDIM CFG++"), SD15)
    scheduler.set_timesteps(10)
    t = next(iter(scheduler.timesteps))
    x_vp = torch.tensor([[0.7, -1.2, 0.1]])
    x = x_vp * scheduler.init_noise_sigma
    uncond, cond, cfg = torch.tensor([[0.3, -0.8, 0.2]]), torch.tensor([[0.5, -0.5, 0.0]]), 7.0
    scheduler.take_uncond(torch.cat([uncond, cond]))
    out = scheduler.step(uncond + cfg * (cond - uncond), t, x).prev_sample

    a_t, a_prev = 1 / (1 + MODEL.sigmas[901] ** 2), 1 / (1 + MODEL.sigmas[801] ** 2)
    guided = uncond + cfg / 12.5 * (cond - uncond)
    x0 = (x_vp - math.sqrt(1 - a_t) * guided) / math.sqrt(a_t)
    want_vp = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * uncond
    assert torch.allclose(out / math.sqrt(1 + MODEL.sigmas[801] ** 2), want_vp, atol=1e-5)


def test_eta_zero_makes_the_ancestral_samplers_deterministic() -> None:
    """k-diffusion's ancestral step with eta 0 adds no noise: Euler a is then Euler, DPM2 a is DPM2."""
    gens = [torch.Generator().manual_seed(1)]
    for ancestral, plain in (("Euler a", "Euler"), ("DPM2 a", "DPM2")):
        a = drive(make_scheduler(resolve(ancestral, "Karras"), SD15, eta=0.0), 10, Z, generator=gens)
        b = drive(make_scheduler(resolve(plain, "Karras"), SD15), 10, Z)
        assert torch.allclose(a, b, atol=1e-6), ancestral
    noisy = drive(make_scheduler(resolve("DDIM"), SD15, eta=1.0), 10, Z, generator=gens)
    assert not torch.allclose(noisy, drive(make_scheduler(resolve("DDIM"), SD15), 10, Z))


def test_v_prediction_gives_the_same_latents_as_epsilon() -> None:
    for name in ("Euler", "DPM++ 2M", "DDIM"):
        eps_run = drive(make_scheduler(resolve(name), SD15), 10, Z)
        v_run = drive(make_scheduler(resolve(name), SD15, prediction_type="v_prediction"), 10, Z, model=exact_v)
        assert torch.allclose(eps_run, v_run, atol=1e-4), name


# --- img2img and interrupts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Euler", "Heun", "DPM++ SDE", "DDIM", "Restart", "DPM fast"])
def test_img2img_runs_the_tail_of_the_schedule(name: str) -> None:
    """diffusers' img2img slices ``timesteps[t_start * order:]``: the run starts at step t_start, as A1111's tail."""
    scheduler: Any = make_scheduler(resolve(name), SD15)
    scheduler.set_timesteps(10)
    full = list(scheduler._schedule)
    tail = scheduler.timesteps[6 * scheduler.order :]
    scheduler.set_begin_index(6 * scheduler.order)
    assert scheduler._run == full[6:]
    first = tail[:1]
    assert scheduler.sigma_of(first) == pytest.approx(scheduler._plan[0])
    x0 = torch.full((1, 5), 0.4)
    noisy = scheduler.add_noise(x0, torch.ones(1, 5), first.repeat(1))
    assert torch.allclose(noisy, x0 + scheduler._plan[0])
    evaluations = 0
    x = noisy
    for t in tail:
        x = scheduler.step(exact_eps(scheduler.scale_model_input(x, t), scheduler.sigma_of(t)), t, x).prev_sample
        evaluations += 1
    assert evaluations == len(tail) and torch.isfinite(x).all()


def test_an_img2img_tail_reaches_the_ode_answer_from_its_noise_level() -> None:
    scheduler: Any = make_scheduler(resolve("Heun", "Karras"), SD15)
    scheduler.set_timesteps(40)
    full = list(scheduler._schedule)
    tail = scheduler.timesteps[24 * scheduler.order :]
    x = scheduler.add_noise(torch.full((1, 5), 0.4), torch.linspace(-2, 2, 5).reshape(1, 5), tail[:1])
    start = x.clone()
    for t in tail:
        x = scheduler.step(exact_eps(scheduler.scale_model_input(x, t), scheduler.sigma_of(t)), t, x).prev_sample
    assert torch.allclose(x.double(), denoise(ode(start, full[24], full[-2]), full[-2]), atol=2e-3)


def test_an_interrupted_loop_stops_instead_of_spinning() -> None:
    """diffusers' loop ``continue``s without a step once interrupted: the timesteps end there."""
    scheduler: Any = make_scheduler(resolve("Euler a"), SD15)
    scheduler.set_timesteps(20)
    seen = list(scheduler.timesteps)
    assert len(seen) == 1


def test_the_last_step_is_not_stepped_twice() -> None:
    scheduler: Any = make_scheduler(resolve("Euler"), SD15)
    drive(scheduler, 3, Z)
    with pytest.raises(RuntimeError, match="already finished"):
        scheduler.step(Z, 0, Z)
