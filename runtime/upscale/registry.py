"""Which upscalers exist, by the names AUTOMATIC1111 shows for them.

The built-in ones are fixed: six latent modes (the hires fix resizes the
latents before its second pass), and three image resamplers.  Every model
file in ``models/ESRGAN`` (searched recursively) adds one more, named by its
file stem, as A1111 names them ("4x-UltraSharp", "RealESRGAN_x4plus" …).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.upscale.errors import UpscalerNotFound

MODEL_SUFFIXES = (".safetensors", ".pth", ".pt")  # first wins when two files share a stem


class Kind(enum.Enum):
    LATENT = "latent"  # interpolate the latents (upscale_latents)
    RESAMPLE = "resample"  # resize the decoded image with PIL
    MODEL = "model"  # an ESRGAN-family network, then an exact resize


@dataclass(frozen=True)
class LatentMode:
    """The arguments of ``torch.nn.functional.interpolate`` for a latent upscaler."""

    mode: str
    antialias: bool


@dataclass(frozen=True)
class UpscalerInfo:
    name: str
    kind: Kind
    path: Path | None = None  # the model file, for Kind.MODEL
    latent: LatentMode | None = None  # for Kind.LATENT
    resample: str | None = None  # "lanczos" or "nearest", for Kind.RESAMPLE


# As in A1111's shared.latent_upscale_modes; "Latent" is bilinear without antialiasing.
LATENT_MODES: dict[str, LatentMode] = {
    "Latent": LatentMode("bilinear", False),
    "Latent (antialiased)": LatentMode("bilinear", True),
    "Latent (bicubic)": LatentMode("bicubic", False),
    "Latent (bicubic antialiased)": LatentMode("bicubic", True),
    "Latent (nearest)": LatentMode("nearest", False),
    "Latent (nearest-exact)": LatentMode("nearest-exact", False),
}

# "None" is a plain Lanczos resize to the target size, as in A1111's images.resize_image.
RESAMPLERS: dict[str, str] = {"None": "lanczos", "Lanczos": "lanczos", "Nearest": "nearest"}

BUILTIN: tuple[UpscalerInfo, ...] = (
    *(UpscalerInfo(name, Kind.LATENT, latent=mode) for name, mode in LATENT_MODES.items()),
    *(UpscalerInfo(name, Kind.RESAMPLE, resample=how) for name, how in RESAMPLERS.items()),
)


def is_latent(name: str) -> bool:
    """Whether the hires fix with this upscaler resizes latents (no decode, no ESRGAN)."""
    return name in LATENT_MODES


def latent_mode(name: str) -> LatentMode:
    try:
        return LATENT_MODES[name]
    except KeyError:
        raise UpscalerNotFound(name=name, available=", ".join(LATENT_MODES), folder="models/ESRGAN") from None


def model_files(esrgan_dirs: Iterable[Path]) -> list[Path]:
    """Model files under the folders (recursively), one per stem, hidden files and folders skipped."""
    by_stem: dict[str, Path] = {}
    for folder in esrgan_dirs:
        if not folder.is_dir():
            continue
        found = [
            p
            for p in folder.rglob("*")
            if p.suffix.lower() in MODEL_SUFFIXES
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        ]
        found.sort(key=lambda p: (p.stem.casefold(), MODEL_SUFFIXES.index(p.suffix.lower()), str(p)))
        for path in found:
            by_stem.setdefault(path.stem, path)
    return list(by_stem.values())


def list_upscalers(esrgan_dir: Path | Sequence[Path]) -> list[UpscalerInfo]:
    """The built-in upscalers, then one per model file, sorted by name.

    A model whose stem is also a built-in name ("Lanczos.pth") is left out: the
    name must mean one thing.  ``esrgan_dir`` may be several folders (the
    bundle's and shared ones); the first folder wins a stem they share.
    """
    dirs = [esrgan_dir] if isinstance(esrgan_dir, Path) else list(esrgan_dir)
    taken = {info.name for info in BUILTIN}
    models = [UpscalerInfo(p.stem, Kind.MODEL, path=p) for p in model_files(dirs) if p.stem not in taken]
    models.sort(key=lambda info: info.name.casefold())
    return [*BUILTIN, *models]


def find_upscaler(name: str, esrgan_dir: Path | Sequence[Path]) -> UpscalerInfo:
    """The upscaler with this A1111 name, or UPSCALER_NOT_FOUND."""
    for info in BUILTIN:
        if info.name == name:
            return info
    upscalers = list_upscalers(esrgan_dir)
    for info in upscalers:
        if info.name == name:
            return info
    dirs = [esrgan_dir] if isinstance(esrgan_dir, Path) else list(esrgan_dir)
    raise UpscalerNotFound(
        name=name,
        available=", ".join(info.name for info in upscalers),
        folder=", ".join(str(d) for d in dirs) or "models/ESRGAN",
    )
