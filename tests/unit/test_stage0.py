"""Stage 0 picks the PyPI index the way users need: chosen first, healthy next, and says why once."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from bootstrap.index_choice import StageConfig, read_stage_config
from bootstrap.launcher_env import candidate_indexes, pip_argv
from bootstrap.layout import Bundle
from bootstrap.stage0 import launcher_env_ready
from tests.support.bundle_copy import pypi_ids, set_mirror_urls
from tests.support.hermetic import REPO
from tests.support.plugin_mirrors import MirrorFarm


def bundle_with(tmp_path: Path, urls: dict[str, str]) -> Bundle:
    code = tmp_path / "code"
    (code / "requirements").mkdir(parents=True)
    shutil.copy2(REPO / "mirrors.toml", code / "mirrors.toml")
    shutil.copy2(REPO / "requirements" / "launcher.txt", code / "requirements" / "launcher.txt")
    set_mirror_urls(code / "mirrors.toml", "pypi", urls)
    return Bundle(root=tmp_path / "root", code=code)


def farm_urls(farm: MirrorFarm, official: str) -> dict[str, str]:
    """tuna refuses connections, bfsu answers 403, ustc an HTML page, aliyun is slow; the rest are dead."""
    urls = {i: f"{farm.dead_url}/{i}/simple" for i in pypi_ids(REPO / "mirrors.toml")}
    urls.update({"tuna": f"{farm.dead_url}/simple", "bfsu": farm.forbidden.simple_url(),
                 "ustc": farm.html.simple_url(), "aliyun": farm.slow.simple_url(), "pypi": official})  # fmt: skip
    return urls


@pytest.fixture(autouse=True)
def short_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bootstrap.index_choice.PROBE_TIMEOUT", 1.0)


def test_auto_falls_back_to_official_and_says_so_once(tmp_path: Path, mirror_farm: MirrorFarm, capsys) -> None:  # type: ignore[no-untyped-def]
    bundle = bundle_with(tmp_path, farm_urls(mirror_farm, mirror_farm.fast.simple_url()))
    order = candidate_indexes(bundle, StageConfig(), "en")
    assert [i.id for i in order] == ["pypi"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("No Chinese mirror is reachable (tuna, bfsu, ustc, aliyun")
    assert "connection refused" in lines[0]
    assert f"falling back to the official index {mirror_farm.fast.simple_url()}" in lines[0]


def test_the_reasons_are_right_per_mirror(tmp_path: Path, mirror_farm: MirrorFarm) -> None:
    from bootstrap.index_choice import catalog_indexes, rank

    bundle = bundle_with(tmp_path, farm_urls(mirror_farm, mirror_farm.fast.simple_url()))
    results = {r.index.id: r for r in rank(catalog_indexes(bundle), timeout=1.0)}
    assert results["pypi"].ok
    assert results["tuna"].error == "connection refused"
    assert results["bfsu"].error == "HTTP 403"
    assert results["ustc"].error == "not a package index (wrong content)"
    assert results["aliyun"].error == "timed out"
    assert "sjtu" not in results  # unverified: stage 0 never picks it by itself


def test_chosen_mirror_that_fails_is_named_with_its_reason(tmp_path: Path, mirror_farm: MirrorFarm, capsys) -> None:  # type: ignore[no-untyped-def]
    bundle = bundle_with(tmp_path, farm_urls(mirror_farm, mirror_farm.fast.simple_url()))
    order = candidate_indexes(bundle, StageConfig(pypi="bfsu"), "zh")
    assert order[0].id == "pypi"
    err = capsys.readouterr().err
    assert "所选的 PyPI 镜像 北京外国语大学 BFSU 不可用（HTTP 403）" in err
    assert len(err.strip().splitlines()) == 1


def test_chosen_mirror_that_works_comes_first_even_if_slower(tmp_path: Path, mirror_farm: MirrorFarm, capsys) -> None:  # type: ignore[no-untyped-def]
    second = mirror_farm.html  # reuse a server as a second healthy mirror
    second.heal()
    urls = farm_urls(mirror_farm, mirror_farm.fast.simple_url())
    urls["ustc"] = second.simple_url()
    bundle = bundle_with(tmp_path, urls)
    order = candidate_indexes(bundle, StageConfig(pypi="ustc"), "en")
    assert [i.id for i in order[:2]] == ["ustc", "pypi"]
    assert capsys.readouterr().err == ""


def test_custom_url_and_local_folder(tmp_path: Path, mirror_farm: MirrorFarm) -> None:
    bundle = bundle_with(tmp_path, farm_urls(mirror_farm, mirror_farm.fast.simple_url()))
    order = candidate_indexes(bundle, StageConfig(pypi=mirror_farm.fast.simple_url() + "/"), "en")
    assert order[0].id == "custom" and order[0].url == mirror_farm.fast.simple_url()
    folder = tmp_path / "wheels"
    folder.mkdir()
    order = candidate_indexes(bundle, StageConfig(pypi=str(folder)), "en")
    assert [(i.id, i.local) for i in order] == [("local", True)]
    argv = pip_argv(Path("/py"), order[0], bundle, proxy="")
    assert argv[argv.index("--find-links") + 1] == str(folder) and "--no-index" in argv


def test_a_fresh_measurement_is_used_without_probing(tmp_path: Path, mirror_farm: MirrorFarm) -> None:
    bundle = bundle_with(tmp_path, farm_urls(mirror_farm, mirror_farm.fast.simple_url()))
    (bundle.cache_dir).mkdir(parents=True)
    results = [{"id": "nju", "ok": True, "total_ms": 50.0}, {"id": "pypi", "ok": True, "total_ms": 300.0},
               {"id": "tuna", "ok": False, "error": "timed out"}]  # fmt: skip
    (bundle.cache_dir / "mirrors.json").write_text(
        json.dumps({"channels": {"pypi": {"measured_at": time.time(), "results": results}}}), encoding="utf-8"
    )
    mirror_farm.fast.reset_counts()
    order = candidate_indexes(bundle, StageConfig(), "en")
    assert [i.id for i in order[:2]] == ["nju", "pypi"]
    assert order[-1].id != "tuna" and "tuna" not in [i.id for i in order]
    assert mirror_farm.fast.requests == []  # nothing was probed


def test_pip_argv_is_isolated_and_trusts_only_http_hosts(tmp_path: Path) -> None:
    from bootstrap.index_choice import Index

    bundle = Bundle(root=tmp_path)
    http = pip_argv(Path("/py"), Index("x", "http://10.0.0.1:8080/simple", "x", "x"), bundle, proxy="http://p:1")
    assert "--isolated" in http and http[http.index("--trusted-host") + 1] == "10.0.0.1"
    assert http[http.index("--proxy") + 1] == "http://p:1"
    assert http[http.index("--cache-dir") + 1] == str(tmp_path / "cache" / "pip")
    https = pip_argv(Path("/py"), Index("x", "https://m.example/simple", "x", "x"), bundle, proxy="")
    assert "--trusted-host" not in https and "--proxy" not in https


def test_a_proxy_password_reaches_pip_by_the_environment_not_its_command_line(tmp_path: Path) -> None:
    from bootstrap.index_choice import Index
    from bootstrap.launcher_env import proxy_environ

    proxy = "http://dave:Pxs3cret@127.0.0.1:9"
    argv = pip_argv(Path("/py"), Index("x", "https://m.example/simple", "x", "x"), Bundle(root=tmp_path), proxy=proxy)
    assert not [a for a in argv if "Pxs3cret" in a] and "--proxy" not in argv
    assert proxy_environ(proxy)["HTTPS_PROXY"] == proxy and proxy_environ(proxy)["http_proxy"] == proxy
    assert proxy_environ("http://p:1") == {}  # no password: --proxy as before


def test_stage_config_reads_only_what_it_needs_and_survives_a_broken_file(tmp_path: Path) -> None:
    bundle = Bundle(root=tmp_path)
    tmp_path.mkdir(exist_ok=True)
    bundle.config_file.write_text(
        '[mirrors]\npypi = "tuna"\n[network]\nproxy = "http://h:1"\noffline = true\n', encoding="utf-8"
    )
    cfg = read_stage_config(bundle)
    assert (cfg.pypi, cfg.proxy, cfg.offline, cfg.problem) == ("tuna", "http://h:1", True, "")
    bundle.config_file.write_text("[mirrors\n", encoding="utf-8")
    cfg = read_stage_config(bundle)
    assert cfg.pypi == "auto" and cfg.problem


def test_env_is_not_ready_without_a_stamp_or_after_the_requirements_change(tmp_path: Path) -> None:
    bundle = bundle_with(tmp_path, {})
    assert not launcher_env_ready(bundle)


CUT_OFF = [
    "pip._vendor.urllib3.exceptions.ProtocolError: ('Connection broken: IncompleteRead(4096 bytes read, 8192 more "
    "expected)', IncompleteRead(4096 bytes read, 8192 more expected))\n",
    # a body that ended early without a length: pip's own words (the chaos soak's dropped download)
    "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have updated the package "
    "versions, please update the hashes. Otherwise, examine the package contents carefully; someone may have "
    "tampered with them.\n",
]


def stage0_tries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outputs: list[str]) -> list[str]:
    """Stage 0 with two indexes ("a", then "b") and pip's output per try (``""``: it worked); the indexes tried."""
    import bootstrap.launcher_env as le
    from bootstrap.index_choice import Index

    bundle = bundle_with(tmp_path, {})
    bundle.logs_dir.mkdir(parents=True)
    first, second = Index("tuna", "http://127.0.0.1:9/a/simple", "清华", "TUNA"), Index("pypi", "http://127.0.0.1:9/b/simple", "官方", "PyPI")  # fmt: skip
    monkeypatch.setattr(le, "candidate_indexes", lambda *_: [first, second])
    monkeypatch.setattr(le, "swap_in", lambda staging, target: None)
    runs: list[str] = []
    real = le._run_logged

    def fake(argv: list[str], log: Path, env: dict[str, str], show: bool) -> int:
        if "venv" in argv:
            return real(argv, log, env, show)
        runs.append(argv[argv.index("--index-url") + 1].split("/")[-3])
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(outputs[len(runs) - 1])
        return 1 if outputs[len(runs) - 1] else 0

    monkeypatch.setattr(le, "_run_logged", fake)
    le.build_launcher_env(bundle, StageConfig(), "en")
    return runs


@pytest.mark.parametrize("cut_off", CUT_OFF)
def test_a_download_that_broke_off_is_tried_once_more_on_the_same_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut_off: str
) -> None:
    """pip does not resume a wheel cut off mid-file: stage 0 asks the same index once more (found by the chaos soak)."""
    assert stage0_tries(tmp_path, monkeypatch, [cut_off, ""]) == ["a", "a"]  # the same index again, not the next one


def mismatch(wheel: str) -> str:
    """pip's words when a wheel's body ended early (no error from the connection): its hash does not match."""
    return (f"{CUT_OFF[1]}    {wheel}==1.0 from http://127.0.0.1:9/a/files/{wheel}-1.0-py3-none-any.whl#sha256=00 "
            f"(from -r launcher.txt (line 1)):\n        Expected sha256 00\n             Got        11\n")  # fmt: skip


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        # a mirror that cuts every wheel's first download: each try gets one wheel further, all on the same index
        ([mismatch("anyio"), mismatch("certifi"), mismatch("click"), ""], ["a", "a", "a", "a"]),
        # the same wheel breaks off twice: this index is left for the next one
        ([mismatch("anyio"), mismatch("anyio"), ""], ["a", "a", "b"]),
        # pip's connection error names no wheel: once more, then the next index
        ([CUT_OFF[0], CUT_OFF[0], ""], ["a", "a", "b"]),
    ],
)
def test_an_index_is_tried_again_while_each_try_breaks_off_at_another_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outputs: list[str], expected: list[str]
) -> None:
    """The chaos soak's drop-mid-file mirror cut each wheel once: one retry was not enough for 38 wheels."""
    assert stage0_tries(tmp_path, monkeypatch, outputs) == expected


def test_the_wheel_that_broke_off_is_read_from_pips_output() -> None:
    from bootstrap.launcher_env import broken_wheel

    assert broken_wheel(mismatch("certifi")) == "http://127.0.0.1:9/a/files/certifi-1.0-py3-none-any.whl"
    out = "  Downloading http://m/files/a-1.whl (1 kB)\n  Downloading http://m/files/b-2.whl (9 MB)\n" + CUT_OFF[0]
    assert broken_wheel(out) == "http://m/files/b-2.whl"
    assert broken_wheel(CUT_OFF[0]) is None


def test_a_refused_index_is_not_tried_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bootstrap.launcher_env as le
    from bootstrap.errors import LauncherEnvError
    from bootstrap.index_choice import Index

    bundle = bundle_with(tmp_path, {})
    bundle.logs_dir.mkdir(parents=True)
    only = Index("tuna", "http://127.0.0.1:9/a/simple", "清华", "TUNA")
    monkeypatch.setattr(le, "candidate_indexes", lambda *_: [only])
    runs: list[str] = []
    real = le._run_logged

    def fake(argv: list[str], log: Path, env: dict[str, str], show: bool) -> int:
        if "venv" in argv:
            return real(argv, log, env, show)
        runs.append(argv[argv.index("--index-url") + 1])
        with open(log, "a", encoding="utf-8") as fh:
            fh.write("ERROR: HTTP error 403 while getting https://mirror/simple/requests/\n")
        return 1

    monkeypatch.setattr(le, "_run_logged", fake)
    with pytest.raises(LauncherEnvError):
        le.build_launcher_env(bundle, StageConfig(), "en")
    assert runs == [only.url + "/"]


def test_when_no_probe_answers_the_mirrors_that_only_timed_out_are_still_tried(
    tmp_path: Path, mirror_farm: MirrorFarm
) -> None:
    """A probe that times out proves nothing (a busy machine, a slow line): after the official index, try those too."""
    urls = farm_urls(mirror_farm, f"{mirror_farm.dead_url}/official/simple")
    bundle = bundle_with(tmp_path, urls)
    order = candidate_indexes(bundle, StageConfig(), "en")
    assert [i.id for i in order] == ["pypi", "aliyun"]  # refused, 403 and wrong content stay out
    order = candidate_indexes(bundle, StageConfig(pypi="ustc"), "en")
    assert [i.id for i in order] == ["ustc", "pypi", "aliyun"]
