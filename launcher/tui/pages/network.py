"""网络/镜像: the mirror of each channel, the 测速 table, the app's proxy and offline mode.

A thin layer over the mirror core: the choices are the catalog's
(:mod:`launcher.mirrors.catalog`), what ``auto`` means now comes from the mirror
plan (:func:`launcher.mirrors.plan.plan_for`), 测速 is ``mirrors test``
(:func:`launcher.mirrors.measure.measure`, in a worker), and a URL or folder of
your own is checked the way ``mirrors use`` checks it before it is saved.
Everything is written to config.toml with :func:`launcher.config.apply`.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, Select, Static, Switch

from bootstrap.errors import YijianError
from bootstrap.i18n import Text
from launcher import config
from launcher.errors import OfflineMode
from launcher.mirrors import ranking
from launcher.mirrors.catalog import CHANNELS, Catalog, Channel, load_catalog
from launcher.mirrors.plan import MirrorPlan, plan_for
from launcher.mirrors.sources import from_value
from launcher.tui.pages.form import FormPage, KeyedPage, failure, relabel_select
from launcher.tui.strings import CHANNEL_TITLES, no_working_mirror

CUSTOM = "custom"  # the Select's value for "a URL or folder of my own" (never a mirror id: see the catalog)

TITLES = CHANNEL_TITLES
# Channels that also take a local folder (a wheel folder you downloaded yourself).
FOLDERS = ("pypi", "torch")

# The 测速 table: key, label, width.  Fixed widths, wide enough for both languages (labels never resize a column).
COLUMNS: tuple[tuple[str, Text, int], ...] = (
    ("channel", Text("通道", "Channel"), 11),
    ("mirror", Text("镜像", "Mirror"), 18),
    ("latency", Text("首字节", "Latency"), 8),
    ("speed", Text("速度", "Speed"), 10),
    ("status", Text("状态", "Status"), 20),
)

# The probe's stable reasons (launcher.mirrors.probe.describe) in plain words; others are shown as they are.
REASONS: dict[str, Text] = {
    "timed out": Text("超时", "timed out"),
    "connection refused": Text("连接被拒绝", "refused"),
    "connection reset": Text("连接被重置", "connection reset"),
    "DNS lookup failed": Text("域名解析失败", "DNS failed"),
    "TLS certificate error": Text("证书错误", "TLS certificate"),
    "no such folder": Text("文件夹不存在", "no such folder"),
}


def reason(error: str) -> Text:
    if error in REASONS:
        return REASONS[error]
    if "wrong content" in error:
        return Text("内容不对", "wrong content")
    return Text(error, error)


def ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0f} ms"


def speed(value: Any) -> str:
    if value is None:
        return "-"
    v = float(value)
    return f"{v / 1e6:.1f} MB/s" if v >= 1e6 else f"{v / 1e3:.0f} kB/s"


class NetworkPage(FormPage):
    DEFAULT_CSS = """
    NetworkPage #net-intro { margin: 1 0 0 0; }
    NetworkPage #net-actions { height: 1; margin: 1 0 0 0; }
    NetworkPage #net-actions Button { margin-right: 2; }
    NetworkPage #net-status { width: 1fr; }
    NetworkPage .heading { margin: 1 0 0 0; }
    NetworkPage .field { height: auto; }
    NetworkPage .field-row { height: 1; margin: 1 0 0 0; }
    NetworkPage .field-title { width: 16; text-style: bold; }
    NetworkPage .field-row Select { width: 30; }
    NetworkPage .field-row Input { width: 1fr; margin-left: 2; }
    NetworkPage #proxy { width: 44; margin-left: 0; }
    NetworkPage .field-row Switch { border: none; height: 1; padding: 0 1; width: 10; }
    NetworkPage .field-row Switch:focus { border: none; background-tint: $foreground 15%; }
    NetworkPage #offline-state { width: 1fr; }
    NetworkPage .now { color: $text-muted; }
    NetworkPage .error { color: $error; }
    NetworkPage #test-note { margin: 0 0 1 0; }
    NetworkPage #mirror-table { height: auto; max-height: 24; }
    """
    KEYS = (("ctrl+s", "save", "保存", "Save"), ("ctrl+t", "speed_test", "测速", "Test"))
    BINDINGS = KeyedPage.bindings(KEYS)

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.cfg: config.Config | None = None
        self.loaded: dict[str, Any] = {}
        self.errors: dict[str, Text] = {}
        self.failed: dict[str, tuple[Any, Text]] = {}  # mirror checks that did not pass: (value, why), until edited
        self.note: Text | None = None
        self.results: dict[str, list[dict[str, Any]]] = {}  # the ranking shown in the table, per channel
        self.fresh = False  # measured in this session (else: the saved ranking)
        self.testing = False
        self.test_failure: Text | None = None
        self.saving = False
        self.plan: MirrorPlan | None = None

    @property
    def catalog(self) -> Catalog:
        return load_catalog(self.yijian.bundle.mirrors_file)

    @staticmethod
    def keys() -> tuple[str, ...]:
        return (*(f"mirrors.{ch}" for ch in CHANNELS), "network.proxy", "network.offline")

    # --- layout ---------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        cfg = self._read()  # the widgets start with the saved values (set before they mount, they could be reset)
        self.cfg, self.loaded = cfg, {key: cfg[key] for key in self.keys()}
        yield Static("", id="net-intro", classes="help")
        with Horizontal(id="net-actions"):
            yield Button("", id="net-save", variant="primary", compact=True)
            yield Button("", id="net-test", compact=True)
            yield Button("", id="net-revert", compact=True)
            yield Static("", id="net-status")
        for ch in CHANNELS:
            with Vertical(classes="field", id=f"field-{ch}"):
                with Horizontal(classes="field-row"):
                    yield Label("", id=f"title-{ch}", classes="field-title")
                    choice, typed = self._choice(ch, cfg.get_str(f"mirrors.{ch}"))
                    yield Select(self._options(ch), value=choice, allow_blank=False, id=f"sel-{ch}", compact=True)
                    custom = Input(typed, id=f"custom-{ch}", compact=True)
                    custom.display = choice == CUSTOM
                    yield custom
                yield Static("", id=f"now-{ch}", classes="now")
                yield Static("", id=f"err-{ch}", classes="error")
        with Vertical(classes="field"):
            with Horizontal(classes="field-row"):
                yield Label("", id="title-proxy", classes="field-title")
                yield Input(cfg.get_str("network.proxy"), id="proxy", compact=True)
            yield Static("", id="help-proxy", classes="help")
            yield Static("", id="err-proxy", classes="error")
        with Vertical(classes="field"):
            with Horizontal(classes="field-row"):
                yield Label("", id="title-offline", classes="field-title")
                yield Switch(cfg.get_bool("network.offline"), id="offline", animate=False)
                yield Label("", id="offline-state")
            yield Static("", id="help-offline", classes="help")
        yield Label("", id="test-heading", classes="heading")
        yield Static("", id="test-note", classes="help")
        yield DataTable(id="mirror-table", cursor_type="row", zebra_stripes=True)

    def _options(self, channel: str) -> list[tuple[str, str]]:
        ch = self.catalog.channel(channel)
        first = [("off", self.tr("off（不使用）", "off (none)"))] if channel == "github" else []
        first.append(("auto", self.tr("auto（测速选最快）", "auto (the fastest)")))
        mirrors = [(m.id, f"{m.id} · {m.name(self.lang)}" + ("" if m.automatic else self.tr(" ⚠未验证", " ⚠unverified")))
                   for m in ch.mirrors]  # fmt: skip
        custom = (CUSTOM, self.tr("自定义网址或文件夹…", "your URL or folder…") if channel in FOLDERS
                  else self.tr("自定义网址…", "your URL…"))  # fmt: skip
        return [(label, value) for value, label in (*first, *mirrors, custom)]

    def on_mount(self) -> None:
        self._refresh_plan()
        super().on_mount()

    def on_show(self) -> None:
        if not self.pending() and not self.saving:
            self.reload()  # another page may have saved (network.offline lives on the advanced page too)

    # --- words ------------------------------------------------------------------------------------------------
    def relabel(self) -> None:
        self.query_one("#net-intro", Static).update(self.tr(
            "每个通道从哪里下载：auto 按测速结果自动选最快的可用镜像；\n也可以指定一个镜像，或填你自己的网址/文件夹。",
            "Where each channel downloads from: auto picks the fastest healthy mirror;\nor choose a mirror, or give your own URL or folder.",
        ))  # fmt: skip
        self.query_one("#net-save", Button).label = self.tr("保存 Ctrl+S", "Save Ctrl+S")
        self.query_one("#net-test", Button).label = self.tr("测速 Ctrl+T", "Test Ctrl+T")
        self.query_one("#net-revert", Button).label = self.tr("放弃修改", "Discard")
        for ch in CHANNELS:
            self.query_one(f"#title-{ch}", Label).update(self.text(TITLES[ch]))
            relabel_select(self.query_one(f"#sel-{ch}", Select), self._options(ch))
            self.query_one(f"#custom-{ch}", Input).placeholder = (
                self.tr("https://… 或文件夹", "https://… or a folder") if ch in FOLDERS else "https://…"
            )
        self.query_one("#title-proxy", Label).update(self.tr("代理", "Proxy"))
        self.query_one("#proxy", Input).placeholder = self.tr("不用代理（例：http://127.0.0.1:7890）",
                                                              "no proxy (e.g. http://127.0.0.1:7890)")  # fmt: skip
        self.query_one("#help-proxy", Static).update(self.tr(
            "只对一键和它启动的程序生效（安装、下载、测速），不改系统设置；\n访问 127.0.0.1 永远直连。留空表示不用代理。",
            "Only for Yijian and what it starts (installs, downloads, tests).\n127.0.0.1 is always direct; the system is not changed. Empty: no proxy.",
        ))  # fmt: skip
        self.query_one("#title-offline", Label).update(self.tr("离线模式", "Offline mode"))
        self.query_one("#help-offline", Static).update(self.tr(
            "开启后不访问网络：不测速、不下载模型，安装只用本地文件。",
            "No network: no speed tests, no downloads; installs use local files only.",
        ))  # fmt: skip
        self.query_one("#test-heading", Label).update(self.tr("测速结果", "Speed test"))
        self._offline_state()
        self._show_now()
        self._check()
        self._show_state()
        self._fill_table()

    # --- values ---------------------------------------------------------------------------------------------
    def _read(self) -> config.Config:
        """The saved settings, and the saved ranking unless we measured (small files: read here, not in a worker)."""
        bundle = self.yijian.bundle
        if not self.fresh:
            self.results = ranking.load(bundle).results
        try:
            cfg = config.load(bundle)
        except YijianError as e:  # a broken config.toml: the page shows the defaults and says why
            self.load_error = Text(e.message("zh"), e.message("en"))
            return config.defaults(bundle.config_file)
        self.load_error = None
        return cfg

    def reread(self, what: str) -> None:
        """The state changed (app.StateChanged): the saved ranking, failures and settings again; edits are kept."""
        if self.testing:
            return  # the test's own results arrive in a moment
        self.results = ranking.load(self.yijian.bundle).results
        if not self.pending() and not self.saving:
            self._fill(self._read())
        else:
            self._refresh_plan()
        self._fill_table()

    def reload(self) -> None:
        """Put the saved settings into the page again."""
        self._fill(self._read())
        self._fill_table()

    def _choice(self, ch: str, value: str) -> tuple[str, str]:
        """The Select's value and the custom Input's text for a saved choice."""
        known = value in ("auto", "off") or value in self.catalog.channel(ch).ids
        return (value, "") if known else (CUSTOM, value)

    def _fill(self, cfg: config.Config) -> None:
        self.cfg = cfg
        self.loaded = {key: cfg[key] for key in self.keys()}
        for ch in CHANNELS:
            choice, typed = self._choice(ch, cfg.get_str(f"mirrors.{ch}"))
            self.query_one(f"#sel-{ch}", Select).value = choice
            self.query_one(f"#custom-{ch}", Input).value = typed
            self._custom_shown(ch)
        self.query_one("#proxy", Input).value = cfg.get_str("network.proxy")
        self.query_one("#offline", Switch).value = cfg.get_bool("network.offline")
        self._refresh_plan()
        self._check()
        self._show_state()

    def _refresh_plan(self) -> None:
        if self.cfg is None:
            return
        try:
            self.plan = plan_for(self.yijian.bundle, self.cfg)
        except (OSError, ValueError):  # a broken catalog or ranking file: the lines just stay empty
            self.plan = None
        self._show_now()

    def channel_value(self, ch: Channel) -> str:
        choice = self.query_one(f"#sel-{ch.id}", Select).value
        if choice != CUSTOM:
            return str(choice)
        typed = self.query_one(f"#custom-{ch.id}", Input).value.strip()
        alias = ch.by_alias(typed) if typed else None  # 清华 / tsinghua mean tuna, as in `mirrors use`
        return alias.id if alias is not None else typed

    def values(self) -> tuple[dict[str, Any], dict[str, Text]]:
        values: dict[str, Any] = {}
        errors: dict[str, Text] = {}
        catalog = self.catalog
        for ch in CHANNELS:
            key = f"mirrors.{ch}"
            value = values[key] = self.channel_value(catalog.channel(ch))
            if value == "":
                errors[key] = Text("请填写网址" + ("或文件夹" if ch in FOLDERS else "") + "，或选一个镜像。",
                                   "Enter a URL" + (" or a folder" if ch in FOLDERS else "") + ", or pick a mirror.")  # fmt: skip
                continue
            problem = config.check_value(config.BY_KEY[key], value, catalog)
            if problem:
                errors[key] = Text(*problem)
        values["network.proxy"] = self.query_one("#proxy", Input).value.strip()
        problem = config.check_value(config.BY_KEY["network.proxy"], values["network.proxy"], catalog)
        if problem:
            errors["network.proxy"] = Text(*problem)
        values["network.offline"] = self.query_one("#offline", Switch).value
        return values, errors

    def changes(self, values: dict[str, Any]) -> list[tuple[str, Any | None]]:
        """Changed values; one back at its default is removed from config.toml."""
        return [(key, None if value == config.BY_KEY[key].default else value)
                for key, value in values.items() if value != self.loaded.get(key)]  # fmt: skip

    def pending(self) -> bool:
        return bool(self.loaded) and bool(self.changes(self.values()[0]))

    # --- showing --------------------------------------------------------------------------------------------
    def _custom_shown(self, ch: str) -> None:
        self.query_one(f"#custom-{ch}", Input).display = self.query_one(f"#sel-{ch}", Select).value == CUSTOM

    def _show_now(self) -> None:
        rank = ranking.load(self.yijian.bundle) if self.plan is not None else None
        for ch in CHANNELS:
            line, dead = "", False
            if self.plan is not None and self.cfg is not None and rank is not None:
                source = self.plan.first(ch)
                choice = self.cfg.get_str(f"mirrors.{ch}")
                if self.plan.no_working_mirror(ch):
                    line, dead = f"✗ {self.text(no_working_mirror(ch))}", True  # never "now: X (fastest)"
                elif source is None:
                    line = self.tr("→ 当前：不使用", "→ now: none")
                else:
                    how = ""
                    if choice == "auto":
                        how = (self.tr("（auto：测速最快）", " (auto: fastest)") if source.id in rank.order(ch)
                               else self.tr("（auto：未测速，按列表顺序）", " (auto: not measured, list order)"))  # fmt: skip
                    name = source.url if source.id in ("custom", "local") else source.name(self.lang)
                    line = self.tr(f"→ 当前：{name}{how}", f"→ now: {name}{how}")
            now = self.query_one(f"#now-{ch}", Static)
            now.update(line)
            now.set_class(dead, "error")

    def _check(self) -> None:
        values, self.errors = self.values()
        self.failed = {key: f for key, f in self.failed.items() if values.get(key) == f[0]}
        for key in self.keys():
            if key == "network.offline":
                continue
            box = self.query_one(f"#err-{key.split('.', 1)[1]}", Static)
            error = self.errors.get(key) or (self.failed[key][1] if key in self.failed else None)
            box.update(f"✗ {self.text(error)}" if error else "")
            box.display = error is not None

    def _offline_state(self) -> None:
        on_ = self.query_one("#offline", Switch).value
        self.query_one("#offline-state", Label).update(self.tr("开", "on") if on_ else self.tr("关", "off"))

    def _show_state(self) -> None:
        values, errors = self.values()
        pending = len(self.changes(values)) if self.loaded else 0
        failed = (
            Text("镜像检查没有通过，什么都没有保存。", "A mirror check failed; nothing was saved.")
            if self.failed
            else None
        )
        line = self.status_line(
            len(errors), pending, saving=Text("正在检查并保存……", "Checking and saving…"), failed=failed
        )
        self.query_one("#net-status", Static).update(line)

    def _fill_table(self) -> None:
        table = self.query_one("#mirror-table", DataTable)
        table.clear(columns=True)
        for key, label, width in COLUMNS:
            table.add_column(self.text(label), key=key, width=width)
        current = {ch: s.id for ch in CHANNELS if self.plan is not None and (s := self.plan.first(ch)) is not None
                   and not self.plan.no_working_mirror(ch)}  # fmt: skip
        for ch in CHANNELS:
            for r in self.results.get(ch, []):
                mark = "* " if current.get(ch) == r.get("id") else "  "
                if r.get("ok"):
                    state = self.tr("可用", "ok")
                    if not r.get("automatic", True):
                        state += self.tr("（未验证）", " (unverified)")
                else:
                    state = self.text(reason(str(r.get("error", ""))))
                table.add_row(ch, mark + str(r.get("id", "")), ms(r.get("ttfb_ms")), speed(r.get("bytes_per_s")), state)
        note = self._test_note()
        self.query_one("#test-note", Static).update(note)
        table.display = bool(self.results)

    def _test_note(self) -> str:
        timeout = float(self.cfg["network.probe_timeout"]) if self.cfg is not None else 3.0
        if self.test_failure is not None and not self.testing:
            return f"✗ {self.text(self.test_failure)}"
        if self.testing:
            return self.tr(f"正在同时测速所有镜像（每个最多 {timeout:g} 秒）……",
                           f"Measuring every mirror at once (at most {timeout:g} s each)…")  # fmt: skip
        if self.fresh:
            return self.tr("测速完成，结果已保存：auto 会选每个通道最快的可用镜像（* 为当前使用）。",
                           "Done and saved: auto picks each channel's fastest healthy mirror (* = in use).")  # fmt: skip
        if self.results:
            return self.tr("上次测速的结果（6 小时内有效，* 为当前使用）。",
                           "The last speed test (valid for six hours; * = in use).")  # fmt: skip
        return self.tr("还没有测速结果（或已超过 6 小时）。点 测速 同时测所有镜像。",
                       "No recent speed test. Press Test to measure every mirror at once.")  # fmt: skip

    # --- events ---------------------------------------------------------------------------------------------
    @on(Select.Changed)
    def _selected(self, event: Select.Changed) -> None:
        if event.select.id and event.select.id.startswith("sel-"):
            ch = event.select.id.removeprefix("sel-")
            self._custom_shown(ch)
            if event.value == CUSTOM and self.is_mounted and self.screen.focused is event.select:
                self.query_one(f"#custom-{ch}", Input).focus()
        self._check()
        self._show_state()

    @on(Input.Changed)
    def _typed(self) -> None:
        self._check()
        self._show_state()

    @on(Switch.Changed, "#offline")
    def _switched(self) -> None:
        self._offline_state()
        self._show_state()

    @on(Button.Pressed, "#net-save")
    def _save_pressed(self) -> None:
        self.action_save()

    def action_save_en(self) -> None:
        self.action_save()

    def action_speed_test_en(self) -> None:
        self.action_speed_test()

    @on(Button.Pressed, "#net-test")
    def _test_pressed(self) -> None:
        self.action_speed_test()

    @on(Button.Pressed, "#net-revert")
    def _revert(self) -> None:
        self.note = self.save_error = None
        self.failed = {}
        if self.cfg is not None:
            self._fill(self.cfg)

    # --- saving ---------------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="network-save", exit_on_error=False)
    def save(self, changes: list[tuple[str, Any | None]], values: dict[str, Any]) -> None:
        """Check a URL or folder of the user's own (as ``mirrors use`` does), then write everything at once."""
        from launcher.mirrors.check import check_source

        bundle = self.yijian.bundle
        catalog = load_catalog(bundle.mirrors_file)
        timeout = float(self.cfg["network.probe_timeout"]) if self.cfg is not None else 3.0
        final: list[tuple[str, Any | None]] = []
        notes: list[Text] = []
        failed: dict[str, Text] = {}
        for key, value in changes:
            section, name = key.split(".", 1)
            source = from_value(value, catalog.channel(name)) if section == "mirrors" and value else None
            if source is not None and source.id in ("custom", "local"):
                if values["network.offline"] and source.id == "custom":
                    notes.append(Text(f"离线模式：没有检查 {value} 能否连接。", f"Offline: {value} was not checked."))
                else:
                    try:
                        checked = check_source(source, timeout, values["network.proxy"])
                    except Exception as e:  # MirrorUnusable, or anything the probe did not expect
                        failed[key] = failure(e)
                        continue
                    if checked.kind == "flat" and source.kind != "flat":
                        value = f"flat+{value}"
                        notes.append(Text("这是一个文件列表（类似阿里云 pytorch-wheels），已按 find-links 方式保存。",
                                          "A flat file listing (like Aliyun's pytorch-wheels): saved as find-links."))  # fmt: skip
            final.append((key, value))
        if failed:
            self.app.call_from_thread(self._save_failed, failed, None, values)
            return
        try:
            cfg = config.apply(bundle, final)
        except Exception as e:  # a broken config.toml, a read-only folder ...: said on the page, nothing written
            self.app.call_from_thread(self._save_failed, {}, failure(e), values)
            return
        self.app.call_from_thread(self._saved, cfg, values, notes)

    def _save_failed(self, failed: dict[str, Text], why: Text | None, values: dict[str, Any]) -> None:
        self.saving = False
        self.failed = {key: (values[key], error) for key, error in failed.items()}
        self.save_error = why
        self._check()
        self._show_state()

    def _saved(self, cfg: config.Config, values: dict[str, Any], notes: list[Text]) -> None:
        self.saving = False
        self.save_error = self.load_error = None  # what was just written is valid
        ran = Text("已保存到 config.toml。", "Saved to config.toml.")
        self.note = Text(" ".join([ran.zh, *(n.zh for n in notes)]), " ".join([ran.en, *(n.en for n in notes)]))
        if self.values()[0] == values:
            self._fill(cfg)  # shows what was really saved (flat+…); nothing was edited meanwhile
        else:
            self.cfg = cfg
            self.loaded = {key: cfg[key] for key in self.keys()}
            self._refresh_plan()
        self._fill_table()
        self._show_state()
        self.yijian.state_changed("config")

    # --- 测速 ------------------------------------------------------------------------------------------------
    def action_speed_test(self) -> None:
        if self.testing:
            return
        self.testing = True
        self.test_failure = None
        self.query_one("#net-test", Button).disabled = True
        self.query_one("#test-note", Static).update(self._test_note())
        self.speed_test()

    @work(thread=True, exclusive=True, group="network-test", exit_on_error=False)
    def speed_test(self) -> None:
        from launcher.mirrors.measure import measure

        bundle = self.yijian.bundle
        try:
            cfg = config.load(bundle)
            if cfg.get_bool("network.offline"):
                raise OfflineMode(action_zh="测速镜像", action_en="measure mirrors")
            by_channel = measure(bundle, cfg, CHANNELS)
        except Exception as e:  # offline, a broken config.toml, cache/mirrors.json not writable ...
            self.app.call_from_thread(self._tested, None, failure(e))
            return
        results = {ch: [r.to_dict() for r in rs] for ch, rs in by_channel.items()}
        self.app.call_from_thread(self._tested, results, None)

    def _tested(self, results: dict[str, list[dict[str, Any]]] | None, failure: Text | None) -> None:
        self.testing = False
        self.query_one("#net-test", Button).disabled = False
        if results is None:
            self.test_failure = failure
            self._fill_table()
            return
        self.results, self.fresh = results, True
        self._refresh_plan()
        self._fill_table()
        self.yijian.state_changed("mirrors")  # the 镜像 card and the rest read the new ranking
