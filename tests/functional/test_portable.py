"""Portable bundles end to end: a first start with no Python at all, and release archives.

* ``./start.sh`` with no ``python3`` on PATH fetches a (fake, test-made) Python through local python
  mirrors, then builds env/launcher through a local PyPI stand-in and starts.
* ``yijian release --target linux-x64`` builds an archive here.  The python-build-standalone mirrors
  are unreachable (as on this machine), so it packs this machine's CPython, made relocatable, and
  says so; the archive is unpacked into a new folder with a space and Chinese characters in its path
  and ``./start.sh doctor --json`` runs there with no Python on PATH.
* ``--target win-x64`` cannot run here: its contents are checked (python.exe, the edited ._pth, the
  launcher environment from win_amd64 wheels, start.bat), with a fake embeddable zip from a local mirror.

The wheels come from folders cached in .venv/test-cache (downloaded from PyPI once).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bootstrap.layout import Bundle
from tests.support.bundle_copy import (
    copy_bundle,
    isolate_mirrors,
    pypi_download,
    pypi_ids,
    run_cli,
    run_start,
    set_mirror_urls,
)
from tests.support.fileserver import FileServer, refused_url
from tests.support.hermetic import REPO
from tests.support.hf_endpoint import HfEndpoint
from tests.support.httpbase import free_port
from tests.support.packs import TEST_PACK
from tests.support.plugin_index import Wheelhouse
from tests.support.pypi_index import PackageIndex
from tests.unit.test_python_fetch import URL_PATH, fake_build

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the archives are built and run on Linux here"),
]

TOOLS = ("bash", "sh", "env", "dirname", "uname", "awk", "sed", "tar", "gzip", "wc", "mkdir", "rm", "mv", "cat",
         "sha256sum", "curl")  # fmt: skip


def tool_dir(where: Path) -> Path:
    """A PATH with ordinary tools and no Python, as on a fresh machine (and as the acceptance check builds it)."""
    bin_dir = where / "bin"
    bin_dir.mkdir(parents=True)
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    assert not any((bin_dir / p).exists() for p in ("python3", "python"))
    return bin_dir


def bare_env(home: Path, path: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {"HOME": str(home), "LANG": "C.UTF-8", "PATH": str(path), "YIJIAN_LANG": "en"}


def builds_file(bundle: Path, target: str, kind: str, file: str, data: bytes, release: str = "") -> None:
    (bundle / "bootstrap" / "python-builds.toml").write_text(
        f'schema = 1\n\n[[build]]\ntarget = "{target}"\nkind = "{kind}"\nversion = "3.11.9"\nrelease = "{release}"\n'
        f'file = "{file}"\nsize = {len(data)}\nsha256 = "{hashlib.sha256(data).hexdigest()}"\n',
        encoding="utf-8",
    )


# ------------------------------------------------------------------------------- no Python anywhere


def test_start_sh_with_no_python_fetches_one_through_the_mirrors_and_starts(
    tmp_path: Path, file_server: FileServer, launcher_index: PackageIndex
) -> None:
    data = fake_build()
    file_server.add(f"/gh{URL_PATH}", data)
    bundle = copy_bundle(tmp_path / "fresh machine" / "yijian")
    pbs = re.search(r'file = "([^"]+)"', (bundle / "bootstrap" / "python-builds.toml").read_text()).group(1)  # type: ignore[union-attr]
    builds_file(bundle, "linux-x64", "pbs", pbs, data, release="20240814")
    set_mirror_urls(
        bundle / "mirrors.toml", "python", {"npmmirror": refused_url("/pbs"), "github": file_server.url + "/gh"}
    )
    dead = f"http://127.0.0.1:{free_port()}"
    urls = {i: f"{dead}/{i}/simple" for i in pypi_ids(bundle / "mirrors.toml")}
    urls["pypi"] = launcher_index.simple_url()
    set_mirror_urls(bundle / "mirrors.toml", "pypi", urls)
    env = bare_env(tmp_path / "home", tool_dir(tmp_path))
    r = run_start(bundle, "--help", env=env)
    assert r.returncode == 0, r.stderr
    assert "usage: yijian" in r.stdout
    assert "No Python 3.10+ found: downloading Python 3.11.9 (linux-x64)" in r.stderr
    assert "npmmirror failed (connection refused)" in r.stderr
    assert "Python 3.11.9 is ready" in r.stderr
    assert (bundle / "python" / "bin" / "python3").exists()
    assert (bundle / "env" / "launcher" / "yijian-env.json").exists()
    assert not any((tmp_path / "home").iterdir())


# ------------------------------------------------------------------------------------- linux-x64


def test_a_linux_archive_runs_from_a_new_folder_with_no_system_python(tmp_path: Path, launcher_wheel_dir: Path) -> None:
    import importlib.metadata

    pip_wheels = [w.name.split("-")[1] for w in launcher_wheel_dir.glob("pip-*.whl")]
    if importlib.metadata.version("pip") not in pip_wheels:
        pytest.skip("the dev environment's pip is not the one ensurepip ships")
    bundle = copy_bundle(tmp_path / "src")
    shutil.copy2(REPO / "README.md", bundle / "README.md")
    isolate_mirrors(bundle)  # GitHub and npmmirror are unreachable here: the release must cope
    (bundle / "config.toml").write_text(f'[mirrors]\npypi = "{launcher_wheel_dir}"\n', encoding="utf-8")
    out = tmp_path / "out"
    r = run_cli(bundle, "--lang", "en", "release", "--target", "linux-x64", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    archive = Path(result["archive"])
    assert archive.name == "yijian-0.1.0-linux-x64.tar.gz" and archive.parent == out
    # It says which interpreter it packed, and why.
    assert "The pinned Python could not be fetched" in r.stderr and "connection refused" in r.stderr
    assert result["python"]["source"] == "local"
    assert f"this machine's CPython {result['python']['version']}" in r.stderr
    assert (out / f"{archive.name}.sha256").read_text().split()[0] == hashlib.sha256(archive.read_bytes()).hexdigest()

    where = tmp_path / "new home" / "解压"
    where.mkdir(parents=True)
    subprocess.run(["tar", "-xf", str(archive), "-C", str(where)], check=True)
    root = where / "yijian-0.1.0-linux-x64"
    manifest = json.loads((root / "yijian-manifest.json").read_text(encoding="utf-8"))
    assert manifest == json.loads((out / "yijian-0.1.0-linux-x64.manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        path = root / entry["path"]
        if "link" in entry:
            assert os.readlink(path) == entry["link"] and path.exists(), entry
        else:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], entry
    shipped = {e["path"].split("/")[0] for e in manifest["files"]}
    assert shipped == {"start.sh", "start.bat", "README.md", "mirrors.toml", "bootstrap", "launcher", "runtime",
                       "requirements", "packs", "models", "python", "env"}  # fmt: skip
    assert sorted(p.name for p in (root / "models").iterdir() if p.is_dir()) == [
        "ESRGAN", "Lora", "Stable-diffusion", "VAE", "configs", "embeddings",
    ]  # fmt: skip
    assert (root / "models" / "configs" / "sd15" / "unet" / "config.json").is_file()  # configs need no network

    env = bare_env(tmp_path / "home", tool_dir(tmp_path))
    doc = subprocess.run([str(root / "start.sh"), "doctor", "--json"], capture_output=True, text=True, cwd=root,
                         env=env, timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip
    assert doc.returncode <= 2, doc.stderr
    assert isinstance(json.loads(doc.stdout)["findings"], list)
    assert "preparing the launcher environment" not in doc.stderr  # it was preinstalled, not rebuilt
    cfg = (root / "env" / "launcher" / "pyvenv.cfg").read_text(encoding="utf-8")
    assert f"home = {root}/python/bin" in cfg
    # The environment uses the bundle's files only: nothing from this machine's Python.
    probe = subprocess.run(
        [str(root / "env" / "launcher" / "bin" / "python"), "-c",
         "import json, sys, textual, uv; print(json.dumps([sys.prefix, sys.base_prefix, *sys.path, uv.find_uv_bin()]))"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    for path in json.loads(probe.stdout):
        assert not path or Path(path).resolve().is_relative_to(root.resolve()), path
    assert not any((tmp_path / "home").iterdir())


def test_with_pack_the_generation_environment_travels_too(
    tmp_path: Path, launcher_wheel_dir: Path, wheelhouse: Wheelhouse
) -> None:
    """``--with-pack``: env/runtime built inside the archive (the harness's fake CPU torch), working after unpacking."""
    import importlib.metadata

    if importlib.metadata.version("pip") not in [w.name.split("-")[1] for w in launcher_wheel_dir.glob("pip-*.whl")]:
        pytest.skip("the dev environment's pip is not the one ensurepip ships")
    bundle = copy_bundle(tmp_path / "src")
    isolate_mirrors(bundle)
    (bundle / "packs" / "test-cpu.toml").write_text(
        TEST_PACK.format(py=f"{sys.version_info[0]}.{sys.version_info[1]}"), encoding="utf-8"
    )
    (bundle / "packs" / "test-runtime.txt").write_text("tinypkg==1.0\nneeds-torch==1.0\n", encoding="utf-8")
    pypi = tmp_path / "pypi"  # one local "mirror": the launcher's wheels and the fake runtime's
    shutil.copytree(launcher_wheel_dir, pypi)
    for wheel in wheelhouse.pypi.glob("*.whl"):
        shutil.copy2(wheel, pypi)
    (bundle / "config.toml").write_text(f'[mirrors]\npypi = "{pypi}"\ntorch = "{wheelhouse.variants["cpu"]}"\n',
                                        encoding="utf-8")  # fmt: skip
    out = tmp_path / "out"
    r = run_cli(bundle, "--lang", "en", "release", "--target", "linux-x64", "--with-pack", "test-cpu", "--out",
                str(out), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Architecture config folders included: sd15, sd2, sd2-v, sdxl" in r.stderr  # no network needed for them
    archive = Path(json.loads(r.stdout)["archive"])
    assert archive.name == "yijian-0.1.0-linux-x64-test-cpu.tar.gz"
    where = tmp_path / "离线 电脑"
    where.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(where)], check=True)
    root = where / archive.name.removesuffix(".tar.gz")
    assert not (root / "config.toml").exists()  # the exporter's, never shipped; of its cache only the configs
    assert sorted(p.name for p in (root / "cache").iterdir()) == ["configs"]
    env = bare_env(tmp_path / "home", tool_dir(tmp_path))
    doc = subprocess.run([str(root / "start.sh"), "doctor", "--json"], capture_output=True, text=True, cwd=root,
                         env=env, timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip
    assert doc.returncode <= 2, doc.stderr
    report = json.loads(doc.stdout)
    assert report["environment"]["state"] == "ok", report["environment"]
    assert report["environment"]["facts"]["torch"]["version"] == "2.7.1+cpu"
    assert "ENV_MISSING" not in {f["code"] for f in report["findings"]}
    assert f"home = {root}/python/bin" in (root / "env" / "runtime" / "pyvenv.cfg").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------- win-x64

EMBED_FILE = "python-3.11.9-embed-amd64.zip"
ORIGINAL_PTH = b"python311.zip\r\n.\r\n\r\n# Uncomment to run site.main() automatically\r\n#import site\r\n"


def fake_embeddable_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("python.exe", "pythonw.exe", "python311.dll", "python3.dll", "vcruntime140.dll", "_ssl.pyd"):
            zf.writestr(name, b"MZ fake " + name.encode())
        zf.writestr("python311.zip", b"PK\x05\x06" + b"\0" * 18)
        zf.writestr("python311._pth", ORIGINAL_PTH)
    return buf.getvalue()


def windows_wheels() -> Path:
    """Every launcher wheel for win_amd64 / CPython 3.11 (plus pip), downloaded from PyPI once."""
    import importlib.metadata

    from launcher.release import TARGETS, _tag_args, resolve_requirements

    lock = REPO / "requirements" / "launcher.txt"
    pins = resolve_requirements(lock, TARGETS["win-x64"].environment("3.11.9"))
    pins.append(f"pip=={importlib.metadata.version('pip')}")
    key = hashlib.sha256("\n".join(pins).encode()).hexdigest()[:12]
    return pypi_download(f"launcher-wheels-win_amd64-{key}", [*_tag_args(TARGETS["win-x64"], "3.11.9"), *pins])


def windows_bundle(where: Path, file_server: FileServer) -> Path:
    """A bundle whose win-x64 Python is a fake embeddable zip, pinned, on a local mirror after a refusing one."""
    data = fake_embeddable_zip()
    file_server.add(f"/huawei/3.11.9/{EMBED_FILE}", data)
    bundle = copy_bundle(where)
    isolate_mirrors(bundle)
    builds_file(bundle, "win-x64", "embed", EMBED_FILE, data)
    set_mirror_urls(bundle / "mirrors.toml", "python", {
        "npmmirror-embed": refused_url("/python/{version}/python-{version}-embed-amd64.zip"),
        "huawei-embed": file_server.url + "/huawei/{version}/python-{version}-embed-amd64.zip",
    })  # fmt: skip
    return bundle


def test_a_windows_archive_has_the_embeddable_python_and_the_launcher_env(
    tmp_path: Path, file_server: FileServer
) -> None:
    bundle = windows_bundle(tmp_path / "src", file_server)
    (bundle / "config.toml").write_text(f'[mirrors]\npypi = "{windows_wheels()}"\n', encoding="utf-8")
    out = tmp_path / "out"
    r = run_cli(bundle, "--lang", "en", "release", "--target", "win-x64", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["python"]["source"] == "pinned" and result["python"]["origin"] == EMBED_FILE
    assert "failed (connection refused); trying Huawei Cloud" in r.stderr
    archive = out / "yijian-0.1.0-win-x64.zip"
    assert Path(result["archive"]) == archive

    top = "yijian-0.1.0-win-x64/"
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        read = lambda name: zf.read(top + name)  # noqa: E731
        manifest = json.loads(read("yijian-manifest.json"))
        # python\: the embeddable Python, its ._pth edited for site-packages, the bundle root and pip.
        assert read("python/python.exe") == b"MZ fake python.exe"
        assert read("python/python311._pth") == b"python311.zip\r\n.\r\nLib\\site-packages\r\n..\r\nimport site\r\n"
        assert any(n.startswith(top + "python/Lib/site-packages/pip/") for n in names)
        # env\launcher\: a copy of it beside its own site-packages, named by relative paths only.
        assert read("env/launcher/Scripts/python.exe") == b"MZ fake python.exe"
        assert read("env/launcher/Scripts/python311._pth") == (
            b"python311.zip\r\n.\r\n..\\Lib\\site-packages\r\n..\\..\\..\r\nimport site\r\n"
        )
        assert top + "env/launcher/Scripts/uv.exe" in names
        site = top + "env/launcher/Lib/site-packages/"
        for package in ("textual", "requests", "huggingface_hub", "tomlkit", "uv", "colorama", "pip"):
            assert f"{site}{package}/__init__.py" in names, package
        wheel_tags = [zf.read(n).decode() for n in names if n.startswith(site) and n.endswith(".dist-info/WHEEL")]
        assert any("Tag: cp311-cp311-win_amd64" in t for t in wheel_tags)
        assert any(n.endswith(".pyd") for n in names if n.startswith(site))
        assert not any(n.endswith(".so") or "/__pycache__/" in n for n in names)
        stamp = json.loads(read("env/launcher/yijian-env.json"))
        lock = (bundle / "requirements" / "launcher.txt").read_bytes()
        assert stamp["requirements_sha256"] == hashlib.sha256(lock).hexdigest()
        assert read("start.bat").count(b"\r\n") > 10
        assert top + "bootstrap/fetch-python.ps1" in names and top + "models/Lora/" in names
        assert {i.filename for i in zf.infolist() if i.external_attr >> 28 == 0o12} == set()  # no symlinks
    by_path = {f["path"]: f for f in manifest["files"]}
    assert by_path["python/python.exe"]["sha256"] == hashlib.sha256(b"MZ fake python.exe").hexdigest()
    assert len(by_path) == len([n for n in names if not n.endswith("/")]) - 1  # every file but the manifest


def test_a_windows_archive_with_pack_is_cross_installed_for_windows(
    tmp_path: Path, file_server: FileServer, wheelhouse: Wheelhouse, hf_endpoint: HfEndpoint
) -> None:
    """``--target win-x64 --with-pack`` on Linux: env\\runtime from win_amd64 wheels, markers for Windows, and
    the architecture config folders, so that an offline machine loads single-file models."""
    from launcher.models.configs import architectures_path, load_architectures
    from tests.support.wheels import build_wheel

    specs = load_architectures(architectures_path(Bundle(REPO)))

    bundle = windows_bundle(tmp_path / "src", file_server)
    (bundle / "packs" / "test-cpu.toml").write_text(TEST_PACK.format(py="3.11"), encoding="utf-8")
    (bundle / "packs" / "test-runtime.txt").write_text("tinypkg==1.0\nneeds-torch==1.0\nwinaware==1.0\n",
                                                       encoding="utf-8")  # fmt: skip
    pypi = tmp_path / "pypi"  # the launcher's win_amd64 wheels and the fake runtime's
    shutil.copytree(windows_wheels(), pypi)
    for wheel in wheelhouse.pypi.glob("*.whl"):
        shutil.copy2(wheel, pypi)
    build_wheel(pypi, "winaware", "1.0", requires=['winonly; sys_platform == "win32"', 'linuxonly; sys_platform == "linux"'],
                files={"winaware/__init__.py": ""})  # fmt: skip
    for name in ("winonly", "linuxonly"):
        build_wheel(pypi, name, "1.0", files={f"{name}/__init__.py": ""})
    torch = tmp_path / "torch"  # the same torch for both systems, told apart by what it says
    for tag in ("cp311-cp311-win_amd64", "cp311-cp311-linux_x86_64"):
        build_wheel(torch, "torch", "2.7.1+cpu", files={"torch/__init__.py": f"BUILT_FOR = {tag!r}\n"}, tag=tag)
    (bundle / "config.toml").write_text(f'[mirrors]\npypi = "{pypi}"\ntorch = "{torch}"\nhuggingface = "{hf_endpoint.url}"\n',
                                        encoding="utf-8")  # fmt: skip
    out = tmp_path / "out"
    r = run_cli(bundle, "--lang", "en", "release", "--target", "win-x64", "--with-pack", "test-cpu", "--out", str(out),
                "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Installing torch==2.7.1+cpu for win-x64 (x86_64-pc-windows-msvc wheels)" in r.stderr
    archive = Path(json.loads(r.stdout)["archive"])
    assert archive.name == "yijian-0.1.0-win-x64-test-cpu.zip"

    top = archive.name.removesuffix(".zip") + "/"
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        read = lambda name: zf.read(top + name)  # noqa: E731
        # env\runtime\: the embeddable Python's copy, its own site-packages, relative paths only (as env\launcher).
        assert read("env/runtime/Scripts/python.exe") == b"MZ fake python.exe"
        assert read("env/runtime/Scripts/python311._pth") == (
            b"python311.zip\r\n.\r\n..\\Lib\\site-packages\r\n..\\..\\..\r\nimport site\r\n"
        )
        site = "env/runtime/Lib/site-packages/"
        assert read(site + "torch/__init__.py") == b"BUILT_FOR = 'cp311-cp311-win_amd64'\n"
        installed = {n[len(top + site) :].split("/")[0] for n in names if n.startswith(top + site)}
        assert {"tinypkg", "needs_torch", "winaware", "winonly"} <= installed
        assert "linuxonly" not in installed and "bin" not in installed  # Windows markers; no Linux scripts
        stamp = json.loads(read("env/runtime/yijian-env.json"))
        assert stamp["pack"] == "test-cpu" and stamp["pins"] == ["torch==2.7.1+cpu"]
        assert "not run there yet" in stamp["cross_installed"]
        # The architecture config folders, complete (their marker is written last); nothing else of the cache.
        for arch, spec in specs.items():
            assert top + f"cache/configs/{arch}/.complete" in names, arch
            assert {top + f"cache/configs/{arch}/{f}" for f in spec.files} <= names, arch
            assert {top + f"models/configs/{arch}/{f}" for f in spec.files} <= names, arch  # the data they come from
        assert {n.split("/")[2] for n in names if n.startswith(top + "cache/") and n.count("/") > 2} == {"configs"}
        texts = [zf.read(n) for n in names if n.startswith(top + "env/runtime/") and not n.endswith("/")]
        assert not any(str(tmp_path).encode() in t for t in texts)  # nothing names the machine it was built on
    from bootstrap.builder.build import requirements_digest

    assert stamp["requirements_sha256"] == requirements_digest(stamp["pins"], ["tinypkg==1.0", "needs-torch==1.0",
                                                                              "winaware==1.0"])  # fmt: skip
