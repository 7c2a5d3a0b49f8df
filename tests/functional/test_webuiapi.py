"""The PyPI client ``webuiapi`` drives ``python -m runtime --demo`` as users' scripts drive A1111 (issue 16 item 5).

Every call ``webuiapi.WebUIApi`` offers runs once (tests/support/a1111_compat.py lists them with what A1111
answers); each must work, answer an honest not-yet error (501 naming the feature, or A1111's 422 for a script
we do not have), or, for a third-party extension's route, be absent as it is from an A1111 without it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.a1111_compat import A1111_CORE_ROUTES, demo_runtime, routes_present, run_calls

pytestmark = pytest.mark.slow

def test_every_webuiapi_call_works_or_answers_honestly(tmp_path: Path) -> None:
    with demo_runtime(tmp_path / "bundle") as port:
        missing = [r for r in A1111_CORE_ROUTES if r not in routes_present(port)]
        outcomes = run_calls(port)
    assert [o for o in outcomes if o.kind == "failing"] == []
    assert missing == []
    kinds = {o.call: o.kind for o in outcomes}
    assert kinds["txt2img"] == kinds["img2img"] == kinds["extra_single_image"] == kinds["get_cmd_flags"] == "works"
    assert kinds["img2img(mask_image)"] == "works"  # the unmasked half keeps every pixel
    assert kinds["interrogate"] == kinds["txt2img(restore_faces)"] == "honest"
    # ControlNet is built in: the demo's tiny ControlNet draws, and the extension's routes answer
    assert kinds["txt2img(controlnet_units)"] == kinds["controlnet_detect"] == kinds["controlnet_model_list"] == "works"
