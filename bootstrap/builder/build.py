"""Planning and building ``env/runtime`` for one pack.

:func:`make_plan` says exactly what would happen (``setup --dry-run``):
the Python, the indexes, the pins, the big wheels, or that nothing needs
doing.  :func:`build` does it: a new environment beside the old one, torch
first, then the runtime under constraints, a self-check, and only then the
swap.  A no-op run reads installed versions from dist-info and returns.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bootstrap import proc
from bootstrap.builder import state
from bootstrap.builder.blame import mirror_failure
from bootstrap.builder.install import InstallSpec, installer_env, pip_steps, run_logged, uv_bin, uv_steps
from bootstrap.builder.pythons import PythonChoice, PythonPlan, install_python, plan_python, unavailable_fix
from bootstrap.builder.wheels import Wheel, find_wheel
from bootstrap.launcher_env import exclusive, swap_in
from bootstrap.layout import Bundle, env_python
from bootstrap.redact import redact
from launcher.errors import BundledPythonUnavailable, EnvironmentBuildFailed, NoPythonForPack
from launcher.mirrors.fallback import MirrorProblem
from launcher.mirrors.sources import Source

RUNTIME_ENV = "runtime"
CONSTRAINTS = "yijian-constraints.txt"

SELF_CHECK = r"""
import contextlib, io, json, sys
out = {"python": "%d.%d.%d" % sys.version_info[:3]}
try:
    import torch
    out.update(torch=torch.__version__, cuda=torch.version.cuda, cuda_available=bool(torch.cuda.is_available()))
except Exception as exc:
    out["torch_error"] = repr(exc)
if "torchvision" in sys.argv[1:]:  # importing it registers its compiled ops: a CUDA build beside a CPU torch fails
    try:
        import torchvision
        out["torchvision"] = torchvision.__version__
    except Exception as exc:
        out["torchvision_error"] = repr(exc)
if "xformers" in sys.argv[1:]:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            import xformers
        out["xformers"] = xformers.__version__
        if getattr(xformers, "_has_cpp_library", True) is False:
            out["xformers_error"] = "its C++/CUDA library did not load"
    except Exception as exc:
        out["xformers_error"] = repr(exc)
    out["xformers_warning"] = err.getvalue().strip()
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Event:
    """Progress of a build, for tqdm in the CLI and the TUI later."""

    step: str  # plan | python | venv | prefetch | torch | runtime | check | swap | done | noop
    zh: str
    en: str
    done: int | None = None
    total: int | None = None

    def text(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    @property
    def percent(self) -> float | None:
        return 100.0 * self.done / self.total if self.done is not None and self.total else None


@dataclass
class BuildPlan:
    pack: Any  # launcher.packs.catalog.Pack
    env: Path
    python: PythonChoice | None
    installer: str
    pypi: Source
    torch: Source
    pins: list[str]
    requirements: list[str]
    big_wheels: list[Wheel] = field(default_factory=list)
    unmet: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    alternates: dict[str, list[Source]] = field(default_factory=dict)  # the next sources per channel, in order
    pypi_pins: list[str] = field(default_factory=list)  # PyPI's equivalent of ``pins`` on this OS; [] for none
    optional: list[str] = field(default_factory=list)  # pins in ``pins`` kept only if they pass the self-check
    torch_route: str = "torch"  # "pypi" once the trio comes from PyPI's equivalent build
    python_plan: PythonPlan | None = None  # which Python and why (None: made without a setting, as tests do)

    @property
    def noop(self) -> bool:
        return not self.unmet

    def to_json(self) -> dict[str, Any]:
        p = self.pack
        return {
            "pack": {"id": p.id, "python": p.python, "torch": p.torch, "torchvision": p.torchvision or None,
                     "xformers": (self.pins[2].split("==")[1] if len(self.pins) > 2 else None), "cuda": p.cuda},
            "env": str(self.env),
            "python": (self.python_plan.to_dict() if self.python_plan else self.python.to_dict() if self.python
                       else {"version": p.python, "source": "to install (uv)"}),
            "installer": self.installer,
            "indexes": {"pypi": {"id": self.pypi.id, "url": self.pypi.url, "kind": self.pypi.kind},
                        "torch": {"id": self.torch.id, "url": self.torch.url, "kind": self.torch.kind}},
            "pins": self.pins,
            "torch_route": {"now": self.torch_route, "pypi_pins": self.pypi_pins or None},
            "optional": self.optional,
            "requirements": self.requirements,
            "big_wheels": [{"filename": w.filename, "url": w.url, "sha256": w.sha256} for w in self.big_wheels],
            "noop": self.noop,
            "unmet": self.unmet,
            "notes": self.notes,
        }  # fmt: skip


def optional_pins(pack: Any, torch: Source, look_up: bool) -> tuple[list[str], list[str]]:
    """The pack's optional pins to install from ``torch``, and a note for each one left out.

    One the torch channel does not list is left out, and said so (the CPU pack's torchvision on a wheel folder
    holding only torch); when the listing cannot be read now, it is tried, and the installer's fallbacks apply.
    """
    from bootstrap.builder.wheels import find_wheel
    from launcher.hardware.nvidia import host_os

    wanted, notes = [], []
    for pin in getattr(pack, "optional_pins", lambda _os: [])(host_os()):
        if look_up or torch.local:
            try:
                if find_wheel(torch, pin) is None:
                    notes.append(
                        f"{pin} is not on {torch.url}: built without it (optional; the runtime works without it)"
                    )
                    continue
            except MirrorProblem:
                pass
        wanted.append(pin)
    return wanted, notes


def runtime_env(bundle: Bundle) -> Path:
    return bundle.env_dir / RUNTIME_ENV


def requirements_digest(pins: list[str], requirements: list[str]) -> str:
    return hashlib.sha256("\n".join(pins + requirements).encode()).hexdigest()


def make_plan(bundle: Bundle, pack: Any, pins: list[str], requirements: list[str], pypi: Source, torch: Source,
              installer: str = "uv", *, look_up_wheels: bool = True,
              alternates: dict[str, list[Source]] | None = None, pypi_pins: list[str] | None = None,
              python_setting: str = "system", python_installable: str = "") -> BuildPlan:  # fmt: skip
    env = runtime_env(bundle)
    state.heal_home(env, bundle.root)  # a moved bundle with its own python/: point the env at it again
    stamp = state.read_stamp(env)
    ready = env_python(env).exists() and stamp.get("pack") == pack.id
    route = "torch"
    if ready and pypi_pins and stamp.get("torch_route") == "pypi" and stamp.get("pins") == pypi_pins:
        # Built earlier from PyPI's equivalent build (the torch channel was down): that holds; --rebuild replaces it.
        pins, route = list(pypi_pins), "pypi"
    unmet = state.unmet(env, pins + requirements) if ready else list(pins + requirements)
    if route == "torch":
        wanted, notes = optional_pins(pack, torch, look_up_wheels)
        dropped = stamp.get("dropped") if stamp.get("pack") == pack.id else None
        for pin, why in (dropped or {}).items():  # failed its self-check here before: not again for this pack
            if pin in wanted:
                wanted.remove(pin)
                notes.append(f"{pin} failed the self-check of the last build ({why[:200]}): left out")
        pins = [*pins, *wanted]
    else:
        wanted, notes = [], []
    python_plan = plan_python(bundle, pack.python, python_setting, installable=python_installable)
    python = python_plan.choice
    plan = BuildPlan(pack, env, python, installer, pypi, torch, pins, requirements, unmet=unmet,
                     alternates=alternates or {}, pypi_pins=list(pypi_pins or []), torch_route=route,
                     python_plan=python_plan, optional=wanted)  # fmt: skip
    plan.notes.extend(notes)
    if route == "pypi":
        plan.notes.append(f"torch came from PyPI ({pins[0]}) because the torch channel failed; "
                          "setup --rebuild installs the pack's own build")  # fmt: skip
    if plan.noop or not look_up_wheels or torch.local:
        return plan
    # The first torch mirror that lists the big wheel gives it to the resumable engine: a dead first mirror
    # must not leave a 200 MB - 2.5 GB download to the installer, which starts it over after a kill.
    wheel = big_wheel([torch, *plan.alternates.get("torch", [])], pins[0], plan.notes)
    if wheel is not None:
        plan.big_wheels.append(wheel)
    return plan


def big_wheel(sources: list[Source], pin: str, notes: list[str]) -> Wheel | None:
    """The wheel ``pin`` resolves to on the first of ``sources`` that lists it; why each one before did not, in notes."""
    for source in sources:
        if source.local:
            continue
        try:
            wheel = find_wheel(source, pin)
        except MirrorProblem as exc:
            notes.append(f"{source.url}: {exc.reason}")
            continue
        if wheel is not None:
            return wheel
        notes.append(f"{pin} is not listed on {source.url}")
    return None


def _failure(step: str, detail: str, log: Path) -> EnvironmentBuildFailed:
    """The error to show: what failed, the ~10 lines that say why, the log, and a diagnosis in plain words."""
    from launcher.diagnosis import diagnose_installer

    lines = _relevant_lines(log)
    try:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-80:])
    except OSError:
        tail = ""
    found = diagnose_installer(tail)
    return EnvironmentBuildFailed(
        detail + (f"\n{lines}" if lines else ""), step=step, log=str(log),
        advice_zh=f"诊断：{found.text('zh')}" if found else "", advice_en=f"Diagnosis: {found.text('en')}" if found else "",
    )  # fmt: skip


def _relevant_lines(log: Path, n: int = 10) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    hits = [ln for ln in lines if any(k in ln.lower() for k in ("error", "cause:", "hint:", "because", "failed"))]
    return "\n".join((hits or lines)[-n:])


def self_check(python: Path, plan: BuildPlan, env: dict[str, str], uv: Path | None, log: Path) -> list[str]:
    """Problems with a freshly built environment; empty when it is good."""
    parts = [pin.split("==")[0] for pin in plan.pins[1:]]
    xformers = "xformers" in parts
    try:
        out = proc.run([python, "-c", SELF_CHECK, *parts], env=env, timeout=300)
        facts = json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, proc.TimeoutExpired, ValueError, IndexError) as exc:
        return [f"the environment's Python did not run its check: {exc!r}"]
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(redact("self-check: " + json.dumps(facts) + "\n"))
    problems = []
    want_torch = plan.pins[0].split("==")[1]
    if "torch_error" in facts:
        problems.append(f"torch does not import: {facts['torch_error']}")
    elif facts.get("torch") != want_torch and facts.get("torch", "").split("+")[0] != want_torch:
        problems.append(f"torch is {facts.get('torch')}, not {want_torch}")
    cuda = plan.pack.cuda
    want_cuda = None if cuda == "cpu" else f"{cuda[2:-1]}.{cuda[-1]}"
    any_cuda = cuda == "cpu" and plan.torch_route == "pypi"  # PyPI's Linux torch is a CUDA build; it runs on a CPU
    if "torch_error" not in facts and facts.get("cuda") != want_cuda and not any_cuda:
        problems.append(f"torch.version.cuda is {facts.get('cuda')}, the pack needs {want_cuda}")
    if xformers and ("xformers_error" in facts or facts.get("xformers_warning")):
        problems.append(f"xformers: {facts.get('xformers_error') or facts.get('xformers_warning')}")
    if "torchvision" in parts and "torchvision_error" in facts:
        problems.append(f"torchvision: {facts['torchvision_error']}")
    if uv is not None:
        try:
            check = proc.run([uv, "pip", "check", "--python", python], env=env, timeout=300)
        except (OSError, proc.TimeoutExpired) as exc:
            return [*problems, f"pip check did not run: {exc!r}"]
        if check.returncode != 0:
            problems.append("pip check: " + (check.stdout + check.stderr).strip().splitlines()[-1])
    return problems


def _drop_failed_optional(py: Path, plan: BuildPlan, problems: list[str], env: dict[str, str], uv: Path | None,
                          log: Path, on_event: Callable[[Event], None]) -> dict[str, str]:  # fmt: skip
    """Uninstall the optional parts that failed the self-check, when only they failed: {name: why}.

    The pack marks them optional because the runtime works without them (xformers 0.0.35 on a torch newer than
    the one it was built for: kept only where it proves it loads).  Anything else failing leaves them alone.
    """
    names = {pin.split("==")[0]: pin for pin in plan.optional}
    failed = {p.split(":", 1)[0]: p.split(":", 1)[1].strip() for p in problems if p.split(":", 1)[0] in names}
    if not failed or len(failed) != len(problems):
        return {}
    argv = ([str(uv), "pip", "uninstall", "--python", str(py), *failed] if uv
            else [sys.executable, "-m", "pip", "--python", str(py), "uninstall", "-y", *failed])  # fmt: skip
    if run_logged(argv, env, log) != 0:
        return {}
    for name, why in failed.items():
        plan.pins.remove(names[name])
        plan.optional.remove(names[name])
        on_event(Event("check", f"{names[name]} 没有通过自检（{why[:200]}），已移除：运行时不用它也能工作",
                       f"{names[name]} failed the self-check ({why[:200]}) and was removed: the runtime works "
                       "without it"))  # fmt: skip
    return {names[name]: why for name, why in failed.items()}


def _fetch_wheel(bundle: Bundle, wheel: Wheel, on_event: Callable[[Event], None], lang: str) -> Path | None:
    """The big wheel in ``cache/wheels/`` (resumable); None when its mirror failed: then the installer fetches it."""
    from launcher.downloads import DownloadSource, download
    from launcher.errors import AllMirrorsFailed, ChecksumMismatch, DownloadFailed, WrongContent

    dest = bundle.cache_dir / "wheels" / wheel.filename

    def progress(p: Any) -> None:
        on_event(Event("prefetch", f"下载 {wheel.filename}", f"downloading {wheel.filename}", p.done, p.total))

    try:
        download([DownloadSource(wheel.url)], dest, sha256=wheel.sha256, on_progress=progress, lang=lang, bundle=bundle)
    except (DownloadFailed, WrongContent, ChecksumMismatch, AllMirrorsFailed) as exc:  # not a full disk, not Ctrl-C
        why = exc.params.get("reason") or exc.code
        on_event(Event("prefetch", f"预先下载 {wheel.filename} 失败（{why}），改由安装器从各镜像下载",
                       f"prefetching {wheel.filename} failed ({why}); the installer fetches it through the mirrors"))  # fmt: skip
        return None
    return dest


def build(bundle: Bundle, plan: BuildPlan, *, base_env: dict[str, str], on_event: Callable[[Event], None],
          lang: str = "en", force: bool = False) -> dict[str, Any]:  # fmt: skip
    """Make ``env/runtime`` match the plan.  Returns the stamp of the environment in use."""
    env_dir = plan.env
    if plan.noop and not force:
        on_event(
            Event("noop", "环境已符合环境包，无需改动。", "The environment already matches the pack; nothing to do.")
        )
        return state.read_stamp(env_dir)
    log = bundle.logs_dir / f"setup-{time.strftime('%Y%m%d-%H%M%S')}.log"
    bundle.logs_dir.mkdir(parents=True, exist_ok=True)
    env = installer_env(base_env)
    uv = uv_bin() if plan.installer == "uv" else None

    def fail(step: str, detail: str) -> EnvironmentBuildFailed:
        return _failure(step, detail, log)

    with exclusive(bundle.env_dir / ".runtime.lock"):
        python = plan.python
        # A Python inside the bundle travels with it; a system one ties the bundle to this machine, so it is used
        # only when the user chose setup.python = system (then the plan found it, or it is installed like this).
        uv_python = uv or uv_bin()  # uv installs the Python even when pip installs the packages
        why = "uv is missing" if uv_python is None else "offline mode" if base_env.get("UV_OFFLINE") == "1" else ""
        if python is None and uv_python is not None and not why:
            on_event(Event("python", f"安装 Python {plan.pack.python}", f"installing Python {plan.pack.python}"))
            python = install_python(bundle, plan.pack.python, uv_python, env, log)
            why = "" if python else f"uv python install failed through the python mirror channel, see {log}"
        if python is None and plan.python_plan is not None and plan.python_plan.setting == "bundled":
            how_zh, how_en = unavailable_fix(plan.pack.python)
            raise BundledPythonUnavailable(version=plan.pack.python, reason=why, how_zh=how_zh, how_en=how_en)
        if python is None:
            raise NoPythonForPack(version=plan.pack.python)
        staging = env_dir.with_name(env_dir.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            on_event(Event("venv", "创建新环境", "creating the new environment"))
            argv = ([str(uv), "venv", "--relocatable", "--python", str(python.path), str(staging)] if uv
                    else [str(python.path), "-m", "venv", "--without-pip", str(staging)])  # fmt: skip
            if run_logged(argv, env, log) != 0:
                raise fail("venv", "could not create the environment")
            state.make_portable(staging, bundle.root)
            torch_reqs = list(plan.pins)
            for wheel in plan.big_wheels:
                local = _fetch_wheel(bundle, wheel, on_event, lang)
                if local is not None:  # else the installer fetches it, falling back through the mirrors
                    torch_reqs = [str(local) if r == plan.pins[0] else r for r in torch_reqs]
            constraints = staging / CONSTRAINTS
            constraints.write_text("\n".join(plan.pins) + "\n", encoding="utf-8")
            runtime_txt = staging / "yijian-runtime.txt"
            runtime_txt.write_text("\n".join(plan.requirements) + "\n", encoding="utf-8")
            py = env_python(staging)
            spec = InstallSpec(plan.pypi, plan.torch, torch_reqs, runtime_txt, constraints)
            _install(bundle, plan, spec, py, uv, env, log, on_event, lang, fail)
            on_event(Event("check", "自检新环境", "checking the new environment"))
            problems = self_check(py, plan, env, uv, log)
            dropped = _drop_failed_optional(py, plan, problems, env, uv, log, on_event)
            if dropped:
                problems = self_check(py, plan, env, uv, log)
            if problems:
                raise fail("check", "; ".join(problems))
            stamp = {"pack": plan.pack.id, "pins": plan.pins, "dropped": dropped, "torch_route": plan.torch_route, "requirements_sha256": requirements_digest(plan.pins, plan.requirements),
                     "python": python.version, "built": time.strftime("%Y-%m-%dT%H:%M:%S"), "log": log.name}  # fmt: skip
            base = python.path.resolve()
            if base.is_relative_to(bundle.root.resolve()):  # the bundle's own python/: remembered for a move
                stamp["python_rel"] = str(base.relative_to(bundle.root.resolve()))
            state.write_stamp(staging, stamp)
            on_event(Event("swap", "启用新环境", "switching to the new environment"))
            swap_in(staging, env_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    on_event(Event("done", f"环境已就绪：{env_dir}", f"Environment ready: {env_dir}"))
    return stamp


_STEP_TEXT = {
    "torch": ("安装 torch 组件", "installing the torch trio"),
    "runtime": ("安装运行依赖", "installing the runtime"),
}


def _install(bundle: Bundle, plan: BuildPlan, spec: InstallSpec, py: Path, uv: Path | None, env: dict[str, str],
             log: Path, on_event: Callable[[Event], None], lang: str,
             fail: Callable[[str, str], EnvironmentBuildFailed]) -> None:  # fmt: skip
    """Both steps.  A step that fails on a mirror moves to that channel's next mirror; then uv falls back to pip."""
    from launcher.mirrors import ranking

    pip_cache = bundle.cache_dir / "pip"
    alternates = {ch: list(srcs) for ch, srcs in plan.alternates.items()}
    tried: list[tuple[str, str]] = []  # the torch mirrors that failed, for the switch to PyPI or the finding
    for index, what in enumerate(("torch", "runtime")):
        on_event(Event(what, *_STEP_TEXT[what]))
        while True:
            lines: list[str] = []
            steps = uv_steps(uv, py, spec) if uv else pip_steps(py, spec, pip_cache)
            ok = run_logged(steps[index].argv, env, log, lines.append) == 0
            blamed = None if ok else mirror_failure(lines, spec, what, "uv" if uv else "pip")
            if blamed is None:
                break
            channel, reason = blamed
            failed = spec.torch if channel == "torch" and spec.torch is not None else spec.pypi
            ranking.record_failure(bundle, channel, failed.id, reason)
            if channel == "torch":
                tried.append((failed.name(lang), reason))
            if channel == "torch" and not alternates.get("torch"):
                spec = _torch_from_pypi(bundle, plan, spec, tried, on_event, lang)  # or TorchNoRoute
                continue
            if not alternates.get(channel):
                break
            new = alternates[channel].pop(0)
            on_event(Event(what, f"镜像 {failed.name('zh')} 失败（{reason}），改用 {new.name('zh')}",
                           f"mirror {failed.name('en')} failed ({reason}); trying {new.name('en')}"))  # fmt: skip
            spec = replace(spec, torch=new) if channel == "torch" else replace(spec, pypi=new)
        if ok:
            continue
        if not uv or not _has_pip():
            raise fail(what, f"the installer failed at the {what} step")
        on_event(Event(what, "uv 失败，改用 pip 重试", "uv failed; retrying with pip"))
        if run_logged(pip_steps(py, spec, pip_cache)[index].argv, env, log) != 0:
            raise fail(what, f"uv and pip both failed at the {what} step")


def _torch_from_pypi(bundle: Bundle, plan: BuildPlan, spec: InstallSpec, tried: list[tuple[str, str]],
                     on_event: Callable[[Event], None], lang: str) -> InstallSpec:  # fmt: skip
    """Every torch mirror failed: the same step with PyPI's equivalent pins (and the constraints to match).

    PyPI's torch (several GB on Linux) is fetched with the resumable engine first, as the torch channel's is, from
    the PyPI mirror in use and then the next ones; the installer gets the file (or fetches it itself if none served it).
    """
    from bootstrap.builder.torch_route import no_route, switch_texts

    if not plan.pypi_pins:
        raise no_route(plan.pack, plan.pins[0], tried)
    on_event(Event("torch", *switch_texts(plan.pack, plan.pins, plan.pypi_pins, tried,
                                          (spec.pypi.name("zh"), spec.pypi.name("en")))))  # fmt: skip
    plan.pins, plan.torch_route = list(plan.pypi_pins), "pypi"
    # PyPI's torchvision is the build that matches PyPI's torch; where the pack's own is optional, so is this one.
    optional = getattr(plan.pack, "optional", ())
    plan.optional = [pin for pin in plan.pins[1:] if pin.split("==")[0] in optional]
    spec.constraints.write_text("\n".join(plan.pins) + "\n", encoding="utf-8")
    reqs = list(plan.pins)
    if not spec.pypi.local:
        wheel = big_wheel([spec.pypi, *plan.alternates.get("pypi", [])], plan.pins[0], plan.notes)
        local = _fetch_wheel(bundle, wheel, on_event, lang) if wheel is not None else None
        if local is not None:
            reqs[0] = str(local)
    return replace(spec, torch=None, torch_reqs=reqs)


REPAIRS = {"xformers": ("xformers",), "torch": ("torch", "torchvision", "xformers")}


def repair(bundle: Bundle, plan: BuildPlan, what: str, *, base_env: dict[str, str], on_event: Callable[[Event], None],
           lang: str = "en") -> dict[str, Any]:  # fmt: skip
    """Reinstall the pack's xformers, or its whole torch trio, into a copy; check it; swap it in.

    The doctor's fixes for "xFormers was built for PyTorch X" and "CPU torch on
    an NVIDIA machine" call this.  Without an environment there is nothing to
    repair, so it builds one.
    """
    env_dir = plan.env
    if not env_python(env_dir).exists() or not (env_dir / "pyvenv.cfg").exists():
        # Nothing to repair, or an environment no installer can update in place: a copy of the embeddable
        # Python that a win-x64 archive was cross-installed with (launcher.release_pack).  Build a venv.
        return build(bundle, plan, base_env=base_env, on_event=on_event, lang=lang, force=True)
    names = REPAIRS[what]
    pins = [p for p in plan.pins if p.split("==")[0] in names]
    if not pins:
        on_event(
            Event(
                "noop",
                f"环境包 {plan.pack.id} 不含 {what}，无需修复。",
                f"The pack {plan.pack.id} has no {what}; nothing to repair.",
            )
        )
        return state.read_stamp(env_dir)
    log = bundle.logs_dir / f"setup-{time.strftime('%Y%m%d-%H%M%S')}.log"
    bundle.logs_dir.mkdir(parents=True, exist_ok=True)
    env = installer_env(base_env)
    uv = uv_bin()
    with exclusive(bundle.env_dir / ".runtime.lock"):
        staging = env_dir.with_name(env_dir.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            on_event(Event("venv", "复制当前环境", "copying the environment"))
            shutil.copytree(env_dir, staging, symlinks=True)
            py = env_python(staging)
            constraints = staging / CONSTRAINTS
            constraints.write_text("\n".join(plan.pins) + "\n", encoding="utf-8")
            on_event(Event("torch", f"重新安装 {', '.join(names)}", f"reinstalling {', '.join(names)}"))
            spec = InstallSpec(plan.pypi, plan.torch, pins, staging / "yijian-runtime.txt", constraints)
            reinstall = [a for n in names for a in ("--reinstall-package", n)]
            if uv is not None:
                argv = [*uv_steps(uv, py, spec)[0].argv, *reinstall, "--constraint", str(constraints)]
            else:
                argv = [*pip_steps(py, spec, bundle.cache_dir / "pip")[0].argv, "--force-reinstall", "--no-deps"]
            if run_logged(argv, env, log) != 0:
                raise _failure("repair", f"reinstalling {what} failed", log)
            on_event(Event("check", "自检修复后的环境", "checking the repaired environment"))
            problems = self_check(py, plan, env, uv, log)
            if problems:
                raise _failure("check", "; ".join(problems), log)
            stamp = {**state.read_stamp(staging), "repaired": what, "repaired_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
            state.write_stamp(staging, stamp)
            on_event(Event("swap", "启用修复后的环境", "switching to the repaired environment"))
            swap_in(staging, env_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    on_event(Event("done", f"已修复：{what}", f"Repaired: {what}"))
    return stamp


def _has_pip() -> bool:
    """pip in the launcher environment, for the fallback installer."""
    import importlib.util

    return importlib.util.find_spec("pip") is not None
