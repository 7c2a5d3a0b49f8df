"""The pieces of a portable bundle: the embeddable Python's layout, relocation, requirements per target,
deterministic archives, and start.sh pointing a moved launcher environment at its own python/."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from bootstrap.launcher_env import embeddable_base, pip_argv
from bootstrap.layout import Bundle
from bootstrap.portable import (
    edit_pth,
    embedded_code_path,
    is_embeddable,
    make_embedded_env,
    move_scripts,
    newest_pip_link,
    pip_wheel,
    pth_lines,
)
from launcher.release import TARGETS, resolve_requirements, write_archive
from launcher.release_archive import FIXED_MTIME, MANIFEST, ReleaseFailed, read_manifest
from launcher.release_python import PackedPython, patch_run_path
from tests.support.hermetic import REPO
from tests.support.pypi_index import PackageIndex

ORIGINAL_PTH = "python311.zip\r\n.\r\n\r\n# Uncomment to run site.main() automatically\r\n#import site\r\n"


def fake_embeddable(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ("python.exe", "pythonw.exe", "python311.dll", "python3.dll", "vcruntime140.dll", "_ssl.pyd"):
        (folder / name).write_bytes(b"MZ" + name.encode())
    (folder / "python311.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (folder / "python311._pth").write_bytes(ORIGINAL_PTH.encode())
    return folder


def test_the_pth_gets_site_packages_the_bundle_root_and_site() -> None:
    assert pth_lines(ORIGINAL_PTH, ["Lib\\site-packages", ".."]) == [
        "python311.zip", ".", "Lib\\site-packages", "..", "import site",
    ]  # fmt: skip
    # Idempotent: editing twice changes nothing.
    once = pth_lines(ORIGINAL_PTH, ["Lib\\site-packages"])
    assert pth_lines("\n".join(once), ["Lib\\site-packages"]) == once


def test_edit_pth_keeps_the_line_endings(tmp_path: Path) -> None:
    pth = fake_embeddable(tmp_path / "python") / "python311._pth"
    edit_pth(pth, ["Lib\\site-packages", ".."])
    assert pth.read_bytes() == b"python311.zip\r\n.\r\nLib\\site-packages\r\n..\r\nimport site\r\n"


def test_the_launcher_environment_as_a_copy_of_the_embeddable_python(tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    python = fake_embeddable(root / "python")
    env = root / "env" / "launcher"
    code = embedded_code_path(env, root)
    assert code == "..\\..\\.."
    make_embedded_env(python, env, code)
    scripts = env / "Scripts"
    assert sorted(p.name for p in scripts.iterdir()) == sorted(p.name for p in python.iterdir())
    assert (scripts / "python311._pth").read_bytes() == (
        b"python311.zip\r\n.\r\n..\\Lib\\site-packages\r\n..\\..\\..\r\nimport site\r\n"
    )
    assert (env / "Lib" / "site-packages").is_dir()
    assert is_embeddable(scripts) and not (env / "pyvenv.cfg").exists()
    # Stage 0 builds it instead of a venv when the embeddable Python is the bundle's.
    assert embeddable_base(Bundle(root=root)) == python


def test_stage0_accepts_an_embedded_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bootstrap.stage0 as stage0

    env = tmp_path / "env" / "launcher"
    fake_embeddable(env / "Scripts")
    monkeypatch.setattr(stage0, "env_python", lambda e: e / "Scripts" / "python.exe")
    assert stage0._venv_home_ok(env)
    (env / "Scripts" / "python311._pth").unlink()
    assert not stage0._venv_home_ok(env)


def test_pip_into_a_folder_for_the_embeddable_python(tmp_path: Path) -> None:
    from bootstrap.index_choice import Index

    bundle = Bundle(root=tmp_path)
    argv = pip_argv(Path("/py"), Index("x", "https://m.example/simple", "x", "x"), bundle, "",
                    runner=["py.exe", "pip.whl/pip"], target=tmp_path / "site")  # fmt: skip
    assert argv[:3] == ["py.exe", "pip.whl/pip", "install"]
    assert argv[-5:] == ["--target", str(tmp_path / "site"), "-r", str(bundle.launcher_requirements), "pip"]
    assert "--isolated" in argv


def test_only_uv_survives_from_a_target_install(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "bin").mkdir(parents=True)
    for name in ("uv.exe", "uvx.exe", "hf", "tqdm.exe", "uv"):
        (site / "bin" / name).write_text(name)
    moved = move_scripts(site, tmp_path / "Scripts")
    assert moved == ["uv", "uv.exe", "uvx.exe"]
    assert not (site / "bin").exists()


def test_the_newest_pip_wheel_on_an_index_page() -> None:
    page = (
        '<a href="../../files/pip-9.0.1-py2.py3-none-any.whl#sha256=' + "a" * 64 + '">old</a>'
        '<a href="../../files/pip-23.2.1-py3-none-any.whl#sha256=' + "B" * 64 + '">x</a>'
        '<a href="https://cdn.example/pip-23.10-py3-none-any.whl">y</a>'
    )
    url, name, sha = newest_pip_link(page, "https://m.example/simple/pip/") or ("", "", "")
    assert (url, name, sha) == ("https://cdn.example/pip-23.10-py3-none-any.whl", "pip-23.10-py3-none-any.whl", "")
    url, name, sha = newest_pip_link(page.split('<a href="https')[0], "https://m.example/simple/pip/") or ("", "", "")
    assert url == "https://m.example/files/pip-23.2.1-py3-none-any.whl" and sha == "b" * 64


def test_a_pip_wheel_from_the_index_is_checked(tmp_path: Path, mirror_wheels: Path) -> None:
    with PackageIndex(root=mirror_wheels) as index:
        wheel = pip_wheel(index.simple_url(), False, tmp_path / "cache")
    original = next(mirror_wheels.glob("pip-*.whl"))
    assert wheel.name == original.name and wheel.read_bytes() == original.read_bytes()
    assert pip_wheel(str(mirror_wheels), True, tmp_path / "unused") == original
    # pip runs straight from its wheel: how the embeddable Python gets pip.
    out = subprocess.run([sys.executable, "-I", str(wheel / "pip"), "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("pip ")


def test_requirements_are_resolved_for_the_target_not_for_this_machine() -> None:
    lock = REPO / "requirements" / "launcher.txt"
    win = resolve_requirements(lock, TARGETS["win-x64"].environment("3.11.9"))
    linux = resolve_requirements(lock, TARGETS["linux-x64"].environment("3.11.9"))
    names = lambda pins: {p.split("==")[0].lower() for p in pins}  # noqa: E731
    assert "colorama" in names(win) and "colorama" not in names(linux)
    assert "tomli" not in names(win) | names(linux)  # only for Python < 3.11
    assert "httpx2-jsfetch" not in names(win) | names(linux)
    assert all("==" in p for p in win + linux)
    assert [p for p in linux if p.startswith("filelock")] == ["filelock==4.2.11"]


@pytest.mark.skipif(shutil.which("readelf") is None or not sys.platform.startswith("linux"), reason="needs readelf")
def test_run_paths_become_relative_to_origin(tmp_path: Path) -> None:
    prefix = Path(sys.base_prefix)
    exe = prefix / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    before = subprocess.run(["readelf", "-d", str(exe)], capture_output=True, text=True).stdout
    if str(prefix) not in before:
        pytest.skip("this interpreter has no run path into its prefix")
    copy = tmp_path / "new" / "bin" / exe.name
    copy.parent.mkdir(parents=True)
    shutil.copy2(exe, copy)
    assert patch_run_path(copy, prefix, tmp_path / "new")
    after = subprocess.run(["readelf", "-d", str(copy)], capture_output=True, text=True).stdout
    assert "[$ORIGIN/../lib]" in after and str(prefix) not in after
    assert not patch_run_path(copy, prefix, tmp_path / "new")  # nothing left to change
    assert not patch_run_path(REPO / "start.sh", prefix, tmp_path)  # not ELF: untouched


PACKED = PackedPython("local", "3.11.7", "/opt/py", "本机", "local")


def tree(root: Path) -> Path:
    """A small bundle-like tree with what must and must not ship."""
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "bin" / "alias").symlink_to("tool")
    (root / "models" / "Lora").mkdir(parents=True)
    (root / "readme 中文.txt").write_text("你好\n", encoding="utf-8")
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"x")
    (root / "pkg" / "m.py").write_text("x = 1\n")
    for scratch in ("cache", "logs", "outputs"):
        (root / scratch).mkdir()
        (root / scratch / "f").write_text("no")
    (root / "config.toml").write_text("[network]\nproxy = 'secret'\n")
    return root


@pytest.mark.parametrize("target", ["linux-x64", "win-x64"])
def test_archives_are_deterministic(tmp_path: Path, target: str) -> None:
    spec = TARGETS[target]
    outs = []
    for i, umask in enumerate((0o022, 0o077)):
        old = os.umask(umask)
        try:
            root = tree(tmp_path / f"src{i}" / "yijian-x")
            if target == "win-x64":
                (root / "bin" / "alias").unlink()
        finally:
            os.umask(old)
        os.utime(root / "pkg" / "m.py", (1_000_000 + i, 1_000_000 + i))
        out = tmp_path / f"out{i}"
        out.mkdir()
        outs.append(write_archive(root, "yijian-x", spec, PACKED, None, out))
    a, b = outs
    assert a.archive.read_bytes() == b.archive.read_bytes()
    assert a.manifest.read_bytes() == b.manifest.read_bytes()
    assert a.sha256 == hashlib.sha256(a.archive.read_bytes()).hexdigest()
    manifest = json.loads(a.manifest.read_text(encoding="utf-8"))
    assert read_manifest(a.archive) == manifest
    paths = [f["path"] for f in manifest["files"]]
    assert paths == sorted(paths) and "readme 中文.txt" in paths
    assert not any(p.startswith(("cache", "logs", "outputs", "config.toml")) or "__pycache__" in p for p in paths)
    entry = next(f for f in manifest["files"] if f["path"] == "pkg/m.py")
    assert entry == {"path": "pkg/m.py", "size": 6, "sha256": hashlib.sha256(b"x = 1\n").hexdigest()}
    assert next(f for f in manifest["files"] if f["path"] == "bin/tool")["executable"] is True
    if target == "linux-x64":
        assert {"path": "bin/alias", "link": "tool"} in manifest["files"]
        with tarfile.open(a.archive) as tf:
            members = tf.getmembers()
        assert all(m.mtime == FIXED_MTIME and m.uid == 0 and m.uname == "" for m in members)
        assert all(m.name == "yijian-x" or m.name.startswith("yijian-x/") for m in members)
        assert {m.name: m.mode for m in members}["yijian-x/bin/tool"] == 0o755
        assert "yijian-x/models/Lora" in {m.name for m in members if m.isdir()}
        assert f"yijian-x/{MANIFEST}" in {m.name for m in members}
    else:
        with zipfile.ZipFile(a.archive) as zf:
            infos = zf.infolist()
        assert all(i.date_time == (2024, 1, 1, 0, 0, 0) for i in infos)
        assert "yijian-x/models/Lora/" in {i.filename for i in infos}


def test_a_link_out_of_the_bundle_is_refused(tmp_path: Path) -> None:
    root = tree(tmp_path / "yijian-x")
    (root / "bin" / "escape").symlink_to("/usr/bin/env")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ReleaseFailed, match="points outside the bundle"):
        write_archive(root, "yijian-x", TARGETS["linux-x64"], PACKED, None, out)


# ---------------------------------------------------------------- start.sh: a moved launcher environment


def fake_bundle(where: Path, home: str) -> Path:
    """start.sh beside a python/ and an env/launcher whose python only says it ran."""
    root = where / "moved bundle"
    (root / "python" / "bin").mkdir(parents=True)
    (root / "env" / "launcher" / "bin").mkdir(parents=True)
    shutil.copy2(REPO / "start.sh", root / "start.sh")
    for exe in (root / "python" / "bin" / "python3", root / "env" / "launcher" / "bin" / "python"):
        exe.write_text("#!/bin/sh\necho ran\n")
        exe.chmod(0o755)
    (root / "env" / "launcher" / "pyvenv.cfg").write_text(
        f"home = {home}\ninclude-system-site-packages = false\nversion = 3.11.9\n", encoding="utf-8"
    )
    return root


def run_start(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(root / "start.sh")], capture_output=True, text=True, cwd=root,
                          env={"PATH": os.environ["PATH"], "HOME": str(root)})  # fmt: skip


def test_start_sh_points_a_moved_launcher_env_at_its_own_python(tmp_path: Path) -> None:
    root = fake_bundle(tmp_path, "/somewhere/else/yijian/python/bin")
    r = run_start(root)
    assert r.returncode == 0 and r.stdout.strip() == "ran", r.stderr
    cfg = (root / "env" / "launcher" / "pyvenv.cfg").read_text(encoding="utf-8")
    assert cfg == f"home = {root}/python/bin\ninclude-system-site-packages = false\nversion = 3.11.9\n"
    assert not (root / "env" / "launcher" / "pyvenv.cfg.new").exists()


@pytest.mark.parametrize("home", ["/gone/system/bin", "{root}/python/bin"])
def test_start_sh_leaves_other_homes_alone(tmp_path: Path, home: str) -> None:
    root = tmp_path / "moved bundle"
    root = fake_bundle(tmp_path, home.format(root=root))
    before = (root / "env" / "launcher" / "pyvenv.cfg").read_bytes()
    assert run_start(root).returncode == 0
    assert (root / "env" / "launcher" / "pyvenv.cfg").read_bytes() == before


def test_the_release_command_is_registered() -> None:
    from launcher.cli.parser import build_parser

    args = build_parser("en").parse_args(["release", "--target", "win-x64", "--out", "x"])
    assert args.target == "win-x64" and args.out == Path("x") and args.with_pack is None
    text = io.StringIO()
    build_parser("zh").print_help(text)
    assert "release" in text.getvalue()


def test_the_embeddable_python_is_never_the_base_of_a_generation_environment(tmp_path: Path) -> None:
    from bootstrap.builder.pythons import _bundled

    bundle = Bundle(root=tmp_path)
    fake_embeddable(bundle.python_dir)
    uv_python = bundle.python_dir / "uv" / "cpython-3.11.9-windows-x86_64-none"
    uv_python.mkdir(parents=True)
    (uv_python / "python.exe").write_bytes(b"MZ")
    (uv_python / "bin").mkdir()
    (uv_python / "bin" / "python3").write_bytes(b"#!")
    found = _bundled(bundle)
    assert bundle.python_dir / "python.exe" not in found and bundle.python_dir / "bin" / "python3" not in found
    assert len(found) == 1 and "uv" in found[0].parts  # what `uv python install` put there is still used


def test_with_pack_for_linux_from_another_system_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from launcher import release

    monkeypatch.setattr(release, "host_target", lambda: "win-x64")  # a Linux venv cannot be made from Windows
    bundle = Bundle(root=tmp_path / "b", code=REPO)
    with pytest.raises(ReleaseFailed, match="for linux-x64 must be built on the target's own system"):
        release.build_release(bundle, "linux-x64", out=tmp_path / "out", with_pack="cpu")
    assert not (tmp_path / "b").exists() and not (tmp_path / "out").exists()


def test_a_venv_made_from_the_bundles_python_links_it_relatively(tmp_path: Path) -> None:
    from bootstrap.portable import relink_venv

    root = tmp_path / "bundle"
    (root / "python" / "bin").mkdir(parents=True)
    (root / "python" / "bin" / "python3.11").write_text("")
    bin_dir = root / "env" / "launcher" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(root / "python" / "bin" / "python3.11")
    (bin_dir / "python3").symlink_to("python")
    (bin_dir / "python3.11").symlink_to("/usr/bin/python3.11")  # outside the bundle: left alone
    assert relink_venv(root / "env" / "launcher", root) == ["python"]
    assert os.readlink(bin_dir / "python") == "../../../python/bin/python3.11"
    assert os.readlink(bin_dir / "python3.11") == "/usr/bin/python3.11"
    moved = tmp_path / "moved"
    root.rename(moved)
    assert (moved / "env" / "launcher" / "bin" / "python3").resolve() == (moved / "python" / "bin" / "python3.11")


def test_an_unknown_pack_is_refused_before_any_work(tmp_path: Path) -> None:
    from bootstrap.python_builds import host_target
    from launcher.errors import UnknownPack
    from launcher.release import build_release

    if host_target() != "linux-x64":
        pytest.skip("--with-pack is checked further on another system")
    with pytest.raises(UnknownPack):
        build_release(Bundle(root=tmp_path / "b", code=REPO), "linux-x64", out=tmp_path / "out", with_pack="cu999")
    assert not (tmp_path / "b").exists()
