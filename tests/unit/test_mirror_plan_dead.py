"""A channel whose every mirror failed is known as such (MirrorPlan.no_working_mirror): never "current: X (fastest)"."""

from __future__ import annotations

from pathlib import Path

from bootstrap.layout import Bundle
from launcher import config
from launcher.mirrors import ranking
from launcher.mirrors.catalog import load_catalog
from launcher.mirrors.plan import plan_for


def _bundle(tmp_path: Path) -> Bundle:
    bundle = Bundle(tmp_path / "b", code=Path(__file__).resolve().parents[2])
    bundle.ensure_dirs()
    return bundle


def test_no_working_mirror_after_a_test_or_recorded_failures(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    cfg = config.defaults(bundle.config_file)
    torch_ids = [m.id for m in load_catalog(bundle.mirrors_file).channel("torch").mirrors if m.automatic]
    assert plan_for(bundle, cfg).no_working_mirror("torch") is None  # nothing measured: unknown, not dead

    ranking.save(bundle, {"torch": [{"id": i, "ok": False, "error": "DNS lookup failed"} for i in torch_ids]})
    dead = plan_for(bundle, cfg).no_working_mirror("torch")
    assert dead is not None and set(dead) == set(torch_ids) and set(dead.values()) == {"DNS lookup failed"}
    assert plan_for(bundle, cfg).no_working_mirror("pypi") is None

    # one mirror healthy: the channel works
    ranking.save(bundle, {"torch": [{"id": torch_ids[0], "ok": True}]
                          + [{"id": i, "ok": False, "error": "timed out"} for i in torch_ids[1:]]})  # fmt: skip
    assert plan_for(bundle, cfg).no_working_mirror("torch") is None
    # ... until a real transfer through it fails too
    ranking.record_failure(bundle, "torch", torch_ids[0], "connection reset")
    dead = plan_for(bundle, cfg).no_working_mirror("torch")
    assert dead is not None and dead[torch_ids[0]] == "connection reset"
