"""``doctor --fix``: the findings' actions, run through the config and the environment builder.

UI-free: the CLI and the TUI both call :func:`fix` (or :func:`plan` and :func:`run` themselves) and render the
:class:`FixReport`.  What each action does is data (the ``[[action]]`` tables of ``rules.toml``):

* ``config`` actions set settings through :func:`launcher.config.apply` (validated first, comments kept);
* ``port`` moves ``launch.port`` to a free port;
* ``mirrors`` measures the PyPI, torch and Hugging Face mirrors again (only ``cache/mirrors.json`` changes);
* ``environment`` actions build, rebuild or repair ``env/runtime`` through :class:`Builder`.  The builder makes
  the new environment beside the one in use and swaps it in only after its self-check, so a failed fix leaves
  the old one running; nothing under ``models/`` or ``outputs/`` and no setting is touched.  At most one
  environment action runs: a build covers every repair.

Only warnings and errors are fixed; an info finding's action is listed as ``optional``, and a finding without
an action as ``manual`` (its fix text says what to do).  An action marked ``safe = false`` runs only when the
``confirm`` callback agrees (the TUI asks; the CLI asks on a terminal).  Failures are typed errors
(:class:`~bootstrap.errors.YijianError`), recorded per step; the remaining steps still run.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bootstrap.errors import YijianError
from bootstrap.layout import Bundle
from launcher.doctor.checks import load_actions
from launcher.doctor.report import Examination
from launcher.doctor.scanner import Finding
from launcher.environment import EnvironmentBuilder

KINDS = ("config", "port", "mirrors", "environment")  # the order steps run in: quick and local first
CHANNELS = ("pypi", "torch", "huggingface")
PORT_SPAN = 200  # how far above the configured port to look for a free one
Say = Callable[[str], None]


@dataclass(frozen=True)
class Action:
    """One ``[[action]]`` of rules.toml."""

    id: str
    kind: str
    safe: bool
    title_zh: str
    title_en: str
    set: Mapping[str, Any] = field(default_factory=dict)  # config: key -> value
    pack: str = ""  # environment: "auto" or "setting" (setup.pack)
    force: bool = False  # environment: rebuild even when the environment holds
    repair: str = ""  # environment: "xformers" | "torch"

    @classmethod
    def from_table(cls, t: Mapping[str, Any]) -> Action:
        return cls(t["id"], t["kind"], bool(t.get("safe", False)), t["title_zh"], t["title_en"],
                   dict(t.get("set", {})), str(t.get("pack", "")), bool(t.get("force", False)),
                   str(t.get("repair", "")))  # fmt: skip

    def title(self, lang: str) -> str:
        return self.title_zh if lang == "zh" else self.title_en


def actions() -> dict[str, Action]:
    return {k: Action.from_table(v) for k, v in load_actions().items()}


@dataclass(frozen=True)
class Step:
    """What ``--fix`` does for some findings.  ``mode``: run | optional (an info finding) | manual (no action)."""

    action: Action | None
    findings: tuple[Finding, ...]
    mode: str
    force: bool = False  # a merged environment step that must rebuild

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def what(self, lang: str) -> str:
        """The action in words, or the finding's own fix for manual steps."""
        return self.action.title(lang) if self.action else self.findings[0].fix


@dataclass
class Outcome:
    """One step's result.  ``status``: planned | done | unchanged | failed | declined | optional | manual."""

    step: Step
    status: str
    changes: list[str] = field(default_factory=list)  # what changed, in plain facts ("launch.vram: auto -> medvram")
    error: YijianError | None = None

    def to_dict(self, lang: str) -> dict[str, Any]:
        a = self.step.action
        return {"action": a.id if a else None, "codes": self.step.codes, "status": self.status,
                "safe": a.safe if a else None, "what": self.step.what(lang), "changes": self.changes,
                "error": self.error.to_dict(lang) if self.error else None}  # fmt: skip


class Builder(Protocol):
    """The environment builder as fixes use it; each call says what changed, or None when nothing needed doing."""

    def build(self, pack: str, force: bool) -> str | None: ...

    def repair(self, what: str) -> str | None: ...


def plan(findings: list[Finding]) -> list[Step]:
    """The steps for these findings: runnable ones by kind (one per action), then optional, then manual."""
    known = actions()
    runnable: dict[str, list[Finding]] = {}
    later: list[Step] = []
    for f in findings:
        action = known.get(f.action) if f.action else None
        if action is not None and f.severity != "info":
            runnable.setdefault(action.id, []).append(f)
        else:
            later.append(Step(action, (f,), "optional" if action else "manual"))
    steps = [Step(known[a], tuple(fs), "run") for a, fs in runnable.items() if known[a].kind != "environment"]
    env = [a for a in runnable if known[a].kind == "environment"]
    if env:
        builds = [a for a in env if not known[a].repair]
        main = ("setup-auto" if "setup-auto" in builds else builds[0]) if builds else (
            "repair-torch" if "repair-torch" in env else env[0])  # fmt: skip
        merged = tuple(f for a in env for f in runnable[a])
        steps.append(Step(known[main], merged, "run", force=any(known[a].force for a in builds)))
    steps.sort(key=lambda s: KINDS.index(s.action.kind) if s.action else len(KINDS))
    return steps + [s for s in later if s.mode == "optional"] + [s for s in later if s.mode == "manual"]


# --- running -------------------------------------------------------------------------------------------------


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _set(bundle: Bundle, values: Mapping[str, Any]) -> list[str]:
    from launcher import config

    cfg = config.load(bundle)
    changes = [(k, v) for k, v in values.items() if cfg[k] != v]
    if changes:
        config.apply(bundle, changes)
    return [f"{k}: {cfg[k]} -> {v}" for k, v in changes]


def _free_port(bundle: Bundle) -> list[str]:
    from launcher import config
    from launcher.errors import NoFreePort

    cfg = config.load(bundle)
    port = cfg.get_int("launch.port")
    host = "0.0.0.0" if cfg.get_bool("launch.listen") else "127.0.0.1"
    if _port_free(host, port):
        return []  # whoever held it has let go
    last = min(port + PORT_SPAN, 65535)
    free = next((p for p in range(port + 1, last + 1) if _port_free(host, p)), None)
    if free is None:
        raise NoFreePort(first=port + 1, last=last)
    return _set(bundle, {"launch.port": free})


def _remeasure(bundle: Bundle, lang: str) -> list[str]:
    from launcher import config
    from launcher.errors import OfflineMode
    from launcher.mirrors.measure import measure

    cfg = config.load(bundle)
    if cfg.get_bool("network.offline"):
        raise OfflineMode(action_zh="测速镜像", action_en="measure the mirrors")
    out = []
    for channel, results in measure(bundle, cfg, CHANNELS).items():
        best = next((r for r in results if r.ok and r.automatic), None)
        out.append(f"{channel}: " + (f"fastest healthy mirror {best.id}" if best else "no mirror answered"))
    return out


def _environment(step: Step, builder: Builder) -> list[str]:
    assert step.action is not None
    a = step.action
    changed = builder.repair(a.repair) if a.repair else builder.build(a.pack or "setting", step.force or a.force)
    return [changed] if changed else []


def run(bundle: Bundle, steps: list[Step], *, lang: str = "en", builder: Builder | None = None,
        confirm: Callable[[Step], bool] | None = None, say: Say = lambda _: None) -> list[Outcome]:  # fmt: skip
    """Run the runnable steps in order; every step gets an :class:`Outcome`, failed or not."""
    outcomes = []
    for step in steps:
        a = step.action
        if step.mode != "run" or a is None:
            outcomes.append(Outcome(step, step.mode))
            continue
        if not a.safe and (confirm is None or not confirm(step)):
            outcomes.append(Outcome(step, "declined"))
            continue
        say(f"→ {a.title(lang)} ({', '.join(step.codes)})")
        try:
            if a.kind == "config":
                changes = _set(bundle, a.set)
            elif a.kind == "port":
                changes = _free_port(bundle)
            elif a.kind == "mirrors":
                changes = _remeasure(bundle, lang)
            else:
                changes = _environment(step, builder or EnvironmentBuilder(bundle, lang, say))
        except YijianError as exc:
            outcomes.append(Outcome(step, "failed", error=exc))
            continue
        outcomes.append(Outcome(step, "done" if changes else "unchanged", changes))
    return outcomes


@dataclass
class FixReport:
    """Before, what was done, after (None for a dry run)."""

    before: Examination
    outcomes: list[Outcome]
    after: Examination | None = None

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def codes(self) -> tuple[list[str], list[str], list[str]]:
        """(fixed, remaining, new) finding codes."""
        before = [f.code for f in self.before.findings]
        after = [f.code for f in self.after.findings] if self.after else before
        return [c for c in before if c not in after], [c for c in before if c in after], [
            c for c in after if c not in before]  # fmt: skip

    def to_json(self, lang: str) -> dict[str, Any]:
        """The doctor's --json contract for the state now, plus what --fix did."""
        now = self.after or self.before
        fixed, remaining, new = self.codes()
        out = now.to_json()
        out.update({"fixes": [o.to_dict(lang) for o in self.outcomes], "dry_run": self.after is None,
                    "before": [f.code for f in self.before.findings], "fixed": fixed, "remaining": remaining,
                    "new": new})  # fmt: skip
        return out


def fix(bundle: Bundle, *, lang: str = "en", dry_run: bool = False, probe_env: bool = True, network: bool = False,
        builder: Builder | None = None, confirm: Callable[[Step], bool] | None = None,
        say: Say = lambda _: None) -> FixReport:  # fmt: skip
    """Examine, run the fixes (or only list them), examine again."""
    from launcher.doctor.report import examine

    before = examine(bundle, lang, probe_env=probe_env, network=network)
    steps = plan(before.findings)
    if dry_run:
        return FixReport(before, [Outcome(s, "planned" if s.mode == "run" else s.mode) for s in steps])
    outcomes = run(bundle, steps, lang=lang, builder=builder, confirm=confirm, say=say)
    acted = any(o.status in ("done", "failed") for o in outcomes)
    after = examine(bundle, lang, probe_env=probe_env, network=network) if acted else before
    return FixReport(before, outcomes, after)
