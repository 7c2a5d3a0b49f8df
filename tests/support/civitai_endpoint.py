"""A Civitai stand-in on 127.0.0.1: the site API's model routes and its download redirect to signed URLs.

::

    cv = CivitaiEndpoint().start()
    version = cv.add_model(model_id=4384, version_id=128713, kind="LORA", base_model="SDXL 1.0",
                           files={"style.safetensors": data}, trained_words=["st1", "glow"])
    cv.token = "secret"             # downloads now need Authorization: Bearer secret (401 without)
    cv.expire_signed()              # every signed URL handed out so far now answers 403 (expired)
    cv.faults(version_id, "style.safetensors").throttle = 1 << 20

Routes (as Civitai's developer docs and compat-and-mirrors.md, third check, item 11 describe them):

* ``GET /api/v1/models?limit=N`` -- ``{"items": [...], "metadata": {...}}`` (what ``mirrors test`` probes);
* ``GET /api/v1/models/{id}`` -- the model with its ``modelVersions`` (newest first);
* ``GET /api/v1/model-versions/{id}`` and ``/api/v1/model-versions/by-hash/{sha256}`` -- one version: ``id``,
  ``modelId``, ``name``, ``baseModel``, ``trainedWords``, ``model: {name, type, nsfw}``, ``images`` and
  ``files``, each file with ``id``, ``name``, ``sizeKB``, ``type``, ``primary``, ``metadata: {fp, size,
  format}``, ``hashes: {SHA256 (upper case), AutoV2, …}`` and ``downloadUrl``;
* ``GET /api/download/models/{versionId}[?type=…&format=…&fp=…&size=…]`` -- 307 to a signed URL on
  ``localhost:PORT`` (another host for a client of 127.0.0.1) when the token is right, 401 (JSON)
  without it or with a wrong one, 404 for an unknown version;
* ``GET /signed/{key}?expires=…`` -- the file's bytes, Range and :class:`Faults` as the file server does;
  403 (an XML ``AccessDenied``/``Request has expired``, as object stores answer) once expired;
* ``GET /images/{name}`` -- preview images.

``requests`` records every request with its headers, so a test can check that the signed host never saw
the token.  ``token = None`` means no token is needed.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fileserver import Blob, BytesHandler, BytesServer, Faults, serve_bytes
from tests.support.httpbase import Handler

# A 1x1 PNG: what a preview route serves unless a test gives its own bytes.
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


@dataclass
class CvFile:
    id: int
    name: str
    blob: Blob
    type: str = "Model"  # Model | Pruned Model | VAE | Config | Training Data
    primary: bool = False
    fp: str = "fp16"
    size: str = "pruned"
    format: str = "SafeTensor"

    def record(self, base: str, version_id: int) -> dict[str, Any]:
        sha = hashlib.sha256(self.blob.data).hexdigest().upper()
        query = f"type={self.type.replace(' ', '%20')}&format={self.format}&size={self.size}&fp={self.fp}"
        return {
            "id": self.id, "name": self.name, "sizeKB": round(len(self.blob.data) / 1024, 3), "type": self.type,
            "primary": self.primary, "metadata": {"fp": self.fp, "size": self.size, "format": self.format},
            "pickleScanResult": "Success", "virusScanResult": "Success",
            "hashes": {"SHA256": sha, "AutoV2": sha[:10], "CRC32": "00000000"},
            "downloadUrl": f"{base}/api/download/models/{version_id}?{query}",
        }  # fmt: skip


@dataclass
class CvVersion:
    id: int
    model_id: int
    model_name: str
    kind: str  # Checkpoint | LORA | LoCon | TextualInversion | VAE | Upscaler | Controlnet | Wildcards …
    name: str
    base_model: str
    trained_words: list[str]
    files: list[CvFile]
    images: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""

    def record(self, base: str) -> dict[str, Any]:
        return {
            "id": self.id, "modelId": self.model_id, "name": self.name, "baseModel": self.base_model,
            "baseModelType": "Standard", "description": self.description, "trainedWords": self.trained_words,
            "air": f"urn:air:sdxl:{self.kind.lower()}:civitai:{self.model_id}@{self.id}",
            "model": {"name": self.model_name, "type": self.kind, "nsfw": False, "poi": False},
            "files": [f.record(base, self.id) for f in self.files],
            "images": [dict(i, url=i["url"].replace("{base}", base)) for i in self.images],
            "downloadUrl": f"{base}/api/download/models/{self.id}",
        }  # fmt: skip


def _json(handler: Handler, status: int, data: object) -> None:
    handler.reply(status, json.dumps(data).encode(), content_type="application/json")


class _CvHandler(BytesHandler):
    @property
    def site(self) -> CivitaiEndpoint:
        server = self.owner
        assert isinstance(server, CivitaiEndpoint)
        return server

    def route(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path, site = url.path, self.site
        if path == "/api/v1/models":
            _json(self, 200, {"items": [v.record(site.url) for v in list(site.versions.values())[:1]],
                              "metadata": {"totalItems": len(site.versions)}})  # fmt: skip
        elif m := re.fullmatch(r"/api/v1/models/(\d+)", path):
            versions = sorted((v for v in site.versions.values() if v.model_id == int(m[1])), key=lambda v: -v.id)
            if not versions:
                _json(self, 404, {"error": f"No model with id {m[1]}"})
                return
            first = versions[0]
            _json(self, 200, {"id": first.model_id, "name": first.model_name, "type": first.kind, "nsfw": False,
                              "modelVersions": [{k: v for k, v in ver.record(site.url).items() if k != "model"}
                                                for ver in versions]})  # fmt: skip
        elif m := re.fullmatch(r"/api/v1/model-versions/by-hash/([0-9a-fA-F]+)", path):
            found = next((v for v in site.versions.values() for f in v.files
                          if hashlib.sha256(f.blob.data).hexdigest() == m[1].lower()), None)  # fmt: skip
            if found is None:
                _json(self, 404, {"error": "Model not found"})
            else:
                _json(self, 200, found.record(site.url))
        elif m := re.fullmatch(r"/api/v1/model-versions/(\d+)", path):
            version = site.versions.get(int(m[1]))
            if version is None:
                _json(self, 404, {"error": f"No model version with id {m[1]}"})
            else:
                _json(self, 200, version.record(site.url))
        elif m := re.fullmatch(r"/api/download/models/(\d+)", path):
            self.download(int(m[1]), query)
        elif m := re.fullmatch(r"/signed/([\w-]+)", path):
            self.signed(m[1])
        elif m := re.fullmatch(r"/images/([\w.-]+)", path):
            data = site.images.get(m[1])
            if data is None:
                self.reply(404, b"not found", content_type="text/plain")
            else:
                self.reply(200, data, content_type="image/png")
        else:
            self.reply(404, b"<html><body>404</body></html>", content_type="text/html")

    def download(self, version_id: int, query: Mapping[str, str]) -> None:
        site = self.site
        token = site.token
        given = self.headers.get("Authorization", "")
        if token is not None and given != f"Bearer {token}":
            _json(self, 401, {"error": "Unauthorized",
                              "message": "The creator of this asset requires you to be logged in to download it"})  # fmt: skip
            return
        version = site.versions.get(version_id)
        if version is None:
            _json(self, 404, {"error": "Model not found"})
            return
        file = site.pick(version, query)
        key = secrets.token_hex(8)
        with site.lock:
            site.signed[key] = (file.blob, False)
        location = f"http://localhost:{site.port}/signed/{key}?expires=86400&filename={file.name}"
        self.reply(307, b"", [("Location", location)], content_type="text/plain")

    def signed(self, key: str) -> None:
        site = self.site
        with site.lock:
            entry = site.signed.get(key)
        if entry is None or entry[1]:
            body = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            self.reply(403, body, content_type="application/xml")
            return
        name = next((f.name for v in site.versions.values() for f in v.files if f.blob is entry[0]), "file")
        serve_bytes(self, entry[0], [("Content-Disposition", f'attachment; filename="{name}"')])


@dataclass
class CivitaiEndpoint(BytesServer):
    """A running Civitai stand-in; ``url`` is what ``mirrors use civitai URL`` takes."""

    handler: type[Handler] = _CvHandler
    versions: dict[int, CvVersion] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    signed: dict[str, tuple[Blob, bool]] = field(default_factory=dict)  # key -> (bytes, expired)
    token: str | None = None
    _next_file: int = 1000

    def add_model(self, *, model_id: int, version_id: int, files: Mapping[str, bytes], kind: str = "Checkpoint",
                  base_model: str = "SD 1.5", trained_words: Sequence[str] = (), model_name: str = "Test model",
                  version_name: str = "v1.0", primary: str | None = None, variants: Mapping[str, tuple[str, str]] | None = None,
                  file_types: Mapping[str, str] | None = None, images: Sequence[str] = ("preview.png",),
                  description: str = "<p>A test model.</p>") -> CvVersion:  # fmt: skip
        """Publish one version.  ``primary``: the primary file's name (default: the first); ``variants``:
        name -> (fp, size); ``file_types``: name -> Civitai file type; ``images``: preview names served here."""
        variants, file_types = variants or {}, file_types or {}
        cv_files = []
        for i, (name, data) in enumerate(files.items()):
            self._next_file += 1
            fp, size = variants.get(name, ("fp16", "pruned"))
            cv_files.append(CvFile(self._next_file, name, Blob(data, hashlib.sha256(data).hexdigest()),
                                   file_types.get(name, "Model"), name == primary if primary else i == 0, fp, size))  # fmt: skip
        for image in images:
            self.images.setdefault(image, PNG_1X1)
        version = CvVersion(version_id, model_id, model_name, kind, version_name, base_model, list(trained_words),
                            cv_files, [{"url": "{base}/images/" + im, "nsfw": False, "nsfwLevel": 1, "type": "image",
                                        "width": 1, "height": 1} for im in images], description)  # fmt: skip
        self.versions[version_id] = version
        return version

    def pick(self, version: CvVersion, query: Mapping[str, str]) -> CvFile:
        """The file a download's query names (type/format/fp/size), as Civitai does; else the primary."""
        for f in version.files:
            if query.get("type", f.type) == f.type and query.get("fp", f.fp) == f.fp and \
                    query.get("size", f.size) == f.size and query.get("format", f.format) == f.format:  # fmt: skip
                return f
        return next(f for f in version.files if f.primary)

    def faults(self, version_id: int, name: str) -> Faults:
        return next(f.blob.faults for f in self.versions[version_id].files if f.name == name)

    def expire_signed(self) -> int:
        """Expire every signed URL handed out so far; returns how many."""
        with self.lock:
            for key, (blob, _) in list(self.signed.items()):
                self.signed[key] = (blob, True)
            return len(self.signed)

    def requests_to(self, prefix: str) -> list[Any]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(prefix)]
