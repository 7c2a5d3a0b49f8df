"""The stdlib safetensors header reader agrees with the safetensors library, and names every way a file is not a model.

The files are made by :func:`tests.support.fake_models.write_safetensors`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.models.safetensors_header import (
    MAX_HEADER_BYTES,
    SNIFF_BYTES,
    HeaderError,
    Problem,
    read_header,
    sniff_problem,
    sniff_wrong_content,
)
from tests.support.fake_models import HTML_PAGE, JSON_ERROR, LFS_POINTER, write_safetensors
from tests.support.tiny_sd import TinySD


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- valid files ---------------------------------------------------------------------------------------------------


def test_a_written_header_reads_back_and_the_safetensors_library_agrees(tmp_path: Path) -> None:
    from safetensors import safe_open

    shapes = {"a.weight": (320, 768), "b.bias": (320,), "scalar": ()}
    path = write_safetensors(tmp_path / "m.safetensors", shapes, {"ss_base_model_version": "sd_v1"})
    header = read_header(path)
    assert {k: v.shape for k, v in header.tensors.items()} == shapes
    assert header.metadata == {"ss_base_model_version": "sd_v1"}
    assert header.shape("a.weight") == (320, 768) and header.shape("missing") is None
    assert header.data_bytes == (320 * 768 + 320 + 1) * 2
    with safe_open(str(path), framework="numpy") as f:  # the real reader accepts our fake
        assert {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()} == shapes
        assert f.metadata() == header.metadata


def test_real_files_match_the_safetensors_library(tiny_sd: TinySD) -> None:
    from safetensors import safe_open

    for path in (tiny_sd.checkpoint, tiny_sd.lora, tiny_sd.embedding):
        header = read_header(path)
        with safe_open(str(path), framework="numpy") as f:
            assert set(header.keys()) == set(f.keys())
            for key in f.keys():
                assert header.shape(key) == tuple(f.get_slice(key).get_shape()), key
            assert header.metadata == (f.metadata() or {})
        assert 8 + header.header_bytes + header.data_bytes == path.stat().st_size


def test_a_file_with_trailing_bytes_is_still_read(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", {"w": (4, 4)})
    with open(path, "ab") as fh:
        fh.write(b"\0" * 16)
    assert read_header(path).shape("w") == (4, 4)


# --- not a model ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (HTML_PAGE, Problem.HTML),
        (b"\xef\xbb\xbf  \r\n<html><body>403 Forbidden</body></html>", Problem.HTML),
        (b"<HEAD><TITLE>Access Denied</TITLE></HEAD>", Problem.HTML),
        (LFS_POINTER, Problem.LFS_POINTER),
        (JSON_ERROR, Problem.JSON_ERROR),
        (b'  [{"error": "rate limited"}]', Problem.JSON_ERROR),
        (b"", Problem.EMPTY),
        (b"\x10\x00\x00\x00\x00", Problem.TRUNCATED),
        ((1000).to_bytes(8, "little") + b'{"a": 1', Problem.TRUNCATED),
        ((11).to_bytes(8, "little") + b"\xff\xfe not json", Problem.NOT_JSON),
        ((8).to_bytes(8, "little") + b"nonsense", Problem.NOT_JSON),
        ((MAX_HEADER_BYTES + 1).to_bytes(8, "little") + b"{}", Problem.TOO_LARGE),
        ((1 << 40).to_bytes(8, "little"), Problem.TOO_LARGE),
        ((6).to_bytes(8, "little") + b"[1, 2]", Problem.BAD_LAYOUT),
        ((14).to_bytes(8, "little") + b'{"w": {"a":1}}', Problem.BAD_LAYOUT),
        ((24).to_bytes(8, "little") + b'{"__metadata__": [1, 2]}', Problem.BAD_LAYOUT),
    ],
    ids=lambda v: v.value if isinstance(v, Problem) else "",
)
def test_each_kind_of_bad_file_is_named(tmp_path: Path, content: bytes, problem: Problem) -> None:
    path = write_bytes(tmp_path / "model.safetensors", content)
    with pytest.raises(HeaderError) as err:
        read_header(path)
    assert err.value.problem is problem
    assert err.value.reason == problem.value
    assert str(path) in str(err.value) and problem.en in str(err.value)


@pytest.mark.parametrize(
    "entry",
    [
        {"dtype": "F16", "shape": [2, -1], "data_offsets": [0, 8]},
        {"dtype": "F16", "shape": [2, 2], "data_offsets": [8, 0]},
        {"dtype": "F16", "shape": [2, 2], "data_offsets": [0]},
        {"dtype": "F16", "shape": [True, 2], "data_offsets": [0, 8]},
        {"shape": [2, 2], "data_offsets": [0, 8]},
    ],
)
def test_malformed_tensor_entries_are_a_bad_layout(tmp_path: Path, entry: dict[str, object]) -> None:
    raw = json.dumps({"w": entry}).encode()
    path = write_bytes(tmp_path / "m.safetensors", len(raw).to_bytes(8, "little") + raw + b"\0" * 8)
    with pytest.raises(HeaderError) as err:
        read_header(path)
    assert err.value.problem is Problem.BAD_LAYOUT


def test_a_download_cut_short_is_truncated(tmp_path: Path, tiny_sd: TinySD) -> None:
    whole = tiny_sd.checkpoint.read_bytes()
    cut = write_bytes(tmp_path / "cut.safetensors", whole[: len(whole) // 2])
    with pytest.raises(HeaderError) as err:
        read_header(cut)
    assert err.value.problem is Problem.TRUNCATED
    assert f"the file has {len(whole) // 2}" in err.value.detail


def test_every_problem_has_both_languages() -> None:
    for problem in Problem:
        assert problem.en and problem.zh and problem.en != problem.zh


# --- the download engine's sniffer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (HTML_PAGE, "HTML page"),
        (b"\n\n<!doctype html>", "HTML page"),
        (b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>", "HTML page"),
        (b"<!-- cdn --><html>", "HTML page"),
        (LFS_POINTER, "Git LFS pointer"),
        (LFS_POINTER[:50], "Git LFS pointer"),
        (JSON_ERROR, "JSON error"),
        (b'\n{"detail": "Unauthorized"}', "JSON error"),
    ],
)
def test_sniffer_names_wrong_content(first: bytes, expected: str) -> None:
    assert sniff_wrong_content(first) == expected
    assert sniff_problem(first) is not None


def test_sniffer_passes_real_model_files(tiny_sd: TinySD, tmp_path: Path) -> None:
    from tests.support.tiny_sd import write_pickle_checkpoint

    ckpt = write_pickle_checkpoint(tiny_sd, tmp_path / "old.ckpt")
    for path in (tiny_sd.checkpoint, tiny_sd.lora, tiny_sd.embedding, ckpt):
        with open(path, "rb") as fh:
            assert sniff_wrong_content(fh.read(SNIFF_BYTES)) is None, path


@pytest.mark.parametrize(
    "first",
    [
        b"",
        b"PK\x03\x04\x14\x00\x00\x00",  # a zip (torch.save) checkpoint
        b"\x80\x02}q\x00(X",  # a protocol-2 pickle
        (0x7B).to_bytes(8, "little") + b'{"w": {}}',  # a header length whose first byte is "{"
        (0x3C).to_bytes(8, "little") + b'{"w": {}}',  # ... or "<"
        b"GGUF\x03\x00\x00\x00",
    ],
)
def test_sniffer_never_flags_binary_model_formats(first: bytes) -> None:
    assert sniff_wrong_content(first) is None


def test_a_renamed_html_page_is_caught_before_its_length_is_read(tmp_path: Path) -> None:
    # Read as a length, "<!DOCTYP" is ~5e18 bytes: the reader must say "HTML page", not "header too large".
    path = write_bytes(tmp_path / "sd15.safetensors", HTML_PAGE * 20)
    with pytest.raises(HeaderError) as err:
        read_header(path)
    assert err.value.problem is Problem.HTML
