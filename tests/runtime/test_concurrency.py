"""One lock for the engine, raced with threads; /progress and /interrupt answer while the worker pool is full.

A generation is held at its first UNet call (a hook waits on an event), so the races are decided by the
test, not by timing luck: a swap started then must wait until the generation has finished with the model it
began with.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.engine import Engine
from runtime.options import parse
from runtime.request import GenerationRequest
from runtime.server import build_app
from tests.support.tiny_sd import TinySD

SMALL = {"prompt": "a cat", "steps": 3, "width": 64, "height": 64, "seed": 9, "sampler_name": "Euler"}


class HeldGeneration:
    """Hold the next generation at its first UNet call until :meth:`release`; count the UNet calls."""

    def __init__(self, engine: Engine) -> None:
        assert engine.model is not None
        self.unet = engine.model.pipe.unet
        self.started, self.gate = threading.Event(), threading.Event()
        self.calls = 0
        self.safety = threading.Timer(30, self.gate.set)  # a failing test must not hang forever

    def _hook(self, *_: Any) -> None:
        self.calls += 1
        if self.calls == 1:
            self.started.set()
            self.gate.wait()

    def __enter__(self) -> HeldGeneration:
        self.handle = self.unet.register_forward_pre_hook(self._hook)
        self.safety.start()
        return self

    def release(self) -> None:
        self.gate.set()

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self.safety.cancel()
        self.handle.remove()


def in_thread(fn: Any, *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as e:
            box["error"] = e
        box["at"] = time.monotonic()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def race(engine: Engine, swap: Any, *args: Any) -> tuple[dict[str, Any], HeldGeneration]:
    """Hold a generation at its first step, start ``swap(*args)`` meanwhile: it must wait for the generation."""
    with HeldGeneration(engine) as held:
        gen, result = in_thread(engine.generate, GenerationRequest(**SMALL, save_images=False))
        assert held.started.wait(30)
        model = engine.model
        assert model is not None
        vae = model.pipe.vae
        swapping, swapped = in_thread(swap, *args)
        swapping.join(0.5)
        assert swapping.is_alive(), f"{swap.__name__} did not wait for the generation"
        assert engine.model is model and model.pipe.vae is vae  # nothing changed under the generation
        held.release()
        gen.join(60)
        swapping.join(120)
    assert "error" not in result and "error" not in swapped, (result, swapped)
    return result, held


def test_a_vae_swap_waits_for_the_running_generation(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime import passes

    assert engine.model is not None
    own = engine.model.pipe.vae
    other = copy.deepcopy(own)
    events: list[str] = []
    for name, vae in (("own", own), ("other", other)):
        real = vae.decode
        monkeypatch.setattr(vae, "decode", lambda *a, _r=real, _n=name, **k: (events.append(_n), _r(*a, **k))[1])
    monkeypatch.setattr(
        engine, "view", dataclasses.replace(engine.view, vaes={"other.safetensors": engine.bundle.root})
    )
    monkeypatch.setattr(passes, "load_vae", lambda *a: (events.append("swap"), other)[1])
    try:
        race(engine, engine.select_vae, "other.safetensors")
        assert events == ["own", "swap"]  # the generation decoded with the VAE it began with; the swap came after
        assert engine.model.pipe.vae is other and engine.vae_name == "other.safetensors"
    finally:
        engine.select_vae("Automatic")
    assert engine.model.pipe.vae is own


def test_a_model_swap_waits_for_the_running_generation(
    engine: Engine, tiny_sd: TinySD, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime import passes

    single = engine.bundle.models_dir / "Stable-diffusion" / "single"
    shutil.copytree(tiny_sd.diffusers_dir, single)
    engine.refresh()
    events: list[str] = []
    real_end, real_place = engine.progress.end, passes.place
    monkeypatch.setattr(engine.progress, "end", lambda: (events.append("generation ended"), real_end())[1])
    monkeypatch.setattr(passes, "place", lambda *a, **k: (events.append("swap"), real_place(*a, **k))[1])
    try:
        result, held = race(engine, engine.load, "single")
        assert events == ["generation ended", "swap"]
        assert result["value"].info["sd_model_name"] == "tiny"  # the model it began with, start to end
        assert held.calls == SMALL["steps"]  # every step on the old UNet
        assert engine.model is not None and engine.model.checkpoint.model_name == "single"
    finally:
        monkeypatch.undo()
        engine.load("tiny")
        shutil.rmtree(single)
        engine.refresh()


@pytest.fixture(scope="module")
def api(engine: Engine) -> Iterator[TestClient]:
    with TestClient(build_app(engine, parse(["--no-browser", "--nowebui"], {})), base_url="http://127.0.0.1:7860") as c:
        yield c


def test_progress_and_interrupt_answer_while_the_worker_pool_is_full(api: TestClient, engine: Engine) -> None:
    import anyio.to_thread

    threads = 4  # anyio's default is 40; fewer make the same point with fewer requests

    async def limit() -> Any:
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = threads
        return limiter

    limiter = api.portal.call(limit)  # type: ignore[union-attr]

    async def busy() -> int:
        return int(limiter.borrowed_tokens)

    statuses: list[int] = []
    with HeldGeneration(engine) as held:
        posts = [in_thread(lambda: statuses.append(api.post("/sdapi/v1/txt2img", json=SMALL).status_code))[0]
                 for _ in range(threads * 2 + 2)]  # fmt: skip
        assert held.started.wait(30)
        deadline = time.monotonic() + 20
        while api.portal.call(busy) < threads and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.05)
        assert api.portal.call(busy) == threads  # type: ignore[union-attr]  # every worker thread is taken

        started = time.monotonic()
        progress = api.get("/sdapi/v1/progress")
        progress_s = time.monotonic() - started
        started = time.monotonic()
        interrupt = api.post("/sdapi/v1/interrupt")
        interrupt_s = time.monotonic() - started
        assert progress.status_code == 200 and progress_s < 1.0, progress_s
        assert json.loads(progress.text)["state"]["job_count"] == 1
        assert interrupt.status_code == 200 and interrupt_s < 1.0, interrupt_s
        held.release()
        for t in posts:
            t.join(120)
    assert len(statuses) == threads * 2 + 2 and set(statuses) == {200}
