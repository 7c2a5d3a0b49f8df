"""Every model download has a route around: Hugging Face choice -> other endpoints -> ModelScope.

`models download NAME` as users run it, with the Hugging Face and ModelScope stand-ins and several
routes down at once: a dead endpoint, an endpoint whose LFS download redirects off the mirror (the
hf-mirror Xet case), a 503.  The bundle's mirrors.toml points the catalog's mirrors at the stand-ins.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.support.bundle_copy import copy_bundle, run_cli, set_mirror_urls
from tests.support.fake_models import random_safetensors
from tests.support.fileserver import refused_url
from tests.support.hf_endpoint import HfEndpoint
from tests.support.modelscope_endpoint import ModelScopeEndpoint

WEIGHTS = random_safetensors(300_000)
OTHER = random_safetensors(200_000)  # the ModelScope copy that is another file (another precision)
REPO, FILE = "org/tiny-sd", "tiny-fp16.safetensors"
MS_REPO = "AI-ModelScope/tiny-sd"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


ENTRY = """
[[model]]
id = "{id}"
name_zh = "测试"
name_en = "test"
description_zh = "测试"
description_en = "test"
type = "checkpoint"
architecture = "sd15"
repo = "{repo}"
file = "{file}"
size = {size}
sha256 = "{sha}"
modelscope = {modelscope}
license = "test"
"""


@pytest.fixture
def bundle(tmp_path: Path, hf_endpoint: HfEndpoint, modelscope_endpoint: ModelScopeEndpoint) -> Path:
    """Routes: hf-mirror = the stand-in, redirecting LFS off itself (Xet); official = dead; then ModelScope."""
    root = copy_bundle(tmp_path / "bundle")
    hf_endpoint.add_repo(REPO, {FILE: WEIGHTS}, lfs=(FILE,))
    hf_endpoint.lfs_cross_origin = True  # 302 to http://localhost:PORT: another host than 127.0.0.1
    modelscope_endpoint.add_repo(MS_REPO, {FILE: WEIGHTS, "tiny-fp32.safetensors": OTHER})
    set_mirror_urls(root / "mirrors.toml", "huggingface", {
        "hf-mirror": hf_endpoint.url, "huggingface": refused_url(""), "modelscope": modelscope_endpoint.url,
    })  # fmt: skip
    same = f'{{ repo = "{MS_REPO}", file = "{FILE}", verified = true }}'
    other = f'{{ repo = "{MS_REPO}", file = "tiny-fp32.safetensors", sha256 = "{sha(OTHER)}", verified = true }}'
    with (root / "models" / "catalog.toml").open("a", encoding="utf-8") as f:
        f.write(
            ENTRY.format(id="tiny-same", repo=REPO, file=FILE, size=len(WEIGHTS), sha=sha(WEIGHTS), modelscope=same)
        )
        f.write(ENTRY.format(id="tiny-other", repo=REPO, file=FILE, size=len(WEIGHTS), sha=sha(WEIGHTS),
                             modelscope=other))  # fmt: skip
    assert run_cli(root, "config", "set", "mirrors.huggingface", "hf-mirror").returncode == 0
    return root


def test_a_xet_redirect_counts_as_the_mirror_failing_and_modelscope_serves(
    bundle: Path, hf_endpoint: HfEndpoint, modelscope_endpoint: ModelScopeEndpoint
) -> None:
    r = run_cli(bundle, "--lang", "en", "models", "download", "tiny-same")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (bundle / "models" / "Stable-diffusion" / FILE).read_bytes() == WEIGHTS
    out = r.stdout + r.stderr
    assert "redirected off the mirror to localhost" in out
    modelscope_endpoint.wait_idle()
    assert modelscope_endpoint.bytes_served(f"/models/{MS_REPO}/resolve/master/{FILE}") >= len(WEIGHTS)
    hf_endpoint.wait_idle()
    assert hf_endpoint.bytes_served("/cdn/") == 0  # the off-mirror host was never fetched from
    order = [out.find("HF-Mirror"), out.find("Hugging Face (official)")]
    assert -1 not in order and order == sorted(order)  # the user's choice first, then the other endpoint


def test_when_every_hugging_face_route_fails_the_other_file_on_modelscope_is_fetched(
    bundle: Path, hf_endpoint: HfEndpoint
) -> None:
    hf_endpoint.lfs_cross_origin = False
    hf_endpoint.faults(REPO, FILE).status = 503
    r = run_cli(bundle, "--lang", "en", "models", "download", "tiny-other")
    assert r.returncode == 0, r.stdout + r.stderr
    folder = bundle / "models" / "Stable-diffusion"
    assert (folder / "tiny-fp32.safetensors").read_bytes() == OTHER  # its own name, checked by its own sha256
    assert not (folder / FILE).exists()
    assert "another file of the same model" in r.stdout + r.stderr


def test_no_route_at_all_names_each_and_promises_no_resume(
    bundle: Path, hf_endpoint: HfEndpoint, modelscope_endpoint: ModelScopeEndpoint
) -> None:
    modelscope_endpoint.faults(MS_REPO, FILE).status = 403
    hf_endpoint.faults(REPO, FILE).status = 502
    hf_endpoint.lfs_cross_origin = False
    r = run_cli(bundle, "--lang", "en", "models", "download", "tiny-same")
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "ModelScope" in out and "HF-Mirror" in out
    assert "resume" not in out.lower()  # nothing was fetched: no promise to continue
    assert not list((bundle / "models" / "Stable-diffusion").glob("*.safetensors"))
