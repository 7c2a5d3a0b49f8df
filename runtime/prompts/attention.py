"""A1111 attention syntax: which parts of a prompt weigh more or less.

Users paste prompts written for AUTOMATIC1111's web UI, so the syntax is A1111's:
``(x)`` raises the weight of ``x`` by one step, ``[x]`` lowers it by one step,
``(x:1.3)`` sets the factor explicitly, brackets nest and their factors multiply,
``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are literal characters (a backslash before
anything else is dropped, as A1111 drops it), and ``BREAK`` (uppercase, as its own
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

# One bracket level multiplies by this factor: (x) -> x * 1.1, ((x)) -> 1.21, [x] -> 1 / 1.1, as in
# A1111 1.10 (modules/prompt_parser.py, parse_prompt_attention), whose users tuned their prompts on it.
ROUND_BRACKET_MULTIPLIER: Final = 1.1
SQUARE_BRACKET_MULTIPLIER: Final = 1 / ROUND_BRACKET_MULTIPLIER

# A1111's "Emphasis" setting (modules/sd_emphasis.py): how weights act on the text encoder's output.
# "None": brackets are plain text; "Ignore": brackets are read but weights do nothing; "Original":
# weights multiply the hidden states, then the mean is restored; "No norm": multiply only.
EMPHASIS_MODES: Final = ("None", "Ignore", "Original", "No norm")
DEFAULT_EMPHASIS: Final = "Original"

CHUNK_TOKENS: Final = 75  # per chunk, without BOS and EOS
COMMA_BACKTRACK: Final = 20  # A1111's default "comma padding backtrack"

Fragment = tuple[str, float]

# ``BREAK`` in the parse result: compare with ``is`` (or use :func:`is_break`).  As in A1111, only a
# BREAK whose weight is still exactly -1 after the brackets around it ends a chunk: one inside
# ``(a BREAK b)`` becomes the word "BREAK" with weight -1.1, which is what A1111 feeds its encoder.
BREAK: Final[Fragment] = ("BREAK", -1.0)

_BREAK_WORD = re.compile(r"\s*\bBREAK\b\s*", re.DOTALL)
# A1111's tokens, in its order: the escapes \( \) \[ \] \\ (the backslash goes, the character
# stays), a lone backslash (dropped), an opening bracket, an explicit weight closing a round
# bracket, a closing bracket, a run of other text, a lone colon.
_TOKEN = re.compile(
    r"""
    (?P<escape>\\[()\[\]\\]|\\)
  | (?P<open>[(\[])
  | :\s*(?P<weight>[+-]?[.\d]+)\s*\)
  | (?P<close>[)\]])
  | (?P<text>[^\\()\[\]:]+|:)
    """,
    re.VERBOSE | re.DOTALL,
)


def is_break(fragment: Fragment) -> bool:
    """Whether ``fragment`` is the :data:`BREAK` marker."""
    return fragment is BREAK


def parse_attention(text: str, emphasis: str = DEFAULT_EMPHASIS) -> list[Fragment]:
    """Split ``text`` into ``(text, weight)`` fragments, with :data:`BREAK` markers between chunks.

    A1111's algorithm: adjacent fragments of equal weight are merged; the result is never empty
    (``""`` gives ``[("", 1.0)]``).  Never raises: a weight that is not a number (``(a:1.2.3)``,
    where A1111 stops with an error) is kept as literal text.  ``emphasis`` "None" reads the
    whole text as one plain fragment (A1111 then parses nothing, BREAK included); "Ignore"
    parses it and sets every weight to 1.

    >>> parse_attention("a (b) [c] (d:1.5)")
    [('a ', 1.0), ('b', 1.1), (' ', 1.0), ('c', 0.9090909090909091), (' ', 1.0), ('d', 1.5)]
    """
    if emphasis == "None":
        return [(text, 1.0)]
    parser = _Parser()
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if match.group("escape"):
            parser.fragments.append([token[1:], 1.0])
        elif match.group("open"):
            (parser.round_open if token == "(" else parser.square_open).append(len(parser.fragments))
        elif match.group("weight") is not None and parser.round_open:
            factor = _to_float(match.group("weight"))
            if factor is None:  # "(x:1.2.3)": A1111 stops with a ValueError; here the text stays, bracket closed
                parser.add_text(token[:-1])
                parser.scale(parser.round_open.pop(), ROUND_BRACKET_MULTIPLIER)
            else:
                parser.scale(parser.round_open.pop(), factor)
        elif match.group("close") and (parser.round_open if token == ")" else parser.square_open):
            round_ = token == ")"
            stack = parser.round_open if round_ else parser.square_open
            parser.scale(stack.pop(), ROUND_BRACKET_MULTIPLIER if round_ else SQUARE_BRACKET_MULTIPLIER)
        else:  # text, or a stray closing bracket or weight: literal text
            parser.add_text(token)
    fragments = parser.finish()
    if emphasis == "Ignore":
        return _merge([f if is_break(f) else (f[0], 1.0) for f in fragments])
    return fragments


class _Parser:
    """The state of one :func:`parse_attention` call."""

    def __init__(self) -> None:
        self.fragments: list[list[str | float]] = []  # [text, weight] pairs, scaled as brackets close
        self.round_open: list[int] = []  # where each open bracket's fragments start
        self.square_open: list[int] = []

    def scale(self, start: int, factor: float) -> None:
        for item in self.fragments[start:]:
            item[1] = float(item[1]) * factor

    def add_text(self, piece: str) -> None:
        for i, part in enumerate(_BREAK_WORD.split(piece)):
            if i:
                self.fragments.append(["BREAK", -1.0])
            self.fragments.append([part, 1.0])

    def finish(self) -> list[Fragment]:
        for start in self.round_open:  # unclosed brackets reach to the end, as in A1111
            self.scale(start, ROUND_BRACKET_MULTIPLIER)
        for start in self.square_open:
            self.scale(start, SQUARE_BRACKET_MULTIPLIER)
        return _merge([(str(text), float(weight)) for text, weight in self.fragments])


def _merge(fragments: list[Fragment]) -> list[Fragment]:
    """A1111's last pass: runs of equal weight become one fragment; a BREAK left at -1 is the marker."""
    out: list[Fragment] = []
    for text, weight in fragments:
        if out and out[-1][1] == weight:
            out[-1] = (out[-1][0] + text, weight)
        else:
            out.append((text, weight))
    return [BREAK if f == BREAK else f for f in out] or [("", 1.0)]


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


def tokenize_chunks(
    tokenizer: Any, text: str, *, comma_backtrack: int = COMMA_BACKTRACK, emphasis: str = DEFAULT_EMPHASIS
) -> list[Chunk]:
    """The 77-token chunks of one (already scheduled) prompt; also what a token counter needs."""
    fragments = [f for f in parse_attention(text, emphasis) if is_break(f) or f[0]]
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
