"""The torch channel's route around (issue 14): PyPI's equivalent build when every torch mirror fails.

Against the harness indexes with the real installers: the PyPI stand-in carries plain torch 2.7.1 (a CUDA 12.6
build, like PyPI's Linux wheel), the torch stand-in the ``+cpu``/``+cu128`` builds.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from bootstrap.builder import state
from bootstrap.builder.build import build, make_plan, runtime_env
from bootstrap.builder.torch_route import no_route
from bootstrap.layout import Bundle, bundle_environ
from launcher.errors import PackFileInvalid, TorchNoRoute
from launcher.mirrors.sources import Source
from launcher.packs.catalog import load_packs
from tests.support.httpbase import free_port
from tests.support.plugin_index import Wheelhouse
from tests.support.pypi_index import PackageIndex

PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
PACKS = Path(__file__).resolve().parents[2] / "packs"


def pack(cuda: str) -> types.SimpleNamespace:
    return types.SimpleNamespace(id=f"test-{cuda}", python=PY, torch="2.7.1+" + cuda, torchvision="", cuda=cuda)


def dead(channel: str, mirror_id: str, name: str) -> Source:
    return Source(channel, mirror_id, f"http://127.0.0.1:{free_port()}/simple", "pep503", name, name)


def good(channel: str, mirror_id: str, url: str) -> Source:
    return Source(channel, mirror_id, url, "pep503", mirror_id, mirror_id.upper())


@pytest.fixture
def bundle(sealed) -> Bundle:  # type: ignore[no-untyped-def]
    b = Bundle.locate()
    b.ensure_dirs()
    return b


@pytest.fixture(params=["uv", "pip"])
def installer(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def blocked_pypi(wheelhouse: Wheelhouse, installer: str):  # type: ignore[no-untyped-def]
    """A PyPI mirror with the right wheels that answers 403 to the installer's user agent (TUNA's WAF to pip's)."""
    with PackageIndex(root=wheelhouse.pypi) as index:
        index.forbid(403, agent=installer + "/")
        yield index


def env_for(bundle: Bundle, tmp_path: Path) -> dict[str, str]:
    env = bundle_environ(bundle)
    env["UV_CACHE_DIR"] = str(tmp_path / "uv-cache")
    return env


@pytest.mark.slow
def test_every_torch_mirror_down_and_the_first_pypi_mirror_403_still_builds_from_pypi(
    bundle: Bundle, package_index: PackageIndex, blocked_pypi: PackageIndex, tmp_path: Path, installer: str
) -> None:
    from launcher.mirrors import ranking

    pypi = [good("pypi", "tuna", blocked_pypi.simple_url()), good("pypi", "ustc", package_index.simple_url())]
    torch = [dead("torch", "nju", "南京大学"), dead("torch", "official", "download.pytorch.org")]
    plan = make_plan(bundle, pack("cpu"), ["torch==2.7.1+cpu"], ["tinypkg==1.0"], pypi[0], torch[0], installer,
                     alternates={"pypi": pypi[1:], "torch": torch[1:]}, pypi_pins=["torch==2.7.1"])  # fmt: skip
    said: list[str] = []
    stamp = build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: said.append(e.en))
    have = state.installed(runtime_env(bundle))
    assert have["torch"] == "2.7.1" and have["tinypkg"] == "1.0"  # PyPI's build, not the +cpu one
    assert stamp["torch_route"] == "pypi" and stamp["pins"] == ["torch==2.7.1"]
    switch = [s for s in said if "instead of 2.7.1+cpu" in s]
    assert len(switch) == 1, said
    assert "南京大学: connection refused" in switch[0] and "download.pytorch.org: connection refused" in switch[0]
    assert "setup --rebuild" in switch[0]
    if sys.platform.startswith("linux"):
        assert "CUDA build; it runs on the CPU too" in switch[0]
    # PyPI's torch came through the resumable engine (a kill mid-file resumes), from the blocked mirror: the WAF
    # blocks the installers' user agents, not the launcher's downloader.
    fetched = list((bundle.cache_dir / "wheels").glob("torch-2.7.1-*.whl"))
    assert len(fetched) == 1 and any(s.startswith("downloading torch-2.7.1-") for s in said), said
    # The blocked PyPI mirror was left once, not retried in a loop.
    assert len([s for s in said if s.startswith("mirror TUNA failed (HTTP 403")]) == 1, said
    failures = ranking.load(bundle).failures
    assert set(failures["torch"]) == {"nju", "official"} and "tuna" in failures["pypi"]
    # The next plan with the same route holds (no rebuild on every start), and says where torch came from.
    again = make_plan(bundle, pack("cpu"), ["torch==2.7.1+cpu"], ["tinypkg==1.0"], pypi[1], torch[0],
                      pypi_pins=["torch==2.7.1"], look_up_wheels=False)  # fmt: skip
    assert again.noop and again.torch_route == "pypi" and any("from PyPI" in n for n in again.notes)


def test_the_big_wheel_comes_from_the_first_torch_mirror_that_lists_it(
    bundle: Bundle, package_index: PackageIndex
) -> None:
    """A dead first torch mirror does not leave the big download to the installer (which restarts it after a kill)."""
    with PackageIndex(variants={}) as empty:  # answers, but has no cpu folder: 404
        torch = [dead("torch", "nju", "南京大学"), good("torch", "sjtu", empty.url + "/whl/cpu/simple"),
                 good("torch", "official", package_index.simple_url("cpu"))]  # fmt: skip
        plan = make_plan(bundle, pack("cpu"), ["torch==2.7.1+cpu"], ["tinypkg==1.0"],
                         good("pypi", "ustc", package_index.simple_url()), torch[0],
                         alternates={"torch": torch[1:]})  # fmt: skip
    (wheel,) = plan.big_wheels
    assert wheel.filename.startswith("torch-2.7.1+cpu-") and wheel.url.startswith(package_index.url) and wheel.sha256
    assert [n.split(": ", 1)[1] for n in plan.notes] == ["connection refused",
                                                           "HTTP 404 (the mirror lacks it or refuses it)"]  # fmt: skip


@pytest.mark.slow
def test_a_torch_mirror_that_answers_an_html_page_is_left_too(
    bundle: Bundle, package_index: PackageIndex, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    with PackageIndex(variants={"cpu": wheelhouse.variants["cpu"]}) as portal:
        portal.serve_error_page()  # 200 with a maintenance page: no connection error for the installer to print
        plan = make_plan(bundle, pack("cpu"), ["torch==2.7.1+cpu"], ["tinypkg==1.0"],
                         good("pypi", "ustc", package_index.simple_url()), good("torch", "nju", portal.simple_url("cpu")),
                         pypi_pins=["torch==2.7.1"])  # fmt: skip
        said: list[str] = []
        stamp = build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: said.append(e.en))
    assert stamp["torch_route"] == "pypi" and state.installed(runtime_env(bundle))["torch"] == "2.7.1"
    assert any("(NJU: not a package index (wrong content))" in s for s in said), said


@pytest.mark.slow
def test_a_failed_prefetch_of_the_big_wheel_leaves_it_to_the_installer(
    bundle: Bundle, package_index: PackageIndex, tmp_path: Path
) -> None:
    from bootstrap.builder.wheels import Wheel

    plan = make_plan(bundle, pack("cpu"), ["torch==2.7.1+cpu"], ["tinypkg==1.0"],
                     good("pypi", "ustc", package_index.simple_url()), good("torch", "nju", package_index.simple_url("cpu")))  # fmt: skip
    assert [w.filename.split("-")[1] for w in plan.big_wheels] == ["2.7.1+cpu"]
    dead = f"http://127.0.0.1:{free_port()}/files/{plan.big_wheels[0].filename}"
    plan.big_wheels = [Wheel(plan.big_wheels[0].filename, dead, plan.big_wheels[0].sha256)]  # its file host died
    said: list[str] = []
    build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: said.append(e.en))
    assert state.installed(runtime_env(bundle))["torch"] == "2.7.1+cpu"
    assert any(s.startswith("prefetching torch-2.7.1+cpu") and "the installer fetches it" in s for s in said), said


@pytest.mark.slow
def test_a_pack_without_a_pypi_route_ends_with_the_channels_tried_and_the_fix(
    bundle: Bundle, package_index: PackageIndex, tmp_path: Path
) -> None:
    torch = [dead("torch", "nju", "南京大学"), dead("torch", "official", "download.pytorch.org")]
    plan = make_plan(bundle, pack("cu128"), ["torch==2.7.1+cu128"], ["tinypkg==1.0"],
                     good("pypi", "ustc", package_index.simple_url()), torch[0], alternates={"torch": torch[1:]})  # fmt: skip
    with pytest.raises(TorchNoRoute) as info:
        build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: None)
    err = info.value
    assert err.exit_code == 4 and err.code == "TORCH_NO_ROUTE"
    message = err.message("en")
    assert "download.pytorch.org: connection refused" in message and "torch==2.7.1+cu128" in message
    assert "mirrors use torch FOLDER" in err.hint("en") and "network.proxy" in err.hint("en")
    assert "mirrors use torch 文件夹路径" in err.hint("zh")
    assert not runtime_env(bundle).exists()


def test_a_windows_cuda_pack_says_pypi_has_only_cpu_torch() -> None:
    err = no_route(pack("cu128"), "torch==2.10.0+cu128", [("NJU", "DNS lookup failed")], "windows")
    assert "CPU-only" in err.message("en") and "只有 CPU 版" in err.message("zh")
    assert "NJU: DNS lookup failed" in err.message("en")
    linux = no_route(pack("cu118"), "torch==2.7.1+cu118", [("NJU", "timed out")], "linux")
    assert "no build equivalent to torch==2.7.1+cu118 on linux" in linux.message("en")


def test_the_shipped_packs_record_their_pypi_route_per_os() -> None:
    packs = load_packs(PACKS)
    for p in packs.all():
        # PyPI's Windows torch is CPU-only (knowledge §2.4): no CUDA pack has a Windows route.
        assert not p.uses_gpu or p.pypi_pins("windows") == [], p.id
        for os_name in ("linux", "windows"):
            route = p.pypi_pins(os_name)
            if route:
                trio = p.pins(os_name) + p.optional_pins(os_name)
                assert sorted(r.split("==")[0] for r in route) == sorted(r.split("==")[0] for r in trio)
                assert route[0] == "torch==" + p.torch.split("+")[0]
    # PyPI's torchvision matches PyPI's torch (CUDA builds on Linux, CPU builds on Windows), so the CPU pack's
    # optional torchvision comes along on this route.
    assert packs.require("cpu").pypi_pins("linux") == ["torch==2.13.0", "torchvision==0.28.0"]
    assert packs.require("cpu").pypi_pins("windows") == ["torch==2.13.0", "torchvision==0.28.0"]
    # PyPI's Linux 2.15.0 is CUDA 13.2 and 2.14.1 is CUDA 13.0 (no sm < 75): neither stands in (third check 3, 4).
    assert packs.require("cu130").pypi_pins("linux") == [] == packs.require("cu126").pypi_pins("linux")
    assert packs.require("cu128").pypi_pins("linux") == ["torch==2.10.0", "torchvision==0.25.0", "xformers==0.0.34"]
    assert packs.require("cu118").pypi_pins("linux") == []  # PyPI's 2.7.1 is cu126: too new a driver for this pack


def test_a_pypi_route_that_is_not_the_packs_version_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "packs"
    folder.mkdir()
    (folder / "runtime.txt").write_text((PACKS / "runtime.txt").read_text(encoding="utf-8"), encoding="utf-8")
    text = (PACKS / "cu128.toml").read_text(encoding="utf-8")
    (folder / "cu128.toml").write_text(text.replace('pypi_torch_linux = "2.10.0"', 'pypi_torch_linux = "2.11.0"')
                                       .replace('pypi_torchvision_linux = "0.25.0"', 'pypi_torchvision_linux = ""'),
                                       encoding="utf-8")  # fmt: skip
    with pytest.raises(PackFileInvalid) as info:
        load_packs(folder)
    listing = info.value.params["listing"]
    assert "pypi_torch_linux: '2.11.0' must be the version of '2.10.0+cu128'" in listing
    assert "pypi_torchvision_linux: needed exactly when" in listing


@pytest.mark.parametrize(
    "output",
    [
        # uv 0.13, a Git LFS pointer served as six's wheel (run here against such a file)
        "  cause: Because six==1.16.0 has an invalid package format and only six==1.16.0 is available, we can "
        "conclude that all versions of six cannot be used.\nhint: The structure of `six` (v1.16.0) was invalid:\n"
        "  Failed to read from zip file",
        # pip 25, the same file
        "Processing ./six-1.16.0-py2.py3-none-any.whl\nERROR: Wheel 'six' located at /tmp/six-1.16.0-py2.py3-none-any"
        ".whl is invalid.",
    ],
)
def test_a_mirror_that_serves_a_file_that_is_not_a_wheel_is_left(output: str) -> None:
    """Found by the chaos soak: an LFS pointer for a wheel failed the build instead of moving to the next mirror."""
    from types import SimpleNamespace
    from typing import Any

    from bootstrap.builder.blame import mirror_failure
    from launcher.mirrors.sources import Source

    pypi = Source("pypi", "tuna", "http://127.0.0.1:9/simple", "pep503", "清华", "TUNA")
    spec: Any = SimpleNamespace(torch=None, pypi=pypi)
    assert mirror_failure(output.splitlines(), spec, "runtime", "uv") == ("pypi", "the mirror served a broken file")
