"""Which index an installer's failure is the fault of, so the builder can move that channel to its next mirror.

uv names the URL that failed; pip often names only the path, or nothing (a 403 on a project page reads as "no
versions").  Then each index is asked once, with the installer's user agent, and its answer checked.
"""

from __future__ import annotations

import requests

from bootstrap.builder.install import InstallSpec
from launcher.mirrors.fallback import problem_for_exception, problem_for_status
from launcher.mirrors.sources import Source

_NETWORK = (
    ("connection refused", "connection refused"), ("dns error", "DNS lookup failed"),
    ("name or service not known", "DNS lookup failed"), ("operation timed out", "timed out"),
    ("timed out", "timed out"), ("403 forbidden", "HTTP 403"), ("404 not found", "HTTP 404"),
    ("http status server error", "server error"), ("hash mismatch", "the mirror served a different file"),
    ("certificate", "TLS error"), ("could not fetch url", "unreachable"), ("failed to fetch", "unreachable"),
    ("max retries exceeded", "unreachable"), ("403 client error", "HTTP 403"), ("http error 403", "HTTP 403"),
    # a file that is not a wheel (a Git LFS pointer, a page): uv "invalid package format" / "Failed to read from zip
    # file", pip "Wheel 'x' located at ... is invalid" / "BadZipFile"
    ("invalid package format", "the mirror served a broken file"), ("failed to read from zip file",
     "the mirror served a broken file"), ("is invalid.", "the mirror served a broken file"),
    ("badzipfile", "the mirror served a broken file"), ("not a zip file", "the mirror served a broken file"),
)  # fmt: skip


def _host(url: str) -> str:
    return url.split("/")[2].lower() if "://" in url else ""


AGENTS = {"uv": "uv/0.9", "pip": "pip/25.0"}  # what the installers send; mirrors' WAFs match on the name
_NOT_FOUND = ("no matching distribution", "could not find a version that satisfies", "not found in the package registry",
              "there is no version of")  # fmt: skip


def _problem(source: Source, agent: str) -> str | None:
    """Why ``source`` does not answer the torch project page for this installer's user agent; None if it does.

    The check for an output that does not say which index failed: pip's retry warnings name only the path, and
    pip treats a 403 on a project page (TUNA's WAF to pip's user agent) as "no versions" and says nothing more.
    """
    url = source.url.rstrip("/") + "/torch/" if source.kind == "pep503" else source.url
    try:
        resp = requests.get(url, timeout=10, headers={"User-Agent": agent})
    except requests.RequestException as exc:
        return problem_for_exception(exc) or "connection failed"
    if resp.status_code == 404:
        return None  # the index answers; it lacks the project
    from launcher.mirrors.probe import content_problem

    return problem_for_status(resp.status_code) or content_problem(
        source.kind, resp.content, resp.headers.get("Content-Type", ""), resp.status_code
    )


def mirror_failure(lines: list[str], spec: InstallSpec, step: str, installer: str = "uv") -> tuple[str, str] | None:
    """(channel, reason) when an installer's output says a mirror failed, not the request.

    uv names the failing URL.  pip names only the path (``/simple/torch/``), which both indexes share, or
    nothing at all (a 403 reads as "from versions: none"): then each index is asked once, as the installer.
    """
    text = "\n".join(lines).lower()
    reason = next((why for needle, why in _NETWORK if needle in text), None)
    if reason is None and not any(k in text for k in _NOT_FOUND):
        return None
    suspects = [("torch", spec.torch)] if step == "torch" and spec.torch is not None else []
    suspects = [(ch, src) for ch, src in [*suspects, ("pypi", spec.pypi)] if src is not None and not src.local]
    for channel, source in suspects:
        if reason and _host(source.url) and _host(source.url) in text:
            return channel, reason
    for channel, source in suspects:
        problem = _problem(source, AGENTS[installer])
        if problem:
            return channel, reason or problem
    return ("pypi", reason) if reason else None
