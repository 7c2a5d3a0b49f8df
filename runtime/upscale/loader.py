"""Read an upscaler model file, recognise its layout, and build the network.

Files are read without running code: ``torch.load(..., weights_only=True)``
for .pth/.pt (a pickle that holds anything but tensors and plain containers
is refused) and safetensors for .safetensors.  The layouts met in the wild:

- old ESRGAN: ``model.0`` (first conv), ``model.1.sub.N.RDBk.convj.0`` (the
  blocks), ``model.1.sub.{nb}`` (trunk conv), then per ×2 stage a conv at
  ``model.3``, ``model.6`` …, the HR conv and the last conv;
- Real-ESRGAN / BasicSR: ``conv_first``, ``body.N.rdbk.convj``, ``conv_body``,
  ``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``, often wrapped in
  ``params_ema`` or ``params``; a ×2 model folds its input (pixel unshuffle),
  seen as ``conv_first`` taking 4× the output channels (×1: 16×);
- BSRGAN / old BasicSR: ``RRDB_trunk.N.RDBk.convj``, ``trunk_conv``,
  ``upconvN``, ``HRconv``;
- SRVGGNetCompact: ``body.0``, ``body.1`` (PReLU), …, the last conv.

The sizes (channels, blocks, growth, scale) are read from the tensors.
"""

from __future__ import annotations

import math
import re
import threading
from pathlib import Path

import torch
from torch import Tensor

from runtime.upscale.errors import UpscalerUnsupported
from runtime.upscale.esrgan import RRDBNet, SRNet, SRVGGNetCompact

WRAPPERS = ("params_ema", "params", "state_dict")

# Old ESRGAN names → the names RRDBNet uses.
OLD_BLOCK = re.compile(r"model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)")
OLD_TRUNK = re.compile(r"model\.1\.sub\.(\d+)\.(weight|bias)")
OLD_TOP = re.compile(r"model\.(\d+)\.(weight|bias)")
# BSRGAN / old BasicSR names → the names RRDBNet uses.
BSRGAN_NAMES = (
    (re.compile(r"RRDB_trunk\.(\d+)\.RDB([123])\."), r"body.\1.rdb\2."),
    (re.compile(r"trunk_conv\."), "conv_body."),
    (re.compile(r"upconv(\d+)\."), r"conv_up\1."),
    (re.compile(r"HRconv\."), "conv_hr."),
)


def unsupported(path: Path, zh: str, en: str) -> UpscalerUnsupported:
    return UpscalerUnsupported(path=str(path), reason_zh=zh, reason_en=en)


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """The file's tensors by name, read without unpickling code."""
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            loaded: object = load_file(str(path), device="cpu")
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if "Unsupported global" in str(exc):
            raise unsupported(
                path,
                "文件里除了权重还有 Python 对象，为安全起见拒绝加载（加载它们可能执行任意代码）",
                "it holds Python objects besides tensors, refused for safety (loading them could run code)",
            ) from exc
        raise unsupported(
            path,
            f"文件无法读取，可能已损坏或不是模型（{exc}）",
            f"the file cannot be read; damaged or not a model ({exc})",
        ) from exc
    for key in WRAPPERS:
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    if not isinstance(loaded, dict) or not loaded:
        raise unsupported(path, "文件里没有一组权重", "it does not hold a set of weights")
    state = {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, Tensor)}
    if len(state) != len(loaded):
        raise unsupported(path, "文件里除了张量还有其他内容", "it holds things other than tensors")
    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def _from_old_esrgan(state: dict[str, Tensor], path: Path) -> dict[str, Tensor]:
    top = sorted({int(m[1]) for k in state if (m := OLD_TOP.fullmatch(k))})
    trunk = {int(m[1]) for k in state if (m := OLD_TRUNK.fullmatch(k))}
    n_up, rest = divmod(top[-1] - 4, 3) if top else (-1, 0)
    expected = [0, *(3 + 3 * i for i in range(max(n_up, 0))), 3 * n_up + 2, 3 * n_up + 4]
    if n_up < 0 or rest or top != expected or len(trunk) != 1:
        raise unsupported(
            path, "ESRGAN 旧格式的层序号不符合已知结构", "its old-ESRGAN layer numbers match no known structure"
        )
    names = {0: "conv_first", 3 * n_up + 2: "conv_hr", 3 * n_up + 4: "conv_last"}
    names.update({3 + 3 * i: f"conv_up{i + 1}" for i in range(n_up)})
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if m := OLD_BLOCK.fullmatch(key):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = value
        elif m := OLD_TRUNK.fullmatch(key):
            out[f"conv_body.{m[2]}"] = value
        elif m := OLD_TOP.fullmatch(key):
            out[f"{names[int(m[1])]}.{m[2]}"] = value
        else:
            out[key] = value  # left for load_state_dict to name
    return out


def _rrdbnet(state: dict[str, Tensor]) -> RRDBNet:
    first_out, first_in = state["conv_first.weight"].shape[:2]
    out_nc = state["conv_last.weight"].shape[0]
    blocks = {int(m[1]) for k in state if (m := re.match(r"body\.(\d+)\.", k))}
    n_up = sum(1 for k in state if re.fullmatch(r"conv_up\d+\.weight", k))
    unshuffle = 1
    if first_in == 16 * out_nc and n_up >= 2:
        unshuffle = 4
    elif first_in == 4 * out_nc and n_up >= 1:
        unshuffle = 2
    return RRDBNet(
        in_nc=first_in // (unshuffle * unshuffle),
        out_nc=out_nc,
        nf=first_out,
        nb=max(blocks) + 1 if blocks else 0,
        gc=state["body.0.rdb1.conv1.weight"].shape[0] if blocks else 32,
        n_up=n_up,
        unshuffle=unshuffle,
    )


def _srvgg(state: dict[str, Tensor], path: Path) -> SRVGGNetCompact:
    convs = sorted(
        int(m[1]) for k, v in state.items() if (m := re.fullmatch(r"body\.(\d+)\.weight", k)) and v.ndim == 4
    )
    prelus = sorted(
        int(m[1]) for k, v in state.items() if (m := re.fullmatch(r"body\.(\d+)\.weight", k)) and v.ndim == 1
    )
    n_conv = len(convs) - 2
    in_nc = state["body.0.weight"].shape[1]
    scale = math.isqrt(state[f"body.{convs[-1]}.weight"].shape[0] // in_nc)
    fits = n_conv >= 0 and convs == list(range(0, 2 * n_conv + 3, 2)) and prelus == list(range(1, 2 * n_conv + 2, 2))
    if not fits or scale < 1 or scale * scale * in_nc != state[f"body.{convs[-1]}.weight"].shape[0]:
        raise unsupported(
            path,
            "SRVGGNetCompact 的层不符合已知结构（只支持 PReLU 激活）",
            "its SRVGGNetCompact layers match no known structure (only PReLU is supported)",
        )
    return SRVGGNetCompact(in_nc=in_nc, out_nc=in_nc, nf=state["body.0.weight"].shape[0], n_conv=n_conv, scale=scale)


def build_network(state: dict[str, Tensor], path: Path) -> SRNet:
    """The network these tensors belong to, with them loaded (on the CPU, float32)."""
    if "model.0.weight" in state:
        state = _from_old_esrgan(state, path)
    elif any(k.startswith("RRDB_trunk.") for k in state):
        for pattern, name in BSRGAN_NAMES:
            state = {pattern.sub(name, k, count=1) if pattern.match(k) else k: v for k, v in state.items()}
    net: SRNet
    if "conv_first.weight" in state and "conv_last.weight" in state:
        try:
            net = _rrdbnet(state)
        except (KeyError, ValueError) as exc:  # a tensor missing, or of the wrong rank
            raise unsupported(
                path, f"RRDBNet 的参数不完整（{exc}）", f"its RRDBNet parameters are incomplete ({exc})"
            ) from exc
    elif "body.0.weight" in state and state["body.0.weight"].ndim == 4:
        net = _srvgg(state, path)
    else:
        sample = ", ".join(sorted(state)[:4])
        raise unsupported(
            path,
            f"不认识这种网络结构（参数名如 {sample}）",
            f"its network layout is not one we know (names like {sample})",
        )
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        lines = str(exc).splitlines()
        first = (lines[1] if len(lines) > 1 else lines[0]).strip()[:200]
        raise unsupported(
            path, f"权重与 {net.arch} 结构对不上：{first}", f"its tensors do not fit an {net.arch}: {first}"
        ) from exc
    return net


def load_model(path: Path, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> SRNet:
    """Read, recognise and build the model in ``path``, ready for inference."""
    net = build_network(read_state_dict(path), path)
    net.requires_grad_(False)
    return net.eval().to(device=device, dtype=dtype)


class ModelCache:
    """Keeps the last model loaded (one at a time: they are 17 to 70 MB, and VRAM is precious).

    The key holds the file's size and mtime, so a replaced file is read again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, int, int, str, torch.dtype] | None = None
        self._model: SRNet | None = None

    def get(self, path: Path, *, device: torch.device | str, dtype: torch.dtype) -> SRNet:
        stat = path.stat() if path.exists() else None
        key = (
            str(path.resolve()),
            stat.st_size if stat else -1,
            stat.st_mtime_ns if stat else -1,
            str(torch.device(device)),
            dtype,
        )
        with self._lock:
            if self._model is None or self._key != key:
                self._drop()
                self._model = load_model(path, device=device, dtype=dtype)
                self._key = key
            return self._model

    def clear(self) -> None:
        """Forget the model (and give its VRAM back)."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        on_cuda = self._model is not None and next(self._model.parameters()).is_cuda
        self._model, self._key = None, None
        if on_cuda:
            torch.cuda.empty_cache()
