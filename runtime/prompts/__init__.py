"""Prompt syntax as A1111 users write it, and its conversion into text-encoder embeddings.

A prompt goes through, in order: :func:`prepare_prompt` (``{a|b}`` random choices from the
seed, then ``<lora:name:w>`` tags out), :func:`prompt_schedule` (``[a:b:when]`` editing and
``[a|b]`` alternation: one text per range of steps), then :func:`parse_attention` (weights,
escapes, ``BREAK``) and :func:`tokenize_chunks` (75-token chunks).  These are pure Python.  The torch half, turning scheduled texts into
embeddings for a diffusers pipeline, is :mod:`runtime.prompts.conditioning`; it is not
imported here, so that importing this package never loads torch.
"""

from __future__ import annotations

from runtime.prompts.attention import (
    BREAK,
    CHUNK_TOKENS,
    ROUND_BRACKET_MULTIPLIER,
    SQUARE_BRACKET_MULTIPLIER,
    Chunk,
    Fragment,
    is_break,
    parse_attention,
    tokenize_chunks,
)
from runtime.prompts.extras import NetworkRef, PreparedPrompt, extract_networks, prepare_prompt, resolve_choices
from runtime.prompts.schedule import prompt_schedule, text_at

__all__ = [
    "BREAK",
    "CHUNK_TOKENS",
    "ROUND_BRACKET_MULTIPLIER",
    "SQUARE_BRACKET_MULTIPLIER",
    "Chunk",
    "Fragment",
    "NetworkRef",
    "PreparedPrompt",
    "extract_networks",
    "is_break",
    "parse_attention",
    "prepare_prompt",
    "prompt_schedule",
    "resolve_choices",
    "text_at",
    "tokenize_chunks",
]
