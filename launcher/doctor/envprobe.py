"""Looking inside the generation environment without importing torch here.

The probe is a small script run by the environment's own interpreter as a
child process, with a timeout; it prints one JSON line.  Whatever the
environment does (no interpreter at all, a DLL that fails to load and kills
the process, an import that hangs, torch that raises), the launcher gets an
:class:`EnvFacts` back and stays up.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bootstrap import proc
from bootstrap.layout import env_python

PROBE = r"""
import contextlib, io, json, sys, importlib.metadata as md
out = {"python": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable}
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
for name in ("torch", "torchvision", "xformers", "triton", "triton-windows", "hf-xet", "diffusers", "transformers",
             "gradio", "safetensors"):
    out.setdefault("packages", {})[name] = version(name)
try:
    import torch
    t = {"version": torch.__version__, "cuda": torch.version.cuda, "cuda_available": bool(torch.cuda.is_available())}
    try:
        t["arch_list"] = list(torch.cuda.get_arch_list())
    except Exception:
        t["arch_list"] = []
    try:
        t["cudnn"] = torch.backends.cudnn.version()
    except Exception:
        t["cudnn"] = None
    if t["cuda_available"]:
        t["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    out["torch"] = t
except Exception as exc:
    out["torch_error"] = "%s: %s" % (type(exc).__name__, exc)
if out["packages"]["xformers"]:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            import xformers
        out["xformers"] = {"version": getattr(xformers, "__version__", None)}
    except Exception as exc:
        out["xformers_error"] = "%s: %s" % (type(exc).__name__, exc)
    out["xformers_stderr"] = err.getvalue()[-4000:]
print("YIJIAN-PROBE " + json.dumps(out))
"""


@dataclass
class EnvFacts:
    """What the probe found.  ``state``: ok | missing | crashed | timeout | unreadable."""

    state: str
    env: str
    detail: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    pip_check: str | None = None  # None: not run; "" when clean, else its complaints

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_environment(env: Path, timeout: float = 60.0, uv: Path | None = None) -> EnvFacts:
    """Run the probe in ``env``'s interpreter; never raises for a broken environment."""
    python = env_python(env)
    if not python.exists():
        return EnvFacts("missing", str(env), f"{python} does not exist")
    try:
        done = proc.run([python, "-I", "-c", PROBE], timeout=timeout)
    except proc.TimeoutExpired:
        return EnvFacts("timeout", str(env), f"the probe did not finish within {timeout:g} s")
    except OSError as exc:
        return EnvFacts("crashed", str(env), f"{python} could not be started: {exc}")
    line = next((ln for ln in reversed(done.stdout.splitlines()) if ln.startswith("YIJIAN-PROBE ")), None)
    if done.returncode != 0 or line is None:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        return EnvFacts("crashed", str(env), f"exit code {done.returncode}: {tail}")
    try:
        facts = json.loads(line[len("YIJIAN-PROBE ") :])
    except ValueError as exc:
        return EnvFacts("unreadable", str(env), f"the probe's answer was not JSON: {exc}")
    result = EnvFacts("ok", str(env), facts=facts)
    if uv is not None:
        try:
            check = proc.run([uv, "pip", "check", "--python", python], timeout=timeout)
        except (OSError, proc.TimeoutExpired) as exc:
            result.pip_check = f"uv pip check did not run: {exc}"
            return result
        result.pip_check = "" if check.returncode == 0 else (check.stdout + check.stderr).strip()
    return result
