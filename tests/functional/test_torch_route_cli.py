"""`yijian setup` with every torch mirror down (issue 14): PyPI's equivalent build, or the finding that says how."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.support.bundle_copy import copy_bundle, run_cli
from tests.support.httpbase import free_port
from tests.support.packs import TEST_PACK
from tests.support.pypi_index import PackageIndex

pytestmark = pytest.mark.slow

PY = f"{sys.version_info[0]}.{sys.version_info[1]}"


@pytest.fixture
def bundle(tmp_path: Path, package_index: PackageIndex) -> Path:
    """Every catalog mirror dead; PyPI is the harness index, chosen in config.toml."""
    b = copy_bundle(tmp_path / "bundle")
    mirrors = b / "mirrors.toml"
    dead = f"http://127.0.0.1:{free_port()}"
    mirrors.write_text(re.sub(r'(?m)^(url|probe) = "https://', rf'\1 = "{dead}/', mirrors.read_text(encoding="utf-8")),
                       encoding="utf-8")  # fmt: skip
    (b / "packs" / "test-runtime.txt").write_text("tinypkg==1.0\n", encoding="utf-8")
    (b / "config.toml").write_text(f'[mirrors]\npypi = "{package_index.simple_url()}"\n[setup]\npython = "system"\n',
                                   encoding="utf-8")  # fmt: skip
    return b


def test_the_cpu_pack_falls_back_to_pypis_torch_and_then_holds(bundle: Path) -> None:
    route = 'pypi_torch_linux = "2.7.1"\npypi_torch_windows = "2.7.1"\n'
    (bundle / "packs" / "test-cpu.toml").write_text(TEST_PACK.format(py=PY) + route, encoding="utf-8")
    r = run_cli(bundle, "setup", "--pack", "test-cpu")
    assert r.returncode == 0, r.stderr
    assert "installing torch==2.7.1 from the PyPI mirror" in r.stderr and "instead of 2.7.1+cpu" in r.stderr
    assert "Environment ready" in r.stderr
    again = run_cli(bundle, "setup", "--pack", "test-cpu", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["noop"] is True
    plan = json.loads(run_cli(bundle, "setup", "--pack", "test-cpu", "--dry-run", "--json").stdout)
    assert plan["torch_route"] == {"now": "pypi", "pypi_pins": ["torch==2.7.1"]} and plan["pins"] == ["torch==2.7.1"]


def test_a_pack_pypi_cannot_stand_in_for_ends_with_exit_4_and_the_way_out(bundle: Path) -> None:
    (bundle / "packs" / "test-cpu.toml").write_text(TEST_PACK.format(py=PY), encoding="utf-8")  # no pypi_torch_*
    r = run_cli(bundle, "--lang", "zh", "setup", "--pack", "test-cpu")
    assert r.returncode == 4, r.stderr
    assert "TORCH_NO_ROUTE" in r.stderr and "PyTorch 轮子通道的所有镜像都失败了" in r.stderr
    # the way out, and the mirrors tried by name
    assert "mirrors use torch" in r.stderr and "PyTorch 官方: connection refused" in r.stderr
    assert not (bundle / "env" / "runtime").exists()
