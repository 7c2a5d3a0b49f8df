"""Offline mode: building the environment needs local sources, and says so before trying the network."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from launcher.environment import EnvironmentBuilder
from launcher.errors import OfflineMode


class Cfg:
    def __init__(self, offline: bool) -> None:
        self.offline = offline

    def get_bool(self, key: str) -> bool:
        assert key == "network.offline"
        return self.offline


def plan(pypi_local: bool, torch_local: bool) -> SimpleNamespace:
    return SimpleNamespace(pypi=SimpleNamespace(local=pypi_local), torch=SimpleNamespace(local=torch_local))


def test_offline_with_remote_mirrors_is_refused_with_the_way_out() -> None:
    with pytest.raises(OfflineMode) as err:
        EnvironmentBuilder.require_sources(Cfg(True), plan(False, True))
    assert "mirrors use" in err.value.message("en") and "network.offline false" in err.value.hint("en")


@pytest.mark.parametrize(("offline", "pypi", "torch"), [(True, True, True), (False, False, False)])
def test_local_wheel_folders_or_online_may_build(offline: bool, pypi: bool, torch: bool) -> None:
    EnvironmentBuilder.require_sources(Cfg(offline), plan(pypi, torch))
