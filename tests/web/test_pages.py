"""The server-rendered pages, on the real lab and on records made for one behaviour."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from codeclab.config import Settings
from codeclab.lab import Lab
from codeclab.web.access import Access
from codeclab.web.app import create_app
from codeclab.web.pages import POSTS_PER_PAGE
from tests.web.conftest import TEST_BASE, LabData


def test_the_overview_shows_counts_runs_leaders_and_cost(
    client: TestClient, lab_data: LabData
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert 'data-src="/api/progress"' in html
    assert f'href="/runs/{lab_data.run.id}"' in html
    assert "Best codecs by target" in html
    assert f'href="/experiments/{lab_data.published.id}"' in html  # it achieved its target
    assert re.search(r"≈ \$0\.0[0-9]+/month", html)


def test_the_blog_shows_results_timeline_and_published_sections(
    client: TestClient, lab_data: LabData
) -> None:
    html = client.get("/blog").text
    post = html[html.index(f'id="{lab_data.published.id}"') :]
    post = post[: post.index("</article>")]
    assert "Inter DCT with motion compensation" in post
    assert f"{lab_data.published.bitrate_bps / 1e6:.3f}" in post
    assert "vs x265 (not measured)" in post
    assert "vs x264:" in post
    assert post.count('class="phase phase-completed"') == 7
    assert "View reconstructed video" in post and "/objects/experiments/" in post
    assert "Download decoder (.py)" in post and "signature=" in post
    child = html[html.index(f'id="{lab_data.child.id}"') :]
    child = child[: child.index("</article>")]
    assert "View reconstructed video" not in child  # not published


def test_the_experiment_page_has_every_section(client: TestClient, lab_data: LabData) -> None:
    html = client.get(f"/experiments/{lab_data.published.id}").text
    for marker in (
        'data-role="original"',
        'data-role="reconstructed"',
        'data-role="wipe"',
        'data-src="/api/experiments/{id}/frames"',
        'id="rd-data"',
        "data-frame-tool",
        'data-role="decoder-download"',
        'class="code"',
        'data-action="admin-delete"',
        "phase-log",
    ):
        assert marker.format(id=lab_data.published.id) in html, marker
    assert f'href="/experiments/{lab_data.child.id}"' in html  # its child
    assert '<span class="kw">class</span>' in html  # highlighted codec source


def test_a_child_page_shows_its_line_and_links_its_changes(
    client: TestClient, lab_data: LabData
) -> None:
    html = client.get(f"/experiments/{lab_data.child.id}").text
    assert "Decoder version history along this line" in html
    assert f'href="/experiments/{lab_data.published.id}"' in html
    assert f'href="/experiments/{lab_data.child.id}/changes"' in html
    assert "Not published" in html
    assert "data-frame-tool" not in html  # no stored stream to decode


def test_the_changes_page_diffs_the_codec_against_its_parent(
    client: TestClient, lab_data: LabData
) -> None:
    html = client.get(f"/experiments/{lab_data.child.id}/changes").text
    assert 'class="line add"' in html and 'class="line del"' in html
    assert f'href="/experiments/{lab_data.published.id}"' in html
    first_design = client.get(f"/experiments/{lab_data.published.id}/changes")
    assert first_design.status_code == 404


def test_a_running_experiment_page_is_live(client: TestClient, lab_data: LabData) -> None:
    html = client.get(f"/experiments/{lab_data.running.id}").text
    assert f'data-live="/api/experiments/{lab_data.running.id}/status"' in html
    assert 'class="phase phase-running"' in html


def test_the_run_page_polls_its_progress(client: TestClient, lab_data: LabData) -> None:
    html = client.get(f"/runs/{lab_data.run.id}").text
    assert f'data-live="/api/runs/{lab_data.run.id}/progress"' in html
    assert lab_data.running.id in html


def test_compare_draws_every_experiment_and_the_shared_baseline(
    client: TestClient, lab_data: LabData
) -> None:
    ids = f"{lab_data.published.id},{lab_data.child.id}"
    html = client.get("/compare", params={"ids": ids}).text
    assert html.count('class="compare-col"') == 2
    rd = html[html.index('id="rd-data">') :]
    assert lab_data.published.id in rd and lab_data.child.id in rd and '"x264"' in rd


def test_compare_takes_ticked_boxes_too(client: TestClient, lab_data: LabData) -> None:
    response = client.get(
        "/compare", params=[("ids", lab_data.published.id), ("ids", lab_data.child.id)]
    )
    assert response.text.count('class="compare-col"') == 2


def test_compare_refuses_unknown_ids_and_too_many(client: TestClient, lab_data: LabData) -> None:
    missing = client.get("/compare", params={"ids": f"{lab_data.published.id},exp-nope"})
    assert missing.status_code == 404
    assert "exp-nope" in missing.text and "<html" in missing.text
    many = client.get("/compare", params={"ids": ",".join(f"exp-{i}" for i in range(9))})
    assert many.status_code == 422


def test_unknown_pages_are_html_404s(client: TestClient) -> None:
    for path in ("/experiments/exp-nope", "/runs/run-nope", "/nowhere"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")


def test_pages_forbid_inline_script_and_foreign_sources(client: TestClient) -> None:
    response = client.get("/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy
    assert "<script>" not in response.text  # only src= scripts and JSON data blocks
    assert response.headers["x-content-type-options"] == "nosniff"


# -- records made for one behaviour ------------------------------------------------------


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[Lab, TestClient]]:
    settings = Settings(data_dir=tmp_path / "data", public_url=TEST_BASE)
    with Lab.open(settings) as lab:
        app = create_app(settings, access=Access())
        with TestClient(app, base_url=TEST_BASE) as client:
            yield lab, client


def _completed(lab: Lab, rationale: str, **fields: Any) -> str:
    record = lab.records.create_experiment(designer="test", rationale=rationale)
    lab.records.update_experiment(record.id, status="completed", **fields)
    return record.id


def _comparison(saving: float | None) -> dict[str, Any]:
    return {
        "operating_point": {"quality_param": 50},
        "comparisons": {
            "x265": {
                "saving_percent_at_equal_psnr_y": saving,
                "sentence": "x265 needs ...",
                "bd_rate_psnr_y": {"ok": False, "value": None, "reason": "no overlap"},
            }
        },
    }


def test_fewer_bits_than_x265_is_a_green_down_arrow_and_more_a_red_up_arrow(
    fresh: tuple[Lab, TestClient],
) -> None:
    lab, client = fresh
    better = _completed(lab, "better", comparison=_comparison(25.0), bitrate_bps=5e5)
    worse = _completed(lab, "worse", comparison=_comparison(-40.0), bitrate_bps=9e5)
    html = client.get("/blog").text
    good = html[html.index(f'id="{better}"') :]
    assert re.search(r'class="card change fewer".*?▼</span> −25\.0%', good, re.S)
    bad = html[html.index(f'id="{worse}"') :]
    assert re.search(r'class="card change more".*?▲</span> \+40\.0%', bad, re.S)


def test_the_blog_is_paginated_newest_first(fresh: tuple[Lab, TestClient]) -> None:
    lab, client = fresh
    ids = [_completed(lab, f"post {i}") for i in range(POSTS_PER_PAGE + 3)]
    first = client.get("/blog").text
    second = client.get("/blog", params={"page": 2}).text
    assert f'id="{ids[-1]}"' in first and f'id="{ids[0]}"' not in first
    assert f'id="{ids[0]}"' in second and 'rel="prev"' in second
    assert 'rel="next"' in first and "page 1 of 2" in first
    assert client.get("/blog", params={"page": 3}).status_code == 404
    assert client.get("/blog", params={"page": 0}).status_code == 422


def test_rationale_and_errors_are_escaped(fresh: tuple[Lab, TestClient]) -> None:
    lab, client = fresh
    record = lab.records.create_experiment(designer="test", rationale="<script>alert(1)</script>")
    lab.records.start_phase(record.id, "validation")
    lab.records.finish_phase(record.id, "validation", error="rejected: <img src=x onerror=y>")
    for path in ("/blog", f"/experiments/{record.id}"):
        html = client.get(path).text
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
        assert "<img src=x" not in html


def test_an_empty_lab_renders_every_page(fresh: tuple[Lab, TestClient]) -> None:
    _, client = fresh
    for path in ("/", "/blog", "/compare", "/api/progress", "/api/overview"):
        assert client.get(path).status_code == 200, path
