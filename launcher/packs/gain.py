"""What updating the NVIDIA driver would gain, in Chinese and English, said without pushing.

The resolver finds the packs that only the driver keeps out and that would rank above its choice, oldest driver
first, each better than the one before (:func:`launcher.packs.resolver.choose`).  This module words them: per step
the driver it needs, the pack, its torch and CUDA, and what changes on the main GPU (xformers that now runs, native
kernels instead of PTX JIT, the GPU instead of the CPU); then that the current choice works as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bootstrap.i18n import Text
from launcher.hardware.nvidia import Gpu
from launcher.packs.catalog import Pack


@dataclass(frozen=True)
class GainStep:
    """One driver update and the pack it would bring."""

    driver: str  # the pack's minimum driver on this OS, as shown: "580", "525.60.13"
    pack: Pack
    gains: tuple[Text, ...]  # what changes on the main GPU besides torch and CUDA

    def text(self, lang: str) -> str:
        p, cuda = self.pack, ".".join(map(str, self.pack.cuda_version or ()))
        parts = [f"torch {p.torch.split('+')[0]} / CUDA {cuda}", *(g.text(lang) for g in self.gains)]
        if lang == "zh":
            return f"驱动 ≥ {self.driver} 可以用 {p.id}：" + "，".join(parts)
        return f"with driver ≥ {self.driver} you would get {p.id}: " + ", ".join(parts)

    def to_dict(self, lang: str) -> dict[str, Any]:
        return {"driver": self.driver, "pack": self.pack.id, "torch": self.pack.torch,
                "cuda": ".".join(map(str, self.pack.cuda_version or ())) or None,
                "gains": [g.text(lang) for g in self.gains]}  # fmt: skip


def shown_driver(version: str) -> str:
    """``"580.0"`` (any R580 driver) → ``"580"``; other versions as they are."""
    return version[: -len(".0")] if version.count(".") == 1 and version.endswith(".0") else version


def _xformers_gain(step: Pack, current: Pack, gpu: Gpu, os_name: str) -> Text | None:
    assert gpu.capability is not None
    xf = step.xformers_for(os_name)
    new, old = step.xformers_coverage(gpu.capability, os_name), current.xformers_coverage(gpu.capability, os_name)
    if not xf or new == "none":
        return None
    proof = (
        Text("（需通过安装后的自检）", " (if it passes the build's self-check)")
        if "xformers" in step.optional
        else Text("", "")
    )
    if old == "none":
        return Text(f"xformers {xf} 能在 {gpu.sm} 上运行{proof.zh}", f"xformers {xf} running on {gpu.sm}{proof.en}")
    if new == "sass" and old == "ptx":
        return Text(
            f"xformers {xf} 含 {gpu.sm} 的原生内核（不再需要 PTX 即时编译）{proof.zh}",
            f"xformers {xf} with native {gpu.sm} kernels (no PTX JIT){proof.en}",
        )
    return None


def step_gains(step: Pack, current: Pack, gpu: Gpu, os_name: str) -> GainStep:
    """What ``step`` would bring over ``current`` on ``gpu``."""
    gains: list[Text] = []
    if not current.uses_gpu:
        gains.append(
            Text(f"在 {gpu.short_name} 上生成，而不是 CPU", f"generation on the {gpu.short_name} instead of the CPU")
        )
    elif gpu.capability is not None:
        if step.torch_coverage(gpu.capability) == "sass" and current.torch_coverage(gpu.capability) == "ptx":
            gains.append(Text(f"torch 含 {gpu.sm} 的原生内核", f"torch with native {gpu.sm} kernels"))
        xformers = _xformers_gain(step, current, gpu, os_name)
        if xformers is not None:
            gains.append(xformers)
    return GainStep(shown_driver(step.min_driver(os_name)), step, tuple(gains))


def gain_advice(steps: list[GainStep], current: Pack, driver: str | None) -> Text:
    """The whole advice: every step, then that the choice stands."""
    have = driver or "?"
    if current.uses_gpu:
        tail = Text(
            f"现在的 {current.id} 也能正常使用，是否更新驱动由你决定。",
            f"The current choice, {current.id}, works as it is; whether to update is up to you.",
        )
    else:
        tail = Text("在那之前使用 CPU，能用但很慢。", "Until then the CPU is used: it works, slowly.")
    return Text(
        f"显卡驱动现在是 {have}。" + "；".join(s.text("zh") for s in steps) + "。" + tail.zh,
        f"The driver is {have}: " + "; ".join(s.text("en") for s in steps) + ". " + tail.en,
    )
