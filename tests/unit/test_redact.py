"""The one redaction layer (bootstrap/redact.py): every kind of secret, known values, and ordinary text left alone."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from bootstrap import redact as r
from bootstrap.login import take_login_flags


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    r.forget_all()
    yield
    r.forget_all()


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("yijian launch --auth alice:Pw1234 --port 7861", "Pw1234"),
        ("python -m runtime --auth=alice:Pw1234", "Pw1234"),
        ('COMMANDLINE_ARGS="--xformers --gradio-auth bob:Pw1234,carol:Qz9876"', "Qz9876"),
        ("--api-auth 'api:Pw1234'", "Pw1234"),
        ('[launch]\nauth = "carol:Pw1234"\n', "Pw1234"),
        ('{"auth": "carol:Pw1234", "port": 7860}', "Pw1234"),
        ("yijian config set launch.auth carol:Pw1234", "Pw1234"),
        ("yijian config set downloads.civitai_token 0123456789abcdef0123456789abcdef", "0123456789abcdef"),
        ('[downloads]\ncivitai_token = "0123456789abcdef0123456789abcdef"', "0123456789abcdef"),
        ("HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUvWxYz1234", "AbCdEfGhIjKl"),
        ("using token hf_AbCdEfGhIjKlMnOpQrStUvWxYz1234 for the download", "AbCdEfGhIjKl"),
        ("CIVITAI_API_TOKEN=zq81mm2", "zq81mm2"),
        ("MODELSCOPE_API_TOKEN: ms-9a8b7c6d", "ms-9a8b7c6d"),
        ("proxy = http://dave:Px5ecret@127.0.0.1:7890", "Px5ecret"),
        ("ALL_PROXY=socks5h://dave:Px5ecret@proxy.lan:1080", "Px5ecret"),
        ("Looking in indexes: https://bob:pw4mirror@mirror.example/simple", "pw4mirror"),
        ("Authorization: Basic YWxpY2U6UHcxMjM0", "YWxpY2U6UHcxMjM0"),
        ("authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGci"),
        ("curl -H 'X: 1' then Bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGci"),
        ("sent Basic YWxpY2U6UHcxMjM0", "YWxpY2U6UHcxMjM0"),
        ("{'Authorization': 'token abcd1234efgh'}", "abcd1234efgh"),
        ("GET https://civitai.com/api/download/models/1?token=zzz987654&type=Model", "zzz987654"),
        ("GET /file?type=Model&api_key=zzz987654 200", "zzz987654"),
    ],
)
def test_each_shape_is_masked(text: str, secret: str) -> None:
    out = r.redact(text)
    assert secret not in out, out
    assert r.MASK in out


def test_what_is_around_a_secret_stays() -> None:
    assert r.redact("yijian launch --auth alice:Pw1234 --port 7861") == "yijian launch --auth *** --port 7861"
    assert r.redact("proxy http://dave:pw@127.0.0.1:7890/x") == "proxy http://***@127.0.0.1:7890/x"
    assert r.redact("GET /d?token=abc123&type=Model") == "GET /d?token=***&type=Model"
    assert r.redact("Authorization: Bearer abcdefghijkl") == "Authorization: Bearer ***"


def test_known_values_are_masked_whatever_their_shape_and_encoding() -> None:
    token = "9f86d081884c7d659a2feaa0c55ad015"  # a Civitai key looks like a hash: no pattern can know it
    r.remember(token, "carol:Pw!x y", None, "")
    text = (
        f"downloaded with {token}; url-encoded {quote(token)}; login Pw!x y; "
        f"{quote('Pw!x y', safe='')}; header {base64.b64encode(b'carol:Pw!x y').decode()}"
    )
    out = r.redact(text)
    for leaked in (token, "Pw!x y", quote("Pw!x y", safe=""), base64.b64encode(b"carol:Pw!x y").decode()):
        assert leaked not in out
    assert out.startswith("downloaded with ***")
    assert r.redact("sha256 of a file", extra=["file"]) == "sha256 of a ***"  # extra values for one call


def test_the_environment_and_the_command_line_are_remembered() -> None:
    r.remember_environ({"CIVITAI_TOKEN": "plainvalue77", "HTTPS_PROXY": "http://bob:p%40ss99@127.0.0.1:9",
                        "HF_TOKEN": "hfplain1234", "PATH": "/usr/bin",
                        "COMMANDLINE_ARGS": "--xformers --gradio-auth 'u:cmdargs55'"})  # fmt: skip
    r.remember_argv(["launch", "--gradio-auth", "u:argvpw1,v:argvpw2", "config", "set", "downloads.civitai_token",
                     "argvtok9", "network.proxy", "http://d:argvpx7@h:1"])  # fmt: skip
    out = r.redact("plainvalue77 p@ss99 hfplain1234 argvpw1 argvpw2 argvtok9 argvpx7 cmdargs55 /usr/bin")
    assert out == "*** *** *** *** *** *** *** *** /usr/bin"


def test_short_known_values_do_not_mask_ordinary_words() -> None:
    r.remember("a:b", "abc")
    assert r.redact("a bad cab, abcd") == "a bad cab, abcd"
    assert r.redact("--auth a:b") == "--auth ***"  # the labelled form is still masked


def test_ordinary_text_is_left_alone() -> None:
    lines = [
        "Running on local URL:  http://127.0.0.1:7860",
        "Loading weights from models/Stable-diffusion/v1-5-pruned-emaonly.safetensors (sha256 6ce0161689b3)",
        "tokenizer=CLIPTokenizer max_tokens=77 author: John",
        "insecure_no_auth = false",
        '{"auth": "", "listen": false}',
        "--listen lets anyone on the network use this computer; it needs a login too (--auth user:password or launch.auth).",
        "git@github.com:owner/repo.git and ssh://git@host/x",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB",
        "Set a login (auth, as user:password) before listening on the network.",
        "INFO:     127.0.0.1:50312 - \"POST /sdapi/v1/txt2img HTTP/1.1\" 200 OK",
        "Authorization: ***",
        "Basic settings and basic information; the bearer of a message",
    ]  # fmt: skip
    for line in lines:
        out = r.redact(line)
        expected = line.replace("--auth user:password", "--auth ***")  # a flag's value is always masked
        assert out == expected


def test_the_home_folder_becomes_tilde_and_other_users_lose_their_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/alicewang")
    out = r.redact("/home/alicewang/yijian/models and /home/bob/x and C:\\Users\\carol\\Desktop and /Users/dan/a")
    assert out == "~/yijian/models and /home/<user>/x and C:\\Users\\<user>\\Desktop and /Users/<user>/a"
    monkeypatch.setenv("HOME", "/home/ai")
    assert r.redact("/home/ai/x /home/aiden/y /home/ai") == "~/x /home/<user>/y ~"


def test_a_logging_formatter_masks_messages_arguments_and_tracebacks() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    logger = logging.getLogger("test.redact")
    handler = Keep()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    r.redact_handlers(logger)
    r.remember("tok3nvalue")
    try:
        logger.info("yijian %s", "launch --auth a:Pw1234")
        try:
            raise ValueError("bad tok3nvalue")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert records[0] == "INFO yijian launch --auth ***"
    assert "tok3nvalue" not in records[1] and "ValueError: bad ***" in records[1]


def test_login_flags_leave_the_arguments(tmp_path: os.PathLike[str]) -> None:
    file = os.path.join(tmp_path, "logins.txt")
    with open(file, "w", encoding="utf-8") as fh:
        fh.write("f:6\n")
    rest, logins = take_login_flags(["--xformers", "--gradio-auth", "a:1,b:2", "--api-auth=c:3", "--auth", "d:4",
                                     "--gradio-auth-path", file, "--insecure-no-auth", "--medvram"])  # fmt: skip
    assert rest == ["--xformers", "--insecure-no-auth", "--medvram"]
    assert logins == ["a:1", "b:2", "c:3", "d:4", "f:6"]
