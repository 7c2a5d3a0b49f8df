"""Prompt editing and alternation: which prompt text each sampling step sees.

A1111's forms, which users copy from guides, with A1111 1.10's meaning (modules/prompt_parser.py,
get_learned_conditioning_prompt_schedules, and the denoiser that reads its result):

* ``[a:b:when]`` uses ``a`` up to ``when``, then ``b``; ``[a:when]`` adds ``a`` after ``when``;
  ``[a::when]`` removes it after ``when``;
* ``when`` written with a decimal point is a fraction of the steps (``0.5`` of 20 steps = 10),
  without one a step number (``[a:b:5]``); signed numbers and exponents are numbers too. The
  pass's sampler reads the entry whose end is at or after its 0-based step, so ``[a:b:5]`` gives
  ``a`` for the steps with index 0 to 5 (six steps) and ``[a:b:0.5]`` of 10 steps ``a`` for six;
* ``[a|b|c]`` alternates: steps with index 0 and 1 use ``a``, then ``b``, ``c``, ``a``, ...;
* in the hires pass the timeline goes on from the first pass (A1111 >= 1.6): a step number
  counts the first pass's steps too, and a fraction ``f`` is ``(f - 1)`` of the hires steps, so
  ``[a:b:0.5]`` is all ``b`` there and ``[a:b:1.5]`` switches half-way through the hires pass.
  ``old_scheduling`` gives A1111's "use old prompt editing timelines" setting instead (a number
  below 1 is a fraction; the hires pass reads the first pass's schedule over again);
* the forms nest, and mix with attention syntax, which is passed through untouched
  (``(x:1.2)``, a plain ``[x]`` with no colon or pipe, escapes) for :mod:`.attention`.

:func:`prompt_schedule` returns A1111's shape: ``[(end_step, text), ...]`` with one entry for each
step at which something may change, the last ``end_step`` being ``steps``.  Where A1111's grammar
cannot read a prompt (a ``|`` outside square brackets, for one), the whole prompt is one text
for every step, as there.  Malformed syntax never raises: an unclosed bracket is literal text,
and a bracket that is neither a valid edit nor an alternation is passed through for the
attention parser.  Pure Python, no torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# lark's SIGNED_NUMBER, which A1111's grammar uses: 5, -5, 0.5, .5, 5., 1e3
_NUMBER = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*")
_SPECIAL = re.compile(r"[\\()\[\]:|]")


@dataclass(frozen=True)
class _Edit:
    before: _Seq
    after: _Seq
    when: str  # as written: with a decimal point a fraction, else a step number


@dataclass(frozen=True)
class _Alternate:
    options: tuple[_Seq, ...]


_Node = str | _Edit | _Alternate
_Seq = tuple[_Node, ...]


@dataclass(frozen=True)
class _Timeline:
    """How ``when`` numbers become steps of this pass."""

    steps: int
    step_offset: int = 0  # hires: the first pass's steps
    fraction_offset: float = 0.0  # hires: 1.0
    old: bool = False

    def end(self, when: str) -> int:
        value = float(when)
        if self.old:
            value = value * self.steps if value < 1 else value
        elif "." in when:
            value = (value - self.fraction_offset) * self.steps
        else:
            value = value - self.step_offset
        return min(self.steps, int(value))


def prompt_schedule(
    text: str, steps: int, *, first_pass_steps: int | None = None, old_scheduling: bool = False
) -> list[tuple[int, str]]:
    """The prompts of ``text`` over ``steps`` steps, as ``(end_step, prompt)`` pairs in step order.

    ``first_pass_steps`` makes this the schedule of a hires pass of ``steps`` steps that follows
    a first pass of that many steps.

    >>> prompt_schedule("a [cat:dog:0.5]", 10)
    [(5, 'a cat'), (10, 'a dog')]
    """
    if first_pass_steps is not None and old_scheduling:
        steps = first_pass_steps  # A1111's old timeline: the hires pass reads the first pass's schedule again
    steps = max(1, steps)
    if first_pass_steps is None or old_scheduling:
        timeline = _Timeline(steps, old=old_scheduling)
    else:
        timeline = _Timeline(steps, step_offset=first_pass_steps, fraction_offset=1.0)
    try:
        parser = _Parser(text)
        tree = parser.parse()
    except RecursionError:  # thousands of nested brackets: not worth a crash
        return [(steps, text)]
    if parser.unreadable:
        return [(steps, text)]
    return _schedule(tree, timeline)


def _schedule(tree: _Seq, timeline: _Timeline) -> list[tuple[int, str]]:
    ends = {timeline.steps}
    for node in _walk(tree):
        if isinstance(node, _Edit):
            ends.add(timeline.end(node.when))
        elif isinstance(node, _Alternate):
            ends.update(range(1, timeline.steps + 1))
    return [(end, _render(tree, end, timeline)) for end in sorted(e for e in ends if e >= 1)]


def text_at(schedule: list[tuple[int, str]], step: int) -> str:
    """The prompt for the step with 0-based index ``step``, read as A1111's denoiser reads it: the
    first entry whose end is at or after ``step`` (past the end: the last prompt)."""
    for end, text in schedule:
        if step <= end:
            return text
    return schedule[-1][1]


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


def _render(seq: _Seq, end: int, timeline: _Timeline) -> str:
    """The text of ``seq`` for the schedule entry ending at step ``end``."""
    parts: list[str] = []
    for node in seq:
        if isinstance(node, str):
            parts.append(node)
        elif isinstance(node, _Edit):
            parts.append(_render(node.before if end <= timeline.end(node.when) else node.after, end, timeline))
        else:
            parts.append(_render(node.options[(end - 1) % len(node.options)], end, timeline))
    return "".join(parts)


class _Parser:
    """Recursive descent over the text; brackets that do not close become literal text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.unreadable = False  # a "|" outside square brackets: A1111's grammar gives up on the prompt

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
                self.unreadable |= char == "|"
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
        self.unreadable |= "|" in separators  # "[a|b:3]", "[a|b": no rule of A1111's grammar reads these
        when = _number(parts[-1])
        if closed and separators in ([":"], [":", ":"]) and when is not None:
            before, after = ((), parts[0]) if len(parts) == 2 else (parts[0], parts[1])
            return [_Edit(before, after, when)]
        literal: list[_Node] = ["["]
        for i, part in enumerate(parts):
            literal += [separators[i - 1], *part] if i else list(part)
        return [*literal, "]"] if closed else literal


def _number(seq: _Seq) -> str | None:
    """The number a part holds, as written (A1111 reads its decimal point), or None."""
    match = _NUMBER.fullmatch(seq[0]) if len(seq) == 1 and isinstance(seq[0], str) else None
    return match.group(1) if match else None
