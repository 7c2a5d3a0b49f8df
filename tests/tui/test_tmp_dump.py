import pytest, shutil
from tests.tui import test_page_environment as E, test_page_trouble as T
from tests.tui.conftest import screen_text
from launcher.tui.app import YijianApp

@pytest.mark.parametrize("f2", [False, True])
async def test_env(tmp_path, monkeypatch, fake_gpu, f2):
    b = E.tui_bundle.__wrapped__(tmp_path, monkeypatch)
    E.builder.__wrapped__(monkeypatch, fake_gpu)
    E.plant_env(b)
    app = YijianApp(b, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        if f2: await pilot.press("f2")
        app.show("environment"); await E.settle(app, pilot)
        print(screen_text(app))

@pytest.mark.parametrize("f2", [False, True])
async def test_tr(tmp_path, monkeypatch, f2):
    b = T.tui_bundle.__wrapped__(tmp_path, monkeypatch)
    T.doctor.__wrapped__(monkeypatch)
    shutil.copy(T.LOGS / "cuda-oom.log", b.logs_dir / "runtime.log")
    app = YijianApp(b, "zh")
    async with app.run_test(size=(100, 30)) as pilot:
        if f2: await pilot.press("f2")
        app.show("trouble"); await T.settle(app, pilot)
        print(screen_text(app))
        app.query_one("#trouble").scroll_end(animate=False); await pilot.pause()
        print(screen_text(app))
