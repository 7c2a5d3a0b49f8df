"""What the generation runtime costs on top of diffusers, and how long it takes to start.

Prints, on the CPU with one thread (no GPU needed):

  (a) the engine's overhead over a bare diffusers call on the same tiny
      random SD 1.x model (``runtime.demo``): 64x64, 20 steps, Euler a, CFG 7.
      Both are warmed up, then run N times each, interleaved; the medians and
      the difference in per cent are printed, plus the bare call wrapped in
      ``torch.inference_mode()`` (the engine samples under it; diffusers'
      ``__call__`` only uses ``no_grad``, which costs more per op on a model
      this small).  The engine does more than the bare call (A1111 prompt
      parsing, its own conditioning, LoRA bookkeeping, the parameters text);
      on this model a step is tens of ms, on a real one 20-2000x more, so any
      fixed cost shrinks accordingly.  "same image" checks both did the same
      work (same weights, seed and sampler give identical pixels);
  (b) the time from process start to the ready line of
      ``python -m runtime --demo --no-browser`` (median of R starts), next to
      the time of ``python -c "import gradio, diffusers, torch"`` alone and of
      the same with ``from diffusers import StableDiffusionPipeline`` (diffusers
      imports its pipelines, and with them transformers, lazily): the
      difference to the latter is what building the model, the UI and the
      server adds.  Starts are timed warm: one untimed start first fills a
      bytecode cache in a temporary folder (PYTHONPYCACHEPREFIX), because this
      machine sets PYTHONDONTWRITEBYTECODE and uv installs without .pyc files,
      so every import would otherwise compile from source.

    python benchmarks/generation.py [--runs 15] [--starts 3]

No figure is checked against a goal: a shared 2-core VM is too noisy for that.
For it/s on a real-size model see ``benchmarks/runtime_gpu.py`` (needs CUDA).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script: the repository root (not this folder) is where the packages are.
sys.path.insert(0, str(ROOT))

from benchmarks.timing import median_wall  # noqa: E402

PROMPT = "a cat sitting on a sofa, best quality"  # no A1111 emphasis: bare diffusers would read it as text
NEGATIVE = "blurry, lowres"
STEPS, SIZE, CFG, SEED = 20, 64, 7.0, 1
READY = "Running on local URL:"
# The imports alone, for comparison.  diffusers loads its pipelines lazily: the second line adds what the runtime
# really imports at start (StableDiffusionPipeline pulls in transformers).
IMPORTS = ("import gradio, diffusers, torch", "import gradio, torch; from diffusers import StableDiffusionPipeline")


def child_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Time warm starts, as a user's second start is: bytecode is cached (in tmp, so the venv is not touched) even
    # where PYTHONDONTWRITEBYTECODE is set and the environment was installed without .pyc files (uv's default).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        PYTHONPYCACHEPREFIX=str(tmp / "pycache"),
        PYTHONPATH=str(ROOT),
        OMP_NUM_THREADS="1",
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        PYTHONUNBUFFERED="1",
        GRADIO_TEMP_DIR=str(tmp / "gradio"),
        HF_HOME=str(tmp / "hf"),
    )
    return env


# --- (a) engine vs bare diffusers --------------------------------------------------------------------------------


def engine_overhead(runs: int, tmp: Path) -> None:
    import numpy as np
    import torch
    from diffusers import EulerAncestralDiscreteScheduler

    from bootstrap.layout import Bundle
    from runtime.demo import build_demo_pipeline
    from runtime.engine import Engine
    from runtime.request import GenerationRequest

    torch.set_num_threads(1)
    pipe = build_demo_pipeline()
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)

    engine = Engine(Bundle(tmp / "bundle"))
    engine.load_demo()  # the same weights: build_demo_pipeline(seed=0)
    request = GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, steps=STEPS, width=SIZE, height=SIZE,
                                cfg_scale=CFG, seed=SEED, sampler_name="Euler a", save_images=False)  # fmt: skip

    def bare() -> Any:
        return pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS, width=SIZE, height=SIZE,
                    guidance_scale=CFG, generator=torch.Generator("cpu").manual_seed(SEED)).images[0]  # fmt: skip

    def bare_inference_mode() -> Any:  # the engine samples under inference_mode; diffusers' __call__ under no_grad
        with torch.inference_mode():
            return bare()

    def ours() -> Any:
        return engine.generate(request).images[0]

    def timed(fn: Any) -> tuple[float, Any]:
        start = time.perf_counter()
        out = fn()
        return time.perf_counter() - start, out

    kinds = [("bare", bare), ("engine", ours), ("bare_im", bare_inference_mode)]
    for _ in range(2):  # warm-up: first calls allocate, fill caches, import lazily
        for _, fn in kinds:
            fn()
    times: dict[str, list[float]] = {name: [] for name, _ in kinds}
    images: dict[str, Any] = {}
    for i in range(runs):
        for name, fn in kinds[i % 3 :] + kinds[: i % 3]:  # rotate who goes first
            seconds, images[name] = timed(fn)
            times[name].append(seconds)

    b, e, im = (statistics.median(times[k]) for k in ("bare", "engine", "bare_im"))
    diff = np.abs(np.asarray(images["bare"], np.int16) - np.asarray(images["engine"], np.int16)).max()
    print(f"(a) engine vs bare diffusers: tiny SD 1.x, {SIZE}x{SIZE}, {STEPS} steps, Euler a, CFG {CFG:g}, "
          f"1 thread, median of {runs} each (interleaved, after 2 warm-ups)")  # fmt: skip
    print(f"    bare diffusers pipe()      {b * 1000:8.1f} ms   (min {min(times['bare']) * 1000:.1f})")
    print(f"    Engine.generate()          {e * 1000:8.1f} ms   (min {min(times['engine']) * 1000:.1f})")
    print(f"    overhead                   {(e - b) * 1000:+8.1f} ms   ({(e / b - 1) * 100:+.1f} %)")
    bmin, emin = min(times["bare"]), min(times["engine"])
    print(f"    overhead, best runs        {(emin - bmin) * 1000:+8.1f} ms   ({(emin / bmin - 1) * 100:+.1f} %)"
          "   (best against best: another view when other work shares the CPU)")  # fmt: skip
    print(f"    bare, in inference_mode    {im * 1000:8.1f} ms   (engine vs this: {(e / im - 1) * 100:+.1f} %)")
    print(f"    per step (bare)            {b / STEPS * 1000:8.2f} ms")
    print(f"    same image: {'yes' if diff == 0 else f'no (max pixel difference {diff})'}")


# --- (b) start to ready ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_to_ready(env: dict[str, str], root: Path, timeout: float = 300.0) -> float:
    """Seconds from spawning ``python -m runtime --demo`` to its ready line; the process is stopped after."""
    argv = [sys.executable, "-m", "runtime", "--demo", "--no-browser", "--port", str(free_port()), "--root", str(root)]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(READY):
                return time.perf_counter() - start
            if time.perf_counter() - start > timeout:
                break
        raise RuntimeError(f"no ready line (exit code {proc.poll()})")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def startup(starts: int, tmp: Path) -> None:
    env = child_env(tmp)
    cold = start_to_ready(env, tmp / "start-cold")  # untimed: fills the bytecode cache
    ready = [start_to_ready(env, tmp / f"start-{i}") for i in range(starts)]
    r = statistics.median(ready)
    rows = [("python -m runtime --demo --no-browser", r)]
    for code in IMPORTS:
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)  # its own .pyc, too
        rows.append((f'python -c "{code}"', median_wall([sys.executable, "-c", code], env, starts)))
    rows.append(("python -c pass", median_wall([sys.executable, "-c", "pass"], env, starts)))
    rows += [(f"runtime beyond {label[len('python -c ') :]}", r - seconds) for label, seconds in rows[1:-1]]
    width = max(len(label) for label, _ in rows)
    print(f"(b) start to ready line, median of {starts} each, warm bytecode cache "
          f"(the first start, which compiled it, took {cold:.2f} s)")  # fmt: skip
    for label, seconds in rows:
        extra = f"   (all: {', '.join(f'{t:.2f}' for t in ready)})" if label.startswith("python -m") else ""
        sign = "+" if label.startswith("runtime beyond") else ""
        print(f"    {label:{width}s} {seconds:{sign}6.2f} s{extra}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15, help="timed generations of each kind (a)")
    ap.add_argument("--starts", type=int, default=3, help="runtime starts and import runs (b)")
    ap.add_argument("--skip-start", action="store_true", help="only (a)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.2f} at start")
    with tempfile.TemporaryDirectory(prefix="yijian-bench-runtime-") as d:
        tmp = Path(d)
        engine_overhead(args.runs, tmp)
        if not args.skip_start:
            startup(args.starts, tmp)
    if hasattr(os, "getloadavg"):
        print(f"load average {os.getloadavg()[0]:.2f} at the end (2 and more on 2 CPUs: treat the figures as rough)")


if __name__ == "__main__":
    main()
