"""Prompts to text-encoder embeddings, the way A1111 builds them, for diffusers pipelines.

diffusers truncates a prompt at 77 tokens and ignores weights; prompts copied from A1111 rely
on both.  So the runtime tokenizes itself (:func:`~runtime.prompts.attention.tokenize_chunks`:
75-token chunks, ``BREAK``, comma backtracking) and hands the pipeline ``prompt_embeds``:

* the chunks are encoded in one batch and concatenated along the sequence axis, which the
  UNet's cross-attention accepts at any length;
* each token's hidden state is multiplied by its weight, then each chunk is rescaled to its
  unweighted mean (A1111's "Original" emphasis), so weights shift attention, not brightness.
  A1111 takes that mean over the whole batch of prompts; here it is per prompt, so an image
  does not depend on the other prompts of its batch;
* ``clip_skip`` counts as in A1111: 1 = the last layer, 2 = the penultimate one followed by the
  final layer norm (SD 1.x/2.x).  SDXL takes the penultimate layer of both encoders without the
  norm (``clip_skip`` n reads layer -(n+1)) and the pooled output of the second encoder's first
  chunk;
* every prompt and negative prompt of a batch, at every step, is padded to the same chunk count
  with encodings of "";
* an SDXL negative prompt that is empty at every step conditions with zeros (hidden states and
  pooled), not with the encoding of "": A1111's ``force_zero_negative_prompt``, and what diffusers
  does for SDXL checkpoints (``force_zeros_for_empty_prompt``).

:class:`ConditioningSchedule` adds prompt editing: it encodes each distinct scheduled text once
and answers :meth:`~ConditioningSchedule.at` for any step, all at one shape; :func:`swap_callback`
hands the pipeline the new embeddings when they change.  Multi-vector textual-inversion tokens
registered by ``pipe.load_textual_inversion`` are expanded by the chunker, as diffusers does in
``maybe_convert_prompt``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from runtime.prompts.attention import CHUNK_TOKENS, DEFAULT_EMPHASIS, EMPHASIS_MODES, tokenize_chunks
from runtime.prompts.composable import is_composable, split_and
from runtime.prompts.schedule import prompt_schedule, text_at

StepCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Encoding:
    """One text's embeddings: ``embeds`` is ``[1, 77 * chunks, width]``, ``pooled`` ``[1, dim]`` (SDXL)."""

    embeds: torch.Tensor
    pooled: torch.Tensor | None

    @property
    def chunks(self) -> int:
        return int(self.embeds.shape[1]) // (CHUNK_TOKENS + 2)


class PromptEncoder:
    """Encodes prompts with one pipeline's tokenizer(s) and text encoder(s), caching by text.

    The cache holds encodings made with the current weights: build a new encoder (cheap) or
    call :meth:`clear_cache` after a LoRA or an embedding changes the text encoder.
    """

    def __init__(
        self,
        tokenizers: Sequence[Any],
        text_encoders: Sequence[Any],
        *,
        sdxl: bool = False,
        cache_size: int = 32,
        emphasis: str = DEFAULT_EMPHASIS,
    ) -> None:
        if not tokenizers or len(tokenizers) != len(text_encoders):
            raise ValueError("PromptEncoder needs one tokenizer per text encoder")
        if emphasis not in EMPHASIS_MODES:
            raise ValueError(f"unknown emphasis {emphasis!r}; one of {', '.join(EMPHASIS_MODES)}")
        self.emphasis = emphasis
        self.tokenizers = list(tokenizers)
        self.text_encoders = list(text_encoders)
        self.sdxl = sdxl
        self._cache: OrderedDict[tuple[str, int], Encoding] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def from_pipeline(cls, pipe: Any, *, emphasis: str = DEFAULT_EMPHASIS) -> PromptEncoder:
        """For a StableDiffusion(XL) pipeline; an SDXL refiner (second encoder only) works too."""
        pairs = [(pipe.tokenizer, pipe.text_encoder)]
        sdxl = getattr(pipe, "text_encoder_2", None) is not None
        if sdxl:
            pairs.append((pipe.tokenizer_2, pipe.text_encoder_2))
        pairs = [(t, e) for t, e in pairs if t is not None and e is not None]
        return cls([t for t, _ in pairs], [e for _, e in pairs], sdxl=sdxl, emphasis=emphasis)

    def clear_cache(self) -> None:
        self._cache.clear()

    def encode(self, text: str, clip_skip: int = 1) -> Encoding:
        """The embeddings of one (already scheduled) prompt."""
        key = (text, clip_skip)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        encoding = self._encode(text, max(1, clip_skip))
        self._cache[key] = encoding
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return encoding

    @torch.no_grad()
    def _encode(self, text: str, clip_skip: int) -> Encoding:
        per_encoder = [tokenize_chunks(tokenizer, text, emphasis=self.emphasis) for tokenizer in self.tokenizers]
        count = max(len(chunks) for chunks in per_encoder)
        hidden: list[torch.Tensor] = []
        pooled: torch.Tensor | None = None
        for tokenizer, encoder, chunks in zip(self.tokenizers, self.text_encoders, per_encoder, strict=True):
            chunks = chunks + tokenize_chunks(tokenizer, "") * (count - len(chunks))
            ids = torch.tensor([c.tokens for c in chunks], dtype=torch.long, device=encoder.device)
            out = encoder(input_ids=ids, output_hidden_states=True)
            states = self._select_layer(encoder, out, clip_skip)
            weights = torch.tensor([c.weights for c in chunks], dtype=states.dtype, device=states.device)
            if self.emphasis in ("Original", "No norm"):
                states = _emphasize(states, weights, restore_mean=self.emphasis == "Original")
            hidden.append(states.reshape(1, -1, states.shape[-1]))
            if self.sdxl:  # the last encoder's pooled output, from the first chunk
                projected = getattr(out, "text_embeds", None)
                pooled = (projected if projected is not None else out.pooler_output)[:1]
        return Encoding(torch.cat(hidden, dim=-1), pooled)

    def _select_layer(self, encoder: Any, out: Any, clip_skip: int) -> torch.Tensor:
        layers: tuple[torch.Tensor, ...] = out.hidden_states
        if self.sdxl:
            return layers[-min(clip_skip + 1, len(layers))]
        if clip_skip == 1:
            return out.last_hidden_state  # type: ignore[no-any-return]
        norm = getattr(encoder, "final_layer_norm", None)  # transformers >= 5.6; before: text_model.final_layer_norm
        norm = norm if norm is not None else encoder.text_model.final_layer_norm
        return norm(layers[-min(clip_skip, len(layers))])  # type: ignore[no-any-return]


def _emphasize(states: torch.Tensor, weights: torch.Tensor, *, restore_mean: bool = True) -> torch.Tensor:
    """Multiply each token's state by its weight and (A1111's "Original") restore each chunk's mean."""
    if bool((weights == 1).all()):
        return states
    original = states.float().mean(dim=(1, 2), keepdim=True)
    weighted = states * weights.unsqueeze(-1)
    if not restore_mean:  # A1111's "No norm"
        return weighted
    new = weighted.float().mean(dim=(1, 2), keepdim=True)
    factor = torch.where(new == 0, torch.ones_like(new), original / new)
    return weighted * factor.to(states.dtype)


@dataclass(frozen=True)
class StepConditioning:
    """The embeddings of one step for a batch of ``B`` images; ``pooled`` ones only for SDXL."""

    positive: torch.Tensor  # [B, 77 * chunks, width]
    negative: torch.Tensor
    pooled: torch.Tensor | None = None  # [B, dim]
    negative_pooled: torch.Tensor | None = None

    def pipeline_kwargs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments for a diffusers ``StableDiffusion(XL)Pipeline.__call__``."""
        kwargs = {"prompt_embeds": self.positive, "negative_prompt_embeds": self.negative}
        if self.pooled is not None and self.negative_pooled is not None:
            kwargs |= {"pooled_prompt_embeds": self.pooled, "negative_pooled_prompt_embeds": self.negative_pooled}
        return kwargs


class ConditioningSchedule:
    """Every step's conditioning for a batch of prompts, each distinct text encoded once.

    ``prompt`` and ``negative`` are one text or one per image (a single negative serves every
    image).  Every step has the same shape: each encoding is padded with encodings of "" to the
    largest chunk count of the whole batch and schedule, positive and negative alike.

    A positive prompt with ``AND`` (:mod:`.composable`) gives the pipeline its first sub-prompt;
    :meth:`sub_prompts_at` holds the others for :func:`runtime.prompts.guidance.composable_guidance`.
    """

    def __init__(
        self,
        encoder: PromptEncoder,
        prompt: str | Sequence[str],
        negative: str | Sequence[str],
        steps: int,
        clip_skip: int = 1,
        *,
        first_pass_steps: int | None = None,
        old_scheduling: bool = False,
    ) -> None:
        self.encoder, self.clip_skip, self.steps = encoder, clip_skip, max(1, steps)
        self.first_pass_steps, self.old_scheduling = first_pass_steps, old_scheduling
        self.prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        negatives = [negative] if isinstance(negative, str) else list(negative)
        self.negatives = negatives * len(self.prompts) if len(negatives) == 1 else negatives
        if not self.prompts or len(self.negatives) != len(self.prompts):
            raise ValueError("ConditioningSchedule needs one negative prompt, or one per prompt")
        self.parts = [split_and(p) for p in self.prompts]
        self.composable = any(is_composable(parts) for parts in self.parts)
        self.first_weights = [parts[0][1] for parts in self.parts]
        self.positive_schedules = [self._schedule(parts[0][0]) for parts in self.parts]
        self.extra_schedules = [[(self._schedule(t), w) for t, w in parts[1:]] for parts in self.parts]
        self.negative_schedules = [self._schedule(n) for n in self.negatives]
        extra = [s for subs in self.extra_schedules for s, _ in subs]
        texts = {text for s in self.positive_schedules + self.negative_schedules + extra for _, text in s}
        encodings = {text: encoder.encode(text, clip_skip) for text in texts}
        chunks = max(e.chunks for e in encodings.values())
        empty = encoder.encode("", clip_skip).embeds
        self._embeds = {text: _pad(e.embeds, chunks, empty) for text, e in encodings.items()}
        self._pooled = {text: e.pooled for text, e in encodings.items()}
        self._zero_negative = [encoder.sdxl and all(text == "" for _, text in s) for s in self.negative_schedules]
        self._steps: dict[tuple[str, ...], StepConditioning] = {}
        self.current_step = 0  # the step the pipeline is at, kept by update_for_step

    def sub_prompts_at(self, step: int) -> list[list[tuple[torch.Tensor, torch.Tensor | None, float]]]:
        """Per image, the sub-prompts after the first at ``step``: (embeds ``[1, L, W]``, pooled, weight)."""
        return [
            [(self._embeds[text_at(s, step)], self._pooled[text_at(s, step)], weight) for s, weight in subs]
            for subs in self.extra_schedules
        ]

    def _schedule(self, text: str) -> list[tuple[int, str]]:
        return prompt_schedule(
            text, self.steps, first_pass_steps=self.first_pass_steps, old_scheduling=self.old_scheduling
        )

    def for_hires_pass(self, steps: int) -> ConditioningSchedule:
        """The same prompts for a hires pass of ``steps`` steps after this pass: A1111's timeline
        goes on from this pass (see :mod:`.schedule`); encodings come from the cache."""
        return ConditioningSchedule(self.encoder, self.prompts, self.negatives, steps, self.clip_skip,
                                    first_pass_steps=self.steps, old_scheduling=self.old_scheduling)  # fmt: skip

    @property
    def is_static(self) -> bool:
        """True when no step differs from the first (no callback needed)."""
        return all(len({text for _, text in s}) == 1 for s in self.positive_schedules + self.negative_schedules)

    @property
    def callback_tensor_inputs(self) -> list[str]:
        """What :func:`swap_callback` needs in ``callback_on_step_end_tensor_inputs``."""
        return ["prompt_embeds", "add_text_embeds"] if self.encoder.sdxl else ["prompt_embeds"]

    def at(self, step: int) -> StepConditioning:
        """The conditioning of the step with 0-based index ``step`` (the same object while unchanged)."""
        pos = tuple(text_at(s, step) for s in self.positive_schedules)
        neg = tuple(text_at(s, step) for s in self.negative_schedules)
        if pos + neg not in self._steps:
            negatives = [self._negative(t, zero) for t, zero in zip(neg, self._zero_negative, strict=True)]
            self._steps[pos + neg] = StepConditioning(
                torch.cat([self._embeds[t] for t in pos]),
                torch.cat([embeds for embeds, _ in negatives]),
                _cat_pooled([self._pooled[t] for t in pos]),
                _cat_pooled([pooled for _, pooled in negatives]),
            )
        return self._steps[pos + neg]

    def _negative(self, text: str, zero: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        embeds, pooled = self._embeds[text], self._pooled[text]
        if not zero:
            return embeds, pooled
        return torch.zeros_like(embeds), None if pooled is None else torch.zeros_like(pooled)

    def update_for_step(self, step: int, kwargs: dict[str, Any], *, guided: bool) -> dict[str, Any]:
        """In a step callback: put step ``step``'s embeddings into ``kwargs`` if they differ from step - 1's.

        ``guided`` is the pipeline's ``do_classifier_free_guidance``: the pipeline then holds
        ``cat([negative, positive])``.  Batch size (``num_images_per_prompt``), device and dtype
        follow the tensors already in ``kwargs``.
        """
        self.current_step = step
        upcoming = self.at(step)
        if step <= 0 or upcoming is self.at(step - 1):
            return kwargs
        kwargs["prompt_embeds"] = _batched(upcoming.positive, upcoming.negative, kwargs["prompt_embeds"], guided)
        if upcoming.pooled is not None and upcoming.negative_pooled is not None and "add_text_embeds" in kwargs:
            kwargs["add_text_embeds"] = _batched(
                upcoming.pooled, upcoming.negative_pooled, kwargs["add_text_embeds"], guided
            )
        return kwargs


def _pad(embeds: torch.Tensor, chunks: int, empty: torch.Tensor) -> torch.Tensor:
    missing = chunks - int(embeds.shape[1]) // (CHUNK_TOKENS + 2)
    return torch.cat([embeds, *[empty] * missing], dim=1) if missing > 0 else embeds


def _cat_pooled(pooled: list[torch.Tensor | None]) -> torch.Tensor | None:
    present = [p for p in pooled if p is not None]
    return torch.cat(present) if present and len(present) == len(pooled) else None


def _batched(positive: torch.Tensor, negative: torch.Tensor, like: torch.Tensor, guided: bool) -> torch.Tensor:
    """``positive`` (and ``negative`` first, if ``guided``) repeated to the batch size of ``like``."""
    repeat = int(like.shape[0]) // ((2 if guided else 1) * int(positive.shape[0]))
    parts = [negative, positive] if guided else [positive]
    return torch.cat([p.repeat_interleave(repeat, dim=0) for p in parts]).to(device=like.device, dtype=like.dtype)


def swap_callback(schedule: ConditioningSchedule, then: StepCallback | None = None) -> StepCallback:
    """A ``callback_on_step_end`` that gives the pipeline the next step's embeddings when they change.

    diffusers calls it after loop index ``i``.  A second-order scheduler (``scheduler.order`` 2:
    Heun, DPM2) runs each step's evaluations at consecutive indexes, so index ``i`` is step
    ``i // order``.  ``then`` (progress, cancel) is called afterwards with the updated tensors.
    """

    def callback(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        order = max(1, int(getattr(pipe.scheduler, "order", 1) or 1))
        if (i + 1) // order != i // order:
            guided = bool(getattr(pipe, "do_classifier_free_guidance", False))
            kwargs = schedule.update_for_step((i + 1) // order, kwargs, guided=guided)
        return then(pipe, i, t, kwargs) if then is not None else kwargs

    return callback
