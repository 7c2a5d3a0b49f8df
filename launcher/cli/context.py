"""What every CLI command receives."""

from __future__ import annotations

from dataclasses import dataclass

from bootstrap.i18n import pick
from bootstrap.layout import Bundle


@dataclass(frozen=True)
class Context:
    bundle: Bundle
    lang: str

    def t(self, zh: str, en: str) -> str:
        return pick(self.lang, zh, en)
