"""高级选项: the generation UI's launch options, each with its help and "restore default".

The form is drawn from :data:`launcher.config.SETTINGS` (data, not code
branches): a setting with choices gets a Select, a boolean a Switch, anything
else an Input, checked with :func:`launcher.config.check_value` as it is typed.
Nothing is written until Save; then every change goes to config.toml in one
:func:`launcher.config.apply` (comments kept), and an invalid value, or
listening on the network without a login, is never saved.  The options take
effect the next time the generation UI starts.

The VRAM preset shows what ``auto`` means on this machine: the hardware probe
runs in a worker the first time the page is shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static, Switch

from bootstrap.errors import YijianError
from bootstrap.i18n import Text
from launcher import config
from launcher.errors import UsageError
from launcher.mirrors.catalog import load_catalog
from launcher.models.vram import auto_preset
from launcher.tui.pages.form import FormPage, KeyedPage, failure, relabel_select

if TYPE_CHECKING:
    from launcher.hardware.system import HardwareReport

# The options on this page, in order, with their short titles.  Everything else about them (type, default,
# allowed values, help) comes from launcher.config.SETTINGS.
FIELDS: tuple[tuple[str, Text], ...] = (
    ("launch.port", Text("端口", "Port")),
    ("launch.listen", Text("局域网访问", "Listen on LAN")),
    ("launch.auth", Text("登录 (auth)", "Login (auth)")),
    ("launch.vram", Text("显存优化", "VRAM preset")),
    ("launch.attention", Text("注意力实现", "Attention")),
    ("launch.precision", Text("计算精度", "Precision")),
    ("launch.api", Text("API", "API")),
    ("launch.open_browser", Text("自动打开浏览器", "Open browser")),
    ("network.offline", Text("离线模式", "Offline (HF)")),
)

# What each choice means, short enough for the Select (value -> words); a choice not listed shows as itself.
CHOICES: dict[str, dict[str, Text]] = {
    "launch.vram": {
        "auto": Text("auto（按显存自动）", "auto (from the VRAM)"),
        "none": Text("none（不优化，最快）", "none (all on GPU)"),
        "medvram": Text("medvram（省显存）", "medvram (offload)"),
        "lowvram": Text("lowvram（最省，最慢）", "lowvram (slowest)"),
    },
    "launch.attention": {
        "auto": Text("auto（自动）", "auto"),
        "sdpa": Text("sdpa（PyTorch 自带）", "sdpa (PyTorch)"),
        "xformers": Text("xformers", "xformers"),
    },
    "launch.precision": {
        "auto": Text("auto（自动）", "auto"),
        "fp16": Text("fp16（半精度）", "fp16 (half)"),
        "bf16": Text("bf16", "bf16"),
        "fp32": Text("fp32（全精度）", "fp32 (full)"),
    },
}

# A second line of help where the setting's own one-liner is not enough.
MORE_HELP: dict[str, Text] = {
    "launch.port": Text("被占用时自动用下一个空闲端口。", "When it is taken, the next free port is used."),
    "launch.listen": Text(
        "规则：开启后局域网里的设备都能访问，必须同时设置登录（auth），否则不会保存。",
        "Rule: anyone on the network can reach it, so a login (auth) is required; without one nothing is saved.",
    ),
    "launch.auth": Text("也保护 API。留空表示不需要登录。", "It protects the API too. Empty means no login."),
    "launch.vram": Text(
        "none 全部放在显卡上；medvram 按部件放入；lowvram 逐层放入（最慢）。",
        "none keeps all on the GPU; medvram offloads the model; lowvram goes layer by layer.",
    ),  # fmt: skip
    "launch.attention": Text(
        "auto：xformers 已安装且能用时用它，否则用 PyTorch SDPA。",
        "auto uses xformers when it is installed and works, else PyTorch SDPA.",
    ),
    "launch.precision": Text(
        "auto：显卡上用 fp16，CPU 上用 fp32；bf16 不受支持时用 fp16。",
        "auto: fp16 on the GPU, fp32 on the CPU; bf16 falls back to fp16 where unsupported.",
    ),  # fmt: skip
    "network.offline": Text(
        "开启后不测速、不下载模型，安装只用本地文件（HF_HUB_OFFLINE=1）。",
        "No speed tests and no downloads; installs use local files only (HF_HUB_OFFLINE=1).",
    ),
}

LISTEN_RULE = Text(*config.LISTEN_RULE)  # the same rule as `config set` and `config validate`

ARCHITECTURES = (("sd15", "SD 1.5"), ("sd2", "SD 2.x"), ("sdxl", "SDXL"))

HELP_WIDTH = 74  # cells a help line has at 100 columns
ON_OFF = {True: Text("开", "on"), False: Text("关", "off")}


def describe_auto_vram(report: HardwareReport) -> Text:
    """One line: what ``auto`` means on this machine."""
    gpu = report.nvidia.main_gpu
    if gpu is None:
        return Text("本机未检测到 NVIDIA 显卡：生成在 CPU 上运行，显存优化不起作用。",
                    "No NVIDIA GPU found: generation runs on the CPU, where the VRAM preset does nothing.")  # fmt: skip
    if not gpu.memory_total_mib:
        return Text(f"本机 {gpu.short_name}：显存大小未知，启动时按实际显存选择。",
                    f"This {gpu.short_name}: its VRAM is unknown; the preset is chosen at start.")  # fmt: skip
    mib = gpu.memory_total_mib
    picks = [(name, auto_preset(mib, arch)) for arch, name in ARCHITECTURES]
    where = f"{gpu.short_name}，{mib / 1024:.0f} GB"
    where_en = f"{gpu.short_name}, {mib / 1024:.0f} GB"
    if len({p for _, p in picks}) == 1:
        return Text(
            f"本机（{where}）auto 会选：{picks[0][1]}", f"On this machine ({where_en}) auto picks: {picks[0][1]}"
        )
    listing = "，".join(f"{name} → {p}" for name, p in picks)
    listing_en = ", ".join(f"{name} → {p}" for name, p in picks)
    return Text(f"本机（{where}）auto 会选：{listing}", f"On this machine ({where_en}) auto picks: {listing_en}")


def field_id(key: str) -> str:
    return key.replace(".", "-")


KEY_OF_WIDGET = {f"w-{field_id(key)}": key for key, _ in FIELDS}


def as_text(value: Any) -> str:
    """A value as the user sees it in help text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "-" if value == "" else str(value)


class AdvancedPage(FormPage):
    DEFAULT_CSS = """
    AdvancedPage #adv-intro { margin: 1 0 0 0; }
    AdvancedPage #adv-actions { height: 1; margin: 1 0 0 0; }
    AdvancedPage #adv-actions Button { margin-right: 2; }
    AdvancedPage #adv-status { width: 1fr; }
    AdvancedPage .field { height: auto; margin: 1 0 0 0; }
    AdvancedPage .field-row { height: 1; }
    AdvancedPage .field-title { width: 16; text-style: bold; }
    AdvancedPage .field-row Input, AdvancedPage .field-row Select { width: 30; }
    AdvancedPage .field-row Switch { border: none; height: 1; padding: 0 1; width: 10; }
    AdvancedPage .field-row Switch:focus { border: none; background-tint: $foreground 15%; }
    AdvancedPage .switch-state { width: 20; }
    AdvancedPage .field-row .reset { margin-left: 2; width: 10; min-width: 10; }
    AdvancedPage .field-row .default { margin-left: 2; width: 1fr; }
    AdvancedPage .auto { color: $success; }
    AdvancedPage .error { color: $error; }
    """
    KEYS = (("ctrl+s", "save", "保存", "Save"),)
    BINDINGS = KeyedPage.bindings(KEYS)

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.loaded: dict[str, Any] = {key: config.BY_KEY[key].default for key, _ in FIELDS}
        self.errors: dict[str, Text] = {}
        self.note: Text | None = None  # the last thing that happened (saved, load failed ...)
        self.auto_line: Text = Text("正在检测显卡……", "Checking the GPU…")
        self.probing = False
        self.saving = False

    # --- layout ---------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        self._read()  # the widgets start with the saved values (set before they mount, they could be reset)
        yield Static("", id="adv-intro", classes="help")
        with Horizontal(id="adv-actions"):
            yield Button("", id="adv-save", variant="primary", compact=True)
            yield Button("", id="adv-revert", compact=True)
            yield Static("", id="adv-status")
        for key, _ in FIELDS:
            setting = config.BY_KEY[key]
            fid = field_id(key)
            with Vertical(classes="field", id=f"field-{fid}"):
                with Horizontal(classes="field-row"):
                    yield Label("", id=f"title-{fid}", classes="field-title")
                    yield self._make_widget(setting)
                    if setting.kind is bool:
                        yield Label("", id=f"state-{fid}", classes="switch-state")
                    yield Button("", id=f"reset-{fid}", classes="reset", compact=True)
                    yield Label("", id=f"default-{fid}", classes="default help")
                yield Static("", id=f"help-{fid}", classes="help")
                if key == "launch.vram":
                    yield Static("", id="vram-auto", classes="auto")
                yield Static("", id=f"error-{fid}", classes="error")

    def _make_widget(self, setting: config.Setting) -> Widget:
        wid = f"w-{field_id(setting.key)}"
        value = self.loaded[setting.key]
        if setting.choices:
            return Select(self._options(setting), value=value, allow_blank=False, id=wid, compact=True)
        if setting.kind is bool:
            return Switch(value=bool(value), id=wid, animate=False)
        return Input("" if value == "" else as_text(value), id=wid, compact=True, password=setting.secret)

    def _options(self, setting: config.Setting) -> list[tuple[str, str]]:
        words = CHOICES.get(setting.key, {})
        return [(words[c].text(self.lang) if c in words else c, c) for c in setting.choices]

    def on_show(self) -> None:
        if not self.pending() and not self.saving:
            self.reload()  # another page may have saved (network.offline lives on the network page too)
        if not self.probing:
            self.probing = True
            self.probe()

    # --- words ------------------------------------------------------------------------------------------------
    def relabel(self) -> None:
        self.query_one("#adv-intro", Static).update(self.tr(
            "生成界面的启动选项。修改保存在 config.toml，下次启动生成界面时生效。",
            "Launch options of the generation UI. Saved in config.toml; they take effect at the next start.",
        ))  # fmt: skip
        self.query_one("#adv-save", Button).label = self.tr("保存 Ctrl+S", "Save Ctrl+S")
        self.query_one("#adv-revert", Button).label = self.tr("放弃修改", "Discard changes")
        for key, title in FIELDS:
            setting = config.BY_KEY[key]
            fid = field_id(key)
            self.query_one(f"#title-{fid}", Label).update(self.text(title))
            self.query_one(f"#reset-{fid}", Button).label = self.tr("恢复默认", "Default")
            default = self.text(ON_OFF[setting.default]) if setting.kind is bool else as_text(setting.default)
            self.query_one(f"#default-{fid}", Label).update(self.tr(f"默认：{default}", f"default: {default}"))
            self.query_one(f"#help-{fid}", Static).update(self._help(setting))
            widget = self.query_one(f"#w-{fid}")
            if isinstance(widget, Select):
                relabel_select(widget, self._options(setting))
            elif isinstance(widget, Switch):
                self._switch_state(key)
        self.query_one("#vram-auto", Static).update(self.text(self.auto_line))
        self._check()
        self._show_state()

    def _help(self, setting: config.Setting) -> str:
        """The setting's own help, then ours; Chinese breaks before ours rather than inside a word run."""
        own, more = setting.help(self.lang), self.text(MORE_HELP[setting.key]) if setting.key in MORE_HELP else ""
        if not more:
            return own
        if self.lang == "en":
            return f"{own}. {more}"
        return f"{own}。{more}" if cell_len(own + more) <= HELP_WIDTH else f"{own}。\n{more}"

    # --- values ---------------------------------------------------------------------------------------------
    def _read(self) -> None:
        """The saved settings (a few small files: read here, not in a worker)."""
        try:
            cfg = config.load(self.yijian.bundle)
        except YijianError as e:  # a broken config.toml: the form shows the defaults and says why
            self.load_error = Text(e.message("zh"), e.message("en"))
            cfg = config.defaults(self.yijian.bundle.config_file)
        else:
            self.load_error = None
        self.loaded = {key: cfg[key] for key, _ in FIELDS}

    def reload(self) -> None:
        """Put the saved settings into the form again."""
        self._read()
        for key, _ in FIELDS:
            self._put(key, self.loaded[key])
        self._check()
        self._show_state()

    def _put(self, key: str, value: Any) -> None:
        widget = self.query_one(f"#w-{field_id(key)}")
        if isinstance(widget, Select):
            widget.value = value
        elif isinstance(widget, Switch):
            widget.value = bool(value)
            self._switch_state(key)
        elif isinstance(widget, Input):
            widget.value = "" if value == "" else as_text(value)

    def value(self, key: str) -> tuple[Any, Text | None]:
        """The form's value of one setting, and why it is not valid (or None)."""
        setting = config.BY_KEY[key]
        widget = self.query_one(f"#w-{field_id(key)}")
        value: Any
        if isinstance(widget, (Select, Switch)):
            value = widget.value
        else:
            assert isinstance(widget, Input)
            try:
                value = config.parse_value(setting, widget.value)
            except UsageError:
                value = widget.value  # check_value then says what type is expected
        problem = config.check_value(setting, value, load_catalog(self.yijian.bundle.mirrors_file))
        return value, Text(*problem) if problem else None

    def values(self) -> tuple[dict[str, Any], dict[str, Text]]:
        """Every value of the form, and every problem (including the listen-needs-auth rule)."""
        values: dict[str, Any] = {}
        errors: dict[str, Text] = {}
        for key, _ in FIELDS:
            value, problem = self.value(key)
            values[key] = value
            if problem is not None:
                errors[key] = problem
        if config.listen_problem(values) and "launch.auth" not in errors:
            errors["launch.listen"] = LISTEN_RULE
        return values, errors

    def changes(self, values: dict[str, Any]) -> list[tuple[str, Any | None]]:
        """What to write: changed values; a value back at its default is removed from config.toml."""
        out: list[tuple[str, Any | None]] = []
        for key, value in values.items():
            if value != self.loaded[key]:
                out.append((key, None if value == config.BY_KEY[key].default else value))
        return out

    def pending(self) -> bool:
        values, _ = self.values()
        return bool(self.changes(values))

    def _check(self) -> None:
        _, self.errors = self.values()
        for key, _ in FIELDS:
            error = self.errors.get(key)
            box = self.query_one(f"#error-{field_id(key)}", Static)
            box.update(f"✗ {self.text(error)}" if error else "")
            box.display = error is not None

    def _switch_state(self, key: str) -> None:
        widget = self.query_one(f"#w-{field_id(key)}", Switch)
        self.query_one(f"#state-{field_id(key)}", Label).update(self.text(ON_OFF[widget.value]))

    def _show_state(self) -> None:
        values, errors = self.values()
        pending = len(self.changes(values))
        self.query_one("#adv-status", Static).update(self.status_line(len(errors), pending))

    # --- events ---------------------------------------------------------------------------------------------
    @on(Input.Changed)
    @on(Select.Changed)
    @on(Switch.Changed)
    def _changed(self, event: Input.Changed | Select.Changed | Switch.Changed) -> None:
        if isinstance(event, Switch.Changed) and event.switch.id in KEY_OF_WIDGET:
            self._switch_state(KEY_OF_WIDGET[event.switch.id])
        self._check()
        self._show_state()

    @on(Button.Pressed, ".reset")
    def _reset(self, event: Button.Pressed) -> None:
        key = next(k for k, _ in FIELDS if event.button.id == f"reset-{field_id(k)}")
        self._put(key, config.BY_KEY[key].default)
        self._check()
        self._show_state()

    @on(Button.Pressed, "#adv-revert")
    def _revert(self) -> None:
        self.note = self.save_error = None
        for key, _ in FIELDS:
            self._put(key, self.loaded[key])
        self._check()
        self._show_state()

    @on(Button.Pressed, "#adv-save")
    def _save_pressed(self) -> None:
        self.action_save()

    def action_save_en(self) -> None:
        self.action_save()

    @work(thread=True, exclusive=True, group="advanced-save", exit_on_error=False)
    def save(self, changes: list[tuple[str, Any | None]], values: dict[str, Any]) -> None:
        try:
            config.apply(self.yijian.bundle, changes)
        except Exception as e:  # a broken config.toml, a read-only folder ...: said on the page, nothing written
            self.app.call_from_thread(self._saved, None, failure(e))
            return
        self.app.call_from_thread(self._saved, values, None)

    def _saved(self, values: dict[str, Any] | None, failure: Text | None) -> None:
        self.saving = False
        self.save_error = failure
        if values is not None:
            self.load_error = None  # what was just written is valid
            self.loaded = dict(values)  # the widgets already show them (and maybe newer edits)
            if self.yijian.running:
                self.note = Text("已保存。生成界面正在运行：重启后生效。",
                                 "Saved. The generation UI is running: restart it to apply.")  # fmt: skip
            else:
                self.note = Text("已保存到 config.toml，下次启动生成界面时生效。",
                                 "Saved to config.toml; takes effect at the next start.")  # fmt: skip
            self.yijian.state_changed("config")
        self._show_state()

    # --- the automatic VRAM choice ----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="advanced-probe", exit_on_error=False)
    def probe(self) -> None:
        from launcher.hardware.system import probe_hardware

        report = probe_hardware(self.yijian.bundle.root)
        self.app.call_from_thread(self._show_auto, describe_auto_vram(report))

    def _show_auto(self, line: Text) -> None:
        self.auto_line = line
        self.query_one("#vram-auto", Static).update(self.text(line))
