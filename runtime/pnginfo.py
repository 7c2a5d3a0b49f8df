"""The A1111 "parameters" text: write it, parse it, and find it in image files.

A1111 stores how an image was made as one text in the image itself, and the
whole ecosystem reads that text: PNG Info tabs, Civitai's uploader, image
browsers, prompt-copying extensions.  Matching its layout byte for byte is what
makes our images readable by them and theirs by us, so this module follows
``modules/infotext_utils.py`` (``quote``, ``unquote``,
``parse_generation_parameters``) and ``modules/images.py`` (how the text is
stored) rather than inventing a format::

    a cat on a sofa
    Negative prompt: blurry
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, Lora hashes: "cat: 1a2b3c4d5e6f"

In PNG files the text is a ``parameters`` text chunk, uncompressed so that
tools grepping the bytes find it; in JPEG and WEBP it is the EXIF UserComment,
as piexif writes it.  Only Pillow is needed, never torch.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import IO

from PIL import Image
from PIL.PngImagePlugin import PngInfo

KEY = "parameters"
NEGATIVE = "Negative prompt:"

# A1111's own expressions: one "Key: value" pair (value quoted JSON-style or up to the next comma), and a size.
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^(\d+)x(\d+)$")
_VALID_KEY = re.compile(r"\w[\w \-/]+")

_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_UNICODE, _ASCII, _JIS, _UNDEFINED = b"UNICODE\0", b"ASCII\0\0\0", b"JIS\0\0\0\0\0", b"\0" * 8


def _text(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # A1111 writes "CFG scale: 7", not "7.0"
    if isinstance(value, float):
        return str(round(value, 6))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}x{value[1]}"  # Size: (512, 768) -> 512x768
    return str(value)


def quote(value: str) -> str:
    """A value as A1111 writes it: JSON-quoted when it holds a separator.

    A1111 quotes on ``,``, ``:`` and a newline; a ``"`` is added here so that a
    value which begins and ends with one can never be mistaken for a quoted one.
    """
    if any(c in value for c in ',:"\n'):
        return json.dumps(value, ensure_ascii=False)
    return value


def unquote(value: str) -> str:
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    try:
        loaded = json.loads(value)
    except ValueError:
        return value
    return loaded if isinstance(loaded, str) else value


def format_parameters(prompt: str, negative: str, fields: Mapping[str, object]) -> str:
    """The text A1111 writes: the prompt, ``Negative prompt: …`` (when there is one), then one line of fields.

    Fields keep the caller's order; ``None`` values are left out.  Floats lose a
    trailing ``.0`` and a ``(width, height)`` pair becomes ``WxH``, as in A1111.
    """
    pairs = []
    for key, value in fields.items():
        if value is None:
            continue
        if not _VALID_KEY.fullmatch(key):
            raise ValueError(f"{key!r} cannot be a parameters key (A1111 reads only letters, digits, space, - and /)")
        pairs.append(f"{key}: {quote(_text(value))}")
    negative_line = f"\n{NEGATIVE} {negative}" if negative else ""
    return f"{prompt}{negative_line}\n{', '.join(pairs)}".strip()


def parse_parameters(text: str) -> dict[str, str]:
    """A1111's ``parse_generation_parameters`` without its UI defaults.

    Returns ``Prompt``, ``Negative prompt`` and every field as a string, with
    quoted values unquoted and ``Size: 512x768`` split into ``Size-1``/``Size-2``
    (any ``WxH`` value is, like ``Hires resize``).  The last line counts as the
    field line only when it holds at least three fields, as in A1111.
    """
    *lines, last = text.replace("\r\n", "\n").strip().split("\n")
    if len(_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""

    prompt = negative = ""
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith(NEGATIVE):
            in_negative = True
            line = line[len(NEGATIVE) :].strip()
        if in_negative:  # joined as A1111 joins them: a blank first line is dropped
            negative = f"{negative}\n{line}" if negative else line
        else:
            prompt = f"{prompt}\n{line}" if prompt else line

    result = {"Prompt": prompt, "Negative prompt": negative}
    for key, raw in _PARAM.findall(last):
        value = unquote(raw) if raw.startswith('"') else raw.strip()
        size = _SIZE.match(value)
        if size:
            result[f"{key}-1"], result[f"{key}-2"] = size.group(1), size.group(2)
        else:
            result[key] = value
    return result


def pnginfo_for(text: str) -> PngInfo:
    """A ``parameters`` chunk to pass to ``Image.save(..., pnginfo=…)``."""
    return text_chunks({KEY: text})


def text_chunks(texts: dict[str, str]) -> PngInfo:
    """PNG text chunks, one per key: uncompressed ``tEXt`` when the text fits latin-1 (what A1111 writes through
    Pillow's ``add_text``), otherwise uncompressed UTF-8 ``iTXt`` (Chinese prompts)."""
    info = PngInfo()
    for key, text in texts.items():
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            info.add_itxt(key, text, zip=False)
        else:
            info.add_text(key, text, zip=False)
    return info


def read_parameters(source: str | os.PathLike[str] | IO[bytes] | Image.Image) -> str | None:
    """The parameters text stored in an image (a path, an open file or a PIL image), or ``None``."""
    if isinstance(source, Image.Image):
        return _from_image(source)
    with Image.open(source) as image:
        return _from_image(image)


def _from_image(image: Image.Image) -> str | None:
    found = image.info.get(KEY)
    if found is None and image.format == "PNG":
        found = getattr(image, "text", {}).get(KEY)  # chunks after the pixel data are read only on load
    if isinstance(found, bytes):
        found = found.decode("utf-8", "replace")
    if isinstance(found, str) and found:
        return found
    comment = _user_comment(image)
    if comment:
        return comment
    gif_comment = image.info.get("comment") if image.format == "GIF" else None
    if isinstance(gif_comment, bytes):
        gif_comment = gif_comment.decode("utf-8", "replace")
    return gif_comment or None


def _user_comment(image: Image.Image) -> str | None:
    try:
        raw = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    except (OSError, ValueError, SyntaxError):  # a damaged EXIF block is just "no parameters"
        return None
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if not isinstance(raw, bytes) or not raw:
        return None
    return decode_user_comment(raw) or None


def decode_user_comment(raw: bytes) -> str:
    """An EXIF UserComment: an 8-byte charset prefix, then the text.

    piexif (A1111) writes ``UNICODE\\0`` + UTF-16 big-endian; some tools write
    little-endian, so a byte-order mark wins, else the side the zero bytes of
    ASCII characters fall on.
    """
    prefix, body = raw[:8], raw[8:]
    if prefix == _UNICODE:
        text = _utf16(body)
    elif prefix == _JIS:
        text = body.decode("shift_jis", "replace")
    elif prefix in (_ASCII, _UNDEFINED):
        text = body.decode("utf-8", "replace")
    else:
        text = raw.decode("utf-8", "replace")
    return text.rstrip("\0")


def _utf16(body: bytes) -> str:
    body = body[: len(body) // 2 * 2]
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return body.decode("utf-16", "replace")  # the byte-order mark says which
    # Parameters text is mostly ASCII ("Steps: 20, …"): count the characters that read as ASCII either way.
    pairs = list(zip(body[0::2], body[1::2], strict=True))
    big = sum(1 for hi, lo in pairs if hi == 0 and 0x09 <= lo < 0x7F)
    little = sum(1 for lo, hi in pairs if hi == 0 and 0x09 <= lo < 0x7F)
    return body.decode("utf-16-le" if little > big else "utf-16-be", "replace")
