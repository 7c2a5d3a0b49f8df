"""bootstrap/fetch-python.sh: a Python for a machine that has none, through the python channel's mirrors.

Each test builds a small fake python-build-standalone archive (``python/bin/python3`` is a two-line
script), pins ITS size and sha256 in the bundle's own ``bootstrap/python-builds.toml``, points the
``python`` mirrors of the bundle's ``mirrors.toml`` at local servers, and runs the script with a PATH
that holds the few tools it needs and no Python at all.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.fileserver import Faults, FileServer, refused_url
from tests.support.hermetic import REPO

RELEASE = "20240814"
FILE = "cpython-3.11.9+20240814-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"
URL_PATH = f"/{RELEASE}/{FILE.replace('+', '%2B')}"
TOOLS = ("sh", "uname", "awk", "sed", "tar", "gzip", "wc", "mkdir", "rm", "mv", "cat", "sha256sum", "dirname")
REAL_PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fetch script is tested on Linux")


def fake_build(payload: int = 400_000) -> bytes:
    """A python-build-standalone-shaped tar.gz whose python3 runs this machine's Python; ``payload`` pads it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=0) as tf:
        script = f'#!/bin/sh\nexec "{REAL_PYTHON}" "$@"\n'.encode()
        for name, data, mode in (
            ("python/bin/python3", script, 0o755),
            ("python/lib/padding.bin", os.urandom(payload), 0o644),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Bundle:
    root: Path
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def mirrors(self, *entries: tuple[str, str, str]) -> None:
        """(id, url, status) python mirrors of kind pbs, in catalog order."""
        text = "schema = 1\n\n[channels.python]\nname_en = 'Python builds'\n\n"
        for mid, url, status in entries:
            text += f'[[python]]\nid = "{mid}"\nurl = "{url}"\nkind = "pbs"\nstatus = "{status}"\n\n'
        text += '[[python]]\nid = "embed"\nurl = "http://127.0.0.1:1/{version}/x.zip"\nkind = "embed"\nstatus = "verified"\n'
        (self.root / "mirrors.toml").write_text(text, encoding="utf-8")

    def config(self, text: str) -> None:
        (self.root / "config.toml").write_text(text, encoding="utf-8")

    def run(self, tools: Path, fetcher: str = "curl", lang: str = "en") -> subprocess.CompletedProcess[str]:
        env = {"PATH": str(tools), "HOME": str(self.root / "home"), "LANG": "C.UTF-8", "YIJIAN_LANG": lang}
        return subprocess.run(["/bin/sh", str(self.root / "bootstrap" / "fetch-python.sh"), str(self.root)],
                              capture_output=True, text=True, env=env, timeout=120)  # fmt: skip

    @property
    def cached(self) -> Path:
        return self.root / "cache" / "python" / FILE


def make_bundle(where: Path, data: bytes, *, size: int | None = None, sha256: str | None = None) -> Bundle:
    root = where / "my bundle"
    (root / "bootstrap").mkdir(parents=True)
    shutil.copy2(REPO / "bootstrap" / "fetch-python.sh", root / "bootstrap")
    (root / "bootstrap" / "python-builds.toml").write_text(
        f'schema = 1\n\n[[build]]\ntarget = "linux-x64"\nkind = "pbs"\nversion = "3.11.9"\nrelease = "{RELEASE}"\n'
        f'file = "{FILE}"\nsize = {len(data) if size is None else size}\n'
        f'sha256 = "{sha256 or hashlib.sha256(data).hexdigest()}"\n',
        encoding="utf-8",
    )
    return Bundle(root, data)


def tool_dir(where: Path, fetcher: str = "curl") -> Path:
    """A PATH with the tools the script needs and no Python."""
    bin_dir = where / f"tools-{fetcher}"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in (*TOOLS, fetcher):
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is not installed")
        if not (bin_dir / tool).is_symlink():
            (bin_dir / tool).symlink_to(found)
    return bin_dir


@pytest.fixture
def data() -> bytes:
    return fake_build()


def works(bundle: Bundle) -> bool:
    out = subprocess.run([str(bundle.root / "python" / "bin" / "python3"), "-c", "print('ok')"],
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip() == "ok"


def test_falls_back_across_mirrors_and_installs_the_verified_build(tmp_path: Path, data: bytes,
                                                                    file_server: FileServer) -> None:  # fmt: skip
    file_server.add(f"/good{URL_PATH}", data)
    bundle = make_bundle(tmp_path, data)
    bundle.mirrors(
        ("npmmirror", refused_url("/pbs"), "reported"),
        ("empty", file_server.url + "/empty", "reported"),  # answers 404
        ("github", file_server.url + "/good", "verified"),
    )
    r = bundle.run(tool_dir(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "npmmirror failed (connection refused)" in r.stderr
    assert "empty failed (HTTP 404)" in r.stderr
    assert f"Downloading from github: {file_server.url}/good{URL_PATH}" in r.stderr
    assert works(bundle)
    assert hashlib.sha256(bundle.cached.read_bytes()).hexdigest() == bundle.sha256
    assert not (bundle.root / "python.incoming").exists()
    assert not list(bundle.cached.parent.glob("*.part"))


def test_a_cut_download_resumes_with_a_range_request(tmp_path: Path, data: bytes, file_server: FileServer) -> None:
    blob = file_server.add(URL_PATH, data, faults=Faults(drop_after=150_000, drop_requests=1))
    bundle = make_bundle(tmp_path, data)
    bundle.mirrors(("npmmirror", file_server.url, "reported"))
    r = bundle.run(tool_dir(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "resuming at byte 150000" in r.stderr
    file_server.wait_idle()
    gets = [q for q in file_server.requests if q.method == "GET"]
    assert len(gets) == 2 and blob.drops == 1
    assert gets[1].headers.get("Range") == "bytes=150000-"
    assert file_server.bytes_served(URL_PATH) == len(data)  # nothing fetched twice
    assert works(bundle)


def test_a_partial_file_from_an_earlier_run_is_continued(tmp_path: Path, data: bytes, file_server: FileServer) -> None:
    file_server.add(URL_PATH, data)
    bundle = make_bundle(tmp_path, data)
    bundle.mirrors(("npmmirror", file_server.url, "reported"))
    bundle.cached.parent.mkdir(parents=True)
    bundle.cached.with_name(FILE + ".part").write_bytes(data[:100_000])
    r = bundle.run(tool_dir(tmp_path))
    assert r.returncode == 0, r.stderr
    file_server.wait_idle()
    assert file_server.bytes_served(URL_PATH) == len(data) - 100_000
    assert works(bundle)


def test_a_build_that_does_not_verify_is_never_unpacked(tmp_path: Path, data: bytes, file_server: FileServer) -> None:
    tampered = fake_build()  # same shape and size, other bytes
    assert len(tampered) == len(data) and tampered != data
    file_server.add(URL_PATH, tampered)
    bundle = make_bundle(tmp_path, data)
    bundle.mirrors(("npmmirror", file_server.url, "reported"))
    r = bundle.run(tool_dir(tmp_path))
    assert r.returncode == 5, r.stderr
    assert "The file from npmmirror does not verify" in r.stderr
    assert f"expected {len(data)} / {bundle.sha256}" in r.stderr
    assert "[PYTHON_FETCH_FAILED]" in r.stderr and f"npmmirror ({file_server.url}{URL_PATH})" in r.stderr
    assert not (bundle.root / "python").exists() and not (bundle.root / "python.incoming").exists()
    assert not list(bundle.cached.parent.iterdir())  # neither the bad file nor its .part is kept


def test_no_reachable_mirror_names_each_one_and_the_way_by_hand(tmp_path: Path, data: bytes) -> None:
    bundle = make_bundle(tmp_path, data)
    first, second = refused_url("/a"), refused_url("/b")
    bundle.mirrors(("npmmirror", first, "reported"), ("github", second, "verified"))
    r = bundle.run(tool_dir(tmp_path))
    assert r.returncode == 4
    assert f"- npmmirror ({first}{URL_PATH}): connection refused" in r.stderr
    assert f"- github ({second}{URL_PATH}): connection refused" in r.stderr
    assert "无法下载 Python 3.11.9" in r.stderr
    assert f"put it in {bundle.root}/cache/python/" in r.stderr and f"sha256 {bundle.sha256}" in r.stderr
    assert f"{bundle.root}/python/bin/python3 runs" in r.stderr
    assert not (bundle.root / "python").exists()


def test_the_configured_mirror_goes_first_and_unverified_ones_only_when_chosen(
    tmp_path: Path, data: bytes, file_server: FileServer
) -> None:
    file_server.add(f"/nju{URL_PATH}", data)
    bundle = make_bundle(tmp_path, data)
    bundle.mirrors(("npmmirror", refused_url(), "reported"), ("nju", file_server.url + "/nju", "unverified"))
    r = bundle.run(tool_dir(tmp_path))
    assert r.returncode == 4 and "nju" not in r.stderr  # auto never picks an unverified mirror
    bundle.config('[mirrors]\npython = "nju"\n')
    r = bundle.run(tool_dir(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "npmmirror" not in r.stderr  # the choice worked at once
    assert works(bundle)


def test_a_url_in_config_and_the_proxy_setting(tmp_path: Path, data: bytes, file_server: FileServer) -> None:
    file_server.add(f"/mine{URL_PATH}", data)
    bundle = make_bundle(tmp_path, data)
    bundle.mirrors(("npmmirror", refused_url(), "reported"))
    # A proxy nobody listens on: with it set, even the right mirror cannot be reached.
    bundle.config(f'[mirrors]\npython = "{file_server.url}/mine"  # my own\n\n[network]\nproxy = "{refused_url()}"\n')
    r = bundle.run(tool_dir(tmp_path))
    assert r.returncode == 4 and "custom failed" in r.stderr  # the proxy was used, and it refuses
    bundle.config(f'[mirrors]\npython = "{file_server.url}/mine"\n')
    r = bundle.run(tool_dir(tmp_path))
    assert r.returncode == 0, r.stderr
    assert f"Downloading from custom: {file_server.url}/mine{URL_PATH}" in r.stderr


def test_offline_mode_downloads_nothing(tmp_path: Path, data: bytes, file_server: FileServer) -> None:
    file_server.add(URL_PATH, data)
    bundle = make_bundle(tmp_path, data)
    bundle.mirrors(("npmmirror", file_server.url, "reported"))
    bundle.config("[network]\noffline = true\n")
    r = bundle.run(tool_dir(tmp_path))
    assert r.returncode == 4 and "offline" in r.stderr
    assert file_server.requests == []


def test_language_auto_follows_the_locale(tmp_path: Path, data: bytes) -> None:
    bundle = make_bundle(tmp_path, data)
    bundle.mirrors(("npmmirror", refused_url(), "reported"))
    bundle.cached.parent.mkdir(parents=True)
    said = {}
    for setting, locale in (("auto", "zh_CN.UTF-8"), ("auto", "en_US.UTF-8"), ("en", "zh_CN.UTF-8")):
        bundle.cached.write_bytes(data)
        shutil.rmtree(bundle.root / "python", ignore_errors=True)
        bundle.config(f'[general]\nlanguage = "{setting}"\n')
        r = bundle.run(tool_dir(tmp_path), lang=locale)
        assert r.returncode == 0, r.stderr
        said[setting, locale] = "使用已下载并校验过的" in r.stderr
    assert said == {("auto", "zh_CN.UTF-8"): True, ("auto", "en_US.UTF-8"): False, ("en", "zh_CN.UTF-8"): False}


def test_a_build_put_in_the_cache_by_hand_is_verified_and_used_offline(tmp_path: Path, data: bytes) -> None:
    bundle = make_bundle(tmp_path, data)
    bundle.mirrors(("npmmirror", refused_url(), "reported"))
    bundle.cached.parent.mkdir(parents=True)
    bundle.cached.write_bytes(data)
    r = bundle.run(tool_dir(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "Using the already downloaded and verified" in r.stderr and "npmmirror" not in r.stderr
    assert works(bundle)


def test_unknown_size_lets_the_sha256_decide(tmp_path: Path, data: bytes, file_server: FileServer) -> None:
    file_server.add(URL_PATH, data, faults=Faults(drop_after=120_000, drop_requests=1))
    bundle = make_bundle(tmp_path, data, size=0)
    bundle.mirrors(("npmmirror", file_server.url, "reported"))
    r = bundle.run(tool_dir(tmp_path))
    assert r.returncode == 0, r.stderr
    assert works(bundle)


def test_wget_when_there_is_no_curl(tmp_path: Path, data: bytes, file_server: FileServer) -> None:
    file_server.add(URL_PATH, data, faults=Faults(drop_after=150_000, drop_requests=1))
    bundle = make_bundle(tmp_path, data)
    bundle.mirrors(("dead", refused_url(), "reported"), ("npmmirror", file_server.url, "reported"))
    r = bundle.run(tool_dir(tmp_path, fetcher="wget"))
    assert r.returncode == 0, r.stderr
    assert "dead failed (network failure)" in r.stderr
    file_server.wait_idle()
    assert file_server.bytes_served(URL_PATH) == len(data)  # wget -c resumed
    assert works(bundle)


def test_missing_tools_are_named(tmp_path: Path, data: bytes) -> None:
    bundle = make_bundle(tmp_path, data)
    bundle.mirrors(("npmmirror", refused_url(), "reported"))
    bin_dir = tmp_path / "few"
    bin_dir.mkdir()
    r = subprocess.run(["/bin/sh", str(bundle.root / "bootstrap" / "fetch-python.sh"), str(bundle.root)],
                       capture_output=True, text=True, env={"PATH": str(bin_dir)})  # fmt: skip
    assert r.returncode == 6 and "these commands are missing: uname awk sed tar gzip wc mkdir rm mv" in r.stderr


def test_the_pinned_builds_are_well_formed() -> None:
    from bootstrap.python_builds import TARGETS, load_builds

    builds = load_builds()
    assert set(builds) == set(TARGETS)
    versions = {b.version for b in builds.values()}
    assert versions == {"3.11.9"}  # the packs' Python
    for b in builds.values():
        assert len(b.sha256) == 64 and int(b.sha256, 16) >= 0
        assert b.version in b.file
    win = builds["win-x64"]
    assert win.kind == "embed" and win.size == 11249023
    assert win.url("https://m.example/python/{version}/python-{version}-embed-amd64.zip").endswith(
        "/python/3.11.9/python-3.11.9-embed-amd64.zip"
    )
    linux = builds["linux-x64"]
    assert linux.url("https://registry.npmmirror.com/-/binary/python-build-standalone/") == (
        "https://registry.npmmirror.com/-/binary/python-build-standalone/20240814/"
        "cpython-3.11.9%2B20240814-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"
    )
    packs = {line.split('"')[1] for p in (REPO / "packs").glob("*.toml")
             for line in p.read_text(encoding="utf-8").splitlines() if line.startswith("python =")}  # fmt: skip
    assert packs == {"3.11"}
