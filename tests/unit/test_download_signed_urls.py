"""Downloads behind a redirect to a signed URL (Civitai): expiry during a run, and credentials kept at home."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from launcher.downloads import DownloadSource, download
from launcher.downloads.progress import Progress
from tests.support.civitai_endpoint import CivitaiEndpoint

MiB = 1024 * 1024


def test_a_signed_url_that_expires_mid_run_is_asked_for_again_and_the_bytes_are_kept(
    civitai_endpoint: CivitaiEndpoint, tmp_path: Path
) -> None:
    data = os.urandom(8 * MiB)
    civitai_endpoint.token = "tok-5678"
    civitai_endpoint.add_model(model_id=1, version_id=2, files={"m.safetensors": data})
    faults = civitai_endpoint.faults(2, "m.safetensors")
    faults.drop_after = MiB  # every connection hangs up after 1 MiB: the workers keep asking the signed URL again
    expired: list[int] = []

    def on_progress(p: Progress) -> None:
        if p.done > 3 * MiB and not expired:
            expired.append(civitai_endpoint.expire_signed())

    source = DownloadSource(f"{civitai_endpoint.url}/api/download/models/2", headers={"Authorization": "Bearer tok-5678"})
    result = download([source], tmp_path / "m.safetensors", sha256=hashlib.sha256(data).hexdigest(), connections=2,
                      on_progress=on_progress)  # fmt: skip
    assert expired and result.path.read_bytes() == data
    civitai_endpoint.wait_idle()
    refused = [r for r in civitai_endpoint.requests_to("/signed/") if r.status == 403]
    redirects = civitai_endpoint.requests_to("/api/download/")
    assert refused and len(redirects) >= 2  # it met the expired URL, then asked the download link again
    assert result.reused > 0 and result.reused + result.fetched == len(data)  # what came before was kept
    assert not any("Authorization" in r.headers for r in civitai_endpoint.requests_to("/signed/"))
