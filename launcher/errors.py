"""The launcher's errors: branches of the one tree rooted in bootstrap.errors.

Import errors from here in launcher code; stage 0 uses the root module
directly because it cannot import the launcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bootstrap.errors import (
    BundleNotWritable,
    BundlePathError,
    ExitCode,
    LauncherEnvError,
    NotBuiltYet,
    UsageError,
    YijianError,
)

__all__ = [
    "BundleNotWritable",
    "BundlePathError",
    "ConfigInvalid",
    "ConfigProblem",
    "ConfigUnreadable",
    "ExitCode",
    "LauncherEnvError",
    "NotBuiltYet",
    "UsageError",
    "YijianError",
]


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in config.toml, located as precisely as we can."""

    file: str
    line: int | None
    key: str
    message_zh: str
    message_en: str

    def message(self, lang: str) -> str:
        return self.message_zh if lang == "zh" else self.message_en

    def render(self, lang: str) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message(lang)}"

    def to_dict(self, lang: str) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "key": self.key, "message": self.message(lang)}


class ConfigUnreadable(YijianError):
    code = "CONFIG_UNREADABLE"
    exit_code = ExitCode.CONFIG
    zh = "无法读取配置文件 {file}：{detail}"
    en = "Cannot read the config file {file}: {detail}"
    hint_zh = "修正第 {line} 行附近的 TOML 语法，或删除该文件以恢复默认设置（删除前请先备份）。"
    hint_en = "Fix the TOML syntax near line {line}, or move the file away to go back to the defaults."


class ConfigInvalid(YijianError):
    code = "CONFIG_INVALID"
    exit_code = ExitCode.CONFIG
    zh = "配置文件 {file} 有 {count} 处错误：\n{listing}"
    en = "The config file {file} has {count} problem(s):\n{listing}"
    hint_zh = "按上面的提示修改，然后运行 ./start.sh config validate 检查。"
    hint_en = "Fix them as shown, then run ./start.sh config validate."

    def __init__(self, problems: list[ConfigProblem], file: str) -> None:
        self.problems = problems
        super().__init__("", file=file, count=len(problems), listing="")

    def message(self, lang: str) -> str:
        self.params["listing"] = "\n".join("  " + p.render(lang) for p in self.problems)
        return super().message(lang)

    def to_dict(self, lang: str) -> dict[str, Any]:
        out = super().to_dict(lang)
        out["problems"] = [p.to_dict(lang) for p in self.problems]
        return out
