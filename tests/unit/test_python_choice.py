"""Which Python the environment gets (issue 14): the bundle's own unless the user chose the system's, and why."""

from __future__ import annotations

import sys

from bootstrap.builder.pythons import plan_python, unavailable_fix
from bootstrap.layout import Bundle

PY = f"{sys.version_info[0]}.{sys.version_info[1]}"


def test_bundled_never_picks_the_system_python(sealed) -> None:  # type: ignore[no-untyped-def]
    bundle = Bundle.locate()
    system = plan_python(bundle, PY, "system")
    assert system.source == "system" and system.choice is not None  # this machine has one
    assert "cannot be copied to another PC" in system.note_en and "拷到别的电脑不能运行" in system.note_zh
    assert system.to_dict()["path"] == str(system.choice.path) and system.to_dict()["setting"] == "system"
    bundled = plan_python(bundle, PY, "bundled")
    assert bundled.choice is None and (bundled.source, bundled.status) == ("bundled", "to install")
    assert "does not fall back to the system's Python" in bundled.note_en and "python/uv" in bundled.note_zh
    dead = plan_python(bundle, PY, "bundled", installable="network.offline = true")
    assert (dead.source, dead.status) == ("unavailable", "unavailable") and "path" not in dead.to_dict()
    assert "network.offline = true" in dead.note_en and "config set setup.python system" in dead.note_en


def test_the_ways_to_a_python_per_os() -> None:
    zh, en = unavailable_fix("3.11", "linux")
    assert "1) pick a python mirror" in en and "2) on a machine with access" in en and "3) or run" in en
    assert "cache/python/" in zh and "setup.python system" in zh
    zh, en = unavailable_fix("3.11", "windows")  # the embeddable Python that start.bat fetches cannot host a venv
    assert "cache/python/" not in en and "2) or run ./start.sh config set setup.python system" in en
