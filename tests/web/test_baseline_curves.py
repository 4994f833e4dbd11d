"""The baselines an experiment was compared with reach its RD chart, with nothing but the
pipeline recording them (the session lab's ``published`` experiment ran the real x264
ladder), served over HTTP on 127.0.0.1."""

from __future__ import annotations

import html as htmlmod
import json

import httpx
import pytest

from codeclab.lab import Lab
from tests.web.conftest import LabData, Served


def _expected(lab_data: LabData) -> tuple[list[float], list[float]]:
    points = sorted(lab_data.ladders["x264"].points, key=lambda p: p.bits_per_second)
    return [p.bits_per_second / 1000 for p in points], [p.psnr_y for p in points]


def test_the_experiment_recorded_the_ladder_it_was_compared_with(lab_data: LabData) -> None:
    ladder = lab_data.ladders["x264"]
    with Lab.open(lab_data.settings) as lab:
        (recorded,) = lab.records.list_baselines(lab_data.published.clip_sha256 or "")
    assert (recorded.encoder, recorded.cache_key) == ("x264", ladder.cache_key)
    assert recorded.version == ladder.version
    assert len(recorded.points) == len(ladder.points) >= 3
    comparisons = (lab_data.published.comparison or {}).get("comparisons", {})
    assert "x264" in comparisons


def test_the_rd_api_has_the_recorded_baseline_curve(served: Served, lab_data: LabData) -> None:
    response = httpx.get(f"{served.url}/api/experiments/{lab_data.published.id}/rd")
    assert response.status_code == 200
    series = response.json()["series"]
    kbps, psnr = _expected(lab_data)
    assert series["x264"]["kind"] == "baseline"
    assert series["x264"]["kbps"] == pytest.approx(kbps)
    assert series["x264"]["psnr_y"] == pytest.approx(psnr)
    assert series[lab_data.published.id]["kind"] == "candidate"


def test_the_experiment_page_draws_the_baseline_curve(served: Served, lab_data: LabData) -> None:
    response = httpx.get(f"{served.url}/experiments/{lab_data.published.id}")
    assert response.status_code == 200
    page = response.text
    start = page.index('<script type="application/json" id="rd-data">') + len(
        '<script type="application/json" id="rd-data">'
    )
    rd = json.loads(htmlmod.unescape(page[start : page.index("</script>", start)]))
    kbps, psnr = _expected(lab_data)
    assert rd["x264"]["kbps"] == pytest.approx(kbps)
    assert rd["x264"]["psnr_y"] == pytest.approx(psnr)
    assert "No baseline ladders are recorded" not in page


def test_the_compare_page_draws_the_baseline_curve(served: Served, lab_data: LabData) -> None:
    ids = f"{lab_data.published.id},{lab_data.child.id}"
    page = httpx.get(f"{served.url}/compare", params={"ids": ids}).text
    start = page.index('id="rd-data">') + len('id="rd-data">')
    rd = json.loads(htmlmod.unescape(page[start : page.index("</script>", start)]))
    assert rd["x264"]["kbps"] == pytest.approx(_expected(lab_data)[0])
