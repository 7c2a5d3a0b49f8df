"""The conditioning of one batch: a prompt pair per image, each possibly scheduled.

:mod:`runtime.prompts.conditioning` encodes one prompt pair A1111's way
(chunks, weights, BREAK, clip skip, prompt editing).  A batch can hold
different prompts (``{a|b}`` picks per image seed), so this module stacks
one schedule per image, pads them to one chunk count, and hands the
pipeline the per-image tensors, swapping them from the step callback when
an edit or an alternation says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from runtime.prompts.conditioning import CHUNK_TOKENS, ConditioningSchedule, PromptEncoder, StepConditioning

if TYPE_CHECKING:
    from runtime.checkpoints import LoadedModel


def _pad(embeds: torch.Tensor, chunks: int, empty: torch.Tensor) -> torch.Tensor:
    missing = chunks - int(embeds.shape[1]) // (CHUNK_TOKENS + 2)
    return torch.cat([embeds, *[empty] * missing], dim=1) if missing > 0 else embeds


class Conditioning:
    def __init__(self, encoder: PromptEncoder, positives: list[str], negatives: list[str], steps: int, clip_skip: int,
                 guided: bool) -> None:  # fmt: skip
        self.encoder, self.positives, self.negatives = encoder, positives, negatives
        self.steps, self.clip_skip, self.guided = steps, clip_skip, guided
        pairs = list(dict.fromkeys(zip(positives, negatives, strict=True)))
        self._schedules = {p: ConditioningSchedule(encoder, p[0], p[1], steps, clip_skip) for p in pairs}
        self._order = [self._schedules[p] for p in zip(positives, negatives, strict=True)]
        self.sdxl = encoder.sdxl
        self._empty = encoder.encode("", clip_skip).embeds
        self._current: list[StepConditioning] = [s.at(0) for s in self._order]

    @property
    def tensor_inputs(self) -> list[str]:
        return ["prompt_embeds", "add_text_embeds"] if self.sdxl else ["prompt_embeds"]

    @property
    def is_static(self) -> bool:
        return all(s.is_static for s in self._schedules.values())

    def for_steps(self, steps: int) -> Conditioning:
        """The same prompts over another number of steps (the hires pass)."""
        return Conditioning(self.encoder, self.positives, self.negatives, steps, self.clip_skip, self.guided)

    def _stack(self, parts: list[StepConditioning]) -> dict[str, torch.Tensor]:
        chunks = max(int(t.shape[1]) // (CHUNK_TOKENS + 2) for p in parts for t in (p.positive, p.negative))
        pos = torch.cat([_pad(p.positive, chunks, self._empty) for p in parts])
        neg = torch.cat([_pad(p.negative, chunks, self._empty) for p in parts])
        out = {"prompt_embeds": pos, "negative_prompt_embeds": neg}
        if self.sdxl:
            out["pooled_prompt_embeds"] = torch.cat([p.pooled for p in parts if p.pooled is not None])
            out["negative_pooled_prompt_embeds"] = torch.cat([p.negative_pooled for p in parts
                                                              if p.negative_pooled is not None])  # fmt: skip
        return out

    def kwargs(self, step: int) -> dict[str, torch.Tensor]:
        return self._stack([s.at(step) for s in self._order])

    def update_for_step(self, step: int, kwargs: dict[str, Any], order: int = 1) -> dict[str, Any]:
        """Called after loop index ``step - 1``: swap in the next step's embeddings if they change."""
        if self.is_static:
            return {}
        upcoming = [s.at(step // max(1, order)) for s in self._order]
        if all(a is b for a, b in zip(upcoming, self._current, strict=True)):
            return {}
        self._current = upcoming
        stacked = self._stack(upcoming)
        like = kwargs["prompt_embeds"]
        pos, neg = stacked["prompt_embeds"], stacked["negative_prompt_embeds"]
        new = torch.cat([neg, pos]) if self.guided else pos
        changes: dict[str, Any] = {"prompt_embeds": new.to(device=like.device, dtype=like.dtype)}
        if self.sdxl and "add_text_embeds" in kwargs:
            ppos, pneg = stacked["pooled_prompt_embeds"], stacked["negative_pooled_prompt_embeds"]
            pooled = torch.cat([pneg, ppos]) if self.guided else ppos
            changes["add_text_embeds"] = pooled.to(device=kwargs["add_text_embeds"].device,
                                                   dtype=kwargs["add_text_embeds"].dtype)  # fmt: skip
        return changes


def encode_batch(model: LoadedModel, positives: list[str], negatives: list[str], steps: int, clip_skip: int,
                 guided: bool) -> Conditioning:  # fmt: skip
    return Conditioning(PromptEncoder.from_pipeline(model.pipe), positives, negatives, steps, clip_skip, guided)
