"""A1111 attention syntax: which parts of a prompt weigh more or less.

Users paste prompts written for AUTOMATIC1111's web UI, so the syntax is A1111's:
``(x)`` raises the weight of ``x`` by one step, ``[x]`` lowers it by one step,
``(x:1.3)`` sets the factor explicitly, brackets nest and their factors multiply,
``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` (and the other characters in
:data:`ESCAPABLE`) are literal characters, and ``BREAK`` (uppercase, as its own
word) ends the current 75-token chunk.  An unclosed bracket applies to the rest
of the prompt and a stray closing one is literal text, as in A1111: a prompt is
never rejected for its brackets.

Prompt editing and alternation (``[a:b:0.5]``, ``[a|b]``) are resolved first by
:mod:`runtime.prompts.schedule`; what reaches :func:`parse_attention` is one
step's plain prompt.  :func:`tokenize_chunks` then turns the fragments into A1111's
chunks: 75 tokens each, wrapped with BOS and EOS to CLIP's 77, where a full chunk breaks
after its last comma when that comma is among its last 20 tokens.  It only needs a
tokenizer, so a token counter can use it too.  Pure Python, no torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

# One bracket level multiplies by this factor: (x) -> x * 1.05, ((x)) -> 1.1025, [x] -> 1 / 1.05.
# The issue pins ((tag)) = 1.1025 and [tag] = 1/1.05, so that is what we use.  A1111 itself
# (modules/prompt_parser.py, parse_prompt_attention) uses 1.1 and 1/1.1, so ((tag)) = 1.21 there;
# 1.05 per level is NovelAI's factor for {curly} braces.  Prompts copied from A1111 guides therefore
# get a milder emphasis here until this constant is set to 1.1; nothing else depends on its value.
ROUND_BRACKET_MULTIPLIER: Final = 1.05
SQUARE_BRACKET_MULTIPLIER: Final = 1 / ROUND_BRACKET_MULTIPLIER

# Characters a backslash makes literal.  The other modules keep ``\x`` verbatim so that only this
# parser removes the backslash; a backslash before any other character stays in the text.
ESCAPABLE: Final = frozenset("()[]{}<>\\:|")

CHUNK_TOKENS: Final = 75  # per chunk, without BOS and EOS
COMMA_BACKTRACK: Final = 20  # A1111's default "comma padding backtrack"

Fragment = tuple[str, float]

# ``BREAK`` in the parse result: compare with ``is`` (or use :func:`is_break`); text never produces
# this object, so a literal fragment ("BREAK", -1.0) from odd input cannot be mistaken for it.
BREAK: Final[Fragment] = ("BREAK", -1.0)

_BREAK_WORD = re.compile(r"\s*\bBREAK\b\s*")
# A token is one of: an escape, an opening bracket, an explicit weight closing a round bracket,
# a closing bracket, or a run of other text (a lone ``\`` or ``:`` is text too).
_TOKEN = re.compile(
    r"""
    (?P<escape>\\.)
  | (?P<open>[(\[])
  | :\s*(?P<weight>[+-]?[.\d]+)\s*\)
  | (?P<close>[)\]])
  | (?P<text>[^\\()\[\]:]+|[\\:])
    """,
    re.VERBOSE | re.DOTALL,
)


def is_break(fragment: Fragment) -> bool:
    """Whether ``fragment`` is the :data:`BREAK` marker."""
    return fragment is BREAK


def parse_attention(text: str) -> list[Fragment]:
    """Split ``text`` into ``(text, weight)`` fragments, with :data:`BREAK` markers between chunks.

    Adjacent fragments of equal weight are merged; the result is never empty (``""`` gives
    ``[("", 1.0)]``).  Never raises: syntax it cannot read is kept as literal text.

    >>> parse_attention("a (b) [c] (d:1.5)")
    [('a ', 1.0), ('b', 1.05), (' ', 1.0), ('c', 0.9523809523809523), (' ', 1.0), ('d', 1.5)]
    """
    parser = _Parser()
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if match.group("escape"):
            parser.fragments.append([token[1] if token[1] in ESCAPABLE else token, 1.0])
        elif match.group("open"):
            (parser.round_open if token == "(" else parser.square_open).append(len(parser.fragments))
        elif match.group("weight") is not None:
            factor = _to_float(match.group("weight"))
            if parser.round_open and factor is not None:
                parser.scale(parser.round_open.pop(), factor)
            else:  # not a weight after all: the text before ')', then ')' on its own
                parser.add_text(token[:-1])
                parser.close(")")
        elif match.group("close"):
            parser.close(token)
        else:
            parser.add_text(token)
    return parser.finish()


class _Parser:
    """The state of one :func:`parse_attention` call."""

    def __init__(self) -> None:
        self.fragments: list[list[str | float]] = []  # [text, weight] pairs, scaled as brackets close
        self.breaks: set[int] = set()  # indexes in ``fragments`` that are BREAK markers
        self.round_open: list[int] = []  # where each open bracket's fragments start
        self.square_open: list[int] = []

    def scale(self, start: int, factor: float) -> None:
        for item in self.fragments[start:]:
            item[1] = float(item[1]) * factor

    def add_text(self, piece: str) -> None:
        for i, part in enumerate(_BREAK_WORD.split(piece)):
            if i:
                self.breaks.add(len(self.fragments))
                self.fragments.append(["BREAK", 1.0])  # a placeholder; its weight is never read
            if part:
                self.fragments.append([part, 1.0])

    def close(self, bracket: str) -> None:
        round_ = bracket == ")"
        stack = self.round_open if round_ else self.square_open
        if stack:
            self.scale(stack.pop(), ROUND_BRACKET_MULTIPLIER if round_ else SQUARE_BRACKET_MULTIPLIER)
        else:
            self.add_text(bracket)  # a stray closing bracket is literal text

    def finish(self) -> list[Fragment]:
        for start in self.round_open:  # unclosed brackets reach to the end, as in A1111
            self.scale(start, ROUND_BRACKET_MULTIPLIER)
        for start in self.square_open:
            self.scale(start, SQUARE_BRACKET_MULTIPLIER)
        out: list[Fragment] = []
        for i, (text, weight) in enumerate(self.fragments):
            if i in self.breaks:
                out.append(BREAK)
            elif out and out[-1] is not BREAK and out[-1][1] == weight:
                out[-1] = (out[-1][0] + str(text), float(weight))
            else:
                out.append((str(text), float(weight)))
        return out or [("", 1.0)]


def _to_float(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:  # "1.2.3", "."
        return None
    return number if math.isfinite(number) else None


# --- chunks of tokens ------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """77 token ids (BOS, up to 75 tokens, EOS, padding) and the weight of each."""

    tokens: tuple[int, ...]
    weights: tuple[float, ...]


def tokenize_chunks(tokenizer: Any, text: str, *, comma_backtrack: int = COMMA_BACKTRACK) -> list[Chunk]:
    """The 77-token chunks of one (already scheduled) prompt; also what a token counter needs."""
    fragments = [f for f in parse_attention(text) if is_break(f) or f[0]]
    texts = [f[0] for f in fragments if not is_break(f)]
    encoded = tokenizer(texts, truncation=False, add_special_tokens=False, verbose=False) if texts else None
    ids = iter(encoded["input_ids"] if encoded is not None else [])
    builder = _ChunkBuilder(tokenizer, comma_backtrack)
    for fragment in fragments:
        if is_break(fragment):
            builder.close()
        else:
            builder.add(_expand_embeddings(tokenizer, list(next(ids))), fragment[1])
    return builder.finish()


class _ChunkBuilder:
    def __init__(self, tokenizer: Any, comma_backtrack: int) -> None:
        self.bos = int(tokenizer.bos_token_id)
        self.eos = int(tokenizer.eos_token_id)
        self.pad = self.eos if tokenizer.pad_token_id is None else int(tokenizer.pad_token_id)
        comma = tokenizer.convert_tokens_to_ids(",</w>")
        self.comma = None if comma == tokenizer.unk_token_id else comma
        self.backtrack = comma_backtrack
        self.chunks: list[Chunk] = []
        self.tokens: list[int] = []
        self.weights: list[float] = []
        self.last_comma = -1

    def add(self, groups: list[list[int]], weight: float) -> None:
        for group in groups:  # a group is one token, or all vectors of one embedding (kept together)
            if len(group) > 1 and len(self.tokens) + len(group) > CHUNK_TOKENS:
                self.close()
            for token in group:
                self._add_token(token, weight)

    def _add_token(self, token: int, weight: float) -> None:
        if token == self.comma:
            self.last_comma = len(self.tokens)
        elif len(self.tokens) == CHUNK_TOKENS and self.last_comma >= 0:
            if CHUNK_TOKENS - self.last_comma <= self.backtrack:  # move the words after the comma along
                cut = self.last_comma + 1
                tail = self.tokens[cut:], self.weights[cut:]
                self.tokens, self.weights = self.tokens[:cut], self.weights[:cut]
                self.close()
                self.tokens, self.weights = list(tail[0]), list(tail[1])
        if len(self.tokens) == CHUNK_TOKENS:
            self.close()
        self.tokens.append(token)
        self.weights.append(weight)

    def close(self) -> None:
        padding = CHUNK_TOKENS - len(self.tokens)
        tokens = [self.bos, *self.tokens, self.eos, *[self.pad] * padding]
        self.chunks.append(Chunk(tuple(tokens), (1.0, *self.weights, *[1.0] * (padding + 1))))
        self.tokens, self.weights, self.last_comma = [], [], -1

    def finish(self) -> list[Chunk]:
        if self.tokens or not self.chunks:
            self.close()
        return self.chunks


def _expand_embeddings(tokenizer: Any, ids: list[int]) -> list[list[int]]:
    """Group ids; a textual-inversion token ``name`` gains its ``name_1``, ``name_2``... ids."""
    added: dict[str, int] = tokenizer.added_tokens_encoder
    if not added:
        return [[i] for i in ids]
    names = {v: k for k, v in added.items()}
    groups = []
    for token in ids:
        group = [token]
        name = names.get(token)
        while name is not None and f"{name}_{len(group)}" in added:
            group.append(added[f"{name}_{len(group)}"])
        groups.append(group)
    return groups
