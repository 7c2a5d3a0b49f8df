"""The per-architecture config folders: fetched once through the Hugging Face channel, atomically, offline-aware."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bootstrap.layout import Bundle
from launcher.mirrors.plan import MirrorPlan, Network
from launcher.mirrors.sources import Source
from launcher.models.architecture import ARCHITECTURES
from launcher.models.configs import (
    MARKER,
    ArchConfigFetchFailed,
    ArchConfigOffline,
    ArchSpec,
    architectures_in_library,
    architectures_path,
    config_folder,
    ensure_configs,
    load_architectures,
    missing_architectures,
)
from tests.support.fake_models import HTML_PAGE, SD2_CKPT, SD15_CKPT, SDXL_CKPT, write_safetensors
from tests.support.fileserver import FileServer, refused_url
from tests.support.hf_endpoint import HfEndpoint
from tests.support.tiny_sd import TinySD, repo_config_files

SHIPPED = load_architectures(architectures_path(Bundle.locate({})))
SD15 = SHIPPED["sd15"]


def hf(url: str, mid: str = "local") -> Source:
    return Source("huggingface", mid, url, "hf", mid, mid)


def plan_of(*sources: Source, offline: bool = False) -> MirrorPlan:
    return MirrorPlan({"huggingface": list(sources)}, Network(offline=offline))


def fake_files(spec: ArchSpec) -> dict[str, bytes]:
    """Plausible bytes for each file of ``spec``: JSON objects, and a merges list."""
    out: dict[str, bytes] = {}
    for path in spec.files:
        if path.endswith(".json"):
            out[path] = json.dumps({"_name": path, "_arch": spec.id}, indent=1).encode()
        else:
            out[path] = b"#version: 0.2\nc a\nca t</w>\n"
    return out


def publish(hub: HfEndpoint, spec: ArchSpec) -> dict[str, bytes]:
    files = fake_files(spec)
    vocab = next(p for p in spec.files if p.endswith("vocab.json"))
    hub.add_repo(spec.repo, files, lfs=(vocab,))  # one LFS file: checked by sha256, served by the CDN route
    return files


def resolve_requests(hub: HfEndpoint) -> list[str]:
    return [r.path for r in hub.requests if "/resolve/" in r.path]


@pytest.fixture
def bundle(tmp_path: Path) -> Bundle:
    return Bundle(tmp_path / "bundle")


# -- the shipped list -----------------------------------------------------------------------------------------------


def test_every_architecture_has_a_config_folder_without_weights() -> None:
    assert set(SHIPPED) == set(ARCHITECTURES)
    for spec in SHIPPED.values():
        files = set(spec.files)
        needed = {"model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
                  "unet/config.json", "vae/config.json", "tokenizer/vocab.json", "tokenizer/merges.txt"}  # fmt: skip
        assert needed <= files, spec.id
        assert not [f for f in files if f.endswith((".safetensors", ".bin", ".ckpt", ".onnx", ".msgpack"))]
        assert not [f for f in files if f.startswith("safety_checker/")], "the runtime passes safety_checker=None"
    assert {"text_encoder_2/config.json", "tokenizer_2/vocab.json"} <= set(SHIPPED["sdxl"].files)
    for arch in ("sd15", "sd2", "sd2-v"):  # model_index.json names a CLIPImageProcessor: its config is read
        assert "feature_extractor/preprocessor_config.json" in SHIPPED[arch].files
    assert SD15.repo == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert SHIPPED["sdxl"].repo == "stabilityai/stable-diffusion-xl-base-1.0"


def test_a_malformed_list_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "architectures.toml"
    bad.write_text('[[architecture]]\nid = "sd15"\nrepo = "a/b"\nfiles = ["model_index.json", "../x.json"]\n')
    with pytest.raises(ValueError, match="relative paths"):
        load_architectures(bad)
    bad.write_text('[[architecture]]\nid = "sd15"\nrepo = "a/b"\nfiles = ["unet/config.json"]\n')
    with pytest.raises(ValueError, match="model_index.json"):
        load_architectures(bad)


def test_errors_speak_both_languages() -> None:
    for err in (
        ArchConfigOffline(arch="sdxl", folder="/b/cache/configs"),
        ArchConfigFetchFailed(arch="sd15", file="unet/config.json", repo="a/b", listing="x: HTTP 404", partial="/p"),
    ):
        assert re.search(r"[\u4e00-\u9fff]", err.message("zh") + err.hint("zh"))
        assert not re.search(r"[\u4e00-\u9fff]", err.message("en") + err.hint("en"))
        assert "{" not in err.message("zh") + err.message("en") + err.hint("zh") + err.hint("en")


# -- fetching -------------------------------------------------------------------------------------------------------


def test_fetches_sd15_once_then_does_nothing(bundle: Bundle, hf_endpoint: HfEndpoint) -> None:
    files = publish(hf_endpoint, SD15)
    said: list[str] = []
    assert missing_architectures(bundle, ["sd15", "sd15"]) == ["sd15"]

    folders = ensure_configs(bundle, ["sd15"], plan=plan_of(hf(hf_endpoint.url)), say=said.append)

    folder = config_folder(bundle, "sd15")
    assert folders == [folder] == [bundle.cache_dir / "configs" / "sd15"]
    got = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert got.pop(MARKER)
    assert got == files  # exactly the listed files: no engine leftovers, no lock
    marker = json.loads((folder / MARKER).read_text())
    assert marker["repo"] == SD15.repo and marker["revision"] == "main"
    assert marker["commit"] == hf_endpoint.repos[SD15.repo].sha
    repo_sha = hf_endpoint.repos[SD15.repo].sha
    assert all(f"/resolve/{repo_sha}/" in p for p in resolve_requests(hf_endpoint))  # pinned to the commit
    assert len(said) == 1 and "sd15" in said[0]
    assert sorted(p.name for p in (bundle.cache_dir / "configs").iterdir()) == ["sd15"]

    hf_endpoint.reset_counts()
    assert missing_architectures(bundle, ["sd15"]) == []
    assert ensure_configs(bundle, ["sd15"], say=said.append) == [folder]  # no plan, no config: not even looked at
    assert hf_endpoint.requests == [] and len(said) == 1


def test_a_dead_endpoint_is_passed_over_once(bundle: Bundle, hf_endpoint: HfEndpoint) -> None:
    publish(hf_endpoint, SD15)
    dead = hf(refused_url("").rstrip("/"), "dead")
    said: list[str] = []
    ensure_configs(bundle, ["sd15"], plan=plan_of(dead, hf(hf_endpoint.url)), say=said.append)
    assert missing_architectures(bundle, ["sd15"]) == []
    fallbacks = [s for s in said if "dead failed" in s]
    assert len(fallbacks) == 1 and "model_index.json" in fallbacks[0]  # then the dead one goes last


@pytest.mark.parametrize("fault", ["status", "html"])
def test_a_failure_halfway_leaves_no_complete_looking_folder(
    bundle: Bundle, hf_endpoint: HfEndpoint, fault: str
) -> None:
    publish(hf_endpoint, SD15)
    faults = hf_endpoint.faults(SD15.repo, "unet/config.json")
    if fault == "status":
        faults.status = 404
    else:
        faults.html_error = True

    with pytest.raises(ArchConfigFetchFailed) as caught:
        ensure_configs(bundle, ["sd15"], plan=plan_of(hf(hf_endpoint.url)))

    err = caught.value
    assert err.params["file"] == "unet/config.json" and err.params["arch"] == "sd15"
    assert "unet/config.json" in err.message("en") and "unet/config.json" in err.message("zh")
    assert not config_folder(bundle, "sd15").exists()
    partial = Path(err.params["partial"])
    assert partial.is_dir() and not (partial / MARKER).exists() and (partial / "model_index.json").is_file()
    assert missing_architectures(bundle, ["sd15"]) == ["sd15"]

    # Healed: the next run fetches only what is left, and the folder appears whole.
    faults.status, faults.html_error = None, False
    hf_endpoint.reset_counts()
    ensure_configs(bundle, ["sd15"], plan=plan_of(hf(hf_endpoint.url)))
    fetched = {p.rsplit("/resolve/", 1)[1].split("/", 1)[1] for p in resolve_requests(hf_endpoint)}
    assert fetched == {"unet/config.json", "vae/config.json"}
    assert missing_architectures(bundle, ["sd15"]) == [] and not partial.exists()


def test_a_file_the_repository_lacks_is_named_before_anything_is_fetched(
    bundle: Bundle, hf_endpoint: HfEndpoint
) -> None:
    files = fake_files(SD15)
    del files["vae/config.json"]
    hf_endpoint.add_repo(SD15.repo, files)
    with pytest.raises(ArchConfigFetchFailed, match="vae/config.json"):
        ensure_configs(bundle, ["sd15"], plan=plan_of(hf(hf_endpoint.url)))
    assert resolve_requests(hf_endpoint) == []


def test_modelscope_is_the_last_resort_and_its_files_are_checked(bundle: Bundle, file_server: FileServer) -> None:
    files = fake_files(SD15)
    for path, data in files.items():
        file_server.add(f"/models/{SD15.modelscope}/resolve/master/{path}", data)
    modelscope = Source("huggingface", "modelscope", file_server.url, "modelscope", "魔搭", "ModelScope")
    plan = plan_of(hf(refused_url("").rstrip("/"), "dead"), modelscope)
    said: list[str] = []

    ensure_configs(bundle, ["sd15"], plan=plan, say=said.append)

    folder = config_folder(bundle, "sd15")
    marker = json.loads((folder / MARKER).read_text())
    assert marker["commit"] == "" and set(marker["sources"].values()) == {"ModelScope"}
    assert (folder / "unet" / "config.json").read_bytes() == files["unet/config.json"]
    assert any("dead" in s for s in said)

    # An error answered with status 200 is not a config file.
    shutil.rmtree(folder)
    file_server.add(f"/models/{SD15.modelscope}/resolve/master/vae/config.json",
                    b'{"Code": 10010205001, "Message": "not found", "Success": false}')  # fmt: skip
    file_server.add(f"/models/{SD15.modelscope}/resolve/master/unet/config.json", HTML_PAGE)
    with pytest.raises(ArchConfigFetchFailed, match="unet/config.json"):
        ensure_configs(bundle, ["sd15"], plan=plan)


def test_offline_mode_names_the_architecture_and_keeps_an_old_folder(bundle: Bundle) -> None:
    bundle.root.mkdir(parents=True)
    bundle.config_file.write_text("[network]\noffline = true\n", encoding="utf-8")
    with pytest.raises(ArchConfigOffline) as caught:
        ensure_configs(bundle, ["sdxl", "sd15"])
    err = caught.value
    assert "sdxl, sd15" in err.message("en") and "sdxl, sd15" in err.message("zh")
    assert "network.offline false" in err.hint("en") and err.code == "ARCH_CONFIG_OFFLINE"

    # A folder from an older list (another repo) is out of date: still used while offline.
    old = config_folder(bundle, "sd15")
    old.mkdir(parents=True)
    (old / "model_index.json").write_text("{}")
    (old / MARKER).write_text(json.dumps({"repo": "runwayml/stable-diffusion-v1-5", "revision": "main"}))
    assert missing_architectures(bundle, ["sd15"]) == ["sd15"]
    assert ensure_configs(bundle, ["sd15"]) == [old]
    assert ensure_configs(bundle, ["sd15"], plan=plan_of(offline=True)) == [old]


def test_an_out_of_date_folder_is_replaced_when_online(bundle: Bundle, hf_endpoint: HfEndpoint) -> None:
    publish(hf_endpoint, SD15)
    old = config_folder(bundle, "sd15")
    (old / "unet").mkdir(parents=True)
    (old / "model_index.json").write_text("{}")
    (old / "unet" / "stale.json").write_text("{}")
    ensure_configs(bundle, ["sd15"], plan=plan_of(hf(hf_endpoint.url)))
    assert not (old / "unet" / "stale.json").exists() and (old / MARKER).is_file()
    assert sorted(p.name for p in old.parent.iterdir()) == ["sd15"]


def test_a_failed_update_keeps_the_folder_that_works(bundle: Bundle) -> None:
    old = config_folder(bundle, "sd15")
    old.mkdir(parents=True)
    (old / "model_index.json").write_text("{}")
    said: list[str] = []
    dead = hf(refused_url("").rstrip("/"), "dead")
    assert ensure_configs(bundle, ["sd15"], plan=plan_of(dead), say=said.append) == [old]
    assert any("using the ones already there" in s for s in said)
    with pytest.raises(ArchConfigFetchFailed, match="connection refused"):
        ensure_configs(bundle, ["sd2"], plan=plan_of(dead))


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


def test_the_fetched_folder_loads_a_single_file_offline(
    bundle: Bundle, hf_endpoint: HfEndpoint, tiny_sd: TinySD
) -> None:
    files = repo_config_files(tiny_sd.config_dir)
    hf_endpoint.add_repo(SD15.repo, {**files, "unet/diffusion_pytorch_model.safetensors": b"weights"},
                         lfs=("unet/diffusion_pytorch_model.safetensors",))  # fmt: skip
    spec = ArchSpec("sd15", SD15.repo, "main", tuple(sorted(files)))

    [folder] = ensure_configs(bundle, ["sd15"], plan=plan_of(hf(hf_endpoint.url)), specs={"sd15": spec})
    assert not (folder / "unet" / "diffusion_pytorch_model.safetensors").exists()

    import torch
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(1)
    hf_endpoint.reset_counts()
    pipe = StableDiffusionPipeline.from_single_file(str(tiny_sd.checkpoint), config=str(folder),
                                                    local_files_only=True, safety_checker=None,
                                                    requires_safety_checker=False)  # fmt: skip
    assert hf_endpoint.requests == []
    assert pipe.feature_extractor is not None and pipe.safety_checker is None
    assert pipe.unet.config.cross_attention_dim == 32
