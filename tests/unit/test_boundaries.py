"""The three layers stay apart, proved at run time in fresh interpreters.

- importing anything in ``bootstrap`` loads only the standard library;
- the launcher core (and the CLI) import neither textual, gradio, torch nor diffusers;
- no launcher module imports ``runtime``: the runtime runs as a child process.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.hermetic import REPO

PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
before = set(sys.modules)
import importlib
for name in sys.argv[2:]:
    importlib.import_module(name)
print(json.dumps(sorted({m.split(".")[0] for m in set(sys.modules) - before})))
"""


def imported_by(*modules: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, str(REPO), *modules], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


def modules_in(package: str) -> list[str]:
    base = REPO / package
    names = []
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(REPO).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


STAGE0 = [m for m in modules_in("bootstrap") if m.count(".") <= 1 and not m.startswith("bootstrap.builder")]


@pytest.mark.parametrize("module", STAGE0)
def test_bootstrap_imports_only_the_standard_library(module: str) -> None:
    extra = imported_by(module) - set(sys.stdlib_module_names) - {"bootstrap"}
    assert not extra, f"{module} pulls in {sorted(extra)}"


def test_the_probe_catches_a_third_party_import() -> None:
    # The check above would pass vacuously if the probe missed imports.
    assert "tomlkit" in imported_by("tomlkit")


UI_AND_HEAVY = {"textual", "gradio", "torch", "diffusers", "transformers", "rich", "runtime"}
CORE = [m for m in modules_in("launcher") if not m.startswith("launcher.tui")]


@pytest.mark.parametrize("module", CORE)
def test_launcher_core_has_no_ui_or_torch_imports(module: str) -> None:
    heavy = imported_by(module) & UI_AND_HEAVY
    assert not heavy, f"{module} imports {sorted(heavy)}"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_launcher_never_imports_runtime_even_lazily() -> None:
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "launcher").rglob("*.py") if "runtime" in _imports(p)]
    assert offenders == []


def test_stage0_never_imports_the_launcher() -> None:
    # Stage 0 is bootstrap's top level.  The environment builder (bootstrap/builder/) runs inside the
    # launcher and may use its core, but never the runtime.
    stage0 = [p for p in (REPO / "bootstrap").glob("*.py")]
    offenders = [str(p.relative_to(REPO)) for p in stage0 if {"launcher", "runtime"} & _imports(p)]
    assert offenders == []
    builder = [
        str(p.relative_to(REPO)) for p in (REPO / "bootstrap" / "builder").rglob("*.py") if "runtime" in _imports(p)
    ]
    assert builder == []


BUILDER = modules_in("bootstrap/builder")


@pytest.mark.parametrize("module", BUILDER)
def test_the_builder_has_no_ui_or_torch_imports(module: str) -> None:
    heavy = imported_by(module) & UI_AND_HEAVY
    assert not heavy, f"{module} imports {sorted(heavy)}"


def _launcher_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("launcher"))
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("launcher")
        ):
            found.add(node.module)
    return found


def test_the_runtime_uses_only_the_standard_library_part_of_the_launcher() -> None:
    # The runtime's environment does not have the launcher's dependencies: it may share the model library
    # (launcher.models, standard library only) and nothing else.
    used = {m for p in (REPO / "runtime").rglob("*.py") for m in _launcher_imports(p)}
    assert used and all(m.startswith("launcher.models") for m in used), sorted(used)
    extra = imported_by(*sorted(used)) - set(sys.stdlib_module_names) - {"bootstrap", "launcher"}
    assert not extra, f"{sorted(used)} pull in {sorted(extra)}"


def test_the_runtime_core_has_no_gradio() -> None:
    core = [p for p in (REPO / "runtime").rglob("*.py") if p.parent.name not in ("ui",) and p.name != "server.py"]
    offenders = [str(p.relative_to(REPO)) for p in core if "gradio" in _imports(p)]
    assert offenders == []
