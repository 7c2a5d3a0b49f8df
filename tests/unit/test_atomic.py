"""bootstrap.atomic.write_atomic: all or nothing, in the same folder, permissions kept, Windows retries."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from bootstrap import atomic
from bootstrap.atomic import replace_tries, write_atomic


def test_text_and_bytes(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.json"
    write_atomic(target, "模型\r\n")
    assert target.read_bytes() == "模型\r\n".encode()  # line ends as given, UTF-8
    write_atomic(target, b"\x00\xff")
    assert target.read_bytes() == b"\x00\xff"
    write_atomic(target, "x", encoding="gbk", fsync=False)
    assert target.read_text(encoding="gbk") == "x"
    assert os.listdir(target.parent) == ["f.json"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    target = folder / "config.toml"
    target.write_text("old", encoding="utf-8")
    seen: list[str] = []

    def broken_fsync(fd: int) -> None:
        seen.extend(p.name for p in folder.iterdir() if p != target)  # the temp file is beside the target
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        write_atomic(target, "new")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in folder.iterdir()] == ["config.toml"]
    assert len(seen) == 1 and seen[0].startswith(".config.toml.") and seen[0].endswith(".tmp")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_permissions(tmp_path: Path) -> None:
    new = tmp_path / "new.json"
    write_atomic(new, "{}")
    assert stat.S_IMODE(new.stat().st_mode) == 0o644
    kept = tmp_path / "kept.cfg"
    kept.write_text("a", encoding="utf-8")
    kept.chmod(0o640)
    write_atomic(kept, "b")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    secret = tmp_path / "config.toml"
    write_atomic(secret, "token = 'x'", mode=0o600)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_windows_retries_a_replace_a_reader_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert replace_tries("win32") > 1 and replace_tries("linux") == 1
    real, calls = os.replace, []

    def busy_twice(src: str, dst: Path) -> None:
        calls.append(dst)
        if len(calls) < 3:
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", busy_twice)
    folder = tmp_path / "d"
    target = folder / "hashes.json"
    write_atomic(target, "{}", tries=replace_tries("win32"))
    assert target.read_text(encoding="utf-8") == "{}" and len(calls) == 3
    calls.clear()
    with pytest.raises(PermissionError):
        write_atomic(folder / "other.json", "{}", tries=1)
    assert [p.name for p in folder.iterdir()] == ["hashes.json"]
