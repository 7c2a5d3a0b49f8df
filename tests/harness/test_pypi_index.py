"""The fake wheels and the local package index, proven with the real installers.

uv installs into fresh ``uv venv`` environments; pip runs from a copy of one
``python -m venv`` made per module (pip itself takes seconds to set up).
Every installer call is hermetic: ``--no-config`` for uv, ``--isolated`` for pip,
and caches inside the test's folder.
"""

from __future__ import annotations

import base64
import csv
import ensurepip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest

from tests.support.hermetic import MACHINE_WHEELS
from tests.support.plugin_index import STACKS, Wheelhouse
from tests.support.pypi_index import ERROR_PAGE, PackageIndex, inspect_wheel, parse_range
from tests.support.wheels import build_wheel, fake_torch_stack, relabel_wheel, wheel_filename

pytestmark = pytest.mark.slow

UV = Path(sys.executable).with_name("uv")
BIN = "Scripts" if os.name == "nt" else "bin"
# compat-and-mirrors.md §5, xf_abi
XF_ABI = re.compile(
    r"WARNING\[XFORMERS\]: xFormers can't load C\+\+/CUDA extensions\. xFormers was built for:\s+"
    r"PyTorch (?P<built_torch>\S+) with CUDA (?P<built_cuda>\S+) \(you have (?P<have_torch>\S+)\)\s+"
    r"Python\s+(?P<built_py>[\d.]+) \(you have (?P<have_py>[\d.]+)\)"
)
PROBE = """
import importlib, json, torch
out = {"torch": torch.__version__, "cuda": torch.version.cuda, "version.__version__": torch.version.__version__,
       "available": torch.cuda.is_available(), "arch": torch.cuda.get_arch_list(), "cudnn": torch.backends.cudnn.version()}
for name in ("torchvision", "xformers"):
    try:
        out[name] = importlib.import_module(name).__version__
    except ImportError:
        out[name] = None
print(json.dumps(out))
"""


@dataclass
class Tools:
    """Runs uv, pip and venv interpreters with the sealed environment and per-test caches."""

    tmp: Path

    def run(self, *cmd: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "UV_CACHE_DIR": str(self.tmp / "uv-cache"), "UV_PYTHON_DOWNLOADS": "never", **env}
        return subprocess.run([str(c) for c in cmd], env=full_env, capture_output=True, text=True, timeout=120)

    def uv_venv(self, name: str = "venv") -> Path:
        venv = self.tmp / name
        done = self.run(UV, "venv", "-p", sys.executable, venv)
        assert done.returncode == 0, done.stderr
        return venv

    def uv_install(self, venv: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run(UV, "pip", "install", "--no-config", "-p", venv, *args, **env)

    def pip_install(self, venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(python(venv), "-m", "pip", "install", "--isolated", "--disable-pip-version-check",
                        "--no-cache-dir", *args)  # fmt: skip

    def probe(self, venv: Path) -> tuple[dict[str, object], str]:
        """What the installed fake modules report, and the import's stderr."""
        done = self.run(python(venv), "-c", PROBE)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout), done.stderr


def python(venv: Path) -> Path:
    return venv / BIN / ("python.exe" if os.name == "nt" else "python")


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class Anchors(HTMLParser):
    """The ``<a>`` tags of a page, as attribute dicts."""

    def __init__(self, page: bytes) -> None:
        super().__init__()
        self.found: list[dict[str, str | None]] = []
        self.feed(page.decode())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.found.append(dict(attrs))


@pytest.fixture
def tools(tmp_path: Path) -> Tools:
    return Tools(tmp_path)


@pytest.fixture(scope="module")
def pip_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("pip-template") / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], env={**env, "PIP_CONFIG_FILE": os.devnull},
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    return venv


@pytest.fixture
def pip_venv(pip_template: Path, tmp_path: Path) -> Path:
    """A private copy of the module's pip venv (copying takes a fraction of ``python -m venv``)."""
    return Path(shutil.copytree(pip_template, tmp_path / "pip-venv", symlinks=True))


# --- the wheels themselves ---------------------------------------------------------------------------------------


def test_wheel_is_valid_reproducible_and_named_per_spec(tmp_path: Path) -> None:
    def build(dest: Path) -> Path:
        files: dict[str, str | bytes] = {
            "yijian_probe/__init__.py": "VALUE = 1\n",
            "yijian_probe/data.bin": b"\x00\x01",
        }
        return build_wheel(dest, "Yijian_Probe.Pkg", "2.1.2+cu121", requires=["torch==2.1.2"], files=files,
                           requires_python=">=3.10", tag="py2.py3-none-any")  # fmt: skip

    wheel = build(tmp_path / "a")
    assert wheel.name == "yijian_probe_pkg-2.1.2+cu121-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        dist_info = "yijian_probe_pkg-2.1.2+cu121.dist-info"
        metadata = zf.read(f"{dist_info}/METADATA").decode()
        assert "Name: Yijian_Probe.Pkg\nVersion: 2.1.2+cu121\n" in metadata
        assert "Requires-Python: >=3.10\n" in metadata and "Requires-Dist: torch==2.1.2\n" in metadata
        wheel_info = zf.read(f"{dist_info}/WHEEL").decode()
        assert "Root-Is-Purelib: true" in wheel_info
        assert "Tag: py2-none-any\nTag: py3-none-any\n" in wheel_info
        rows = list(csv.reader(io.StringIO(zf.read(f"{dist_info}/RECORD").decode())))
        assert sorted(r[0] for r in rows) == sorted(names)
        for path, digest, size in rows:
            if path.endswith("RECORD"):
                assert digest == size == ""
                continue
            data = zf.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(data))
    assert build(tmp_path / "b").read_bytes() == wheel.read_bytes()

    padded = build_wheel(tmp_path / "c", "padded", "1.0", pad_to=1 << 20)
    assert padded.stat().st_size >= 1 << 20
    with zipfile.ZipFile(padded) as zf:
        assert zf.getinfo("padded-1.0.dist-info/padding.bin").file_size == 1 << 20


def test_stack_wheels_pin_the_public_torch_version(wheelhouse: Wheelhouse) -> None:
    def requires(wheel: Path) -> list[str]:
        with zipfile.ZipFile(wheel) as zf:
            meta = next(n for n in zf.namelist() if n.endswith("METADATA"))
            return re.findall(r"^Requires-Dist: (.+)$", zf.read(meta).decode(), re.M)

    folder = wheelhouse.variants["cu121"]
    assert requires(folder / wheel_filename("torchvision", "0.16.2+cu121")) == ["torch==2.1.2"]
    assert requires(folder / wheel_filename("xformers", "0.0.23.post1")) == ["torch==2.1.2"]
    assert requires(folder / wheel_filename("torch", "2.1.2+cu121")) == []


# --- installing with uv ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["cu121", "cu128", "cpu"])
def test_uv_installs_each_stack_and_the_modules_report_it(
    variant: str, package_index: PackageIndex, tools: Tools
) -> None:
    stack = STACKS[variant]
    venv = tools.uv_venv()
    wanted = ["torch", "torchvision"] + (["xformers"] if stack.xformers else [])
    out = ok(tools.uv_install(venv, "--default-index", package_index.simple_url(variant), *wanted))
    assert f"+ torch=={stack.torch}" in out
    report, stderr = tools.probe(venv)
    assert report["torch"] == report["version.__version__"] == stack.torch
    assert (report["cuda"], report["torchvision"], report["xformers"]) == (
        stack.cuda,
        stack.torchvision,
        stack.xformers,
    )
    assert report["available"] is False
    if stack.cuda is None:
        assert report["arch"] == [] and report["cudnn"] is None
    else:
        assert "sm_80" in report["arch"] and isinstance(report["cudnn"], int)  # type: ignore[operator]
    assert "XFORMERS" not in stderr


def test_uv_exact_public_pin_takes_the_local_label(package_index: PackageIndex, tools: Tools) -> None:
    """``torch==2.7.1`` matches ``2.7.1+cu128``, which ranks above PyPI's plain 2.7.1."""
    venv = tools.uv_venv()
    out = ok(tools.uv_install(venv, "--default-index", package_index.simple_url(), "--index",
                              package_index.simple_url("cu128"), "--index-strategy", "unsafe-best-match",
                              "torch==2.7.1"))  # fmt: skip
    assert "+ torch==2.7.1+cu128" in out
    assert tools.probe(venv)[0]["cuda"] == "12.8"


def test_uv_find_links_on_a_flat_listing(flat_index: PackageIndex, tools: Tools) -> None:
    venv = tools.uv_venv()
    out = ok(tools.uv_install(venv, "--no-index", "--find-links", flat_index.flat_url("cu121"),
                              "torch==2.1.2", "torchvision", "xformers"))  # fmt: skip
    assert "+ torch==2.1.2+cu121" in out and "+ xformers==0.0.23.post1" in out
    assert tools.probe(venv)[0]["torchvision"] == "0.16.2+cu121"
    assert all(r.path.startswith("/whl/cu121/") for r in flat_index.requests)


def test_xformers_warns_when_built_for_another_torch(tmp_path: Path, tools: Tools) -> None:
    """A same-version, other-CUDA xformers installs cleanly (its pin is public) and warns at import."""
    fake_torch_stack(tmp_path / "wheels", arch_list=("sm_86",), xformers_built_for_torch="2.7.1+cu126")
    venv = tools.uv_venv()
    with PackageIndex(root=tmp_path / "wheels") as index:
        ok(tools.uv_install(venv, "--default-index", index.simple_url(), "torch", "torchvision", "xformers"))
    report, stderr = tools.probe(venv)
    assert report["arch"] == ["sm_86"]
    m = XF_ABI.search(stderr)
    assert m is not None, stderr
    assert (m["built_torch"], m["built_cuda"], m["have_torch"]) == ("2.7.1+cu126", "1206", "2.7.1+cu128")
    assert m["have_py"] == m["built_py"]


def test_a_folder_with_a_pip_wheel_serves_pip(tmp_path: Path, tools: Tools, wheelhouse: Wheelhouse) -> None:
    bundled = sorted((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))
    if not bundled:
        pytest.skip("this Python has no bundled pip wheel")
    folder = tmp_path / "wheels"
    folder.mkdir()
    shutil.copy(bundled[-1], folder)
    shutil.copy(wheelhouse.pypi / wheel_filename("tinypkg", "1.0"), folder)
    venv = tools.uv_venv()
    with PackageIndex(root=folder) as index:
        assert Anchors(fetch(index.simple_url() + "/")[2]).found == [
            {"href": "/simple/pip/"},
            {"href": "/simple/tinypkg/"},
        ]
        ok(tools.uv_install(venv, "--default-index", index.simple_url(), "pip"))
        ok(tools.pip_install(venv, "--index-url", index.simple_url(), "tinypkg"))
    assert ok(tools.run(python(venv), "-c", "import tinypkg; print(tinypkg.__version__)")).strip() == "1.0"


# --- installing with pip -----------------------------------------------------------------------------------------


def test_pip_installs_the_stack_from_an_index(package_index: PackageIndex, pip_venv: Path, tools: Tools) -> None:
    ok(tools.pip_install(pip_venv, "--index-url", package_index.simple_url("cu128"), "torch==2.7.1", "torchvision",
                         "xformers"))  # fmt: skip
    report, stderr = tools.probe(pip_venv)
    assert (report["torch"], report["torchvision"], report["xformers"]) == ("2.7.1+cu128", "0.22.1+cu128", "0.0.31")
    assert "XFORMERS" not in stderr


def test_pip_find_links_on_a_flat_listing(flat_index: PackageIndex, pip_venv: Path, tools: Tools) -> None:
    ok(tools.pip_install(pip_venv, "--no-index", "--find-links", flat_index.flat_url("cu121"), "torch==2.1.2+cu121",
                         "torchvision", "xformers"))  # fmt: skip
    report, _ = tools.probe(pip_venv)
    assert (report["torch"], report["cuda"], report["xformers"]) == ("2.1.2+cu121", "12.1", "0.0.23.post1")


# --- the pages and files -----------------------------------------------------------------------------------------


def test_links_carry_the_right_sha256_and_requires_python(package_index: PackageIndex, tools: Tools) -> None:
    root = Anchors(fetch(package_index.simple_url() + "/")[2]).found
    assert [a["href"] for a in root] == [
        f"/simple/{p}/" for p in ("needs-new-torch", "needs-torch", "tinypkg", "torch")
    ]
    for variant in (None, "cu121", "cu128", "cpu"):
        base = package_index.simple_url(variant) + "/"
        for project in Anchors(fetch(base)[2]).found:
            page_url = urljoin(base, project["href"] or "")
            for link in Anchors(fetch(page_url)[2]).found:
                url, _, fragment = urljoin(page_url, link["href"] or "").partition("#")
                status, _, body = fetch(url)
                assert status == 200 and fragment == f"sha256={hashlib.sha256(body).hexdigest()}"
                name = url.rsplit("/", 1)[1].replace("%2B", "+")
                wheel_dir = package_index.folder(variant)
                assert wheel_dir is not None
                assert link["data-requires-python"] == inspect_wheel(wheel_dir / name).requires_python
    tinypkg = Anchors(fetch(package_index.simple_url() + "/tinypkg/")[2]).found
    assert [a["data-requires-python"] for a in tinypkg] == [">=3.8", ">=3.99"]
    venv = tools.uv_venv()
    assert "+ tinypkg==1.0" in ok(tools.uv_install(venv, "--default-index", package_index.simple_url(), "tinypkg"))
    flat = Anchors(fetch(package_index.flat_url("cu128"))[2]).found
    assert [a["href"] for a in flat][0] == "../files/torch-2.7.1%2Bcu128-py3-none-any.whl"
    assert fetch(package_index.simple_url() + "/no-such-project/")[0] == 404
    with pytest.raises(KeyError):
        package_index.simple_url("cu999")


def test_a_big_wheel_resumes_with_range(tmp_path: Path, tools: Tools) -> None:
    size_floor = 8 << 20
    torch_wheel = fake_torch_stack(tmp_path / "wheels", pad_torch_to=size_floor)[0]
    data = torch_wheel.read_bytes()
    assert len(data) >= size_floor
    with PackageIndex(root=tmp_path / "wheels") as index:
        url = index.file_url(torch_wheel.name)
        status, headers, body = fetch(url, method="HEAD")
        assert (status, int(headers["Content-Length"]), headers["Accept-Ranges"], body) == (
            200,
            len(data),
            "bytes",
            b"",
        )
        assert index.requests[-1].body_bytes == 0

        with urllib.request.urlopen(url, timeout=30) as response:  # a download cut after 3 MiB
            part = response.read(3 << 20)
        status, headers, rest = fetch(url, {"Range": f"bytes={len(part)}-"})
        assert status == 206
        assert headers["Content-Range"] == f"bytes {len(part)}-{len(data) - 1}/{len(data)}"
        assert part + rest == data
        assert index.requests[-1].body_bytes == len(data) - len(part)

        status, headers, _ = fetch(url, {"Range": f"bytes={len(data)}-"})
        assert (status, headers["Content-Range"]) == (416, f"bytes */{len(data)}")

        venv = tools.uv_venv()
        ok(tools.uv_install(venv, "--default-index", index.simple_url(), "torch"))
    assert tools.probe(venv)[0]["torch"] == "2.7.1+cu128"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("bytes=10-", (10, 99)), ("bytes=10-19", (10, 19)), ("bytes=90-500", (90, 99)), ("bytes=-30", (70, 99)),
     ("bytes=-300", (0, 99)), ("bytes=0-0,5-9", None), ("items=1-2", None), ("bytes=-", None)],
)  # fmt: skip
def test_parse_range(header: str, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=20-10"])
def test_parse_range_unsatisfiable(header: str) -> None:
    with pytest.raises(ValueError):
        parse_range(header, 100)


# --- misbehaviour ------------------------------------------------------------------------------------------------


def test_forbidden_mirror_then_healed(package_index: PackageIndex, tools: Tools) -> None:
    venv = tools.uv_venv()
    package_index.forbid()
    failed = tools.uv_install(venv, "--default-index", package_index.simple_url(), "tinypkg", UV_HTTP_RETRIES="0")
    assert failed.returncode == 1
    assert f"hint: An index ({package_index.simple_url()}) returned a 403 Forbidden error" in failed.stderr
    assert fetch(package_index.file_url(wheel_filename("tinypkg", "1.0")))[0] == 403
    package_index.heal()
    ok(tools.uv_install(venv, "--default-index", package_index.simple_url(), "tinypkg"))


def test_html_error_page_with_status_200(package_index: PackageIndex, pip_venv: Path, tools: Tools) -> None:
    package_index.serve_error_page()
    status, headers, body = fetch(package_index.file_url(wheel_filename("tinypkg", "1.0")))
    assert (status, headers["Content-Type"].split(";")[0], body.decode()) == (200, "text/html", ERROR_PAGE)
    venv = tools.uv_venv()
    failed = tools.uv_install(venv, "--default-index", package_index.simple_url(), "tinypkg", UV_HTTP_RETRIES="0")
    assert failed.returncode == 1 and "there are no versions of tinypkg" in failed.stderr
    failed = tools.pip_install(pip_venv, "--index-url", package_index.simple_url(), "tinypkg")
    assert failed.returncode == 1 and "No matching distribution found for tinypkg" in failed.stderr


def test_one_missing_project(package_index: PackageIndex, tools: Tools) -> None:
    package_index.hide("TinyPkg")
    venv = tools.uv_venv()
    failed = tools.uv_install(venv, "--default-index", package_index.simple_url(), "tinypkg", UV_HTTP_RETRIES="0")
    assert failed.returncode == 1 and "tinypkg was not found in the package registry" in failed.stderr
    assert fetch(package_index.file_url(wheel_filename("tinypkg", "1.0")))[0] == 404
    assert {"href": "/simple/tinypkg/"} not in Anchors(fetch(package_index.simple_url() + "/")[2]).found
    ok(tools.uv_install(venv, "--default-index", package_index.simple_url(), "--no-deps", "needs-torch"))


def test_slow_mirror_times_uv_out(package_index: PackageIndex, tools: Tools) -> None:
    package_index.slow_down(3)
    venv = tools.uv_venv()
    failed = tools.uv_install(venv, "--default-index", package_index.simple_url(), "tinypkg",
                              UV_HTTP_RETRIES="0", UV_HTTP_TIMEOUT="1")  # fmt: skip
    assert failed.returncode == 2 and "operation timed out" in failed.stderr
    assert package_index.requests[0].path == "/simple/tinypkg/"
    package_index.heal()
    ok(tools.uv_install(venv, "--default-index", package_index.simple_url(), "tinypkg"))


# --- a PyPI-named copy of a local-label wheel (the chaos soak's plain torch) ---------------------------------------


def record_problems(wheel: Path) -> list[str]:
    """Members whose RECORD row does not give their sha256 and size, or that RECORD does not list; empty: valid."""
    with zipfile.ZipFile(wheel) as zf:
        assert zf.testzip() is None  # every member's CRC
        record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD") and n.count("/") == 1)
        rows = {r[0]: r[1:] for r in csv.reader(io.StringIO(zf.read(record).decode())) if r}
        problems = [f"{n}: not in RECORD" for n in zf.namelist() if n not in rows]
        for path, (digest, size) in rows.items():
            if path == record:
                continue
            data = zf.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            if (digest, size) != (f"sha256={expected}", str(len(data))):
                problems.append(f"{path}: RECORD says {digest},{size}")
    return problems


def installed_version(venv: Path, tools: Tools, project: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({project!r}))"
    return ok(tools.run(python(venv), "-c", code)).strip()


def test_a_relabelled_wheel_installs_by_its_public_version(tmp_path: Path, tools: Tools, pip_venv: Path) -> None:
    files: dict[str, str | bytes] = {"labelled/__init__.py": "VALUE = 7\n", "labelled/data.bin": bytes(range(256)) * 64}
    src = build_wheel(tmp_path / "src", "labelled", "1.2.0+cpu", files=files, tag="py3-none-any")
    copy = relabel_wheel(src, tmp_path / "pypi", "1.2.0")
    assert copy.name == "labelled-1.2.0-py3-none-any.whl"
    with zipfile.ZipFile(copy) as zf, zipfile.ZipFile(src) as zs:
        assert "Version: 1.2.0\n" in zf.read("labelled-1.2.0.dist-info/METADATA").decode()
        assert not [n for n in zf.namelist() if "+cpu" in n]
        assert zf.read("labelled/data.bin") == zs.read("labelled/data.bin")
        assert zf.getinfo("labelled/data.bin").compress_type == zs.getinfo("labelled/data.bin").compress_type
    assert record_problems(copy) == []
    with PackageIndex(root=copy.parent) as index:
        uv_venv = tools.uv_venv()
        assert "+ labelled==1.2.0" in ok(tools.uv_install(uv_venv, "--default-index", index.simple_url(),
                                                           "labelled==1.2.0"))  # fmt: skip
        ok(tools.pip_install(pip_venv, "--index-url", index.simple_url(), "labelled==1.2.0"))
    for venv in (uv_venv, pip_venv):
        assert installed_version(venv, tools, "labelled") == "1.2.0"
        assert ok(tools.run(python(venv), "-c", "import labelled; print(labelled.VALUE)")).strip() == "7"


@pytest.mark.timeout(600)
@pytest.mark.skipif(not list(Path(MACHINE_WHEELS or "/nonexistent").glob("torch-2.13.0+cpu-*.whl")),
                    reason="no torch-2.13.0+cpu wheel in the machine's wheel folder")  # fmt: skip
def test_the_machine_torch_as_pypi_names_it_installs_with_uv_and_pip(
    tmp_path: Path, tools: Tools, pip_venv: Path
) -> None:
    """PyPI carries ``torch==2.13.0``, the PyTorch index ``2.13.0+cpu``: the soak's stand-in PyPI serves a copy."""
    (src,) = Path(MACHINE_WHEELS).glob("torch-2.13.0+cpu-*.whl")
    copy = relabel_wheel(src, tmp_path / "pypi", "2.13.0")
    assert copy.name == src.name.replace("2.13.0+cpu", "2.13.0")
    assert record_problems(copy) == []
    with PackageIndex(root=copy.parent) as index:
        uv_venv = tools.uv_venv()
        out = ok(tools.uv_install(uv_venv, "--no-deps", "--default-index", index.simple_url(), "torch==2.13.0"))
        assert "+ torch==2.13.0" in out and "+cpu" not in out
        ok(tools.pip_install(pip_venv, "--no-deps", "--no-compile", "--index-url", index.simple_url(),
                             "torch==2.13.0"))  # fmt: skip
    for venv in (uv_venv, pip_venv):
        assert installed_version(venv, tools, "torch") == "2.13.0"
    # (importing it needs its dependencies, which --no-deps leaves out; the soak's runs import it in full)


def test_files_are_cacheable_like_pypis_so_pip_fetches_a_wheel_once(
    tmp_path: Path, tools: Tools, pip_venv: Path
) -> None:
    """PyPI's files never change: pip keeps a finished wheel and installs it again without its body (or with a 304)."""
    wheel = build_wheel(tmp_path / "w", "cachedpkg", "1.0", pad_to=256 * 1024)
    with PackageIndex(root=wheel.parent) as index:
        url = index.file_url(wheel.name)
        status, headers, _ = fetch(url)
        assert status == 200 and headers["Cache-Control"] == "max-age=365000000, immutable, public"
        assert fetch(url, {"If-None-Match": headers["ETag"]})[0] == 304
        cache = tmp_path / "pip-cache"  # (pip caches nothing from a plain-http host it does not trust, as stage 0 does)
        argv = [python(pip_venv), "-m", "pip", "install", "--isolated", "--disable-pip-version-check",
                "--cache-dir", cache, "--index-url", index.simple_url(), "--trusted-host", "127.0.0.1",
                "cachedpkg==1.0"]  # fmt: skip
        ok(tools.run(*argv))
        ok(tools.run(python(pip_venv), "-m", "pip", "uninstall", "-y", "cachedpkg"))
        index.requests.clear()
        ok(tools.run(*argv))
        sent = sum(r.body_bytes for r in index.requests if r.path.startswith("/files/"))
    assert sent == 0 and installed_version(pip_venv, tools, "cachedpkg") == "1.0"
