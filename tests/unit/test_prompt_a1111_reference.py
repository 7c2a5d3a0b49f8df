"""Our prompt parsing against A1111 1.10's own output.

tests/data/a1111_prompt_reference.json holds, for each prompt, what A1111's
modules/prompt_parser.py returned (see the file's "source"): the editing schedule for 20 steps,
for a hires pass of 10 steps after 20 (its >= 1.6 timeline and the old one), and the attention
weights of every scheduled text.  A user's Civitai prompt must mean here what it meant there.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from runtime.prompts import BREAK, parse_attention, prompt_schedule, text_at
from tests.support.hermetic import REPO

DATA = json.loads((REPO / "tests" / "data" / "a1111_prompt_reference.json").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = DATA["cases"]


def ids(case: dict[str, Any]) -> str:
    return case["prompt"][:40]


def test_the_reference_covers_enough_prompts() -> None:
    assert len(CASES) >= 50


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_schedules_are_a1111s(case: dict[str, Any]) -> None:
    prompt = case["prompt"]
    assert [list(e) for e in prompt_schedule(prompt, 20)] == case["schedule_20"]
    assert [list(e) for e in prompt_schedule(prompt, 10, first_pass_steps=20)] == case["schedule_hires_20_10"]
    old = prompt_schedule(prompt, 10, first_pass_steps=20, old_scheduling=True)
    assert [list(e) for e in old] == case["schedule_old_hires_20_10"]


@pytest.mark.parametrize("case", [c for c in CASES if "attention" in c], ids=ids)
def test_attention_weights_are_a1111s(case: dict[str, Any]) -> None:
    for text, expected in case["attention"].items():
        ours = parse_attention(text)
        assert [t for t, _ in ours] == [t for t, _ in expected], text
        for (_, weight), (_, want) in zip(ours, expected, strict=True):
            assert math.isclose(weight, want, rel_tol=1e-12), (text, weight, want)


def test_a1111_stops_on_a_malformed_weight_and_we_keep_it_as_text() -> None:
    # A1111 raises ValueError on float("1.2.3") and the generation fails; here the text stays.
    broken = [c for c in CASES if "attention_error" in c]
    assert broken
    for case in broken:
        assert parse_attention(case["prompt"])  # never raises


# A1111's own examples (modules/prompt_parser.py docstrings), as facts.


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("test", [[10, "test"]]),
        ("a [b:3]", [[3, "a "], [10, "a b"]]),
        ("a [b: 3]", [[3, "a "], [10, "a b"]]),
        ("a [[[b]]:2]", [[2, "a "], [10, "a [[b]]"]]),
        ("[(a:2):3]", [[3, ""], [10, "(a:2)"]]),
        ("a [b : c : 1] d", [[1, "a b  d"], [10, "a  c  d"]]),
        ("a[b:[c:d:2]:1]e", [[1, "abe"], [2, "ace"], [10, "ade"]]),
        ("a [unbalanced", [[10, "a [unbalanced"]]),
        ("a [b:.5] c", [[5, "a  c"], [10, "a b c"]]),
        ("((a][:b:c [d:3]", [[3, "((a][:b:c "], [10, "((a][:b:c d"]]),
        ("[a|(b:1.1)]", [[i, "a" if i % 2 else "(b:1.1)"] for i in range(1, 11)]),
        ("[fe|]male", [[i, "female" if i % 2 else "male"] for i in range(1, 11)]),
        ("[fe|||]male", [[i, "female" if i % 4 == 1 else "male"] for i in range(1, 11)]),
    ],
)
def test_a1111_docstring_schedules(prompt: str, expected: list[list[Any]]) -> None:
    assert [list(e) for e in prompt_schedule(prompt, 10)] == expected


def test_a1111_docstring_hires_schedules() -> None:
    assert prompt_schedule("a [b:.5] c", 10, first_pass_steps=10) == [(10, "a b c")]
    assert prompt_schedule("a [b:1.5] c", 10, first_pass_steps=10) == [(5, "a  c"), (10, "a b c")]


def test_a1111_docstring_attention() -> None:
    assert parse_attention("normal text") == [("normal text", 1.0)]
    assert parse_attention("an (important) word") == [("an ", 1.0), ("important", 1.1), (" word", 1.0)]
    assert parse_attention("(unbalanced") == [("unbalanced", 1.1)]
    assert parse_attention(r"\(literal\]") == [("(literal]", 1.0)]
    assert parse_attention("(unnecessary)(parens)") == [("unnecessaryparens", 1.1)]
    assert parse_attention("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).") == [
        ("a ", 1.0), ("house", 1.5730000000000004), (" ", 1.1), ("on", 1.0), (" a ", 1.1),
        ("hill", 0.55), (", sun, ", 1.1), ("sky", 1.4641000000000006), (".", 1.1),
    ]  # fmt: skip


def test_the_sampler_reads_the_schedule_as_a1111s_denoiser() -> None:
    # A1111 compares the 0-based step with each entry's end using <=: [a:b:5] holds "a" for six steps.
    schedule = prompt_schedule("[a:b:5]", 10)
    assert [text_at(schedule, i) for i in range(10)] == ["a"] * 6 + ["b"] * 4
    alternating = prompt_schedule("[a|b]", 6)
    assert [text_at(alternating, i) for i in range(6)] == ["a", "a", "b", "a", "b", "a"]


def test_break_inside_weighted_brackets_is_a_weighted_word_as_in_a1111() -> None:
    assert parse_attention("a BREAK b") == [("a", 1.0), BREAK, ("b", 1.0)]
    inside = parse_attention("(a BREAK b)")
    assert BREAK not in inside and ("BREAK", -1.1) in [(t, round(w, 6)) for t, w in inside]


@pytest.mark.parametrize("emphasis", ["None", "Ignore", "No norm"])
def test_emphasis_modes(emphasis: str) -> None:
    parsed = parse_attention("a (b:1.5) BREAK c", emphasis)
    if emphasis == "None":  # nothing is parsed, BREAK included (A1111 passes the line as it is)
        assert parsed == [("a (b:1.5) BREAK c", 1.0)]
    elif emphasis == "Ignore":
        assert parsed == [("a b", 1.0), BREAK, ("c", 1.0)]
    else:  # the weights are read; the conditioning skips the mean restoration
        assert parsed == [("a ", 1.0), ("b", 1.5), ("", 1.0), BREAK, ("c", 1.0)] or ("b", 1.5) in parsed
