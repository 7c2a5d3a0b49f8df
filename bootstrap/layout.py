"""Where everything lives: the code root and the bundle root.

The *code root* is the folder holding ``launcher/``, ``bootstrap/`` and the
shipped data (``mirrors.toml``, ``packs/``).  The *bundle root* is where
Yijian writes: ``python/``, ``env/``, ``cache/``, ``logs/``, ``outputs/``,
``models/`` and ``config.toml``.  They are the same folder unless
``YIJIAN_HOME`` points elsewhere.  Nothing is written outside the bundle
root: :func:`bundle_environ` points every cache a child process might use
back inside it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NamedTuple

from bootstrap.errors import BundlePathError

CODE_ROOT = Path(__file__).resolve().parent.parent

MODEL_FOLDERS = ("Stable-diffusion", "Lora", "VAE", "embeddings", "ESRGAN")


class Bundle(NamedTuple):
    """The paths of one bundle.  Cheap to build; touches no disk.

    (A NamedTuple rather than a dataclass: stage 0 runs on every start, and
    importing :mod:`dataclasses` alone costs it about 10 ms.)
    """

    root: Path
    code: Path = CODE_ROOT

    @classmethod
    def locate(cls, environ: dict[str, str] | None = None) -> Bundle:
        env = os.environ if environ is None else environ
        home = env.get("YIJIAN_HOME", "").strip()
        root = Path(home).expanduser() if home else CODE_ROOT
        return cls(root=Path(os.path.abspath(root)))

    # Written by Yijian.
    @property
    def python_dir(self) -> Path:
        return self.root / "python"

    @property
    def env_dir(self) -> Path:
        return self.root / "env"

    @property
    def launcher_env(self) -> Path:
        return self.env_dir / "launcher"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"

    # Shipped with the code.
    @property
    def mirrors_file(self) -> Path:
        return self.code / "mirrors.toml"

    @property
    def packs_dir(self) -> Path:
        return self.code / "packs"

    @property
    def launcher_requirements(self) -> Path:
        return self.code / "requirements" / "launcher.txt"

    def ensure_dirs(self) -> None:
        """Create the writable folders (idempotent)."""
        for d in (self.env_dir, self.cache_dir, self.logs_dir, self.outputs_dir):
            d.mkdir(parents=True, exist_ok=True)
        for name in MODEL_FOLDERS:
            (self.models_dir / name).mkdir(parents=True, exist_ok=True)


def env_python(env: Path) -> Path:
    """The interpreter of a virtual environment, on this OS."""
    if os.name == "nt":
        return env / "Scripts" / "python.exe"
    return env / "bin" / "python"


def check_root_path(path: Path, *, os_name: str | None = None) -> None:
    """Refuse a bundle root that the tools underneath cannot handle.

    Spaces are fine everywhere: every subprocess gets an argv list.  What is
    refused, and why:

    * the path-list separator (``:`` on POSIX, ``;`` on Windows) and control
      characters: the root goes into ``PYTHONPATH``, which they would split;
    * non-ASCII characters on Windows: the MSVC/CUDA tool chain used by
      triton and torch.compile, and OpenCV's file functions, fail on them;
    * non-ASCII characters where the file-system encoding is not UTF-8.
    """
    name = os.name if os_name is None else os_name
    text = str(path)
    sep = ";" if name == "nt" else ":"
    reason: tuple[str, str] | None = None
    body = text[2:] if name == "nt" and len(text) > 1 and text[1] == ":" else text
    if any(ord(c) < 32 for c in text):
        reason = ("路径中含有控制字符（如换行）。", "the path contains control characters (such as a newline).")
    elif sep in body:
        reason = (
            f"路径中含有「{sep}」，它会把 PYTHONPATH 拆开。",
            f"the path contains '{sep}', which splits PYTHONPATH.",
        )
    elif not text.isascii() and name == "nt":
        reason = (
            "路径中含有中文或其他非英文字符；Windows 上 CUDA 编译工具、triton 和 OpenCV 在这样的路径下会出错。",
            "the path has non-ASCII (e.g. Chinese) characters; on Windows the CUDA compiler tools, "
            "triton and OpenCV fail under such paths.",
        )
    elif not text.isascii() and sys.getfilesystemencoding().lower() not in ("utf-8", "utf8"):
        reason = (
            "路径中含有非英文字符，而系统文件名编码不是 UTF-8。",
            "the path has non-ASCII characters and the file-system encoding is not UTF-8.",
        )
    if reason is not None:
        raise BundlePathError(
            path=text,
            reason_zh=reason[0],
            reason_en=reason[1],
            fix_zh="请把整合包移动到只含英文字母、数字、空格和 - _ 的路径下，例如 D:\\yijian 或 ~/yijian。",
            fix_en="Move the bundle to a path made of English letters, digits, spaces, - and _, "
            "such as D:\\yijian or ~/yijian.",
        )


def bundle_environ(bundle: Bundle, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for Yijian and its children: caches stay in the bundle.

    Every tool that would otherwise write under the user's home directory
    (pip, uv, Hugging Face, torch, triton, matplotlib, the XDG cache) is
    pointed into ``cache/``.  ``PYTHONPATH`` is the code root, so that
    ``python -m launcher`` and ``python -m runtime`` work from any
    environment without installing the project into it.
    """
    env = dict(os.environ if base is None else base)
    cache = bundle.cache_dir
    for var in ("PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE"):
        env.pop(var, None)
    env.update(
        {
            "YIJIAN_HOME": str(bundle.root),
            "PYTHONPATH": str(bundle.code),
            "PYTHONNOUSERSITE": "1",
            "PYTHONUTF8": "1",
            "PIP_CACHE_DIR": str(cache / "pip"),
            "UV_CACHE_DIR": str(cache / "uv"),
            "UV_PYTHON_INSTALL_DIR": str(bundle.python_dir / "uv"),
            "HF_HOME": str(cache / "huggingface"),
            "TORCH_HOME": str(cache / "torch"),
            "TRITON_CACHE_DIR": str(cache / "triton"),
            "MPLCONFIGDIR": str(cache / "matplotlib"),
            "XDG_CACHE_HOME": str(cache / "xdg"),
            "GRADIO_TEMP_DIR": str(cache / "gradio"),
            # pip runs `rustc --version` for its user agent; a rustup proxy then writes ~/.rustup.
            "RUSTUP_HOME": str(cache / "rustup"),
            "CARGO_HOME": str(cache / "cargo"),
        }
    )
    return env
