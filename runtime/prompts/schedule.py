"""Prompt editing and alternation: which prompt text each sampling step sees.

A1111's forms, which users copy from guides:

* ``[a:b:when]`` uses ``a`` up to ``when``, then ``b``;
* ``[a:when]`` adds ``a`` after ``when``; ``[a::when]`` removes it after ``when``;
* ``when`` below 1 is a fraction of the steps (``0.5`` of 20 steps = step 10), otherwise a
  step number (counted from 1: ``[a:b:5]`` gives ``a`` for steps 1-5 and ``b`` from step 6);
* ``[a|b|c]`` alternates every step: the step with 0-based index ``i`` uses option ``i % 3``;
* the forms nest, and mix with attention syntax, which is passed through untouched
  (``(x:1.2)``, a plain ``[x]`` with no colon or pipe, escapes) for :mod:`.attention`.

:func:`prompt_schedule` returns A1111's shape: ``[(end_step, text), ...]`` where each text holds
for the steps up to and including ``end_step`` (1-based), the last ``end_step`` being ``steps``.
Unlike A1111 (whose sampler compares a 0-based step with these 1-based ends, so ``[a:b:5]``
gives ``a`` for six steps and ``[a|b]`` starts ``a, a, b``) :func:`text_at` reads them exactly
as documented above.

Malformed syntax never raises: an unclosed bracket is literal text, and a bracket that is
neither a valid edit nor an alternation is passed through for the attention parser.
Pure Python, no torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER = re.compile(r"\s*(\d+\.?\d*|\.\d+)\s*")
_SPECIAL = re.compile(r"[\\()\[\]:|]")


@dataclass(frozen=True)
class _Edit:
    before: _Seq
    after: _Seq
    when: float  # as written: a fraction below 1, else a step number


@dataclass(frozen=True)
class _Alternate:
    options: tuple[_Seq, ...]


_Node = str | _Edit | _Alternate
_Seq = tuple[_Node, ...]


def prompt_schedule(text: str, steps: int) -> list[tuple[int, str]]:
    """The prompts of ``text`` over ``steps`` steps, as ``(end_step, prompt)`` pairs in step order.

    >>> prompt_schedule("a [cat:dog:0.5]", 10)
    [(5, 'a cat'), (10, 'a dog')]
    """
    steps = max(1, steps)
    try:
        return _schedule(_Parser(text).parse(), steps)
    except RecursionError:  # thousands of nested brackets: not worth a crash
        return [(steps, text)]


def _schedule(tree: _Seq, steps: int) -> list[tuple[int, str]]:
    ends = {steps}
    for node in _walk(tree):
        if isinstance(node, _Edit):
            ends.add(_end_step(node.when, steps))
        elif isinstance(node, _Alternate):
            ends.update(range(1, steps + 1))
    schedule: list[tuple[int, str]] = []
    for end in sorted(e for e in ends if e >= 1):
        rendered = _render(tree, end, steps)
        if schedule and schedule[-1][1] == rendered:
            schedule[-1] = (end, rendered)  # same text as the step before: one entry
        else:
            schedule.append((end, rendered))
    return schedule


def text_at(schedule: list[tuple[int, str]], step: int) -> str:
    """The prompt for the step with 0-based index ``step`` (past the end: the last prompt)."""
    for end, text in schedule:
        if step < end:
            return text
    return schedule[-1][1]


def _end_step(when: float, steps: int) -> int:
    return min(steps, int(when * steps if when < 1 else when))


def _walk(seq: _Seq) -> list[_Node]:
    out: list[_Node] = []
    for node in seq:
        out.append(node)
        if isinstance(node, _Edit):
            out += _walk(node.before) + _walk(node.after)
        elif isinstance(node, _Alternate):
            for option in node.options:
                out += _walk(option)
    return out


def _render(seq: _Seq, end: int, steps: int) -> str:
    """The text of ``seq`` for the step numbered ``end`` (1-based) of ``steps``."""
    parts: list[str] = []
    for node in seq:
        if isinstance(node, str):
            parts.append(node)
        elif isinstance(node, _Edit):
            parts.append(_render(node.before if end <= _end_step(node.when, steps) else node.after, end, steps))
        else:
            parts.append(_render(node.options[(end - 1) % len(node.options)], end, steps))
    return "".join(parts)


class _Parser:
    """Recursive descent over the text; brackets that do not close become literal text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> _Seq:
        return self.sequence(stops="")

    def sequence(self, stops: str) -> _Seq:
        """Nodes up to (not including) a character in ``stops`` at this level, or the end."""
        out: list[_Node] = []
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in stops:
                break
            if char == "\\":
                out.append(text[self.pos : self.pos + 2])  # kept verbatim for the attention parser
                self.pos += 2
            elif char == "(":
                self.pos += 1
                inner = self.sequence(stops=")")
                closed = self.pos < len(text)
                self.pos += closed
                out += ["(", *inner, ")" if closed else ""]
            elif char == "[":
                self.pos += 1
                out += self.square()
            elif _SPECIAL.match(char):
                out.append(char)  # a stray ) ] : | is literal text
                self.pos += 1
            else:
                match = _SPECIAL.search(text, self.pos)
                end = match.start() if match else len(text)
                out.append(text[self.pos : end])
                self.pos = end
        return tuple(out)

    def square(self) -> list[_Node]:
        """After ``[``: an edit, an alternation, or attention brackets passed through."""
        parts: list[_Seq] = [self.sequence(stops="]:|")]
        separators: list[str] = []
        while self.pos < len(self.text) and self.text[self.pos] in ":|":
            separators.append(self.text[self.pos])
            self.pos += 1
            parts.append(self.sequence(stops="]:|"))
        closed = self.pos < len(self.text)
        self.pos += closed
        if closed and separators and set(separators) == {"|"}:
            return [_Alternate(tuple(parts))]
        when = _number(parts[-1])
        if closed and separators in ([":"], [":", ":"]) and when is not None:
            before, after = ((), parts[0]) if len(parts) == 2 else (parts[0], parts[1])
            return [_Edit(before, after, when)]
        literal: list[_Node] = ["["]
        for i, part in enumerate(parts):
            literal += [separators[i - 1], *part] if i else list(part)
        return [*literal, "]"] if closed else literal


def _number(seq: _Seq) -> float | None:
    if len(seq) != 1 or not isinstance(seq[0], str) or not _NUMBER.fullmatch(seq[0]):
        return None
    return float(seq[0])
