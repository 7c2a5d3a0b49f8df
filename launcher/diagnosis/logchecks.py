"""Checks a signature can name (``check = "..."``): facts a log states about itself, weighed in code.

Each check takes the :class:`LogView` and returns the values for the
finding's templates, or None.  The facts they use (which torch releases were
built for which Python) are data in ``torch_python.toml``.
"""

from __future__ import annotations

import pickletools
import re
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from launcher.diagnosis.logread import LogView

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
Values = dict[str, str]
_VERSIONS = re.compile(r"requirement torch==(?P<pin>[\d.]+)\S* \(from versions: (?P<list>[^)]*)\)")
_WIN_USER_PATH = re.compile(r"[A-Za-z]:\\Users\\(?P<user>[^\\\"\n ]+)(?:\\|\s)")
_FAILURE = re.compile(r"error|fail|cannot|can't|unable|not found|invalid|找不到|失败|错误|ошибка|не удается", re.I)
_NOT_PICKLE = re.compile(r"Unsupported operand (?P<op>\d+)|invalid load key, '(?P<key>[^']{1,4})'")
_PICKLE_OPCODES = frozenset(ord(op.code) for op in pickletools.opcodes)
_DECODE_ERROR = re.compile(r"UnicodeDecodeError|UnicodeEncodeError")
_DECODE_AT = re.compile(r"codec can't decode byte 0x(?P<byte>[89a-f][0-9a-f]) in position (?P<pos>\d+)", re.I)
_STATED_RANGE = re.compile(r"Python (?P<lo>3\.\d+)(?:\.\d+)? or (?:higher|newer)[^\n(]*\((?:maximum|max\.?|up to) (?P<hi>3\.\d+)"
                           r"|requires Python (?P<lo2>3\.\d+)(?:\.\d+)?\s*(?:-|to|through)\s*(?P<hi2>3\.\d+)", re.I)  # fmt: skip
_VENV_FAILED = re.compile(r"Unable to create \w+ in directory|Error: \[Errno 2\].*venv|cannot create venv", re.I)


def _vt(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:2])


@lru_cache(maxsize=1)
def torch_python() -> dict[str, tuple[str, str]]:
    """torch minor version -> (oldest, newest) Python it has wheels for."""
    with open(HERE / "torch_python.toml", "rb") as fh:
        data = tomllib.load(fh)
    return {k: (v[0], v[1]) for k, v in data["torch"].items()}


def python_32bit(view: LogView) -> Values | None:
    if view.python and view.python[1] == "32":
        pins = {"torch": view.torch_pins[0]} if view.torch_pins else {}
        return {"have_py": f"{view.python[0]} (32-bit)", **pins}
    return None


def python_outside_torch(view: LogView) -> Values | None:
    """The log's Python is older or newer than any the requested torch has wheels for."""
    table = torch_python()
    for pin in view.torch_pins:
        span = table.get(".".join(pin.split(".")[:2]))
        if span is None:
            continue
        for py in sorted(view.pythons):
            if not _vt(span[0]) <= _vt(py) <= _vt(span[1]):
                return {"have_py": py, "torch": pin}
    return None


def python_outside_stated_range(view: LogView) -> Values | None:
    """An installer says which Pythons it supports, and a Python the log states is outside that range."""
    for m in _STATED_RANGE.finditer(view.text):
        lo, hi = (m.group("lo") or m.group("lo2")), (m.group("hi") or m.group("hi2"))
        for py in sorted(view.pythons):
            if not _vt(lo) <= _vt(py) <= _vt(hi):
                return {"have_py": py}
    return None


def versions_all_newer(view: LogView) -> Values | None:
    """pip lists only newer torch releases than the pin: this Python is too new for it."""
    for m in _VERSIONS.finditer(view.text):
        listed = [v.strip() for v in m.group("list").split(",") if re.match(r"\s*\d", v)]
        if listed and all(_vt(v) > _vt(m.group("pin")) for v in listed):
            return {"torch": m.group("pin"), "available": m.group("list")}
    return None


def non_ascii_venv(view: LogView) -> Values | None:
    """Creating the venv failed, and the paths it names have non-ASCII characters."""
    if not _VENV_FAILED.search(view.text):
        return None
    for m in _WIN_USER_PATH.finditer(view.text):
        if not m.group("user").isascii():
            return {"paths": m.group(0)}
    return None


def mojibake_path(view: LogView) -> Values | None:
    """A user folder shown in the wrong code page (or as U+FFFD): the name is not ASCII, and tools misread it."""
    meant = {r.meant for r in view.repairs}
    for m in _WIN_USER_PATH.finditer(view.text):
        if "\ufffd" in m.group("user") or any(word in m.group("user") for word in meant):
            return {"paths": m.group(0).rstrip()}
    return None


def non_ascii_path_failing(view: LogView) -> Values | None:
    """A line that reports a failure names a user folder that is not ASCII."""
    for line in view.lines:
        if not _FAILURE.search(line):
            continue
        for m in _WIN_USER_PATH.finditer(line + " "):
            if not m.group("user").isascii():
                return {"paths": m.group(0).rstrip()}
    return None


def not_a_pickle(view: LogView) -> Values | None:
    """The loader names the file's first bytes, and they are no pickle opcode: the file is text, a page or cut short.

    torch's weights-only unpickler says ``Unsupported operand 118`` for a byte it does not handle; when that
    byte is not a pickle opcode at all (118 is the "v" of a Git LFS pointer's "version https://git-lfs...",
    60 the "<" of a web page, 10 a line break) the file is not the model, whatever ``weights_only`` says.
    """
    for m in _NOT_PICKLE.finditer(view.text):
        if m.group("op"):
            op = int(m.group("op"))
            if op not in _PICKLE_OPCODES:
                return {"kind": f"byte {op} {chr(op)!r}" if 32 <= op < 127 else f"byte {op}"}
        elif m.group("key"):
            return {"kind": m.group("key")}
    return None


def _non_ascii_user(text: str) -> str | None:
    for m in _WIN_USER_PATH.finditer(text + " "):
        if not m.group("user").isascii():
            return m.group(0).rstrip()
    return None


def decode_error_user_path(view: LogView) -> Values | None:
    """A text codec failed, and the log names a user folder that is not ASCII (in a frame or a line)."""
    if not any(_DECODE_ERROR.fullmatch(e.short_type) for e in view.events):
        return None
    found = _non_ascii_user("\n".join(f.path for f in view.frames())) or _non_ascii_user(view.text)
    return {"paths": found} if found else None


def decode_error_at_user_folder(view: LogView) -> Values | None:
    """A UTF-8 decode failed on a non-ASCII byte at position 9: right after "C:\\Users\\", the user name."""
    for e in view.events:
        m = _DECODE_AT.search(e.message) if _DECODE_ERROR.fullmatch(e.short_type) else None
        if m and int(m.group("pos")) == len("C:\\Users\\"):
            return {"paths": "C:\\Users\\…"}
    return None


def ends_in_temp_write(view: LogView) -> Values | None:
    """A traceback cut short whose last frame writes to the temporary folder (where pip buffers a download)."""
    frames = view.trailing or (view.final.frames if view.final else [])
    if frames and re.search(r"(?:^|[\\/])tempfile\.py$", frames[-1].path) and frames[-1].func == "func_wrapper":
        return {}
    return None


CHECKS: dict[str, Callable[[LogView], Values | None]] = {
    "python_32bit": python_32bit,
    "python_outside_torch": python_outside_torch,
    "versions_all_newer": versions_all_newer,
    "python_outside_stated_range": python_outside_stated_range,
    "non_ascii_venv": non_ascii_venv,
    "mojibake_path": mojibake_path,
    "non_ascii_path_failing": non_ascii_path_failing,
    "not_a_pickle": not_a_pickle,
    "decode_error_user_path": decode_error_user_path,
    "decode_error_at_user_folder": decode_error_at_user_folder,
    "ends_in_temp_write": ends_in_temp_write,
}
