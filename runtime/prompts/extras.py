"""The parts of a prompt that are not text for the encoder: network tags and random choices.

``<lora:name:weight>`` (and ``<lyco:...>``, ``<hypernet:...>``, any ``<kind:...>``) asks for an
extra network, as in A1111: the tag is removed from the text and handed to the engine, which
loads ``models/Lora/name.safetensors``.  The tag's arguments follow A1111's order
``<lora:name:te:unet>``: one weight sets both the text encoder and the UNet, a second one sets
the UNet alone; ``te=`` and ``unet=`` name them.  Only the tag is removed (no whitespace or
commas around it), so a prompt copied from a model page tokenizes as it does in A1111; a tag
with a bad weight is removed too, and reported.

``{a|b|c}`` picks one option at random (the Dynamic Prompts syntax found in many guides).  The
pick comes from ``random.Random(seed)``, so the image seed reproduces it, and the chosen texts
are returned for the PNG info.  Choices nest; only the chosen option's inner choices draw from
the generator.  ``{x}`` or ``{}`` without a pipe, and an unclosed ``{``, stay literal.

Escapes (``\\{``, ``\\|`` ...) are kept verbatim (a backslash does not protect a ``<tag>``,
as in A1111); :mod:`.attention` removes the
backslash last.  Call :func:`resolve_choices` before :func:`extract_networks`, so a choice can
pick a LoRA.  Pure Python, no torch.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

# A1111's extra-network tag (modules/extra_networks.py): every match is taken out of the text,
# whatever its kind and whether or not its arguments make sense.
_TAG = re.compile(r"<(\w+):([^>]+)>")


@dataclass(frozen=True)
class NetworkRef:
    """One ``<kind:name:...>`` tag: ``weight`` applies to the UNet, and to the text encoder too
    unless ``te_weight`` is set.  ``problem`` says why the tag cannot be used (a weight that is not
    a number, no name); such a tag is still removed from the prompt, as A1111 removes it."""

    kind: str  # lowercase: "lora", "lyco", "hypernet", ...
    name: str
    weight: float = 1.0
    te_weight: float | None = None
    problem: str = ""

    @property
    def text_encoder_weight(self) -> float:
        return self.weight if self.te_weight is None else self.te_weight


def extract_networks(text: str) -> tuple[str, list[NetworkRef]]:
    """Remove the extra-network tags from ``text``; return the rest and the tags in order.

    As in A1111 the tag alone goes (no whitespace or comma around it), and a tag goes even when
    its arguments are wrong; such a ref carries a ``problem`` for the engine to report.

    >>> extract_networks("a cat <lora:ink style:0.7>")
    ('a cat ', [NetworkRef(kind='lora', name='ink style', weight=0.7, te_weight=None, problem='')])
    """
    refs: list[NetworkRef] = []

    def replace(match: re.Match[str]) -> str:
        refs.append(_network_ref(match.group(1), match.group(2)))
        return ""

    return _TAG.sub(replace, text), refs


def _network_ref(kind: str, arguments: str) -> NetworkRef:
    """A1111's reading (ExtraNetworkParams, and the Lora extension's activate): the arguments split
    at ``:``; ``key=value`` ones are named; positional 2 is the text encoder's weight (default 1),
    positional 3 the UNet's (default: the text encoder's); ``te=`` and ``unet=`` win over them."""
    positional: list[str] = []
    named: dict[str, str] = {}
    for item in arguments.split(":"):
        parts = item.split("=")
        if len(parts) == 2:
            named[parts[0]] = parts[1]
        else:
            positional.append(item)
    name = positional[0].strip() if positional else ""
    te_text = named.get("te", positional[1] if len(positional) > 1 else "1")
    unet_text = named.get("unet", positional[2] if len(positional) > 2 else te_text)
    te, unet = _weight(te_text), _weight(unet_text)
    if not name:
        return NetworkRef(kind.lower(), name, problem="no name")
    if te is None or unet is None:
        bad = te_text if te is None else unet_text
        return NetworkRef(kind.lower(), name, problem=f"weight {bad.strip()!r} is not a number")
    return NetworkRef(kind.lower(), name, unet, None if te == unet else te)


def _weight(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# --- {a|b|c} -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Choice:
    options: tuple[_Seq, ...]


_Seq = tuple[str | _Choice, ...]


def resolve_choices(text: str, seed: int) -> tuple[str, list[str]]:
    """Replace each ``{a|b|...}`` with one option; return the text and the chosen options.

    The chosen options are listed in the order they were picked (an outer choice before the
    choices inside it), each as the text it became.

    >>> resolve_choices("a {red|blue} car", 1)
    ('a red car', ['red'])
    """
    rng = random.Random(seed)
    chosen: list[str] = []
    try:
        tree = _parse_braces(text, 0, inside=False)[0]
    except RecursionError:  # thousands of nested braces: left as they are
        return text, []
    return _resolve(tree, rng, chosen), chosen


def _resolve(seq: _Seq, rng: random.Random, chosen: list[str]) -> str:
    out: list[str] = []
    for node in seq:
        if isinstance(node, str):
            out.append(node)
            continue
        option = node.options[rng.randrange(len(node.options))]
        slot = len(chosen)
        chosen.append("")  # keeps the outer choice ahead of the inner ones
        chosen[slot] = _resolve(option, rng, chosen)
        out.append(chosen[slot])
    return "".join(out)


def _parse_braces(text: str, pos: int, *, inside: bool) -> tuple[_Seq, int]:
    """Nodes from ``pos`` to the end, or (``inside`` a brace) to a ``|`` or ``}`` of this level.

    Inside a brace a ``|`` within ``[...]`` or ``(...)`` belongs to them (``{[a|b]|c}`` has two
    options), so bracket depth is counted there.
    """
    out: list[str | _Choice] = []
    depth = 0
    start = pos
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            pos += 2
            continue
        if inside and depth == 0 and char in "|}":
            break
        if char in "[(":
            depth += 1
        elif char in "])":
            depth = max(0, depth - 1)
        elif char == "{":
            out.append(text[start:pos])
            node, pos = _parse_group(text, pos + 1)
            out += node
            start = pos
            continue
        pos += 1
    pos = min(pos, len(text))
    out.append(text[start:pos])
    return tuple(s for s in out if s != ""), pos


def _parse_group(text: str, pos: int) -> tuple[list[str | _Choice], int]:
    """After ``{``: a choice, or the literal text of a brace without options."""
    options: list[_Seq] = []
    while True:
        option, pos = _parse_braces(text, pos, inside=True)
        options.append(option)
        if pos >= len(text) or text[pos] == "}":
            break
        pos += 1  # past "|"
    closed = pos < len(text)
    if closed and len(options) > 1:
        return [_Choice(tuple(options))], pos + 1
    literal: list[str | _Choice] = ["{"]
    for i, option in enumerate(options):
        literal += ["|", *option] if i else list(option)
    return ([*literal, "}"], pos + 1) if closed else (literal, pos)


# --- both, in the right order --------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedPrompt:
    """A prompt after its random choices and network tags: ``text`` goes to the encoder."""

    text: str
    networks: list[NetworkRef]
    choices: list[str]


def prepare_prompt(text: str, seed: int) -> PreparedPrompt:
    """Resolve ``{a|b}`` choices (from ``seed``), then take out the network tags."""
    resolved, choices = resolve_choices(text, seed)
    clean, networks = extract_networks(resolved)
    return PreparedPrompt(clean, networks, choices)
