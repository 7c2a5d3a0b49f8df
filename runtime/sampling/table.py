"""A1111 1.10's samplers and schedule types: the names, the defaults, and how a name is read.

Users, and the infotexts they copy from Civitai, speak A1111 ("DPM++ 2M Karras",
"Euler a").  A1111 1.10 lists 20 samplers (``modules/sd_samplers_kdiffusion.py``,
``sd_samplers_timesteps.py``, ``sd_samplers_lcm.py``) and 12 schedule types
(``modules/sd_schedulers.py``) and takes every one of the 240 pairs: the
timestep samplers (DDIM, DDIM CFG++, PLMS, UniPC) make their own timesteps and
ignore the schedule type.  "Automatic" is the sampler's own default (Karras for
DPM++ 2M, Exponential for the SDE samplers, the model's uniform spacing for the
rest).  The names of A1111 ≤ 1.8 ("DPM++ 2M Karras") are split into sampler and
schedule type the way A1111 splits them.  An unknown sampler name becomes the
default sampler (DPM++ 2M) and an unknown schedule type becomes Automatic, each
with a warning that names it: A1111's ``fix_p_invalid_sampler_and_scheduler``.

This module needs neither torch nor diffusers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

AUTOMATIC = "Automatic"


@dataclass(frozen=True)
class Schedule:
    """An A1111 "Schedule type"."""

    ident: str  # A1111's name ("sgm_uniform"), also accepted
    label: str  # what the UI and the infotext say ("SGM Uniform")
    aliases: tuple[str, ...] = ()
    default_rho: float = -1.0
    need_inner_model: bool = False  # it reads the model's own discrete sigmas


SCHEDULES: tuple[Schedule, ...] = (
    Schedule("automatic", AUTOMATIC),
    Schedule("uniform", "Uniform", need_inner_model=True),
    Schedule("karras", "Karras", default_rho=7.0),
    Schedule("exponential", "Exponential"),
    Schedule("polyexponential", "Polyexponential", default_rho=1.0),
    Schedule("sgm_uniform", "SGM Uniform", ("SGMUniform",), need_inner_model=True),
    Schedule("kl_optimal", "KL Optimal"),
    Schedule("align_your_steps", "Align Your Steps"),
    Schedule("simple", "Simple", need_inner_model=True),
    Schedule("normal", "Normal", need_inner_model=True),
    Schedule("ddim", "DDIM", need_inner_model=True),
    Schedule("beta", "Beta", need_inner_model=True),
)


@dataclass(frozen=True)
class Sampler:
    """One A1111 sampler: its name, aliases, the algorithm that plays it and A1111's options for it."""

    name: str
    aliases: tuple[str, ...]
    algorithm: str  # a key of runtime.sampling.algorithms.ALGORITHMS
    options: Mapping[str, Any] = field(default_factory=dict)  # A1111's, as /sdapi/v1/samplers shows them

    @property
    def default_schedule(self) -> str | None:
        """The schedule type "Automatic" means for it (an A1111 ident), or None: the model's uniform spacing."""
        value = self.options.get("scheduler")
        return str(value) if value else None

    @property
    def timesteps(self) -> bool:
        """A timestep sampler makes its own timesteps; the schedule type does not reach it (as in A1111)."""
        return self.algorithm in TIMESTEP_ALGORITHMS


TIMESTEP_ALGORITHMS = frozenset({"ddim", "ddim_cfgpp", "plms", "unipc"})
# The algorithms that take A1111's eta (its sampler functions with an ``eta`` parameter), and its default.
ETA = {**dict.fromkeys(("euler_a", "dpm_2_a", "dpmpp_2s_a", "dpmpp_sde", "dpmpp_2m_sde", "dpmpp_2m_sde_heun",
                        "dpmpp_3m_sde", "dpm_fast", "dpm_adaptive"), ("Eta", 1.0)),
       "ddim": ("Eta DDIM", 0.0), "ddim_cfgpp": ("Eta DDIM", 0.0)}  # fmt: skip
_B, _2, _D, _E = "brownian_noise", "second_order", "discard_next_to_last_sigma", "uses_ensd"

# A1111 1.10's order: k-diffusion samplers, timestep samplers, LCM.  The first is the default sampler.
SAMPLERS: tuple[Sampler, ...] = (
    Sampler("DPM++ 2M", ("k_dpmpp_2m",), "dpmpp_2m", {"scheduler": "karras"}),
    Sampler("DPM++ SDE", ("k_dpmpp_sde",), "dpmpp_sde", {"scheduler": "karras", _2: True, _B: True}),
    Sampler("DPM++ 2M SDE", ("k_dpmpp_2m_sde",), "dpmpp_2m_sde", {"scheduler": "exponential", _B: True}),
    Sampler("DPM++ 2M SDE Heun", ("k_dpmpp_2m_sde_heun",), "dpmpp_2m_sde_heun",
            {"scheduler": "exponential", _B: True, "solver_type": "heun"}),
    Sampler("DPM++ 2S a", ("k_dpmpp_2s_a",), "dpmpp_2s_a", {"scheduler": "karras", _E: True, _2: True}),
    Sampler("DPM++ 3M SDE", ("k_dpmpp_3m_sde",), "dpmpp_3m_sde", {"scheduler": "exponential", _D: True, _B: True}),
    Sampler("Euler a", ("k_euler_a", "k_euler_ancestral"), "euler_a", {_E: True}),
    Sampler("Euler", ("k_euler",), "euler"),
    Sampler("LMS", ("k_lms",), "lms"),
    Sampler("Heun", ("k_heun",), "heun", {_2: True}),
    Sampler("DPM2", ("k_dpm_2",), "dpm_2", {"scheduler": "karras", _D: True, _2: True}),
    Sampler("DPM2 a", ("k_dpm_2_a",), "dpm_2_a", {"scheduler": "karras", _D: True, _E: True, _2: True}),
    Sampler("DPM fast", ("k_dpm_fast",), "dpm_fast", {_E: True}),
    Sampler("DPM adaptive", ("k_dpm_ad",), "dpm_adaptive", {_E: True}),
    Sampler("Restart", ("restart",), "restart", {"scheduler": "karras", _2: True}),
    Sampler("DDIM", ("ddim",), "ddim"),
    Sampler("DDIM CFG++", ("ddim_cfgpp",), "ddim_cfgpp"),
    Sampler("PLMS", ("plms", "pndm"), "plms"),
    Sampler("UniPC", ("unipc",), "unipc"),
    Sampler("LCM", ("k_lcm",), "lcm"),
)  # fmt: skip
DEFAULT_SAMPLER = SAMPLERS[0].name

# A1111 ≤ 1.8's combined names and their aliases: (name, alias, sampler, schedule ident).
LEGACY: tuple[tuple[str, str, str, str], ...] = (
    ("DPM++ 2M Karras", "k_dpmpp_2m_ka", "DPM++ 2M", "karras"),
    ("DPM++ SDE Karras", "k_dpmpp_sde_ka", "DPM++ SDE", "karras"),
    ("DPM++ 2M SDE Exponential", "k_dpmpp_2m_sde_exp", "DPM++ 2M SDE", "exponential"),
    ("DPM++ 2M SDE Karras", "k_dpmpp_2m_sde_ka", "DPM++ 2M SDE", "karras"),
    ("DPM++ 2M SDE Heun Karras", "k_dpmpp_2m_sde_heun_ka", "DPM++ 2M SDE Heun", "karras"),
    ("DPM++ 2M SDE Heun Exponential", "k_dpmpp_2m_sde_heun_exp", "DPM++ 2M SDE Heun", "exponential"),
    ("DPM++ 3M SDE Karras", "k_dpmpp_3m_sde_ka", "DPM++ 3M SDE", "karras"),
    ("DPM++ 3M SDE Exponential", "k_dpmpp_3m_sde_exp", "DPM++ 3M SDE", "exponential"),
    ("LMS Karras", "k_lms_ka", "LMS", "karras"),
    ("DPM2 Karras", "k_dpm_2_ka", "DPM2", "karras"),
    ("DPM2 a Karras", "k_dpm_2_a_ka", "DPM2 a", "karras"),
    ("DPM++ 2S a Karras", "k_dpmpp_2s_a_ka", "DPM++ 2S a", "karras"),
)


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


_SAMPLER_BY_NAME = {s.name: s for s in SAMPLERS}
_SCHEDULE_BY_IDENT = {s.ident: s for s in SCHEDULES}
_SCHEDULE_INDEX = {_fold(key): s for s in SCHEDULES for key in (s.ident, s.label, *s.aliases)}
_INDEX: dict[str, tuple[Sampler, Schedule | None]] = {
    **{_fold(key): (s, None) for s in SAMPLERS for key in (s.name, *s.aliases)},
    **{_fold(key): (_SAMPLER_BY_NAME[s], _SCHEDULE_BY_IDENT[i]) for n, a, s, i in LEGACY for key in (n, a)},
}


@dataclass(frozen=True)
class SamplerSpec:
    """A resolved choice: the sampler, the schedule type asked for and the one that runs."""

    name: str  # the A1111 ≥ 1.9 sampler name ("DPM++ 2M")
    schedule: str  # the schedule type as A1111's infotext writes it ("Karras", "Automatic")
    algorithm: str
    sigmas: str | None  # the schedule ident whose sigmas run; None: the model's uniform spacing / own timesteps
    options: Mapping[str, Any] = field(default_factory=dict)
    warning: tuple[str, str] | None = None  # (zh, en): what was corrected, as A1111 logs it

    def infotext(self, eta: float | None = None) -> dict[str, object]:
        """The fields A1111 1.10 writes for it: ``Sampler``, ``Schedule type``, and an eta other than its default."""
        fields: dict[str, object] = {"Sampler": self.name, "Schedule type": self.schedule}
        field_name, default = ETA.get(self.algorithm, ("", None))
        if eta is not None and default is not None and eta != default:
            fields[field_name] = eta
        return fields


def sampler_names(*, legacy: bool = True) -> list[str]:
    """Sampler names in A1111's order; with ``legacy``, each followed by its ≤ 1.8 combined names."""
    return [n for s in SAMPLERS for n in (s.name, *(name for name, _, of, _ in LEGACY if legacy and of == s.name))]


def schedule_types() -> list[str]:
    """The schedule types, Automatic first: A1111 offers every one with every sampler."""
    return [s.label for s in SCHEDULES]


def api_samplers() -> list[dict[str, Any]]:
    """What A1111 1.10's ``GET /sdapi/v1/samplers`` answers: ``[{"name", "aliases", "options"}, …]``."""
    return [{"name": s.name, "aliases": list(s.aliases), "options": dict(s.options)} for s in SAMPLERS]


def api_schedulers() -> list[dict[str, Any]]:
    """What A1111 1.10's ``GET /sdapi/v1/schedulers`` answers."""
    return [
        {"name": s.ident, "label": s.label, "aliases": list(s.aliases) or None, "default_rho": s.default_rho,
         "need_inner_model": s.need_inner_model}
        for s in SCHEDULES
    ]  # fmt: skip


def _split(name: str) -> tuple[Sampler, Schedule | None] | None:
    """A sampler name, maybe with a schedule type after it ("Euler Karras"), as A1111 splits it."""
    folded = _fold(name)
    if folded in _INDEX:
        return _INDEX[folded]
    for key, named in _SCHEDULE_INDEX.items():
        rest = folded.removesuffix(" " + key)
        if rest != folded and rest in _INDEX:
            return _INDEX[rest][0], named
    return None


def resolve(name: str | None, schedule_type: str | None = None) -> SamplerSpec:
    """The spec for an A1111 sampler name or alias (any case) and an optional schedule type.

    A schedule type inside the name ("DPM++ 2M Karras", even "Euler Karras")
    wins over ``schedule_type``, as in A1111; ``None``, ``""`` and
    ``"Automatic"`` mean the sampler's default.  An unknown sampler is the
    default sampler and an unknown schedule type is Automatic, with a warning.
    """
    problems: list[tuple[str, str]] = []
    found = _split(name) if name else None
    if found is None:
        if name:
            problems.append((f"没有名为「{name}」的采样器，已改用 {DEFAULT_SAMPLER}",
                             f"there is no sampler {name!r}; {DEFAULT_SAMPLER} was used"))  # fmt: skip
        found = _SAMPLER_BY_NAME[DEFAULT_SAMPLER], None
    chosen_sampler, chosen = found
    if chosen is None and schedule_type:
        chosen = _SCHEDULE_INDEX.get(_fold(schedule_type))
        if chosen is None:
            problems.append((f"没有名为「{schedule_type}」的调度类型，已改用 Automatic",
                             f"there is no schedule type {schedule_type!r}; Automatic was used"))  # fmt: skip
    label = chosen.label if chosen is not None else AUTOMATIC
    sigmas = chosen.ident if chosen is not None and chosen.label != AUTOMATIC else chosen_sampler.default_schedule
    if chosen_sampler.timesteps:
        sigmas = None
    elif sigmas is not None:  # A1111 writes the schedule type that ran
        label = _SCHEDULE_BY_IDENT[sigmas].label
    warning = None
    if problems:
        en = "; ".join(en for _, en in problems)
        warning = (
            "；".join(zh for zh, _ in problems) + "（与 A1111 相同）。",
            en[:1].upper() + en[1:] + " (as A1111 does).",
        )
    return SamplerSpec(chosen_sampler.name, label, chosen_sampler.algorithm, sigmas, chosen_sampler.options, warning)


def from_infotext(fields: Mapping[str, str]) -> tuple[str, str]:
    """(sampler, schedule type) of a parsed infotext, read back as A1111 1.10 reads it (``get_sampler_and_scheduler``).

    A pre-1.9 name ("DPM++ 2M Karras") is split; a schedule type that is the
    sampler's own default becomes "Automatic"; an unknown sampler is the default one.
    """
    spec = resolve(fields.get("Sampler") or DEFAULT_SAMPLER, fields.get("Schedule type"))
    named = _SCHEDULE_INDEX[_fold(spec.schedule)]
    return spec.name, AUTOMATIC if named.ident == _SAMPLER_BY_NAME[spec.name].default_schedule else spec.schedule
