"""How much of A1111 1.10 behaves as A1111 here: prompts, flags, API routes, ``webuiapi`` calls (issue 16).

Prints four figures, each measured against A1111 itself or a real client, not against our own expectations:

  prompts   the 55 prompts of tests/data/a1111_prompt_reference.json (A1111's own prompt_parser output):
            how many get A1111's editing schedules (20 steps; a 10-step hires pass after 20, new and old
            timelines) and its attention weights, and which do not;
  flags     the flags table's report (``flag_report()`` of bootstrap/a1111_flags.py);
  routes    A1111 1.10's core ``/sdapi/v1`` routes (modules/api/api.py, plus the built-in Lora extension's)
            that ``python -m runtime --demo`` serves, from its OpenAPI document, and which are missing;
  webuiapi  every call of the PyPI client ``webuiapi`` against that runtime: working, honest not-yet error
            (501 naming the feature, or A1111's 422 for a script or extension we do not have), absent (a
            third-party extension's route or one A1111 1.10 removed: A1111 without it answers 404 too),
            failing (anything else, listed).

    python benchmarks/a1111_compat.py [--no-runtime]

Starting the demo runtime takes about a minute on this machine; ``--no-runtime`` prints prompts and flags only.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def prompt_figures() -> tuple[int, int, list[str]]:
    from runtime.prompts import parse_attention, prompt_schedule

    cases: list[dict[str, Any]] = json.loads(
        (REPO / "tests" / "data" / "a1111_prompt_reference.json").read_text(encoding="utf-8")
    )["cases"]
    differ = []
    for case in cases:
        prompt = case["prompt"]
        same = [list(e) for e in prompt_schedule(prompt, 20)] == case["schedule_20"]
        same &= [list(e) for e in prompt_schedule(prompt, 10, first_pass_steps=20)] == case["schedule_hires_20_10"]
        old = prompt_schedule(prompt, 10, first_pass_steps=20, old_scheduling=True)
        same &= [list(e) for e in old] == case["schedule_old_hires_20_10"]
        for text, expected in case.get("attention", {}).items():
            ours = parse_attention(text)
            same &= [t for t, _ in ours] == [t for t, _ in expected] and all(
                math.isclose(w, want, rel_tol=1e-12) for (_, w), (_, want) in zip(ours, expected, strict=False)
            )
        if not same:
            differ.append(prompt)
    return len(cases) - len(differ), len(cases), differ


def flag_figures() -> str:
    """The flags table's own report (bootstrap/a1111_flags.py): A1111 1.10's flags mapped, accepted, refused."""
    from bootstrap.a1111_flags import flag_report

    total, mapped, accepted, refused = flag_report()
    return (f"{mapped + accepted} of {total} accepted ({mapped} mapped to Yijian's equivalent, "
            f"{accepted} accepted with a no-effect warning), {refused} refused")


def runtime_figures() -> None:
    from tests.support.a1111_compat import A1111_CORE_ROUTES, demo_runtime, routes_present, run_calls

    with tempfile.TemporaryDirectory() as tmp, demo_runtime(Path(tmp) / "bundle") as port:
        served = routes_present(port)
        outcomes = run_calls(port)
    missing = [f"{m} {p}" for m, p in A1111_CORE_ROUTES if (m, p) not in served]
    print(f"routes:   {len(A1111_CORE_ROUTES) - len(missing)} of {len(A1111_CORE_ROUTES)} core routes of A1111 1.10 "
          f"served (server-stop/restart/kill too, with --api-server-stop)")  # fmt: skip
    for route in missing:
        print(f"          missing: {route}")
    kinds = ("works", "honest", "absent", "failing")
    counts = {k: sum(o.kind == k for o in outcomes) for k in kinds}
    print(f"webuiapi: {len(outcomes)} calls: {counts['works']} working, {counts['honest']} honest not-yet error, "
          f"{counts['absent']} absent as in A1111 without the extension, {counts['failing']} failing")  # fmt: skip
    for o in outcomes:
        if o.kind != "works":
            print(f"          {o.kind:8} {o.call}  {o.detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--no-runtime", action="store_true", help="skip the routes and webuiapi figures")
    args = parser.parse_args(argv)
    same, total, differ = prompt_figures()
    print(
        f"prompts:  {same} of {total} prompts parse and schedule as A1111's prompt_parser ({100 * same / total:.0f} %)"
    )
    for prompt in differ:
        print(f"          differs: {prompt!r}")
    print(f"flags:    {flag_figures()}")
    if not args.no_runtime:
        runtime_figures()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
