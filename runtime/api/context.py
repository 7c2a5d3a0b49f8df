"""What every ``/sdapi/v1`` route module works with: the engine, A1111's settings, the styles file."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.engine import Engine
from runtime.styles import FILE_NAME as STYLES_FILE
from runtime.styles import StyleFile
from runtime.webui_settings import WebuiSettings

log = logging.getLogger("yijian.runtime")


@dataclass
class ApiContext:
    engine: Engine
    settings: WebuiSettings
    styles: StyleFile
    lang: str = "en"
    server_stop: bool = False  # A1111's --api-server-stop: the server-stop/restart/kill routes exist
    control: dict[str, Any] = field(default_factory=dict)  # "server": the uvicorn server, set by runtime.server

    @classmethod
    def create(cls, engine: Engine, lang: str = "en", *, styles_file: Path | None = None,
               server_stop: bool = False) -> ApiContext:  # fmt: skip
        root = engine.bundle.root
        ctx = cls(engine, WebuiSettings.for_bundle(root), StyleFile(styles_file or root / STYLES_FILE), lang,
                  server_stop)  # fmt: skip
        ctx.apply_saved()
        return ctx

    def apply_saved(self) -> None:
        """The saved settings that live in the engine (clip skip, the VAE, previews) take effect at start."""
        from bootstrap.errors import YijianError

        self.engine.clip_skip = int(self.settings.get("CLIP_stop_at_last_layers"))
        vae = str(self.settings.get("sd_vae"))
        if vae not in ("Automatic", "None") and self.engine.model is not None:
            try:
                self.engine.select_vae(vae)
            except YijianError as e:  # the file is gone or broken: the model's own VAE, and the log says why
                log.warning("The saved VAE %s is not used: %s", vae, e.message("en"))
        self.apply_previews()

    def apply_previews(self) -> None:
        s = self.settings
        enabled = bool(s.get("live_previews_enable"))
        self.engine.progress.preview_every = int(s.get("show_progress_every_n_steps")) if enabled else -1
