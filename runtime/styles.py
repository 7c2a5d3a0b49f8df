"""Prompt styles in A1111's ``styles.csv`` format, applied as A1111 applies them.

The file has a header row and the columns ``name``, ``prompt``,
``negative_prompt`` (A1111's own, so a file copied from an A1111 or 秋叶
install works as it is; an old file with ``text`` instead of ``prompt`` too).
It lives at the bundle root, where A1111 keeps it, and is read again whenever
it changes.

A style's text is merged into a prompt as in A1111's ``modules/styles.py``:
where the style holds ``{prompt}``, the prompt takes its place; otherwise the
two are joined with ``", "`` (either may be empty).  Styles apply in the order
the request names them.  A name that is not in the file is refused, naming it
(A1111 ignores it without a word).
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import InvalidRequest

FILE_NAME = "styles.csv"


@dataclass(frozen=True)
class PromptStyle:
    name: str
    prompt: str
    negative_prompt: str


def merge(style_text: str, prompt: str) -> str:
    """One style's text merged into ``prompt`` (A1111's rule)."""
    if "{prompt}" in style_text:
        return style_text.replace("{prompt}", prompt)
    return ", ".join(part for part in (prompt.strip(), style_text.strip()) if part)


def read_styles(path: Path) -> dict[str, PromptStyle]:
    """The styles in an A1111 styles.csv, by name (a missing file has none)."""
    styles: dict[str, PromptStyle] = {}
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            for row in csv.DictReader(f, skipinitialspace=True):
                name = (row.get("name") or "").strip()
                if not name:
                    continue
                prompt = row.get("prompt") if "prompt" in row else row.get("text")
                styles[name] = PromptStyle(name, prompt or "", row.get("negative_prompt") or "")
    except FileNotFoundError:
        pass
    return styles


class StyleFile:
    """The styles file of a bundle, read again when its modification time or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._styles: dict[str, PromptStyle] = {}

    def styles(self) -> dict[str, PromptStyle]:
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._styles = read_styles(self.path) if stamp is not None else {}
                self._stamp = stamp
            return dict(self._styles)

    def apply(self, names: Sequence[str], prompt: str, negative: str, *, field: str = "styles") -> tuple[str, str]:
        """``(prompt, negative)`` with the named styles applied, in order."""
        if not names:
            return prompt, negative
        known = self.styles()
        for i, name in enumerate(names):
            style = known.get(name)
            if style is None:
                have = ", ".join(known) or "none"
                raise InvalidRequest(f"no style named {name!r} in {self.path.name} (styles: {have})",
                                     field=f"{field}[{i}]",
                                     detail_zh=f"{self.path.name} 里没有名为 {name!r} 的样式（已有：{have}）")  # fmt: skip
            prompt = merge(style.prompt, prompt)
            negative = merge(style.negative_prompt, negative)
        return prompt, negative
