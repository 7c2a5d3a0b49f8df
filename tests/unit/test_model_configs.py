"""The per-architecture config folders: shipped as data, written to cache/configs without any network."""

from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path

import pytest

from bootstrap.layout import Bundle
from launcher.models.architecture import ARCHITECTURES
from launcher.models.configs import (
    BPE_FILE,
    MARKER,
    SHIPPED,
    architectures_in_library,
    architectures_path,
    clip_tokenizer_files,
    config_folder,
    ensure_config_folders,
    ensure_configs,
    load_architectures,
    missing_architectures,
    shipped_folder,
)
from tests.support.fake_models import HTML_PAGE, SD2_CKPT, SD15_CKPT, SDXL_CKPT, write_safetensors

REPO_BUNDLE = Bundle.locate({})
SHIPPED_SPECS = load_architectures(architectures_path(REPO_BUNDLE))
BPE = REPO_BUNDLE.code / SHIPPED / BPE_FILE


@pytest.fixture
def bundle(tmp_path: Path) -> Bundle:
    return Bundle(tmp_path / "bundle")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network used: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# -- the shipped data -----------------------------------------------------------------------------------------------


def test_every_architecture_ships_its_configs_without_weights() -> None:
    assert set(SHIPPED_SPECS) == set(ARCHITECTURES)
    for spec in SHIPPED_SPECS.values():
        files = set(spec.files)
        needed = {"model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
                  "unet/config.json", "vae/config.json", "tokenizer/tokenizer_config.json"}  # fmt: skip
        assert needed <= files, spec.id
        assert "tokenizer" in spec.tokenizers
        assert not [f for f in files if f.endswith((".safetensors", ".bin", ".ckpt", ".onnx", ".msgpack"))]
        for rel in files:  # each listed file is there and is a JSON object
            assert isinstance(json.loads((shipped_folder(REPO_BUNDLE, spec.id) / rel).read_text("utf-8")), dict)
        shipped = {p.relative_to(shipped_folder(REPO_BUNDLE, spec.id)).as_posix()
                   for p in shipped_folder(REPO_BUNDLE, spec.id).rglob("*") if p.is_file()}  # fmt: skip
        assert shipped == files, f"{spec.id}: files on disk and in architectures.toml differ"
        index = json.loads((shipped_folder(REPO_BUNDLE, spec.id) / "model_index.json").read_text("utf-8"))
        for component, value in index.items():  # every component the index names has its config shipped
            if isinstance(value, list) and value[0] is not None:
                assert any(f.startswith(f"{component}/") for f in files), f"{spec.id}: {component}"
    assert set(SHIPPED_SPECS["sdxl"].tokenizers) == {"tokenizer", "tokenizer_2"}
    assert BPE.stat().st_size < 2_000_000  # one copy for all, a few MB at most in total


def test_the_configs_say_what_tells_the_architectures_apart() -> None:
    def cfg(arch: str, rel: str) -> dict[str, object]:
        return dict(json.loads((shipped_folder(REPO_BUNDLE, arch) / rel).read_text("utf-8")))

    width = {a: cfg(a, "unet/config.json")["cross_attention_dim"] for a in ARCHITECTURES}
    assert width == {"sd15": 768, "sd2": 1024, "sd2-v": 1024, "sdxl": 2048}  # architecture.py BY_CONTEXT_WIDTH
    assert cfg("sd2-v", "scheduler/scheduler_config.json")["prediction_type"] == "v_prediction"
    assert cfg("sd2", "scheduler/scheduler_config.json")["prediction_type"] == "epsilon"
    assert cfg("sd2", "tokenizer/tokenizer_config.json")["pad_token"] == "!"
    assert cfg("sd15", "tokenizer/tokenizer_config.json")["pad_token"] == "<|endoftext|>"
    assert cfg("sdxl", "vae/config.json")["scaling_factor"] == 0.13025


# Published parameter counts (model cards and papers): the configs build exactly these networks.
PARAMETERS = {
    ("sd15", "unet"): 859_520_964, ("sd2", "unet"): 865_910_724, ("sd2-v", "unet"): 865_910_724,
    ("sdxl", "unet"): 2_567_463_684, ("sd15", "vae"): 83_653_863, ("sdxl", "vae"): 83_653_863,
    ("sd15", "text_encoder"): 123_060_480, ("sd2", "text_encoder"): 340_387_840,
    ("sdxl", "text_encoder"): 123_060_480, ("sdxl", "text_encoder_2"): 694_659_840,
}  # fmt: skip


def test_each_config_builds_the_published_network_on_the_meta_device(bundle: Bundle) -> None:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folders = dict(zip(ARCHITECTURES, ensure_configs(bundle, ARCHITECTURES), strict=True))
    with torch.device("meta"):
        for (arch, part), expected in PARAMETERS.items():
            where = folders[arch] / part
            if part == "unet":
                model: torch.nn.Module = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(where))
            elif part == "vae":
                model = AutoencoderKL.from_config(AutoencoderKL.load_config(where))
            else:
                cls = CLIPTextModelWithProjection if part == "text_encoder_2" else CLIPTextModel
                model = cls(CLIPTextConfig.from_pretrained(str(where)))
            assert sum(p.numel() for p in model.parameters()) == expected, (arch, part)


# -- the tokenizer --------------------------------------------------------------------------------------------------


def test_the_clip_vocabulary_is_derived_exactly() -> None:
    files = clip_tokenizer_files(BPE)
    vocab = json.loads(files["vocab.json"])
    assert len(vocab) == 49408 and sorted(vocab.values()) == list(range(49408))
    assert vocab["!"] == 0 and vocab["a</w>"] == 320 and vocab["<|startoftext|>"] == 49406
    assert vocab["<|endoftext|>"] == 49407
    merges = files["merges.txt"].decode().splitlines()
    assert merges[0] == "#version: 0.2" and len(merges) == 1 + 48894 and merges[1] == "i n"


@pytest.mark.parametrize("fast", [False, True])
def test_transformers_tokenizes_known_prompts_as_clip_does(bundle: Bundle, fast: bool) -> None:
    from transformers import CLIPTokenizer, CLIPTokenizerFast

    cls = CLIPTokenizerFast if fast else CLIPTokenizer
    sd15, sd2, sdxl = ensure_configs(bundle, ["sd15", "sd2", "sdxl"])
    tok = cls.from_pretrained(str(sd15 / "tokenizer"))
    assert tok("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]  # CLIP's known ids
    assert tok("A PHOTO of a  cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]  # lower-cased
    padded = cls.from_pretrained(str(sd2 / "tokenizer"))("a photo of a cat", padding="max_length", max_length=9)
    assert padded["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407, 0, 0]  # SD 2.x pads with "!" (0)
    for sub in ("tokenizer", "tokenizer_2"):
        xl = cls.from_pretrained(str(sdxl / sub))
        assert xl.model_max_length == 77
        assert xl("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_a_table_that_is_not_clips_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bpe.txt.gz"
    bad.write_bytes(gzip.compress(b"header\ni n\nt h\n"))
    with pytest.raises(ValueError, match="not CLIP's BPE table"):
        clip_tokenizer_files(bad)


# -- writing the folders ------------------------------------------------------------------------------------------


def test_folders_are_written_once_without_any_network(bundle: Bundle, no_network: None) -> None:
    said: list[str] = []
    assert missing_architectures(bundle, ["sd15", "sd15"]) == ["sd15"]
    folders = ensure_configs(bundle, ARCHITECTURES, lang="zh", say=said.append)
    assert folders == [config_folder(bundle, a) for a in ARCHITECTURES]
    assert len(said) == 4 and all("无需联网" in line for line in said)
    for arch, folder in zip(ARCHITECTURES, folders, strict=True):
        spec = SHIPPED_SPECS[arch]
        for rel in spec.files:
            assert (folder / rel).read_bytes() == (shipped_folder(REPO_BUNDLE, arch) / rel).read_bytes()
        for sub in spec.tokenizers:
            assert (folder / sub / "vocab.json").stat().st_size > 800_000
            assert (folder / sub / "merges.txt").is_file()
        assert json.loads((folder / MARKER).read_text())["architecture"] == arch
    assert missing_architectures(bundle, ARCHITECTURES) == []
    said.clear()
    before = (folders[0] / MARKER).stat().st_mtime_ns
    ensure_configs(bundle, ["sd15"], say=said.append)
    assert said == [] and (folders[0] / MARKER).stat().st_mtime_ns == before
    assert not [p.name for p in folders[0].parent.iterdir() if p.name.startswith(".")]  # no partial left


def test_an_incomplete_or_stale_folder_is_rewritten(bundle: Bundle) -> None:
    [folder] = ensure_configs(bundle, ["sd2"])
    (folder / "unet" / "config.json").unlink()  # half a folder
    assert missing_architectures(bundle, ["sd2"]) == ["sd2"]
    ensure_configs(bundle, ["sd2"])
    assert (folder / "unet" / "config.json").is_file()
    marker = json.loads((folder / MARKER).read_text())
    marker["digest"] = "written-from-older-data"
    (folder / MARKER).write_text(json.dumps(marker))
    (folder / "vae" / "config.json").write_text("{}")
    assert missing_architectures(bundle, ["sd2"]) == ["sd2"]
    ensure_configs(bundle, ["sd2"])
    assert json.loads((folder / "vae" / "config.json").read_text())["latent_channels"] == 4
    assert [p.name for p in folder.parent.iterdir()] == ["sd2"]


def test_a_killed_writers_leftovers_do_not_count_and_are_cleared(bundle: Bundle) -> None:
    import os

    partial = config_folder(bundle, "sd15").with_name(".sd15.partial-999999-1")
    (partial / "unet").mkdir(parents=True)  # what a writer killed half-way left
    (partial / "unet" / "config.json").write_text("{")
    os.utime(partial, (0, 0))
    half = config_folder(bundle, "sd15")
    (half / "unet").mkdir(parents=True)  # and a folder without its marker
    (half / "unet" / "config.json").write_text("{")
    [folder] = ensure_configs(bundle, ["sd15"])
    assert json.loads((folder / "unet" / "config.json").read_text())["cross_attention_dim"] == 768
    assert [p.name for p in folder.parent.iterdir()] == ["sd15"]  # nothing else left beside it


def test_two_writers_at_once_leave_one_complete_folder(bundle: Bundle) -> None:
    import threading

    errors: list[BaseException] = []

    def write() -> None:
        try:
            ensure_configs(bundle, ["sdxl"])
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=write) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and missing_architectures(bundle, ["sdxl"]) == []
    assert [p.name for p in config_folder(bundle, "sdxl").parent.iterdir()] == ["sdxl"]


def test_any_folder_can_be_filled_for_the_runtime(tmp_path: Path) -> None:
    [folder] = ensure_config_folders(tmp_path / "configs", ["sdxl"])
    assert folder == tmp_path / "configs" / "sdxl" and (folder / "tokenizer_2" / "vocab.json").is_file()


def test_a_malformed_list_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "architectures.toml"
    base = 'id = "sd15"\nsource = "a/b"\ntokenizers = ["tokenizer"]\n'
    bad.write_text(f'[[architecture]]\n{base}files = ["model_index.json", "../x.json"]\n')
    with pytest.raises(ValueError, match="relative paths"):
        load_architectures(bad)
    bad.write_text(f'[[architecture]]\n{base}files = ["unet/config.json"]\n')
    with pytest.raises(ValueError, match="model_index.json"):
        load_architectures(bad)
    bad.write_text('[[architecture]]\nid = "sd15"\nsource = "a/b"\nfiles = ["model_index.json"]\n')
    with pytest.raises(ValueError, match="tokenizers"):
        load_architectures(bad)
    with pytest.raises(ValueError, match="no config folder"):
        ensure_configs(Bundle(tmp_path / "b"), ["sd3"], specs={})


# -- what the library needs ---------------------------------------------------------------------------------------


def test_architectures_in_library_counts_single_file_checkpoints_only(bundle: Bundle, tmp_path: Path) -> None:
    models = bundle.models_dir
    write_safetensors(models / "Stable-diffusion" / "a.safetensors", SD15_CKPT)
    write_safetensors(models / "Stable-diffusion" / "sub" / "b.safetensors", SDXL_CKPT)
    write_safetensors(models / "Lora" / "misplaced.safetensors", SD2_CKPT)  # a checkpoint in the LoRA folder
    (models / "Stable-diffusion" / "broken.safetensors").write_bytes(HTML_PAGE)
    pipeline = models / "Stable-diffusion" / "pipeline"
    (pipeline / "unet").mkdir(parents=True)
    (pipeline / "model_index.json").write_text("{}")
    (pipeline / "unet" / "config.json").write_text(json.dumps({"cross_attention_dim": 1024}))
    assert architectures_in_library(bundle) == {"sd15", "sdxl"}

    shared = tmp_path / "sd-webui-aki"
    write_safetensors(shared / "models" / "Stable-diffusion" / "c.safetensors", SD2_CKPT)
    assert architectures_in_library(bundle, [str(shared)]) == {"sd15", "sdxl", "sd2"}


# -- the point of it all: an offline single-file load -------------------------------------------------------------


def test_the_runtime_writes_a_missing_folder_itself_offline(tmp_path: Path, no_network: None) -> None:
    from runtime.checkpoints import config_dir_for

    root = tmp_path / "cache" / "configs"  # nothing in cache/: a model of another architecture was picked
    folder = config_dir_for(root, "sd2-v")
    assert folder == root / "sd2-v" and (folder / "tokenizer" / "vocab.json").is_file()
    assert json.loads((folder / "scheduler" / "scheduler_config.json").read_text())["prediction_type"] == "v_prediction"
