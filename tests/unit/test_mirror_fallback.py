"""Fallback across mirrors: next one on a mirror's failure, said once, remembered."""

from __future__ import annotations

import pytest
import requests

from bootstrap.layout import Bundle
from launcher.errors import AllMirrorsFailed
from launcher.mirrors import ranking
from launcher.mirrors.fallback import MirrorProblem, problem_for_exception, problem_for_status, try_sources
from launcher.mirrors.probe import content_problem
from launcher.mirrors.sources import Source
from tests.support.plugin_mirrors import MirrorFarm


def src(mid: str, url: str) -> Source:
    return Source("pypi", mid, url, "pep503", f"镜像{mid}", f"mirror {mid}")


def fetch_pip_page(source: Source) -> str:
    """What an installer does first: read the project page, and judge the answer."""
    try:
        resp = requests.get(source.url + "/pip/", timeout=1.0)
    except requests.RequestException as exc:
        raise MirrorProblem(problem_for_exception(exc) or repr(exc)) from exc
    problem = problem_for_status(resp.status_code) or content_problem(
        "pep503", resp.content, resp.headers.get("Content-Type", ""), resp.status_code
    )
    if problem:
        raise MirrorProblem(problem)
    return source.id


def test_moves_on_says_so_once_per_switch_and_records(mirror_farm: MirrorFarm, sealed) -> None:  # type: ignore[no-untyped-def]
    bundle = Bundle.locate()
    said: list[str] = []
    sources = [
        src("dead", mirror_farm.dead_url + "/simple"),
        src("forbidden", mirror_farm.forbidden.simple_url()),
        src("html", mirror_farm.html.simple_url()),
        src("slow", mirror_farm.slow.simple_url()),
        src("fast", mirror_farm.fast.simple_url()),
    ]
    assert try_sources(sources, fetch_pip_page, bundle=bundle, lang="en", say=said.append) == "fast"
    assert len(said) == 4
    assert said[0] == f"Mirror mirror dead failed (connection refused); trying mirror forbidden: {sources[1].url}"
    assert "HTTP 403" in said[1] and "wrong content" in said[2] and "timed out" in said[3]
    failed = ranking.load(bundle).failures["pypi"]
    assert set(failed) == {"dead", "forbidden", "html", "slow"}


def test_chinese_message(mirror_farm: MirrorFarm, sealed) -> None:  # type: ignore[no-untyped-def]
    said: list[str] = []
    sources = [src("a", mirror_farm.dead_url + "/simple"), src("b", mirror_farm.fast.simple_url())]
    try_sources(sources, fetch_pip_page, bundle=Bundle.locate(), lang="zh", say=said.append)
    assert said == [f"镜像 镜像a 失败（connection refused），改用 镜像b：{sources[1].url}"]


def test_all_failing_raises_one_error_listing_each(mirror_farm: MirrorFarm, sealed) -> None:  # type: ignore[no-untyped-def]
    sources = [src("a", mirror_farm.dead_url + "/simple"), src("b", mirror_farm.forbidden.simple_url())]
    with pytest.raises(AllMirrorsFailed) as info:
        try_sources(sources, fetch_pip_page, bundle=Bundle.locate(), lang="en", say=lambda _: None)
    msg = info.value.message("en")
    assert "Every pypi mirror failed" in msg and "a (" in msg and "connection refused" in msg and "HTTP 403" in msg
    assert info.value.exit_code == 4


def test_a_non_mirror_failure_is_not_retried_elsewhere(mirror_farm: MirrorFarm, sealed) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []

    def disk_full(source: Source) -> str:
        calls.append(source.id)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        try_sources([src("a", "x"), src("b", "y")], disk_full, bundle=Bundle.locate(), lang="en", say=lambda _: None)
    assert calls == ["a"]


@pytest.mark.parametrize(
    ("status", "is_problem"),
    [(200, False), (206, False), (304, False), (403, True), (404, True), (429, True), (500, True), (503, True)],
)
def test_status_classification(status: int, is_problem: bool) -> None:
    assert (problem_for_status(status) is not None) == is_problem


def test_a_new_measurement_clears_recorded_failures(sealed) -> None:  # type: ignore[no-untyped-def]
    bundle = Bundle.locate()
    ranking.record_failure(bundle, "pypi", "tuna", "HTTP 403")
    assert ranking.load(bundle).failures == {"pypi": {"tuna": "HTTP 403"}}
    ranking.save(bundle, {"pypi": [{"id": "tuna", "ok": True}]})
    assert ranking.load(bundle).failures == {} and ranking.load(bundle).order("pypi") == ["tuna"]
    assert ranking.load(bundle, now=10**12).results == {}  # stale after the time-to-live


def test_a_civitai_endpoint_without_the_list_route_is_still_an_api() -> None:
    """Civitai's JSON error on /api/v1/models (a mirror or stand-in serving only the model and download routes)
    is its API answering; an HTML 404 (a typo in the address) or a 404 to another channel is not."""
    from launcher.mirrors.probe import api_error_answer

    assert api_error_answer("civitai", b'{"error":"Not found"}', 404)
    assert content_problem("civitai", b'{"error":"Not found"}', "application/json", 404) is None
    assert not api_error_answer("civitai", b"<html>404 Not Found</html>", 404)
    assert not api_error_answer("modelscope", b'{"error":"Not found"}', 404)
    assert not api_error_answer("civitai", b'{"error":"boom"}', 500)
    assert content_problem("civitai", b'{"items": []}', "application/json", 200) is None
    assert content_problem("civitai", b"<html>hi</html>", "text/html", 200) is not None
