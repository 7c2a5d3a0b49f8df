"""SD 1.5 throughput on a CUDA GPU: the runtime's engine next to bare diffusers.

Needs an NVIDIA GPU with CUDA torch; on any other machine it says so and
exits with 0.  Nothing is downloaded: the model is SD 1.5's architecture at
its real sizes with random weights, built from configs in code.

* UNet: diffusers' ``UNet2DConditionModel`` defaults (block_out_channels
  320/640/1280/1280, 2 layers per block, attention_head_dim 8) with
  cross_attention_dim 768 and sample_size 64: 859,520,964 parameters;
* VAE: ``AutoencoderKL`` 128/256/512/512, 4 latent channels: 83,653,863;
* text encoder: CLIP ViT-L/14's text tower (width 768, 12 layers, 12 heads,
  MLP 3072, quick_gelu, vocab 49408): 123,060,480; the tokenizer is the demo
  model's tiny byte-level BPE (``runtime.demo.write_tokenizer_sources``),
  so token ids stay below 518 but every layer computes at full width.

Random weights run the same kernels as real ones (the activations stay well
inside fp16's range), so the speed is SD 1.5's; the pictures are noise.
Both paths generate 512x512, 20 steps, Euler a, CFG 7, batch 1, fp16:

* bare: ``StableDiffusionPipeline`` on the GPU, diffusers' defaults (SDPA);
* engine: the same components given to :class:`runtime.engine.Engine` as a
  ``LoadedModel`` through ``Engine._install`` (so its placement applies:
  channels-last UNet, xformers when it works with ``--attention auto``,
  VAE slicing), then ``Engine.generate`` with ``save_images=False``.

Printed per path: the steady sampling rate in it/s (steps between the first
and the last step callback, with a CUDA sync at each, as a tqdm bar shows
it), the end-to-end rate (steps / whole call: text encoder and VAE decode
included, as fal's benchmark counts), seconds per image, and peak VRAM.

Published anchors (SD 1.5, 512x512, batch 1, CFG, fp16; from
/work/shared/knowledge/perf-anchors.md section 3):

* H100: vanilla PyTorch/diffusers 54.5 it/s, torch.compile 66.0, stable-fast
  104.6 (stable-fast README);
* H100 PCIe, 50 steps end to end: PyTorch 2.0 1.44 s, compile 1.11 s,
  TensorRT 0.75 s (alexeigor/sd-benchmarks);
* for a desktop card: RTX 4090 diffusers SDPA 40.5 it/s (diffusers docs).

    python benchmarks/runtime_gpu.py [--runs 10] [--steps 20] [--attention auto|sdpa|xformers] [--vram none]
    python benchmarks/runtime_gpu.py --sizes    # no GPU needed: build on the meta device, print parameter counts
    python benchmarks/runtime_gpu.py --smoke    # no GPU needed: the whole procedure on the CPU, tiny size, to test it
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script: the repository root (not this folder) is where the packages are.
sys.path.insert(0, str(ROOT))

SIZE, CFG, SEED = 512, 7.0, 1
DEVICE = "cuda"  # --smoke: "cpu"
PROMPT = "a photograph of an astronaut riding a horse"
NEGATIVE = "blurry, lowres"
CLIP_VOCAB = 49408  # CLIP ViT-L/14's vocabulary: the embedding table at its real size
PUBLISHED = {"UNet": 859_520_964, "VAE": 83_653_863, "CLIP text": 123_060_480}
ANCHORS = [
    ("H100", "vanilla PyTorch/diffusers 54.5 it/s, torch.compile 66.0, stable-fast 104.6", "stable-fast README"),
    ("H100 PCIe", "50 steps end to end: PyTorch 2.0 1.44 s, compile 1.11 s, TensorRT 0.75 s", "alexeigor/sd-benchmarks"),
    ("RTX 4090", "diffusers SDPA 40.5 it/s (torch 2.0)", "diffusers docs, optimization/torch2.0"),
]  # fmt: skip
H100_VANILLA = 54.5


def print_anchors() -> None:
    print("Published anchors, SD 1.5 512x512, batch 1, CFG, fp16 (perf-anchors.md section 3):")
    for gpu, figures, source in ANCHORS:
        print(f"  {gpu:10s} {figures}  [{source}]")


# --- the model ---------------------------------------------------------------------------------------------------


def build_components(tokenizer_dir: Path) -> dict[str, Any]:
    """SD 1.5's UNet, VAE and CLIP text encoder at real sizes, random weights, on the current default device."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from runtime.demo import write_tokenizer_sources

    write_tokenizer_sources(tokenizer_dir)
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir), model_max_length=77)
    vocab = tokenizer.get_vocab()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=768,
            intermediate_size=3072,
            num_attention_heads=12,
            num_hidden_layers=12,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            projection_dim=768,
            vocab_size=max(CLIP_VOCAB, len(vocab)),
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        )
    )
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)  # the rest: SD 1.5's defaults
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        sample_size=512,
        scaling_factor=0.18215,
    )
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "unet": unet, "vae": vae}


def build_pipeline(tokenizer_dir: Path, dtype: Any, seed: int = 0) -> Any:
    """A StableDiffusionPipeline on ``DEVICE`` in ``dtype``; the same ``seed`` gives the same weights."""
    import torch
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    from runtime.demo import SCHEDULER_CONFIG

    torch.manual_seed(seed)
    with torch.device(DEVICE):  # initialise on the GPU: 1 B parameters in fp32 on the CPU would take seconds
        parts = build_components(tokenizer_dir)
    for name in ("text_encoder", "unet", "vae"):
        parts[name] = parts[name].to(dtype=dtype).eval()
    pipe = StableDiffusionPipeline(
        **parts,
        scheduler=PNDMScheduler(**SCHEDULER_CONFIG),  # SD 1.5's own; the sampler is chosen per call
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sizes() -> None:
    import torch

    with tempfile.TemporaryDirectory() as d, torch.device("meta"):
        parts = build_components(Path(d))
    counted = {
        "UNet": parts["unet"],
        "VAE": parts["vae"],
        "CLIP text": parts["text_encoder"],
    }
    for name, module in counted.items():
        n = sum(p.numel() for p in module.parameters())
        mark = "= published" if n == PUBLISHED[name] else f"!= published {PUBLISHED[name]:,}"
        print(f"{name:10s} {n:>13,} parameters  {mark}")


# --- timing ------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float  # the whole call
    first: float  # time of the first step's end
    last: float  # time of the last step's end
    steps: int


class StepClock:
    """Times of the step ends, with a CUDA sync so that they are the GPU's, not the launch queue's."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def tick(self) -> None:
        sync()
        self.marks.append(time.perf_counter())


def sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def measure(fn: Callable[[], Any], clock: StepClock, steps: int) -> Run:
    clock.marks.clear()
    sync()
    start = time.perf_counter()
    fn()
    sync()
    seconds = time.perf_counter() - start
    if len(clock.marks) < 2:
        raise RuntimeError(f"only {len(clock.marks)} step callbacks were seen")
    return Run(seconds, clock.marks[0] - start, clock.marks[-1] - start, steps)


def report(name: str, runs: list[Run], peak_mib: float) -> float:
    steady = statistics.median((r.steps - 1) / (r.last - r.first) for r in runs)
    total = statistics.median(r.seconds for r in runs)
    steps = runs[0].steps
    print(f"  {name:22s} {steady:6.2f} it/s sampling   {steps / total:6.2f} it/s end to end   "
          f"{total:6.3f} s/image   peak VRAM {f'{peak_mib:.0f} MiB' if peak_mib else '-'}")  # fmt: skip
    return steady


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10, help="timed images per path (after --warmup)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--attention", choices=("auto", "sdpa", "xformers"), default="auto", help="the engine's")
    ap.add_argument("--vram", choices=("none", "auto", "medvram", "lowvram"), default="none", help="the engine's")
    ap.add_argument("--sizes", action="store_true", help="only print the parameter counts (no GPU needed)")
    ap.add_argument("--smoke", action="store_true",
                    help="check this script without a GPU: the same procedure on the CPU, 64x64, 3 steps, 1 run "
                         "(the figures mean nothing)")  # fmt: skip
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    global DEVICE, SIZE
    if args.smoke:
        DEVICE, SIZE = "cpu", 64
        args.steps, args.runs, args.warmup = 3, 1, 1

    if args.sizes:
        sizes()
        return 0
    import torch
    from diffusers import EulerAncestralDiscreteScheduler
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # "modules that should be kept in float32: []" after .to(fp16)
    if DEVICE == "cuda" and not torch.cuda.is_available():
        print(f"This benchmark needs a CUDA GPU; torch {torch.__version__} sees none here, so nothing was measured.")
        print("(`python benchmarks/runtime_gpu.py --sizes` checks the model's sizes without one;")
        print(" `python benchmarks/generation.py` measures the engine's overhead on the CPU.)")
        print_anchors()
        return 0

    from bootstrap.layout import Bundle
    from runtime import device
    from runtime.checkpoints import Checkpoint, LoadedModel
    from runtime.engine import Engine, EngineSettings
    from runtime.request import GenerationRequest

    gpu = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "CPU (--smoke: the figures mean nothing)"
    print(f"{gpu}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
          f"SD 1.5 architecture with random weights, {SIZE}x{SIZE}, {args.steps} steps, Euler a, CFG {CFG:g}, batch 1")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="yijian-bench-gpu-") as d:
        tmp = Path(d)
        dtype = torch.float16 if DEVICE == "cuda" else torch.float32

        # Bare diffusers.
        bare_pipe = build_pipeline(tmp / "tok", dtype)
        bare_pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(bare_pipe.scheduler.config)
        bare_clock = StepClock()

        def on_step(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            bare_clock.tick()
            return kwargs

        def bare() -> Any:
            return bare_pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=args.steps, width=SIZE,
                             height=SIZE, guidance_scale=CFG, generator=torch.Generator(DEVICE).manual_seed(SEED),
                             callback_on_step_end=on_step).images[0]  # fmt: skip

        # The engine, over its own copy of the same weights.
        engine = Engine(Bundle(tmp / "bundle"), EngineSettings(vram=args.vram, attention=args.attention,
                                                               precision="fp16"))  # fmt: skip
        placement = device.resolve(engine.settings, "sd15")
        started = time.perf_counter()
        pipe = build_pipeline(tmp / "tok", placement.dtype)
        checkpoint = Checkpoint(Path("sd15-random-weights"), "demo", "sd15", False)
        engine._install(LoadedModel(checkpoint, pipe, "sd15", False, time.perf_counter() - started), placement)
        engine_clock = StepClock()
        step = engine.progress.step

        def timed_step(done: int) -> None:  # the engine reports every step here, from its step callback
            engine_clock.tick()
            step(done)

        engine.progress.step = timed_step  # type: ignore[method-assign]
        request = GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, steps=args.steps, width=SIZE,
                                    height=SIZE, cfg_scale=CFG, seed=SEED, sampler_name="Euler a",
                                    save_images=False)  # fmt: skip

        def ours() -> Any:
            return engine.generate(request).images[0]

        print(f"engine placement: {placement.reason}")
        results: dict[str, list[Run]] = {"bare": [], "engine": []}
        peaks: dict[str, float] = {"bare": 0.0, "engine": 0.0}
        paths = [("bare", bare, bare_clock), ("engine", ours, engine_clock)]
        for _ in range(args.warmup):
            for _, fn, clock in paths:
                measure(fn, clock, args.steps)
        vae_dtype = engine.model.pipe.vae.dtype if engine.model else None
        if vae_dtype != placement.dtype:
            print(f"note: the engine's VAE now runs in {vae_dtype} (it saw NaNs in half precision)")
        for i in range(args.runs):
            for name, fn, clock in paths if i % 2 == 0 else paths[::-1]:
                if DEVICE == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                results[name].append(measure(fn, clock, args.steps))
                if DEVICE == "cuda":
                    peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated() / 2**20)

        print(f"median of {args.runs} images per path (after {args.warmup} warm-ups), interleaved:")
        b = report("bare diffusers (SDPA)", results["bare"], peaks["bare"])
        e = report(f"Engine ({placement.attention})", results["engine"], peaks["engine"])
        print(f"  engine vs bare: {(e / b - 1) * 100:+.1f} % sampling it/s")
        print_anchors()
        if "H100" in gpu:
            print(f"  this H100: bare {b:.1f} it/s = {b / H100_VANILLA * 100:.0f} % of the published vanilla 54.5 "
                  f"(with {args.steps} steps instead of 50, and Euler a)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
