"""Stage 0's TOML reader for Python 3.10 agrees with tomllib on our files."""

from __future__ import annotations

import pytest
import tomllib

from bootstrap.tomlread import TomlSubsetError, loads_subset
from tests.support.hermetic import REPO

OUR_FILES = sorted(
    p for p in [REPO / "mirrors.toml", *REPO.glob("packs/*.toml"), *REPO.glob("models/*.toml")] if p.is_file()
)


@pytest.mark.parametrize("path", OUR_FILES, ids=lambda p: p.name)
def test_subset_reader_matches_tomllib_on_shipped_files(path) -> None:  # type: ignore[no-untyped-def]
    text = path.read_text(encoding="utf-8")
    assert loads_subset(text) == tomllib.loads(text)


SAMPLES = [
    'a = 1\nb = -2.5\nc = 1e3\nd = true\ne = false\nf = "x\\ty \\u00e9 \\"q\\""\ng = \'C:\\path\'\n',
    '[mirrors]\npypi = "tuna"  # comment\n[network]\nproxy = ""\n',
    "[a.b]\nc = 1\n[a.d]\ne = [1, 2,\n  3, # trailing\n]\n",
    '[[pack]]\nid = "x"\n[[pack]]\nid = "y"\nlist = ["a", "b"]\n',
    'inline = { x = 1, y = "z" }\n"quoted key" = 1\ndotted.key = 2\n',
    "n = 1_000\nempty = []\ntable = {}\n",
    "[[a.b]]\nx = 1\n[a.b.c]\ny = 2\n",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_subset_reader_matches_tomllib_on_samples(text: str) -> None:
    assert loads_subset(text) == tomllib.loads(text)


@pytest.mark.parametrize(
    "text",
    ['a = """multi\nline"""\n', "a = \n", "a = 1 b\n", "a = 1\na = 2\n", "[t\nx = 1\n", "a = [1 2]\n", 'a = "open\n'],
)
def test_subset_reader_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(TomlSubsetError):
        loads_subset(text)
