"""Reading TOML in stage 0, on any Python from 3.10.

Python 3.11+ has :mod:`tomllib`.  On 3.10 stage 0 has no TOML reader at
all, so this module carries a small one for the subset our own files use:
comments, ``[table]`` and ``[[array.of.tables]]`` headers (dotted), bare and
quoted keys, basic and literal strings, integers, floats, booleans, arrays
(over several lines too) and inline tables.  Anything else raises
:class:`TomlSubsetError`; stage 0 then falls back to defaults and lets the
launcher, which has a full parser, report the problem.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any


class TomlSubsetError(ValueError):
    """The text is not TOML, or uses a form the subset reader lacks."""


def load(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if sys.version_info >= (3, 11):
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise TomlSubsetError(f"{path}: {exc}") from exc
    return loads_subset(text)  # pragma: no cover - Python 3.10


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_NUMBER = re.compile(r"[+-]?(\d[\d_]*)(\.\d[\d_]*)?([eE][+-]?\d+)?")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


class _Reader:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def fail(self, what: str) -> TomlSubsetError:
        line = self.s.count("\n", 0, self.i) + 1
        return TomlSubsetError(f"{what} (line {line})")

    def skip_ws(self, newlines: bool = False) -> None:
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            elif c == "#" and newlines:
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            else:
                return

    def key_path(self) -> list[str]:
        parts = []
        while True:
            self.skip_ws()
            parts.append(self.key_part())
            self.skip_ws()
            if self.s.startswith(".", self.i):
                self.i += 1
                continue
            return parts

    def key_part(self) -> str:
        c = self.s[self.i : self.i + 1]
        if c in ('"', "'"):
            return self.string()
        m = _BARE_KEY.match(self.s, self.i)
        if not m:
            raise self.fail("expected a key")
        self.i = m.end()
        return m.group()

    def string(self) -> str:
        quote = self.s[self.i]
        if self.s.startswith(quote * 3, self.i):
            raise self.fail("multi-line strings are not supported here")
        self.i += 1
        out: list[str] = []
        while True:
            if self.i >= len(self.s) or self.s[self.i] == "\n":
                raise self.fail("unterminated string")
            c = self.s[self.i]
            self.i += 1
            if c == quote:
                return "".join(out)
            if c == "\\" and quote == '"':
                e = self.s[self.i : self.i + 1]
                self.i += 1
                if e in _ESCAPES:
                    out.append(_ESCAPES[e])
                elif e in ("u", "U"):
                    n = 4 if e == "u" else 8
                    out.append(chr(int(self.s[self.i : self.i + n], 16)))
                    self.i += n
                else:
                    raise self.fail("bad escape")
            else:
                out.append(c)

    def value(self) -> Any:
        self.skip_ws()
        c = self.s[self.i : self.i + 1]
        if c in ('"', "'"):
            return self.string()
        if c == "[":
            self.i += 1
            items: list[Any] = []
            while True:
                self.skip_ws(newlines=True)
                if self.s.startswith("]", self.i):
                    self.i += 1
                    return items
                items.append(self.value())
                self.skip_ws(newlines=True)
                if self.s.startswith(",", self.i):
                    self.i += 1
                elif not self.s.startswith("]", self.i):
                    raise self.fail("expected ',' or ']'")
        if c == "{":
            self.i += 1
            table: dict[str, Any] = {}
            self.skip_ws()
            if self.s.startswith("}", self.i):
                self.i += 1
                return table
            while True:
                path = self.key_path()
                if not self.s.startswith("=", self.i):
                    raise self.fail("expected '='")
                self.i += 1
                _assign(table, path, self.value(), self)
                self.skip_ws()
                if self.s.startswith(",", self.i):
                    self.i += 1
                elif self.s.startswith("}", self.i):
                    self.i += 1
                    return table
                else:
                    raise self.fail("expected ',' or '}'")
        for word, val in (("true", True), ("false", False)):
            if self.s.startswith(word, self.i):
                self.i += len(word)
                return val
        m = _NUMBER.match(self.s, self.i)
        if m and m.group():
            self.i = m.end()
            text = m.group().replace("_", "")
            return float(text) if (m.group(2) or m.group(3)) else int(text)
        raise self.fail("unsupported value")

    def end_of_line(self) -> None:
        self.skip_ws()
        if self.s.startswith("#", self.i):
            while self.i < len(self.s) and self.s[self.i] != "\n":
                self.i += 1
        if self.i < len(self.s) and self.s[self.i] not in "\r\n":
            raise self.fail("unexpected text after a value")


def _assign(table: dict[str, Any], path: list[str], value: Any, r: _Reader) -> None:
    for part in path[:-1]:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise r.fail(f"key {part!r} is not a table")
    if path[-1] in table:
        raise r.fail(f"duplicate key {path[-1]!r}")
    table[path[-1]] = value


def loads_subset(text: str) -> dict[str, Any]:
    root: dict[str, Any] = {}
    current = root
    r = _Reader(text)
    while True:
        r.skip_ws(newlines=True)
        if r.i >= len(r.s):
            return root
        if r.s.startswith("[[", r.i):
            r.i += 2
            path = r.key_path()
            if not r.s.startswith("]]", r.i):
                raise r.fail("expected ']]'")
            r.i += 2
            parent = root
            for part in path[:-1]:
                parent = parent.setdefault(part, {})
                if isinstance(parent, list):
                    parent = parent[-1]
            array = parent.setdefault(path[-1], [])
            if not isinstance(array, list):
                raise r.fail(f"{path[-1]!r} is not an array of tables")
            current = {}
            array.append(current)
        elif r.s.startswith("[", r.i):
            r.i += 1
            path = r.key_path()
            if not r.s.startswith("]", r.i):
                raise r.fail("expected ']'")
            r.i += 1
            current = root
            for part in path:
                nxt = current.setdefault(part, {})
                current = nxt[-1] if isinstance(nxt, list) else nxt
                if not isinstance(current, dict):
                    raise r.fail(f"key {part!r} is not a table")
        else:
            path = r.key_path()
            if not r.s.startswith("=", r.i):
                raise r.fail("expected '='")
            r.i += 1
            _assign(current, path, r.value(), r)
        r.end_of_line()
