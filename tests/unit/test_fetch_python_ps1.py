"""start.bat's PowerShell fetcher, checked without PowerShell.

``bootstrap/fetch-python.ps1`` runs on Windows PowerShell 5.1, which this
machine does not have, so it is read with tree-sitter's PowerShell grammar
instead: it must parse; every command it calls must be one of its own
functions (defined before the call) or a cmdlet that Windows PowerShell 5.1
ships; every variable it reads must be assigned somewhere in it or be one of
PowerShell's automatic variables; it must use no PowerShell 7 syntax; and the
TOML tables and keys it reads must exist in the data files it reads them
from.  That catches the typos and version slips a run on Windows would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

tree_sitter = pytest.importorskip("tree_sitter")
tree_sitter_powershell = pytest.importorskip("tree_sitter_powershell")

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bootstrap" / "fetch-python.ps1"

# Cmdlets the script may call: each ships with Windows PowerShell 5.1 (Windows 10 and 11), no module to install.
PS51_CMDLETS = {
    "add-content", "expand-archive", "foreach-object", "get-childitem", "get-content", "get-filehash", "get-item",
    "get-uiculture", "join-path", "move-item", "new-item", "new-object", "out-null", "remove-item",
    "select-object", "test-path", "where-object", "write-host",
}  # fmt: skip
AUTOMATIC = {"_", "args", "matches", "null", "true", "false", "lastexitcode", "erroractionpreference",
             "progresspreference", "psscriptroot", "pscommandpath", "host"}  # fmt: skip
PS7_ONLY_NODES = {"pipeline_chain_tail", "ternary_expression"}  # `a && b`, `a ? b : c`


def _nodes(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    yield node
    for child in node.children:
        yield from _nodes(child)


@cache
def _tree() -> tree_sitter.Tree:
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    return parser.parse(SCRIPT.read_bytes())


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8")


def _var(node: tree_sitter.Node) -> str:
    """``$Name`` / ``${Name}`` / ``$script:Name`` → ``name``; ``$env:X`` → ``env:x``."""
    name = _text(node).lstrip("$@").strip("{}").lower()
    return name.split(":", 1)[1] if name.startswith(("script:", "global:", "local:")) else name


def _functions() -> dict[str, int]:
    """Own function names (lower case) → where their definition starts."""
    found = {}
    for node in _nodes(_tree().root_node):
        if node.type == "function_statement":
            name = next(c for c in node.children if c.type == "function_name")
            found[_text(name).lower()] = node.start_byte
    return found


def test_it_parses() -> None:
    errors = [(n.start_point, _text(n)[:60]) for n in _nodes(_tree().root_node) if n.type == "ERROR" or n.is_missing]
    assert not errors, f"{SCRIPT.name} does not parse at (row, column): {errors}"


def test_every_command_is_its_own_function_or_a_powershell_51_cmdlet() -> None:
    functions = _functions()
    unknown, too_early = set(), set()
    for node in _nodes(_tree().root_node):
        if node.type != "command_name":
            continue
        name = _text(node).lower()
        if name in functions:
            if node.start_byte < functions[name]:
                too_early.add(name)
        elif name not in PS51_CMDLETS:
            unknown.add(name)
    assert not unknown, f"not a function of the script nor a Windows PowerShell 5.1 cmdlet: {sorted(unknown)}"
    assert not too_early, f"called above their definitions (a script runs top to bottom): {sorted(too_early)}"


def test_every_variable_read_is_assigned_somewhere() -> None:
    assigned = set(AUTOMATIC)
    for node in _nodes(_tree().root_node):
        if node.type in ("left_assignment_expression", "script_parameter"):
            assigned.update(_var(v) for v in _nodes(node) if v.type == "variable")
        elif node.type == "foreach_statement":
            assigned.add(_var(next(c for c in node.children if c.type == "variable")))
    read = {_var(n) for n in _nodes(_tree().root_node) if n.type == "variable"}
    unassigned = {v for v in read - assigned if not v.startswith("env:")}
    assert not unassigned, f"read but never assigned (a typo?): {sorted(unassigned)}"


def test_no_powershell_7_syntax() -> None:
    found = [(n.type, n.start_point) for n in _nodes(_tree().root_node) if n.type in PS7_ONLY_NODES]
    assert not found, f"PowerShell 7 only, Windows PowerShell 5.1 fails on it: {found}"


def test_saved_as_windows_needs_it() -> None:
    raw = SCRIPT.read_bytes()
    # PowerShell 5.1 reads a file without a BOM in the ANSI code page: the Chinese messages would be garbled.
    assert raw.startswith(b"\xef\xbb\xbf")
    for path in (SCRIPT, REPO / "start.bat"):
        data = path.read_bytes()
        assert data.count(b"\n") == data.count(b"\r\n"), f"{path.name} must have CRLF line endings"


def test_the_tables_and_keys_it_reads_exist_in_the_data() -> None:
    source = SCRIPT.read_text(encoding="utf-8-sig")
    tables = set(re.findall(r"Read-TomlTables \$\w+ '(\w+)'", source))
    assert tables == {"build", "python"}
    data = {"build": (REPO / "bootstrap" / "python-builds.toml").read_text(encoding="utf-8"),
            "python": (REPO / "mirrors.toml").read_text(encoding="utf-8")}  # fmt: skip
    builds = re.findall(r"\$build\['(\w+)'\]", source)
    mirrors = re.findall(r"\$(?:m|_)\['(\w+)'\]", source)
    assert builds and mirrors
    for table, keys in (("build", builds), ("python", mirrors)):
        entries = data[table].split(f"[[{table}]]")[1:]
        assert entries, f"no [[{table}]] entries"
        for key in set(keys) - {"status"}:  # status is optional: only unverified mirrors carry it
            assert all(re.search(rf"^{key}\s*=", e, re.M) for e in entries), f"[[{table}]] entries without {key}"
    embed = [e for e in data["python"].split("[[python]]")[1:] if re.search(r'^kind\s*=\s*"embed"', e, re.M)]
    assert embed and all("{version}" in e for e in embed)
    win = [e for e in data["build"].split("[[build]]")[1:] if 'target = "win-x64"' in e]
    assert len(win) == 1 and re.search(r"^size\s*=\s*[1-9]", win[0], re.M), "the win-x64 build needs its size"
    assert set(re.findall(r"Get-ConfigValue '(\w+)' '(\w+)'", source)) == {
        ("general", "language"),
        ("mirrors", "python"),
        ("network", "proxy"),
        ("network", "offline"),
    }
