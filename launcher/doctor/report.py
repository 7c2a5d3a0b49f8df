"""One examination: hardware, the environment probe, the rules; shared by doctor, doctor --fix and sysinfo."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from bootstrap.layout import Bundle
from launcher.doctor.envprobe import EnvFacts
from launcher.doctor.network import NetworkFacts
from launcher.doctor.scanner import Finding
from launcher.hardware.system import HardwareReport
from launcher.packs.catalog import Pack


@dataclass(frozen=True)
class Examination:
    hardware: HardwareReport
    env: EnvFacts
    pack: Pack | None
    findings: list[Finding]
    network: NetworkFacts | None = None

    def to_json(self) -> dict[str, Any]:
        return {"hardware": self.hardware.to_dict(), "environment": self.env.to_dict(),
                "pack": self.pack.id if self.pack else None,
                "network": self.network.to_dict() if self.network else None,
                "findings": [f.to_dict() for f in self.findings]}  # fmt: skip


def long_paths_enabled() -> bool | None:
    """Windows' LongPathsEnabled (None elsewhere, or when the registry cannot be read)."""
    if sys.platform != "win32":
        return None
    import winreg

    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SYSTEM\CurrentControlSet\Control\FileSystem") as key:
            value, _ = winreg.QueryValueEx(key, "LongPathsEnabled")
    except OSError:
        return None
    return bool(value)


def examine(bundle: Bundle, lang: str = "en", probe_env: bool = True, network: bool = False) -> Examination:
    """Everything the doctor looks at.  ``network``: probe the endpoints in use now (else the saved ranking)."""
    from bootstrap.builder.build import runtime_env
    from bootstrap.builder.install import uv_bin
    from bootstrap.builder.state import read_stamp
    from launcher import config
    from launcher.doctor.checks import Facts, evaluate
    from launcher.doctor.envprobe import probe_environment
    from launcher.doctor.network import gather
    from launcher.hardware.system import probe_hardware
    from launcher.models.library import scan
    from launcher.packs.catalog import load_packs

    cfg = config.load(bundle)
    hardware = probe_hardware(bundle.root)
    env_dir = runtime_env(bundle)
    env = probe_environment(env_dir, uv=uv_bin()) if probe_env else EnvFacts("skipped", str(env_dir))
    pack = load_packs(bundle.packs_dir).get(str(read_stamp(env_dir).get("pack", "")))
    net = gather(bundle, cfg, live=network, cuda=pack.cuda if pack else None)
    models = scan(bundle, cfg["models.extra_dirs"], with_hashes=False)
    facts = Facts(bundle, hardware, env, pack, cfg.get_int("launch.port"), settings=dict(cfg.values), network=net,
                  models=models, long_paths=long_paths_enabled())  # fmt: skip
    return Examination(hardware, env, pack, evaluate(facts, lang), net)
