"""A private mirror's password reaches pip and uv by a private netrc file, never by their command line or the log."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from bootstrap import proc
from bootstrap.builder import install
from bootstrap.credentials import Login, installer_credentials, split_login, strip_logins
from tests.support.plugin_index import Wheelhouse
from tests.support.pypi_index import PackageIndex

USER, PASSWORD = "team", "p@ss:w/rd-9F3k"
QUOTED = "p%40ss%3Aw%2Frd-9F3k"  # the password as it stands in a URL


@pytest.mark.parametrize(
    ("arg", "clean"),
    [
        (f"https://{USER}:{QUOTED}@pypi.example.cn/simple", "https://pypi.example.cn/simple"),
        (f"pytorch=https://{USER}:{QUOTED}@mirror.example.cn:8443/whl/cu128",
         "pytorch=https://mirror.example.cn:8443/whl/cu128"),
        ("https://pypi.tuna.tsinghua.edu.cn/simple", "https://pypi.tuna.tsinghua.edu.cn/simple"),
        ("--no-index", "--no-index"),
        ("torch==2.10.0", "torch==2.10.0"),
    ],
)  # fmt: skip
def test_every_url_on_the_command_line_loses_its_login(arg: str, clean: str) -> None:
    argv, logins = strip_logins(["uv", "pip", "install", "--index", arg])
    assert argv == ["uv", "pip", "install", "--index", clean]
    if clean != arg:
        assert logins and logins[0].user == USER and logins[0].password == PASSWORD


def test_one_login_per_host_and_none_for_what_netrc_cannot_hold() -> None:
    argv = [f"https://{USER}:{QUOTED}@a.example/simple", f"https://{USER}:{QUOTED}@a.example/flat/"]
    assert strip_logins(argv)[1] == [Login("a.example", USER, PASSWORD)]
    spaced = "https://me:two%20words@b.example/simple"  # netrc splits on spaces: left on the URL (and redacted)
    assert split_login(spaced) == (spaced, None)
    assert split_login("https://b.example/simple") == ("https://b.example/simple", None)


def test_the_netrc_file_is_private_and_gone_afterwards() -> None:
    with installer_credentials([f"https://{USER}:{QUOTED}@a.example/simple"], {"PATH": "x"}) as (argv, env):
        path = Path(env["NETRC"])
        assert argv == ["https://a.example/simple"] and env["PATH"] == "x"
        assert path.read_text(encoding="utf-8") == f"machine a.example\nlogin {USER}\npassword {PASSWORD}\n"
        if os.name == "posix":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not path.exists() and not path.parent.exists()


def _installers(tmp_path: Path) -> dict[str, list[str]]:
    uv = install.uv_bin()
    found: dict[str, list[str]] = {
        "pip": [sys.executable, "-m", "pip", "install", "--isolated", "--disable-pip-version-check", "--no-input",
                "--no-cache-dir", "--target", str(tmp_path / "pip-target")],
    }  # fmt: skip
    if uv is not None:
        found["uv"] = [str(uv), "pip", "install", "--no-config", "--no-cache", "--target", str(tmp_path / "uv-target")]
    return found


@pytest.mark.parametrize("tool", ["pip", "uv"])
def test_pip_and_uv_install_from_a_private_mirror_without_the_password_on_their_command_line(
    tool: str, tmp_path: Path, wheelhouse: Wheelhouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _installers(tmp_path).get(tool)
    if base is None:
        pytest.skip("uv is not installed in this environment")
    started: list[list[str]] = []
    real_start = proc.start

    def spy(argv: Any, **kw: Any) -> Any:
        started.append([str(a) for a in argv])
        return real_start(argv, **kw)

    monkeypatch.setattr(proc, "start", spy)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "NETRC"))}
    env["HOME"] = str(tmp_path)  # no ~/.netrc of the machine's
    log = tmp_path / "install.log"
    with PackageIndex(root=wheelhouse.pypi) as index:
        index.faults.login = (USER, PASSWORD)
        url = index.simple_url().replace("http://", f"http://{USER}:{QUOTED}@")
        flag = "--index-url" if tool == "pip" else "--default-index"
        if tool == "pip":
            base += ["--trusted-host", "127.0.0.1"]
        assert install.run_logged([*base, flag, url, "tinypkg==1.0"], env, log) == 0, log.read_text()
        # the same command with a wrong password is refused: the mirror really wants the login
        wrong = url.replace(QUOTED, "nope")
        assert install.run_logged([*base, flag, wrong, "tinypkg==1.0", "--reinstall" if tool == "uv" else
                                   "--force-reinstall"], env, log) != 0  # fmt: skip
    assert (tmp_path / f"{tool}-target" / "tinypkg").is_dir()
    assert started and all(PASSWORD not in a and QUOTED not in a for argv in started for a in argv)
    text = log.read_text(encoding="utf-8")
    assert PASSWORD not in text and QUOTED not in text
    shutil.rmtree(tmp_path / f"{tool}-target")
