"""The child environment: exact for pip and uv, and pip and uv really follow it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.mirrors.catalog import load_catalog
from launcher.mirrors.environ import child_environ
from launcher.mirrors.plan import MirrorPlan, Network
from launcher.mirrors.sources import candidates
from tests.support.hermetic import REPO
from tests.support.pypi_index import PackageIndex

CATALOG = load_catalog(REPO / "mirrors.toml")
USER = {
    "PATH": "/usr/bin", "HOME": "/home/u", "PIP_INDEX_URL": "https://evil.example/simple",
    "PIP_EXTRA_INDEX_URL": "file:///opt/pypi/simple", "PIP_CONSTRAINT": "/etc/c.txt", "UV_INDEX_URL": "x",
    "UV_CONSTRAINT": "/etc/c.txt", "HF_ENDPOINT": "https://elsewhere", "HF_TOKEN": "hf_secret",
}  # fmt: skip


def plan(pypi: str = "auto", torch: str = "auto", hf: str = "auto", python: str = "auto", *, cuda: str | None = "cu128",
         proxy: str = "", offline: bool = False) -> MirrorPlan:  # fmt: skip
    choice = {"pypi": pypi, "torch": torch, "huggingface": hf, "python": python, "github": "off"}
    sources = {ch: candidates(CATALOG.channel(ch), choice[ch], cuda=cuda) for ch in choice}
    return MirrorPlan(sources, Network(proxy, offline), cuda)


def ours(env: dict[str, str]) -> dict[str, str]:
    prefixes = ("PIP_", "UV_", "HF_", "HTTP", "ALL_PROXY", "NO_PROXY", "http", "all_proxy", "no_proxy", "TRANSFORMERS")
    return {k: v for k, v in env.items() if k.startswith(prefixes)}


def test_default_choice_maps_exactly() -> None:
    env, notes = child_environ(plan(), USER)
    assert ours(env) == {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "UV_NO_CONFIG": "1",
        "PIP_INDEX_URL": "https://pypi.tuna.tsinghua.edu.cn/simple",
        "UV_DEFAULT_INDEX": "https://pypi.tuna.tsinghua.edu.cn/simple",
        "PIP_EXTRA_INDEX_URL": "https://mirror.nju.edu.cn/pytorch/whl/cu128",
        "UV_INDEX": "pytorch=https://mirror.nju.edu.cn/pytorch/whl/cu128",
        "UV_PYTHON_INSTALL_MIRROR": "https://registry.npmmirror.com/-/binary/python-build-standalone",
        "HF_ENDPOINT": "https://hf-mirror.com",
        "HF_HUB_DISABLE_XET": "1",
        "HF_TOKEN": "hf_secret",  # the user's own token stays: gated models need it
        "NO_PROXY": "localhost,127.0.0.1,::1",
        "no_proxy": "localhost,127.0.0.1,::1",
    }
    assert notes == []
    assert env["HOME"] == "/home/u" and env["PATH"] == "/usr/bin"


def test_flat_torch_mirror_and_local_pypi_folder(tmp_path: Path) -> None:
    env, _ = child_environ(plan(pypi=str(tmp_path), torch="aliyun", cuda="cu121"), USER)
    assert env["PIP_NO_INDEX"] == env["UV_NO_INDEX"] == "1"
    assert env["PIP_FIND_LINKS"] == f"{tmp_path} https://mirrors.aliyun.com/pytorch-wheels/cu121/"
    assert env["UV_FIND_LINKS"] == f"{tmp_path},https://mirrors.aliyun.com/pytorch-wheels/cu121/"
    assert "PIP_EXTRA_INDEX_URL" not in env and "UV_INDEX" not in env and "PIP_INDEX_URL" not in env


def test_official_hub_keeps_xet_and_no_cuda_means_no_torch_index() -> None:
    env, _ = child_environ(plan(pypi="pypi", hf="huggingface", cuda=None), USER)
    assert env["HF_ENDPOINT"] == "https://huggingface.co" and "HF_HUB_DISABLE_XET" not in env
    assert "UV_INDEX" not in env and "PIP_EXTRA_INDEX_URL" not in env
    assert env["PIP_INDEX_URL"] == "https://pypi.org/simple"


def test_http_mirror_is_trusted_for_pip_with_a_warning() -> None:
    env, notes = child_environ(plan(pypi="http://10.1.2.3:8080/simple"), USER)
    assert env["PIP_TRUSTED_HOST"] == "10.1.2.3"
    assert len(notes) == 1 and "http://" in notes[0].text("en") and "未加密" in notes[0].text("zh")


def test_proxy_is_scoped_and_loopback_never_proxied() -> None:
    env, _ = child_environ(plan(proxy="http://127.0.0.1:7890"), {**USER, "NO_PROXY": "intra.example"})
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        assert env[var] == "http://127.0.0.1:7890"
    assert env["NO_PROXY"] == "intra.example,localhost,127.0.0.1,::1"


def test_offline_switch() -> None:
    env, _ = child_environ(plan(offline=True), USER)
    assert env["HF_HUB_OFFLINE"] == env["TRANSFORMERS_OFFLINE"] == env["UV_OFFLINE"] == env["PIP_NO_INDEX"] == "1"


def _only(env: dict[str, str]) -> dict[str, str]:
    """The child env plus what a subprocess needs to run at all."""
    return {**env, "PATH": os.environ["PATH"], "HOME": os.environ["HOME"]}


@pytest.mark.slow
def test_pip_and_uv_follow_the_environment_and_nothing_else(tmp_path: Path, package_index: PackageIndex) -> None:
    leaky = {
        **os.environ,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": "/nonexistent",
        "UV_INDEX_URL": "http://127.0.0.1:9/simple", "UV_EXTRA_INDEX_URL": "http://127.0.0.1:9/simple",
    }  # fmt: skip
    env, _ = child_environ(plan(pypi=package_index.simple_url(), torch=package_index.simple_url("cu128")), leaky)
    env = _only(env)
    env["UV_CACHE_DIR"] = str(tmp_path / "uv-cache")
    venv = tmp_path / "venv"
    uv = str(Path(sys.executable).parent / "uv")
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], env=env, check=True)
    # uv: torch from the torch index (local label), tinypkg from the PyPI mirror.
    out = subprocess.run([uv, "pip", "install", "--dry-run", "-p", str(venv), "torch==2.7.1", "tinypkg"],
                         env=env, capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "torch==2.7.1+cu128" in out.stderr and "tinypkg==1.0" in out.stderr
    # pip: the same two sources, nothing from the leaked settings.
    pip_dir = tmp_path / "pip-dl"
    out = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(pip_dir), "torch==2.7.1", "tinypkg"],
                         env=env, capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert sorted(p.name.split("-")[1] for p in pip_dir.glob("*.whl")) == ["1.0", "2.7.1+cu128"]
    seen = {r.path for r in package_index.requests}
    assert any(p.startswith("/whl/cu128/simple/torch") for p in seen) and any(
        p.startswith("/simple/tinypkg") for p in seen
    )
