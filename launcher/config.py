"""config.toml: the user's choices, layered over the shipped defaults.

Every setting is declared once in :data:`SETTINGS` (type, default, allowed
values, zh/en help).  That table drives loading, validation, ``config show``
and ``config set``, and later the TUI's option pages.  The file is read with
``tomllib`` and written with ``tomlkit``, so the user's comments survive.
Validation reports every problem at once, each with its line, and nothing
invalid is ever written.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from bootstrap.atomic import write_atomic
from bootstrap.layout import Bundle
from bootstrap.redact import MASK, redact, remember, url_password
from launcher.errors import ConfigInvalid, ConfigProblem, ConfigUnreadable, UsageError
from launcher.mirrors.catalog import Catalog, load_catalog
from launcher.mirrors.sources import is_path, local_folder

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Message = tuple[str, str]  # (zh, en)
Check = Callable[[Any, Catalog], Message | None]


@dataclass(frozen=True)
class Setting:
    key: str  # "section.name"
    kind: type
    default: Any
    zh: str
    en: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    check: Check | None = None
    secret: bool = False  # never echoed, logged or shown: `config show` masks it, the logs mask its value

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]

    def help(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


_URL = re.compile(r"^(flat\+)?https?://[^\s/$.?#][^\s]*$", re.I)
_PROXY = re.compile(r"^(https?|socks5h?|socks4)://([^\s:@/]+(:[^\s@/]*)?@)?[^\s:@/]+(:\d{1,5})?/?$", re.I)


def _mirror_check(channel: str, allow_path: bool, allow_off: bool = False) -> Check:
    def check(value: Any, catalog: Catalog) -> Message | None:
        ch = catalog.channel(channel)
        if value == "auto" or (allow_off and value == "off") or value in ch.ids:
            return None
        if _URL.match(value):
            return None
        if allow_path and is_path(value):
            if local_folder(value).is_dir():
                return None
            return (f"文件夹不存在：{value}", f"no such folder: {value}")
        allowed = ("auto", "off", *ch.ids) if allow_off else ("auto", *ch.ids)
        guess = ch.suggest(value, ("auto", "off") if allow_off else ("auto",))
        near = [guess] if guess else []
        forms = "、".join(allowed)
        return (
            f"未知的镜像「{value}」。可用：{forms}，或一个 https:// 地址。"
            + (f"你是不是想写「{near[0]}」？" if near else ""),
            f"unknown mirror {value!r}. Use one of {', '.join(allowed)}, or an https:// URL."
            + (f" Did you mean {near[0]!r}?" if near else ""),
        )

    return check


def _proxy_check(value: Any, catalog: Catalog) -> Message | None:
    if value == "" or _PROXY.match(value):
        return None
    value = redact(value)  # the message is printed and logged: never with the proxy's password
    return (
        f"代理地址「{value}」格式不对，应为 http://主机:端口 或 socks5://主机:端口。",
        f"proxy {value!r} is not valid; use http://host:port or socks5://host:port.",
    )


def _auth_check(value: Any, catalog: Catalog) -> Message | None:
    if value == "" or re.fullmatch(r"[^:\s]+:\S+", value):
        return None
    return ("应写成 用户名:密码。", "use the form user:password.")


def _a1111_args_check(value: Any, catalog: Catalog) -> Message | None:
    from bootstrap.a1111_flags import YIJIAN_FLAGS, expand_names, parse_flags, split_commandline
    from bootstrap.errors import YijianError
    from bootstrap.login import take_login_flags

    try:
        args = expand_names(split_commandline(value))
        if take_login_flags(args)[1]:  # never echoed: the login goes in launch.auth, which is kept secret
            return (
                "登录不要写在这里，请用 launch.auth（用户名:密码）。",
                "put the login in launch.auth (user:password), not here.",
            )
        parse_flags(args, YIJIAN_FLAGS)
    except YijianError as exc:
        return (exc.message("zh"), exc.message("en"))
    return None


def _pack_check(value: Any, catalog: Catalog) -> Message | None:
    if re.fullmatch(r"[a-z0-9][a-z0-9._-]*", value):
        return None
    return ("应为 auto 或环境包的 id（如 cu128）。", "use auto or a pack id (such as cu128).")


SETTINGS: tuple[Setting, ...] = (
    Setting("general.language", str, "auto", "界面语言：auto 跟随系统，zh 中文，en 英文", "Interface language: auto follows the system", ("auto", "zh", "en")),
    Setting("mirrors.pypi", str, "auto", "Python 包镜像：auto 自动测速选择，或镜像 id、网址、本地文件夹", "PyPI mirror: auto picks the fastest; or a mirror id, a URL, a local folder", check=_mirror_check("pypi", True)),
    Setting("mirrors.torch", str, "auto", "PyTorch 轮子镜像：auto、镜像 id、网址或本地文件夹", "PyTorch wheel mirror: auto, a mirror id, a URL or a local folder", check=_mirror_check("torch", True)),
    Setting("mirrors.huggingface", str, "auto", "模型下载源：auto、hf-mirror、huggingface 或网址", "Model endpoint: auto, hf-mirror, huggingface or a URL", check=_mirror_check("huggingface", False)),
    Setting("mirrors.python", str, "auto", "Python 安装包镜像", "Mirror for Python builds", check=_mirror_check("python", False)),
    Setting("mirrors.github", str, "off", "GitHub 加速前缀：off 不使用", "GitHub proxy prefix: off for none", check=_mirror_check("github", False, allow_off=True)),
    Setting("mirrors.civitai", str, "auto", "Civitai 站点：auto、镜像 id 或网址（Civitai 链接都经它解析和下载）", "Civitai endpoint: auto, a mirror id or a URL (every Civitai link is resolved through it)", check=_mirror_check("civitai", False)),
    Setting("mirrors.modelscope", str, "auto", "魔搭 ModelScope 站点：auto、镜像 id 或网址", "ModelScope endpoint: auto, a mirror id or a URL", check=_mirror_check("modelscope", False)),
    Setting("network.proxy", str, "", "只对一键及其子进程生效的代理，如 http://127.0.0.1:7890", "A proxy for Yijian and its child processes only, e.g. http://127.0.0.1:7890", check=_proxy_check),
    Setting("network.offline", bool, False, "离线模式：不访问网络", "Offline mode: no network access"),
    Setting("network.probe_timeout", float, 3.0, "镜像测速的超时（秒）", "Timeout of one mirror probe (seconds)", minimum=0.5, maximum=30),
    Setting("downloads.connections", int, 8, "每个下载的连接数", "Connections per download", minimum=1, maximum=32),
    Setting("downloads.civitai_token", str, "", "Civitai API 令牌（下载需要登录的模型）", "Civitai API token (for models that need a login)", secret=True),
    Setting("downloads.hf_token", str, "", "Hugging Face 令牌（受限仓库需要；只发给 Hugging Face 通道的站点）", "Hugging Face token (gated repositories; sent only to the Hugging Face channel's endpoints)", secret=True),
    Setting("downloads.modelscope_token", str, "", "魔搭 ModelScope 令牌（只发给 ModelScope 通道的站点）", "ModelScope token (sent only to the ModelScope channel's endpoint)", secret=True),
    Setting("launch.port", int, 7860, "生成界面的端口", "Port of the generation UI", minimum=1024, maximum=65535),
    Setting("launch.listen", bool, False, "允许局域网访问（需要同时设置 auth）", "Listen on the network (requires auth)"),
    Setting("launch.auth", str, "", "界面与 API 的登录，格式 用户名:密码", "Login for the UI and API, as user:password", check=_auth_check, secret=True),
    Setting("launch.vram", str, "auto", "显存优化：auto 按显存自动选择", "VRAM preset: auto chooses from the VRAM", ("auto", "none", "medvram", "lowvram")),
    Setting("launch.attention", str, "auto", "注意力实现", "Attention implementation", ("auto", "sdpa", "xformers")),
    Setting("launch.precision", str, "auto", "计算精度", "Precision", ("auto", "fp16", "bf16", "fp32")),
    Setting("launch.api", bool, True, "启用 A1111 兼容 API（/sdapi/v1）", "Enable the A1111-compatible API (/sdapi/v1)"),
    Setting("launch.open_browser", bool, True, "启动后自动打开浏览器", "Open the browser when ready"),
    Setting("launch.args", str, "", "A1111 的启动参数（同 COMMANDLINE_ARGS），如 --xformers --medvram", "A1111 flags, as in COMMANDLINE_ARGS, e.g. --xformers --medvram", check=_a1111_args_check),
    Setting("models.extra_dirs", list, [], "额外的模型文件夹（如秋叶整合包的 models），只读共享，不复制", "Extra model folders (e.g. an A1111 models folder), shared without copying"),
    Setting("setup.pack", str, "auto", "环境包：auto 按显卡和驱动选择", "Environment pack: auto chooses from the GPU and driver", check=_pack_check),
    Setting("setup.installer", str, "uv", "安装器：uv（快）或 pip", "Installer: uv (fast) or pip", ("uv", "pip")),
    Setting("setup.python", str, "bundled", "环境的 Python：bundled 装进整合包（可整体拷走），system 优先用系统里版本相同的 Python", "Python for the environment: bundled installs it into the bundle (portable), system prefers a matching system Python", ("bundled", "system")),
)  # fmt: skip

BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(s.section for s in SETTINGS))

# One rule for the CLI (`config set`, `config validate`) and the TUI's 高级选项 page.
LISTEN_RULE: Message = (
    "开启局域网访问前，请先设置登录（auth，格式 用户名:密码）。",
    "Set a login (auth, as user:password) before listening on the network.",
)


def listen_problem(values: Mapping[str, Any]) -> Message | None:
    """LISTEN_RULE when ``launch.listen`` is on without a ``launch.auth`` login, else None."""
    if values.get("launch.listen") is True and not values.get("launch.auth"):
        return LISTEN_RULE
    return None


def shown(setting: Setting, value: Any) -> Any:
    """A value as it may be shown or logged: a secret masked, credentials inside a URL (a proxy) masked."""
    if setting.secret:
        return MASK if value else value
    if isinstance(value, str) and "://" in value:
        return redact(value)
    return value


def remember_secrets(values: Mapping[str, Any]) -> None:
    """Have every log writer mask the secrets of these settings (and passwords in proxy URLs)."""
    for key, value in values.items():
        setting = BY_KEY.get(key)
        if not isinstance(value, str) or setting is None:
            continue
        if setting.secret:
            remember(value)
        elif "://" in value:
            remember(url_password(value))


@dataclass(frozen=True)
class Config:
    """Effective settings: defaults overlaid with config.toml."""

    values: Mapping[str, Any]
    user_keys: frozenset[str]
    path: Path

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get_str(self, key: str) -> str:
        value = self.values[key]
        assert isinstance(value, str)
        return value

    def get_int(self, key: str) -> int:
        value = self.values[key]
        assert isinstance(value, int)
        return value

    def get_bool(self, key: str) -> bool:
        value = self.values[key]
        assert isinstance(value, bool)
        return value

    def section(self, name: str) -> dict[str, Any]:
        return {k.split(".", 1)[1]: v for k, v in self.values.items() if k.startswith(name + ".")}


def defaults(path: Path) -> Config:
    return Config({s.key: s.default for s in SETTINGS}, frozenset(), path)


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEYLINE = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def locate_keys(text: str) -> dict[str, int]:
    """Map ``section`` and ``section.key`` to their 1-based line numbers."""
    where: dict[str, int] = {}
    table = ""
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("[["):
            table = "\0"  # arrays of tables are not ours; ignore their keys
            continue
        m = _HEADER.match(line)
        if m:
            table = ".".join(part.strip().strip("\"'") for part in m.group(1).split("."))
            where.setdefault(table, n)
            continue
        m = _KEYLINE.match(line)
        if m and table != "\0":
            key = ".".join(part.strip().strip("\"'") for part in m.group(1).split("."))
            where.setdefault(f"{table}.{key}" if table else key, n)
    return where


def _kind_name(kind: type) -> tuple[str, str]:
    return {
        bool: ("布尔值 true 或 false", "a boolean, true or false"),
        int: ("整数", "an integer"),
        float: ("数字", "a number"),
        str: ("字符串（用引号括起来）", "a string (in quotes)"),
        list: ('字符串列表，如 ["a", "b"]', 'a list of strings, like ["a", "b"]'),
    }[kind]


def check_value(setting: Setting, value: Any, catalog: Catalog) -> Message | None:
    """Why ``value`` is not valid for ``setting``, or None."""
    kind = setting.kind
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if kind is list and ok:
        ok = all(isinstance(v, str) for v in value)
    if not ok:
        zh, en = _kind_name(kind)
        given = MASK if setting.secret else repr(value)  # a secret is never echoed, even a wrong one
        return (f"应为{zh}，而不是 {given}。", f"expected {en}, not {given}.")
    if setting.choices and value not in setting.choices:
        near = get_close_matches(str(value), setting.choices, n=1)
        return (
            f"「{value}」不是可选值，可选：{'、'.join(setting.choices)}。"
            + (f"你是不是想写「{near[0]}」？" if near else ""),
            f"{value!r} is not allowed; choose one of {', '.join(setting.choices)}."
            + (f" Did you mean {near[0]!r}?" if near else ""),
        )
    if (
        setting.minimum is not None
        and value < setting.minimum
        or setting.maximum is not None
        and value > setting.maximum
    ):
        return (
            f"应在 {setting.minimum} 到 {setting.maximum} 之间，而不是 {value}。",
            f"must be between {setting.minimum} and {setting.maximum}, not {value}.",
        )
    if setting.check is not None:
        return setting.check(value, catalog)
    return None


def validate(
    data: Mapping[str, Any], text: str, file: str, catalog: Catalog, *, rules: bool = True
) -> list[ConfigProblem]:
    """Every problem in a parsed config.toml, in file order.

    ``rules`` adds the rules between settings (listening needs a login): `config validate`, `config set` and
    the TUI's save apply them; loading does not, so a hand-edited file still serves every other command and
    `launch` refuses to listen with its own error.
    """
    lines = locate_keys(text)
    problems: list[ConfigProblem] = []

    def add(key: str, msg: Message) -> None:
        problems.append(ConfigProblem(file, lines.get(key), key, msg[0], msg[1]))

    for section, body in data.items():
        if section not in SECTIONS:
            near = get_close_matches(section, SECTIONS, n=1)
            hint = (f"你是不是想写 [{near[0]}]？" if near else "", f" Did you mean [{near[0]}]?" if near else "")
            add(section, (f"未知的配置节 [{section}]。" + hint[0], f"unknown section [{section}]." + hint[1]))
            continue
        if not isinstance(body, dict):
            add(section, (f"{section} 应是一个配置节 [{section}]。", f"{section} must be a table, [{section}]."))
            continue
        names = [s.name for s in SETTINGS if s.section == section]
        for name, value in body.items():
            key = f"{section}.{name}"
            setting = BY_KEY.get(key)
            if setting is None:
                near = get_close_matches(name, names, n=1)
                hint = (f"你是不是想写 {near[0]}？" if near else "", f" Did you mean {near[0]!r}?" if near else "")
                add(
                    key,
                    (
                        f"[{section}] 中没有 {name} 这一项。" + hint[0],
                        f"unknown key {name!r} in [{section}]." + hint[1],
                    ),
                )
                continue
            msg = check_value(setting, value, catalog)
            if msg:
                add(key, msg)
    launch = data.get("launch")
    if rules and isinstance(launch, dict):
        rule = listen_problem({f"launch.{k}": v for k, v in launch.items()})
        if rule and not any(p.key == "launch.auth" for p in problems):
            add("launch.listen", rule)
    problems.sort(key=lambda p: p.line or 0)
    return problems


def _parse_error_line(exc: Exception) -> int | None:
    line = getattr(exc, "lineno", None)
    if isinstance(line, int):
        return line
    m = re.search(r"line (\d+)", str(exc))
    return int(m.group(1)) if m else None


def read(bundle: Bundle) -> tuple[str, dict[str, Any]]:
    """The text and parsed content of config.toml (empty when absent)."""
    path = bundle.config_file
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return "", {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigUnreadable(str(exc), file=str(path), line="?") from exc
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigUnreadable(str(exc), file=str(path), line=_parse_error_line(exc) or "?") from exc


def check(bundle: Bundle) -> list[ConfigProblem]:
    text, data = read(bundle)
    return validate(data, text, str(bundle.config_file), load_catalog(bundle.mirrors_file))


def load(bundle: Bundle) -> Config:
    """The effective config; raises if config.toml is unreadable or invalid."""
    text, data = read(bundle)
    problems = validate(data, text, str(bundle.config_file), load_catalog(bundle.mirrors_file), rules=False)
    if problems:
        raise ConfigInvalid(problems, str(bundle.config_file))
    values = {s.key: s.default for s in SETTINGS}
    user = set()
    for section, body in data.items():
        for name, value in body.items():
            key = f"{section}.{name}"
            values[key] = float(value) if BY_KEY[key].kind is float else value
            user.add(key)
    remember_secrets(values)
    return Config(values, frozenset(user), bundle.config_file)


_TRUE = {"true", "yes", "on", "1", "是", "开"}
_FALSE = {"false", "no", "off", "0", "否", "关"}


def parse_value(setting: Setting, raw: str) -> Any:
    """A command-line string as a value of the setting's type."""
    text = raw.strip()
    try:
        if setting.kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(raw)
        if setting.kind is int:
            return int(text)
        if setting.kind is float:
            return float(text)
        if setting.kind is list:
            if text.startswith("["):
                value = tomllib.loads(f"v = {text}")["v"]
                return value
            return [part.strip() for part in text.split(",") if part.strip()]
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        zh, en = _kind_name(setting.kind)
        raise UsageError(f"{setting.key}: expected {en}, not {raw!r} (应为{zh})") from exc
    return raw


def find_setting(key: str) -> Setting:
    setting = BY_KEY.get(key)
    if setting is None:
        near = get_close_matches(key, list(BY_KEY), n=1)
        suffix = f" Did you mean {near[0]!r}? (你是不是想写 {near[0]}？)" if near else ""
        raise UsageError(f"unknown setting {key!r}.{suffix} `yijian config show` lists them all.")
    return setting


_NEW_FILE_HEADER = (
    "# Yijian settings (一键 设置). Only what you change is stored here; everything\n"
    "# else uses the defaults. `./start.sh config show` lists every setting.\n"
)


def apply(bundle: Bundle, changes: Iterable[tuple[str, Any | None]]) -> Config:
    """Set (or, with None, remove) settings; validate everything; then write.

    Nothing is written when the result would not validate, or when the
    existing file cannot be parsed (it is never overwritten blindly).
    """
    import tomlkit  # deferred: only writers need it

    text, _ = read(bundle)  # refuses a broken file before we touch it
    doc = tomlkit.parse(text) if text else tomlkit.document()
    if not text:
        doc.add(tomlkit.comment(_NEW_FILE_HEADER.splitlines()[0][2:]))
        doc.add(tomlkit.comment(_NEW_FILE_HEADER.splitlines()[1][2:]))
    for key, value in changes:
        setting = find_setting(key)
        if value is None:
            table = doc.get(setting.section)
            if table is not None and setting.name in table:
                del table[setting.name]
            continue
        if setting.section not in doc:
            doc.add(tomlkit.nl())
            doc.add(setting.section, tomlkit.table())
        doc[setting.section][setting.name] = value  # type: ignore[index]
    new_text = tomlkit.dumps(doc)
    new_data = tomllib.loads(new_text)
    problems = validate(new_data, new_text, str(bundle.config_file), load_catalog(bundle.mirrors_file))
    if problems:
        raise ConfigInvalid(problems, str(bundle.config_file))
    write_atomic(bundle.config_file, new_text, mode=0o600)  # it may hold a token or the UI login
    return load(bundle)
