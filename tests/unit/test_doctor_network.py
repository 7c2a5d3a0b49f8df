"""What the doctor learns about the network: from the saved ranking (plain ``doctor``) or a live probe (``--network``)."""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.layout import Bundle
from launcher import config
from launcher.doctor.checks import Facts, evaluate
from launcher.doctor.envprobe import EnvFacts
from launcher.doctor.network import gather
from launcher.hardware.nvidia import Hardware
from launcher.hardware.system import HardwareReport, SystemFacts
from launcher.mirrors import ranking
from tests.support.hermetic import REPO
from tests.support.httpbase import free_port


def bundle_with(tmp_path: Path, toml: str) -> Bundle:
    b = Bundle(root=tmp_path / "b", code=REPO)
    b.root.mkdir(parents=True)
    b.config_file.write_text(toml, encoding="utf-8")
    return b


def result(channel: str, mid: str, ok: bool, error: str = "") -> dict[str, object]:
    return {"channel": channel, "id": mid, "url": f"https://{mid}.example/simple", "ok": ok, "error": error}


def codes_for(b: Bundle, net: object) -> list[str]:
    hw = HardwareReport(Hardware("linux", "none"), SystemFacts("linux", "", "", 1, 16384, 8000, str(b.root), 10**6))
    facts = Facts(b, hw, EnvFacts("skipped", ""), None, 1, environ={}, network=net)  # type: ignore[arg-type]
    return [f.code for f in evaluate(facts)]


def test_the_saved_ranking_answers_without_the_network(tmp_path: Path) -> None:
    b = bundle_with(tmp_path, '[mirrors]\npypi = "tuna"\n')
    ranking.save(b, {"pypi": [result("pypi", "bfsu", True), result("pypi", "tuna", False, "connection refused")]})
    net = gather(b, config.load(b))
    tuna = net.chosen("pypi")
    assert net.source == "cache" and tuna is not None and (tuna.ok, tuna.error) == (False, "connection refused")
    assert tuna.url == "https://pypi.tuna.tsinghua.edu.cn/simple"  # the source in use, from the catalog
    assert [(e.id, e.chosen, e.ok) for e in net.endpoints if e.channel == "pypi"] == [
        ("tuna", True, False),
        ("bfsu", False, True),
    ]
    assert net.chosen("torch") is not None and net.chosen("torch").ok is None  # type: ignore[union-attr]
    assert "MIRROR_UNREACHABLE" in codes_for(b, net)


def test_a_failed_transfer_after_the_measurement_counts(tmp_path: Path) -> None:
    b = bundle_with(tmp_path, '[mirrors]\npypi = "tuna"\n')
    ranking.save(b, {"pypi": [result("pypi", "tuna", True)]})
    ranking.record_failure(b, "pypi", "tuna", "HTTP 403")
    tuna = gather(b, config.load(b)).chosen("pypi")
    assert tuna is not None and (tuna.ok, tuna.error) == (False, "HTTP 403")


def test_stale_measurements_and_offline_mode_say_nothing(tmp_path: Path) -> None:
    b = bundle_with(tmp_path, '[mirrors]\npypi = "tuna"\n')
    ranking.save(b, {"pypi": [result("pypi", "tuna", False, "timed out")]}, now=time.time() - 7 * 3600)
    net = gather(b, config.load(b))
    assert net.source == "none" and all(e.ok is None for e in net.endpoints)
    offline = bundle_with(tmp_path / "o", "[network]\noffline = true\n")
    assert gather(offline, config.load(offline)).source == "offline"


def wheel_folder(tmp_path: Path) -> Path:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "torch-2.7.1+cpu-cp311-cp311-linux_x86_64.whl").write_bytes(b"")
    return wheels


def test_a_live_probe_of_the_endpoints_in_use(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    wheels = wheel_folder(tmp_path)
    b = bundle_with(tmp_path, f'[mirrors]\npypi = "{dead}/simple"\ntorch = "{wheels}"\nhuggingface = "{dead}"\n')
    started = time.monotonic()
    net = gather(b, config.load(b), live=True, timeout=2)
    assert time.monotonic() - started < 4
    got = {e.channel: (e.id, e.ok, e.error) for e in net.endpoints}
    assert net.source == "live" and got == {"pypi": ("custom", False, "connection refused"),
                                            "torch": ("local", True, ""),
                                            "huggingface": ("custom", False, "connection refused")}  # fmt: skip
    assert codes_for(b, net)[:2] == ["MIRROR_UNREACHABLE", "HF_UNREACHABLE"]


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[str]:
    """An https:// server whose certificate nobody trusts, as a TLS-inspecting proxy looks to Python."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)  # fmt: skip
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_untrusted_certificate_is_an_ssl_error(tmp_path: Path, self_signed_server: str) -> None:
    b = bundle_with(tmp_path, f'[mirrors]\npypi = "{self_signed_server}/simple"\ntorch = "{wheel_folder(tmp_path)}"\n'
                              f'huggingface = "http://127.0.0.1:{free_port()}"\n')  # fmt: skip
    net = gather(b, config.load(b), live=True, timeout=2)
    pypi = net.chosen("pypi")
    assert pypi is not None and (pypi.ok, pypi.error) == (False, "TLS certificate error")
    codes = codes_for(b, net)
    assert codes[0] == "SSL_ERROR" and "MIRROR_UNREACHABLE" not in codes
    assert json.loads(json.dumps(net.to_dict()))["source"] == "live"
