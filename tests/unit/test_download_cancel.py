"""Pausing a model download from another thread (the TUI's 暂停) and resuming it with the same call (继续)."""

from __future__ import annotations

import hashlib
import threading

import pytest

from bootstrap.layout import Bundle
from launcher import config
from launcher.downloads.partfile import PartFile
from launcher.downloads.progress import Progress
from launcher.errors import DownloadInterrupted
from launcher.models.fetch import ModelRequest, fetch_model
from tests.support.fake_models import random_safetensors
from tests.support.hermetic import Sealed
from tests.support.hf_endpoint import HfEndpoint

MiB = 1024 * 1024
DATA = random_safetensors(6 * MiB)  # a real header: the format check of a .safetensors name passes
SHA = hashlib.sha256(DATA).hexdigest()
REPO, FILE = "OedoSoldier/detail-tweaker-lora", "add_detail.safetensors"  # the catalog's add-detail entry


@pytest.fixture
def bundle(sealed: Sealed, hf_endpoint: HfEndpoint) -> Bundle:
    hf_endpoint.add_repo(REPO, {FILE: DATA}, lfs=(FILE,))
    b = Bundle(sealed.root)
    b.ensure_dirs()
    config.apply(b, [("mirrors.huggingface", hf_endpoint.url), ("downloads.connections", 2)])
    return b


def test_stop_from_another_thread_keeps_the_partial_and_the_same_call_resumes(
    bundle: Bundle, hf_endpoint: HfEndpoint
) -> None:
    hf_endpoint.faults(REPO, FILE).throttle = 2 * MiB
    dest = bundle.models_dir / "Lora" / FILE
    stop = threading.Event()
    seen: list[Progress] = []

    def on_progress(p: Progress) -> None:
        seen.append(p)

    def pause_when_started() -> None:  # what the 暂停 button does: set the event from the UI thread
        while not any(p.done >= 2 * MiB for p in seen):
            if stop.wait(0.02):
                return
        stop.set()

    pauser = threading.Thread(target=pause_when_started)
    pauser.start()
    cfg = config.load(bundle)
    with pytest.raises(DownloadInterrupted) as info:
        fetch_model(bundle, cfg, ModelRequest("add-detail"), on_progress=on_progress, stop=stop)
    pauser.join()
    assert "%" in info.value.message("en")
    assert not dest.exists()
    part = PartFile(dest)
    assert part.part.exists() and part.journal.exists() and part.meta_path.exists()
    assert not part.lock_path.exists()  # the lock is released: the next call can take it
    _, done = part.load()
    journaled = sum(e - s for s, e in done)
    assert MiB <= journaled < len(DATA)

    hf_endpoint.faults(REPO, FILE).throttle = None
    hf_endpoint.wait_idle()
    hf_endpoint.reset_counts()
    result = fetch_model(bundle, cfg, ModelRequest("add-detail"))  # 继续: the same call, no stop
    assert dest.read_bytes() == DATA and result.sha256 == SHA
    assert result.reused == journaled and result.fetched == len(DATA) - journaled
    assert not part.part.exists() and not part.journal.exists()


def test_without_stop_nothing_changes(bundle: Bundle) -> None:
    result = fetch_model(bundle, config.load(bundle), ModelRequest("add-detail"))
    assert result.sha256 == SHA and result.reused == 0
