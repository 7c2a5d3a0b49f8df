"""``AND``: composable diffusion, as A1111 reads it (modules/prompt_parser.py, get_multicond_prompt_list).

``a cat AND a dog :0.5`` splits the positive prompt at each ``AND`` (uppercase, a word of its
own) into sub-prompts, each with an optional ``:weight`` at its end (default 1).  Every sub-prompt
is scheduled and encoded on its own, the UNet runs once for each, and the guidance step combines
them as A1111's denoiser does: ``uncond + scale * sum(weight_i * (cond_i - uncond))``.  A prompt
without ``AND`` and without a trailing weight is one sub-prompt of weight 1, the ordinary case.
Negative prompts are not split (A1111 encodes them whole).  Pure Python, no torch.
"""

from __future__ import annotations

import re

_AND = re.compile(r"\bAND\b")
_WEIGHT = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")


def split_and(prompt: str) -> list[tuple[str, float]]:
    """The sub-prompts of ``prompt`` with their weights.

    >>> split_and("a cat AND a dog :0.5")
    [('a cat', 1.0), (' a dog', 0.5)]
    """
    parts: list[tuple[str, float]] = []
    for piece in _AND.split(prompt):
        match = _WEIGHT.search(piece)
        if match is None:
            parts.append((piece, 1.0))
            continue
        text, weight = match.groups()
        parts.append((text, float(weight) if weight is not None else 1.0))
    return parts


def is_composable(parts: list[tuple[str, float]]) -> bool:
    """True when the guidance step must combine sub-prompts (more than one, or a weight other than 1)."""
    return len(parts) > 1 or parts[0][1] != 1.0
