"""Installer failures in plain words: each rule against output in the form uv and pip really print."""

from __future__ import annotations

import re

import pytest

from launcher.diagnosis import diagnose_installer, load_rules

SAMPLES = {
    "tls-intercepted": "WARNING: Retrying ... SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    ": self-signed certificate in certificate chain",
    "hash-mismatch": "error: Failed to download `torch==2.7.1+cu128`\n  Caused by: Hash mismatch for `torch==2.7.1+cu128`\n\nExpected:",
    "index-forbidden": "  hint: An index URL (https://mirror.example/simple) returned a 403 Forbidden error. This could indicate lack of ...",
    "mirror-unreachable": "error: Request failed after 3 retries in 12.0s\n  Caused by: Failed to fetch: `http://127.0.0.1:9/simple/pkg/`\n"
    "  Caused by: Connection refused (os error 111)",
    "torch-index-not-read": "ERROR: Could not find a version that satisfies the requirement torch==2.13.0+cpu (from versions: 2.7.1,"
    " 2.9.0)\nERROR: No matching distribution found for torch==2.13.0+cpu",
    "torch-not-for-this-python": "ERROR: Could not find a version that satisfies the requirement torch==2.1.2 (from versions: 2.2.0)\n"
    "ERROR: No matching distribution found for torch==2.1.2",
    "not-on-mirror": "  x No solution found when resolving dependencies:\n  `-> Because tinypkgx was not found in the package registry and "
    "you require tinypkgx, we can conclude that your requirements are unsatisfiable.",
    "version-conflict": "  x No solution found when resolving dependencies:\n  `-> Because all versions of needs-new-torch depend on "
    "torch>=2.8 and torch==2.7.1+cu128, we can conclude that your requirements are unsatisfiable.",
    "disk-full": "error: Failed to install: torch-2.7.1+cu128\n  Caused by: No space left on device (os error 28)",
    "permission-denied": "ERROR: Could not install packages due to an OSError: [Errno 13] Permission denied: '/env/lib/python3.11'",
}


@pytest.mark.parametrize(("rule_id", "output"), SAMPLES.items(), ids=list(SAMPLES))
def test_each_rule_names_its_failure(rule_id: str, output: str) -> None:
    found = diagnose_installer(output)
    assert found is not None and found.id == rule_id


def test_every_rule_is_sampled_and_speaks_both_languages() -> None:
    rules = load_rules()
    assert {r.diagnosis.id for r in rules} == set(SAMPLES)
    for r in rules:
        d = r.diagnosis
        assert re.search(r"[\u4e00-\u9fff]", d.zh + d.fix_zh) and not re.search(r"[\u4e00-\u9fff]", d.en + d.fix_en)


def test_unknown_output_has_no_diagnosis() -> None:
    assert diagnose_installer("Resolved 42 packages in 12ms\nInstalled 42 packages") is None
