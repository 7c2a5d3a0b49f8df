"""One-click start (一键启动): from a fresh bundle to the generation UI in the browser.

Eight steps, each visible with its progress; the TUI's home page and
``yijian start`` render the same :class:`StepUpdate` stream.

1. preflight   - settings readable, the bundle folder usable and writable, disk space, a free port;
2. hardware    - GPU, driver and VRAM (NVML, then nvidia-smi), or "no NVIDIA GPU";
3. pack        - the environment pack for that GPU and driver (or the one the settings name);
4. environment - built, or verified as already matching the pack (no work then);
5. model       - the default model when the library has none (resumable, verified); when it cannot be had
                 (offline, or every route failed) the flow goes on without a model, or with the demo model
                 or a file the user adds if ``OneClickOptions.no_model`` asks them (the TUI's dialog);
6. launch      - the runtime started in the bundle environment;
7. ready       - its "Running on local URL" line;
8. browser     - opened (unless switched off); where none can be (no display, CI), the URL to open by hand.

A failing step reports its error together with the doctor's findings (for
the runtime: the signatures found in its log) and raises the error; nothing
the user owns is touched.  UI-free, like the rest of the core.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bootstrap.errors import YijianError
from bootstrap.i18n import Text
from bootstrap.layout import Bundle
from launcher.doctor.scanner import Finding
from launcher.runtime_process import LaunchOptions, RuntimeProcess

STEPS: tuple[tuple[str, Text], ...] = (
    ("preflight", Text("预检", "Preflight")),
    ("hardware", Text("硬件", "Hardware")),
    ("pack", Text("环境包", "Pack")),
    ("environment", Text("生成环境", "Environment")),
    ("model", Text("模型", "Model")),
    ("launch", Text("启动", "Launch")),
    ("ready", Text("等待就绪", "Ready")),
    ("browser", Text("打开浏览器", "Browser")),
)
STEP_IDS = tuple(s for s, _ in STEPS)
MIN_FREE_MIB = {"cpu": 4 * 1024, "cuda": 12 * 1024}  # environment + one model, with some room


@dataclass
class StepUpdate:
    step: str
    state: str  # running | progress | done | skipped | failed
    message: Text | None = None
    done: int | None = None  # bytes or units, for progress
    total: int | None = None
    error: YijianError | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def index(self) -> int:
        return STEP_IDS.index(self.step)

    @property
    def title(self) -> Text:
        return STEPS[self.index][1]


@dataclass
class OneClickOptions:
    pack: str = "setting"  # a pack id, "auto", or "setting" (config's setup.pack)
    demo: bool = False  # launch the random demo model; no model download
    open_browser: bool | None = None  # None: launch.open_browser
    port: int | None = None
    ready_timeout: float = 600.0
    passthrough: tuple[str, ...] = ()  # A1111 flags given after --
    webui_user: str | None = None  # an A1111 webui-user.bat/.sh whose COMMANDLINE_ARGS (and torch variables) apply
    # Asked when the library is empty and the default model cannot be had (the reason, or None when offline);
    # answers one of NO_MODEL_CHOICES.  None (the CLI): go on without a model.
    no_model: Callable[[YijianError | None], str] | None = None


# A1111 flags that say where the models are: with one of them, an empty library does not mean "download one".
MODELS_ELSEWHERE = ("--ckpt", "--ckpt-dir", "--models-dir", "--data-dir")
NO_MODEL_CHOICES = ("none", "demo", "file")  # start without a model | the labelled demo model | a file I have


Listener = Callable[[StepUpdate], None]


class OneClick:
    def __init__(self, bundle: Bundle, lang: str, on_update: Listener, options: OneClickOptions | None = None, *,
                 environ: dict[str, str] | None = None, on_line: Callable[[str], None] | None = None,
                 opener: Callable[[str], Any] | None = None) -> None:  # fmt: skip
        import os

        self.bundle, self.lang, self.on_update = bundle, lang, on_update
        self.options = options or OneClickOptions()
        self.environ = dict(os.environ if environ is None else environ)
        self.on_line, self.opener = on_line, opener
        self.process: RuntimeProcess | None = None
        self.url: str | None = None
        self._stopped = False
        self.hardware: Any = None
        self.pack: Any = None
        self.without_model = False  # the UI was started with no model: say how to add one
        self.demo = self.options.demo  # this run's: the user may pick the demo model at the model step
        self._options: LaunchOptions | None = None

    # --- reporting ----------------------------------------------------------------------------------------------
    def _emit(self, step: str, state: str, zh: str = "", en: str = "", **kw: Any) -> None:
        self.on_update(StepUpdate(step, state, Text(zh, en) if (zh or en) else None, **kw))

    def run(self) -> RuntimeProcess:
        """Walk the steps; return the started runtime.  Raises the failing step's error after reporting it."""
        steps: list[tuple[str, Callable[[], None]]] = [
            ("preflight", self._preflight), ("hardware", self._hardware), ("pack", self._pack),
            ("environment", self._environment), ("model", self._model), ("launch", self._launch),
            ("ready", self._ready), ("browser", self._browser),
        ]  # fmt: skip
        for step, work in steps:
            if self._stopped:
                break
            self._emit(step, "running")
            try:
                work()
            except YijianError as e:
                self.on_update(StepUpdate(step, "failed", Text(e.message("zh"), e.message("en")), error=e,
                                          findings=self._findings_for(step, e)))  # fmt: skip
                if self.process is not None:
                    self.process.stop()
                raise
        assert self.process is not None or self._stopped
        return self.process  # type: ignore[return-value]

    def stop(self) -> int | None:
        self._stopped = True
        return self.process.stop() if self.process is not None else None

    def _findings_for(self, step: str, err: YijianError) -> list[Finding]:
        from launcher.doctor.scanner import scan

        text = f"{err.message('en')}\n{err.params.get('detail', '')}"
        if step in ("launch", "ready") and self.process is not None:
            text = self.process.output() + "\n" + text
        return scan(text, self.lang)

    # --- the steps ----------------------------------------------------------------------------------------------
    def _preflight(self) -> None:
        from bootstrap.errors import BundleNotWritable
        from bootstrap.layout import check_root_path
        from launcher import config
        from launcher.errors import NoFreePort
        from launcher.runtime_process import next_free_port

        cfg = config.load(self.bundle)  # ConfigInvalid names every problem
        check_root_path(self.bundle.root)
        try:
            self.bundle.ensure_dirs()
            probe = self.bundle.cache_dir / ".write-test"
            probe.write_text("ok", encoding="utf-8")
            probe.unlink()
        except OSError as e:
            raise BundleNotWritable(str(e), path=str(self.bundle.root)) from e
        self.cfg = cfg
        wanted = self.options.port or cfg.get_int("launch.port")
        port = next_free_port(wanted) if self.options.port is None else wanted
        if port is None:
            raise NoFreePort(first=wanted, last=wanted + 19)
        self.port = port
        free = shutil.disk_usage(self.bundle.root).free // (1024 * 1024)
        notes_zh = [f"端口 {port}"] + ([f"（{wanted} 已被占用）"] if port != wanted else [])
        notes_en = [f"port {port}"] + ([f"({wanted} is in use)"] if port != wanted else [])
        self._emit("preflight", "done", "设置正常，" + "".join(notes_zh) + f"，可用磁盘 {free / 1024:.1f} GB",
                   "settings ok, " + " ".join(notes_en) + f", {free / 1024:.1f} GB free on disk")  # fmt: skip
        self.free_mib = free

    def _hardware(self) -> None:
        from launcher.hardware.system import probe_hardware

        self.hardware = probe_hardware(self.bundle.root)
        nv = self.hardware.nvidia
        gpu = nv.main_gpu
        if gpu is None:
            self._emit("hardware", "done", "未检测到 NVIDIA 显卡：将用 CPU 生成（很慢）",
                       "No NVIDIA GPU: images will be generated on the CPU (slow)")  # fmt: skip
            return
        vram = f"{gpu.memory_total_mib / 1024:.0f} GB" if gpu.memory_total_mib else "?"
        self._emit("hardware", "done", f"{gpu.short_name}（{gpu.sm}，显存 {vram}），驱动 {nv.driver_version}",
                   f"{gpu.short_name} ({gpu.sm}, {vram} VRAM), driver {nv.driver_version}")  # fmt: skip

    def _pack(self) -> None:
        from launcher.packs.catalog import load_packs

        packs = load_packs(self.bundle.packs_dir)
        wanted = self.cfg.get_str("setup.pack") if self.options.pack == "setting" else self.options.pack
        if wanted == "auto":
            from launcher.packs.resolver import choose

            choice = choose(self.hardware.nvidia, packs)  # NoPackFits names every pack's reason
            self.pack = choice.chosen
            why_zh, why_en = (choice.reasons_zh[:1] or ("",))[0], (choice.reasons_en[:1] or ("",))[0]
        else:
            self.pack = packs.require(wanted)
            why_zh, why_en = "按设置指定", "as set in the settings"
        p = self.pack
        self._emit("pack", "done", f"{p.id}（torch {p.torch}）：{why_zh}", f"{p.id} (torch {p.torch}): {why_en}")
        need = MIN_FREE_MIB["cpu" if p.cuda == "cpu" else "cuda"]
        if self.free_mib < need:
            self._emit("pack", "done", f"{p.id}：磁盘空间可能不够（剩 {self.free_mib / 1024:.1f} GB，建议 {need // 1024} GB）",
                       f"{p.id}: disk space may not be enough ({self.free_mib / 1024:.1f} GB free, "
                       f"{need // 1024} GB advised)")  # fmt: skip

    def _environment(self) -> None:
        from launcher.environment import EnvironmentBuilder

        def on_event(e: Any) -> None:
            if e.step == "prefetch" and e.total:
                self._emit("environment", "progress", e.zh, e.en, done=e.done or 0, total=e.total)
            else:
                self._emit("environment", "progress", e.zh, e.en)

        builder = EnvironmentBuilder(self.bundle, self.lang, lambda line: self._emit("environment", "progress", line, line),
                                     on_event)  # fmt: skip
        _, plan, _ = builder.prepare(self.pack.id, measure=False)
        if plan.noop:
            self._emit("environment", "done", f"{plan.env.name} 已符合环境包 {self.pack.id}",
                       f"{plan.env.name} already matches the {self.pack.id} pack")  # fmt: skip
            return
        started = time.monotonic()
        builder.build(self.pack.id, force=False)
        took = time.monotonic() - started
        self._emit(
            "environment", "done", f"已构建 {plan.env.name}（{took:.0f} 秒）", f"built {plan.env.name} ({took:.0f} s)"
        )

    def _model(self) -> None:
        from launcher.models.library import scan

        if self.demo:
            self._emit("model", "skipped", "演示模式：使用随机权重的演示模型", "demo mode: the random demo model")
            return
        extra = list(self.cfg["models.extra_dirs"])
        have = self._usable_checkpoints(extra)
        flags = self._launch_options("model").a1111
        elsewhere = [f for f in MODELS_ELSEWHERE if flags.has(f) or f in flags.rest]
        if not have and (flags.has("--no-download-sd-model") or elsewhere):
            why = "--no-download-sd-model" if flags.has("--no-download-sd-model") else " ".join(elsewhere)
            self._emit("model", "skipped", f"按 {why} 不下载默认模型", f"not downloading the default model ({why})")
            return
        if not have:
            failure: YijianError | None = None
            if not self.cfg.get_bool("network.offline"):
                try:
                    self._download_default()
                except YijianError as e:
                    from launcher.errors import DownloadInterrupted

                    if isinstance(e, DownloadInterrupted) and self._stopped:
                        raise
                    failure = e
            if failure is not None or self.cfg.get_bool("network.offline"):
                self._without_model(failure, extra)
                return
        else:
            self._emit("model", "progress", f"模型库里有 {len(have)} 个模型", f"{len(have)} model(s) in the library")
        self._architecture_configs(extra)
        count = len([m for m in scan(self.bundle, extra, with_hashes=False) if m.type == "checkpoint"])
        self._emit("model", "done", f"模型库里有 {count} 个模型", f"{count} model(s) in the library")

    def _usable_checkpoints(self, extra: list[str]) -> list[Any]:
        from launcher.models.library import scan

        return [m for m in scan(self.bundle, extra, with_hashes=False) if m.type == "checkpoint" and not m.problems]

    def how_to_add_model(self) -> Text:
        """The one sentence that says how to add a model (printed, and shown by the TUI)."""
        folder = self.bundle.models_dir / "Stable-diffusion"
        return Text(
            f"添加模型：把 .safetensors 模型文件放进 {folder}，然后在界面的“模型”页点刷新；"
            "或在能联网时运行 ./start.sh models download sd15。",
            f"To add a model: put a .safetensors model file in {folder} and refresh the UI's Models tab; "
            "or, when online, run ./start.sh models download sd15.",
        )

    def _without_model(self, failure: YijianError | None, extra: list[str]) -> None:
        """No model and none to be had: go on anyway, as the user chooses (no dead end)."""

        why = (
            Text(f"没能下载默认模型（{failure.message('zh')}）", f"the default model could not be downloaded "
                 f"({failure.message('en')})")
            if failure is not None
            else Text("离线模式：模型库是空的，也不下载默认模型", "offline: the library is empty and no model is downloaded")
        )  # fmt: skip
        choice = self.options.no_model(failure) if self.options.no_model is not None else "none"
        if choice not in NO_MODEL_CHOICES:
            raise ValueError(f"no_model answered {choice!r}, not one of {NO_MODEL_CHOICES}")
        if choice == "file":
            have = self._usable_checkpoints(extra)
            if have:
                self._architecture_configs(extra)
                self._emit("model", "done", f"用你放进来的模型：{have[0].path.name}",
                           f"using the model you added: {have[0].path.name}")  # fmt: skip
                return
            choice = "none"
        if choice == "demo":
            self.demo = True
            self._emit("model", "skipped", f"{why.zh}；改用演示模型（随机权重，只会生成噪点）",
                       f"{why.en}; using the demo model (random weights, it only draws noise)")  # fmt: skip
            return
        self.without_model = True
        add = self.how_to_add_model()
        self._emit("model", "skipped", f"{why.zh}；先启动没有模型的界面。{add.zh}", f"{why.en}; starting the UI "
                   f"without a model. {add.en}")  # fmt: skip

    def _download_default(self) -> None:
        from launcher.models.catalog import catalog_path, load_model_catalog
        from launcher.models.fetch import ModelRequest, fetch_model

        entry = load_model_catalog(catalog_path(self.bundle)).default()
        self._emit(
            "model", "progress", f"下载默认模型 {entry.name_zh}", f"downloading the default model {entry.name_en}"
        )

        def on_progress(p: Any) -> None:
            self._emit("model", "progress", done=p.done, total=p.total)

        fetch_model(self.bundle, self.cfg, ModelRequest(entry.id), lang=self.lang, on_progress=on_progress,
                    say=lambda line: self._emit("model", "progress", line, line))  # fmt: skip

    def _architecture_configs(self, extra: list[str]) -> None:
        from launcher.models.configs import architectures_in_library, ensure_configs, missing_architectures

        archs = sorted(architectures_in_library(self.bundle, extra))
        if missing_architectures(self.bundle, archs):
            ensure_configs(self.bundle, archs, lang=self.lang,
                           say=lambda line: self._emit("model", "progress", line, line))  # fmt: skip

    def _launch_options(self, step: str) -> LaunchOptions:
        """The runtime's launch options: settings, then the A1111 flags (launch.args, COMMANDLINE_ARGS, the
        webui-user file, those after --), read and checked once, logins taken out."""
        from bootstrap.a1111_flags import table
        from launcher.runtime_process import add_webui_user, options_from_config, take_logins

        if self._options is None:
            options = options_from_config(self.cfg, self.lang, port=self.port, demo=self.demo,
                                          passthrough=self.options.passthrough, open_browser=False)  # fmt: skip
            if self.options.webui_user:
                warning = add_webui_user(options, self.options.webui_user, self.lang)
                if warning:
                    self._emit(step, "progress", warning, warning)
            take_logins(options, self.environ)
            for given in options.a1111.given.values():  # said here too: `start` shows no runtime output
                if given.flag.effect == "none":
                    zh, en = (table().no_effect_line(given.flag, lang) for lang in ("zh", "en"))
                    self._emit(step, "progress", zh, en)
            self._options = options
        return self._options

    def _launch(self) -> None:
        from launcher.runtime_process import start

        options = self._launch_options("launch")
        options.port, options.demo = self.port, self.demo  # the model step may have chosen the demo model
        self.process = start(self.bundle, options, self.environ, on_line=self.on_line)
        self._emit("launch", "done", f"已启动生成界面（进程 {self.process.proc.pid}）",
                   f"started the generation UI (process {self.process.proc.pid})")  # fmt: skip

    def _ready(self) -> None:
        from launcher.errors import RuntimeStartFailed

        assert self.process is not None
        deadline = time.monotonic() + self.options.ready_timeout
        while time.monotonic() < deadline:
            url = self.process.wait_ready(0.5)
            if url is not None:
                self.url = url
                self._emit("ready", "done", f"就绪：{url}", f"ready: {url}")
                return
            if self.process.proc.poll() is not None:
                self.process.wait()
                raise RuntimeStartFailed(f"exit code {self.process.proc.returncode}", log=str(self.process.log_path))
            if self._stopped:
                return
        raise RuntimeStartFailed(f"no ready line in {self.options.ready_timeout:.0f} s", log=str(self.process.log_path))

    def _browser(self) -> None:
        wanted = self.options.open_browser
        if wanted is None:
            wanted = self.cfg.get_bool("launch.open_browser")
        if not wanted or not self.url:
            self._emit("browser", "skipped", f"请在浏览器里打开 {self.url}", f"open {self.url} in your browser")
            return
        from bootstrap import browser

        # None: the system's browser, if this machine can show one; an opener answers None/True when it opened
        why = browser.open_url(self.url, self.environ) if self.opener is None else browser.result(self.opener(self.url))
        said = browser.opened_text(self.url, why)
        self._emit("browser", "done" if why is None else "skipped", said.zh, said.en)
