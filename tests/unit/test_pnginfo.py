"""The A1111 parameters text: written as A1111 writes it, read back from ours and A1111's (PNG, JPEG, WEBP)."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from runtime.pnginfo import decode_user_comment, format_parameters, parse_parameters, pnginfo_for, read_parameters
from tests.support.hermetic import REPO

FIELDS: dict[str, object] = {
    "Steps": 20,
    "Sampler": "Euler a",
    "Schedule type": "Karras",
    "CFG scale": 7.0,
    "Seed": 1234,
    "Size": (512, 512),
    "Model hash": "6ce0161689",
    "Model": "v1-5-pruned-emaonly",
    "Denoising strength": 0.7,
    "Clip skip": 2,
    "Hires upscale": 2,
    "Hires steps": 10,
    "Hires upscaler": "Latent",
    "Lora hashes": "name: abcdef123456",
    "Version": "yijian-x",
}
LINE = (
    "Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x512, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.7, Clip skip: 2, "
    'Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, Lora hashes: "name: abcdef123456", Version: yijian-x'
)

# Real infotexts written by A1111 1.9 / 1.10 (prompts shortened).
A1111_INPAINT = (
    "product shoot in sand with beach elements, warm weather, studio lighting\n"
    "Negative prompt: incomplete figures\n"
    "Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 3001968073, Size: 985x1266, "
    "Model hash: b513c6287d, Model: realism_engine, Denoising strength: 0.75, Mask blur: 2, Version: v1.9.4"
)
A1111_SDXL = (
    "cat portrait, \n"
    "Negative prompt: \n"
    "Steps: 13, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 4, Seed: 2535254266, "
    "Face restoration: CodeFormer, Size: 1216x832, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, "
    "FP8 weight: Enable for SDXL, Cache FP16 weight for LoRA: True, Version: v1.10.1"
)
A1111_MULTILINE = (
    "masterpiece, best quality,\n1girl, <lora:add_detail:0.5>,\n\nsunset\n"
    "Negative prompt: (worst quality, low quality:1.4),\nEasyNegative\n"
    "Steps: 30, Sampler: DPM++ 3M SDE, Schedule type: Karras, CFG scale: 5, Seed: 2480865251, Size: 1152x896, "
    'Hires resize: 1024x1536, Lora hashes: "add_detail: 7c6bad76eb54, more_art: 0123456789ab", '
    'TI hashes: "EasyNegative: c74b4e810b03", Version: v1.10.1'
)


def test_format_is_a1111s_layout() -> None:
    text = format_parameters("a cat\non a sofa", "blurry, lowres", FIELDS)
    assert text == f"a cat\non a sofa\nNegative prompt: blurry, lowres\n{LINE}"


def test_format_leaves_out_an_empty_negative_and_none_values() -> None:
    text = format_parameters("a cat", "", {"Steps": 4, "Sampler": "DDIM", "Seed": 1, "Clip skip": None})
    assert text == "a cat\nSteps: 4, Sampler: DDIM, Seed: 1"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain", "plain"),
        ("a, b", '"a, b"'),
        ("k: v", '"k: v"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("two\nlines", '"two\\nlines"'),
        ("中文, 逗号", '"中文, 逗号"'),  # json-quoted without \u escapes, like A1111
        (7.5, "7.5"),
        (True, "True"),
    ],
)
def test_values_are_quoted_the_way_a1111_quotes_them(value: object, written: str) -> None:
    text = format_parameters("p", "", {"Steps": 1, "Seed": 2, "Note": value})
    assert text.endswith(f", Note: {written}")
    assert parse_parameters(text)["Note"] == str(value)


def test_a_key_a1111_cannot_read_is_refused() -> None:
    for key in ("Bad: key", "X", "a,b"):  # A1111's reader needs two or more word characters
        with pytest.raises(ValueError, match="parameters key"):
            format_parameters("p", "", {key: 1})


def test_parse_reverses_format() -> None:
    prompt, negative = "a cat\n\non a sofa, 中文", "blurry,\nlowres"
    parsed = parse_parameters(format_parameters(prompt, negative, FIELDS))
    assert parsed["Prompt"] == prompt
    assert parsed["Negative prompt"] == negative
    assert parsed["Size-1"] == parsed["Size-2"] == "512"
    assert "Size" not in parsed
    assert parsed["Lora hashes"] == "name: abcdef123456"
    assert parsed["CFG scale"] == "7" and parsed["Seed"] == "1234" and parsed["Version"] == "yijian-x"


def test_parse_real_a1111_infotexts() -> None:
    inpaint = parse_parameters(A1111_INPAINT)
    assert inpaint["Prompt"].startswith("product shoot") and inpaint["Negative prompt"] == "incomplete figures"
    assert (inpaint["Sampler"], inpaint["Schedule type"], inpaint["Mask blur"]) == ("Euler a", "Automatic", "2")
    assert (inpaint["Size-1"], inpaint["Size-2"]) == ("985", "1266")

    sdxl = parse_parameters(A1111_SDXL)
    assert sdxl["Prompt"] == "cat portrait," and sdxl["Negative prompt"] == ""
    assert sdxl["FP8 weight"] == "Enable for SDXL" and sdxl["Cache FP16 weight for LoRA"] == "True"

    multi = parse_parameters(A1111_MULTILINE)
    assert multi["Prompt"] == "masterpiece, best quality,\n1girl, <lora:add_detail:0.5>,\n\nsunset"
    assert multi["Negative prompt"] == "(worst quality, low quality:1.4),\nEasyNegative"
    assert multi["Lora hashes"] == "add_detail: 7c6bad76eb54, more_art: 0123456789ab"
    assert multi["TI hashes"] == "EasyNegative: c74b4e810b03"
    assert (multi["Hires resize-1"], multi["Hires resize-2"]) == ("1024", "1536")


def test_a_last_line_with_few_fields_belongs_to_the_prompt() -> None:
    parsed = parse_parameters("a cat\nstyle: oil, light: soft\r\n")
    assert parsed == {"Prompt": "a cat\nstyle: oil, light: soft", "Negative prompt": ""}


def _png_bytes(text: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG", pnginfo=pnginfo_for(text))
    return buffer.getvalue()


def test_latin1_text_is_an_uncompressed_text_chunk() -> None:
    text = format_parameters("a cat", "", FIELDS)
    raw = _png_bytes(text)
    assert b"tEXtparameters\x00" in raw and b"Seed: 1234" in raw
    assert read_parameters(io.BytesIO(raw)) == text


def test_chinese_text_is_an_uncompressed_itxt_chunk() -> None:
    text = format_parameters("一只猫，坐在沙发上", "模糊", FIELDS)
    raw = _png_bytes(text)
    assert b"iTXtparameters\x00\x00\x00" in raw  # compression flag 0
    assert "一只猫".encode() in raw and b"Seed: 1234" in raw
    assert read_parameters(io.BytesIO(raw)) == text


def test_read_from_a_path_and_from_an_open_image(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(_png_bytes(A1111_SDXL))
    assert read_parameters(path) == A1111_SDXL
    assert read_parameters(str(path)) == A1111_SDXL
    with Image.open(path) as image:
        assert read_parameters(image) == A1111_SDXL


def test_images_without_parameters_give_none(tmp_path: Path) -> None:
    for fmt in ("PNG", "JPEG", "WEBP"):
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, format=fmt)
        assert read_parameters(io.BytesIO(buffer.getvalue())) is None


def _exif_with_user_comment(comment: bytes, byte_order: str) -> bytes:
    """An EXIF block shaped like piexif's: IFD0 -> Exif IFD -> UserComment (type UNDEFINED)."""
    e = "<" if byte_order == "II" else ">"
    header = byte_order.encode() + struct.pack(f"{e}HI", 42, 8)
    ifd0 = struct.pack(f"{e}H", 1) + struct.pack(f"{e}HHII", 0x8769, 4, 1, 26) + struct.pack(f"{e}I", 0)
    exif_ifd = struct.pack(f"{e}H", 1) + struct.pack(f"{e}HHII", 0x9286, 7, len(comment), 44) + struct.pack(f"{e}I", 0)
    return b"Exif\x00\x00" + header + ifd0 + exif_ifd + comment


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("byte_order", ["MM", "II"])
@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-16-le"])
def test_exif_user_comment_as_a1111_writes_it(fmt: str, byte_order: str, encoding: str) -> None:
    comment = b"UNICODE\x00" + A1111_MULTILINE.encode(encoding)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format=fmt, exif=_exif_with_user_comment(comment, byte_order))
    assert read_parameters(io.BytesIO(buffer.getvalue())) == A1111_MULTILINE


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"UNICODE\x00" + "一只猫\nSteps: 20".encode("utf-16-be"), "一只猫\nSteps: 20"),
        (b"UNICODE\x00" + "一只猫\nSteps: 20".encode("utf-16-le"), "一只猫\nSteps: 20"),
        (b"UNICODE\x00" + "中文".encode("utf-16-be"), "中文"),  # no ASCII to tell by: piexif's big-endian
        (b"UNICODE\x00" + "\ufeffSteps: 1".encode("utf-16-le"), "Steps: 1"),  # a BOM decides
        (b"ASCII\x00\x00\x00Steps: 1\x00", "Steps: 1"),
        (b"\x00" * 8 + "步数: 1".encode(), "步数: 1"),
    ],
)
def test_user_comment_encodings(raw: bytes, text: str) -> None:
    assert decode_user_comment(raw) == text


def test_pnginfo_and_outputs_never_import_torch() -> None:
    probe = "import sys, runtime.pnginfo, runtime.outputs, runtime.samplers; print(sorted({'torch', 'diffusers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
