"""Plain-words diagnoses of failures, from rules kept as data.

``installer.toml`` maps installer (uv/pip) error output to a cause and a
fix.  The doctor's known-error scanner extends the same idea to runtime
logs; rules live in TOML beside this module, not in code branches.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Diagnosis:
    id: str
    zh: str
    en: str
    fix_zh: str
    fix_en: str

    def text(self, lang: str) -> str:
        return f"{self.zh} {self.fix_zh}" if lang == "zh" else f"{self.en} {self.fix_en}"


@dataclass(frozen=True)
class Rule:
    diagnosis: Diagnosis
    pattern: re.Pattern[str]


@lru_cache(maxsize=4)
def load_rules(path: Path = HERE / "installer.toml") -> tuple[Rule, ...]:
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    return tuple(
        Rule(Diagnosis(r["id"], r["zh"], r["en"], r["fix_zh"], r["fix_en"]), re.compile(r["pattern"], re.IGNORECASE))
        for r in data.get("rule", [])
    )


def diagnose_installer(output: str) -> Diagnosis | None:
    """The first rule whose pattern occurs in ``output``."""
    return next((r.diagnosis for r in load_rules() if r.pattern.search(output)), None)
