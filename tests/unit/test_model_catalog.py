"""models/catalog.toml holds checked facts, loads into typed entries, and a broken catalog names every problem."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bootstrap.errors import ExitCode
from bootstrap.layout import MODEL_FOLDERS, Bundle
from launcher.models.architecture import ARCHITECTURES, KINDS
from launcher.models.catalog import (
    FOLDER_BY_TYPE,
    MODEL_FILE_SUFFIXES,
    HfSource,
    ModelCatalogInvalid,
    UnknownModel,
    catalog_path,
    load_model_catalog,
)
from tests.support.hermetic import REPO

CATALOG = load_model_catalog(REPO / "models" / "catalog.toml")

# (id) -> (file, size, sha256): read from the Hugging Face file pages / LFS pointers of these repositories.
KNOWN = {
    "sd15": ("v1-5-pruned-emaonly-fp16.safetensors", 2132696762, "e9476a13728cd75d8279f6ec8bad753a66a1957ca375a1464dc63b37db6e3916"),
    "sdxl-base": ("sd_xl_base_1.0.safetensors", 6938078334, "31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b"),
    "sd21-768": ("v2-1_768-ema-pruned.safetensors", 5214604494, "dcd690123cfc64383981a31d955694f6acf2072a80537fdb612c8e58ec87a8ac"),
    "vae-ft-mse": ("vae-ft-mse-840000-ema-pruned.safetensors", 334641190, "735e4c3a447a3255760d7f86845f09f937809baa529c17370d83e4c3758f3c75"),
    "sdxl-vae-fp16-fix": ("sdxl.vae.safetensors", 334641162, "235745af8d86bf4a4c1b5b4f529868b37019a10f7c0b2e79ad0abca3a22bc6e1"),
    "4x-ultrasharp": ("4x-UltraSharp.pth", 66961958, "a5812231fc936b42af08a5edba784195495d303d5b3248c24489ef0c4021fe01"),
}  # fmt: skip


# --- the shipped catalog -------------------------------------------------------------------------------------------


def test_the_default_is_one_sd15_fp16_safetensors_of_about_2_gb() -> None:
    defaults = [e for e in CATALOG.entries if e.default]
    assert defaults == [CATALOG.default()]
    first = CATALOG.default()
    assert (first.id, first.type, first.architecture) == ("sd15", "checkpoint", "sd15")
    assert first.filename.endswith(".safetensors") and "fp16" in first.filename
    assert 1.9e9 < first.size < 2.3e9
    assert first.sha256 and first.verified and first.hf is not None and first.hf.revision != "main"


def test_the_catalog_covers_what_a_hobbyist_needs() -> None:
    assert 8 <= len(CATALOG.entries) <= 12
    assert {e.type for e in CATALOG.entries} == set(KINDS)
    assert {e.architecture for e in CATALOG.entries if e.type == "checkpoint"} >= {"sd15", "sd2-v", "sdxl"}
    assert {e.architecture for e in CATALOG.entries if e.type == "vae"} == {"sd15", "sdxl"}


@pytest.mark.parametrize(("model_id", "fact"), KNOWN.items(), ids=list(KNOWN))
def test_files_sizes_and_hashes_match_their_sources(model_id: str, fact: tuple[str, int, str]) -> None:
    entry = CATALOG.get(model_id)
    assert entry is not None and entry.hf is not None
    assert (entry.hf.file, entry.size, entry.sha256) == fact


def test_entries_are_complete_and_consistent() -> None:
    names: set[str] = set()
    for e in CATALOG.entries:
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", e.id), e.id
        assert e.name_zh != e.name_en and e.description_zh and e.description_en and e.license, e.id
        assert e.type in KINDS
        assert (e.architecture in ARCHITECTURES) if e.type != "upscaler" else e.architecture == "", e.id
        assert e.filename.endswith(MODEL_FILE_SUFFIXES) and "/" not in e.filename, e.id
        assert (e.hf is None) != (not e.url), e.id  # exactly one source
        if e.url:
            assert e.url.startswith("https://"), e.id
        if e.sha256:
            assert re.fullmatch(r"[0-9a-f]{64}", e.sha256), e.id
        assert e.size > 1000, e.id
        for n in (e.id, *e.aliases):
            assert n not in names, n
            names.add(n)
        assert e.destination(Path("/m")) == Path("/m") / FOLDER_BY_TYPE[e.type] / e.filename
    sdxl = CATALOG.get("sdxl-base")
    assert sdxl is not None and sdxl.modelscope is not None and not sdxl.modelscope.verified  # unchecked, and says so


def test_checkpoint_sizes_fit_their_architecture() -> None:
    for e in CATALOG.entries:
        if e.type == "checkpoint" and "fp16" in e.filename:
            assert 2.0e9 < e.size < 2.2e9, e.id
        if e.type == "checkpoint" and e.architecture == "sdxl":
            assert 6.9e9 < e.size < 7.0e9, e.id


def test_folders_are_the_bundles_model_folders() -> None:
    assert tuple(FOLDER_BY_TYPE)[: len(KINDS)] == KINDS  # the catalog's kinds, then the kinds only links bring
    # every folder a new bundle makes has a model type; ControlNet and hypernetworks (links from Civitai) are
    # made when the first such model arrives, with A1111's folder names
    assert set(FOLDER_BY_TYPE.values()) == {*MODEL_FOLDERS, "ControlNet", "hypernetworks"}


def test_the_bundle_finds_the_shipped_catalog(sealed: object) -> None:
    path = catalog_path(Bundle.locate())
    assert path == REPO / "models" / "catalog.toml" and path.is_file()


def test_to_dict_is_json_and_bilingual() -> None:
    sd15 = CATALOG.default()
    en, zh = sd15.to_dict("en"), sd15.to_dict("zh")
    assert json.loads(json.dumps(en)) == en
    assert en["name"] == sd15.name_en and zh["name"] == sd15.name_zh and zh["description"] == sd15.description_zh
    assert en["source"] == {"repo": sd15.hf.repo, "file": sd15.hf.file, "revision": sd15.hf.revision}  # type: ignore[union-attr]
    assert (en["folder"], en["default"], en["sha256"]) == ("Stable-diffusion", True, sd15.sha256)
    url_entry = next(e for e in CATALOG.entries if e.url)
    assert url_entry.to_dict()["source"] == {"url": url_entry.url}
    assert url_entry.to_dict()["architecture"] is None


def test_resolve_url_on_any_endpoint() -> None:
    src = HfSource("gsdf/Counterfeit-V3.0", "embedding/EasyNegativeV2.safetensors")
    assert src.resolve_url("https://hf-mirror.com/") == (
        "https://hf-mirror.com/gsdf/Counterfeit-V3.0/resolve/main/embedding/EasyNegativeV2.safetensors"
    )
    odd = HfSource("a/b", "my model #1.safetensors", "refs/pr/1")
    assert (
        odd.resolve_url("http://127.0.0.1:8080")
        == "http://127.0.0.1:8080/a/b/resolve/refs%2Fpr%2F1/my%20model%20%231.safetensors"
    )


# --- finding entries -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("sd15", "sd15"),
        ("SD 1.5", "sd15"),
        ("sd-1.5", "sd15"),
        ("v1-5-pruned-emaonly-fp16.safetensors", "sd15"),
        ("v1-5-pruned-emaonly-fp16", "sd15"),
        ("Stable Diffusion XL 1.0 base", "sdxl-base"),
        ("SDXL", "sdxl-base"),
        ("sd_xl_base_1.0.safetensors", "sdxl-base"),
        ("EasyNegative", "easynegative-v2"),
        ("lcm-lora-sdv1-5.safetensors", "lcm-lora-sd15"),
        ("  4x-UltraSharp  ", "4x-ultrasharp"),
    ],
)
def test_find_by_id_alias_file_or_name(name: str, model_id: str) -> None:
    entry = CATALOG.find(name)
    assert entry is not None and entry.id == model_id


@pytest.mark.parametrize(
    ("typo", "meant"), [("sdxl-bsae", "sdxl-base"), ("animagin-xl", "animagine-xl-3.1"), ("ultrashrp", "4x-ultrasharp")]
)
def test_typos_get_a_suggestion_not_a_match(typo: str, meant: str) -> None:
    assert CATALOG.find(typo) is None
    assert CATALOG.suggest(typo) == meant
    with pytest.raises(UnknownModel) as err:
        CATALOG.resolve(typo)
    assert meant in err.value.message("en") and meant in err.value.message("zh")
    assert err.value.exit_code == ExitCode.USAGE and err.value.code == "MODEL_UNKNOWN"


def test_nonsense_finds_nothing_and_suggests_nothing() -> None:
    assert CATALOG.find("") is None and CATALOG.find("   ") is None
    assert CATALOG.suggest("qqqqqqqqqqqqqqqqqq") is None
    with pytest.raises(UnknownModel) as err:
        CATALOG.resolve("qqqqqqqqqqqqqqqqqq")
    assert "Did you mean" not in err.value.message("en")


def test_resolve_returns_the_entry() -> None:
    assert CATALOG.resolve("sdxl") is CATALOG.get("sdxl-base")
    assert CATALOG.get("nope") is None


# --- broken catalogs -----------------------------------------------------------------------------------------------

GOOD = """
[[model]]
id = "one"
name_zh = "一"
name_en = "One"
description_zh = "第一个"
description_en = "The first"
type = "checkpoint"
architecture = "sd15"
repo = "org/one"
file = "one.safetensors"
size = 2000000000
license = "MIT"
default = true
"""


def load(tmp_path: Path, text: str) -> Exception | None:
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_model_catalog(path)
    except ModelCatalogInvalid as exc:
        return exc
    return None


def test_a_minimal_catalog_loads(tmp_path: Path) -> None:
    (tmp_path / "catalog.toml").write_text(GOOD, encoding="utf-8")
    catalog = load_model_catalog(tmp_path / "catalog.toml")
    entry = catalog.default()
    assert (entry.id, entry.filename, entry.hf, entry.sha256, entry.verified) == (
        "one", "one.safetensors", HfSource("org/one", "one.safetensors", "main"), "", True,
    )  # fmt: skip


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    bad = (
        GOOD
        + """
[[model]]
id = "Two"
name_zh = "二"
name_en = "Two"
description_zh = "x"
description_en = "x"
type = "lorra"
archtecture = "sd15"
url = "http://example.com/two.safetensors"
repo = "org/two"
file = "two.safetensors"
sha256 = "ABC"
save_as = "dir/two.txt"
license = "MIT"
default = "yes"
"""
    )
    err = load(tmp_path, bad)
    assert isinstance(err, ModelCatalogInvalid)
    text = err.message("en")
    for expected in (
        "[[model]] Two: archtecture: unknown key; did you mean 'architecture'?",
        "[[model]] Two: id: 'Two' must be lower-case",
        "[[model]] Two: type: 'lorra' is not one of checkpoint, lora, vae, embedding, upscaler; did you mean 'lora'?",
        "[[model]] Two: url: give either repo + file or url, not both",
        "[[model]] Two: size: required",
        "[[model]] Two: sha256: must be 64 lower-case hex digits",
        "[[model]] Two: save_as: 'dir/two.txt' must be a bare file name",
        "[[model]] Two: default: must be true or false",
        "[[model]] Two: architecture: required",
    ):
        assert expected in text, expected
    assert err.params["count"] == 9
    assert err.exit_code == ExitCode.FAILURE and err.code == "MODEL_CATALOG_INVALID"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("default = true", ""), "exactly one entry must have default = true, found 0"),
        (GOOD + GOOD.replace('"one"', '"two"'), "exactly one entry must have default = true, found 2"),
        (GOOD + GOOD.replace("default = true", ""), "id/alias 'one' is used twice"),
        (GOOD.replace('type = "checkpoint"', 'type = "lora"'), "the default model must be a checkpoint"),
        (GOOD.replace('repo = "org/one"\nfile = "one.safetensors"', 'url = "http://x.org/a.safetensors"'), "must be an https:// URL"),
        (GOOD.replace('repo = "org/one"\nfile = "one.safetensors"', ""), "needs repo + file (Hugging Face) or url"),
        (GOOD.replace('"org/one"', '"just-a-name"'), "is not an owner/name repository id"),
        (GOOD.replace("size = 2000000000", "size = -5"), "size: required, a positive number of bytes"),
        (GOOD.replace('architecture = "sd15"', 'architecture = "sd3"'), "'sd3' is not one of sd15, sd2, sd2-v, sdxl"),
        (GOOD + 'modelscope = "AI-ModelScope/x"\n', "modelscope: must be a table"),
        (GOOD + 'aliases = "one"\n', "aliases: must be a list of strings"),
        (GOOD.replace('name_zh = "一"', 'name_zh = ""'), "name_zh: required"),
        ("schema = 1\n", "the catalog has no entries"),
        ("[[model]\nid = ", "catalog.toml"),
    ],
)  # fmt: skip
def test_single_problems(tmp_path: Path, text: str, expected: str) -> None:
    err = load(tmp_path, text)
    assert isinstance(err, ModelCatalogInvalid), text
    assert expected in err.message("en")


def test_modelscope_and_url_sources(tmp_path: Path) -> None:
    text = GOOD + (
        'modelscope = { repo = "AI-ModelScope/one", file = "one.safetensors", verified = true }\n'
        + GOOD.replace('"one"', '"up"')
        .replace("default = true", "")
        .replace('type = "checkpoint"', 'type = "upscaler"')
        .replace('architecture = "sd15"\n', "")
        .replace('repo = "org/one"\nfile = "one.safetensors"', 'url = "https://example.com/dl/Up_x4.pth?raw=1"')
    )
    (tmp_path / "catalog.toml").write_text(text, encoding="utf-8")
    catalog = load_model_catalog(tmp_path / "catalog.toml")
    one, up = catalog.get("one"), catalog.get("up")
    assert one is not None and one.modelscope is not None and one.modelscope.verified
    assert up is not None and (up.filename, up.architecture, up.hf, up.folder) == ("Up_x4.pth", "", None, "ESRGAN")
