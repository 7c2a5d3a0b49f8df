"""The fault-injecting file server, checked with real clients (requests, urllib, curl)."""

from __future__ import annotations

import hashlib
import http.client
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

import pytest
import requests

from tests.support.fileserver import FileServer, Transfer

DATA = bytes(range(256)) * 40  # 10240 bytes
SIZE = len(DATA)
PATH = "/m/model.safetensors"


@pytest.fixture
def srv(file_server: FileServer) -> FileServer:
    file_server.add(PATH, DATA)
    return file_server


def get(srv: FileServer, **headers: str) -> requests.Response:
    return requests.get(srv.url_for(PATH), headers=headers, timeout=10)


def test_get_and_head_carry_validators(srv: FileServer) -> None:
    r = get(srv)
    assert r.status_code == 200 and r.content == DATA
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["ETag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert r.headers["Content-Length"] == str(SIZE)
    assert parsedate_to_datetime(r.headers["Last-Modified"]).timestamp() == srv.files[PATH].last_modified
    h = requests.head(srv.url_for(PATH), timeout=10)
    assert h.status_code == 200 and h.headers["Content-Length"] == str(SIZE) and h.content == b""
    srv.wait_idle()  # the client may be done before the server has counted its bytes
    assert srv.bytes_served() == SIZE  # HEAD sent no body
    assert requests.get(srv.url_for("/nope"), timeout=10).status_code == 404


def test_custom_etag(file_server: FileServer) -> None:
    file_server.add("/f", b"abc", etag="v1")
    assert requests.head(file_server.url_for("/f"), timeout=10).headers["ETag"] == '"v1"'


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [("bytes=10-19", 10, 19), ("bytes=10000-", 10000, SIZE - 1), ("bytes=-100", SIZE - 100, SIZE - 1),
     ("bytes=5-999999", 5, SIZE - 1), ("bytes=0-0", 0, 0)],
)  # fmt: skip
def test_range_gives_206(srv: FileServer, spec: str, first: int, last: int) -> None:
    r = get(srv, Range=spec)
    assert r.status_code == 206
    assert r.headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert r.content == DATA[first : last + 1]
    assert r.headers["Content-Length"] == str(last - first + 1)


@pytest.mark.parametrize("spec", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 9}", "bytes=-0"])
def test_unsatisfiable_range_gives_416(srv: FileServer, spec: str) -> None:
    r = get(srv, Range=spec)
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{SIZE}"


@pytest.mark.parametrize("spec", ["bytes=0-1,5-6", "items=0-5", "bytes=9-3"])
def test_unsupported_range_is_ignored(srv: FileServer, spec: str) -> None:
    r = get(srv, Range=spec)
    assert r.status_code == 200 and r.content == DATA


def test_if_range(srv: FileServer) -> None:
    etag = get(srv).headers["ETag"]
    assert get(srv, Range="bytes=100-", **{"If-Range": etag}).status_code == 206
    date = formatdate(srv.files[PATH].last_modified, usegmt=True)
    assert get(srv, Range="bytes=100-", **{"If-Range": date}).status_code == 206
    stale = get(srv, Range="bytes=100-", **{"If-Range": '"something-else"'})
    assert stale.status_code == 200 and stale.content == DATA and "Content-Range" not in stale.headers


def test_drop_then_resume_refetches_only_the_rest(srv: FileServer) -> None:
    faults = srv.faults(PATH)
    faults.drop_after, faults.drop_requests = 3000, 1
    with pytest.raises(http.client.IncompleteRead) as cut:
        urllib.request.urlopen(srv.url_for(PATH), timeout=10).read()
    got = cut.value.partial
    assert got == DATA[:3000]
    req = urllib.request.Request(srv.url_for(PATH), headers={"Range": f"bytes={len(got)}-"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 206
        got += resp.read()
    assert got == DATA
    srv.wait_idle()
    assert srv.bytes_served(PATH) == SIZE  # nothing was sent twice
    assert srv.files[PATH].drops == 1
    assert [t.dropped for t in srv.transfers_of(PATH)] == [True, False]


def test_drop_every_time_by_default(srv: FileServer) -> None:
    srv.faults(PATH).drop_after = 10
    for _ in range(2):
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            get(srv)
    srv.wait_idle()
    assert srv.files[PATH].drops == 2 and srv.bytes_served() == 20
    assert get(srv, Range="bytes=0-9").content == DATA[:10]  # a body no longer than drop_after is whole


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_resumes_a_dropped_download(srv: FileServer, tmp_path: Path) -> None:
    srv.faults(PATH).drop_after, srv.faults(PATH).drop_requests = 4096, 1
    out = tmp_path / "model.safetensors"
    first = subprocess.run(["curl", "-sS", "-o", str(out), srv.url_for(PATH)], capture_output=True, timeout=30)
    assert first.returncode == 18 and out.stat().st_size == 4096  # 18: partial file
    resumed = subprocess.run(["curl", "-sS", "-C", "-", "-o", str(out), srv.url_for(PATH)], timeout=30)
    assert resumed.returncode == 0 and out.read_bytes() == DATA
    srv.wait_idle()
    assert srv.requests[-1].headers["Range"] == "bytes=4096-" and srv.requests[-1].status == 206
    assert srv.bytes_served(PATH) == SIZE


def test_throttle_paces_each_connection_on_its_own(file_server: FileServer) -> None:
    rate, half = 200_000, 80_000  # each half needs at least 0.4 s at `rate`
    blob = file_server.add("/big", bytes(2 * half))
    blob.faults.throttle = rate
    start = threading.Barrier(2)
    bodies: dict[int, bytes] = {}

    def fetch(i: int) -> None:
        start.wait()
        spec = f"bytes={i * half}-{(i + 1) * half - 1}"
        bodies[i] = requests.get(file_server.url_for("/big"), headers={"Range": spec}, timeout=30).content

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert bodies == {0: bytes(half), 1: bytes(half)}
    file_server.wait_idle()
    a, b = file_server.transfers_of("/big")
    assert max(a.started, b.started) < min(a.finished, b.finished)  # the two ran at the same time
    for t in (a, b):
        assert t.sent == half
        assert t.finished - t.started >= half / rate - 1e-3  # paced: never faster than `rate`
        assert 0 < t.slept <= half / rate + 1e-3  # each connection slept only for its own bytes: 2x bandwidth


def test_client_hanging_up_is_recorded(srv: FileServer) -> None:
    srv.faults(PATH).throttle = 20_000  # 0.5 s for the whole file
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(f"GET {PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert s.recv(100).startswith(b"HTTP/1.1 200")
    srv.wait_idle()
    t: Transfer = srv.transfers_of(PATH)[0]
    assert t.dropped and t.sent < SIZE
    assert get(srv).content == DATA  # the server carries on


def test_ignore_range(srv: FileServer) -> None:
    srv.faults(PATH).ignore_range = True
    r = get(srv, Range="bytes=100-199")
    assert r.status_code == 200 and r.content == DATA and "Content-Range" not in r.headers
    assert r.headers["Accept-Ranges"] == "bytes"  # it still claims ranges, like a misconfigured mirror


def test_always_416(srv: FileServer) -> None:
    srv.faults(PATH).always_416 = True
    for headers in ({}, {"Range": "bytes=0-10"}):
        r = get(srv, **headers)
        assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{SIZE}"


def test_changing_etag_defeats_if_range(srv: FileServer) -> None:
    srv.faults(PATH).changing_etag = True
    first = requests.head(srv.url_for(PATH), timeout=10).headers["ETag"]
    assert requests.head(srv.url_for(PATH), timeout=10).headers["ETag"] != first
    r = get(srv, Range="bytes=100-", **{"If-Range": first})
    assert r.status_code == 200 and r.content == DATA


def test_swap_changes_the_remote_file(srv: FileServer) -> None:
    before = requests.head(srv.url_for(PATH), timeout=10).headers
    srv.swap(PATH, b"new content!")
    after = requests.head(srv.url_for(PATH), timeout=10).headers
    assert after["ETag"] != before["ETag"] and after["Content-Length"] == "12"
    assert parsedate_to_datetime(after["Last-Modified"]) > parsedate_to_datetime(before["Last-Modified"])
    for validator in (before["ETag"], before["Last-Modified"]):
        r = get(srv, Range="bytes=3-", **{"If-Range": validator})
        assert r.status_code == 200 and r.content == b"new content!"


def test_slow_first_byte(srv: FileServer) -> None:
    srv.faults(PATH).first_byte_delay = 1.0
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(srv.url_for(PATH), timeout=(5, 0.2))
    with pytest.raises(TimeoutError):
        srv.wait_idle(timeout=0.1)  # the server is still holding back its answer
    srv.wait_idle()
    assert srv.requests[0].status == 200  # the answer did come, only late


@pytest.mark.parametrize("status", [403, 404, 500, 502, 503])
def test_status_override(srv: FileServer, status: int) -> None:
    srv.faults(PATH).status = status
    assert get(srv).status_code == status
    assert requests.head(srv.url_for(PATH), timeout=10).status_code == status
    srv.faults(PATH).status = None  # faults change at run time
    assert get(srv).status_code == 200


def test_429_with_retry_after(srv: FileServer) -> None:
    srv.faults(PATH).status, srv.faults(PATH).retry_after = 429, 7
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(srv.url_for(PATH), timeout=10)
    assert err.value.code == 429 and err.value.headers["Retry-After"] == "7"


def test_html_error_page(srv: FileServer) -> None:
    srv.faults(PATH).html_error = True
    r = get(srv)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert r.content.startswith(b"<!DOCTYPE html>") and r.content != DATA


def test_lfs_pointer(srv: FileServer) -> None:
    srv.faults(PATH).lfs_pointer = True
    r = get(srv)
    assert r.status_code == 200
    lines = r.text.splitlines()
    assert lines == [
        "version https://git-lfs.github.com/spec/v1",
        f"oid sha256:{hashlib.sha256(DATA).hexdigest()}",
        f"size {SIZE}",
    ]


def test_chunked_without_content_length(srv: FileServer) -> None:
    srv.faults(PATH).length = "chunked"
    r = get(srv)
    assert r.content == DATA
    assert r.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in r.headers
    assert get(srv, Range="bytes=10-19").content == DATA[10:20]
    srv.faults(PATH).drop_after = 5000
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(srv)


def test_close_delimited_body(srv: FileServer) -> None:
    srv.faults(PATH).length = "close"
    with urllib.request.urlopen(srv.url_for(PATH), timeout=10) as resp:
        assert resp.headers["Content-Length"] is None and resp.headers["Connection"] == "close"
        assert resp.read() == DATA
    srv.faults(PATH).drop_after = 5000  # without a length the client cannot tell the body was cut
    with urllib.request.urlopen(srv.url_for(PATH), timeout=10) as resp:
        assert resp.read() == DATA[:5000]


def test_refused_connection(refused_url: str) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(refused_url, timeout=5)
    with pytest.raises(urllib.error.URLError) as err:
        urllib.request.urlopen(refused_url, timeout=5)
    assert isinstance(err.value.reason, ConnectionRefusedError)
