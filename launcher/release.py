"""Portable archives: ``yijian release --target win-x64|linux-x64 [--with-pack ID] [--out DIR]``.

An archive is a whole bundle that runs wherever it is unpacked, offline:
the start scripts, the code and data (mirrors.toml, packs/), the empty
models/ layout, the README, ``python/`` for the target, and the launcher's
environment already installed from wheels built for the target's platform.

How the environments keep working when the folder moves (nothing in them
may name the folder they were built in):

* **linux-x64**: ``env/launcher`` is a venv whose ``bin/python*`` are
  *relative* symlinks into ``python/bin``; its packages come from
  ``pip install --target`` of the target's wheels (``--no-compile``: no
  bytecode naming the build folder).  The one absolute path a venv must have,
  ``home`` in pyvenv.cfg, is rewritten by ``start.sh`` when it no longer
  exists and the bundle has its own ``python/`` (it does so on every start,
  with shell builtins, so moving the folder again is fine too).
* **win-x64**: the embeddable Python cannot make venvs, so ``env\\launcher``
  is a copy of it beside its own ``Lib\\site-packages`` whose ``._pth``
  names everything by relative paths (:mod:`bootstrap.portable`, the same
  layout stage 0 builds on Windows).
* ``--with-pack``: ``env/runtime`` is built by the environment builder from
  the bundle's own ``python/`` (``uv venv --relocatable``, relative links,
  ``python_rel`` in its stamp), so it heals the same way.  For win-x64 built
  on another system it is cross-installed in ``env\\launcher``'s layout
  (:mod:`launcher.release_pack`).

Archives are deterministic: entries sorted, fixed times, owners and modes,
no bytecode, and a manifest of every file with its sha256 (inside the
archive and beside it), so the same inputs give the same manifest.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootstrap import proc
from bootstrap.credentials import installer_credentials
from bootstrap.errors import YijianError
from bootstrap.i18n import pick
from bootstrap.launcher_env import proxy_environ
from bootstrap.layout import MODEL_FOLDERS, Bundle
from bootstrap.portable import make_embedded_env, move_scripts
from bootstrap.python_builds import PythonBuild, host_target, load_builds
from launcher._version import __version__
from launcher.release_archive import (
    MANIFEST,
    ReleaseFailed,
    file_sha256,
    shipped_entries,
    write_tar,
    write_zip,
)
from launcher.release_pack import UV_PLATFORMS, cross_install_pack
from launcher.release_python import (
    PackedPython,
    check_relocated,
    copy_local,
    fetch_pinned,
    local_prefix,
    mirror_sources,
    unpack_pinned,
)

SHIPPED = ("start.sh", "start.bat", "README.md", "mirrors.toml", "bootstrap", "launcher", "runtime", "requirements",
           "packs")  # fmt: skip
MANYLINUX = tuple(f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)) + (
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64",
)  # fmt: skip


@dataclass(frozen=True)
class Target:
    name: str
    os: str  # linux | windows
    archive: str  # tar.gz | zip
    platforms: tuple[str, ...]
    markers: dict[str, str]

    def environment(self, version: str) -> dict[str, str]:
        """PEP 508 marker values for this target and Python ``version`` (3.11.9)."""
        return {**self.markers, "python_version": ".".join(version.split(".")[:2]), "python_full_version": version,
                "implementation_version": version, "implementation_name": "cpython",
                "platform_python_implementation": "CPython"}  # fmt: skip


TARGETS = {
    "linux-x64": Target("linux-x64", "linux", "tar.gz", MANYLINUX,
                        {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                         "os_name": "posix", "platform_release": "", "platform_version": ""}),
    "win-x64": Target("win-x64", "windows", "zip", ("win_amd64",),
                      {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64",
                       "os_name": "nt", "platform_release": "", "platform_version": ""}),
}  # fmt: skip


@dataclass
class Release:
    """What :func:`build_release` made."""

    archive: Path
    manifest: Path
    target: str
    pack: str | None
    python: PackedPython
    files: int
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"archive": str(self.archive), "manifest": str(self.manifest), "target": self.target,
                "pack": self.pack, "python": self.python.to_dict(), "files": self.files, "size": self.size,
                "sha256": self.sha256, "version": __version__}  # fmt: skip


def archive_name(target: str, pack: str | None = None) -> str:
    return f"yijian-{__version__}-{target}" + (f"-{pack}" if pack else "")


def build_release(bundle: Bundle, target: str, *, out: Path, with_pack: str | None = None, python: str | None = None,
                  lang: str = "en", say: Callable[[str], None] = lambda _: None) -> Release:  # fmt: skip
    """Build the archive for ``target`` into ``out``; see the module doc."""
    spec = TARGETS[target]
    if with_pack and target != host_target() and target not in UV_PLATFORMS:
        raise ReleaseFailed(
            reason_zh=f"{target} 的 --with-pack 需要在目标系统上生成（这台电脑是 {host_target() or '未知系统'}）",
            reason_en=f"--with-pack for {target} must be built on the target's own system (this is "
            f"{host_target() or 'unknown'})",
            fix_zh="去掉 --with-pack（目标电脑首次运行 setup 时再联网安装），或在目标系统上运行 release。",
            fix_en="Leave out --with-pack (the target machine installs the pack at its first setup), or run "
            "release on the target's system.",
        )
    if with_pack:
        from launcher.packs.catalog import load_packs

        load_packs(bundle.packs_dir).require(with_pack)  # an unknown id fails now, not after the downloads
    build = load_builds()[target]
    name = archive_name(target, with_pack)
    work = bundle.cache_dir / "release" / f"build {target}"  # a space on purpose: the packed Python must cope
    try:
        return _build(bundle, spec, build, name, work, out=out, with_pack=with_pack, python=python, lang=lang,
                      say=say)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build(bundle: Bundle, spec: Target, build: PythonBuild, name: str, work: Path, *, out: Path,
           with_pack: str | None, python: str | None, lang: str, say: Callable[[str], None]) -> Release:  # fmt: skip
    target = spec.name
    root = work / name
    shutil.rmtree(work, ignore_errors=True)
    root.mkdir(parents=True)
    say(pick(lang, f"正在生成 {name} …", f"Building {name} ..."))
    copy_code(bundle, root)
    packed = _python_for(bundle, build, spec, root / "python", python_hint=python, lang=lang, say=say)
    say(pick(lang, f"Python：{packed.note_zh}", f"Python: {packed.note_en}"))
    wheels = bundle.cache_dir / "release" / f"wheels-{target}-cp{''.join(packed.version.split('.')[:2])}"
    pins = resolve_requirements(bundle.launcher_requirements, spec.environment(packed.version))
    pins.append(f"pip=={importlib.metadata.version('pip')}")
    download_wheels(bundle, pins, spec, packed.version, wheels, lang=lang, say=say)
    say(pick(lang, "安装启动器环境 env/launcher（目标平台的 wheel）…",
             "Installing the launcher environment env/launcher from the target's wheels ..."))  # fmt: skip
    install_launcher_env(bundle, root, spec, packed, pins, wheels)
    if with_pack and spec.name != host_target():
        cross_install_pack(bundle, root, spec.name, spec.os, packed.version, with_pack, lang=lang, say=say)
    elif with_pack:
        build_pack_env(bundle, root, with_pack, lang=lang, say=say)
    if with_pack:
        ship_configs(bundle, root, lang=lang, say=say)
    out.mkdir(parents=True, exist_ok=True)
    result = write_archive(root, name, spec, packed, with_pack, out)
    say(pick(lang, f"已生成 {result.archive}（{result.size / 2**20:.0f} MiB，{result.files} 个文件）",
             f"Wrote {result.archive} ({result.size / 2**20:.0f} MiB, {result.files} files)"))  # fmt: skip
    return result


def copy_code(bundle: Bundle, root: Path) -> None:
    """The start scripts, code and shipped data, and the empty models/ layout."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for item in SHIPPED:
        src = bundle.code / item
        if src.is_dir():
            shutil.copytree(src, root / item, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, root / item)
    for folder in MODEL_FOLDERS:
        (root / "models" / folder).mkdir(parents=True)
    for data in sorted((bundle.code / "models").glob("*.toml")):
        shutil.copy2(data, root / "models" / data.name)
    shutil.copytree(bundle.code / "models" / "configs", root / "models" / "configs", ignore=ignore)


def _python_for(bundle: Bundle, build: PythonBuild, spec: Target, dest: Path, *, python_hint: str | None,
                lang: str, say: Callable[[str], None]) -> PackedPython:  # fmt: skip
    """The pinned build through the mirrors; failing that, for this machine's target, a relocatable local one."""
    from launcher import config

    reason_en = "offline mode is on ([network] offline = true)"
    if not config.load(bundle).get_bool("network.offline"):
        try:
            archive = fetch_pinned(bundle, build, lang=lang, say=say)
        except (YijianError, OSError) as exc:
            reason_en = exc.message("en") if isinstance(exc, YijianError) else str(exc)
        else:
            unpack_pinned(archive, build, dest)
            return PackedPython("pinned", build.version, build.file,
                                f"{build.file}（已校验 sha256）", f"{build.file} (sha256 verified)")  # fmt: skip
    tried = "; ".join(f"{mid} ({url})" for mid, _, url in mirror_sources(bundle, build)) or "-"
    wanted = ".".join(build.version.split(".")[:2])
    fix_zh = (f"在能上网的电脑上下载 {build.file}（sha256 {build.sha256}）放到 {bundle.cache_dir / 'python'} 下再运行，"
              f"或在 config.toml 的 [mirrors] python 中换一个镜像")  # fmt: skip
    fix_en = (f"Download {build.file} (sha256 {build.sha256}) on a machine with internet access into "
              f"{bundle.cache_dir / 'python'} and run this again, or choose another mirror as [mirrors] python "
              "in config.toml")  # fmt: skip
    if spec.name != host_target():
        raise ReleaseFailed(reason_zh=f"无法通过镜像下载 {build.file}（{reason_en}；已尝试：{tried}）",
                            reason_en=f"{build.file} could not be fetched ({reason_en}; tried: {tried})",
                            fix_zh=fix_zh + "。", fix_en=fix_en + ".")  # fmt: skip
    say(pick(lang, f"无法下载固定版本的 Python（{reason_en}），改为打包本机的 Python {wanted}。",
             f"The pinned Python could not be fetched ({reason_en}); packing this machine's Python {wanted} instead."))  # fmt: skip
    prefix = local_prefix(python_hint, wanted)
    if prefix is None:
        raise ReleaseFailed(
            reason_zh=f"无法下载 {build.file}（{reason_en}），本机也没有可打包的 CPython {wanted}",
            reason_en=f"{build.file} could not be fetched ({reason_en}) and there is no local CPython {wanted} to pack",
            fix_zh=fix_zh + "；或用 --python 指定一个 CPython " + wanted + "。",
            fix_en=fix_en + f"; or name a CPython {wanted} with --python.",
        )
    try:
        copy_local(prefix, wanted, dest)
        version = check_relocated(dest)
    except (OSError, ValueError) as exc:
        raise ReleaseFailed(reason_zh=f"本机的 Python（{prefix}）无法做成可移动的副本：{exc}",
                            reason_en=f"this machine's Python ({prefix}) cannot be made relocatable: {exc}",
                            fix_zh=fix_zh + "。", fix_en=fix_en + ".") from exc  # fmt: skip
    libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None
    glibc = "-".join((libc or "glibc").split())
    return PackedPython(
        "local", version, str(prefix),
        f"本机的 CPython {version}（{prefix}），已复制并改为相对路径，已在带空格的路径下验证可运行；"
        f"它依赖本机这样的系统库（{glibc}、系统的 OpenSSL），不是固定版本 {build.version}",
        f"this machine's CPython {version} ({prefix}), copied with relative run paths and checked to run from a "
        f"path with a space; it needs system libraries like this machine's ({glibc}, the system OpenSSL), and it "
        f"is not the pinned {build.version}",
    )  # fmt: skip


def resolve_requirements(lock: Path, environment: dict[str, str]) -> list[str]:
    """The locked requirements that apply to a target, as ``name==version`` (markers evaluated for it, not us)."""
    from packaging.requirements import Requirement

    pins = []
    for raw in lock.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(environment):
            continue
        pins.append(f"{req.name}{req.specifier}")
    return pins


def _tag_args(spec: Target, version: str) -> list[str]:
    nodot = "".join(version.split(".")[:2])
    args = ["--only-binary=:all:", "--no-deps", "--implementation", "cp", "--python-version", nodot,
            "--abi", f"cp{nodot}", "--abi", "abi3", "--abi", "none"]  # fmt: skip
    for platform in spec.platforms:
        args += ["--platform", platform]
    return args


def _pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def _pip(argv: list[str], extra_env: dict[str, str] | None = None) -> tuple[int, str]:
    base = [sys.executable, "-m", "pip", *argv[:1], "--isolated", "--disable-pip-version-check", "--no-input",
            "--progress-bar", "off"]  # fmt: skip
    with installer_credentials([*base, *argv[1:]], {**_pip_env(), **(extra_env or {})}) as (run_argv, env):
        done = proc.run(run_argv, timeout=None, env=env)  # an index password goes by a private netrc, not argv
    return done.returncode, done.stdout + done.stderr


def download_wheels(bundle: Bundle, pins: list[str], spec: Target, version: str, dest: Path, *, lang: str,
                    say: Callable[[str], None]) -> None:  # fmt: skip
    """Every pinned wheel for the target into ``dest``: from ``dest`` itself when it has them, else the PyPI mirrors."""
    from launcher import config
    from launcher.mirrors.fallback import MirrorProblem, try_sources
    from launcher.mirrors.measure import ensure_measured
    from launcher.mirrors.plan import plan_for
    from launcher.mirrors.sources import Source

    dest.mkdir(parents=True, exist_ok=True)
    tags = _tag_args(spec, version)
    code, _ = _pip(["download", "--no-index", "--find-links", str(dest), "-d", str(dest), *tags, *pins])
    if code == 0:
        return
    cfg = config.load(bundle)
    ensure_measured(bundle, cfg, ("pypi",), lang=lang, say=say)
    plan = plan_for(bundle, cfg)
    # a proxy with a password goes by the environment: a command line is visible to every user (ps)
    by_env = proxy_environ(plan.network.proxy)
    proxy = ["--proxy", plan.network.proxy] if plan.network.proxy and not by_env else []
    say(pick(lang, f"下载 {len(pins)} 个 {spec.platforms[0]} 平台的 wheel …",
             f"Downloading {len(pins)} wheels for {spec.platforms[0]} ..."))  # fmt: skip

    def attempt(src: Source) -> None:
        if src.local:
            where = ["--no-index", "--find-links", src.url]
        else:
            where = ["--index-url", src.url, "--timeout", "20", "--retries", "1", *proxy]
            if src.url.startswith("http://"):
                where += ["--trusted-host", src.url.split("/")[2].split(":")[0]]
        code, output = _pip(["download", *where, "-d", str(dest), *tags, *pins], by_env)
        if code != 0:
            lines = [ln for ln in output.splitlines() if "error" in ln.lower()] or output.splitlines() or ["pip failed"]
            raise MirrorProblem(lines[-1].strip()[:200])

    try_sources(plan.sources["pypi"], attempt, bundle=bundle, lang=lang, say=say)


def _install(pins: list[str], spec: Target, version: str, wheels: Path, site: Path) -> None:
    code, output = _pip(["install", "--no-index", "--find-links", str(wheels), "--no-compile", "--target", str(site),
                         *_tag_args(spec, version), *pins])  # fmt: skip
    if code != 0:
        tail = "\n".join(output.strip().splitlines()[-5:])
        raise ReleaseFailed(reason_zh=f"安装到 {site} 失败：{tail}", reason_en=f"installing into {site} failed: {tail}",
                            fix_zh="检查上面 pip 的输出。", fix_en="See pip's output above.")  # fmt: skip


def install_launcher_env(bundle: Bundle, root: Path, spec: Target, packed: PackedPython, pins: list[str],
                         wheels: Path) -> None:  # fmt: skip
    """``env/launcher`` for the target, movable with the folder (see the module doc)."""
    from bootstrap.stage0 import STAMP, requirements_digest

    env = root / "env" / "launcher"
    short = ".".join(packed.version.split(".")[:2])
    if spec.os == "windows":
        _install([p for p in pins if p.startswith("pip==")], spec, packed.version, wheels,
                 root / "python" / "Lib" / "site-packages")  # fmt: skip
        make_embedded_env(root / "python", env, "..\\..\\..")
        _install(pins, spec, packed.version, wheels, env / "Lib" / "site-packages")
        move_scripts(env / "Lib" / "site-packages", env / "Scripts")
        python_rel = "env/launcher/Scripts/python.exe"
    else:
        site = env / "lib" / f"python{short}" / "site-packages"
        _install(pins, spec, packed.version, wheels, site)
        move_scripts(site, env / "bin")
        exe = f"python{short}"
        (env / "bin" / exe).symlink_to(os.path.relpath(root / "python" / "bin" / exe, env / "bin"))
        for alias in ("python3", "python"):
            (env / "bin" / alias).symlink_to(exe)
        # `home` is healed by start.sh at the first start wherever the folder is unpacked (module doc).
        (env / "pyvenv.cfg").write_text(f"home = /yijian-release/python/bin\ninclude-system-site-packages = false\n"
                                        f"version = {packed.version}\n", encoding="utf-8")  # fmt: skip
        python_rel = f"python/bin/{exe}"
    stamp = {"requirements_sha256": requirements_digest(Bundle(root=root, code=root)), "python": python_rel,
             "python_version": packed.version, "index": f"release {spec.name}: wheels for {spec.platforms[0]}",
             "built": f"release {__version__}"}  # fmt: skip
    (env / STAMP).write_text(json.dumps(stamp, indent=2), encoding="utf-8")


def build_pack_env(bundle: Bundle, root: Path, pack: str, *, lang: str, say: Callable[[str], None]) -> None:
    """``env/runtime`` for ``pack`` inside the archive, built from its own python/ through the mirrors."""
    from launcher.environment import EnvironmentBuilder

    # The builder's caches (uv, the torch wheel) and settings (mirrors) are this bundle's; none of them ship.
    (root / "cache").symlink_to(bundle.cache_dir.resolve(), target_is_directory=True)
    if bundle.config_file.exists():
        shutil.copy2(bundle.config_file, root / "config.toml")
    try:
        EnvironmentBuilder(Bundle(root=root, code=bundle.code), lang, say).build(pack, force=True)
    finally:
        (root / "cache").unlink()
        (root / "config.toml").unlink(missing_ok=True)
        shutil.rmtree(root / "logs", ignore_errors=True)
    for lock in (root / "env").glob(".*.lock"):
        lock.unlink()


def ship_configs(bundle: Bundle, root: Path, *, lang: str, say: Callable[[str], None]) -> list[str]:
    """Every architecture's config folder into the archive's ``cache/configs``; returns the architectures shipped.

    They are written from the shipped data (models/configs, launcher/models/configs.py) and would be
    written again on first start anyway; carrying them saves that step on a read-only copy.
    """
    from launcher.models.configs import architectures_path, ensure_configs, load_architectures

    shipped = []
    for arch in load_architectures(architectures_path(bundle)):
        [folder] = ensure_configs(bundle, [arch], lang=lang, say=say)
        shutil.copytree(folder, root / "cache" / "configs" / arch)
        shipped.append(arch)
    if shipped:
        say(
            pick(
                lang,
                f"已附带模型配置文件：{', '.join(shipped)}",
                f"Architecture config folders included: {', '.join(shipped)}",
            )
        )
    return shipped


# ----------------------------------------------------------------------------------------- the archive


def manifest_for(root: Path, name: str, spec: Target, packed: PackedPython, pack: str | None) -> dict[str, Any]:
    files: list[dict[str, Any]] = []
    for rel, path in shipped_entries(root):
        if path.is_symlink():
            link = os.readlink(path)
            if os.path.isabs(link) or not (path.parent / link).resolve().is_relative_to(root.resolve()):
                raise ReleaseFailed(reason_zh=f"{rel} 指向整合包之外：{link}", reason_en=f"{rel} points outside the bundle: {link}",
                                    fix_zh="这是一个缺陷，请报告。", fix_en="This is a bug; please report it.")  # fmt: skip
            files.append({"path": rel, "link": link})
        elif path.is_file():
            executable = bool(path.stat().st_mode & stat.S_IXUSR)
            files.append({"path": rel, "size": path.stat().st_size, "sha256": file_sha256(path),
                          **({"executable": True} if executable else {})})  # fmt: skip
    return {"name": name, "version": __version__, "target": spec.name, "pack": pack, "python": packed.to_dict(),
            "files": files}  # fmt: skip


def write_archive(root: Path, name: str, spec: Target, packed: PackedPython, pack: str | None, out: Path) -> Release:
    """The manifest, then the archive (deterministic), then its sha256, all in ``out``."""
    manifest = manifest_for(root, name, spec, packed, pack)
    text = json.dumps(manifest, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    (root / MANIFEST).write_text(text, encoding="utf-8")
    beside = out / f"{name}.manifest.json"
    beside.write_text(text, encoding="utf-8")
    archive = out / f"{name}.{spec.archive}"
    part = archive.with_name(archive.name + ".part")
    entries = shipped_entries(root)
    if spec.archive == "zip":
        write_zip(entries, name, part)
    else:
        write_tar(entries, name, part)
    part.replace(archive)
    digest = file_sha256(archive)
    (out / f"{archive.name}.sha256").write_text(f"{digest}  {archive.name}\n", encoding="utf-8")
    return Release(archive, beside, spec.name, pack, packed, len(manifest["files"]), archive.stat().st_size, digest)


