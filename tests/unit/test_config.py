"""config.toml: every problem reported with its line; nothing invalid saved; comments kept."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bootstrap.layout import Bundle
from launcher import config
from launcher.errors import ConfigInvalid, ConfigUnreadable, UsageError


@pytest.fixture
def bundle(sealed) -> Bundle:  # type: ignore[no-untyped-def]
    return Bundle.locate()


def write(bundle: Bundle, text: str) -> Path:
    bundle.config_file.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return bundle.config_file


def test_no_file_means_every_default(bundle: Bundle) -> None:
    cfg = config.load(bundle)
    assert cfg["launch.port"] == 7860
    assert cfg["mirrors.pypi"] == "auto"
    assert cfg.user_keys == frozenset()
    assert config.check(bundle) == []


def test_user_values_layer_over_defaults(bundle: Bundle) -> None:
    write(
        bundle,
        """
        [launch]
        port = 7861
        [mirrors]
        pypi = "tuna"
        [network]
        probe_timeout = 2
    """,
    )
    cfg = config.load(bundle)
    assert cfg["launch.port"] == 7861
    assert cfg["mirrors.pypi"] == "tuna"
    assert cfg["network.probe_timeout"] == 2.0 and isinstance(cfg["network.probe_timeout"], float)
    assert cfg["launch.listen"] is False
    assert cfg.user_keys == {"launch.port", "mirrors.pypi", "network.probe_timeout"}


BROKEN = """
    # my settings
    [launch]
    port = "7860"
    vram = "medvarm"
    lisen = true

    [mirrors]
    pypi = "tsinghua"
    huggingface = "hf-mirorr"

    [netwrk]
    proxy = "x"

    [network]
    proxy = "127.0.0.1:7890"
    probe_timeout = 100

    [downloads]
    connections = 0
"""


def test_every_problem_is_reported_with_line_and_hint(bundle: Bundle) -> None:
    write(bundle, BROKEN)
    problems = config.check(bundle)
    got = {(p.key, p.line) for p in problems}
    assert got == {
        ("launch.port", 3),
        ("launch.vram", 4),
        ("launch.lisen", 5),
        ("mirrors.pypi", 8),
        ("mirrors.huggingface", 9),
        ("netwrk", 11),
        ("network.proxy", 15),
        ("network.probe_timeout", 16),
        ("downloads.connections", 19),
    }
    by_key = {p.key: p for p in problems}
    assert "Did you mean 'medvram'" in by_key["launch.vram"].message("en")
    assert "你是不是想写「medvram」" in by_key["launch.vram"].message("zh")
    assert "Did you mean 'listen'" in by_key["launch.lisen"].message("en")
    assert "Did you mean [network]" in by_key["netwrk"].message("en")
    assert "Did you mean 'hf-mirror'" in by_key["mirrors.huggingface"].message("en")
    assert "expected an integer" in by_key["launch.port"].message("en")
    assert "between 0.5 and 30" in by_key["network.probe_timeout"].message("en")
    # In file order, with the file name, for people to read top to bottom.
    assert [p.line for p in problems] == sorted(p.line or 0 for p in problems)
    assert problems[0].render("en").startswith(f"{bundle.config_file}:3: launch.port:")


def test_load_refuses_an_invalid_file_with_all_problems(bundle: Bundle) -> None:
    write(bundle, BROKEN)
    with pytest.raises(ConfigInvalid) as info:
        config.load(bundle)
    assert len(info.value.problems) == 9
    assert info.value.code == "CONFIG_INVALID"
    assert "9 problem(s)" in info.value.message("en")


def test_syntax_error_names_the_line(bundle: Bundle) -> None:
    write(
        bundle,
        """
        [launch]
        port = 7860
        listen = yes please
    """,
    )
    with pytest.raises(ConfigUnreadable) as info:
        config.check(bundle)
    assert info.value.params["line"] == 3
    assert "line 3" in info.value.hint("en")


def test_set_keeps_comments_and_validates(bundle: Bundle) -> None:
    write(
        bundle,
        """
        # chosen by me, keep this comment
        [launch]
        port = 7861  # a free port on my machine
    """,
    )
    cfg = config.apply(bundle, [("mirrors.pypi", "ustc"), ("launch.listen", True), ("launch.auth", "me:pw")])
    text = bundle.config_file.read_text(encoding="utf-8")
    assert "# chosen by me, keep this comment" in text
    assert "# a free port on my machine" in text
    assert cfg["mirrors.pypi"] == "ustc" and cfg["launch.listen"] is True and cfg["launch.port"] == 7861


def test_listen_without_a_login_is_refused_by_set_and_reported_by_validate(bundle: Bundle) -> None:
    path = write(bundle, "[launch]\nport = 7861\n")
    before = path.read_bytes()
    with pytest.raises(ConfigInvalid) as info:
        config.apply(bundle, [("launch.listen", True)])
    assert [(p.key, p.message_en) for p in info.value.problems] == [("launch.listen", config.LISTEN_RULE[1])]
    assert path.read_bytes() == before
    config.apply(bundle, [("launch.listen", True), ("launch.auth", "me:pw")])  # with a login it is fine
    with pytest.raises(ConfigInvalid):
        config.apply(bundle, [("launch.auth", None)])  # and the login cannot be taken away under it
    write(bundle, "[launch]\nlisten = true\n")  # saved by hand: `config validate` calls it invalid
    assert [(p.key, p.line) for p in config.check(bundle)] == [("launch.listen", 2)]
    assert config.load(bundle)["launch.listen"] is True  # still loads: `launch` refuses it with its own error


def test_secret_settings_are_marked_and_shown_masked() -> None:
    assert {s.key for s in config.SETTINGS if s.secret} >= {"launch.auth", "downloads.civitai_token"}
    assert config.shown(config.BY_KEY["launch.auth"], "me:pw") == "***"
    assert config.shown(config.BY_KEY["launch.auth"], "") == ""
    proxy = config.shown(config.BY_KEY["network.proxy"], "http://dave:pw1234@127.0.0.1:9")
    assert proxy == "http://***@127.0.0.1:9"
    assert config.shown(config.BY_KEY["launch.port"], 7860) == 7860
    problem = config.check_value(config.BY_KEY["downloads.civitai_token"], 123456789, None)
    assert problem is not None and "123456789" not in problem[0] + problem[1]
    problem = config.check_value(config.BY_KEY["network.proxy"], "http://d:Pw9876@bad host:1", None)
    assert problem is not None and "Pw9876" not in problem[0] + problem[1]


def test_invalid_set_writes_nothing(bundle: Bundle) -> None:
    path = write(bundle, "[launch]\nport = 7861\n")
    before = path.read_bytes()
    with pytest.raises(ConfigInvalid) as info:
        config.apply(bundle, [("mirrors.pypi", "tsinghua")])
    assert info.value.problems[0].key == "mirrors.pypi"
    assert path.read_bytes() == before
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".config-")]


def test_set_refuses_to_rewrite_a_broken_file(bundle: Bundle) -> None:
    path = write(bundle, "[launch\nport = 1\n")
    before = path.read_bytes()
    with pytest.raises(ConfigUnreadable):
        config.apply(bundle, [("launch.port", 7000)])
    assert path.read_bytes() == before


def test_unset_restores_the_default(bundle: Bundle) -> None:
    write(bundle, "[launch]\nport = 7861\napi = false\n")
    cfg = config.apply(bundle, [("launch.port", None)])
    assert cfg["launch.port"] == 7860 and cfg["launch.api"] is False
    assert "port" not in bundle.config_file.read_text(encoding="utf-8")


def test_new_file_gets_a_header(bundle: Bundle) -> None:
    config.apply(bundle, [("general.language", "zh")])
    text = bundle.config_file.read_text(encoding="utf-8")
    assert text.startswith("# Yijian settings")
    assert config.load(bundle)["general.language"] == "zh"


@pytest.mark.parametrize(
    ("key", "raw", "value"),
    [
        ("launch.listen", "on", True),
        ("launch.listen", "否", False),
        ("launch.port", "7000", 7000),
        ("network.probe_timeout", "2.5", 2.5),
        ("models.extra_dirs", "/a, /b", ["/a", "/b"]),
        ("models.extra_dirs", '["/a b"]', ["/a b"]),
        ("mirrors.pypi", "https://example.org/simple", "https://example.org/simple"),
    ],
)
def test_parse_value(key: str, raw: str, value: object) -> None:
    assert config.parse_value(config.find_setting(key), raw) == value


def test_parse_value_rejects_bad_input_naming_the_key() -> None:
    with pytest.raises(UsageError, match="launch.port"):
        config.parse_value(config.find_setting("launch.port"), "seven")


def test_unknown_setting_suggests_the_near_one() -> None:
    with pytest.raises(UsageError, match="Did you mean 'launch.port'"):
        config.find_setting("launch.prot")


def test_mirror_choice_accepts_ids_urls_and_existing_folders(bundle: Bundle, tmp_path: Path) -> None:
    for value in ("auto", "tuna", "https://pypi.example.org/simple", str(tmp_path)):
        config.apply(bundle, [("mirrors.pypi", value)])
    with pytest.raises(ConfigInvalid, match="no such folder"):
        config.apply(bundle, [("mirrors.torch", str(tmp_path / "missing"))])
    config.apply(bundle, [("mirrors.github", "off")])
    with pytest.raises(ConfigInvalid):
        config.apply(bundle, [("mirrors.pypi", "off")])


def test_every_setting_has_help_in_both_languages_and_a_valid_default(bundle: Bundle) -> None:
    from launcher.mirrors.catalog import load_catalog

    catalog = load_catalog(bundle.mirrors_file)
    for s in config.SETTINGS:
        assert s.zh and s.en and s.zh != s.en, s.key
        assert config.check_value(s, s.default, catalog) is None, s.key


def test_locate_keys_handles_dotted_and_quoted_keys() -> None:
    text = '[launch]\n"port" = 1\n\n[[x]]\ny = 1\n[a . b]\nc.d = 2\n'
    where = config.locate_keys(text)
    assert where["launch.port"] == 2
    assert where["a.b.c.d"] == 7
    assert "x.y" not in where
