"""A1111's flags: the 1.10 table, reading flags as A1111's argparse does, webui-user files, the launcher's gathering.

The reading is checked against argparse itself (A1111 parses with it): a parser declared from the table the way
A1111 declares its flags (store_true, type=int, nargs="+", action="append", choices) must read every command line
here the same, abbreviations, ``=`` values and repeats included, and refuse the same ones.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from bootstrap.a1111_flags import (
    YIJIAN_FLAGS,
    commandline_args,
    expand_names,
    flag_report,
    parse_flags,
    read_webui_user,
    split_windows,
    table,
)
from bootstrap.errors import A1111FlagInvalid, ExitCode
from bootstrap.layout import Bundle
from bootstrap.login import LOGIN_ENV
from launcher.runtime_process import LaunchOptions, add_webui_user, argv_for, login_environ, take_logins
from tests.unit import test_runtime_login as login_tests

# Flags that exist only since A1111 1.6-1.10: the table is 1.10's, not an older cmd_args.py.
NEW_IN_1_10 = ("--api-server-stop", "--timeout-keep-alive", "--disable-all-extensions", "--use-ipex", "--models-dir",
               "--skip-load-model-at-start", "--unix-filenames-sanitization", "--filenames-max-length",
               "--no-prompt-history", "--disable-extra-extensions", "--log-startup", "--add-stop-route",
               "--no-download-sd-model", "--medvram-sdxl", "--dat-models-path", "--freeze-specific-settings")  # fmt: skip


def test_the_table_is_a1111_1_10s() -> None:
    flags = table().flags
    assert set(NEW_IN_1_10) <= set(flags)
    assert table().flags["--precision"].choices == ("full", "half", "autocast")  # "half" came with 1.10
    assert "--local-hash-path" not in flags and "--ngrok-static-domain" not in flags  # the forks' own
    for f in flags.values():  # argparse's rule for the attribute name, and a reason for every flag without effect
        assert f.dest == f.name.lstrip("-").replace("-", "_")
        assert f.takes in ("none", "one", "many", "append")
        assert (f.effect == "none") == bool(f.why) and f.effect in ("mapped", "none")
        if f.why:
            assert table().reason(f, "zh") and table().reason(f, "en").strip(".") == table().reason(f, "en")


def test_the_table_reads_the_same_on_python_3_10() -> None:
    import tomllib

    from bootstrap.a1111_flags import TABLE_FILE
    from bootstrap.tomlread import loads_subset

    text = TABLE_FILE.read_text(encoding="utf-8")
    assert loads_subset(text) == tomllib.loads(text)  # the runtime's Python may be 3.10, with no tomllib


def test_the_report_counts_every_flag_accepted() -> None:
    total, mapped, none, refused = flag_report()
    assert (total, refused) == (126, 0) and mapped + none == total and mapped >= 45


def reference_parser() -> argparse.ArgumentParser:
    """The table declared to argparse as A1111 declares its flags."""
    p = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    for f in table().flags.values():
        kw: dict[str, Any] = {"dest": f.dest, "default": None}
        if f.takes == "none":
            kw["action"] = "store_true"
        elif f.takes == "many":
            kw.update(nargs="+", type=str.lower)
        elif f.takes == "append":
            kw["action"] = "append"
        else:
            kw["type"] = int if f.type == "int" else str
            if f.choices:
                kw["choices"] = f.choices
        p.add_argument(f.name, **kw)
    return p


def ours(argv: list[str]) -> dict[str, Any]:
    return {g.flag.dest: g.value for g in parse_flags(argv).given.values()}


def theirs(argv: list[str]) -> dict[str, Any]:
    ns = reference_parser().parse_args(argv)
    return {k: v for k, v in vars(ns).items() if v not in (None, False)}


SAMPLE = {"int": "7", "json": '{"a": 1}', "choice": None}


def sample_argv(name: str) -> list[str]:
    f = table().flags[name]
    if not f.takes_value:
        return [name]
    value = f.choices[0] if f.choices else SAMPLE.get(f.type) or "D:/some folder"
    return [name, value] if f.takes != "many" else [name, "sd", "ESRGAN"]


@pytest.mark.parametrize("name", sorted(table().flags))
def test_every_flag_reads_as_argparse_reads_it(name: str) -> None:
    argv = [*sample_argv(name), "--xformers"]  # a value-taking flag takes its value and leaves the next flag
    got = ours(argv)
    if table().flags[name].type == "json":
        assert got == {"xformers": True, table().flags[name].dest: {"a": 1}}
        return
    assert got == theirs(argv)
    assert got["xformers"] is True


@pytest.mark.parametrize(
    "argv",
    [
        ["--xformers", "--medvram", "--port", "7861", "--ckpt-dir", "D:/x", "--api"],
        ["--use-cpu", "SD", "Interrogate", "--xformers"],
        ["--styles-file", "a.csv", "--styles-file=b.csv"],
        ["--port=7000", "--port", "7001"],
        ["--lyco-dir", "L", "--medvram-s", "--api-server-s", "--timeout-keep", "60"],
        ["--precision", "half", "--device-id", "1", "--cors-allow-origins=http://a,http://b"],
        ["--port", "-1"],
    ],
)
def test_command_lines_read_as_argparse_reads_them(argv: list[str]) -> None:
    assert ours(argv) == theirs(argv)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--opt-s"], "--opt-s"),  # ambiguous: --opt-sdp-attention, --opt-split-attention …
        (["--port", "x"], "--port"),
        (["--xformers=1"], "--xformers"),
        (["--port"], "--port"),
        (["--medvrem"], "--medvram"),  # unknown: the nearest is named
        (["--xformers", "stray"], "stray"),
        (["--precision", "double"], "--precision"),
    ],
)
def test_what_argparse_refuses_is_refused_naming_the_flag(argv: list[str], named: str) -> None:
    with pytest.raises((SystemExit, argparse.ArgumentError)):
        reference_parser().parse_args(argv)
    with pytest.raises(A1111FlagInvalid) as err:
        parse_flags(argv)
    assert named in err.value.message("en") and named in err.value.message("zh")
    assert err.value.exit_code == ExitCode.USAGE


def test_the_runtimes_own_flags_pass_through_in_full() -> None:
    parsed = parse_flags(["--allow-ck", "--model", "x.safetensors", "--medvram", "--vram=lowvram", "--lan", "zh"],
                         YIJIAN_FLAGS)  # fmt: skip
    assert parsed.rest == ["--allow-ckpt", "--model", "x.safetensors", "--vram=lowvram", "--lang", "zh"]
    assert list(parsed.given) == ["--medvram"]
    assert expand_names(["--model", "m", "--gradio-auth-p", "f", "--mystery", "--allow-c"]) == [
        "--model", "m", "--gradio-auth-path", "f", "--mystery", "--allow-c",
    ]  # fmt: skip
    with pytest.raises(A1111FlagInvalid, match="--allow-ckpt, --allow-code"):  # A1111 has --allow-code
        parse_flags(["--allow-c"], YIJIAN_FLAGS)


def test_windows_command_lines_keep_their_backslashes() -> None:
    assert split_windows(r'--ckpt-dir D:\models --vae-path "D:\AI models\vae.pt" --x ""') == [
        "--ckpt-dir", r"D:\models", "--vae-path", r"D:\AI models\vae.pt", "--x", "",
    ]  # fmt: skip
    assert commandline_args({"COMMANDLINE_ARGS": r"--ckpt-dir D:\m"}, windows=True) == ["--ckpt-dir", r"D:\m"]
    assert commandline_args({"COMMANDLINE_ARGS": "--ckpt-dir '/a b'"}, windows=False) == ["--ckpt-dir", "/a b"]
    with pytest.raises(A1111FlagInvalid, match="unbalanced"):
        commandline_args({"COMMANDLINE_ARGS": "--theme 'dark"}, windows=False)


# The webui-user.bat A1111 ships, as a user edits it (CRLF, a comment, an appended line).
WEBUI_USER_BAT = (
    "@echo off\r\n\r\nset PYTHON=C:\\Python310\\python.exe\r\nset GIT=\r\nset VENV_DIR=\r\n"
    'set COMMANDLINE_ARGS=--xformers --medvram --ckpt-dir "D:\\AI models\\ckpt"\r\n'
    "rem set COMMANDLINE_ARGS=--lowvram\r\n"
    "set COMMANDLINE_ARGS=%COMMANDLINE_ARGS% --api --gradio-auth amy:PwBat1\r\n"
    "set PYTORCH_CUDA_ALLOC_CONF=garbage_collection_threshold:0.6,max_split_size_mb:128\r\n\r\ncall webui.bat\r\n"
)
WEBUI_USER_SH = """#!/bin/bash
#########################################################
# Uncomment and change the variables below to your need:#
#########################################################

# Install directory without trailing slash
#install_dir="/home/$(whoami)"

# Commandline arguments for webui.py, for example: export COMMANDLINE_ARGS="--medvram --opt-split-attention"
export COMMANDLINE_ARGS="--medvram --opt-split-attention --ckpt-dir '/srv/sd models' --api-auth bo:PwSh1"

# python3 executable
#python_cmd="python3"
export TORCH_COMMAND="pip install torch==2.1.2"
export CUDA_VISIBLE_DEVICES=1
"""


def test_a_webui_user_bat_from_an_a1111_install(tmp_path: Path) -> None:
    path = tmp_path / "webui-user.bat"
    path.write_bytes(WEBUI_USER_BAT.encode())
    found = read_webui_user(path)
    assert found.args == ["--xformers", "--medvram", "--ckpt-dir", r"D:\AI models\ckpt", "--api", "--gradio-auth",
                          "amy:PwBat1"]  # fmt: skip
    assert found.environ == {"PYTORCH_CUDA_ALLOC_CONF": "garbage_collection_threshold:0.6,max_split_size_mb:128"}
    assert found.ignored == ["PYTHON"]  # set GIT= (empty) changes nothing either way
    assert "PYTHON" in (found.warning("en") or "") and "PYTHON" in (found.warning("zh") or "")


def test_a_webui_user_sh_from_an_a1111_install(tmp_path: Path) -> None:
    path = tmp_path / "webui-user.sh"
    path.write_text(WEBUI_USER_SH, encoding="utf-8")
    found = read_webui_user(path)
    assert found.args == ["--medvram", "--opt-split-attention", "--ckpt-dir", "/srv/sd models", "--api-auth",
                          "bo:PwSh1"]  # fmt: skip
    assert found.environ == {"CUDA_VISIBLE_DEVICES": "1"} and found.ignored == ["TORCH_COMMAND"]


def test_a_missing_webui_user_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(A1111FlagInvalid) as err:
        read_webui_user(tmp_path / "webui-user.bat")
    assert "webui-user.bat" in err.value.message("en")


bundle = login_tests.bundle  # a bundle with a runtime interpreter in place, as the login tests use


def test_the_launcher_gathers_every_source_in_order_and_keeps_logins_off_the_argv(
    bundle: Bundle, tmp_path: Path
) -> None:
    from runtime.options import parse

    bat = tmp_path / "webui-user.bat"
    bat.write_bytes(WEBUI_USER_BAT.encode())
    options = LaunchOptions(
        saved_args=["--lowvram", "--port", "7001"], passthrough=["--api-au", "cy:PwCli1", "--no-half"]
    )
    assert add_webui_user(options, str(bat), "en")
    environ = {"COMMANDLINE_ARGS": "--port 7002 --opt-sdp-attention"}
    take_logins(options, environ)
    argv = argv_for(bundle, options)
    env = login_environ(options, {"PATH": "/usr/bin", **options.extra_environ})
    assert env[LOGIN_ENV] == "cy:PwCli1" and "Pw" not in " ".join(argv) and "auth" not in " ".join(argv)
    assert env["PYTORCH_CUDA_ALLOC_CONF"].startswith("garbage_collection")
    # launch.args < COMMANDLINE_ARGS < webui-user < after --
    assert (
        argv.index("--lowvram") < argv.index("--opt-sdp-attention") < argv.index("--xformers") < argv.index("--no-half")
    )
    seen = parse(argv[argv.index("runtime") + 1 :], env)
    # the last --port wins; --lowvram beats --medvram wherever it stands, as in A1111
    assert (seen.port, seen.vram, seen.attention, seen.precision) == (7002, "lowvram", "xformers", "full")
    assert seen.auth == ("cy", "PwCli1") and seen.api is True


def test_the_launcher_refuses_an_unknown_flag_before_a_runtime_starts(bundle: Bundle) -> None:
    with pytest.raises(A1111FlagInvalid, match="--medvram"):
        take_logins(LaunchOptions(passthrough=["--medvrm"]), {})
    with pytest.raises(A1111FlagInvalid, match="COMMANDLINE_ARGS"):
        take_logins(LaunchOptions(), {"COMMANDLINE_ARGS": "--theme 'dark"})


def test_launch_args_in_the_config_are_checked_and_refuse_a_login() -> None:
    from launcher.config import BY_KEY
    from launcher.mirrors.catalog import Catalog

    check = BY_KEY["launch.args"].check
    assert check is not None
    catalog: Any = Catalog.__new__(Catalog)
    assert check("--xformers --medvram --ckpt-dir /x", catalog) is None
    problem = check("--xformers --api-a ann:PwCfg1", catalog)
    assert problem is not None and "launch.auth" in problem[1] and "PwCfg1" not in " ".join(problem)
    problem = check("--medvrm", catalog)
    assert problem is not None and "--medvram" in problem[1]


def test_start_hands_the_flags_after_dashdash_and_the_webui_user_file_to_one_click(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from launcher.cli import main

    seen: dict[str, Any] = {}

    class Flow:  # one-click start itself is tested in tests/functional/test_oneclick.py
        def __init__(self, bundle: Bundle, lang: str, on_update: Any, options: Any, **kw: Any) -> None:
            seen["options"] = options

        def run(self) -> None:
            raise KeyboardInterrupt

        def stop(self) -> None:
            seen["stopped"] = True

    monkeypatch.setattr("launcher.oneclick.OneClick", Flow)
    monkeypatch.setattr("launcher.cli.setup_logging", lambda bundle: None)  # the process's logging stays as it is
    monkeypatch.setenv("YIJIAN_HOME", str(tmp_path))
    bat = tmp_path / "webui-user.bat"
    assert main(["--lang", "en", "start", "--webui-user", str(bat), "--", "--xformers", "--medvram"]) == 0
    assert seen["options"].passthrough == ("--xformers", "--medvram") and seen["options"].webui_user == str(bat)
    assert seen["stopped"]


def test_an_ngrok_token_never_reaches_the_runtimes_argv_or_a_log(bundle: Bundle) -> None:
    from bootstrap.redact import forget_all, redact

    token = "2NgRokT0kenAbCdEf123"
    options = LaunchOptions(passthrough=["--ngrok", token, "--xformers", f'--ngrok-options={{"authtoken":"{token}"}}'])
    try:
        take_logins(options, {})
        argv = argv_for(bundle, options)
        assert token not in " ".join(argv) and "--ngrok" not in argv and "--xformers" in argv
        assert options.a1111.has("--ngrok") and options.a1111.has("--ngrok-options")  # still named as no effect
        assert token not in redact(f"ngrok said {token}")
    finally:
        forget_all()


@pytest.mark.parametrize(
    ("name", "text", "args"),
    [
        ("webui-user.bat", 'SET "COMMANDLINE_ARGS=--xformers --theme dark"\r\n', ["--xformers", "--theme", "dark"]),
        ("webui-user.bat", "set COMMANDLINE_ARGS=\r\n:: set COMMANDLINE_ARGS=--lowvram\r\n", []),
        ("webui-user.bat", "set COMMANDLINE_ARGS=--api\r\nset COMMANDLINE_ARGS=%COMMANDLINE_ARGS% --nowebui\r\n",
         ["--api", "--nowebui"]),
        ("webui-user.sh", "COMMANDLINE_ARGS='--medvram'\nCOMMANDLINE_ARGS=\"$COMMANDLINE_ARGS --api\"\n",
         ["--medvram", "--api"]),
        ("webui-user.sh", '#export COMMANDLINE_ARGS="--lowvram"\nexport COMMANDLINE_ARGS="${COMMANDLINE_ARGS}"\n', []),
    ],
)  # fmt: skip
def test_webui_user_spellings(tmp_path: Path, name: str, text: str, args: list[str]) -> None:
    path = tmp_path / name
    path.write_bytes(text.encode())
    assert read_webui_user(path).args == args
