"""The torch channel's route around: PyPI's equivalent build when every torch mirror failed.

A pack's torch is a local-label build (``2.13.0+cpu``, ``2.10.0+cu128``) that only the PyTorch indexes carry.
Where PyPI carries an equivalent build for this OS (the pack's ``pypi_torch_*`` fields), the builder installs that
from the PyPI mirrors instead, and says which build and why.  Where it does not (CUDA on Windows: PyPI's Windows
torch is CPU-only), the build ends with :class:`~launcher.errors.TorchNoRoute`, naming the channels tried and the
fix.  These functions hold the decisions and the words; :func:`bootstrap.builder.build._install` does the switch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from launcher.errors import TorchNoRoute
from launcher.hardware.nvidia import host_os


def tried_text(tried: Sequence[tuple[str, str]]) -> str:
    """``"nju: DNS lookup failed; official: timed out"``."""
    return "; ".join(f"{name}: {reason}" for name, reason in tried) or "-"


def switch_texts(pack: Any, pins: Sequence[str], pypi_pins: Sequence[str], tried: Sequence[tuple[str, str]],
                 pypi_name: tuple[str, str]) -> tuple[str, str]:  # fmt: skip
    """(zh, en): which build now comes from PyPI and why."""
    own, alt = pins[0].split("==")[1], pypi_pins[0].split("==")[1]
    listing = tried_text(tried)
    if pack.cuda == "cpu" and host_os() == "linux":
        what_zh = f"PyPI 的 Linux 版 torch {alt} 是 CUDA 版，也能在 CPU 上运行，只是下载大得多（数 GB）"
        what_en = f"PyPI's Linux torch {alt} is a CUDA build; it runs on the CPU too, but the download is much larger (several GB)"
    elif pack.cuda == "cpu":
        what_zh, what_en = f"PyPI 的 torch {alt} 就是 CPU 版", f"PyPI's torch {alt} is the CPU build itself"
    else:
        what_zh = f"PyPI 的 torch {alt} 与 {own} 是同一个 {pack.cuda} 版本"
        what_en = f"PyPI's torch {alt} is the same {pack.cuda} build as {own}"
    zh = (
        f"PyTorch 轮子通道的所有镜像都失败了（{listing}），改从 PyPI 镜像（{pypi_name[0]}）安装 torch=={alt}"
        f"代替 {own}：{what_zh}。PyTorch 源恢复后，运行 ./start.sh setup --rebuild 可换回原版本。"
    )
    en = (f"Every mirror of the PyTorch wheel channel failed ({listing}); installing torch=={alt} from the PyPI mirror "
          f"({pypi_name[1]}) instead of {own}: {what_en}. Once the PyTorch index is back, ./start.sh setup --rebuild "
          f"installs the pack's own build.")  # fmt: skip
    return zh, en


def no_route(pack: Any, pin: str, tried: Sequence[tuple[str, str]], os_name: str | None = None) -> TorchNoRoute:
    """The finding for a pack whose torch PyPI does not carry on this OS."""
    os_name = os_name or host_os()
    if os_name == "windows" and pack.cuda != "cpu":
        why_zh = "PyPI 上的 Windows 版 torch 只有 CPU 版，没有可替代的 CUDA 版本，所以没有尝试 PyPI。"
        why_en = "PyPI's Windows torch is CPU-only, so PyPI has no CUDA build to fall back to; it was not tried."
    else:
        why_zh = f"PyPI 上没有与 {pin} 等价的版本（{os_name}），所以没有尝试 PyPI。"
        why_en = f"PyPI carries no build equivalent to {pin} on {os_name}, so it was not tried."
    return TorchNoRoute(pin=pin, tried=tried_text(tried), why_zh=why_zh, why_en=why_en)
