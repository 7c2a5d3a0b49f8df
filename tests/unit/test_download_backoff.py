"""Retry waits: Retry-After read and capped, and a stop or pause during a back-off ends it at once."""

from __future__ import annotations

import os
import threading
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from launcher.downloads import DownloadSource, download
from launcher.downloads.backoff import MAX_RETRY_AFTER, backoff, pause, retry_after
from launcher.errors import DownloadInterrupted
from tests.support.fileserver import FileServer

MiB = 1024 * 1024
DATA = os.urandom(2 * MiB)
PATH = "/models/m.safetensors"


def test_retry_after_seconds_and_dates_are_read_and_capped() -> None:
    now = 1_700_000_000.0
    assert retry_after("5", now) == 5.0
    assert retry_after(" 12 ", now) == 12.0
    assert retry_after("86400", now) == MAX_RETRY_AFTER  # a server asking for a day gets 30 s
    assert retry_after(formatdate(now + 7, usegmt=True), now) == pytest.approx(7.0)
    assert retry_after(formatdate(now + 7200, usegmt=True), now) == MAX_RETRY_AFTER
    assert retry_after(formatdate(now - 60, usegmt=True), now) == 0.0  # a date in the past: now
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0.0
    for bad in (None, "", "soon", "-5", "1.5e9", "Wed, 99 Foo 2015"):
        assert retry_after(bad, now) is None


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_pause_returns_at_once_when_stopped() -> None:
    stop, other = threading.Event(), threading.Event()
    threading.Timer(0.2, other.set).start()
    t0 = time.monotonic()
    assert pause(30.0, stop, other) is True
    assert time.monotonic() - t0 < 1.0
    assert pause(0.05, threading.Event()) is False


def test_a_stop_during_a_retry_after_wait_ends_the_download_at_once(file_server: FileServer, tmp_path: Path) -> None:
    blob = file_server.add(PATH, DATA)
    blob.faults.status, blob.faults.retry_after = 503, 3600  # capped to 30 s; the stop must not wait for it
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(DownloadInterrupted):
        download([DownloadSource(file_server.url_for(PATH))], tmp_path / "m.safetensors", connections=1, stop=stop)
    assert time.monotonic() - t0 < 3.0


def test_a_stop_during_a_connection_back_off_ends_the_download_at_once(file_server: FileServer, tmp_path: Path) -> None:
    blob = file_server.add(PATH, DATA)
    blob.faults.drop_after = 64 * 1024  # every GET hangs up early: back-offs of 0.5, 1, 2, 4, 8 s
    stop = threading.Event()
    done: list[BaseException] = []

    def run() -> None:
        try:
            download([DownloadSource(file_server.url_for(PATH))], tmp_path / "m.safetensors", connections=1, stop=stop)
        except BaseException as exc:
            done.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 30
    while len(file_server.transfers_of(PATH)) < 4 and time.monotonic() < deadline:  # the 3rd failure: a 2 s wait
        time.sleep(0.02)
    time.sleep(0.1)
    t0 = time.monotonic()
    stop.set()
    worker.join(15)
    assert not worker.is_alive()
    assert time.monotonic() - t0 < 1.0
    assert done and isinstance(done[0], DownloadInterrupted)
