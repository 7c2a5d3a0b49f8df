"""One redaction layer: what every log writer, the console copy of the runtime and ``sysinfo`` pass text through.

Two nets, both needed:

* **shapes** — secrets recognisable from their form or their label: the UI
  login after ``--auth``/``--gradio-auth``/``--api-auth``, ``key = value``
  pairs whose key names a token, password, secret or auth (TOML, JSON,
  ``KEY=value`` environment lines, ``?token=`` queries), ``config set KEY
  VALUE`` of such a key, ``Authorization:`` headers and bare ``Bearer``/
  ``Basic`` credentials, ``scheme://user:pass@host`` URLs (proxies), and
  Hugging Face ``hf_…`` tokens;
* **known values** — the exact secrets this process has seen (the login,
  tokens from config.toml and the environment, proxy passwords), registered
  with :func:`remember`, so that a token with no recognisable shape (a
  Civitai key is 32 hex digits, like a hash) is still caught wherever it
  turns up, also URL-encoded or inside a Basic header.

The home folder becomes ``~`` and other users' home folders lose their
name.  Standard library only: stage 0, the launcher and the runtime all use
it.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote, unquote, urlsplit

from bootstrap.a1111_flags import SECRET_FLAGS, commandline_args, expand_names
from bootstrap.errors import YijianError
from bootstrap.login import LOGIN_FLAGS

MASK = "***"
MIN_KNOWN = 4  # shorter known values would mask ordinary words; their labelled forms are still masked by shape

# Environment variables whose whole value is a secret.
SECRET_ENV = (
    "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN", "CIVITAI_TOKEN", "CIVITAI_API_TOKEN",
    "MODELSCOPE_API_TOKEN", "MODELSCOPE_TOKEN", "YIJIAN_AUTH",
)  # fmt: skip
# Environment variables holding a URL whose password is a secret.
PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "PIP_PROXY")

_NAME = r"(?:token|passw(?:or)?d|pwd|secret|api[_-]?key|auth|credentials?)"
_HARMLESS = {
    "true",
    "false",
    "none",
    "null",
    "yes",
    "no",
    "on",
    "off",
    "0",
    "1",
    "",
    MASK,
    "bearer",
    "basic",
    "token",
    "digest",
}

_LOGIN_FLAG = re.compile(r"(?<![\w-])(--(?:gradio-|api-)?auth)(=|\s+)(\"[^\"]*\"|'[^']*'|\S+)")
_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)(?:(bearer|basic|token|digest)\s+)?([^\s\"',]+)"
)
# a bare credential: base64 or a token has a digit or one of + / = (plain words after "basic" stay)
_SCHEME_CRED = re.compile(r"(?i)\b(bearer|basic)\s+(?=[A-Za-z._~-]*[0-9+/=])([A-Za-z0-9._~+/-]{8,}=*)")
_URL_CRED = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@\"']+:[^/\s@\"']*@")
_HF = re.compile(r"\bhf_[A-Za-z0-9]{16,}")
# key = value, key: value, "key": "value", KEY=value, ?key=value (the key names a secret)
_PAIR = re.compile(rf"(?i)((?<![\w-])[\w.-]*{_NAME}(?:[_.-][\w.-]*)?[\"']?\s*[=:]\s*[\"']?)([^\s\"',;&<>)\]}}]+)")
# `config set downloads.civitai_token VALUE`: a dotted setting name that names a secret, then its value
_SETTING_ARG = re.compile(rf"(?i)(?<![\w.-])([a-z]+\.\w*{_NAME}(?:_\w*)?)(\s+)([^\s\"']+)")
_HOMES = re.compile(r"(?i)(/home/|/Users/|\b[A-Z]:[\\/]+Users[\\/]+)(?!<user>)[^/\\\s\"':]+")

_known: set[str] = set()
_lock = threading.Lock()


def _pair_sub(m: re.Match[str]) -> str:
    value = m.group(m.lastindex or 0)
    if value.lower() in _HARMLESS or value.startswith(("*", "$", "%", "{")):
        return m.group(0)
    return m.group(0)[: m.start(m.lastindex or 0) - m.start(0)] + MASK


def _header_sub(m: re.Match[str]) -> str:
    return m.group(1) + (f"{m.group(2)} " if m.group(2) else "") + MASK


def _forms(value: str) -> set[str]:
    """The ways a secret can be written: as is, URL-encoded, and a login also as its password and Basic header."""
    forms = {value, quote(value, safe=""), quote(value)}
    user, sep, password = value.partition(":")
    if sep and user and password and "://" not in value:  # a login, not a URL
        forms |= {password, quote(password, safe="")}
        forms.add(base64.b64encode(value.encode()).decode())
    return {f for f in forms if len(f) >= MIN_KNOWN}


def remember(*values: str | None) -> None:
    """Mask these exact values from now on (a login ``user:pass`` also masks its password and Basic form)."""
    with _lock:
        for value in values:
            if value and value.strip():
                _known.update(_forms(value.strip()))


def forget_all() -> None:
    """Drop the remembered values (tests)."""
    with _lock:
        _known.clear()


def url_password(url: str) -> str | None:
    """The password in ``scheme://user:pass@host`` (decoded), or None."""
    try:
        password = urlsplit(url.strip()).password
    except ValueError:
        return None
    return unquote(password) if password else None


def remember_environ(environ: Mapping[str, str]) -> None:
    """Remember the tokens, the login and the proxy passwords found in an environment."""
    remember(*(environ.get(k) for k in SECRET_ENV))
    remember(*(url_password(environ[k]) for k in PROXY_ENV if environ.get(k)))
    try:
        remember_argv(commandline_args(environ))  # A1111's flags: --gradio-auth u:p
    except YijianError:  # unbalanced quotes: the shapes still mask what they can
        pass


def remember_argv(argv: Sequence[str]) -> None:
    """Remember secrets given on a command line: login and ngrok flags, and the value after a secret setting's name."""
    argv = expand_names(argv)  # --gradio-auth-p FILE is --gradio-auth-path FILE to A1111's argparse too
    for i, arg in enumerate(argv):
        flag, eq, inline = arg.partition("=")
        if flag in LOGIN_FLAGS or flag in SECRET_FLAGS:
            value = inline if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            remember(value, *(value.split(",") if flag in LOGIN_FLAGS else ()))  # logins: u1:p1,u2:p2
        elif _SETTING_ARG.fullmatch(f"{arg} x") and i + 1 < len(argv):
            remember(argv[i + 1])
        remember(url_password(arg) if "://" in arg else None)


def _home() -> str:
    home = os.path.expanduser("~")
    return home if home not in ("~", "/", "") and len(home) > 3 else ""


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with every secret masked and the home folder written as ``~``."""
    if not text:
        return text
    text = _LOGIN_FLAG.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _HEADER.sub(_header_sub, text)
    text = _SCHEME_CRED.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _URL_CRED.sub(rf"\1{MASK}@", text)
    text = _HF.sub("hf_" + MASK, text)
    text = _PAIR.sub(_pair_sub, text)
    text = _SETTING_ARG.sub(_pair_sub, text)
    with _lock:
        known = set(_known)
    for value in extra:
        if value:
            known |= _forms(value)
    for value in sorted(known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    home = _home()
    for form in {home, home.replace("\\", "/")} if home else ():
        text = re.sub(re.escape(form) + r"(?![^/\\\s\"':])", "~", text)  # /home/ai, never /home/aiden
    return _HOMES.sub(r"\1<user>", text)


def redact_argv(argv: Sequence[object]) -> str:
    """A command line for a log, secrets masked."""
    return redact(" ".join(str(a) for a in argv))


class RedactingFormatter(logging.Formatter):
    """A logging formatter whose output (message, arguments and traceback) passes through :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def redact_handlers(logger: logging.Logger) -> None:
    """Make every handler of ``logger`` redact (keeping its format)."""
    for handler in logger.handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            base = handler.formatter or logging.Formatter()
            formatter = RedactingFormatter(base._fmt, base.datefmt)
            handler.setFormatter(formatter)
