"""One examination: hardware, the environment probe, the rules; shared by doctor and sysinfo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bootstrap.layout import Bundle
from launcher.doctor.envprobe import EnvFacts
from launcher.doctor.scanner import Finding
from launcher.hardware.system import HardwareReport
from launcher.packs.catalog import Pack


@dataclass(frozen=True)
class Examination:
    hardware: HardwareReport
    env: EnvFacts
    pack: Pack | None
    findings: list[Finding]

    def to_json(self) -> dict[str, Any]:
        return {"hardware": self.hardware.to_dict(), "environment": self.env.to_dict(),
                "pack": self.pack.id if self.pack else None, "findings": [f.to_dict() for f in self.findings]}  # fmt: skip


def examine(bundle: Bundle, lang: str = "en", probe_env: bool = True) -> Examination:
    from bootstrap.builder.build import runtime_env
    from bootstrap.builder.install import uv_bin
    from bootstrap.builder.state import read_stamp
    from launcher import config
    from launcher.doctor.checks import Facts, evaluate
    from launcher.doctor.envprobe import probe_environment
    from launcher.hardware.system import probe_hardware
    from launcher.packs.catalog import load_packs

    cfg = config.load(bundle)
    hardware = probe_hardware(bundle.root)
    env_dir = runtime_env(bundle)
    env = probe_environment(env_dir, uv=uv_bin()) if probe_env else EnvFacts("skipped", str(env_dir))
    pack = load_packs(bundle.packs_dir).get(str(read_stamp(env_dir).get("pack", "")))
    findings = evaluate(Facts(bundle, hardware, env, pack, cfg.get_int("launch.port")), lang)
    return Examination(hardware, env, pack, findings)
