"""AUTOMATIC1111's command-line flags: the table, reading them, and where they come from.

The table is data (``a1111_flags.toml``: every flag A1111 1.10 knows, the
values it takes, its default and what Yijian does with it).  This module
reads flags the way A1111's argparse does (a unique prefix names a flag,
``--flag=value`` and ``--flag value`` both work, ``--use-cpu`` takes one or
more values, ``--styles-file`` may repeat) and finds them where A1111 users
keep them: the ``COMMANDLINE_ARGS`` environment variable and the
``webui-user.bat``/``webui-user.sh`` files of an A1111 install.  What each
mapped flag does is the runtime's business (runtime/options.py); the launcher
uses this module to gather flags and to take logins out of them before any
command line is built.  Standard library only: every layer shares it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import lru_cache
from pathlib import Path
from typing import Any

from bootstrap.errors import A1111FlagInvalid
from bootstrap.tomlread import load as load_toml

TABLE_FILE = Path(__file__).with_name("a1111_flags.toml")
TAKES = ("none", "one", "many", "append")


@dataclass(frozen=True)
class Flag:
    name: str
    dest: str
    takes: str  # none | one | many | append
    effect: str  # mapped | none
    type: str = "bool"  # bool | str | int | path | json | choice
    default: Any = None
    choices: tuple[str, ...] = ()
    why: str = ""  # key of the reason, for effect = none

    @property
    def takes_value(self) -> bool:
        return self.takes != "none"


@dataclass(frozen=True)
class FlagTable:
    flags: dict[str, Flag]
    reasons: dict[str, tuple[str, str]]  # key -> (zh, en)

    def reason(self, flag: Flag, lang: str) -> str:
        zh, en = self.reasons[flag.why]
        return zh if lang == "zh" else en

    def no_effect_line(self, flag: Flag, lang: str) -> str:
        """The one warning line for a flag accepted without effect."""
        if lang == "zh":
            return f"{flag.name} 在这里不起作用：{self.reason(flag, 'zh')}。"
        return f"{flag.name} has no effect here: {self.reason(flag, 'en')}."


@lru_cache(maxsize=1)
def table() -> FlagTable:
    data = load_toml(TABLE_FILE)
    flags = {}
    for raw in data["flags"]:
        flag = Flag(name=raw["name"], dest=raw["dest"], takes=raw["takes"], effect=raw["effect"],
                    type=raw.get("type", "bool"), default=raw.get("default"), choices=tuple(raw.get("choices", ())),
                    why=raw.get("why", ""))  # fmt: skip
        flags[flag.name] = flag
    reasons = {key: (text["zh"], text["en"]) for key, text in data["why"].items()}
    return FlagTable(flags, reasons)


def flag_report() -> tuple[int, int, int, int]:
    """(total, mapped, accepted_no_effect, refused) over A1111 1.10's flags, for the compatibility benchmark."""
    flags = table().flags.values()
    mapped = sum(f.effect == "mapped" for f in flags)
    none = sum(f.effect == "none" for f in flags)
    return len(flags), mapped, none, len(flags) - mapped - none


@dataclass
class Given:
    """One A1111 flag as given: its value converted (True for a switch, a list for many/append)."""

    flag: Flag
    value: Any


@dataclass
class Parsed:
    given: dict[str, Given] = field(default_factory=dict)  # by flag name, in the order first given
    rest: list[str] = field(default_factory=list)  # the runtime's own flags, names written out in full

    def has(self, name: str) -> bool:
        return name in self.given


def _bad(zh: str, en: str) -> A1111FlagInvalid:
    return A1111FlagInvalid(en, detail_zh=zh)


def _resolve(name: str, own: Mapping[str, str], strict: bool) -> str | None:
    """The full name ``name`` stands for (itself, or the one flag it is a prefix of, as argparse allows)."""
    known = table().flags
    if name in own or name in known:
        return name
    if name.startswith("--") and len(name) > 2:
        matches = sorted({n for n in (*known, *own) if n.startswith(name)})
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1 and strict:
            raise _bad(
                f"{name} 不明确，可能是 {'、'.join(matches)}", f"{name} is ambiguous: it could be {', '.join(matches)}"
            )
    if not strict:
        return None
    near = get_close_matches(name, [*known, *own], n=1, cutoff=0.6)
    hint_zh = f"；最接近的是 {near[0]}" if near else ""
    hint_en = f"; the nearest is {near[0]}" if near else ""
    raise _bad(f"{name} 不是 A1111 或一键的参数{hint_zh}", f"{name} is not a flag of A1111 or Yijian{hint_en}")


def _convert(flag: Flag, value: str) -> Any:
    if flag.type == "int":
        try:
            return int(value)
        except ValueError:
            raise _bad(
                f"{flag.name} 需要一个整数，而不是 {value!r}", f"{flag.name} takes a whole number, not {value!r}"
            ) from None
    if flag.type == "json":
        try:
            return json.loads(value)
        except ValueError:
            raise _bad(f"{flag.name} 需要 JSON", f"{flag.name} takes JSON") from None
    if flag.type == "choice" and value not in flag.choices:
        raise _bad(f"{flag.name} 只能是 {'、'.join(flag.choices)}，而不是 {value!r}",
                   f"{flag.name} takes one of {', '.join(flag.choices)}, not {value!r}")  # fmt: skip
    if flag.dest == "use_cpu":
        return value.lower()  # A1111 lower-cases the module names
    return value


def _is_flag(token: str) -> bool:
    return token.startswith("-") and len(token) > 1 and not re.fullmatch(r"-\d+(\.\d*)?", token)


def parse_flags(argv: Sequence[str], own: Mapping[str, str] | None = None) -> Parsed:
    """Split ``argv`` into the A1111 flags it gives and the caller's own flags (``rest``, names in full).

    ``own`` names the caller's own flags with what they take (``none`` or ``one``); on a name both know, the
    caller's flag wins.  An unknown or ambiguous flag, a stray word, a missing or ill-typed value is an
    :class:`A1111FlagInvalid` naming it (and the nearest known flag).
    """
    own = own or {}
    out = Parsed()
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if not _is_flag(token):
            raise _bad(f"多余的参数 {token!r}（不是参数名，前面也没有要带值的参数）",
                       f"stray argument {token!r} (not a flag, and no flag before it takes a value)")  # fmt: skip
        written, eq, inline = token.partition("=")
        name = _resolve(written, own, strict=True)
        assert name is not None  # strict: an unknown name raised
        if name in own:  # the caller's flag, its name written out, its value kept with it
            out.rest.append(name + eq + inline)
            if own[name] == "one" and not eq and i < len(argv):
                out.rest.append(argv[i])
                i += 1
            continue
        flag = table().flags[name]
        if not flag.takes_value:
            if eq:
                raise _bad(f"{flag.name} 不带值", f"{flag.name} takes no value")
            out.given.setdefault(name, Given(flag, True))
            continue
        values: list[str] = [inline] if eq else []
        if not eq:
            while i < len(argv) and not _is_flag(argv[i]):
                values.append(argv[i])
                i += 1
                if flag.takes != "many":
                    break
        if not values:
            raise _bad(f"{flag.name} 后面缺少值", f"{flag.name} needs a value")
        converted = [_convert(flag, v) for v in values]
        if flag.takes == "append":
            previous = out.given[name].value if name in out.given else []
            out.given[name] = Given(flag, [*previous, *converted])
        elif flag.takes == "many":
            out.given[name] = Given(flag, converted)
        else:
            out.given.pop(name, None)  # the last one given wins, as in argparse
            out.given[name] = Given(flag, converted[0])
    return out


# A1111 flags without effect here whose values are secrets (an ngrok authtoken, its basic_auth): never passed on.
SECRET_FLAGS = ("--ngrok", "--ngrok-options")


def take_flags(argv: Sequence[str], names: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """``argv`` without the value-taking flags ``names`` (``--flag v`` or ``--flag=v``), and what they gave."""
    rest: list[str] = []
    taken: list[tuple[str, str]] = []
    i = 0
    while i < len(argv):
        flag, eq, inline = argv[i].partition("=")
        if flag not in names:
            rest.append(argv[i])
            i += 1
        elif eq:
            taken.append((flag, inline))
            i += 1
        elif i + 1 < len(argv):
            taken.append((flag, argv[i + 1]))
            i += 2
        else:
            raise _bad(f"{flag} 后面缺少值", f"{flag} needs a value")
    return rest, taken


# The runtime's own flags (python -m runtime --help) and what each takes; a test keeps this equal to its parser.
YIJIAN_FLAGS: dict[str, str] = {
    "-h": "none", "--help": "none", "--port": "one", "--listen": "none", "--auth": "one", "--insecure-no-auth": "none",
    "--model": "one", "--demo": "none", "--vram": "one", "--attention": "one", "--precision": "one",
    "--allow-ckpt": "none", "--compile": "none", "--no-api": "none", "--no-browser": "none", "--lang": "one",
    "--root": "one", "--extra-models-dir": "one", "--ckpt": "one",
}  # fmt: skip


def expand_names(argv: Sequence[str]) -> list[str]:
    """``argv`` with every abbreviated flag written out (``--gradio-auth-p`` → ``--gradio-auth-path``).

    Done before the login flags are taken out, so that no abbreviation carries a password past that onto a
    command line.  Unknown and ambiguous tokens are left as they are (the runtime names them).
    """
    out: list[str] = []
    for token in argv:
        if token.startswith("--"):
            written, eq, inline = token.partition("=")
            full = _resolve(written, YIJIAN_FLAGS, strict=False)
            out.append((full or written) + eq + inline)
        else:
            out.append(token)
    return out


# --- where A1111 users keep their flags --------------------------------------------------------------------------


def split_windows(text: str) -> list[str]:
    """Split a Windows command line the way a program's argv sees it: double quotes group, backslashes stay.

    ``--ckpt-dir "D:\\AI models"`` and ``--ckpt-dir D:\\models`` both keep their backslashes (POSIX shell
    splitting would eat them).  ``""`` inside quotes is one quote.
    """
    args: list[str] = []
    current: list[str] = []
    quoted = have = False
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            if quoted and text[i + 1 : i + 2] == '"':
                current.append('"')
                i += 2
                continue
            quoted, have = not quoted, True
        elif c in " \t" and not quoted:
            if current or have:
                args.append("".join(current))
            current, have = [], False
        else:
            current.append(c)
        i += 1
    if current or have:
        args.append("".join(current))
    return args


def split_commandline(text: str, *, windows: bool | None = None) -> list[str]:
    """The words of a ``COMMANDLINE_ARGS`` value: Windows rules on Windows, POSIX shell rules elsewhere."""
    if windows if windows is not None else os.name == "nt":
        return split_windows(text)
    try:
        return shlex.split(text)
    except ValueError as exc:  # an unbalanced quote
        raise _bad(
            f"COMMANDLINE_ARGS 的引号不成对（{exc}）", f"COMMANDLINE_ARGS has an unbalanced quote ({exc})"
        ) from None


def commandline_args(environ: Mapping[str, str], *, windows: bool | None = None) -> list[str]:
    """The A1111 flags in the ``COMMANDLINE_ARGS`` environment variable."""
    return split_commandline(environ.get("COMMANDLINE_ARGS", ""), windows=windows)


# Variables of A1111's own start scripts that choose how A1111 installs itself: they mean nothing here.
INSTALLER_VARIABLES = frozenset({
    "PYTHON", "GIT", "VENV_DIR", "TORCH_COMMAND", "REQS_FILE", "XFORMERS_PACKAGE", "CLIP_PACKAGE",
    "OPENCLIP_PACKAGE", "TORCH_INDEX_URL", "STABLE_DIFFUSION_REPO", "STABLE_DIFFUSION_XL_REPO",
    "K_DIFFUSION_REPO", "BLIP_REPO", "ASSETS_REPO", "ACCELERATE", "NO_TCMALLOC", "LAUNCH_SCRIPT", "python_cmd",
    "venv_dir", "install_dir", "clone_dir", "GIT_PULL", "SKIP_VENV", "use_venv", "ERROR_REPORTING",
})  # fmt: skip
# Variables that reach the runtime as they are: they tune torch/CUDA the same way there.
RUNTIME_VARIABLES = frozenset({"PYTORCH_CUDA_ALLOC_CONF", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"})


@dataclass
class WebuiUser:
    """What a webui-user.bat/.sh says: its A1111 flags, the variables passed on, and those without effect."""

    path: Path
    args: list[str]
    environ: dict[str, str]
    ignored: list[str]

    def warning(self, lang: str) -> str | None:
        if not self.ignored:
            return None
        names = " ".join(self.ignored)
        if lang == "zh":
            return f"{self.path.name} 里的 {names} 在这里不起作用：生成环境由一键自己构建。"
        return f"{names} in {self.path.name} have no effect here: Yijian builds its own environment."


_BAT_SET = re.compile(r'^\s*set\s+(?:"(?P<q>[^=]+)=(?P<qv>.*)"|(?P<n>[^=\s]+)=(?P<v>.*))\s*$', re.I)
_SH_SET = re.compile(r"^\s*(?:export\s+)?(?P<n>[A-Za-z_][A-Za-z0-9_]*)=(?P<v>.*)$")


def _expand(value: str, current: Mapping[str, str], windows: bool) -> str:
    """``%NAME%`` (bat) or ``$NAME``/``${NAME}`` (sh) of a variable set earlier in the same file."""
    if windows:
        return re.sub(r"%(\w+)%", lambda m: current.get(m.group(1).upper(), ""), value)
    return re.sub(r"\$\{?(\w+)\}?", lambda m: current.get(m.group(1), ""), value)


def read_webui_user(path: str | Path) -> WebuiUser:
    """Read an A1111 ``webui-user.bat`` or ``webui-user.sh`` (the last assignment of each variable wins)."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise _bad(
            f"读不了 {file}（{exc.__class__.__name__}）", f"cannot read {file} ({exc.__class__.__name__})"
        ) from None
    windows = file.suffix.lower() in (".bat", ".cmd")
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if windows:
            if stripped.lower().startswith(("rem ", "::", "@rem ")):
                continue
            m = _BAT_SET.match(stripped)
            if m is None:
                continue
            name = (m.group("q") or m.group("n")).strip()
            raw = m.group("qv") if m.group("q") else m.group("v")
            values[name.upper()] = _expand(raw.strip(), values, windows)
        else:
            if stripped.startswith("#"):
                continue
            m = _SH_SET.match(stripped)
            if m is None:
                continue
            raw = _expand(m.group("v").strip(), values, windows)
            try:
                words = shlex.split(raw, comments=True)
            except ValueError as exc:
                raise _bad(f"{file.name} 的 {m.group('n')} 引号不成对（{exc}）", f"{m.group('n')} in {file.name} has an unbalanced quote ({exc})") from None  # fmt: skip
            values[m.group("n")] = " ".join(words)  # the variable's value, which A1111 then splits itself
    args = split_commandline(values.pop("COMMANDLINE_ARGS", ""), windows=windows)
    environ = {k: v for k, v in values.items() if k in RUNTIME_VARIABLES and v}
    ignored = sorted(k for k, v in values.items() if v and k not in RUNTIME_VARIABLES)
    return WebuiUser(file, args, environ, ignored)
