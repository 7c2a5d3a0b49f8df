"""The download engine against a server that fails in every way real ones do."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bootstrap.layout import Bundle
from launcher.downloads import DownloadSource, download
from launcher.downloads.partfile import JOURNAL_EVERY, PartFile
from launcher.downloads.progress import Progress
from launcher.errors import (
    AllMirrorsFailed,
    ChecksumMismatch,
    DestinationExists,
    DiskFull,
    DownloadFailed,
    DownloadInterrupted,
    DownloadLocked,
    WrongContent,
)
from launcher.mirrors import ranking
from tests.support.fileserver import FileServer
from tests.support.hermetic import REPO
from tests.support.hf_endpoint import HfEndpoint

MiB = 1024 * 1024
DATA = os.urandom(6 * MiB)
SHA = hashlib.sha256(DATA).hexdigest()
PATH = "/models/model.safetensors"


@pytest.fixture
def served(file_server: FileServer) -> FileServer:
    file_server.add(PATH, DATA)
    return file_server


def src(server: FileServer, path: str = PATH, **kw: str) -> DownloadSource:
    return DownloadSource(server.url_for(path), **kw)


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir() if p.name.startswith(dest.name + "."))


def test_several_connections_verify_and_land_atomically(served: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "model.safetensors"
    events: list[Progress] = []
    result = download([src(served)], dest, sha256=SHA, connections=4, on_progress=events.append)
    assert dest.read_bytes() == DATA and result.sha256 == SHA and result.size == len(DATA)
    assert result.connections == 4 and result.fetched == len(DATA) and result.reused == 0
    assert leftovers(dest) == []
    served.wait_idle()
    ranges = [r.headers.get("Range") for r in served.requests if r.method == "GET"]
    assert len([r for r in ranges if r and r != "bytes=0-0"]) >= 4
    assert served.bytes_served(PATH) <= len(DATA) + 1 + 4 * 64 * 1024
    assert events[-1].stage == "done" and events[-1].done == len(DATA)


def test_a_drop_mid_segment_is_retried_from_where_it_stopped(served: FileServer, tmp_path: Path) -> None:
    faults = served.faults(PATH)
    faults.drop_after, faults.drop_requests = 300 * 1024, 3
    faults.throttle = 8 * MiB  # paced like a real server, so little sits in socket buffers
    dest = tmp_path / "m.safetensors"
    download([src(served)], dest, sha256=SHA, connections=4)
    assert dest.read_bytes() == DATA
    served.wait_idle()
    # Nothing already written was fetched again (beyond a read-size of slack per split).
    assert served.bytes_served(PATH) <= len(DATA) + 1 + 8 * 64 * 1024


def test_range_ignored_means_one_stream(served: FileServer, tmp_path: Path) -> None:
    served.faults(PATH).ignore_range = True
    result = download([src(served)], tmp_path / "m.safetensors", sha256=SHA, connections=8)
    assert result.connections == 1 and (tmp_path / "m.safetensors").read_bytes() == DATA


def test_range_ignored_and_a_drop_restarts_the_stream(served: FileServer, tmp_path: Path) -> None:
    faults = served.faults(PATH)
    faults.ignore_range, faults.drop_after, faults.drop_requests = True, 2 * MiB, 1
    download([src(served)], tmp_path / "m.safetensors", sha256=SHA)
    assert (tmp_path / "m.safetensors").read_bytes() == DATA


@pytest.mark.parametrize("length", ["chunked", "close"])
def test_no_content_length(served: FileServer, tmp_path: Path, length: str) -> None:
    served.faults(PATH).length = length  # type: ignore[assignment]
    download([src(served)], tmp_path / "m.safetensors", sha256=SHA)
    assert (tmp_path / "m.safetensors").read_bytes() == DATA


def _interrupt_after(nbytes: int) -> tuple[threading.Event, object]:
    stop = threading.Event()

    def hook(p: Progress) -> None:
        if p.done >= nbytes:
            stop.set()

    return stop, hook


def test_stop_keeps_the_partial_and_the_next_run_resumes(served: FileServer, tmp_path: Path) -> None:
    served.faults(PATH).throttle = 2 * MiB
    dest = tmp_path / "m.safetensors"
    stop, hook = _interrupt_after(2 * MiB)
    with pytest.raises(DownloadInterrupted) as info:
        download([src(served)], dest, sha256=SHA, connections=2, on_progress=hook, stop=stop)  # type: ignore[arg-type]
    assert "%" in info.value.message("en") and "Run the same command again" in info.value.hint("en")
    assert not dest.exists() and (tmp_path / "m.safetensors.part").exists()
    _, done = PartFile(dest).load()
    journaled = sum(e - s for s, e in done)
    assert journaled >= MiB
    served.faults(PATH).throttle = None
    served.wait_idle()
    served.reset_counts()
    result = download([src(served)], dest, sha256=SHA, connections=2)
    assert dest.read_bytes() == DATA and result.reused == journaled
    served.wait_idle()
    assert served.bytes_served(PATH) == len(DATA) - journaled + 1  # + the 1-byte size probe


def test_a_changed_remote_file_restarts_the_download(served: FileServer, tmp_path: Path) -> None:
    served.faults(PATH).throttle = 2 * MiB
    dest = tmp_path / "m.safetensors"
    stop, hook = _interrupt_after(MiB)
    with pytest.raises(DownloadInterrupted):
        download([src(served)], dest, connections=2, on_progress=hook, stop=stop)  # type: ignore[arg-type]
    new = os.urandom(len(DATA))
    served.swap(PATH, new)
    served.faults(PATH).throttle = None
    result = download([src(served)], dest, sha256=hashlib.sha256(new).hexdigest())
    assert dest.read_bytes() == new and result.reused == 0


def test_an_etag_that_changes_on_every_request_falls_back_to_one_stream(served: FileServer, tmp_path: Path) -> None:
    served.faults(PATH).changing_etag = True
    result = download([src(served)], tmp_path / "m.safetensors", sha256=SHA, connections=4)
    assert result.connections == 1 and (tmp_path / "m.safetensors").read_bytes() == DATA


def test_an_html_page_is_refused_and_nothing_lands(served: FileServer, tmp_path: Path) -> None:
    served.faults(PATH).html_error = True
    dest = tmp_path / "m.safetensors"
    with pytest.raises(WrongContent) as info:
        download([src(served)], dest, connections=4)
    assert "HTML page" in info.value.message("en") and "网页" in info.value.message("zh")
    assert not dest.exists() and leftovers(dest) == []


def test_a_git_lfs_pointer_is_refused(served: FileServer, tmp_path: Path) -> None:
    served.faults(PATH).lfs_pointer = True
    dest = tmp_path / "m.safetensors"
    with pytest.raises(WrongContent, match="Git LFS pointer"):
        download([src(served)], dest)
    assert not dest.exists() and leftovers(dest) == []


def test_a_hash_mismatch_never_lands(served: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "m.safetensors"
    with pytest.raises(ChecksumMismatch) as info:
        download([src(served)], dest, sha256="0" * 64)
    assert SHA in info.value.message("en")
    assert not dest.exists() and leftovers(dest) == []


def test_a_wrong_size_is_refused_before_downloading(served: FileServer, tmp_path: Path) -> None:
    with pytest.raises(ChecksumMismatch, match="size"):
        download([src(served)], tmp_path / "m.safetensors", size=len(DATA) + 1)
    served.wait_idle()
    assert served.bytes_served(PATH) <= 1


def test_403_falls_back_to_the_next_mirror_and_is_remembered(served: FileServer, tmp_path: Path, sealed) -> None:  # type: ignore[no-untyped-def]
    served.add("/blocked/model.safetensors", DATA).faults.status = 403
    said: list[str] = []
    bundle = Bundle.locate()
    sources = [src(served, "/blocked/model.safetensors", label="mirror A", channel="huggingface", mirror_id="hf-mirror"),
               src(served, label="mirror B")]  # fmt: skip
    download(sources, tmp_path / "m.safetensors", sha256=SHA, say=said.append, bundle=bundle)
    assert (tmp_path / "m.safetensors").read_bytes() == DATA
    assert said == ["mirror A failed (HTTP 403 (the mirror lacks it or refuses it)); trying mirror B"]
    assert "hf-mirror" in ranking.load(bundle).failures["huggingface"]


def test_every_source_failing_is_one_clear_error(served: FileServer, tmp_path: Path, refused_url: str) -> None:
    served.add("/gone", DATA).faults.status = 404
    with pytest.raises(AllMirrorsFailed) as info:
        download([src(served, "/gone", label="A"), DownloadSource(refused_url, label="B")], tmp_path / "m")
    assert "A: HTTP 404" in info.value.message("en") and "B: connection refused" in info.value.message("en")
    with pytest.raises(DownloadFailed, match="connection refused"):
        download([DownloadSource(refused_url)], tmp_path / "m")


def test_server_errors_are_retried_with_backoff(served: FileServer, tmp_path: Path) -> None:
    faults = served.faults(PATH)
    faults.status, faults.retry_after = 503, 1
    threading.Timer(0.6, lambda: setattr(faults, "status", None)).start()
    download([src(served)], tmp_path / "m.safetensors", sha256=SHA)
    assert (tmp_path / "m.safetensors").read_bytes() == DATA


def test_a_full_disk_is_clear_and_keeps_the_partial(
    served: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "m.safetensors"
    original = PartFile.write_at
    written = {"n": 0}

    def fill_up(self: PartFile, offset: int, data: bytes) -> None:
        if written["n"] > 2 * MiB:
            raise OSError(28, "No space left on device")
        written["n"] += len(data)
        original(self, offset, data)

    monkeypatch.setattr(PartFile, "write_at", fill_up)
    with pytest.raises(DiskFull) as info:
        download([src(served)], dest, sha256=SHA, connections=2)
    assert "Free some space" in info.value.hint("en")
    assert (tmp_path / "m.safetensors.part").exists() and not dest.exists()
    monkeypatch.setattr(PartFile, "write_at", original)
    result = download([src(served)], dest, sha256=SHA, connections=2)
    assert dest.read_bytes() == DATA and result.reused > MiB


def test_too_little_free_space_is_refused_up_front(
    served: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil as _shutil

    monkeypatch.setattr(_shutil, "disk_usage", lambda p: _shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))  # type: ignore[attr-defined]
    with pytest.raises(DiskFull) as info:
        download([src(served)], tmp_path / "m.safetensors")
    assert "6.0 MiB" in info.value.message("en")


def test_a_second_process_on_the_same_file_is_refused_clearly(served: FileServer, tmp_path: Path) -> None:
    served.faults(PATH).throttle = 1 * MiB
    dest = tmp_path / "m.safetensors"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = (
        "import sys; from pathlib import Path; from launcher.downloads import DownloadSource, download; "
        "download([DownloadSource(sys.argv[1])], Path(sys.argv[2]), connections=1)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, served.url_for(PATH), str(dest)], env=env)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "m.safetensors.part").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(DownloadLocked) as info:
            download([src(served)], dest, sha256=SHA)
        assert str(proc.pid) in info.value.message("en")
    finally:
        proc.kill()
        proc.wait()


def test_kill_9_then_resume_refetches_at_most_one_journal_step_per_connection(
    served: FileServer, tmp_path: Path
) -> None:
    conns = 4
    served.faults(PATH).throttle = 1 * MiB  # per connection: 4 MiB/s in all, so the kill lands mid-way
    dest = tmp_path / "m.safetensors"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = (
        "import sys; from pathlib import Path; from launcher.downloads import DownloadSource, download; "
        f"download([DownloadSource(sys.argv[1])], Path(sys.argv[2]), connections={conns})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, served.url_for(PATH), str(dest)], env=env)
    journal = tmp_path / "m.safetensors.part.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (
            journal.exists()
            and sum(int(b) - int(a) for a, b in (ln.split() for ln in journal.read_text().splitlines() if ln))
            > 2.5 * MiB
        ):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the downloader stopped before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    served.wait_idle()
    first_run = served.bytes_served(PATH)
    assert first_run < len(DATA), "the download finished before the kill"
    served.faults(PATH).throttle = None
    served.reset_counts()
    result = download([src(served)], dest, sha256=SHA, connections=conns)
    assert dest.read_bytes() == DATA
    served.wait_idle()
    refetched = first_run + served.bytes_served(PATH) - len(DATA) - 2  # two 1-byte size probes
    assert 0 <= refetched <= conns * (JOURNAL_EVERY + 2 * 64 * 1024)
    assert result.reused >= 2.5 * MiB


def test_a_file_already_there_and_verified_is_not_downloaded_again(served: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "m.safetensors"
    dest.write_bytes(DATA)
    served.reset_counts()
    result = download([src(served)], dest, sha256=SHA)
    assert result.fetched == 0 and served.requests == []
    dest.write_bytes(b"my own different file")
    with pytest.raises(DestinationExists):
        download([src(served)], dest, sha256=SHA)
    assert dest.read_bytes() == b"my own different file"


def test_hugging_face_redirect_to_the_cdn(hf_endpoint: HfEndpoint, tmp_path: Path) -> None:
    hf_endpoint.add_repo("org/model", {"model.safetensors": DATA}, lfs=("model.safetensors",))
    url = f"{hf_endpoint.url}/org/model/resolve/main/model.safetensors"
    result = download([DownloadSource(url)], tmp_path / "model.safetensors", sha256=SHA, connections=4)
    assert result.connections == 4 and "/cdn/" in result.url
    assert (tmp_path / "model.safetensors").read_bytes() == DATA


def test_partfile_meta_records_the_remote(served: FileServer, tmp_path: Path) -> None:
    served.faults(PATH).throttle = 2 * MiB
    dest = tmp_path / "m.safetensors"
    stop, hook = _interrupt_after(MiB)
    with pytest.raises(DownloadInterrupted):
        download([src(served)], dest, sha256=SHA, connections=2, on_progress=hook, stop=stop)  # type: ignore[arg-type]
    meta = json.loads((tmp_path / "m.safetensors.part.json").read_text())
    assert meta["size"] == len(DATA) and meta["sha256"] == SHA and meta["etag"]
