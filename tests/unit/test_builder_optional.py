"""A pack's optional parts: left out where the torch channel lacks them, removed when they fail the self-check
(and said so in the plan, the events and the stamp), checked like any other part where they work."""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import pytest

from bootstrap.builder import state
from bootstrap.builder.build import build, make_plan, runtime_env
from bootstrap.layout import Bundle, bundle_environ
from launcher.errors import EnvironmentBuildFailed
from launcher.mirrors.sources import Source
from tests.support.plugin_index import Wheelhouse
from tests.support.pypi_index import PackageIndex
from tests.support.wheels import build_wheel, fake_xformers

pytestmark = pytest.mark.slow

PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
BROKEN_VISION = "raise RuntimeError('operator torchvision::nms does not exist')\n"  # what a CUDA build does beside +cpu


def pack(cuda: str, optional: list[str]) -> types.SimpleNamespace:
    return types.SimpleNamespace(id=f"test-{cuda}", python=PY, torch="2.7.1+" + cuda, torchvision="", cuda=cuda,
                                 optional_pins=lambda _os: list(optional))  # fmt: skip


def src(channel: str, url: str, kind: str = "pep503") -> Source:
    return Source(channel, "local-" + channel, url, kind, url, url)


@pytest.fixture
def bundle(sealed) -> Bundle:  # type: ignore[no-untyped-def]
    b = Bundle.locate()
    b.ensure_dirs()
    return b


def env_for(bundle: Bundle, tmp_path: Path) -> dict[str, str]:
    env = bundle_environ(bundle)
    env["UV_CACHE_DIR"] = str(tmp_path / "uv-cache")
    env["UV_HTTP_RETRIES"] = "0"
    return env


def folder_with(tmp_path: Path, wheelhouse: Wheelhouse, variant: str, *extra: Path) -> Source:
    """A torch channel that is a local folder: the variant's torch (and its torchvision), plus ``extra``."""
    folder = tmp_path / f"torch-{variant}"
    folder.mkdir()
    for wheel in wheelhouse.variants[variant].glob("torch-*.whl"):
        shutil.copy2(wheel, folder)
    for wheel in extra:
        shutil.copy2(wheel, folder)
    return src("torch", str(folder), "local")


def test_an_optional_part_the_channel_lacks_is_left_out_and_said(
    bundle: Bundle, package_index: PackageIndex, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    torch = folder_with(tmp_path, wheelhouse, "cpu")  # torch only, like this machine's wheel folder
    plan = make_plan(bundle, pack("cpu", ["torchvision==0.28.0+cpu"]), ["torch==2.7.1+cpu"], ["tinypkg==1.0"],
                     src("pypi", package_index.simple_url()), torch)  # fmt: skip
    assert plan.pins == ["torch==2.7.1+cpu"] and plan.optional == []
    assert any("torchvision==0.28.0+cpu is not on" in n and "built without it" in n for n in plan.notes)
    stamp = build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: None)
    assert "torchvision" not in state.installed(runtime_env(bundle)) and stamp["dropped"] == {}


def test_an_optional_part_that_fails_the_self_check_is_removed_and_remembered(
    bundle: Bundle, package_index: PackageIndex, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    # xformers 0.0.35 built for another torch: it installs (its pin is the public 2.7.1) but warns at import.
    stranger = fake_xformers(tmp_path / "xf", "0.0.35", built_for_torch="2.7.1+cu126")
    torch = folder_with(tmp_path, wheelhouse, "cu128", stranger)
    wanted = pack("cu128", ["xformers==0.0.35"])
    plan = make_plan(bundle, wanted, ["torch==2.7.1+cu128"], ["tinypkg==1.0"], src("pypi", package_index.simple_url()),
                     torch)  # fmt: skip
    assert plan.pins == ["torch==2.7.1+cu128", "xformers==0.0.35"] and plan.optional == ["xformers==0.0.35"]
    events: list[str] = []
    stamp = build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: events.append(e.en))
    assert "xFormers was built for" in stamp["dropped"]["xformers==0.0.35"]
    assert any(e.startswith("xformers==0.0.35 failed the self-check") for e in events)
    have = state.installed(runtime_env(bundle))
    assert "xformers" not in have and have["torch"] == "2.7.1+cu128" and stamp["pins"] == ["torch==2.7.1+cu128"]
    again = make_plan(bundle, wanted, ["torch==2.7.1+cu128"], ["tinypkg==1.0"], src("pypi", package_index.simple_url()),
                      torch)  # fmt: skip
    assert again.noop and any("failed the self-check of the last build" in n for n in again.notes)


def test_a_required_part_that_fails_the_self_check_fails_the_build(
    bundle: Bundle, package_index: PackageIndex, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    broken = build_wheel(tmp_path / "tv", "torchvision", "0.28.0+cpu", files={"torchvision/__init__.py": BROKEN_VISION})
    torch = folder_with(tmp_path, wheelhouse, "cpu", broken)
    plan = make_plan(bundle, pack("cpu", []), ["torch==2.7.1+cpu", "torchvision==0.28.0+cpu"], ["tinypkg==1.0"],
                     src("pypi", package_index.simple_url()), torch)  # fmt: skip
    with pytest.raises(EnvironmentBuildFailed) as info:
        build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: None)
    assert info.value.params["step"] == "check" and "operator torchvision::nms does not exist" in info.value.message("en")
    assert not runtime_env(bundle).exists()


def test_an_optional_torchvision_that_does_not_import_is_removed(
    bundle: Bundle, package_index: PackageIndex, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    broken = build_wheel(tmp_path / "tv", "torchvision", "0.28.0+cpu", files={"torchvision/__init__.py": BROKEN_VISION})
    torch = folder_with(tmp_path, wheelhouse, "cpu", broken)
    plan = make_plan(bundle, pack("cpu", ["torchvision==0.28.0+cpu"]), ["torch==2.7.1+cpu"], ["tinypkg==1.0"],
                     src("pypi", package_index.simple_url()), torch)  # fmt: skip
    stamp = build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: None)
    assert list(stamp["dropped"]) == ["torchvision==0.28.0+cpu"]
    assert "torchvision" not in state.installed(runtime_env(bundle))
