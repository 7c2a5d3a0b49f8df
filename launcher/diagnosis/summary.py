"""What a log shows when no known problem matches: the failing step, the error, the package.

Saying "no known problem" about a log that ends in a traceback sends the user
away with nothing.  :func:`summarize` names what the log does show and what to
include when asking for help, in both languages; it stays silent only for a
log without any sign of failure.
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from launcher.diagnosis.logread import LogView

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from launcher.doctor.scanner import Finding

HERE = Path(__file__).resolve().parent

_STEP = re.compile(r"^\s*(?:Installing|Cloning|Downloading|Loading|Launching|Collecting|Creating|Building|Running|Updating)"
                   r"\b[^\n]{0,120}", re.MULTILINE)  # fmt: skip
_FAILURE = re.compile(r"^\s*(?:ERROR|error|fatal|FATAL)\b[:\s]|Traceback \(most recent call last\)|"
                      r"\bfailed\b|Exception during processing", re.MULTILINE)  # fmt: skip
_SKIP_PACKAGES = {"torch", "pip", "gradio", "uvicorn", "starlette", "anyio", "fastapi", "asyncio"}


def _package(view: LogView) -> str:
    final = view.final
    pkgs = final.packages if final else []
    for p in reversed(pkgs):
        if p not in _SKIP_PACKAGES:
            return p
    return pkgs[-1] if pkgs else ""


@lru_cache(maxsize=1)
def _tools() -> tuple[tuple[str, re.Pattern[str]], ...]:
    with open(HERE / "tools.toml", "rb") as fh:
        data = tomllib.load(fh)
    return tuple((t["name"], re.compile(t["pattern"])) for t in data["tool"])


def tool_of(view: LogView) -> str:
    """The program that wrote the log, from its paths and lines; "" when it does not say."""
    return next((name for name, pattern in _tools() if pattern.search(view.text)), "")


def _root(view: LogView) -> str:
    """The first exception of the chain that ends the log, when the final one was raised from it."""
    events = view.events
    i = len(events) - 1
    while i > 0 and events[i].link:
        i -= 1
    return f"{events[i].type}: {events[i].message[:160]}" if events and i < len(events) - 1 else ""


def summarize(view: LogView, lang: str) -> Finding | None:
    from launcher.doctor.scanner import Finding

    final = view.final
    failing = _FAILURE.search(view.text)
    if final is None and failing is None:
        return None
    steps = _STEP.findall(view.text)
    step = steps[-1].strip() if steps else ""
    package = _package(view)
    values = {"step": step, "exception": final.type if final else "", "message": (final.message if final else "")[:200],
              "package": package, "line": failing.group(0).strip() if failing else ""}  # fmt: skip
    values["tool"], values["root"] = tool_of(view), _root(view)
    zh = lang == "zh"
    parts = []
    if values["tool"]:
        parts.append(f"日志来自 {values['tool']}" if zh else f"it comes from {values['tool']}")
    if step:
        parts.append(f"最后的步骤：{step}" if zh else f"the last step: {step}")
    if final:
        parts.append(
            f"最后的错误：{final.type}: {values['message']}"
            if zh
            else f"the final error: {final.type}: {values['message']}"
        )
    elif failing:
        parts.append(f"出错的行：{values['line']}" if zh else f"the failing line: {values['line']}")
    if values["root"]:
        parts.append(f"它源于更早的错误：{values['root']}" if zh else f"it was raised while handling {values['root']}")
    if package:
        parts.append(f"出错的位置在 {package} 包里" if zh else f"it was raised inside the {package} package")
    detail = (
        ("一键没有认出这个问题。日志显示：" + "；".join(parts) + "。")
        if zh
        else ("Yijian does not recognise this problem. The log shows " + "; ".join(parts) + ".")
    )
    fix = ("求助时请附上：从启动命令开始的完整日志（不要只截最后几行）、./start.sh sysinfo 的输出、出错前做了什么操作。" if zh else
           "When asking for help, include the whole log from the start command (not only the last lines), the output of "
           "./start.sh sysinfo, and what you did just before it failed.")  # fmt: skip
    title = "没有认出已知问题" if zh else "No known problem recognised"
    return Finding("LOG_SUMMARY", "warning" if final else "info", title, detail, fix, values, "", 999, "low")
