"""Choosing the environment pack for a machine, and saying why in Chinese and English.

The rules are few; the facts they use are in the pack files.  A pack *fits* when

* its OS list has this OS, and its Python is available (when the caller knows which are);
* for a CUDA pack: there is a working NVIDIA GPU, the driver meets the pack's minimum on this OS, and the torch
  build runs on the main GPU (the one with the most memory): SASS for the same major with a lower or equal minor,
  or PTX for an older architecture (compute-and-mirrors §2.2).

Among fitting packs the best covers every GPU, then has the highest priority (the pack files order themselves:
the newest torch and CUDA first, so a GTX 10 gets torch 2.14 on cu126 rather than torch 2.7 with xformers), then an
xformers that runs on the main GPU (a tie-breaker).  The cpu pack fits wherever its OS does and ranks below every
CUDA pack.  Every other pack is listed with the reasons it was not chosen, and advice (no xformers for this GPU,
PTX JIT, ...) comes as warnings with stable codes.

What a driver update would gain is said, not pushed (:func:`driver_gain`): each pack that only the driver keeps out
and that would rank above the choice, as a step "with driver >= 580 you would get cu130: torch 2.15.0 / CUDA 13.0,
…", and that the current choice works as it is.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from bootstrap.i18n import Text
from launcher.errors import NoPackFits
from launcher.hardware.nvidia import Gpu, Hardware
from launcher.packs.catalog import Pack, PackSet, version_tuple
from launcher.packs.gain import GainStep, gain_advice, shown_driver, step_gains

OS_LABEL = {"linux": ("Linux", "Linux"), "windows": ("Windows", "Windows"), "macos": ("macOS", "macOS")}


@dataclass(frozen=True)
class Advice:
    """A warning about the choice; ``code`` is stable for the doctor and the TUI."""

    code: str
    zh: str
    en: str

    def text(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class Rejection:
    id: str
    reasons_zh: tuple[str, ...]
    reasons_en: tuple[str, ...]

    def reasons(self, lang: str) -> list[str]:
        return list(self.reasons_zh if lang == "zh" else self.reasons_en)


@dataclass(frozen=True)
class Choice:
    hardware: Hardware
    chosen: Pack
    reasons_zh: tuple[str, ...]
    reasons_en: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    warnings: tuple[Advice, ...]
    unsupported_gpus: tuple[Gpu, ...] = ()  # GPUs the chosen pack cannot use (hide them from the runtime)
    driver_gain: tuple[GainStep, ...] = ()  # what a newer driver would bring, oldest driver first

    def reasons(self, lang: str) -> list[str]:
        return list(self.reasons_zh if lang == "zh" else self.reasons_en)

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        """The ``packs explain --json`` contract: add keys, never rename them."""
        p, os_name = self.chosen, self.hardware.os
        return {
            "hardware": self.hardware.to_dict(),
            "chosen": {"id": p.id, "python": p.python, "torch": p.torch, "torchvision": p.torchvision or None,
                       "xformers": p.xformers_for(os_name) or None, "cuda": p.cuda, "title": p.title(lang),
                       "pins": p.pins(os_name), "optional_pins": p.optional_pins(os_name),
                       "reasons": self.reasons(lang)},
            "rejected": [{"id": r.id, "reasons": r.reasons(lang)} for r in self.rejected],
            "warnings": [{"code": w.code, "text": w.text(lang)} for w in self.warnings],
            "unsupported_gpus": [g.index for g in self.unsupported_gpus],
            "driver_gain": [s.to_dict(lang) for s in self.driver_gain],
        }  # fmt: skip


@dataclass
class _Fit:
    """One pack measured against the machine."""

    pack: Pack
    blockers: list[Text] = field(default_factory=list)  # any one of them rules the pack out
    driver_only: bool = False  # the driver is the only blocker
    uncovered: list[Gpu] = field(default_factory=list)  # GPUs other than the main one the torch build cannot run
    xformers_ok: bool = False  # its xformers runs on the main GPU

    @property
    def fits(self) -> bool:
        return not self.blockers

    def rank(self) -> tuple[bool, bool, int, bool]:
        return (self.pack.uses_gpu, not self.uncovered, self.pack.priority, self.xformers_ok)


def _label(gpus: list[Gpu]) -> Text:
    """「RTX 3090（sm_86）、GTX 1080 Ti（sm_61）」 and "RTX 3090 (sm_86), GTX 1080 Ti (sm_61)"."""
    return Text(
        "、".join(f"{g.short_name}（{g.sm}）" for g in gpus),
        ", ".join(f"{g.short_name} ({g.sm})" for g in gpus),
    )


def _archs(arch: tuple[str, ...], ptx: tuple[str, ...]) -> str:
    return ", ".join([f"sm_{a.replace('.', '')}" for a in arch] + [f"compute_{a.replace('.', '')} PTX" for a in ptx])


def _torch_blocker(pack: Pack, gpu: Gpu) -> Text | None:
    """Why the pack's torch cannot run on ``gpu``, or None when it can."""
    if gpu.capability is None:
        return Text(
            f"无法确定 {gpu.short_name} 的计算能力，不能确认 torch {pack.torch} 支持它",
            f"the compute capability of the {gpu.short_name} is unknown, so torch {pack.torch} may not run on it",
        )
    if pack.torch_coverage(gpu.capability) != "none":
        return None
    archs = _archs(pack.torch_arch, pack.torch_ptx)
    return Text(
        f"torch {pack.torch} 不含 {_label([gpu]).zh}的内核（它只有 {archs}）",
        f"torch {pack.torch} has no kernels for the {_label([gpu]).en}; it has {archs}",
    )


def _no_gpu(hw: Hardware) -> Text:
    if hw.problem:
        return Text(
            f"nvidia-smi 出错（{hw.problem}），无法使用 NVIDIA 显卡",
            f"nvidia-smi failed ({hw.problem}), so no NVIDIA GPU can be used",
        )
    return Text("没有 NVIDIA 显卡", "there is no NVIDIA GPU")


def _measure(pack: Pack, hw: Hardware, pythons: Collection[str] | None) -> _Fit:
    fit = _Fit(pack)
    os_zh, os_en = OS_LABEL.get(hw.os, (hw.os, hw.os))
    if hw.os not in pack.os:
        fit.blockers.append(Text(f"不支持 {os_zh}", f"not made for {os_en}"))
    if pythons is not None and pack.python not in pythons:
        have = ", ".join(sorted(pythons)) or "-"
        fit.blockers.append(
            Text(f"需要 Python {pack.python}，这里只有 {have}", f"needs Python {pack.python}; only {have} is here")
        )
    main = hw.main_gpu
    if not pack.uses_gpu:
        return fit
    if main is None:
        fit.blockers.append(_no_gpu(hw))
        return fit
    need, have = shown_driver(pack.min_driver(hw.os)), hw.driver_version or ""
    if need and (not have or version_tuple(have) < version_tuple(need)):
        fit.blockers.append(
            Text(
                f"驱动 {have or '（未知）'} 低于此包在 {os_zh} 上要求的 {need}",
                f"driver {have or '(unknown)'} is older than the {need} it needs on {os_en}",
            )
        )
        fit.driver_only = len(fit.blockers) == 1
    arch = _torch_blocker(pack, main)
    if arch is not None:
        fit.blockers.append(arch)
        fit.driver_only = False
    fit.uncovered = [g for g in hw.gpus if g is not main and _torch_blocker(pack, g) is not None]
    fit.xformers_ok = main.capability is not None and pack.xformers_coverage(main.capability, hw.os) != "none"
    return fit


def _machine(hw: Hardware) -> Text:
    os_zh, os_en = OS_LABEL.get(hw.os, (hw.os, hw.os))
    if hw.main_gpu is None:
        return Text(f"{os_zh}，没有可用的 NVIDIA 显卡", f"{os_en}, no usable NVIDIA GPU")
    gpus = _label(list(hw.gpus))
    return Text(f"{os_zh}，驱动 {hw.driver_version}，{gpus.zh}", f"{os_en}, driver {hw.driver_version}, {gpus.en}")


def _gpu_reasons(fit: _Fit, hw: Hardware) -> list[Text]:
    p, main = fit.pack, hw.main_gpu
    assert main is not None and main.capability is not None
    cuda_zh = f" 支持 CUDA {hw.cuda_driver}" if hw.cuda_driver else ""
    cuda_en = f" supports CUDA {hw.cuda_driver}," if hw.cuda_driver else ","
    lines = [
        Text(
            f"驱动 {hw.driver_version}{cuda_zh}，显卡 {main.short_name} 是 {main.sm} → 选 {p.id}（torch {p.torch}）",
            f"Driver {hw.driver_version}{cuda_en} and the {main.short_name} is {main.sm} → {p.id} (torch {p.torch})",
        ),
        Text(f"torch {p.torch} 含 {main.sm} 可直接运行的内核", f"torch {p.torch} has kernels that run on {main.sm}")
        if p.torch_coverage(main.capability) == "sass"
        else Text(
            f"torch {p.torch} 通过 PTX 即时编译在 {main.sm} 上运行", f"torch {p.torch} runs on {main.sm} via PTX JIT"
        ),
        Text(
            f"驱动 {hw.driver_version} 满足此包的最低要求 {shown_driver(p.min_driver(hw.os))}",
            f"driver {hw.driver_version} meets its minimum of {shown_driver(p.min_driver(hw.os))}",
        ),
    ]
    xf = p.xformers_for(hw.os)
    if xf and fit.xformers_ok:
        jit = p.xformers_coverage(main.capability, hw.os) == "ptx"
        lines.append(
            Text(
                f"xformers {xf} 支持 {main.sm}" + ("（通过 PTX 即时编译）" if jit else ""),
                f"xformers {xf} runs on {main.sm}" + (" (via PTX JIT)" if jit else ""),
            )
        )
    if len(hw.gpus) > 1:
        others = [g for g in hw.gpus if g is not main and g not in fit.uncovered]
        lines.append(
            Text(
                f"主显卡是显存最大的 GPU {main.index} {main.short_name}（{main.memory_total_mib} MiB）"
                + (f"；{_label(others).zh}也能用" if others else ""),
                f"the main GPU is GPU {main.index}, the {main.short_name}, with the most memory "
                f"({main.memory_total_mib} MiB)" + (f"; the {_label(others).en} can be used too" if others else ""),
            )
        )
    return lines


def _cpu_reasons(pack: Pack, hw: Hardware) -> list[Text]:
    chosen_zh, chosen_en = f"选 {pack.id}（torch {pack.torch}）", f"{pack.id} (torch {pack.torch})"
    if hw.main_gpu is not None:
        head = Text(
            f"没有适合这块 NVIDIA 显卡和驱动的 CUDA 包 → {chosen_zh}",
            f"no CUDA pack fits this GPU and driver → {chosen_en}",
        )
    elif hw.problem:
        head = Text(
            f"NVIDIA 驱动不能用（{hw.problem}）→ {chosen_zh}",
            f"the NVIDIA driver does not work ({hw.problem}) → {chosen_en}",
        )
    else:
        head = Text(f"没有找到 NVIDIA 显卡 → {chosen_zh}", f"no NVIDIA GPU was found → {chosen_en}")
    return [head, Text("在 CPU 上生成一张图要几分钟", "generating on the CPU takes minutes per image")]


def _outranked(fit: _Fit, best: _Fit, hw: Hardware) -> Text:
    """Why a pack that fits lost to ``best``."""
    other = best.pack.id
    if not fit.pack.uses_gpu:
        return Text(
            f"能用，但 NVIDIA 显卡能用 {other}，快得多", f"would work, but the NVIDIA GPU can run {other}, far faster"
        )
    if fit.uncovered:
        names = _label(fit.uncovered)
        return Text(
            f"torch {fit.pack.torch} 不支持 {names.zh}，而 {other} 支持所有显卡",
            f"torch {fit.pack.torch} cannot run the {names.en}, while {other} runs every GPU",
        )
    sm = hw.main_gpu.sm if hw.main_gpu else ""
    xf = fit.pack.xformers_for(hw.os)
    if best.pack.priority != fit.pack.priority:
        newer = f"torch {best.pack.torch}"
        with_xf = (
            Text(f"（它的 xformers {xf} 支持 {sm}）", f" (with xformers {xf} on {sm})")
            if fit.xformers_ok and not best.xformers_ok
            else Text("", "")
        )
        return Text(
            f"能用{with_xf.zh}，但 {other} 优先级更高（{best.pack.priority} > {fit.pack.priority}，{newer}）",
            f"would work{with_xf.en}, but {other} ranks higher ({best.pack.priority} > {fit.pack.priority}, {newer})",
        )
    if best.xformers_ok and not fit.xformers_ok and xf:  # same priority: xformers broke the tie
        return Text(
            f"能用，但它的 xformers {xf} 不支持 {sm}，而 {other} 的支持",
            f"would work, but its xformers {xf} does not run on {sm}, while {other}'s does",
        )
    if best.xformers_ok and not fit.xformers_ok:
        return Text(
            f"能用，但在这个系统上没有 xformers，而 {other} 有",
            f"would work, but has no xformers on this OS; {other} has",
        )
    return Text(
        f"能用，但与 {other} 优先级相同，按名称排在后面", f"would work, but ties with {other} and sorts after it"
    )


def driver_gain(best: _Fit, fits: list[_Fit], hw: Hardware) -> list[GainStep]:
    """The packs only the driver keeps out that would rank above ``best``: oldest driver first, each a step up."""
    main = hw.main_gpu
    if main is None:
        return []
    waiting = sorted((f for f in fits if f.driver_only and f.rank() > best.rank()),
                     key=lambda f: version_tuple(f.pack.min_driver(hw.os)))  # fmt: skip
    steps, top = [], best
    for fit in waiting:
        if fit.rank() > top.rank():
            steps.append(step_gains(fit.pack, best.pack, main, hw.os))
            top = fit
    return steps


def _machine_advice(best: _Fit, fits: list[_Fit], hw: Hardware) -> list[Advice]:
    """Advice about the driver: what an update would gain, a failing nvidia-smi, a missing libcuda."""
    out = []
    steps = driver_gain(best, fits, hw)
    if steps:
        text = gain_advice(steps, best.pack, hw.driver_version)
        out.append(Advice("driver-update", text.zh, text.en))
    if hw.problem:
        problem = hw.problem.rstrip(".")
        out.append(
            Advice(
                "nvidia-smi-failed",
                f"nvidia-smi 出错：{problem}。修好驱动之前只能用 CPU。",
                f"nvidia-smi failed: {problem}. Until the driver works, only the CPU can be used.",
            )
        )
    if hw.main_gpu is not None and not best.pack.uses_gpu:
        out.append(
            Advice(
                "cpu-fallback",
                "有 NVIDIA 显卡，但没有能用它的 CUDA 包：暂时用 CPU，会很慢。",
                "There is an NVIDIA GPU, but no CUDA pack can use it: falling back to the CPU, which is slow.",
            )
        )
    if hw.gpus and hw.source == "nvidia-smi" and hw.cuda_driver is None:
        out.append(
            Advice(
                "cuda-library-missing",
                "nvidia-smi 显示 CUDA Version: N/A：驱动的 CUDA 库（libcuda）没有装好，torch 用不了显卡。请安装完整的 NVIDIA 驱动。",
                "nvidia-smi shows CUDA Version: N/A: the driver's CUDA library (libcuda) is missing, so torch "
                "cannot use the GPU. Install the full NVIDIA driver.",
            )
        )
    return out


def _pack_advice(best: _Fit, hw: Hardware) -> list[Advice]:
    """Advice about the chosen CUDA pack on this GPU: xformers, PTX JIT, GPUs it cannot run."""
    p, main, out = best.pack, hw.main_gpu, []
    if main is None or main.capability is None or not p.uses_gpu:
        return []
    xf = p.xformers_for(hw.os)
    if not xf:
        out.append(
            Advice(
                "xformers-missing",
                f"{p.id} 在这个系统上没有 xformers：注意力计算改用 PyTorch 自带的 SDPA。",
                f"{p.id} has no xformers on this OS: attention uses PyTorch's own SDPA.",
            )
        )
    elif not best.xformers_ok:
        out.append(
            Advice(
                "xformers-unsupported",
                f"xformers {xf} 不含 {_label([main]).zh}的内核：不使用 xformers，改用 PyTorch 自带的 SDPA。",
                f"xformers {xf} has no kernels for the {_label([main]).en}: it runs without xformers, "
                "on PyTorch's own SDPA attention.",
            )
        )
    jit = [
        name
        for name, how in (
            ("torch", p.torch_coverage(main.capability)),
            ("xformers", p.xformers_coverage(main.capability, hw.os)),
        )
        if how == "ptx"
    ]
    if jit:
        wanted, supported = p.cuda_version, hw.cuda_driver_tuple
        old = wanted is not None and supported is not None and supported < wanted
        cuda = ".".join(map(str, wanted or ()))
        out.append(
            Advice(
                "ptx-jit",
                f"{' 和 '.join(jit)} 在 {main.sm} 上通过 PTX 即时编译运行：第一次使用时要先编译一段时间"
                + (
                    f"，而且需要支持 CUDA {cuda} 的驱动（现在的只支持 {hw.cuda_driver}），请更新驱动。" if old else "。"
                ),
                f"{' and '.join(jit)} {'runs' if len(jit) == 1 else 'run'} on {main.sm} via PTX JIT: "
                "the first use compiles kernels for a while"
                + (
                    f", and needs a driver with CUDA {cuda} (this one has {hw.cuda_driver}): update it." if old else "."
                ),
            )
        )
    for gpu in best.uncovered:
        out.append(
            Advice(
                "gpu-unsupported",
                f"{p.id} 不支持 GPU {gpu.index} {_label([gpu]).zh}：只使用它能运行的显卡。",
                f"{p.id} cannot run GPU {gpu.index}, the {_label([gpu]).en}: only the GPUs it runs are used.",
            )
        )
    return out


def choose(hardware: Hardware, packs: PackSet, available_pythons: Collection[str] | None = None) -> Choice:
    """The best pack for ``hardware``, with reasons; raise :class:`NoPackFits` when none fits.

    ``available_pythons`` (e.g. ``{"3.11"}``) restricts packs to those Pythons; None means any Python can be had
    (uv installs it).
    """
    fits = [_measure(p, hardware, available_pythons) for p in packs.all()]
    usable = [f for f in fits if f.fits]
    if not usable:
        machine = _machine(hardware)
        listing = {
            lang: "\n".join(f"  {f.pack.id}: " + "; ".join(b.text(lang) for b in f.blockers) for f in fits)
            for lang in ("zh", "en")
        }
        raise NoPackFits(
            machine_zh=machine.zh, machine_en=machine.en, listing_zh=listing["zh"], listing_en=listing["en"]
        )
    best = max(usable, key=_Fit.rank)
    reasons = _gpu_reasons(best, hardware) if best.pack.uses_gpu else _cpu_reasons(best.pack, hardware)
    rejected = []
    for fit in fits:
        if fit is not best:
            lines = fit.blockers or [_outranked(fit, best, hardware)]
            rejected.append(Rejection(fit.pack.id, tuple(x.zh for x in lines), tuple(x.en for x in lines)))
    return Choice(
        hardware=hardware,
        chosen=best.pack,
        reasons_zh=tuple(x.zh for x in reasons),
        reasons_en=tuple(x.en for x in reasons),
        rejected=tuple(rejected),
        warnings=(*_machine_advice(best, fits, hardware), *_pack_advice(best, hardware)),
        unsupported_gpus=tuple(best.uncovered),
        driver_gain=tuple(driver_gain(best, fits, hardware)),
    )
