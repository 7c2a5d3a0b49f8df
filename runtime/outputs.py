"""Where generated images go, and how they get there safely.

The layout is A1111's, so people who come from it (and the tools they use)
find images where they expect them, and a folder shared with A1111 keeps one
numbering::

    outputs/txt2img-images/2024-05-01/00042-1234.png    # number-seed.png

The number is one more than the highest number any file in that day's folder
starts with (A1111's ``get_next_sequence_number`` rule, so its files count).

Each PNG is encoded into a hidden temporary file beside its final name, flushed
to disk, then given its name in one step: a crash leaves at most a stray
``.*.tmp`` file, never half a PNG under a real name.  The name is taken with a
hard link, which fails instead of replacing an existing file, so a number is
never reused even when another program writes to the same folder; where the
file system has no hard links (FAT/exFAT USB drives) the name is checked and
``os.replace``\\ d under the lock.  Saves in one process are serialised by a
lock around choosing the number and naming the file; encoding runs outside it.
"""

from __future__ import annotations

import math
import os
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from PIL import Image, ImageColor

from runtime.pnginfo import pnginfo_for

Kind = Literal["txt2img", "img2img"]
KINDS: tuple[Kind, ...] = ("txt2img", "img2img")

_NUMBERED = re.compile(r"(\d+)(?:-|$)")  # the stem starts with a number, then "-" or nothing
_GRID = re.compile(r"grid-(\d+)(?:-|$)")  # A1111's grid files: grid-NNNN[-...].png
_LOCK = threading.Lock()  # one for every folder: saves are rare, and two folders may be one on disk
_ATTEMPTS = 1000


@dataclass(frozen=True)
class GridSpec:
    """A1111's grid of a batch: its options ``return_grid``, ``grid_save``, ``n_rows``, ``grid_only_if_multiple``,
    ``grid_prevent_empty_spots`` and ``grid_background_color``."""

    return_grid: bool = True
    save: bool = True
    rows: int = -1  # -1: about square; 0: one row per batch; N: N rows
    only_if_multiple: bool = True
    prevent_empty_spots: bool = False
    background: str = "#ffffff"

    def wanted(self, count: int) -> bool:
        return (self.return_grid or self.save) and not (count < 2 and self.only_if_multiple)


def grid_rows(count: int, batch_size: int, spec: GridSpec) -> int:
    """The number of rows of A1111's ``images.image_grid`` for ``count`` images."""
    if spec.rows > 0:
        rows = spec.rows
    elif spec.rows == 0:
        rows = batch_size
    elif spec.prevent_empty_spots:
        rows = max(1, math.floor(math.sqrt(count)))
        while count % rows:
            rows -= 1
    else:
        rows = round(math.sqrt(count))
    return max(1, min(rows, count))


def image_grid(images: list[Image.Image], batch_size: int, spec: GridSpec) -> Image.Image:
    """The images in rows (A1111's layout: cells of the largest size, row by row, smaller ones centred)."""
    rows = grid_rows(len(images), batch_size, spec)
    cols = math.ceil(len(images) / rows)
    w, h = (max(sizes) for sizes in zip(*(im.size for im in images), strict=True))
    grid = Image.new("RGB", (cols * w, rows * h), ImageColor.getcolor(spec.background, "RGB"))
    for i, im in enumerate(images):
        grid.paste(im, (i % cols * w + (w - im.width) // 2, i // cols * h + (h - im.height) // 2))
    return grid


def next_number(folder: Path, pattern: re.Pattern[str] = _NUMBERED) -> int:
    """One more than the highest number a file name in ``folder`` starts with; 0 for an empty or missing folder."""
    highest = -1
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 0
    for name in names:
        found = pattern.match(os.path.splitext(name)[0])
        if found:
            highest = max(highest, int(found.group(1)))
    return highest + 1


class OutputFolder:
    """The bundle's ``outputs/`` folder (``BundleLayout.outputs_dir``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def folder(self, kind: Kind, when: date | None = None) -> Path:
        """``<root>/<kind>-images/YYYY-MM-DD`` (today, local time, when ``when`` is not given)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        return self.root / f"{kind}-images" / (when or date.today()).isoformat()

    def save(
        self,
        image: Image.Image,
        *,
        kind: Kind,
        seed: int,
        parameters: str,
        when: date | None = None,
    ) -> Path:
        """Write ``image`` as ``NNNNN-SEED.png`` with its parameters text; returns the final path."""
        # (a lambda: next_number is looked up at each call, so tests can stand in for it)
        return self._write(image, self.folder(kind, when), parameters, lambda f: next_number(f),
                           lambda n: f"{n:05d}-{seed}.png")  # fmt: skip

    def save_grid(self, image: Image.Image, *, kind: Kind, parameters: str, when: date | None = None) -> Path:
        """Write a batch's grid as A1111 does: ``<kind>-grids/YYYY-MM-DD/grid-NNNN.png``."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        folder = self.root / f"{kind}-grids" / (when or date.today()).isoformat()
        return self._write(image, folder, parameters, lambda f: next_number(f, _GRID), lambda n: f"grid-{n:04d}.png")

    def _write(self, image: Image.Image, folder: Path, parameters: str, first_free: Callable[[Path], int],
               name: Callable[[int], str]) -> Path:  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".{uuid.uuid4().hex}.tmp"
        try:
            with open(temp, "xb") as handle:
                image.save(handle, format="PNG", pnginfo=pnginfo_for(parameters))
                handle.flush()
                os.fsync(handle.fileno())
            with _LOCK:
                number = first_free(folder)
                for _ in range(_ATTEMPTS):
                    final = folder / name(number)
                    if _claim(temp, final):
                        return final
                    number += 1
            raise FileExistsError(f"no free file name in {folder} after {_ATTEMPTS} tries")
        finally:
            temp.unlink(missing_ok=True)


def _claim(temp: Path, final: Path) -> bool:
    """Give ``temp``'s content the name ``final`` unless that name exists; True when it was given."""
    try:
        os.link(temp, final)  # atomic, and never replaces: another writer's file stays whole
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system
        pass
    if os.name == "nt":
        try:
            os.rename(temp, final)  # on Windows a rename never replaces an existing file
            return True
        except FileExistsError:
            return False
    if final.exists():
        return False
    os.replace(temp, final)
    return True
