"""The doctor: facts about the machine and the environment, what they mean, and the fixes.

* :mod:`~launcher.doctor.envprobe`: the generation environment, probed in its own interpreter;
* :mod:`~launcher.doctor.network`: the mirrors in use, from the saved ranking or a live probe;
* :mod:`~launcher.doctor.checks` + ``rules.toml``: facts in, findings out (``yijian doctor``);
* :mod:`~launcher.doctor.scanner` + ``signatures.toml``: console logs in, the same findings out (``diagnose``);
* :mod:`~launcher.doctor.report`: one examination, shared by ``doctor``, ``doctor --fix`` and ``sysinfo``;
* :mod:`~launcher.doctor.fixes`: the findings' actions, through the config and the builder (``doctor --fix``);
* :mod:`~launcher.doctor.sysinfo`: the redacted diagnostic bundle.

The installer's own diagnoses live in :mod:`launcher.diagnosis`.
"""
