"""The hires-fix upscalers: the A1111 names, latent modes, resamplers, and the ESRGAN-family models.

Models are tiny random networks (8 channels, one block) saved in every layout
met in the wild, so loading, layout detection and tiling run in milliseconds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import Tensor

from runtime.upscale import (
    LATENT_MODES,
    Kind,
    ModelCache,
    RRDBNet,
    SRNet,
    SRVGGNetCompact,
    UpscalerInfo,
    UpscalerNotFound,
    UpscalerUnsupported,
    default_dtype,
    find_upscaler,
    is_latent,
    list_upscalers,
    load_model,
    run_tiled,
    upscale_image,
    upscale_latents,
)

BUILTIN_NAMES = [
    "Latent",
    "Latent (antialiased)",
    "Latent (bicubic)",
    "Latent (bicubic antialiased)",
    "Latent (nearest)",
    "Latent (nearest-exact)",
    "None",
    "Lanczos",
    "Nearest",
]


# --- tiny models, in each layout ------------------------------------------------


def tiny_rrdb(*, n_up: int = 2, unshuffle: int = 1, seed: int = 0) -> RRDBNet:
    torch.manual_seed(seed)
    return RRDBNet(nf=8, nb=2, gc=4, n_up=n_up, unshuffle=unshuffle).eval()


def tiny_compact(seed: int = 0) -> SRVGGNetCompact:
    torch.manual_seed(seed)
    net = SRVGGNetCompact(nf=8, n_conv=2, scale=4).eval()
    for module in net.body:  # PReLU starts at 0.25 everywhere: vary it so a mix-up would show
        if isinstance(module, torch.nn.PReLU):
            module.weight.data.uniform_(0.0, 0.5)
    return net


def old_layout(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The same weights under the original ESRGAN names (model.0, model.1.sub.N.RDBk.convj.0, …)."""
    n_up = len({k for k in state if re.fullmatch(r"conv_up\d+\.weight", k)})
    nb = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    top = {"conv_first": 0, "conv_hr": 3 * n_up + 2, "conv_last": 3 * n_up + 4}
    top.update({f"conv_up{i + 1}": 3 + 3 * i for i in range(n_up)})
    out = {}
    for key, value in state.items():
        name, param = key.rsplit(".", 1)
        if m := re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)", name):
            out[f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0.{param}"] = value
        elif name == "conv_body":
            out[f"model.1.sub.{nb}.{param}"] = value
        else:
            out[f"model.{top[name]}.{param}"] = value
    return out


def bsrgan_layout(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The same weights under BSRGAN's names (RRDB_trunk, trunk_conv, upconvN, HRconv)."""
    renames = [(r"^body\.(\d+)\.rdb(\d)\.", r"RRDB_trunk.\1.RDB\2."), (r"^conv_body\.", "trunk_conv."),
               (r"^conv_up(\d)\.", r"upconv\1."), (r"^conv_hr\.", "HRconv.")]  # fmt: skip
    out = {}
    for key, value in state.items():
        for pattern, repl in renames:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def save(path: Path, state: dict[str, Tensor], *, wrap: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone().contiguous() for k, v in state.items()}
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({wrap: state} if wrap else state, path)
    return path


@pytest.fixture
def esrgan(tmp_path: Path) -> Path:
    return tmp_path / "bundle" / "models" / "ESRGAN"


def image16(mode: str = "RGB") -> Image.Image:
    torch.manual_seed(1)
    pixels = (torch.rand(16, 16, len(mode)) * 255).to(torch.uint8).numpy()
    return Image.fromarray(pixels, mode)


# --- the registry ---------------------------------------------------------------


def test_builtins_are_listed_even_without_a_model_folder(esrgan: Path) -> None:
    names = [info.name for info in list_upscalers(esrgan)]
    assert names == BUILTIN_NAMES
    assert all(is_latent(n) == n.startswith("Latent") for n in names)
    assert LATENT_MODES["Latent"].mode == "bilinear" and not LATENT_MODES["Latent"].antialias


def test_model_files_are_listed_by_stem(esrgan: Path) -> None:
    state = tiny_rrdb().state_dict()
    save(esrgan / "4x-UltraSharp.pth", state)
    save(esrgan / "sub" / "R-ESRGAN 4x+.safetensors", state)
    save(esrgan / "dup.pth", state)
    save(esrgan / "dup.safetensors", state)  # one entry per stem, safetensors first
    save(esrgan / "Lanczos.pth", state)  # a built-in name keeps its meaning
    save(esrgan / ".hidden" / "secret.pth", state)
    (esrgan / "notes.txt").write_text("x")
    (esrgan / "big.pth.incomplete").write_bytes(b"x")

    infos = list_upscalers(esrgan)
    models = [i for i in infos if i.kind is Kind.MODEL]
    assert [i.name for i in infos[: len(BUILTIN_NAMES)]] == BUILTIN_NAMES
    assert [i.name for i in models] == ["4x-UltraSharp", "dup", "R-ESRGAN 4x+"]
    assert next(i for i in models if i.name == "dup").path == esrgan / "dup.safetensors"
    assert find_upscaler("R-ESRGAN 4x+", esrgan).path == esrgan / "sub" / "R-ESRGAN 4x+.safetensors"
    assert find_upscaler("Lanczos", esrgan).kind is Kind.RESAMPLE


def test_an_unknown_name_lists_what_there_is(esrgan: Path) -> None:
    save(esrgan / "4x-foo.pth", tiny_rrdb().state_dict())
    with pytest.raises(UpscalerNotFound) as caught:
        find_upscaler("4x-bar", esrgan)
    assert caught.value.code == "UPSCALER_NOT_FOUND"
    assert "4x-bar" in caught.value.message("en") and "4x-foo" in caught.value.hint("en")
    with pytest.raises(UpscalerNotFound):
        upscale_latents(torch.zeros(1, 4, 8, 8), "Latent (fancy)", scale=2)


# --- latents --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LATENT_MODES))
def test_latent_modes_give_the_target_shape(name: str) -> None:
    latents = torch.randn(2, 4, 64, 48)
    assert upscale_latents(latents, name, scale=1.5).shape == (2, 4, 96, 72)
    assert upscale_latents(latents, name, size=(100, 130)).shape == (2, 4, 130, 100)
    half = upscale_latents(latents.half(), name, scale=2)
    assert half.dtype == torch.float16 and half.shape == (2, 4, 128, 96)


def test_latent_is_bilinear_without_antialias() -> None:
    latents = torch.randn(1, 4, 8, 8)
    want = torch.nn.functional.interpolate(latents, size=(16, 16), mode="bilinear", antialias=False)
    assert torch.equal(upscale_latents(latents, "Latent", scale=2), want)
    with pytest.raises(ValueError):
        upscale_latents(latents, "Latent", scale=2, size=(16, 16))


# --- resamplers -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["Lanczos", "None", "Nearest"])
def test_resamplers_give_the_exact_target_size(name: str) -> None:
    image = image16()
    assert upscale_image(image, name, size=(37, 23)).size == (37, 23)
    assert upscale_image(image, name, scale=2.5).size == (40, 40)


def test_nearest_repeats_pixels_and_latents_are_refused() -> None:
    image = image16()
    big = upscale_image(image, "Nearest", scale=2)
    assert big.getpixel((2, 3)) == image.getpixel((1, 1))
    with pytest.raises(ValueError, match="latents"):
        upscale_image(image, "Latent", scale=2)


# --- ESRGAN-family models -------------------------------------------------------


def variants() -> list[tuple[str, SRNet, dict[str, Tensor], str | None, str]]:
    """(label, reference network, state dict as saved, wrapper, file name)."""
    x4, x2, x1, compact = tiny_rrdb(), tiny_rrdb(unshuffle=2), tiny_rrdb(unshuffle=4), tiny_compact()
    old_x2 = tiny_rrdb(n_up=1)
    return [
        ("new x4 params_ema", x4, x4.state_dict(), "params_ema", "4x-new.pth"),
        ("new x4 safetensors", x4, x4.state_dict(), None, "4x-new.safetensors"),
        ("new x2 unshuffle params", x2, x2.state_dict(), "params", "2x-plus.pth"),
        ("new x1 unshuffle", x1, x1.state_dict(), None, "1x-new.pt"),
        ("old x4", x4, old_layout(x4.state_dict()), None, "4x-old.pth"),
        ("old x4 safetensors", x4, old_layout(x4.state_dict()), None, "4x-old.safetensors"),
        ("old x2", old_x2, old_layout(old_x2.state_dict()), None, "2x-old.pth"),
        ("bsrgan x4", x4, bsrgan_layout(x4.state_dict()), None, "BSRGAN.pth"),
        ("compact x4", compact, compact.state_dict(), "params", "realesr-general-x4v3.pth"),
    ]


@pytest.mark.parametrize("case", variants(), ids=lambda c: c[0])
def test_each_layout_loads_and_matches_the_reference(
    case: tuple[str, SRNet, dict[str, Tensor], str | None, str], esrgan: Path
) -> None:
    _, reference, state, wrap, filename = case
    path = save(esrgan / filename, state, wrap=wrap)
    assert find_upscaler(path.stem, esrgan).path == path

    model = load_model(path)
    assert (type(model), model.scale, model.in_channels, model.out_channels) == (
        type(reference),
        reference.scale,
        3,
        3,
    )
    if isinstance(model, RRDBNet):
        assert len(model.body) == 2 and model.conv_first.out_channels == 8
        assert model.state_dict()["body.0.rdb1.conv1.weight"].shape[0] == 4  # growth channels
    torch.manual_seed(2)
    x = torch.rand(1, 3, 12, 10)
    with torch.inference_mode():
        assert torch.allclose(model(x), reference(x), atol=1e-6)
        assert model(x).shape == (1, 3, 12 * reference.scale, 10 * reference.scale)

    image = image16()
    assert upscale_image(image, path.stem, scale=4, esrgan_dir=esrgan).size == (64, 64)
    assert upscale_image(image, path.stem, scale=2, esrgan_dir=esrgan).size == (32, 32)
    assert upscale_image(image, path.stem, size=(50, 21), esrgan_dir=esrgan).size == (50, 21)


def test_odd_sizes_go_through_an_unshuffling_model() -> None:
    x = torch.rand(1, 3, 11, 13)
    with torch.inference_mode():
        assert tiny_rrdb(unshuffle=2)(x).shape == (1, 3, 22, 26)
        assert tiny_rrdb(unshuffle=4)(x).shape == (1, 3, 11, 13)


@pytest.mark.parametrize(
    ("make", "size", "tile"),
    [(tiny_rrdb, 40, 12), (lambda: tiny_rrdb(unshuffle=2), 42, 7), (tiny_compact, 40, 12)],
    ids=["x4", "x2-unshuffle-odd-tiles", "compact"],
)
def test_tiled_and_whole_outputs_nearly_match(make: Callable[[], SRNet], size: int, tile: int) -> None:
    # 42 in tiles of 7 puts tile edges on odd pixels: the crops must stay on the unshuffle grid.
    net = make()
    torch.manual_seed(3)
    x = torch.rand(1, 3, size, size + 4)
    ticks: list[tuple[int, int]] = []
    whole = run_tiled(net, x, tile=0)
    tiled = run_tiled(net, x, tile=tile, tile_pad=16, on_tile=lambda done, total: ticks.append((done, total)))
    assert tiled.shape == whole.shape == (1, 3, size * net.scale, (size + 4) * net.scale)
    assert (tiled - whole).abs().max().item() < 1e-4
    assert len(ticks) > 1 and ticks[-1][0] == ticks[-1][1] == len(ticks)


def test_a_2x_model_runs_twice_for_4x_and_alpha_is_kept(esrgan: Path) -> None:
    save(esrgan / "2x.safetensors", tiny_rrdb(unshuffle=2).state_dict())
    calls: list[int] = []
    out = upscale_image(image16("RGBA"), "2x", scale=4, esrgan_dir=esrgan, on_tile=lambda d, t: calls.append(d))
    assert out.size == (64, 64) and out.mode == "RGBA"
    assert len(calls) == 2  # one tile per pass


def test_the_cache_keeps_one_model_and_notices_a_replaced_file(esrgan: Path) -> None:
    a = save(esrgan / "a.pth", tiny_rrdb().state_dict())
    b = save(esrgan / "b.pth", tiny_compact().state_dict())
    cache = ModelCache()
    first = cache.get(a, device="cpu", dtype=torch.float32)
    assert cache.get(a, device="cpu", dtype=torch.float32) is first
    assert isinstance(cache.get(b, device="cpu", dtype=torch.float32), SRVGGNetCompact)
    assert cache.get(a, device="cpu", dtype=torch.float32) is not first  # one at a time
    again = cache.get(a, device="cpu", dtype=torch.float32)
    save(a, tiny_rrdb(n_up=1).state_dict())
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 10**9))
    assert cache.get(a, device="cpu", dtype=torch.float32) is not again
    assert cache.get(a, device="cpu", dtype=torch.float32).scale == 2
    image = upscale_image(image16(), UpscalerInfo("a", Kind.MODEL, path=a), scale=2, cache=cache)
    assert image.size == (32, 32)
    cache.clear()


def test_half_precision_on_cuda_only() -> None:
    assert default_dtype("cuda") == torch.float16
    assert default_dtype("cuda:1") == torch.float16
    assert default_dtype("cpu") == torch.float32


# --- files that must be refused -------------------------------------------------

RAN: list[str] = []


def _side_effect() -> None:
    RAN.append("ran")


class Payload:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_side_effect, ())


def test_a_pickle_with_code_is_refused_unrun(esrgan: Path) -> None:
    path = esrgan / "evil.pth"
    path.parent.mkdir(parents=True)
    torch.save({"params": tiny_rrdb().state_dict(), "payload": Payload()}, path)
    with pytest.raises(UpscalerUnsupported) as caught:
        upscale_image(image16(), "evil", scale=2, esrgan_dir=esrgan)
    assert RAN == []
    assert caught.value.code == "UPSCALER_UNSUPPORTED"
    assert "evil.pth" in caught.value.message("en") and "Python objects" in caught.value.message("en")
    assert "evil.pth" in caught.value.message("zh")


@pytest.mark.parametrize(
    ("filename", "content", "says"),
    [
        ("garbage.pth", b"\x00garbage" * 64, "cannot be read"),
        ("garbage.safetensors", b"\x00garbage" * 64, "cannot be read"),
        ("empty.pt", None, "does not hold a set of weights"),
        ("unknown.safetensors", {"encoder.weight": torch.zeros(2, 2)}, "not one we know"),
        ("truncated.pth", {k: v for k, v in tiny_rrdb().state_dict().items() if "rdb3" not in k}, "do not fit"),
        (
            "no-blocks.pth",
            {
                "conv_first.weight": torch.zeros(8, 3, 3, 3),
                "conv_last.weight": torch.zeros(3, 8, 3, 3),
                "body.0.x": torch.zeros(1),
            },
            "incomplete",
        ),
        (
            "bad-old.pth",
            {"model.0.weight": torch.zeros(8, 3, 3, 3), "model.5.weight": torch.zeros(3, 8, 3, 3)},
            "old-ESRGAN",
        ),
        (
            "relu-compact.pth",
            {"body.0.weight": torch.zeros(8, 3, 3, 3), "body.2.weight": torch.zeros(48, 8, 3, 3)},
            "SRVGG",
        ),
    ],
)
def test_unusable_files_say_so_by_name(filename: str, content: object, says: str, esrgan: Path) -> None:
    path = esrgan / filename
    if isinstance(content, bytes):
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
    elif content is None:
        path.parent.mkdir(parents=True)
        torch.save({}, path)
    else:
        assert isinstance(content, dict)
        save(path, content)
    with pytest.raises(UpscalerUnsupported) as caught:
        load_model(path)
    message = caught.value.message("en")
    assert filename in message and says in message, message
    assert filename in caught.value.message("zh")
    assert caught.value.to_dict("en")["exit_code"] == 7


@pytest.mark.parametrize("cls", [UpscalerUnsupported, UpscalerNotFound])
def test_errors_speak_both_languages(cls: type[UpscalerUnsupported | UpscalerNotFound]) -> None:
    assert re.search(r"[\u4e00-\u9fff]", cls.zh) and re.search(r"[\u4e00-\u9fff]", cls.hint_zh)
    assert not re.search(r"[\u4e00-\u9fff]", cls.en + cls.hint_en)

    def fields(template: str) -> set[str]:
        return {re.sub(r"_(zh|en)$", "", f) for f in re.findall(r"{(\w+)", template)}

    assert fields(cls.zh) == fields(cls.en) and fields(cls.hint_zh) == fields(cls.hint_en)


def test_at_scale_1_a_model_runs_once_as_in_a1111(esrgan: Path) -> None:
    """A1111's Upscaler.upscale runs the model once at scale 1 (1x sharpening and denoising models), then resizes to
    the target; a target smaller than the image gets no model pass."""
    save(esrgan / "1x-sharpen.pth", tiny_compact().state_dict())
    passes: list[int] = []
    out = upscale_image(image16(), "1x-sharpen", size=(16, 16), esrgan_dir=esrgan, on_tile=lambda d, t: passes.append(d))
    assert out.size == (16, 16) and len(passes) == 1
    passes.clear()
    assert upscale_image(image16(), "1x-sharpen", size=(8, 8), esrgan_dir=esrgan,
                         on_tile=lambda d, t: passes.append(d)).size == (8, 8)  # fmt: skip
    assert passes == []
