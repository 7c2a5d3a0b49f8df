"""The pure prompt syntax: attention weights, BREAK, editing, alternation, choices, network tags."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from runtime.prompts import (
    BREAK,
    ROUND_BRACKET_MULTIPLIER,
    NetworkRef,
    extract_networks,
    is_break,
    parse_attention,
    prepare_prompt,
    prompt_schedule,
    resolve_choices,
    text_at,
)
from tests.support.hermetic import REPO

UP = ROUND_BRACKET_MULTIPLIER


def weights(text: str) -> list[tuple[str, float]]:
    return [(t, round(w, 6)) for t, w in parse_attention(text)]


# --- attention -----------------------------------------------------------------------------------


def test_one_bracket_level_is_a1111s_factor() -> None:
    assert weights("((tag))") == [("tag", 1.21)]
    assert weights("[tag]") == [("tag", round(1 / 1.1, 6))]
    assert weights("(tag)") == [("tag", 1.1)]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("plain text", [("plain text", 1.0)]),
        ("a (cat:1.3) b", [("a ", 1.0), ("cat", 1.3), (" b", 1.0)]),
        ("(cat: 0.5 )", [("cat", 0.5)]),
        ("((a:1.2) b)", [("a", round(1.2 * UP, 6)), (" b", round(UP, 6))]),
        ("[[a]]", [("a", round(UP**-2, 6))]),
        ("([a])", [("a", 1.0)]),
        ("(unbalanced", [("unbalanced", round(UP, 6))]),
        ("a [b c", [("a ", 1.0), ("b c", round(1 / UP, 6))]),
        ("stray) and] closers", [("stray) and] closers", 1.0)]),
        (r"\(literal\] \\ \[x\)", [(r"(literal] \ [x)", 1.0)]),
        (r"\{a\|b\} \<c\> \q", [(r"{a|b} <c> q", 1.0)]),  # A1111 drops a backslash before anything else
        ("(a)(b)", [("ab", round(UP, 6))]),
        ("(x:1.2.3)", [("x:1.2.3", round(UP, 6))]),
        ("(a:b)", [("a:b", round(UP, 6))]),
        ("", [("", 1.0)]),
    ],
)
def test_attention(prompt: str, expected: list[tuple[str, float]]) -> None:
    assert weights(prompt) == expected


def test_break_is_a_marker_between_chunks() -> None:
    parsed = parse_attention("a cat BREAK (a dog) BREAKFAST")
    assert parsed == [("a cat", 1.0), BREAK, ("", 1.0), ("a dog", UP), (" BREAKFAST", 1.0)]  # A1111 keeps the ""
    assert [is_break(f) for f in parsed] == [False, True, False, False, False]
    assert not any(is_break(f) for f in parse_attention("break Break"))  # uppercase only


def test_a_look_alike_fragment_is_a_break_as_in_a1111() -> None:
    # A1111 merges equal weights first and then takes any ("BREAK", -1) as a break.
    parsed = parse_attention("(BRE:-1)(AK:-1)")
    assert parsed == [BREAK] and is_break(parsed[0])
    assert not any(is_break(f) for f in parse_attention("(BREAK:-1.5)"))


# --- schedule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "steps", "expected"),
    [
        ("a cat", 10, [(10, "a cat")]),
        ("a [cat:dog:0.5]", 20, [(10, "a cat"), (20, "a dog")]),
        ("a [cat:dog:5]", 20, [(5, "a cat"), (20, "a dog")]),
        ("a [cat:dog: 5 ]", 20, [(5, "a cat"), (20, "a dog")]),
        ("a [hat:3] b", 10, [(3, "a  b"), (10, "a hat b")]),
        ("a [hat::3] b", 10, [(3, "a hat b"), (10, "a  b")]),
        ("a[b:[c:d:2]:1]e", 10, [(1, "abe"), (2, "ace"), (10, "ade")]),
        ("[(a:1.2):[b]:0.3]", 10, [(3, "(a:1.2)"), (10, "[b]")]),
        ("[a:b:50]", 10, [(10, "a")]),
        ("[a:b:0]", 10, [(10, "b")]),
    ],
)
def test_prompt_editing(prompt: str, steps: int, expected: list[tuple[int, str]]) -> None:
    assert prompt_schedule(prompt, steps) == expected


def test_alternation_starts_with_the_first_option_twice_as_in_a1111() -> None:
    schedule = prompt_schedule("a [cat|dog|(fox:1.2)]", 7)
    expected = ["a cat", "a cat", "a dog", "a (fox:1.2)", "a cat", "a dog", "a (fox:1.2)"]
    assert [text_at(schedule, i) for i in range(7)] == expected
    assert text_at(schedule, 99) == "a cat"  # past the end: the last step's text


def test_editing_switches_after_the_given_step() -> None:
    integer, fraction = prompt_schedule("[a:b:3]", 6), prompt_schedule("[a:b:0.5]", 6)
    assert [text_at(integer, i) for i in range(6)] == ["a"] * 4 + ["b"] * 2  # 0-based step <= 3, as A1111
    assert integer == fraction
    # A1111 >= 1.6: a decimal point makes a fraction, whatever the value; without one it is a step
    assert prompt_schedule("[a:b:1.0]", 6) == [(6, "a")] and prompt_schedule("[a:b:1]", 6) == [(1, "a"), (6, "b")]
    assert prompt_schedule("[a:b:-1]", 6) == [(6, "b")]  # a signed number is a number


@pytest.mark.parametrize(
    "prompt",
    [
        "(x:1.2) [x] ((y)) [[z]]",  # attention passes through
        r"\[a:b:3\] \(c\) \\",  # escaped brackets are not editing
        "[a:b]",  # a colon without a number: attention brackets
        "[a:b|c]",  # colons and pipes mixed
        "a [unclosed:b:3",
        "a (unclosed [x",
        "stray ] : | )",
        "[e:f:]",
        "{a|b} <lora:x:1>",
    ],
)
def test_what_is_not_editing_passes_through_untouched(prompt: str) -> None:
    assert prompt_schedule(prompt, 10) == [(10, prompt)]


def test_deep_nesting_does_not_raise() -> None:
    prompt = "(" * 5000 + "a [b:c:2]"
    assert prompt_schedule(prompt, 4) == [(4, prompt)]


# --- random choices --------------------------------------------------------------------------------


def test_choices_are_deterministic_per_seed_and_recorded() -> None:
    first = resolve_choices("a {red|green|blue} car", 42)
    assert first == resolve_choices("a {red|green|blue} car", 42)
    text, chosen = first
    assert text == f"a {chosen[0]} car" and chosen[0] in {"red", "green", "blue"}
    seen = {resolve_choices("{red|green|blue}", seed)[0] for seed in range(50)}
    assert seen == {"red", "green", "blue"}


def test_nested_choices_record_outer_before_inner() -> None:
    picks = [resolve_choices("{x {a|b}|y}", seed) for seed in range(50)]
    assert {text for text, _ in picks} == {"x a", "x b", "y"}
    assert ("x a", ["x a", "a"]) in picks and ("y", ["y"]) in picks


@pytest.mark.parametrize("prompt", ["{}", "{single}", "{unclosed|b", r"\{a|b\}", "a | b", "(a|b)"])
def test_braces_without_a_choice_stay_literal(prompt: str) -> None:
    assert resolve_choices(prompt, 1) == (prompt, [])


def test_pipes_inside_brackets_belong_to_the_brackets() -> None:
    picks = {resolve_choices(r"{[a|b]|c\|d}", seed)[0] for seed in range(30)}
    assert picks == {"[a|b]", r"c\|d"}


# --- network tags --------------------------------------------------------------------------------


def test_network_tags_are_taken_out() -> None:
    text, refs = extract_networks("girl, <lora:ink style:0.7>, <LYCO:Detail:1.2:0.5> <hypernet:h> <lora:x:te=0.3>")
    assert text == "girl, ,   "  # only the tags go: the prompt tokenizes as in A1111
    assert refs == [
        NetworkRef("lora", "ink style", 0.7),
        NetworkRef("lyco", "Detail", 0.5, te_weight=1.2),
        NetworkRef("hypernet", "h", 1.0),
        NetworkRef("lora", "x", 0.3),
    ]
    assert refs[1].text_encoder_weight == 1.2 and refs[0].text_encoder_weight == 0.7


@pytest.mark.parametrize(
    ("prompt", "problem"), [("<lora:x:strong>", "weight 'strong' is not a number"), ("<lora::1>", "no name")]
)
def test_a_malformed_tag_leaves_the_text_as_in_a1111_and_says_why(prompt: str, problem: str) -> None:
    text, refs = extract_networks("a " + prompt)
    assert text == "a " and refs[0].problem == problem


def test_a_backslash_does_not_protect_a_tag_and_a_non_tag_stays() -> None:
    assert extract_networks(r"\<lora:x:1>")[0] == "\\"
    assert extract_networks("<3 :>") == ("<3 :>", [])


def test_both_lora_weights_and_named_ones() -> None:
    refs = extract_networks("<lora:a:0.5:0.8> <lora:b:te=0.2:unet=0.9> <lora:c:1:unet=0.3> <lora:d:te=0.4>")[1]
    assert [(r.text_encoder_weight, r.weight) for r in refs] == [(0.5, 0.8), (0.2, 0.9), (1.0, 0.3), (0.4, 0.4)]


def test_a_choice_can_pick_a_lora() -> None:
    prepared = [prepare_prompt("cat {<lora:a:1>|<lora:b:0.5>}", seed) for seed in range(20)]
    assert {(p.text, p.networks[0].name, p.choices[0]) for p in prepared} == {
        ("cat ", "a", "<lora:a:1>"),
        ("cat ", "b", "<lora:b:0.5>"),
    }


def test_the_pure_modules_do_not_import_torch() -> None:
    probe = "import json, sys; sys.path.insert(0, sys.argv[1]); import runtime.prompts; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-I", "-c", probe, str(REPO)], capture_output=True, text=True, check=True)
    assert not {"torch", "transformers", "diffusers"} & set(json.loads(out.stdout))
