"""Read a ``.safetensors`` header with the standard library, and spot what is not a model at all.

A ``.safetensors`` file is an 8-byte little-endian header length *n*, *n*
bytes of UTF-8 JSON (``{"name": {"dtype", "shape", "data_offsets"}, ...,
"__metadata__": {str: str}}``), then the tensor bytes.  :func:`read_header`
checks all of it without loading a tensor and, when the file is not a
usable model, raises :class:`HeaderError` naming which of the
:class:`Problem` kinds it is: the doctor reports ``MODEL_FILE_CORRUPT`` with
that reason, and the library scan lists it.

:func:`sniff_wrong_content` is the cheap check the download engine runs on
the first bytes of every model download: an HTML page, a Git LFS pointer or
a JSON error served with status 200 is caught before gigabytes are written.
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The safetensors library refuses headers over 100 MB; real ones are a few hundred KB at most.
MAX_HEADER_BYTES = 100 * 1024 * 1024
SNIFF_BYTES = 1024  # how much of a file sniff_wrong_content needs to see

LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<?xml", b"<!--")


class Problem(enum.Enum):
    """Why a file is not a readable safetensors model; ``value`` is the stable reason code."""

    EMPTY = "empty"
    TRUNCATED = "truncated"
    HTML = "html"
    LFS_POINTER = "lfs-pointer"
    JSON_ERROR = "json-error"
    NOT_JSON = "not-json"
    TOO_LARGE = "header-too-large"
    BAD_LAYOUT = "bad-layout"

    @property
    def en(self) -> str:
        return _TEXT[self][1]

    @property
    def zh(self) -> str:
        return _TEXT[self][0]


_TEXT: dict[Problem, tuple[str, str]] = {
    Problem.EMPTY: ("空文件", "empty file"),
    Problem.TRUNCATED: ("文件不完整（下载中断？）", "truncated (an interrupted download?)"),
    Problem.HTML: ("这是一个网页（HTML），不是模型", "HTML page, not a model"),
    Problem.LFS_POINTER: ("这是 Git LFS 指针文本，不是模型本身", "Git LFS pointer text, not the model itself"),
    Problem.JSON_ERROR: ("这是服务器返回的 JSON 错误信息，不是模型", "JSON error message from a server, not a model"),
    Problem.NOT_JSON: ("文件头不是 JSON", "header is not JSON"),
    Problem.TOO_LARGE: ("文件头长度不合理，不是 safetensors 文件", "implausible header length: not a safetensors file"),
    Problem.BAD_LAYOUT: ("文件头结构不对", "header has the wrong structure"),
}

# sniff_wrong_content's answers, by problem (the strings the download engine reports).
SNIFF_NAMES: dict[Problem, str] = {
    Problem.HTML: "HTML page",
    Problem.LFS_POINTER: "Git LFS pointer",
    Problem.JSON_ERROR: "JSON error",
}


class HeaderError(Exception):
    """A file that is not a readable safetensors model; ``problem`` says which way."""

    def __init__(self, problem: Problem, path: Path, detail: str = "") -> None:
        self.problem = problem
        self.path = path
        self.detail = detail
        super().__init__(f"{path}: {problem.en}" + (f" ({detail})" if detail else ""))

    @property
    def reason(self) -> str:
        """The stable reason code (``"html"``, ``"truncated"`` ...)."""
        return self.problem.value


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    start: int  # offsets into the data section
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    """The parsed header of one file."""

    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)
    header_bytes: int = 0  # n, the JSON length
    data_bytes: int = 0  # size of the tensor data the header describes

    def shape(self, key: str) -> tuple[int, ...] | None:
        info = self.tensors.get(key)
        return info.shape if info else None

    def keys(self) -> list[str]:
        return list(self.tensors)


def _classify_text(first_bytes: bytes) -> Problem | None:
    head = first_bytes.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        return None
    if head.startswith(LFS_POINTER_PREFIX):
        return Problem.LFS_POINTER
    lowered = head[:SNIFF_BYTES].lower()
    if lowered.startswith(_HTML_STARTS) or (lowered.startswith(b"<") and b"<html" in lowered):
        return Problem.HTML
    if head[:1] in (b"{", b"["):
        return Problem.JSON_ERROR
    return None


def sniff_problem(first_bytes: bytes) -> Problem | None:
    """:attr:`Problem.HTML`, :attr:`Problem.LFS_POINTER` or :attr:`Problem.JSON_ERROR` for such bytes, else None.

    A real model file is never mistaken: a safetensors header length is
    below 2**32, so its bytes 4-7 are zero, and pickle/zip checkpoints start
    with binary magic; text pages contain no NUL byte.
    """
    if b"\x00" in first_bytes[:8]:
        return None
    return _classify_text(first_bytes)


def sniff_wrong_content(first_bytes: bytes) -> str | None:
    """``"HTML page"``, ``"Git LFS pointer"`` or ``"JSON error"`` if the bytes are one of those, else None.

    For the download engine: give it the first :data:`SNIFF_BYTES` of a
    download (fewer work too).  See :func:`sniff_problem`.
    """
    problem = sniff_problem(first_bytes)
    return SNIFF_NAMES[problem] if problem else None


NOT_SAFETENSORS = "file that is not in the safetensors format"
MAX_HEADER = 100 << 20  # safetensors refuses larger headers


def sniff_safetensors(first_bytes: bytes) -> str | None:
    """For a download that will be named ``*.safetensors``: :func:`sniff_wrong_content`, and then the
    format itself (an 8-byte little-endian header length that makes sense, then the JSON header's ``{``)."""
    problem = sniff_wrong_content(first_bytes)
    if problem is not None or len(first_bytes) < 9:
        return problem
    n = int.from_bytes(first_bytes[:8], "little")
    if not 2 <= n <= MAX_HEADER or first_bytes[8:9] != b"{":
        return NOT_SAFETENSORS
    return None


def _parse_tensor(name: str, raw: Any, path: Path) -> TensorInfo:
    if not isinstance(raw, dict):
        raise HeaderError(Problem.BAD_LAYOUT, path, f"entry {name!r} is not an object")
    dtype, shape, offsets = raw.get("dtype"), raw.get("shape"), raw.get("data_offsets")
    if not (isinstance(dtype, str) and isinstance(shape, list) and isinstance(offsets, list)):
        raise HeaderError(Problem.BAD_LAYOUT, path, f"entry {name!r} lacks dtype/shape/data_offsets")
    dims = tuple(d for d in shape if isinstance(d, int) and not isinstance(d, bool) and d >= 0)
    ends = [o for o in offsets if isinstance(o, int) and not isinstance(o, bool)]
    if len(dims) != len(shape) or len(ends) != 2 or not 0 <= ends[0] <= ends[1]:
        raise HeaderError(Problem.BAD_LAYOUT, path, f"entry {name!r} has shape {shape} and offsets {offsets}")
    return TensorInfo(dtype, dims, ends[0], ends[1])


def read_header(path: Path) -> SafetensorsHeader:
    """Parse and check the header of ``path``; raise :class:`HeaderError` (or OSError) if it is unusable."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        first = fh.read(SNIFF_BYTES)
        if not first:
            raise HeaderError(Problem.EMPTY, path)
        text_problem = sniff_problem(first)
        if text_problem is not None:
            raise HeaderError(text_problem, path)
        if len(first) < 8:
            raise HeaderError(Problem.TRUNCATED, path, f"only {size} bytes")
        n = int.from_bytes(first[:8], "little")
        if n > MAX_HEADER_BYTES:
            raise HeaderError(Problem.TOO_LARGE, path, f"{n} bytes")
        if size < 8 + n:
            raise HeaderError(Problem.TRUNCATED, path, f"the header needs {8 + n} bytes, the file has {size}")
        fh.seek(8)
        raw = fh.read(n)
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HeaderError(Problem.NOT_JSON, path, str(exc)) from None
    if not isinstance(parsed, dict):
        raise HeaderError(Problem.BAD_LAYOUT, path, "the header is not a JSON object")
    meta_raw = parsed.pop("__metadata__", None) or {}
    if not isinstance(meta_raw, dict):
        raise HeaderError(Problem.BAD_LAYOUT, path, "__metadata__ is not an object")
    metadata = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in meta_raw.items()}
    tensors = {name: _parse_tensor(name, entry, path) for name, entry in parsed.items()}
    data_bytes = max((t.end for t in tensors.values()), default=0)
    if size < 8 + n + data_bytes:
        raise HeaderError(
            Problem.TRUNCATED, path, f"the header describes {8 + n + data_bytes} bytes, the file has {size}"
        )
    return SafetensorsHeader(tensors, metadata, n, data_bytes)
