"""A1111's samplers and schedule types: the runtime's one import for them (the code is in :mod:`runtime.sampling`)."""

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
