"""The 模型管理 page's words, columns and small helpers (sizes, the file manager)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from bootstrap import proc

TYPES = ("checkpoint", "lora", "vae", "embedding", "upscaler")
LINK_TYPES = (*TYPES, "controlnet", "hypernetwork")  # a link may hold kinds the catalog has not
TYPE_WORDS: dict[str, tuple[str, str]] = {
    "checkpoint": ("大模型", "Checkpoint"),
    "lora": ("LoRA", "LoRA"),
    "vae": ("VAE", "VAE"),
    "embedding": ("嵌入式", "Embedding"),
    "upscaler": ("放大算法", "Upscaler"),
    "controlnet": ("ControlNet", "ControlNet"),
    "hypernetwork": ("超网络", "Hypernetwork"),
}
FILTER_WORDS: dict[str, tuple[str, str]] = {
    "all": ("全部类型", "All types"),
    "checkpoint": ("大模型 Checkpoint", "Checkpoint"),
    "lora": ("LoRA", "LoRA"),
    "vae": ("外挂 VAE", "VAE"),
    "embedding": ("嵌入式 Embedding", "Embedding"),
    "upscaler": ("放大算法 Upscaler", "Upscaler"),
}
ARCH_WORDS = {"sd15": "SD 1.5", "sd2": "SD 2", "sd2-v": "SD 2-v", "sdxl": "SDXL"}
# A file's problems in a few words, for the table; the full sentence is under it.
PROBLEM_WORDS: dict[str, tuple[str, str]] = {
    "pickle": ("pickle 不安全", "unsafe pickle"),
    "corrupt": ("已损坏", "corrupt"),
    "wrong-folder": ("放错文件夹", "wrong folder"),
    "unreadable": ("无法读取", "unreadable"),
    "missing": ("找不到", "missing"),
    "hash-mismatch": ("校验和不符", "hash mismatch"),
}
# Columns: (key, zh, en, width).  Widths are cells and fit the longer of the two languages.
LIBRARY_COLUMNS = (
    ("name", "文件", "File", 28),
    ("type", "类型", "Type", 10),
    ("arch", "架构", "Arch", 7),
    ("size", "大小", "Size", 8),
    ("notes", "提示", "Notes", 14),
)
CATALOG_COLUMNS = (
    ("name", "名称", "Name", 30),
    ("type", "类型", "Type", 10),
    ("arch", "架构", "Arch", 7),
    ("size", "大小", "Size", 8),
    ("state", "状态", "State", 12),
)


def human_size(n: float | None) -> str:
    """``2.0 GB``, ``37.9 MB``: 1024-based, as the CLI's tables and file managers show them."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":  # 1000, not 1024: at most "999.9 KB", never "1020.7 KB"
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def open_folder(path: Path) -> bool:
    """Show ``path`` in the OS file manager; False when there is none (SSH, a server without a desktop).

    An argv list, never a shell string: the path may hold spaces or quotes.
    """
    if sys.platform == "win32":
        argv = ["explorer", str(path)]
    elif sys.platform == "darwin":
        argv = ["open", str(path)]
    else:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return False  # xdg-open would try a text browser in this very terminal
        argv = ["xdg-open", str(path)]
    exe = shutil.which(argv[0])
    if exe is None:
        return False
    try:
        done = proc.run([exe, *argv[1:]], timeout=15, stdout=proc.DEVNULL, stderr=proc.DEVNULL)
    except proc.TimeoutExpired:
        return True  # the file manager runs in the foreground: it is open
    except OSError:
        return False
    return done.returncode == 0 or sys.platform == "win32"  # explorer answers 1 even when it opened the folder
