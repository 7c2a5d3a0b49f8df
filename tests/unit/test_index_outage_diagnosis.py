"""A torch-index outage is never diagnosed as a Python-version problem (issue 14).

pip answers an unreachable index with "Could not find a version that satisfies the requirement torch==X+cpu
(from versions: none)", which the scanner used to read as PYTHON_VERSION_UNSUPPORTED.  The texts below are real
installer outputs: quoted from public trackers (each with its URL), and produced here by this machine's pip and uv
against a torch index that is down.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.builder.install import installer_env, uv_bin
from launcher.diagnosis import diagnose_installer
from launcher.doctor.scanner import scan
from tests.support.httpbase import free_port
from tests.support.pypi_index import PackageIndex

# https://github.com/pytorch/pytorch/issues/35880 (Windows, pip; TLS unavailable, so no index could be read)
PIP_NO_TLS = """\
ERROR: Could not find a version that satisfies the requirement torch==1.4.0+cpu (from versions: none)
ERROR: No matching distribution found for torch==1.4.0+cpu
WARNING: pip is configured with locations that require TLS/SSL, however the ssl module in Python is not available.
Could not fetch URL https://pypi.org/simple/pip/: There was a problem confirming the ssl certificate: HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded with url: /simple/pip/ (Caused by SSLError("Can't connect to HTTPS URL because the SSL module is not available.")) - skipping
Could not fetch URL https://download.pytorch.org/whl/torch_stable.html: There was a problem confirming the ssl certificate: HTTPSConnectionPool(host='download.pytorch.org', port=443): Max retries exceeded with url: /whl/torch_stable.html (Caused by SSLError("Can't connect to HTTPS URL because the SSL module is not available.")) - skipping
"""

# https://github.com/pytorch/pytorch/issues/51723 (Linux, pip; DNS failure for download.pytorch.org)
PIP_DNS = """\
WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7ff99f4f7970>: Failed to establish a new connection: [Errno -3] Temporary failure in name resolution')': /whl/torch_stable.html
ERROR: Could not find a version that satisfies the requirement torch==1.7.1+cu110
ERROR: No matching distribution found for torch==1.7.1+cu110
"""

# https://github.com/pytorch/pytorch/issues/145983 (uv; the torch index failing)
UV_FETCH = """\
error: Failed to fetch: `https://download.pytorch.org/whl/cu124/pycparser/`
  Caused by: HTTP status server error (500 Internal Server Error) for url (https://download.pytorch.org/whl/cu124/pycparser/)
"""

# https://github.com/astral-sh/uv/issues/8344 (uv; "not found in the package registry" with an index not queried)
UV_NOT_QUERIED = """\
  ╰─▶ Because wheel was not found in the package registry and you require wheel, we can conclude that your requirements are unsatisfiable.

      hint: An index URL (https://download.pytorch.org/whl/cu118) could not be queried due to a lack of valid authenticat
"""

# A wrong-Python case keeps its diagnosis: the index answered, with versions, none for this Python (the format of
# pip's message as in the texts above).
PIP_WRONG_PYTHON = """\
ERROR: Could not find a version that satisfies the requirement torch==2.1.2 (from versions: 2.2.0, 2.2.1, 2.2.2)
ERROR: No matching distribution found for torch==2.1.2
"""


@pytest.mark.parametrize(
    "text", [PIP_NO_TLS, PIP_DNS, UV_FETCH, UV_NOT_QUERIED], ids=["pip-tls", "pip-dns", "uv-fetch", "uv-not-queried"]
)
def test_a_real_index_outage_is_not_a_python_problem(text: str) -> None:
    for lang in ("en", "zh"):
        assert "PYTHON_VERSION_UNSUPPORTED" not in [f.code for f in scan(text, lang)]
    found = diagnose_installer(text)
    assert found is not None and found.id in ("mirror-unreachable", "tls-intercepted"), found


def test_the_old_diagnosis_still_holds_for_a_wrong_python() -> None:
    assert [f.code for f in scan(PIP_WRONG_PYTHON)] == ["PYTHON_VERSION_UNSUPPORTED"]


def _run(argv: list[str], tmp_path: Path) -> str:
    env = installer_env({"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "UV_CACHE_DIR": str(tmp_path / "uv")})
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0
    return out.stdout + out.stderr


@pytest.mark.slow
def test_this_machines_pip_and_uv_with_the_torch_index_down(package_index: PackageIndex, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/whl/cpu/simple"
    pip = _run([sys.executable, "-m", "pip", "download", "--isolated", "--no-deps", "--retries", "0", "-d", str(tmp_path / "d"),
                "--index-url", package_index.simple_url(), "--extra-index-url", dead, "torch==2.13.0+cpu"], tmp_path)  # fmt: skip
    assert "No matching distribution found for torch==2.13.0+cpu" in pip and "(from versions:" in pip
    outputs = [pip]
    uv = uv_bin()
    if uv is not None:
        outputs.append(_uv_compile(uv, package_index.simple_url(), dead, tmp_path))
    for text in outputs:
        assert "PYTHON_VERSION_UNSUPPORTED" not in [f.code for f in scan(text)], text
    # pip says nothing about the dead index (a connection error is not shown without retries): the local label
    # that no listed version carries is the clue.  uv names the index that failed.
    assert getattr(diagnose_installer(pip), "id", None) == "torch-index-not-read", pip
    if len(outputs) > 1:
        assert getattr(diagnose_installer(outputs[1]), "id", None) == "mirror-unreachable", outputs[1]


def _uv_compile(uv: Path, pypi: str, dead: str, tmp_path: Path) -> str:
    req = tmp_path / "req.txt"
    req.write_text("torch==2.13.0+cpu\n", encoding="utf-8")
    return _run([str(uv), "pip", "compile", "--no-config", "--no-header", str(req), "--default-index", pypi,
                 "--index", f"pytorch={dead}"], tmp_path)  # fmt: skip
