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
    "AllMirrorsFailed",
    "BundleNotWritable",
    "BundlePathError",
    "ConfigInvalid",
    "ConfigProblem",
    "ConfigUnreadable",
    "ExitCode",
    "LauncherEnvError",
    "MirrorChoiceInvalid",
    "MirrorUnusable",
    "NotBuiltYet",
    "OfflineMode",
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


class AllMirrorsFailed(YijianError):
    code = "MIRRORS_ALL_FAILED"
    exit_code = ExitCode.NETWORK
    zh = "{channel} 的所有镜像都失败了：{listing}"
    en = "Every {channel} mirror failed: {listing}"
    hint_zh = "检查网络和代理（config set network.proxy …），运行 ./start.sh mirrors test 查看各镜像状态，或用 ./start.sh mirrors use 指定一个可用的镜像。"
    hint_en = (
        "Check the network and the proxy (config set network.proxy ...), run ./start.sh mirrors test to see "
        "each mirror's state, or pick a working one with ./start.sh mirrors use."
    )


class MirrorChoiceInvalid(YijianError):
    code = "MIRROR_CHOICE_INVALID"
    exit_code = ExitCode.USAGE
    zh = "不能把 {channel} 镜像设为「{value}」：{reason_zh}"
    en = "Cannot use {value!r} as the {channel} mirror: {reason_en}"
    hint_zh = "{fix_zh}"
    hint_en = "{fix_en}"


class MirrorUnusable(YijianError):
    code = "MIRROR_UNUSABLE"
    exit_code = ExitCode.NETWORK
    zh = "镜像 {value} 现在不能用作 {channel}：{reason}"
    en = "The mirror {value} cannot serve as {channel} now: {reason}"
    hint_zh = "检查地址是否正确（{channel} 需要 {expect_zh}）。仍要保存，请加 --force。"
    hint_en = "Check the address ({channel} needs {expect_en}). To save it anyway, add --force."


class OfflineMode(YijianError):
    code = "OFFLINE_MODE"
    exit_code = ExitCode.NETWORK
    zh = "离线模式已开启，不能{action_zh}。"
    en = "Offline mode is on, so Yijian cannot {action_en}."
    hint_zh = "需要联网时运行 ./start.sh config set network.offline false。"
    hint_en = "To go online, run ./start.sh config set network.offline false."
