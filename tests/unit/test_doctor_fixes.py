"""``doctor --fix``'s core: which steps the findings give, and running them against a bundle with a fake builder."""

from __future__ import annotations

import socket
from pathlib import Path

from bootstrap.layout import Bundle
from launcher import config
from launcher.doctor.fixes import Action, Outcome, Step, actions, plan, run
from launcher.doctor.scanner import Finding
from launcher.errors import EnvironmentBuildFailed
from tests.support.hermetic import REPO


def finding(code: str, action: str = "", severity: str = "error") -> Finding:
    return Finding(code, severity, code.title(), f"{code} detail", f"{code} fix", {}, action)


class FakeBuilder:
    """Records what it was asked; ``fail`` makes it raise like a build whose install step failed."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail = fail

    def build(self, pack: str, force: bool) -> str | None:
        self.calls.append(("build", pack, str(force)))
        if self.fail:
            raise EnvironmentBuildFailed("the installer failed at the torch step", step="torch", log="logs/setup.log",
                                         advice_zh="", advice_en="")  # fmt: skip
        return "runtime: built for pack cpu"

    def repair(self, what: str) -> str | None:
        self.calls.append(("repair", what))
        return f"runtime: reinstalled {what}"


def bundle_at(tmp_path: Path) -> Bundle:
    (tmp_path / "b").mkdir()
    return Bundle(root=tmp_path / "b", code=REPO)


def test_one_environment_step_covers_every_environment_finding() -> None:
    steps = plan([finding("ENV_BROKEN", "rebuild"), finding("GPU_ARCH_UNSUPPORTED", "setup-auto"),
                  finding("XFORMERS_TORCH_MISMATCH", "repair-xformers", "warning"),
                  finding("HF_UNREACHABLE", "use-hf-mirror", "warning"), finding("SSL_ERROR"),
                  finding("XFORMERS_MISSING", "repair-xformers", "info")])  # fmt: skip
    summary = [(s.action.id if s.action else None, s.codes, s.mode, s.force) for s in steps]
    assert summary == [
        ("use-hf-mirror", ["HF_UNREACHABLE"], "run", False),  # quick, local changes first
        ("setup-auto", ["ENV_BROKEN", "GPU_ARCH_UNSUPPORTED", "XFORMERS_TORCH_MISMATCH"], "run", True),
        ("repair-xformers", ["XFORMERS_MISSING"], "optional", False),  # info: offered, not run
        (None, ["SSL_ERROR"], "manual", False),
    ]
    repairs = plan([finding("XFORMERS_TORCH_MISMATCH", "repair-xformers"), finding("TORCH_CPU_BUILD", "repair-torch")])
    assert [(s.action.id if s.action else None, s.codes) for s in repairs] == [
        ("repair-torch", ["XFORMERS_TORCH_MISMATCH", "TORCH_CPU_BUILD"])]  # fmt: skip


def test_config_fixes_keep_comments_and_report_what_changed(tmp_path: Path) -> None:
    b = bundle_at(tmp_path)
    b.config_file.write_text("# my settings\n[launch]\nport = 7860  # the UI\n", encoding="utf-8")
    steps = plan([finding("CUDA_OOM", "vram-medvram", "warning"), finding("HF_UNREACHABLE", "use-hf-mirror")])
    outcomes = run(b, steps, builder=FakeBuilder())
    assert [(o.status, o.changes) for o in outcomes] == [
        ("done", ["launch.vram: auto -> medvram"]), ("done", ["mirrors.huggingface: auto -> hf-mirror"])]  # fmt: skip
    text = b.config_file.read_text(encoding="utf-8")
    assert "# my settings" in text and "port = 7860  # the UI" in text
    cfg = config.load(b)
    assert (cfg["launch.vram"], cfg["mirrors.huggingface"]) == ("medvram", "hf-mirror")
    assert [o.status for o in run(b, steps)] == ["unchanged", "unchanged"]  # a second run has nothing to do


def test_a_busy_port_moves_to_a_free_one(tmp_path: Path) -> None:
    b = bundle_at(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config.apply(b, [("launch.port", port)])
        (outcome,) = run(b, plan([finding("PORT_IN_USE", "free-port", "warning")]))
        new = config.load(b).get_int("launch.port")
        assert outcome.status == "done" and new > port and outcome.changes == [f"launch.port: {port} -> {new}"]
    (again,) = run(b, plan([finding("PORT_IN_USE", "free-port", "warning")]))
    assert again.status == "unchanged"  # nothing holds the port now


def test_environment_actions_go_through_the_builder(tmp_path: Path) -> None:
    b = bundle_at(tmp_path)
    builder = FakeBuilder()
    run(b, plan([finding("ENV_MISSING", "setup-auto", "warning")]), builder=builder)
    run(b, plan([finding("DEPENDENCY_CONFLICT", "rebuild", "warning")]), builder=builder)
    run(b, plan([finding("XFORMERS_TORCH_MISMATCH", "repair-xformers", "warning")]), builder=builder)
    assert builder.calls == [("build", "auto", "False"), ("build", "setting", "True"), ("repair", "xformers")]


def test_a_failing_fix_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    b = bundle_at(tmp_path)
    model = b.models_dir / "Stable-diffusion" / "mine.safetensors"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"weights")
    steps = plan([finding("ENV_BROKEN", "rebuild"), finding("CUDA_OOM", "vram-lowvram", "warning")])
    outcomes = run(b, steps, builder=FakeBuilder(fail=True))
    assert [o.status for o in outcomes] == ["done", "failed"]
    failed = outcomes[1]
    assert failed.error is not None and failed.to_dict("en")["error"]["code"] == "ENV_BUILD_FAILED"
    assert model.read_bytes() == b"weights" and config.load(b)["launch.vram"] == "lowvram"


def test_an_action_not_marked_safe_waits_for_a_yes(tmp_path: Path) -> None:
    b = bundle_at(tmp_path)
    risky = Action("risky", "config", False, "有风险", "risky", {"launch.vram": "lowvram"})
    step = Step(risky, (finding("CUDA_OOM"),), "run")
    assert [o.status for o in run(b, [step])] == ["declined"]
    asked: list[Step] = []
    assert [o.status for o in run(b, [step], confirm=lambda s: asked.append(s) or True)] == ["done"]
    assert asked == [step] and all(a.safe for a in actions().values())  # every shipped action is safe today


def test_outcomes_are_json() -> None:
    (step,) = plan([finding("SSL_ERROR")])
    assert Outcome(step, "manual").to_dict("en") == {"action": None, "codes": ["SSL_ERROR"], "status": "manual",
                                                     "safe": None, "what": "SSL_ERROR fix", "changes": [],
                                                     "error": None}  # fmt: skip
