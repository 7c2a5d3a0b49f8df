"""The doctor's checks: facts in, findings out.

One small function per finding code returns the values for the rule's
templates when the finding applies, or None.  Texts, severities, ranks and
fixes are data in ``rules.toml``; this module only decides *whether*.  The
facts are gathered beforehand (:func:`launcher.doctor.report.examine`), so a
test can hand any machine to a check.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bootstrap.layout import Bundle
from launcher.doctor.envprobe import EnvFacts
from launcher.doctor.network import NetworkFacts
from launcher.doctor.scanner import SEVERITIES, Finding, scan
from launcher.hardware.system import HardwareReport
from launcher.models.library import ModelFile
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
    settings: Mapping[str, Any] = field(default_factory=dict)  # the effective config.toml values, by key
    network: NetworkFacts | None = None  # None: not looked at
    models: Sequence[ModelFile] | None = None  # the model library; None: not scanned
    long_paths: bool | None = None  # Windows' LongPathsEnabled; None: unknown, or not Windows
    now: float = field(default_factory=time.time)

    @property
    def os(self) -> str:
        return self.hardware.system.os

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
    if "xformers" in f.pack.optional:  # kept only where it passed the build's self-check: its absence is expected
        return None
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


# --- the environment, further --------------------------------------------------------------------------------


def _first_hit(code: str, *texts: object) -> Finding | None:
    """The log signature ``code`` in the first of ``texts`` that has it."""
    for text in texts:
        if text:
            hit = next((x for x in scan(str(text)) if x.code == code), None)
            if hit is not None:
                return hit
    return None


def dll_load_failed(f: Facts) -> Values | None:
    facts = f.env.facts
    crash = f.env.detail if f.env.state == "crashed" else ""
    hit = _first_hit("DLL_LOAD_FAILED", facts.get("torch_error"), facts.get("xformers_error"), crash)
    if hit is None:
        return None
    error = next((str(t) for t in (facts.get("torch_error"), facts.get("xformers_error"), crash) if t), "")
    line = next((ln for ln in error.splitlines() if "dll" in ln.lower() or ".so" in ln or "WinError" in ln), error)
    return {**hit.values, "error": line.strip()[:300]}


def triton_missing(f: Facts) -> Values | None:
    if f.env.state != "ok" or not f.gpus or not f.torch.get("cuda"):
        return None
    packages = f.env.facts.get("packages") or {}
    if packages.get("triton") or packages.get("triton-windows"):
        return None
    warned = _first_hit("TRITON_MISSING", f.env.facts.get("xformers_stderr")) is not None
    # Linux CUDA torch depends on triton, so its absence means a partial install; on Windows there is no
    # official triton, which only matters where xformers looks for it (and says so on every start).
    if f.os == "linux" or packages.get("xformers") or warned:
        return {"torch": str(f.torch.get("version")), "os": f.os}
    return None


# --- the last run of the runtime -----------------------------------------------------------------------------

RUNTIME_LOGS = ("runtime*.log", "console*.log")  # the runtime's console logs under logs/
RECENT_SECONDS = 7 * 24 * 3600
TAIL_BYTES = 2 * 1024 * 1024
_UNITS = {"KiB": 1 / 1024 / 1024, "MiB": 1 / 1024, "GiB": 1.0}


def newest_runtime_log(f: Facts) -> Path | None:
    """The runtime's newest console log under logs/, if written in the last week."""
    found: list[tuple[float, Path]] = []
    for pattern in RUNTIME_LOGS:
        for path in f.bundle.logs_dir.glob(pattern):
            try:
                found.append((path.stat().st_mtime, path))
            except OSError:
                continue
    if not found:
        return None
    mtime, path = max(found)
    return path if f.now - mtime <= RECENT_SECONDS else None


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            start = max(0, path.stat().st_size - TAIL_BYTES)
            fh.seek(start)
            raw = fh.read()
    except OSError:
        return ""
    if start:
        raw = raw[raw.find(b"\n") + 1 :]  # whole lines only: never half a multi-byte character
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gbk", errors="replace")  # what Chinese Windows consoles write


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _gib(text: str | None) -> float | None:
    m = re.fullmatch(r"([\d.]+) ([KMG]iB)", text or "")
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def cuda_oom(f: Facts) -> Values | None:
    log = newest_runtime_log(f)
    hit = _first_hit("CUDA_OOM", _tail(log)) if log else None
    if log is None or hit is None:
        return None
    current = str(f.settings.get("launch.vram", "auto"))
    if current in ("medvram", "lowvram") and _mtime(log) <= _mtime(f.bundle.config_file):
        return None  # the preset was lowered after that run; only a newer run can say whether it suffices
    main = f.hardware.nvidia.main_gpu
    vram = main.memory_total_mib / 1024 if main and main.memory_total_mib else _gib(hit.values.get("capacity"))
    small = vram is not None and vram <= 4.5
    preset = "lowvram" if small or current in ("medvram", "lowvram") else "medvram"
    return {"log": log.name, "requested": hit.values.get("requested", "?"),
            "vram_gib": f"{vram:.0f}" if vram is not None else "?", "preset": preset, "current": current}  # fmt: skip


# --- the model library ---------------------------------------------------------------------------------------

PICKLE_FOLDERS = ("checkpoint", "lora", "vae")  # where a .safetensors version is the norm (not upscalers)


def _listing(f: Facts, models: Sequence[ModelFile], most: int = 3) -> str:
    def name(m: ModelFile) -> str:
        try:
            return str(m.path.relative_to(f.bundle.models_dir))
        except ValueError:
            return str(m.path)

    names = [name(m) for m in models[:most]]
    return ", ".join(names) + (f" (+{len(models) - most})" if len(models) > most else "")


def model_file_corrupt(f: Facts) -> Values | None:
    bad = [m for m in f.models or () if any(p.code == "corrupt" for p in m.problems)]
    if not bad:
        return None
    reasons = sorted({p.reason for m in bad for p in m.problems if p.code == "corrupt" and p.reason})
    return {"count": str(len(bad)), "files": _listing(f, bad), "reasons": ", ".join(reasons)}


def unsafe_pickle_checkpoint(f: Facts) -> Values | None:
    found = [m for m in f.models or () if m.folder in PICKLE_FOLDERS and any(p.code == "pickle" for p in m.problems)]
    return {"count": str(len(found)), "files": _listing(f, found)} if found else None


# --- paths and the user's environment ------------------------------------------------------------------------

LONG_ROOT = 100  # characters; env/runtime/Lib/site-packages/... adds about 160 more


def non_ascii_path(f: Facts) -> Values | None:
    paths = [str(f.bundle.root), str(f.bundle.code)]
    if f.os == "windows":  # a Chinese user name puts non-ASCII characters into TEMP
        paths += [f.environ.get(var, "") for var in ("TEMP", "TMP")]
    paths += [str(p) for p in f.settings.get("models.extra_dirs", [])]
    bad = [p for p in dict.fromkeys(paths) if p and not p.isascii()]
    return {"paths": ", ".join(bad)} if bad else None


def path_too_long(f: Facts) -> Values | None:
    root = str(f.bundle.root)
    if f.os != "windows" or f.long_paths or len(root) <= LONG_ROOT:
        return None
    return {"length": str(len(root)), "root": root}


def _ours(entry: str, f: Facts) -> bool:
    """Whether a PYTHONPATH entry is the code root Yijian itself put there."""
    norm = lambda p: os.path.normcase(os.path.abspath(p))  # noqa: E731
    return norm(entry) in (norm(str(f.bundle.code)), norm(str(f.bundle.root)))


def pythonpath_set(f: Facts) -> Values | None:
    """The user's own PYTHONPATH/PYTHONHOME: start.sh/start.bat keep them in YIJIAN_USER_* before replacing them."""
    found = []
    for var in ("PYTHONPATH", "PYTHONHOME"):
        value = f.environ.get(f"YIJIAN_USER_{var}")
        if value is None:  # not started through a start script: what is set now
            value = f.environ.get(var, "")
        if var == "PYTHONPATH":  # minus the code root Yijian puts there itself (also for a start from its children)
            value = os.pathsep.join(e for e in value.split(os.pathsep) if e and not _ours(e, f))
        if value:
            found.append(f"{var}={value}")
    return {"vars": "; ".join(found)} if found else None


_TRUE = ("1", "true", "yes", "on")


def hf_xet_bypasses_mirror(f: Facts) -> Values | None:
    """A mirror in the user's own HF_ENDPOINT without HF_HUB_DISABLE_XET.

    Yijian's children always get HF_HUB_DISABLE_XET=1 with a mirror (launcher.mirrors.environ.child_environ),
    so only the tools the user runs with their own environment are concerned.
    """
    endpoint = f.environ.get("HF_ENDPOINT", "").strip()
    host = (urlsplit(endpoint).hostname or "").lower()
    if not host or host == "huggingface.co" or f.environ.get("HF_HUB_DISABLE_XET", "").lower() in _TRUE:
        return None
    xet = (f.env.facts.get("packages") or {}).get("hf_xet") or (f.env.facts.get("packages") or {}).get("hf-xet")
    return {"endpoint": endpoint, "hf_xet": str(xet or "")}


# --- the network ---------------------------------------------------------------------------------------------


def ssl_error(f: Facts) -> Values | None:
    if f.network is None:
        return None
    bad = [e for e in f.network.endpoints if e.tls_problem]
    hosts = sorted({e.host for e in bad})
    # The source in use, or several hosts at once (interception); one mirror's bad certificate is its own problem.
    if not any(e.chosen for e in bad) and len(hosts) < 2:
        return None
    return {"hosts": ", ".join(hosts), "reason": bad[0].error}


def mirror_unreachable(f: Facts) -> Values | None:
    if f.network is None:
        return None
    failed = [e for e in map(f.network.chosen, ("pypi", "torch")) if e and e.ok is False and not e.tls_problem]
    if not failed:
        return None
    return {"mirrors": "; ".join(f"{e.channel} {e.id} {e.url} ({e.error or 'failed'})" for e in failed),
            "channels": ", ".join(e.channel for e in failed)}  # fmt: skip


def hf_unreachable(f: Facts) -> Values | None:
    hf = f.network.chosen("huggingface") if f.network else None
    if hf is None or hf.ok is not False or hf.tls_problem:
        return None
    switch = "" if hf.id == "hf-mirror" else "use-hf-mirror"  # switching to the mirror that failed helps nobody
    return {"endpoint": hf.url, "id": hf.id, "reason": hf.error or "failed", "switch": switch}


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
    "DLL_LOAD_FAILED": dll_load_failed,
    "TRITON_MISSING": triton_missing,
    "CUDA_OOM": cuda_oom,
    "MODEL_FILE_CORRUPT": model_file_corrupt,
    "UNSAFE_PICKLE_CHECKPOINT": unsafe_pickle_checkpoint,
    "NON_ASCII_PATH": non_ascii_path,
    "PATH_TOO_LONG": path_too_long,
    "PYTHONPATH_SET": pythonpath_set,
    "HF_XET_BYPASSES_MIRROR": hf_xet_bypasses_mirror,
    "SSL_ERROR": ssl_error,
    "MIRROR_UNREACHABLE": mirror_unreachable,
    "HF_UNREACHABLE": hf_unreachable,
}


@lru_cache(maxsize=2)
def _load(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def load_rules(path: Path = HERE / "rules.toml") -> tuple[dict[str, Any], ...]:
    return tuple(_load(path).get("rule", []))


def load_actions(path: Path = HERE / "rules.toml") -> dict[str, dict[str, Any]]:
    """The ``[[action]]`` tables by id: what ``doctor --fix`` can do."""
    return {a["id"]: a for a in _load(path).get("action", [])}


def severity(rule: Mapping[str, Any], os_name: str) -> str:
    return str(rule.get("severity_on", {}).get(os_name, rule["severity"]))


def evaluate(facts: Facts, lang: str = "en") -> list[Finding]:
    """Every rule whose check applies, errors first, and the root cause first within a severity."""
    findings = []
    zh = lang == "zh"
    for rule in load_rules():
        values = CHECKS[rule["code"]](facts)
        if values is None:
            continue
        fill = defaultdict(lambda: "?", values)
        findings.append(Finding(
            rule["code"], severity(rule, facts.os), rule["title_zh" if zh else "title_en"],
            rule["detail_zh" if zh else "detail_en"].format_map(fill), rule["fix_zh" if zh else "fix_en"].format_map(fill),
            values, rule.get("action", "").format_map(fill), int(rule["rank"]),
        ))  # fmt: skip
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), f.rank))
