"""`yijian mirrors ...` as users run it, in a bundle copy whose mirrors are local stand-ins."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from tests.support.bundle_copy import copy_bundle, pypi_ids, run_cli, set_mirror_urls
from tests.support.plugin_mirrors import MirrorFarm
from tests.support.pypi_index import PackageIndex

CONTRACT = {"channel", "id", "url", "ok", "error", "connect_ms", "ttfb_ms", "bytes_per_s"}


@pytest.fixture
def bundle(tmp_path: Path, mirror_farm: MirrorFarm) -> Path:
    """PyPI: tuna refuses, bfsu 403, ustc HTML, aliyun slow, official healthy; other channels dead."""
    b = copy_bundle(tmp_path / "bundle")
    dead = mirror_farm.dead_url
    urls = {i: f"{dead}/{i}/simple" for i in pypi_ids(b / "mirrors.toml")}
    urls.update({"bfsu": mirror_farm.forbidden.simple_url(), "ustc": mirror_farm.html.simple_url(),
                 "aliyun": mirror_farm.slow.simple_url(), "pypi": mirror_farm.fast.simple_url()})  # fmt: skip
    set_mirror_urls(b / "mirrors.toml", "pypi", urls)
    text = (b / "mirrors.toml").read_text(encoding="utf-8")
    for host in ("mirror.nju.edu.cn", "mirrors.aliyun.com", "mirror.sjtu.edu.cn", "download.pytorch.org", "hf-mirror.com",
                 "huggingface.co", "www.modelscope.cn", "registry.npmmirror.com", "github.com", "mirrors.huaweicloud.com",
                 "www.python.org", "ghfast.top", "gh-proxy.com", "raw.githubusercontent.com", "civitai.com", "civitai.green",
                 "civitai.red", "www.modelscope.ai"):  # fmt: skip
        text = text.replace(f"https://{host}", f"{dead}/{host}")
    (b / "mirrors.toml").write_text(text, encoding="utf-8")
    return b


def test_list_json_has_all_seven_channels(bundle: Path) -> None:
    r = run_cli(bundle, "mirrors", "list", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [c["channel"] for c in data["channels"]] == ["pypi", "torch", "huggingface", "python", "github", "civitai",
                                                        "modelscope"]  # fmt: skip
    ids = {c["channel"]: [m["id"] for m in c["mirrors"]] for c in data["channels"]}
    assert {"tuna", "ustc", "aliyun", "pypi"} <= set(ids["pypi"]) and "hf-mirror" in ids["huggingface"]
    github = next(c for c in data["channels"] if c["channel"] == "github")
    assert github["choice"] == "off" and github["current"] == "off"


def test_test_json_ranks_the_healthy_official_index_first(bundle: Path) -> None:
    r = run_cli(bundle, "mirrors", "test", "--channel", "pypi", "--json", "--timeout", "1")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    results = data["results"]
    assert all(CONTRACT <= set(x) for x in results)
    assert results[0]["id"] == "pypi" and results[0]["ok"] and results[0]["connect_ms"] is not None
    reasons = {x["id"]: x["error"] for x in results[1:]}
    assert reasons["tuna"] == "connection refused" and reasons["bfsu"] == "HTTP 403"
    assert reasons["ustc"] == "not a package index (wrong content)" and reasons["aliyun"] == "timed out"
    assert not any(x["ok"] for x in results[1:])
    saved = json.loads((bundle / "cache" / "mirrors.json").read_text(encoding="utf-8"))
    assert saved["channels"]["pypi"]["results"][0]["id"] == "pypi"


def test_test_covers_every_channel_and_auto_then_prefers_the_measured_mirror(bundle: Path) -> None:
    r = run_cli(bundle, "mirrors", "test", "--json", "--timeout", "0.5")
    assert r.returncode == 4, r.stderr  # torch, huggingface and python have no working mirror here
    data = json.loads(r.stdout)
    channels = {x["channel"] for x in data["results"]}
    assert channels == {"pypi", "torch", "huggingface", "python", "github", "civitai", "modelscope"}
    dead = {f["channel"]: f for f in data["findings"]}
    # github is "off" (no proxy), pypi has one that works
    assert set(dead) == {"torch", "huggingface", "python", "civitai", "modelscope"}
    assert dead["torch"]["code"] == "CHANNEL_DEAD" and "mirrors use torch" in dead["torch"]["fix"]
    tried = {t["id"]: t["error"] for t in dead["huggingface"]["tried"]}
    assert "hf-mirror" in tried and tried["hf-mirror"] and "hf-mirror" in dead["huggingface"]["message"]
    env = json.loads(run_cli(bundle, "mirrors", "env", "--json").stdout)
    assert env["set"]["PIP_INDEX_URL"].startswith("http://127.0.0.1:")  # auto now means the measured official index
    assert env["set"]["UV_DEFAULT_INDEX"] == env["set"]["PIP_INDEX_URL"]


def test_table_in_chinese(bundle: Path) -> None:
    r = run_cli(bundle, "--lang", "zh", "mirrors", "test", "--channel", "pypi", "--timeout", "1")
    assert r.returncode == 0 and "✗" not in r.stderr  # PyPI has a working mirror: no finding
    assert "可用" in r.stdout and "connection refused" in r.stdout and "首字节ms" in r.stdout
    assert "结果已保存" in r.stderr


def test_a_dead_channel_is_a_finding_and_exit_4_in_the_plain_table_too(bundle: Path) -> None:
    r = run_cli(bundle, "mirrors", "test", "--channel", "torch", "--timeout", "0.5")
    assert r.returncode == 4
    assert "✗ The torch channel has no working mirror (tried: " in r.stderr and "mirrors use torch FOLDER" in r.stderr
    zh = run_cli(bundle, "--lang", "zh", "mirrors", "test", "--channel", "huggingface", "--json", "--timeout", "0.5")
    assert zh.returncode == 4 and "huggingface 通道没有可用的镜像" in json.loads(zh.stdout)["findings"][0]["message"]
    ok = run_cli(bundle, "mirrors", "test", "--channel", "pypi", "--json", "--timeout", "1")
    assert ok.returncode == 0 and json.loads(ok.stdout)["findings"] == []


def test_a_dead_civitai_or_modelscope_is_reported_but_fails_only_when_asked_for(bundle: Path) -> None:
    """One-click never needs them (civitai.com is often unreachable in mainland China): a plain test names them
    dead and still exits 0 when every channel one-click needs works; asked for by name, a dead one exits 4."""
    from launcher.cli.mirrors_cmd import blocks

    plain = argparse.Namespace(channel=None)
    assert blocks("torch", plain) and not blocks("civitai", plain) and not blocks("modelscope", plain)
    assert blocks("civitai", argparse.Namespace(channel="civitai"))
    r = run_cli(bundle, "mirrors", "test", "--channel", "civitai", "--json", "--timeout", "0.5")
    assert r.returncode == 4 and json.loads(r.stdout)["findings"][0]["channel"] == "civitai"


def test_use_persists_and_the_child_environment_shows_it(bundle: Path) -> None:
    r = run_cli(bundle, "mirrors", "use", "pypi", "清华")
    assert r.returncode == 0, r.stderr
    assert 'pypi = "tuna"' in (bundle / "config.toml").read_text(encoding="utf-8")
    env = json.loads(run_cli(bundle, "mirrors", "env", "--json").stdout)["set"]
    tuna = next(
        m
        for m in json.loads(run_cli(bundle, "mirrors", "list", "--json").stdout)["channels"][0]["mirrors"]
        if m["id"] == "tuna"
    )
    assert env["PIP_INDEX_URL"] == env["UV_DEFAULT_INDEX"] == tuna["url"]
    assert run_cli(bundle, "mirrors", "use", "pypi", "auto").returncode == 0
    assert 'pypi = "auto"' in (bundle / "config.toml").read_text(encoding="utf-8")


def test_use_refuses_bad_input_and_saves_nothing(bundle: Path, mirror_farm: MirrorFarm) -> None:
    r = run_cli(bundle, "mirrors", "use", "pypi", "tsinghau")
    assert r.returncode == 2 and "MIRROR_CHOICE_INVALID" in r.stderr and "Did you mean 'tuna'" in r.stderr
    r = run_cli(bundle, "mirrors", "use", "pypi", mirror_farm.html.simple_url())
    assert r.returncode == 4 and "MIRROR_UNUSABLE" in r.stderr and "wrong content" in r.stderr
    assert "--force" in r.stderr
    r = run_cli(bundle, "mirrors", "use", "pypi", "/no/such/folder")
    assert r.returncode == 4 and "no such folder" in r.stderr
    assert not (bundle / "config.toml").exists()
    assert run_cli(bundle, "mirrors", "use", "pypi", mirror_farm.dead_url + "/simple", "--force").returncode == 0
    assert (bundle / "config.toml").exists()


def test_use_recognises_a_flat_torch_listing_and_a_wheel_folder(
    bundle: Path, flat_index: PackageIndex, tmp_path: Path
) -> None:
    url = flat_index.flat_url("cu128")
    r = run_cli(bundle, "mirrors", "use", "torch", url)
    assert r.returncode == 0, r.stderr
    assert f'torch = "flat+{url}"' in (bundle / "config.toml").read_text(encoding="utf-8")
    env = json.loads(run_cli(bundle, "mirrors", "env", "--cuda", "cu128", "--json").stdout)["set"]
    assert env["PIP_FIND_LINKS"] == url and env["UV_FIND_LINKS"] == url and "UV_INDEX" not in env
    folder = tmp_path / "wheels"
    folder.mkdir()
    (folder / "torch-2.7.1+cu128-cp311-cp311-linux_x86_64.whl").write_bytes(b"")
    assert run_cli(bundle, "mirrors", "use", "torch", f"file://{folder}").returncode == 0
    env = json.loads(run_cli(bundle, "mirrors", "env", "--cuda", "cu128", "--json").stdout)["set"]
    assert env["PIP_FIND_LINKS"] == str(folder)


def test_offline_mode_refuses_to_measure(bundle: Path) -> None:
    assert run_cli(bundle, "config", "set", "network.offline", "true").returncode == 0
    r = run_cli(bundle, "mirrors", "test", "--json")
    assert r.returncode == 4 and json.loads(r.stdout)["error"]["code"] == "OFFLINE_MODE"
