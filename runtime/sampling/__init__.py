"""A1111 1.10's samplers and schedule types for the runtime.

``table`` holds the names, defaults and how a name is read (no torch);
``schedules`` the noise levels of each schedule type (no torch);
``context``, ``kdiffusion``, ``dpm_solver`` and ``timestep`` the algorithms;
``scheduler`` the diffusers-compatible scheduler that runs them in a pipeline;
``build`` turns a resolved choice into a scheduler.  The rest of the runtime
imports them through ``runtime.samplers``.
"""
