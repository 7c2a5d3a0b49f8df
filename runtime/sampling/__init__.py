"""A1111 1.10's samplers and schedule types for the runtime.

``table`` holds the names, defaults and how a name is read (no torch);
``schedules`` the noise levels of each schedule type (no torch);
``context``, ``kdiffusion``, ``dpm_solver`` and ``timestep`` the algorithms;
``scheduler`` the diffusers-compatible scheduler that runs them in a pipeline;
``build`` turns a resolved choice into a scheduler.  ``runtime.samplers`` is the
short import the rest of the runtime uses.
"""

from runtime.sampling.build import SamplerOptionUnsupported, attach, make_scheduler
from runtime.sampling.table import (
    AUTOMATIC,
    DEFAULT_SAMPLER,
    SAMPLERS,
    SCHEDULES,
    SamplerSpec,
    api_samplers,
    api_schedulers,
    from_infotext,
    resolve,
    sampler_names,
    schedule_types,
)

__all__ = [
    "AUTOMATIC",
    "DEFAULT_SAMPLER",
    "SAMPLERS",
    "SCHEDULES",
    "SamplerOptionUnsupported",
    "SamplerSpec",
    "api_samplers",
    "api_schedulers",
    "from_infotext",
    "attach",
    "make_scheduler",
    "resolve",
    "sampler_names",
    "schedule_types",
]
