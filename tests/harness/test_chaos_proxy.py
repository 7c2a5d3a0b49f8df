"""The chaos soak's fault-injecting proxy, checked fault by fault with real clients against the file server."""

from __future__ import annotations

import hashlib
import http.client
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.chaos_network import Counts, refetched_bytes, refetches, sent_by_file
from tests.support.chaos_proxy import FAULTS, ChaosProxy, agent_name, start_proxy
from tests.support.fileserver import FileServer, lfs_pointer

DATA = bytes(range(256)) * 1024  # 256 KiB: a "file" (not an index page)
PAGE = b"<html><body><a href='x'>x</a></body></html>"


@pytest.fixture
def proxy(file_server: FileServer) -> Iterator[ChaosProxy]:
    file_server.add("/f/model.safetensors", DATA)
    file_server.add("/simple/", PAGE)
    p = start_proxy(file_server.url, "mirror-a", slow_s=0.5)
    try:
        yield p
    finally:
        p.stop()


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=10, allow_redirects=False)


def test_no_fault_passes_bytes_and_ranges_through_and_counts_them(proxy: ChaosProxy) -> None:
    r = get(proxy.mirror_url("/f/model.safetensors"))
    assert r.status_code == 200 and r.content == DATA
    part = get(proxy.mirror_url("/f/model.safetensors"), Range="bytes=1000-")
    assert part.status_code == 206 and part.content == DATA[1000:]
    count = proxy.bytes_by_path()["/f/model.safetensors"]
    assert (count.sent, count.size) == (2 * len(DATA) - 1000, len(DATA))
    assert proxy.hits == 0


def test_url_faults_refuse_or_do_not_resolve(proxy: ChaosProxy) -> None:
    proxy.set_fault("down")
    with pytest.raises(requests.ConnectionError):
        get(proxy.mirror_url("/simple/"))
    proxy.set_fault("dns")
    host = urlsplit(proxy.mirror_url("/simple/")).hostname
    assert host == "mirror-a.invalid"
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(host, 80)


def test_403_only_to_pip_and_uv(proxy: ChaosProxy) -> None:
    proxy.set_fault("ua403")
    url = proxy.mirror_url("/simple/")
    assert get(url, **{"User-Agent": 'pip/24.0 {"installer":{"name":"pip"}}'}).status_code == 403
    assert get(url, **{"User-Agent": 'uv/0.9.5 {"installer":{"name":"uv"}}'}).status_code == 403
    assert get(url, **{"User-Agent": "python-requests/2.32"}).content == PAGE


def test_5xx_and_the_maintenance_page(proxy: ChaosProxy) -> None:
    proxy.set_fault("5xx")
    assert get(proxy.mirror_url("/f/model.safetensors")).status_code == 502
    proxy.set_fault("html200")
    r = get(proxy.mirror_url("/f/model.safetensors"))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html") and b"<html" in r.content[:20]


def test_file_faults_leave_index_pages_alone(proxy: ChaosProxy) -> None:
    for fault in ("lfs", "xet", "drop"):
        proxy.set_fault(fault)
        assert get(proxy.mirror_url("/simple/")).content == PAGE, fault


def test_lfs_pointer_instead_of_the_file(proxy: ChaosProxy) -> None:
    proxy.set_fault("lfs")
    r = get(proxy.mirror_url("/f/model.safetensors"))
    assert r.status_code == 200 and r.content == lfs_pointer(DATA)
    assert hashlib.sha256(DATA).hexdigest() in r.text


def test_xet_redirects_off_the_mirror_to_a_host_that_cannot_be_reached(proxy: ChaosProxy) -> None:
    proxy.set_fault("xet")
    r = get(proxy.mirror_url("/f/model.safetensors"))
    assert r.status_code == 302
    where = urlsplit(r.headers["Location"])
    assert where.hostname and where.hostname.endswith(".invalid") and where.hostname != "127.0.0.1"
    with pytest.raises(requests.ConnectionError):
        requests.get(proxy.mirror_url("/f/model.safetensors"), timeout=10)


def test_slow_first_byte(proxy: ChaosProxy) -> None:
    proxy.set_fault("slow")
    started = time.monotonic()
    assert get(proxy.mirror_url("/simple/")).content == PAGE
    assert time.monotonic() - started >= 0.5


def test_drop_mid_file_once_then_the_rest_resumes(proxy: ChaosProxy) -> None:
    proxy.set_fault("drop")
    u = urlsplit(proxy.mirror_url("/f/model.safetensors"))
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
    conn.request("GET", u.path)
    resp = conn.getresponse()
    assert resp.status == 200 and resp.headers["Content-Length"] == str(len(DATA))
    with pytest.raises(http.client.IncompleteRead) as cut:
        resp.read()
    got = len(cut.value.partial)
    assert got == len(DATA) // 2
    conn.close()
    rest = get(proxy.mirror_url("/f/model.safetensors"), Range=f"bytes={got}-")
    assert rest.status_code == 206 and DATA[:got] + rest.content == DATA  # dropped once per file


def test_range_ignored_answers_the_whole_file(proxy: ChaosProxy) -> None:
    proxy.set_fault("norange")
    r = get(proxy.mirror_url("/f/model.safetensors"), Range="bytes=1000-")
    assert r.status_code == 200 and r.content == DATA
    assert proxy.hits == 1


def test_unknown_fault_is_refused(proxy: ChaosProxy) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        proxy.set_fault("gremlins")
    assert len(FAULTS) == 10


def settled_counts(proxy: ChaosProxy) -> Counts:
    """The per-file counts once they stop moving (at most 5 s)."""
    counts: Counts = {}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        now = sent_by_file({"pypi": [proxy]})
        if now == counts:
            break
        counts = now
        time.sleep(0.2)
    return counts


def test_counts_tell_a_resume_from_a_refetch_and_who_fetched_it(proxy: ChaosProxy) -> None:
    url, half = proxy.mirror_url("/f/model.safetensors"), len(DATA) // 2
    key = ("pypi", "/f/model.safetensors")
    ours, uv = {"User-Agent": "yijian-downloader"}, {"User-Agent": 'uv/0.9.5 {"installer":{"name":"uv"}}'}
    with requests.get(url, stream=True, timeout=10, headers=ours) as r:  # a download cut off halfway (a kill)
        r.raw.read(half)
    before = settled_counts(proxy)  # the proxy may still be writing into the closed socket for a moment
    sent_before = before[key].sent
    assert half <= sent_before <= len(DATA)
    assert before[key].by_agent == {"yijian-downloader": sent_before}
    get(url, Range=f"bytes={sent_before}-", **ours)  # a resume from where it stopped: nothing fetched twice
    resumed = sent_by_file({"pypi": [proxy]})
    assert resumed[key].by_agent.get("yijian-downloader (range)", 0) == len(DATA) - sent_before
    assert refetched_bytes(before, resumed) == 0 and refetches(before, resumed) == []
    get(url, **uv)  # another program that needs the same file (uv installing what pip installed): not the kill's cost
    assert refetches(before, sent_by_file({"pypi": [proxy]})) == []
    get(url, **ours)  # the program that had it fetches it again from the start: what it had came twice
    again = sent_by_file({"pypi": [proxy]})
    (twice,) = refetches(before, again)
    assert (twice.channel, twice.path, twice.size, twice.bytes, twice.by) == (
        "pypi", "/f/model.safetensors", len(DATA), len(DATA), ("yijian-downloader",))  # fmt: skip
    assert refetched_bytes(before, again) == len(DATA)
    assert twice.describe() == "model.safetensors (pypi, 0.2 of 0.2 MiB, by yijian-downloader)"


def test_a_restart_after_a_kill_costs_what_had_arrived(proxy: ChaosProxy) -> None:
    url, half, key = proxy.mirror_url("/f/model.safetensors"), len(DATA) // 2, ("pypi", "/f/model.safetensors")
    with requests.get(url, stream=True, timeout=10, headers={"User-Agent": "pip/23.2.1"}) as r:
        r.raw.read(half)
    before = settled_counts(proxy)
    get(url, **{"User-Agent": "pip/23.2.1"})  # pip does not resume: the whole file again
    (twice,) = refetches(before, sent_by_file({"pypi": [proxy]}))
    assert (twice.bytes, twice.by) == (before[key].sent, ("pip",))


def test_agent_names() -> None:
    assert agent_name('uv/0.9.5 {"installer":{"name":"uv"}}') == "uv"
    assert agent_name('pip/24.0 {"installer":{"name":"pip"}}') == "pip"
    assert agent_name("yijian-downloader") == "yijian-downloader"
    assert agent_name("python-requests/2.32.3") == "python-requests"
    assert agent_name("") == "?"
