"""Language choice, and the error tree's contract: stable codes, zh/en text, exit codes."""

from __future__ import annotations

import re

import pytest

import bootstrap.errors as base_errors
import launcher.errors as launcher_errors
from bootstrap.errors import ExitCode, YijianError
from bootstrap.i18n import detect_language
from tests.support.hermetic import REPO


@pytest.mark.parametrize(
    ("explicit", "configured", "env", "want"),
    [
        ("en", "zh", {"LANG": "zh_CN.UTF-8"}, "en"),
        (None, None, {"YIJIAN_LANG": "zh", "LANG": "en_US.UTF-8"}, "zh"),
        (None, "zh", {"LANG": "en_US.UTF-8"}, "zh"),
        (None, "auto", {"LANG": "zh_CN.UTF-8"}, "zh"),
        (None, None, {"LC_ALL": "zh_TW.UTF-8"}, "zh"),
        (None, None, {"LANG": "C.UTF-8", "LANGUAGE": "zh_CN:en"}, "zh"),
        (None, None, {"LANG": "C.UTF-8"}, "en"),
        (None, None, {}, "en"),
        (None, None, {"LANG": "de_DE.UTF-8"}, "en"),
    ],
)
def test_detect_language(explicit, configured, env, want) -> None:  # type: ignore[no-untyped-def]
    assert detect_language(explicit, configured, env) == want


def all_errors() -> list[type[YijianError]]:
    seen: dict[str, type[YijianError]] = {}
    for module in (base_errors, launcher_errors):
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, YijianError):
                seen[obj.__name__] = obj
    return list(seen.values())


def test_codes_are_unique_and_stable_shaped() -> None:
    codes = [cls.code for cls in all_errors()]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]+", c) for c in codes)


@pytest.mark.parametrize("cls", all_errors(), ids=lambda c: c.__name__)
def test_every_error_speaks_both_languages(cls: type[YijianError]) -> None:
    for template in (cls.zh, cls.en, cls.hint_zh, cls.hint_en):
        assert template.strip()
    assert re.search(r"[\u4e00-\u9fff]", cls.zh + cls.hint_zh), "zh text has no Chinese"
    assert not re.search(r"[\u4e00-\u9fff]", cls.en), "en text has Chinese"
    # Same placeholders in both languages, so no message can lose a fact in translation.
    # (A fact given per language, like reason_zh / reason_en, counts as one.)
    fields = lambda t: {re.sub(r"_(zh|en)$", "", f) for f in re.findall(r"{(\w+)", t)}  # noqa: E731
    assert fields(cls.zh) == fields(cls.en)


def test_to_dict_is_the_json_contract() -> None:
    err = base_errors.NotBuiltYet(feature="doctor", plan="x")
    d = err.to_dict("en")
    assert d == {"code": "NOT_BUILT_YET", "message": err.message("en"), "hint": err.hint("en"), "exit_code": 8}
    assert "doctor" in d["message"]


def test_exit_codes_are_listed_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for code in ExitCode:
        assert re.search(rf"\|\s*{int(code)}\s*\|", readme), f"exit code {int(code)} ({code.name}) missing"
