"""What the home page's status cards show, gathered without importing torch.

Read in a worker thread when the app starts and again after every
operation (the app's ``StateChanged``): the
hardware probe, the environment's stamp and installed versions (package
metadata only), the pack the resolver would pick, the mirrors in use (or
that a channel has none working), the model count, and the last error in
the runtime's log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bootstrap.i18n import Text
from bootstrap.layout import Bundle, env_python


@dataclass
class Status:
    gpu: Text
    driver: str = ""
    vram: str = ""
    python: str = ""
    torch: str = ""
    xformers: str = ""
    pack: Text = field(default_factory=lambda: Text("", ""))
    env_state: Text = field(default_factory=lambda: Text("", ""))
    mirrors: str = ""
    dead_channels: tuple[str, ...] = ()  # channels whose every mirror failed (last test or a real transfer)
    models: int = 0
    last_error: Text | None = None


def gather(bundle: Bundle) -> Status:
    from bootstrap.builder import state
    from launcher import config
    from launcher.hardware.system import probe_hardware

    hw = probe_hardware(bundle.root)
    nv = hw.nvidia
    gpu = nv.main_gpu
    if gpu is None:
        other = ", ".join(a.name for a in hw.system.other_gpus) if hw.system.other_gpus else ""
        extra_zh = f"；另有 {other}" if other else ""
        extra_en = f"; also {other}" if other else ""
        status = Status(
            Text(f"未检测到 NVIDIA 显卡（将用 CPU，很慢）{extra_zh}", f"No NVIDIA GPU found (CPU, slow){extra_en}")
        )
    else:
        vram = f"{gpu.memory_total_mib / 1024:.0f} GB" if gpu.memory_total_mib else "?"
        status = Status(Text(f"{gpu.short_name}（{gpu.sm}）", f"{gpu.short_name} ({gpu.sm})"),
                        driver=f"{nv.driver_version} (CUDA {nv.cuda_driver or '?'})", vram=vram)  # fmt: skip
    env = bundle.env_dir / "runtime"
    stamp = state.read_stamp(env)
    if env_python(env).exists():
        have = state.installed(env)
        status.python = str(stamp.get("python") or "") or "?"
        status.torch = have.get("torch", "") or "-"
        status.xformers = have.get("xformers", "") or "-"
        status.env_state = Text(f"已构建（环境包 {stamp.get('pack', '?')}）", f"built (pack {stamp.get('pack', '?')})")
    else:
        status.env_state = Text("未构建：点 一键启动 会自动构建", "not built: Start builds it")
    from bootstrap.errors import YijianError

    try:
        cfg = config.load(bundle)
    except YijianError as e:  # an invalid config.toml is shown, and the defaults are used for the cards
        cfg = config.defaults(bundle.config_file)
        status.last_error = Text(f"{e.code}：{e.message('zh')}", f"{e.code}: {e.message('en')}")
    try:
        from launcher.packs.catalog import load_packs
        from launcher.packs.resolver import choose

        packs = load_packs(bundle.packs_dir)
        wanted = cfg.get_str("setup.pack")
        pack = choose(nv, packs).chosen if wanted == "auto" else packs.require(wanted)
        status.pack = Text(f"{pack.id}（torch {pack.torch}）", f"{pack.id} (torch {pack.torch})")
    except Exception as e:  # NoPackFits and friends: shown, not raised, on a status card
        status.pack = Text(f"没有合适的环境包：{e}", f"no pack fits: {e}")
    from launcher.mirrors.plan import plan_for

    plan = plan_for(bundle, cfg)
    shown = []
    for ch in ("pypi", "torch", "huggingface"):
        first = plan.first(ch)
        if plan.no_working_mirror(ch):
            status.dead_channels += (ch,)
            shown.append(f"{ch}✗")
        elif first is not None:
            shown.append(first.id)
    status.mirrors = " · ".join(shown)
    from launcher.models.library import scan

    status.models = len([m for m in scan(bundle, list(cfg["models.extra_dirs"]), with_hashes=False)
                         if m.type == "checkpoint"])  # fmt: skip
    status.last_error = status.last_error or last_error(bundle)
    return status


def last_error(bundle: Bundle) -> Text | None:
    """The first finding in the last runtime log, if that run failed."""
    from launcher.doctor.scanner import scan

    log = bundle.logs_dir / "runtime.log"
    try:
        text = log.read_text(encoding="utf-8", errors="replace")[-200_000:]
    except OSError:
        return None
    zh, en = scan(text, "zh"), scan(text, "en")
    if not zh:
        return None
    return Text(f"{zh[0].code}：{zh[0].title}", f"{en[0].code}: {en[0].title}")
