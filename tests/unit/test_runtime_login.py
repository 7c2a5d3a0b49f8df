"""The login on its way from the launcher to the runtime: out of the argv, into YIJIAN_AUTH; and --allow-ckpt."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap.errors import LoginInvalid
from bootstrap.layout import Bundle
from bootstrap.login import LOGIN_ENV
from launcher.cli.parser import build_parser
from launcher.runtime_process import LaunchOptions, argv_for, login_environ, take_logins
from runtime.options import parse


@pytest.fixture
def bundle(tmp_path: Path) -> Bundle:
    python = tmp_path / "env" / "runtime" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    return Bundle(root=tmp_path)


def runtime_sees(bundle: Bundle, options: LaunchOptions, environ: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The child's argv and environment, as start() builds them."""
    take_logins(options, environ)
    env = login_environ(options, {"PATH": "/usr/bin"})
    return argv_for(bundle, options), env


@pytest.mark.parametrize(
    ("options", "environ", "login"),
    [
        (LaunchOptions(auth="alice:PwCli1"), {}, "alice:PwCli1"),  # --auth, or launch.auth from config
        (LaunchOptions(passthrough=["--xformers", "--gradio-auth", "dan:PwPass1"]), {}, "dan:PwPass1"),
        (LaunchOptions(passthrough=["--api-auth=dan:PwPass1"], auth="carol:PwCfg1"), {}, "dan:PwPass1"),
        (LaunchOptions(), {"COMMANDLINE_ARGS": "--medvram --gradio-auth erin:PwEnv1"}, "erin:PwEnv1"),
        (LaunchOptions(auth="carol:PwCfg1"), {"COMMANDLINE_ARGS": "--gradio-auth erin:PwEnv1"}, "carol:PwCfg1"),
    ],
)
def test_every_login_goes_by_the_environment_never_the_argv(
    bundle: Bundle, options: LaunchOptions, environ: dict[str, str], login: str
) -> None:
    argv, env = runtime_sees(bundle, options, environ)
    assert env[LOGIN_ENV] == login
    assert not [a for a in argv if "Pw" in a or "auth" in a], argv
    assert "--xformers" in argv or "--xformers" not in options.passthrough  # other A1111 flags still go through
    ns = parse(argv[argv.index("runtime") + 1 :], env)  # and the runtime, given both, logs in with it
    assert ns.auth == tuple(login.split(":"))


def test_no_login_no_variable_and_a_stale_one_is_removed(bundle: Bundle) -> None:
    options = LaunchOptions()
    take_logins(options, {})
    assert LOGIN_ENV not in login_environ(options, {LOGIN_ENV: "old:login"})


def test_a_malformed_login_is_refused_before_a_runtime_starts_without_echoing_it() -> None:
    with pytest.raises(LoginInvalid) as err:
        take_logins(LaunchOptions(auth="JustAPassw0rd"), {})
    assert "JustAPassw0rd" not in err.value.message("en") + err.value.hint("en")


def test_a_login_from_a_file_is_read_by_the_launcher(bundle: Bundle, tmp_path: Path) -> None:
    file = tmp_path / "logins.txt"
    file.write_text("gina:PwFile1\n", encoding="utf-8")
    argv, env = runtime_sees(bundle, LaunchOptions(passthrough=["--gradio-auth-path", str(file)]), {})
    assert env[LOGIN_ENV] == "gina:PwFile1" and str(file) not in argv


def test_the_allow_ckpt_hint_names_a_command_that_reaches_the_runtime(bundle: Bundle) -> None:
    from runtime.errors import PickleNotAllowed

    hint = PickleNotAllowed("x.ckpt").hint("en")
    assert "./start.sh launch -- --allow-ckpt" in hint
    args = build_parser("en").parse_args(["launch", "--", "--allow-ckpt"])
    options = LaunchOptions(passthrough=[a for a in args.runtime_args if a != "--"])  # as launch_cmd.options_from
    argv, env = runtime_sees(bundle, options, {})
    assert parse(argv[argv.index("runtime") + 1 :], env).allow_ckpt is True
