"""The doctor's checks: facts in, findings out.

One small function per finding code returns the values for the rule's
templates when the finding applies, or None.  Texts, severities, ranks and
fixes are data in ``rules.toml``; this module only decides *whether*.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from bootstrap.layout import Bundle
from launcher.doctor.envprobe import EnvFacts
from launcher.doctor.scanner import Finding, scan
from launcher.hardware.system import HardwareReport
from launcher.packs.catalog import Pack, coverage

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
Values = dict[str, str]


@dataclass
class Facts:
    bundle: Bundle
    hardware: HardwareReport
    env: EnvFacts
    pack: Pack | None
    port: int
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def torch(self) -> dict[str, Any]:
        t = self.env.facts.get("torch")
        return t if isinstance(t, dict) else {}

    @property
    def gpus(self) -> list[Any]:
        return list(self.hardware.nvidia.gpus)


def _arch_of(entry: str) -> tuple[str | None, str | None]:
    """``sm_86`` → ("8.6", None); ``compute_120`` → (None, "12.0")."""
    m = re.fullmatch(r"(sm|compute)_(\d+)(\d)([a-z]?)", entry)
    if not m:
        return None, None
    arch = f"{m.group(2)}.{m.group(3)}{m.group(4)}"
    return (arch, None) if m.group(1) == "sm" else (None, arch)


def env_broken(f: Facts) -> Values | None:
    return {"reason": f.env.detail} if f.env.state in ("crashed", "timeout", "unreadable") else None


def env_missing(f: Facts) -> Values | None:
    return {"env": f.env.env} if f.env.state == "missing" else None


def driver_too_old(f: Facts) -> Values | None:
    torch_cuda, driver = f.torch.get("cuda"), f.hardware.nvidia.cuda_driver_tuple
    if not f.gpus or not torch_cuda or driver is None:
        return None
    want = tuple(int(x) for x in str(torch_cuda).split(".")[:2])
    if want <= driver:
        return None
    return {
        "driver": f.hardware.nvidia.driver_version or "?",
        "driver_cuda": f"{driver[0]}.{driver[1]}",
        "torch_cuda": str(torch_cuda),
    }


def gpu_arch_unsupported(f: Facts) -> Values | None:
    main = f.hardware.nvidia.main_gpu
    arch_list = f.torch.get("arch_list") or []
    if main is None or main.capability is None or not f.torch.get("cuda") or not arch_list:
        return None
    sass = tuple(a for a, _ in map(_arch_of, arch_list) if a)
    ptx = tuple(p for _, p in map(_arch_of, arch_list) if p)
    if coverage(sass, ptx, main.capability) != "none":
        return None
    return {"gpu": main.short_name, "sm": main.sm, "torch": str(f.torch.get("version")), "arch": " ".join(arch_list)}


def torch_cpu_build(f: Facts) -> Values | None:
    if f.gpus and f.torch.get("version") and f.torch.get("cuda") is None:
        return {"torch": str(f.torch["version"]), "gpu": f.gpus[0].short_name}
    return None


def torch_cuda_unavailable(f: Facts) -> Values | None:
    if not f.gpus or not f.torch.get("cuda") or f.torch.get("cuda_available"):
        return None
    if driver_too_old(f) or gpu_arch_unsupported(f):
        return None  # already explained by a root cause
    return {"torch": str(f.torch.get("version"))}


def python_version_unsupported(f: Facts) -> Values | None:
    have = str(f.env.facts.get("python") or "")
    if f.pack is None or not have or have == f.pack.python or have.startswith(f.pack.python + "."):
        return None
    return {"have": have, "want": f.pack.python}


def xformers_torch_mismatch(f: Facts) -> Values | None:
    stderr = str(f.env.facts.get("xformers_stderr") or "")
    hit = next((x for x in scan(stderr) if x.code == "XFORMERS_TORCH_MISMATCH"), None)
    return dict(hit.values) if hit else None


def xformers_missing(f: Facts) -> Values | None:
    if f.pack is None or not f.gpus or f.env.state != "ok":
        return None
    want = f.pack.xformers_for(f.hardware.system.os)
    if want and not (f.env.facts.get("packages") or {}).get("xformers"):
        return {"pack": f.pack.id, "want": want}
    return None


def dependency_conflict(f: Facts) -> Values | None:
    return {"report": f.env.pip_check.splitlines()[0]} if f.env.pip_check else None


def port_in_use(f: Facts) -> Values | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", f.port))
        except OSError:
            return {"port": str(f.port)}
    return None


def disk_low(f: Facts) -> Values | None:
    free = f.hardware.system.disk_free_mib
    return {"free_gib": f"{free / 1024:.1f}"} if free is not None and free < 10 * 1024 else None


def ram_low(f: Facts) -> Values | None:
    total = f.hardware.system.ram_total_mib
    return {"ram_gib": f"{total / 1024:.0f}"} if total is not None and total < 8 * 1024 else None


PIP_VARS = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONSTRAINT", "PIP_CONFIG_FILE")


def pip_config_leak(f: Facts) -> Values | None:
    found = [k for k in PIP_VARS if f.environ.get(k) and f.environ.get(k) != os.devnull]
    home = Path(f.environ.get("HOME", "~")).expanduser()
    for conf in (home / ".config" / "pip" / "pip.conf", home / ".pip" / "pip.conf", Path("/etc/pip.conf"),
                 Path("/etc/xdg/pip/pip.conf"), Path(f.environ.get("APPDATA", "/nonexistent")) / "pip" / "pip.ini"):  # fmt: skip
        if conf.is_file():
            found.append(str(conf))
    return {"what": ", ".join(found)} if found else None


def no_nvidia_gpu(f: Facts) -> Values | None:
    if f.gpus:
        return None
    others = [a.name for a in f.hardware.system.other_gpus]
    return {"others": f" ({', '.join(others)})" if others else ""}


CHECKS: dict[str, Callable[[Facts], Values | None]] = {
    "ENV_BROKEN": env_broken,
    "ENV_MISSING": env_missing,
    "DRIVER_TOO_OLD": driver_too_old,
    "GPU_ARCH_UNSUPPORTED": gpu_arch_unsupported,
    "TORCH_CPU_BUILD": torch_cpu_build,
    "TORCH_CUDA_UNAVAILABLE": torch_cuda_unavailable,
    "PYTHON_VERSION_UNSUPPORTED": python_version_unsupported,
    "XFORMERS_TORCH_MISMATCH": xformers_torch_mismatch,
    "XFORMERS_MISSING": xformers_missing,
    "DEPENDENCY_CONFLICT": dependency_conflict,
    "PORT_IN_USE": port_in_use,
    "DISK_LOW": disk_low,
    "RAM_LOW": ram_low,
    "PIP_CONFIG_LEAK": pip_config_leak,
    "NO_NVIDIA_GPU": no_nvidia_gpu,
}


@lru_cache(maxsize=2)
def load_rules(path: Path = HERE / "rules.toml") -> tuple[dict[str, Any], ...]:
    with open(path, "rb") as fh:
        return tuple(tomllib.load(fh).get("rule", []))


def evaluate(facts: Facts, lang: str = "en") -> list[Finding]:
    """Every rule whose check applies, root cause first."""
    findings = []
    zh = lang == "zh"
    for rule in load_rules():
        values = CHECKS[rule["code"]](facts)
        if values is None:
            continue
        detail = rule["detail_zh" if zh else "detail_en"].format_map(defaultdict(lambda: "?", values))
        findings.append(Finding(
            rule["code"], rule["severity"], rule["title_zh" if zh else "title_en"], detail,
            rule["fix_zh" if zh else "fix_en"], values, rule.get("action", ""), int(rule["rank"]),
        ))  # fmt: skip
    return sorted(findings, key=lambda f: f.rank)
