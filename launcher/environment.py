"""Building and repairing the generation environment (``env/runtime``), as ``setup`` does.

One place for "which pack, which mirrors, which plan": ``yijian setup``,
``doctor --fix`` and one-click start all go through :class:`EnvironmentBuilder`.
The builder itself (:mod:`bootstrap.builder.build`) makes the new environment
beside the one in use and swaps it in after its self-check.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from bootstrap.layout import Bundle

Say = Callable[[str], None]


class EnvironmentBuilder:
    """The generation environment for a pack, built or repaired through the chosen mirrors.

    ``say`` receives one line per step; ``on_event`` (optional) every builder
    event, download progress included, for UIs that draw bars.
    """

    def __init__(self, bundle: Bundle, lang: str = "en", say: Say = lambda _: None,
                 on_event: Callable[[Any], None] | None = None) -> None:  # fmt: skip
        self.bundle, self.lang, self.say, self.on_event = bundle, lang, say, on_event
        self.choice: Any = None  # the resolver's Choice (with its reasons) when the pack was picked automatically

    def prepare(self, wanted: str, *, measure: bool = True, installer: str | None = None,
                hardware: Any = None) -> tuple[Any, Any, dict[str, str]]:  # fmt: skip
        """(config, build plan, child environment) for pack ``wanted`` (an id, ``auto``, or ``setting``)."""
        from bootstrap.builder.build import make_plan
        from bootstrap.layout import bundle_environ
        from launcher import config
        from launcher.hardware.nvidia import host_os
        from launcher.mirrors.environ import child_environ
        from launcher.mirrors.measure import ensure_measured
        from launcher.mirrors.plan import plan_for
        from launcher.packs.catalog import load_packs

        cfg = config.load(self.bundle)
        packs = load_packs(self.bundle.packs_dir)
        choice = cfg.get_str("setup.pack") if wanted == "setting" else wanted
        if choice == "auto":
            from launcher.packs.resolver import choose

            if hardware is None:
                from launcher.hardware.nvidia import probe

                hardware = probe()
            self.choice = choose(hardware, packs)  # NoPackFits (with every pack's reason) when none fits
            pack = self.choice.chosen
        else:
            pack = packs.require(choice)
        if measure:
            ensure_measured(self.bundle, cfg, ("pypi", "torch", "python"), cuda=pack.cuda, lang=self.lang,
                            say=self.say)  # fmt: skip
        mirrors = plan_for(self.bundle, cfg, cuda=pack.cuda)
        pypi, torch = mirrors.first("pypi"), mirrors.first("torch")
        assert pypi is not None and torch is not None  # the catalog always has both channels
        alternates = {"pypi": mirrors.sources["pypi"][1:], "torch": mirrors.sources["torch"][1:]}
        build_plan = make_plan(self.bundle, pack, pack.pins(host_os()), packs.runtime_requirements(pack), pypi, torch,
                               installer or cfg.get_str("setup.installer"), look_up_wheels=not cfg.get_bool("network.offline"),
                               alternates=alternates, pypi_pins=pack.pypi_pins(host_os()),
                               python_setting=cfg.get_str("setup.python"), python_installable=self._python_blocked(cfg))  # fmt: skip
        env, notices = child_environ(mirrors, bundle_environ(self.bundle, dict(os.environ)))
        for n in notices:
            self.say(n.text(self.lang))
        return cfg, build_plan, env

    def _python_blocked(self, cfg: Any) -> str:
        """Why ``uv python install`` cannot be tried now ("" when it can): for the plan's Python note."""
        from bootstrap.builder.install import uv_bin
        from launcher.mirrors import ranking

        if uv_bin() is None:
            return "uv is missing"
        if cfg.get_bool("network.offline"):
            return "network.offline = true"
        measured = ranking.load(self.bundle)
        if "python" in measured.results and not measured.order("python") and cfg.get_str("mirrors.python") == "auto":
            return "the last mirrors test found no working python mirror"
        return ""

    def _on_event(self, e: Any) -> None:
        if self.on_event is not None:
            self.on_event(e)
            return
        if e.step == "prefetch" and e.total and e.done not in (0, e.total):
            return  # progress bars belong to the UIs; here only the start and the end of the download
        self.say(e.text(self.lang))

    @staticmethod
    def require_sources(cfg: Any, plan: Any) -> None:
        """In offline mode, building needs local sources (a wheel folder for PyPI and torch); say so up front."""
        if cfg.get_bool("network.offline") and not (plan.pypi.local and plan.torch.local):
            from launcher.errors import OfflineMode

            raise OfflineMode(action_zh="下载并安装生成环境（可用 mirrors use 指向本地轮子文件夹）",
                              action_en="download and install the generation environment "
                                        "(mirrors use can point at a local wheel folder)")  # fmt: skip

    def build(self, pack: str, force: bool) -> str | None:
        from bootstrap.builder.build import build

        cfg, plan, env = self.prepare(pack)
        if plan.noop and not force:
            return None
        self.require_sources(cfg, plan)
        stamp = build(self.bundle, plan, base_env=env, on_event=self._on_event, lang=self.lang, force=force)  # fmt: skip
        return f"{plan.env.name}: built for pack {stamp.get('pack')} (torch {plan.pins[0].split('==')[1]})"

    def repair(self, what: str) -> str | None:
        from bootstrap.builder.build import repair
        from bootstrap.builder.state import read_stamp

        cfg, plan, env = self.prepare("setting")
        self.require_sources(cfg, plan)
        before = read_stamp(plan.env)
        stamp = repair(self.bundle, plan, what, base_env=env, on_event=self._on_event, lang=self.lang)
        if stamp == before:
            return None  # the pack has no such part
        return f"{plan.env.name}: " + (f"reinstalled {what}" if stamp.get("repaired") == what
                                       else f"built for pack {stamp.get('pack')}")  # fmt: skip
