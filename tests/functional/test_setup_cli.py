"""`yijian setup` as users run it: the plan, a build from local mirrors, the no-op, and a move.

Two levels.  The plan and a quick build use the harness's fake wheels (a
test pack written into the bundle copy).  One integration test builds the
real CPU pack (torch 2.13.0+cpu from the machine's local wheel folder, the
runtime from PyPI) where both are reachable, and is skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.bundle_copy import CACHE, copy_bundle, run_cli, run_start
from tests.support.hermetic import MACHINE_WHEELS
from tests.support.packs import TEST_PACK
from tests.support.plugin_index import Wheelhouse
from tests.support.pypi_index import PackageIndex

pytestmark = pytest.mark.slow


@pytest.fixture
def bundle(tmp_path: Path, package_index: PackageIndex, wheelhouse: Wheelhouse) -> Path:
    b = copy_bundle(tmp_path / "my bundle")
    (b / "packs" / "test-cpu.toml").write_text(
        TEST_PACK.format(py=f"{sys.version_info[0]}.{sys.version_info[1]}"), encoding="utf-8"
    )
    (b / "packs" / "test-runtime.txt").write_text("tinypkg==1.0\nneeds-torch==1.0\n", encoding="utf-8")
    (b / "config.toml").write_text(
        f'[mirrors]\npypi = "{package_index.simple_url()}"\ntorch = "{wheelhouse.variants["cpu"]}"\n'
        '[setup]\npython = "system"\n',
        encoding="utf-8",
    )
    return b


def test_dry_run_prints_the_exact_plan(bundle: Path, package_index: PackageIndex, wheelhouse: Wheelhouse) -> None:
    r = run_cli(bundle, "setup", "--pack", "test-cpu", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["pack"] == {"id": "test-cpu", "python": plan["pack"]["python"], "torch": "2.7.1+cpu", "torchvision": None,
                            "xformers": None, "cuda": "cpu"}  # fmt: skip
    assert plan["indexes"]["pypi"]["url"] == package_index.simple_url()
    assert plan["indexes"]["torch"] == {"id": "local", "url": str(wheelhouse.variants["cpu"]), "kind": "local"}
    assert plan["pins"] == ["torch==2.7.1+cpu"] and plan["requirements"] == ["tinypkg==1.0", "needs-torch==1.0"]
    assert plan["noop"] is False and plan["python"]["version"].startswith(plan["pack"]["python"])
    assert not (bundle / "env" / "runtime").exists()  # a dry run changes nothing


def test_dry_run_shows_the_python_choice_and_why(bundle: Path) -> None:
    r = run_cli(bundle, "setup", "--pack", "test-cpu", "--dry-run", "--json")  # setup.python = system here
    py = json.loads(r.stdout)["python"]
    assert r.returncode == 0 and (py["source"], py["setting"], py["status"]) == ("system", "system", "found")
    assert "cannot be copied to another PC" in py["note"]
    config = bundle / "config.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace('python = "system"', 'python = "bundled"'), encoding="utf-8"
    )
    r = run_cli(bundle, "setup", "--pack", "test-cpu", "--dry-run", "--json")
    py = json.loads(r.stdout)["python"]
    assert r.returncode == 0 and (py["source"], py["status"]) == ("bundled", "to install") and "path" not in py
    assert "does not fall back to the system's Python" in py["note"]
    r = run_cli(bundle, "--lang", "zh", "setup", "--pack", "test-cpu", "--dry-run")
    assert "Python: 3." in r.stdout and "(bundled)" in r.stdout and "不会改用系统的 Python" in r.stderr


def test_build_then_no_op_then_the_bundle_moves(bundle: Path, tmp_path: Path) -> None:
    r = run_cli(bundle, "setup", "--pack", "test-cpu")
    assert r.returncode == 0, r.stderr
    assert "Environment ready" in r.stderr
    r = run_cli(bundle, "setup", "--pack", "test-cpu", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["noop"] is True
    moved = tmp_path / "elsewhere" / "renamed bundle"
    moved.parent.mkdir()
    shutil.move(str(bundle), str(moved))
    py = moved / "env" / "runtime" / "bin" / "python"
    out = subprocess.run(
        [str(py), "-c", "import torch, tinypkg; print(torch.__version__)"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == "2.7.1+cpu", out.stderr
    assert (
        not list((moved / "env" / "runtime" / "bin").glob("activate*"))
        or str(bundle) not in (moved / "env" / "runtime" / "bin" / "activate").read_text()
    )
    r = run_cli(moved, "setup", "--pack", "test-cpu", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["noop"] is True


def test_repairs(bundle: Path) -> None:
    assert run_cli(bundle, "setup", "--pack", "test-cpu").returncode == 0
    r = run_cli(bundle, "setup", "--pack", "test-cpu", "--repair", "xformers")
    assert r.returncode == 0 and "has no xformers; nothing to repair" in r.stderr
    r = run_cli(bundle, "setup", "--pack", "test-cpu", "--repair", "torch", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["noop"] is False and out["stamp"]["repaired"] == "torch"


def test_unknown_pack_is_named(bundle: Path) -> None:
    r = run_cli(bundle, "setup", "--pack", "cu999")
    assert r.returncode == 2 and "PACK_UNKNOWN" in r.stderr


def _pypi_reachable() -> bool:
    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=5).close()
    except OSError:
        return False
    return True


REAL_TORCH = list(Path(MACHINE_WHEELS).glob("torch-2.13.0+cpu-*.whl")) if MACHINE_WHEELS else []


@pytest.mark.skipif(
    not REAL_TORCH, reason="no torch-2.13.0+cpu wheel in the machine's local wheel folder (PIP_FIND_LINKS)"
)
def test_the_real_cpu_pack_builds_here(tmp_path: Path) -> None:
    if not _pypi_reachable():
        pytest.skip("PyPI is not reachable from this machine")
    bundle = copy_bundle(tmp_path / "real bundle")
    shared = CACHE / "uv"  # keep uv's cache between runs: the runtime is a few hundred MB from PyPI
    shared.mkdir(parents=True, exist_ok=True)
    (bundle / "cache").mkdir()
    os.symlink(shared, bundle / "cache" / "uv")
    # This machine has no bundled Python to be had: the system's, chosen as a user would (issue 14).
    (bundle / "config.toml").write_text(f'[mirrors]\npypi = "pypi"\ntorch = "{MACHINE_WHEELS}"\n[setup]\npython = "system"\n',
                                        encoding="utf-8")  # fmt: skip
    r = run_start(bundle, "setup", "--pack", "cpu", timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    py = bundle / "env" / "runtime" / "bin" / "python"
    code = "import torch, diffusers, transformers, gradio; print(torch.__version__, torch.version.cuda, diffusers.__version__)"
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["2.13.0+cpu", "None", "0.42.1"], out.stderr
    r = run_start(bundle, "setup", "--pack", "cpu", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["noop"] is True
    # The machine's wheel folder holds torch only: the pack's optional torchvision is left out, and the plan says so.
    r = run_start(bundle, "setup", "--pack", "cpu", "--dry-run", "--json")
    plan = json.loads(r.stdout)
    assert plan["pins"] == ["torch==2.13.0+cpu"] and plan["optional"] == []
    assert any(n.startswith("torchvision==0.28.0+cpu is not on") for n in plan["notes"]), plan["notes"]
    assert subprocess.run([str(py), "-c", "import torchvision"], capture_output=True, timeout=120).returncode != 0
