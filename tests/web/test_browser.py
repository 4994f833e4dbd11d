"""End to end in a real Chromium (Debian's, driven by Playwright) against uvicorn on 127.0.0.1.

Skipped when Chromium or Playwright is missing, except under ``CI=true`` where that fails.
Screenshots go to ``test-artifacts/`` at the project root.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codeclab.lab import Lab
from codeclab.storage.signing import signed_url
from tests.web.conftest import ADMIN_TOKEN, FRAMES, LabData, Served

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: browser tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright; never `playwright install`)")
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).is_file():
        _missing("Chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


class Console:
    """Errors a page logged (failed loads, CSP violations, exceptions)."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"exception: {e}"))


@pytest.fixture
def tab(chromium: Any) -> Iterator[Any]:
    """A page; CSP is bypassed so Playwright can poll with expressions (the page's policy
    forbids eval); `test_every_page_renders_without_errors` keeps the policy on."""
    context = chromium.new_context(viewport=LAPTOP, accept_downloads=True, bypass_csp=True)
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    yield opened
    context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_js(page: Any, expression: str, arg: Any = None, timeout: float = 20_000) -> Any:
    return page.wait_for_function(expression, arg=arg, timeout=timeout).json_value()


@pytest.fixture
def lab(lab_data: LabData) -> Iterator[Lab]:
    with Lab.open(lab_data.settings) as opened:
        yield opened


def test_the_reconstructed_video_loads_and_seeks(
    tab: Any, served: Served, lab_data: LabData
) -> None:
    tab.goto(f"{served.url}/experiments/{lab_data.published.id}")
    video = "document.querySelector('video[data-role=reconstructed]')"
    wait_js(tab, f"{video}.readyState >= 2")
    assert tab.evaluate(f"{video}.duration") == pytest.approx(FRAMES * 1001 / 30000, abs=0.05)
    tab.evaluate(f"{video}.currentTime = 0.5")
    wait_js(tab, f"!{video}.seeking && Math.abs({video}.currentTime - 0.5) < 0.01")
    wait_js(tab, f"{video}.readyState >= 2")
    shot(tab, "experiment-video")


def test_the_side_by_side_players_stay_in_step(tab: Any, served: Served, lab_data: LabData) -> None:
    tab.goto(f"{served.url}/experiments/{lab_data.published.id}")
    original = "document.querySelector('video[data-role=original]')"
    recon = "document.querySelector('video[data-role=reconstructed]')"
    wait_js(tab, f"{original}.readyState >= 2 && {recon}.readyState >= 2")
    tab.click("[data-action=play]")
    wait_js(tab, f"!{recon}.paused && !{original}.paused && {recon}.currentTime > 0.2")
    drift = tab.evaluate(f"Math.abs({original}.currentTime - {recon}.currentTime)")
    assert drift < 0.1  # within three frames while both play
    tab.click("[data-action=play]")  # pause
    wait_js(tab, f"{recon}.paused && {original}.paused")
    tab.locator("[data-role=seek]").fill("300")
    wait_js(tab, f"!{recon}.seeking && !{original}.seeking && {recon}.currentTime > 0.25")
    wait_js(tab, f"Math.abs({original}.currentTime - {recon}.currentTime) < 0.02")
    tab.click("[data-action=step][data-step='1']")
    frame = 1001 / 30000
    before = tab.evaluate(f"{recon}.currentTime")
    wait_js(tab, f"Math.abs({original}.currentTime - {recon}.currentTime) < 0.02")
    assert before == pytest.approx(0.3 * tab.evaluate(f"{recon}.duration") + frame, abs=0.02)


def test_the_wipe_slider_moves_the_boundary(tab: Any, served: Served, lab_data: LabData) -> None:
    tab.goto(f"{served.url}/experiments/{lab_data.published.id}")
    tab.check("[data-role=wipe-toggle]")
    assert tab.is_visible("[data-role=wipe]")
    tab.locator("[data-role=wipe]").fill("20")
    clip = tab.evaluate("getComputedStyle(document.querySelector('.pane.original')).clipPath")
    assert clip == "inset(0px 80% 0px 0px)"
    tab.locator("[data-role=wipe]").fill("75")
    clip = tab.evaluate("getComputedStyle(document.querySelector('.pane.original')).clipPath")
    assert clip == "inset(0px 25% 0px 0px)"
    boxes = [tab.locator(f".pane.{name}").bounding_box() for name in ("original", "reconstructed")]
    assert boxes[0] == boxes[1]  # stacked over the same frame area
    tab.locator("#video").screenshot(path=str(ARTIFACTS / "wipe.png"))


def test_charts_render_with_data(tab: Any, served: Served, lab_data: LabData) -> None:
    console = Console(tab)
    tab.goto(f"{served.url}/experiments/{lab_data.published.id}")
    assert wait_js(tab, "document.getElementById('frame-chart').dataset.points") == str(FRAMES)
    points = int(wait_js(tab, "document.getElementById('rd-chart').dataset.points"))
    assert points >= 3 + 3  # three quality points and the x264 ladder
    inked = """el => { const c = el.querySelector('canvas'); const d = c.getContext('2d')
        .getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) n++; } return n; }"""
    assert tab.eval_on_selector("#frame-chart", inked) > 500
    assert tab.eval_on_selector("#rd-chart", inked) > 500
    tab.select_option("[data-role=rd-metric]", "vmaf")
    assert int(tab.evaluate("document.getElementById('rd-chart').dataset.points")) >= 6
    tab.goto(f"{served.url}/")
    assert int(wait_js(tab, "document.getElementById('progress-chart').dataset.points")) >= 3
    assert tab.eval_on_selector("#progress-chart", inked) > 500
    shot(tab, "overview")
    assert console.errors == []


def test_the_decoder_download_is_the_stored_file(
    tab: Any, served: Served, lab_data: LabData, lab: Lab, tmp_path: Path
) -> None:
    tab.goto(f"{served.url}/experiments/{lab_data.published.id}")
    with tab.expect_download() as info:
        tab.click("[data-role=decoder-download]")
    saved = tmp_path / "decoder.py"
    info.value.save_as(saved)
    assert saved.read_bytes() == lab.store.get_bytes(lab_data.published.artifacts["decoder"])


def test_an_expired_link_gives_403(tab: Any, served: Served, lab_data: LabData, lab: Lab) -> None:
    key = lab_data.published.artifacts["decoder"]
    secret = lab.store.signing_secret  # type: ignore[attr-defined]
    response = tab.goto(signed_url(served.url, key, int(time.time()) - 5, secret))
    assert response.status == 403
    assert "expired" in tab.content()
    fresh = tab.goto(signed_url(served.url, key, int(time.time()) + 60, secret))
    assert fresh.status == 200


def test_admin_actions_without_the_token_give_401(
    tab: Any, served: Served, lab_data: LabData, lab: Lab
) -> None:
    record = lab.records.create_experiment(designer="test", rationale="keep me")
    tab.on("dialog", lambda d: d.accept() if d.type == "confirm" else d.dismiss())
    tab.goto(f"{served.url}/experiments/{record.id}")
    tab.click("[data-action=admin-delete]")
    out = tab.locator("[data-role=admin-out]")
    wait_js(tab, "document.querySelector('[data-role=admin-out]').dataset.status === '401'")
    assert "401" in out.inner_text() and "admin token" in out.inner_text()
    tab.click("[data-action=admin-publish]")
    wait_js(tab, "document.querySelector('[data-role=admin-out]').textContent.includes('401')")
    assert lab.records.get_experiment(record.id).id == record.id
    response = tab.request.delete(f"{served.url}/api/experiments/{record.id}")
    assert response.status == 401


def test_starting_a_campaign_from_the_overview_needs_the_token(
    tab: Any, served: Served, lab_data: LabData
) -> None:
    answers: list[str | None] = [None]  # the first prompt for the token is dismissed

    def dialog(d: Any) -> None:
        token = answers.pop(0) if answers else None
        d.accept(token) if token else d.dismiss()

    tab.on("dialog", dialog)
    tab.goto(f"{served.url}/")
    form = "form[data-role=start-campaign]"
    out = "#admin [data-role=admin-out]"
    tab.fill(f"{form} [name=iterations]", "1")
    tab.fill(f"{form} [name=baselines]", "x266")
    tab.click(f"{form} button[type=submit]")
    wait_js(tab, f"document.querySelector('{out}').dataset.status === '401'")
    assert "admin token" in tab.locator(out).inner_text()
    # with the token, the form's options reach the API (and an unknown encoder is refused)
    answers.append(ADMIN_TOKEN)
    tab.click(f"{form} button[type=submit]")
    wait_js(tab, f"document.querySelector('{out}').dataset.status === '422'")
    assert "x266" in tab.locator(out).inner_text() or "baselines" in tab.locator(out).inner_text()
    assert not (lab_data.settings.data_dir / "campaigns").exists()  # nothing was started
    shot(tab, "start-campaign-refused")


def test_stopping_a_run_from_its_page_needs_the_token(
    tab: Any, served: Served, lab_data: LabData
) -> None:
    tab.on("dialog", lambda d: d.accept() if d.type == "confirm" else d.dismiss())
    tab.goto(f"{served.url}/runs/{lab_data.run.id}")
    tab.click("[data-action=admin-stop-run]")
    wait_js(tab, "document.querySelector('[data-role=admin-out]').dataset.status === '401'")
    assert "admin token" in tab.locator("[data-role=admin-out]").inner_text()


def test_the_frame_tool_steps_zooms_and_shows_the_heatmap(
    tab: Any, served: Served, lab_data: LabData
) -> None:
    tab.goto(f"{served.url}/experiments/{lab_data.published.id}")
    tool = tab.locator("[data-frame-tool]")
    stats = tab.locator("[data-role=frame-stats]")
    wait_js(tab, "document.querySelector('[data-frame-tool]').dataset.loaded === '0'")
    assert "PSNR-Y" in stats.inner_text()
    tab.click("[data-frame-tool] [data-action=next]")
    wait_js(tab, "document.querySelector('[data-frame-tool]').dataset.loaded === '1'")
    tab.fill("[data-role=frame]", "12")
    tab.press("[data-role=frame]", "Enter")
    wait_js(tab, "document.querySelector('[data-frame-tool]').dataset.loaded === '12'")
    tab.locator("[data-role=frame-wipe]").fill("30")
    assert tool.get_attribute("data-wipe") == "30"
    tab.select_option("[data-role=view]", "heatmap")
    tab.select_option("[data-role=zoom]", "4")
    wait_js(
        tab,
        "(() => { const i = document.querySelector('[data-role=under]');"
        " return i.complete && i.naturalWidth === 176 && i.src.endsWith('/12/heatmap.png')"
        " && i.getBoundingClientRect().width === 704; })()",
    )
    assert tab.is_visible("[data-role=legend]")
    assert not tab.is_visible("[data-role=over]")
    tool.screenshot(path=str(ARTIFACTS / "frame-tool-heatmap.png"))


def test_a_running_campaign_page_updates_without_reload(tab: Any, served: Served, lab: Lab) -> None:
    run = lab.records.create_run("test", {}, seed=2)
    exp = lab.records.create_experiment(designer="test", run_id=run.id, rationale="live")
    lab.records.start_phase(exp.id, "execution")
    tab.goto(f"{served.url}/runs/{run.id}")
    active = tab.locator("[data-role=active]")
    assert "execution" in active.inner_text()
    tab.evaluate("window.__marker = 'same tab'")
    lab.records.finish_phase(exp.id, "execution")
    lab.records.start_phase(exp.id, "verification")
    wait_js(tab, "document.querySelector('[data-role=active]').textContent.includes('verif')")
    lab.records.finish_phase(exp.id, "verification")
    lab.records.update_experiment(exp.id, status="completed", target_achieved=True)
    wait_js(tab, "document.querySelector('[data-count=completed]').textContent === '1'")
    assert tab.locator("[data-count=achieved]").inner_text() == "1"
    assert "nothing running" in active.inner_text()
    assert tab.evaluate("window.__marker") == "same tab"  # no reload happened
    shot(tab, "run-live")


def test_a_running_experiment_page_updates_its_phases(tab: Any, served: Served, lab: Lab) -> None:
    exp = lab.records.create_experiment(designer="test", rationale="live experiment")
    lab.records.start_phase(exp.id, "validation")
    tab.goto(f"{served.url}/experiments/{exp.id}")
    lab.records.finish_phase(exp.id, "validation")
    lab.records.start_phase(exp.id, "deployment")
    wait_js(
        tab,
        "document.querySelector('[data-role=timeline] .phase-running .name')"
        "?.textContent === 'deployment'",
    )
    lab.records.finish_phase(exp.id, "deployment", error="disk full")
    wait_js(tab, "document.querySelector('[data-role=status]').textContent === 'failed'")
    assert "Reload" in tab.locator("[data-role=live-note]").inner_text()


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_page_renders_without_errors(
    chromium: Any, served: Served, lab_data: LabData, viewport: dict[str, int]
) -> None:
    context = chromium.new_context(viewport=viewport)
    page = context.new_page()
    console = Console(page)
    name = "phone" if viewport is PHONE else "laptop"
    pages = {
        "overview": "/",
        "blog": "/blog",
        "experiment": f"/experiments/{lab_data.published.id}",
        "child": f"/experiments/{lab_data.child.id}",
        "compare": f"/compare?ids={lab_data.published.id},{lab_data.child.id}",
        "run": f"/runs/{lab_data.run.id}",
        "docs": "/docs",
    }
    for label, path in pages.items():
        response = page.goto(served.url + path)
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"] + 1, f"{path} scrolls sideways on a {name}"
        shot(page, f"{label}-{name}")
    assert page.locator(".swagger-ui").count() == 1
    context.close()
    assert console.errors == []
