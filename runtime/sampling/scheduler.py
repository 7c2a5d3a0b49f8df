"""A diffusers-compatible scheduler that runs an A1111 sampling algorithm inside a diffusers pipeline.

The pipeline's loop asks for ``timesteps``, scales the model input, runs the UNet
and calls :meth:`KSamplerScheduler.step` with its output.  Here every pass of that
loop is one model evaluation of the algorithm (a generator, see
:mod:`runtime.sampling.context`): ``step`` turns the UNet's output into the
denoised prediction, hands it to the algorithm and returns the latents of the
algorithm's next evaluation, or its result.  ``timesteps`` is computed lazily, so
an algorithm whose evaluations depend on the model (DPM adaptive) runs as long
as it needs; its length is the evaluations of a planning run.  Samplers with two
evaluations per step (Heun …) have ``order`` 2, as diffusers' own.

img2img: the pipeline slices ``timesteps[t_start * order:]``; the slice starts
the run at step ``t_start`` of the schedule, as A1111 runs the tail of its sigmas.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin, SchedulerOutput

from runtime.sampling import dpm_solver, kdiffusion, schedules
from runtime.sampling import timestep as timestep_samplers
from runtime.sampling.context import Algorithm, Context

ALGORITHMS: Mapping[str, Callable[[Context, torch.Tensor], Algorithm]] = {
    "euler": kdiffusion.euler, "euler_a": kdiffusion.euler_a, "heun": kdiffusion.heun, "lms": kdiffusion.lms,
    "dpm_2": kdiffusion.dpm_2, "dpm_2_a": kdiffusion.dpm_2_a, "dpmpp_2s_a": kdiffusion.dpmpp_2s_a,
    "dpmpp_2m": kdiffusion.dpmpp_2m, "dpmpp_sde": kdiffusion.dpmpp_sde, "dpmpp_2m_sde": kdiffusion.dpmpp_2m_sde,
    "dpmpp_2m_sde_heun": kdiffusion.dpmpp_2m_sde_heun, "dpmpp_3m_sde": kdiffusion.dpmpp_3m_sde,
    "restart": kdiffusion.restart, "lcm": kdiffusion.lcm,
    "dpm_fast": dpm_solver.dpm_fast, "dpm_adaptive": dpm_solver.dpm_adaptive,
    "ddim": timestep_samplers.ddim, "ddim_cfgpp": timestep_samplers.ddim_cfgpp, "plms": timestep_samplers.plms,
}  # fmt: skip
VP_START = frozenset({"ddim", "ddim_cfgpp", "plms"})  # start from unit noise in the model's space, end there
ANCESTRAL_ETA, DDIM_ETA = 1.0, 0.0  # A1111's options eta_ancestral and eta_ddim
MAX_EVALUATIONS = 100_000  # a planning run that goes on longer is a bug


class KSamplerScheduler(SchedulerMixin, ConfigMixin):
    """One A1111 sampler with one schedule type, on a checkpoint's betas."""

    config_name = "scheduler_config.json"  # type: ignore[assignment]

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
        beta_schedule: str = "scaled_linear",
        trained_betas: list[float] | None = None,
        prediction_type: str = "epsilon",
        steps_offset: int = 1,
        algorithm: str = "euler",
        schedule: str | None = None,
        eta: float | None = None,
        s_noise: float = 1.0,
        sdxl: bool = False,
        discard_penultimate: bool = False,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown sampling algorithm {algorithm!r}")
        self.algorithm, self.schedule, self.eta, self.s_noise = algorithm, schedule, eta, s_noise
        self.sdxl, self.discard_penultimate, self.prediction_type = sdxl, discard_penultimate, prediction_type
        self.num_train_timesteps = num_train_timesteps
        cumprod = schedules.alphas_cumprod(self.config)
        self.model = schedules.LCMSigmas(cumprod) if algorithm == "lcm" else schedules.DiscreteSigmas(cumprod)
        self.order = 1
        self.init_noise_sigma = 1.0
        self.wants_uncond = algorithm == "ddim_cfgpp"
        self._schedule: list[float] = []
        self._run: list[float] = []
        self._start = 0
        self._plan: list[float] = []
        self._device: Any = None
        self._gen: Algorithm | None = None
        self._ctx: Context | None = None
        self._pending: float | None = None
        self._evaluations = 0
        self._last_x: torch.Tensor | None = None
        self._last_out: torch.Tensor | None = None
        self._captured: torch.Tensor | None = None
        self._sigma_of: dict[float, float] = {}
        self.num_inference_steps: int | None = None

    # --- the schedule --------------------------------------------------------------------------------------------

    def step_sigmas(self, steps: int) -> list[float]:
        """The sigmas of ``steps`` steps: the schedule type's, or A1111's own timesteps for DDIM/PLMS."""
        if self.algorithm in VP_START:
            return timestep_samplers.timestep_sigmas(steps, self.model)
        return schedules.sigmas(self.schedule, steps, self.model, sdxl=self.sdxl,
                                discard_penultimate=self.discard_penultimate)  # fmt: skip

    def set_timesteps(self, num_inference_steps: int, device: Any = None, **_: Any) -> None:
        self.num_inference_steps = num_inference_steps
        self._device = device
        self._schedule = self.step_sigmas(num_inference_steps)
        self._plan, self._sigma_of = [], {}
        self._begin(0)
        steps = max(len(self._schedule) - 1, 1)
        self.order = max(1, round(len(self._plan) / steps))

    def set_begin_index(self, begin_index: int = 0) -> None:
        self._begin(begin_index // self.order)

    def _begin(self, start: int) -> None:
        """Start the run at step ``start`` of the schedule (img2img runs the tail)."""
        start = min(max(start, 0), max(len(self._schedule) - 2, 0))
        if self._plan and start == self._start and self._gen is None:
            return
        self._start = start
        self._run = self._schedule[start:]
        self._plan = self._planned()
        self._gen, self._ctx = None, None
        self._pending = self._plan[0] if self._plan else None
        self._evaluations = 0
        self._last_x = self._last_out = self._captured = None
        first = self._run[0]
        self.init_noise_sigma = math.sqrt(1 + first**2) if self.algorithm in VP_START else first

    def _context(self, **kwargs: Any) -> Context:
        default_eta = DDIM_ETA if self.algorithm in VP_START else ANCESTRAL_ETA
        eta = default_eta if self.eta is None else float(self.eta)
        return Context(list(self._run), self.model, eta=eta, s_noise=self.s_noise, img2img=self._start > 0, **kwargs)

    def _planned(self) -> list[float]:
        """The evaluations of a run whose model always answers 0 (exact for every algorithm but DPM adaptive)."""
        gen = ALGORITHMS[self.algorithm](self._context(dry=True), torch.zeros(1))
        plan: list[float] = []
        try:
            x, sigma = next(gen)
            while len(plan) < MAX_EVALUATIONS:
                plan.append(sigma)
                x, sigma = gen.send((x, torch.zeros_like(x)))
        except StopIteration:
            return plan
        raise RuntimeError(f"{self.algorithm} planned more than {MAX_EVALUATIONS} evaluations")

    @property
    def timesteps(self) -> _Timesteps:
        return _Timesteps(self)

    def timestep_of(self, sigma: float) -> torch.Tensor:
        """The UNet's timestep for ``sigma`` (remembered, so that :meth:`sigma_of` gives ``sigma`` back exactly)."""
        t = torch.tensor(self.model.model_timestep(sigma) if sigma > 0 else 0.0, dtype=torch.float32)
        self._sigma_of[float(t)] = sigma
        return t.to(self._device) if self._device is not None else t

    def sigma_of(self, t: Any) -> float:
        value = float(t.flatten()[0]) if torch.is_tensor(t) else float(t)
        return self._sigma_of.get(value, self.model.t_to_sigma(value))

    # --- the loop ------------------------------------------------------------------------------------------------

    def scale_model_input(self, sample: torch.Tensor, timestep: Any = None) -> torch.Tensor:
        sigma = self._pending if self._pending is not None else self._run[-1]
        return sample / math.sqrt(sigma**2 + 1)

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: Any) -> torch.Tensor:
        sigma = self.sigma_of(timesteps)
        return original + noise.to(original.dtype) * sigma

    def take_uncond(self, output: Any) -> None:
        """The UNet's output of an evaluation (its first half is unconditional when CFG is on): DDIM CFG++ reads it."""
        if self.wants_uncond and self._captured is None:
            tensor = output if torch.is_tensor(output) else output[0] if isinstance(output, tuple) else output.sample
            self._captured = tensor.detach()

    def step(self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor,
             generator: Any = None, return_dict: bool = True) -> Any:  # fmt: skip
        if self._pending is None:
            raise RuntimeError("the sampler has already finished: call set_timesteps first")
        sigma = self._pending
        if self._gen is None:
            self._start_run(sample, generator)
        x = self._last_x if (sample is self._last_out and self._last_x is not None) else sample.float()
        output = model_output.float()
        uncond = self._uncond(len(sample))
        if uncond is not None:
            output = uncond + (output - uncond) * timestep_samplers.CFGPP_SCALE
        denoised = self._denoised(output, x, sigma)
        assert self._gen is not None and self._ctx is not None
        self._ctx.uncond = self._denoised(uncond, x, sigma) if uncond is not None else None
        self._evaluations += 1
        try:
            out, self._pending = self._gen.send((x, denoised))
        except StopIteration as done:
            out, self._pending = done.value, None
            if self.algorithm in VP_START:
                out = out / math.sqrt(1 + self._run[-1] ** 2)
        self._last_x = out
        self._last_out = out.to(sample.dtype)
        return SchedulerOutput(prev_sample=self._last_out) if return_dict else (self._last_out,)

    def _start_run(self, sample: torch.Tensor, generator: Any) -> None:
        gens = generator if isinstance(generator, list | tuple) else ([generator] if generator is not None else [])
        seeds = [int(g.initial_seed()) for g in gens]
        if len(seeds) == 1 and len(sample) > 1:
            seeds = [seeds[0] + i for i in range(len(sample))]
        self._ctx = self._context(generators=list(gens) if len(gens) > 1 else (gens[0] if gens else None),
                                  seeds=seeds or None)  # fmt: skip
        self._gen = ALGORITHMS[self.algorithm](self._ctx, sample.float())
        _, first = next(self._gen)
        self._pending = first

    def _uncond(self, batch: int) -> torch.Tensor | None:
        captured, self._captured = self._captured, None
        if captured is None or captured.shape[0] != 2 * batch:
            return None
        return captured[:batch].float()

    def _denoised(self, output: torch.Tensor, x: torch.Tensor, sigma: float) -> torch.Tensor:
        kind = self.prediction_type
        if kind == "v_prediction":
            denoised = x / (sigma**2 + 1) - output * (sigma / math.sqrt(sigma**2 + 1))
        elif kind == "sample":
            denoised = output
        else:
            denoised = x - output * sigma
        if self.algorithm == "lcm":  # LCM's boundary condition, on a timestep of its 50
            scaled = self.model.sigma_to_t(sigma) * 10.0
            c_skip, c_out = 0.25 / (scaled**2 + 0.25), scaled / math.sqrt(scaled**2 + 0.25)
            denoised = c_out * denoised + c_skip * x
        return denoised

    def __len__(self) -> int:
        return self.num_train_timesteps


class _Timesteps:
    """The pipeline's view of the timesteps: iterating follows the run, slicing starts it later (img2img)."""

    def __init__(self, scheduler: KSamplerScheduler) -> None:
        self.scheduler = scheduler

    def __len__(self) -> int:
        return len(self.scheduler._plan)

    def __iter__(self) -> Iterator[torch.Tensor]:
        s = self.scheduler
        while s._pending is not None:
            seen = s._evaluations
            yield s.timestep_of(s._pending)
            if s._evaluations == seen:  # the loop went on without a step (an interrupt): stop here
                return

    def __getitem__(self, key: int | slice) -> Any:
        s = self.scheduler
        if isinstance(key, slice):
            if key.start:
                s._begin(key.start // s.order)
            if key.stop is not None:
                return torch.stack([s.timestep_of(v) for v in s._plan[: key.stop]])
            return _Timesteps(s)
        return s.timestep_of(s._plan[key])
