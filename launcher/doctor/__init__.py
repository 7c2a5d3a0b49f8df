"""The doctor: facts about the machine and the environment, and what they mean.

Built so far: the environment probe (:mod:`launcher.doctor.envprobe`).  The
rules that turn facts into findings, the log scanner and the fixes come with
the doctor's issue; the installer diagnoses already live in
:mod:`launcher.diagnosis`.
"""
