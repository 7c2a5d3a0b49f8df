"""Saving images A1111's way: dated folders, NNNNN-SEED.png, atomic, never overwriting."""

from __future__ import annotations

import os
import threading
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from runtime import outputs
from runtime.outputs import OutputFolder, next_number
from runtime.pnginfo import format_parameters, read_parameters

DAY = date(2024, 5, 1)
TEXT = format_parameters("a cat", "", {"Steps": 20, "Sampler": "Euler a", "Seed": 1234, "Size": (8, 8)})


def image() -> Image.Image:
    return Image.new("RGB", (8, 8), "blue")


def pngs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_first_images_of_a_day(tmp_path: Path) -> None:
    out = OutputFolder(tmp_path / "outputs")
    first = out.save(image(), kind="txt2img", seed=1234, parameters=TEXT, when=DAY)
    second = out.save(image(), kind="txt2img", seed=99, parameters=TEXT, when=DAY)
    other = out.save(image(), kind="img2img", seed=5, parameters=TEXT, when=DAY)
    assert first == tmp_path / "outputs" / "txt2img-images" / "2024-05-01" / "00000-1234.png"
    assert second.name == "00001-99.png"
    assert other == tmp_path / "outputs" / "img2img-images" / "2024-05-01" / "00000-5.png"


def test_the_file_is_a_png_carrying_its_parameters(tmp_path: Path) -> None:
    path = OutputFolder(tmp_path).save(image(), kind="txt2img", seed=1234, parameters=TEXT, when=DAY)
    raw = path.read_bytes()
    assert raw.startswith(b"\x89PNG") and b"parameters" in raw and b"Seed: 1234" in raw
    assert read_parameters(path) == TEXT
    with Image.open(path) as saved:
        assert saved.size == (8, 8) and saved.getpixel((0, 0)) == (0, 0, 255)


def test_numbering_continues_after_a1111s_files(tmp_path: Path) -> None:
    folder = tmp_path / "txt2img-images" / DAY.isoformat()
    folder.mkdir(parents=True)
    for name in ("00041-999.png", "00007-1.txt", "00012.png", "grid-0100.png", "notes.txt", ".00900.tmp"):
        (folder / name).write_bytes(b"x")
    assert next_number(folder) == 42
    path = OutputFolder(tmp_path).save(image(), kind="txt2img", seed=3, parameters=TEXT, when=DAY)
    assert path.name == "00042-3.png"
    assert (folder / "00041-999.png").read_bytes() == b"x"


def test_an_empty_or_missing_folder_starts_at_zero(tmp_path: Path) -> None:
    assert next_number(tmp_path / "missing") == 0
    assert next_number(tmp_path) == 0


def test_today_is_the_default_day(tmp_path: Path) -> None:
    path = OutputFolder(tmp_path).save(image(), kind="img2img", seed=1, parameters=TEXT)
    assert path.parent.name == date.today().isoformat()


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="txt2img, img2img"):
        OutputFolder(tmp_path).save(image(), kind="extras", seed=1, parameters=TEXT)  # type: ignore[arg-type]


def test_an_existing_file_is_never_overwritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another program took the number between the scan and the rename: the next free one is used."""
    folder = tmp_path / "txt2img-images" / DAY.isoformat()
    folder.mkdir(parents=True)
    (folder / "00000-7.png").write_bytes(b"theirs")
    (folder / "00001-7.png").write_bytes(b"theirs too")
    monkeypatch.setattr(outputs, "next_number", lambda _folder: 0)
    path = OutputFolder(tmp_path).save(image(), kind="txt2img", seed=7, parameters=TEXT, when=DAY)
    assert path.name == "00002-7.png"
    assert (folder / "00000-7.png").read_bytes() == b"theirs"
    assert (folder / "00001-7.png").read_bytes() == b"theirs too"


def test_without_hard_links_the_name_is_still_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FAT/exFAT drives have no hard links: the fallback still skips taken names."""

    def no_links(*_args: Any) -> None:
        raise PermissionError("operation not permitted")

    folder = tmp_path / "txt2img-images" / DAY.isoformat()
    folder.mkdir(parents=True)
    (folder / "00000-7.png").write_bytes(b"theirs")
    monkeypatch.setattr(os, "link", no_links)
    monkeypatch.setattr(outputs, "next_number", lambda _folder: 0)
    path = OutputFolder(tmp_path).save(image(), kind="txt2img", seed=7, parameters=TEXT, when=DAY)
    assert path.name == "00001-7.png" and read_parameters(path) == TEXT
    assert (folder / "00000-7.png").read_bytes() == b"theirs"
    assert pngs(folder) == ["00000-7.png", "00001-7.png"]


class Crashing:
    """An image whose encoding dies half-way, as a crash or a full disk would."""

    def save(self, handle: Any, **_kwargs: Any) -> None:
        handle.write(b"\x89PNG\r\n\x1a\nhalf")
        raise OSError("disk full")


def test_a_failed_save_leaves_no_file_behind(tmp_path: Path) -> None:
    out = OutputFolder(tmp_path)
    with pytest.raises(OSError, match="disk full"):
        out.save(Crashing(), kind="txt2img", seed=1, parameters=TEXT, when=DAY)  # type: ignore[arg-type]
    assert pngs(out.folder("txt2img", DAY)) == []
    assert out.save(image(), kind="txt2img", seed=1, parameters=TEXT, when=DAY).name == "00000-1.png"


def test_parallel_saves_get_distinct_numbers(tmp_path: Path) -> None:
    out = OutputFolder(tmp_path)
    paths: list[Path] = []
    start = threading.Barrier(6)

    def work(seed: int) -> None:
        start.wait()
        paths.append(out.save(image(), kind="txt2img", seed=seed, parameters=TEXT, when=DAY))

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(p.name[:5]) for p in paths) == list(range(6))
    assert len(pngs(out.folder("txt2img", DAY))) == 6


def test_grids_are_numbered_as_a1111_names_them(tmp_path: Path) -> None:
    from datetime import date

    from PIL import Image

    out = OutputFolder(tmp_path)
    day = date(2024, 5, 1)
    image = Image.new("RGB", (8, 8))
    first = out.save_grid(image, kind="txt2img", parameters="p", when=day)
    (first.parent / "grid-0041-extra.png").write_bytes(b"")  # A1111's extended grid names count too
    second = out.save_grid(image, kind="txt2img", parameters="p", when=day)
    assert first == tmp_path / "txt2img-grids" / "2024-05-01" / "grid-0000.png"
    assert second.name == "grid-0042.png"
    assert out.save(image, kind="txt2img", seed=1, parameters="p", when=day).name == "00000-1.png"
