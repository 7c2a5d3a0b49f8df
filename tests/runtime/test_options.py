"""``python -m runtime`` options: A1111 habits, safety of --listen, proxies."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bootstrap.errors import A1111FlagInvalid, ExitCode, LoginInvalid
from runtime.cli import safe_environ
from runtime.errors import ListenWithoutAuth
from runtime.options import parse


def test_defaults_are_local_with_the_api_on() -> None:
    o = parse([], {})
    assert (o.host, o.port, o.api, o.auth, o.vram, o.attention) == ("127.0.0.1", 7860, True, None, "auto", "auto")


def test_a1111_flags_mean_what_they_meant() -> None:
    o = parse(["--xformers", "--medvram", "--no-half", "--port", "7999", "--api", "--autolaunch"], {})
    assert (o.attention, o.vram, o.precision, o.port, o.api, o.open_browser) == (
        "xformers",
        "medvram",
        "full",
        7999,
        True,
        True,
    )
    assert parse(["--lowvram", "--no-browser", "--autolaunch"], {}).open_browser is False


def test_commandline_args_from_the_environment_are_read() -> None:
    o = parse([], {"COMMANDLINE_ARGS": "--lowvram --opt-sdp-attention"})
    assert (o.vram, o.attention) == ("lowvram", "sdpa")


def test_a1111_flags_without_effect_are_named_not_ignored() -> None:
    o = parse(["--no-half-vae", "--theme", "dark", "--share"], {})
    text = " ".join(o.warnings)
    assert "--no-half-vae" in text and "--theme" in text and "--share has no effect here" in text and "tunnel" in text


def test_unknown_flags_are_an_error_naming_them() -> None:
    with pytest.raises(A1111FlagInvalid) as err:
        parse(["--make-it-fast"], {})
    assert "--make-it-fast" in err.value.message("en") and "--make-it-fast" in err.value.message("zh")
    assert err.value.exit_code == ExitCode.USAGE


def test_listen_needs_auth_or_a_loud_override() -> None:
    with pytest.raises(ListenWithoutAuth):
        parse(["--listen"], {})
    o = parse(["--listen", "--auth", "me:pw"], {})
    assert o.host == "0.0.0.0" and o.auth == ("me", "pw")
    assert parse(["--listen", "--insecure-no-auth"], {}).host == "0.0.0.0"


@pytest.mark.parametrize("bad", ["nopassword", ":pw", "me:"])
def test_auth_must_be_user_colon_password(bad: str) -> None:
    with pytest.raises(LoginInvalid) as err:
        parse(["--auth", bad], {})
    assert err.value.exit_code == ExitCode.USAGE and bad not in err.value.message("en")  # a login is never echoed


def test_the_login_comes_from_the_environment_or_a1111_flags(tmp_path: Path) -> None:
    assert parse([], {"YIJIAN_AUTH": "me:pw"}).auth == ("me", "pw")
    assert parse(["--gradio-auth", "a:1"], {}).auth == ("a", "1")
    assert parse(["--api-auth=b:2"], {}).auth == ("b", "2")
    assert parse([], {"COMMANDLINE_ARGS": "--gradio-auth c:3 --xformers"}).auth == ("c", "3")
    logins = tmp_path / "logins.txt"
    logins.write_text("d:4\ne:5\n", encoding="utf-8")
    o = parse(["--gradio-auth-path", str(logins)], {})
    assert o.auth == ("d", "4") and any("only the first (user d)" in w for w in o.warnings)
    assert parse(["--listen"], {"YIJIAN_AUTH": "me:pw"}).host == "0.0.0.0"  # a login by the environment counts
    with pytest.raises(LoginInvalid, match="cannot read the login file"):
        parse(["--gradio-auth-path", str(tmp_path / "missing.txt")], {})


def test_loopback_always_bypasses_the_proxy() -> None:
    env = {"HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "intranet.example"}
    safe_environ(env)
    for key in ("NO_PROXY", "no_proxy"):
        assert {"localhost", "127.0.0.1", "::1"} <= set(env[key].split(","))
    assert "intranet.example" in env["NO_PROXY"]
    assert env["GRADIO_ANALYTICS_ENABLED"] == "False" and env["HF_HUB_OFFLINE"] == "1"


def test_a_socks_proxy_without_socksio_is_dropped_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "socksio", None)  # import socksio now fails
    env = {"ALL_PROXY": "socks5://127.0.0.1:1080", "all_proxy": "socks5h://127.0.0.1:1080"}
    warnings = safe_environ(env)
    assert "ALL_PROXY" not in env and "all_proxy" not in env
    assert warnings and "socksio" in warnings[0]


def test_an_http_all_proxy_is_left_alone() -> None:
    env = {"ALL_PROXY": "http://proxy:3128"}
    assert safe_environ(env) == [] and env["ALL_PROXY"] == "http://proxy:3128"
