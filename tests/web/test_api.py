"""The JSON API on a lab filled by real experiments (see conftest.py)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from codeclab.lab import Lab
from codeclab.storage.records import PublishStatus
from codeclab.storage.signing import signed_url
from codeclab.web.access import Access
from codeclab.web.app import create_app
from tests.web.conftest import ADMIN_TOKEN, FRAMES, TEST_BASE, LabData

UNKNOWN = "exp-00000000-000000-deadbeef"


@pytest.fixture
def lab(lab_data: LabData) -> Iterator[Lab]:
    with Lab.open(lab_data.settings) as opened:
        yield opened


def operating_quality(record_json: dict) -> int:  # type: ignore[type-arg]
    return int(record_json["comparison"]["operating_point"]["quality_param"])


# -- listing -------------------------------------------------------------------------------


def test_the_list_holds_every_experiment_newest_first(
    client: TestClient, lab_data: LabData
) -> None:
    body = client.get("/api/experiments").json()
    ids = [item["id"] for item in body["items"]]
    assert body["total"] == len(ids) >= 4
    assert {lab_data.published.id, lab_data.child.id, lab_data.running.id} <= set(ids)
    created = [item["created_at"] for item in body["items"]]
    assert created == sorted(created, reverse=True)
    assert "metrics" not in body["items"][0]  # no per-quality or per-frame data in lists


def test_the_list_filters_by_run_status_and_achievement(
    client: TestClient, lab_data: LabData
) -> None:
    in_run = client.get("/api/experiments", params={"run": lab_data.run.id}).json()
    assert [item["id"] for item in in_run["items"]] == [lab_data.running.id]
    running = client.get("/api/experiments", params={"status": "running"}).json()
    assert lab_data.running.id in [item["id"] for item in running["items"]]
    assert all(item["status"] == "running" for item in running["items"])
    achieved = client.get("/api/experiments", params={"achieved": "true"}).json()
    assert lab_data.published.id in [item["id"] for item in achieved["items"]]
    assert all(item["target_achieved"] is True for item in achieved["items"])


def test_the_list_pages_with_limit_and_offset(client: TestClient) -> None:
    everything = client.get("/api/experiments", params={"order": "created_at"}).json()
    page = client.get(
        "/api/experiments", params={"order": "created_at", "limit": 2, "offset": 1}
    ).json()
    assert page["total"] == everything["total"]
    assert [i["id"] for i in page["items"]] == [i["id"] for i in everything["items"][1:3]]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"status": "exploded"},
        {"achieved": "perhaps"},
        {"order": "rationale"},
        {"limit": "ten"},
    ],
)
def test_bad_list_parameters_are_422(client: TestClient, params: dict[str, object]) -> None:
    response = client.get("/api/experiments", params=params)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)


def test_listing_an_unknown_run_is_404(client: TestClient) -> None:
    response = client.get("/api/experiments", params={"run": "run-nope"})
    assert response.status_code == 404
    assert "run-nope" in response.json()["detail"]


# -- one experiment ------------------------------------------------------------------------


def test_an_experiment_has_every_field_and_working_links(
    client: TestClient, lab_data: LabData, lab: Lab
) -> None:
    body = client.get(f"/api/experiments/{lab_data.published.id}").json()
    assert body["status"] == "completed"
    assert body["publish_status"] == "published"
    assert [p["phase"] for p in body["phases"]][-1] == "publish"
    assert body["mbps"] == pytest.approx(body["bitrate_bps"] / 1e6)
    assert body["saving_vs_x265_percent"] is None  # x265 was not measured
    assert set(body["links"]) == {"reconstruction", "source", "decoder", "stream", "package"}
    expires = datetime.fromisoformat(body["links_expire_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
    decoder = client.get(body["links"]["decoder"])
    assert decoder.status_code == 200
    assert decoder.content == lab.store.get_bytes(body["artifacts"]["decoder"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/experiments/{id}"),
        ("GET", "/api/experiments/{id}/status"),
        ("GET", "/api/experiments/{id}/frames"),
        ("GET", "/api/experiments/{id}/rd"),
        ("GET", "/api/experiments/{id}/lineage"),
        ("POST", "/api/experiments/{id}/links"),
        ("GET", "/api/experiments/{id}/package"),
        ("GET", "/api/experiments/{id}/artifacts/decoder"),
        ("POST", "/api/experiments/{id}/transcode?format=webm"),
        ("GET", "/api/experiments/{id}/frames/0"),
        ("GET", "/api/experiments/{id}/frames/0/heatmap.png"),
        ("GET", "/api/runs/{id}"),
        ("GET", "/api/runs/{id}/progress"),
    ],
)
def test_unknown_ids_are_404(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path.format(id=UNKNOWN), follow_redirects=False)
    assert response.status_code == 404, response.text
    assert UNKNOWN in response.json()["detail"]


def test_per_frame_metrics_cover_every_frame_of_every_quality(
    client: TestClient, lab_data: LabData
) -> None:
    body = client.get(f"/api/experiments/{lab_data.published.id}/frames").json()
    assert set(body["qualities"]) == {"30", "60", "90"}
    assert str(body["operating_quality"]) in body["qualities"]
    for series in body["qualities"].values():
        assert series["frame"] == list(range(FRAMES))
        assert len(series["psnr_y"]) == len(series["ssim_y"]) == len(series["vmaf"]) == FRAMES
        assert all(20 < value < 60 for value in series["psnr_y"])
        assert all(0 < value <= 100 for value in series["vmaf"])


def test_the_rd_data_has_the_candidate_and_the_x264_ladder(
    client: TestClient, lab_data: LabData
) -> None:
    series = client.get(f"/api/experiments/{lab_data.published.id}/rd").json()["series"]
    assert series[lab_data.published.id]["kind"] == "candidate"
    assert len(series[lab_data.published.id]["kbps"]) == 3
    assert series["x264"]["kind"] == "baseline"
    assert len(series["x264"]["kbps"]) >= 3
    assert series["x264"]["kbps"] == sorted(series["x264"]["kbps"])


def test_lineage_links_parents_and_children(client: TestClient, lab_data: LabData) -> None:
    child = client.get(f"/api/experiments/{lab_data.child.id}/lineage").json()
    assert [b["id"] for b in child["parents"]] == [lab_data.published.id]
    assert [b["id"] for b in child["ancestors"]] == [lab_data.published.id]
    parent = client.get(f"/api/experiments/{lab_data.published.id}/lineage").json()
    assert [b["id"] for b in parent["children"]] == [lab_data.child.id]
    assert parent["ancestors"] == []


def test_the_status_endpoint_shows_the_running_phase(client: TestClient, lab_data: LabData) -> None:
    body = client.get(f"/api/experiments/{lab_data.running.id}/status").json()
    assert body["status"] == "running"
    assert body["current_phase"] == "execution"
    assert [p["status"] for p in body["phases"]] == ["completed", "running"]


# -- links and downloads -------------------------------------------------------------------


def test_regenerated_links_default_to_seven_days_and_serve_the_objects(
    client: TestClient, lab_data: LabData, lab: Lab
) -> None:
    response = client.post(f"/api/experiments/{lab_data.published.id}/links")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in_seconds"] == 7 * 86400
    for name, key in lab_data.published.artifacts.items():
        fetched = client.get(body["links"][name])
        assert fetched.status_code == 200, name
        assert fetched.content == lab.store.get_bytes(key), name


def test_a_link_lifetime_can_be_chosen(client: TestClient, lab_data: LabData) -> None:
    body = client.post(
        f"/api/experiments/{lab_data.published.id}/links", params={"expires": "30m"}
    ).json()
    assert body["expires_in_seconds"] == 1800
    expires = datetime.fromisoformat(body["expires_at"])
    assert abs(expires - datetime.now(UTC) - timedelta(minutes=30)) < timedelta(seconds=5)
    assert f"expires={int(expires.timestamp())}" in body["links"]["decoder"]


@pytest.mark.parametrize("expires", ["0", "30", "8d", "soon", "-5m", "7d1h"])
def test_a_bad_link_lifetime_is_422(client: TestClient, lab_data: LabData, expires: str) -> None:
    response = client.post(
        f"/api/experiments/{lab_data.published.id}/links", params={"expires": expires}
    )
    assert response.status_code == 422, response.text


def test_links_to_an_unpublished_experiment_are_409(client: TestClient, lab_data: LabData) -> None:
    response = client.post(f"/api/experiments/{lab_data.child.id}/links")
    assert response.status_code == 409
    assert "not published" in response.json()["detail"]


def test_the_package_download_redirects_to_a_signed_link_of_the_stored_package(
    client: TestClient, lab_data: LabData, lab: Lab
) -> None:
    response = client.get(
        f"/api/experiments/{lab_data.published.id}/package", follow_redirects=False
    )
    assert response.status_code == 307
    location = response.headers["location"]
    assert location.startswith("/objects/experiments/") and "signature=" in location
    package = client.get(location)
    assert package.content == lab.store.get_bytes(lab_data.published.artifacts["package"])


def test_an_unknown_artifact_name_is_422(client: TestClient, lab_data: LabData) -> None:
    response = client.get(f"/api/experiments/{lab_data.published.id}/artifacts/secrets")
    assert response.status_code == 422


def test_an_expired_link_is_403(client: TestClient, lab_data: LabData, lab: Lab) -> None:
    secret = lab.store.signing_secret  # type: ignore[attr-defined]
    key = lab_data.published.artifacts["decoder"]
    link = signed_url(TEST_BASE, key, int(time.time()) - 1, secret)
    response = client.get(link)
    assert response.status_code == 403
    assert "expired" in response.text


# -- transcodes ----------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "codec"), [("webm", "vp9"), ("mp4", "h264")])
def test_a_transcode_holds_every_decoded_frame_and_is_made_once(
    client: TestClient, lab_data: LabData, lab: Lab, fmt: str, codec: str
) -> None:
    path = f"/api/experiments/{lab_data.published.id}/transcode"
    first = client.post(path, params={"format": fmt})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["key"] == f"experiments/{lab_data.published.id}/transcodes/reconstruction.{fmt}"
    data = client.get(body["url"]).content
    assert len(data) == body["size"] == lab.store.stat(body["key"]).size  # type: ignore[union-attr]
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == codec
        frames = list(container.decode(stream))
    assert len(frames) == FRAMES
    assert (frames[0].width, frames[0].height) == (176, 144)
    again = client.post(path, params={"format": fmt}).json()
    assert again["cached"] is True and again["key"] == body["key"]


def test_a_transcode_needs_a_known_format(client: TestClient, lab_data: LabData) -> None:
    path = f"/api/experiments/{lab_data.published.id}/transcode"
    assert client.post(path, params={"format": "avi"}).status_code == 422
    assert client.post(path).status_code == 422


def test_an_unpublished_experiment_cannot_be_transcoded(
    client: TestClient, lab_data: LabData
) -> None:
    response = client.post(
        f"/api/experiments/{lab_data.child.id}/transcode", params={"format": "webm"}
    )
    assert response.status_code == 409


# -- frames --------------------------------------------------------------------------------


def test_a_frame_measured_again_from_the_stored_stream_matches_the_recorded_psnr(
    client: TestClient, lab_data: LabData
) -> None:
    record = client.get(f"/api/experiments/{lab_data.published.id}").json()
    recorded = client.get(f"/api/experiments/{lab_data.published.id}/frames").json()
    psnr = recorded["qualities"][str(operating_quality(record))]["psnr_y"]
    for index in (0, 7, FRAMES - 1):
        stats = client.get(f"/api/experiments/{lab_data.published.id}/frames/{index}").json()
        assert stats["psnr_y"] == pytest.approx(psnr[index], abs=1e-6)
        assert stats["frame_count"] == FRAMES
        assert stats["block_psnr_min"] <= stats["psnr_y"] <= 50
        assert 0 <= stats["worst_block_x"] < 176 and 0 <= stats["worst_block_y"] < 144


def test_frame_pictures_are_pngs_of_the_frame_size_and_are_kept(
    client: TestClient, lab_data: LabData, lab: Lab
) -> None:
    exp = lab_data.published
    for kind in ("original", "reconstructed", "difference", "heatmap"):
        response = client.get(f"/api/experiments/{exp.id}/frames/3/{kind}.png")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(response.content))
        assert image.size == (176, 144), kind
    assert lab.store.exists(f"experiments/{exp.id}/heatmaps/3.png")
    assert lab.store.exists(f"experiments/{exp.id}/frames/3-reconstructed.png")
    assert lab.store.exists(f"clips/{exp.clip_sha256}/frames/3.png")


def test_the_difference_picture_is_mid_grey_where_nothing_changed(
    client: TestClient, lab_data: LabData
) -> None:
    exp = lab_data.published.id
    diff = np.asarray(
        Image.open(
            io.BytesIO(client.get(f"/api/experiments/{exp}/frames/0/difference.png").content)
        )
    )
    assert diff.ndim == 2
    assert np.median(diff) == pytest.approx(128, abs=4)
    assert diff.min() < 128 < diff.max()


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/frames/30", 404),
        ("/frames/30/heatmap.png", 404),
        ("/frames/-1", 422),
        ("/frames/x/heatmap.png", 422),
        ("/frames/0/thumbnail.png", 422),
    ],
)
def test_bad_frame_requests(client: TestClient, lab_data: LabData, path: str, status: int) -> None:
    response = client.get(f"/api/experiments/{lab_data.published.id}{path}")
    assert response.status_code == status, response.text


def test_frames_of_an_unpublished_experiment_are_409_with_the_reason(
    client: TestClient, lab_data: LabData
) -> None:
    response = client.get(f"/api/experiments/{lab_data.child.id}/frames/0/heatmap.png")
    assert response.status_code == 409
    assert "not published" in response.json()["detail"]


# -- overview and runs ---------------------------------------------------------------------


def test_the_overview_counts_and_prices_storage(client: TestClient, lab_data: LabData) -> None:
    body = client.get("/api/overview").json()
    assert body["experiments"] >= 4
    assert body["by_status"]["running"] >= 1
    assert body["achieved"] >= 1
    assert body["bytes_stored"] >= lab_data.published.bytes_stored > 0
    assert body["monthly_cost_usd"] == pytest.approx(
        body["bytes_stored"] / 1e9 * body["price_per_gb_month"]
    )


def test_progress_lists_completed_experiments_in_order(
    client: TestClient, lab_data: LabData
) -> None:
    body = client.get("/api/progress").json()
    assert body["total"] == len(body["iteration"]) >= 3
    assert body["iteration"] == list(range(1, body["total"] + 1))
    assert lab_data.published.id in body["id"]
    assert lab_data.running.id not in body["id"]
    best = [b for b in body["best_psnr_y"] if b is not None]
    assert best == sorted(best)
    assert client.get("/api/progress", params={"limit": 1}).status_code == 422


def test_run_progress_shows_the_active_experiment(client: TestClient, lab_data: LabData) -> None:
    runs = client.get("/api/runs").json()["items"]
    assert lab_data.run.id in [r["id"] for r in runs]
    body = client.get(f"/api/runs/{lab_data.run.id}/progress").json()
    assert body["run"]["status"] == "running"
    assert [e["id"] for e in body["active"]] == [lab_data.running.id]
    assert body["active"][0]["current_phase"] == "execution"
    assert body["poll_seconds"] == 0.5


def test_the_openapi_document_lists_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/experiments",
        "/api/experiments/{exp_id}",
        "/api/experiments/{exp_id}/frames",
        "/api/experiments/{exp_id}/links",
        "/api/experiments/{exp_id}/transcode",
        "/api/experiments/{exp_id}/package",
    ):
        assert path in paths
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()


# -- admin ---------------------------------------------------------------------------------


def _throwaway(lab: Lab, lab_data: LabData) -> str:
    """An experiment with objects of its own, to delete."""
    record = lab.records.create_experiment(
        designer="test", clip_sha256=lab_data.published.clip_sha256, rationale="to delete"
    )
    keys = {
        "decoder": f"decoders/{record.id}_decoder.py",
        "stream": f"experiments/{record.id}/stream.bin",
        "source": lab_data.published.artifacts["source"],
    }
    lab.store.put_bytes(keys["decoder"], b"# decoder\n")
    lab.store.put_bytes(keys["stream"], b"stream")
    lab.store.put_bytes(f"experiments/{record.id}/heatmaps/0.png", b"png")
    lab.records.update_experiment(record.id, artifacts=keys)
    return record.id


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"}])
def test_admin_actions_without_the_token_are_401(
    client: TestClient, lab_data: LabData, lab: Lab, headers: dict[str, str]
) -> None:
    exp_id = _throwaway(lab, lab_data)
    deleted = client.delete(f"/api/experiments/{exp_id}", headers=headers)
    assert deleted.status_code == 401
    assert deleted.headers["www-authenticate"] == "Bearer"
    published = client.post(f"/api/experiments/{lab_data.to_publish.id}/publish", headers=headers)
    assert published.status_code == 401
    assert lab.records.get_experiment(exp_id).id == exp_id  # still there


def test_admin_actions_are_refused_when_no_admin_token_is_configured(
    lab_data: LabData, lab: Lab
) -> None:
    app = create_app(lab_data.settings, access=Access())
    with TestClient(app, base_url=TEST_BASE) as client:
        exp_id = _throwaway(lab, lab_data)
        response = client.delete(
            f"/api/experiments/{exp_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
    assert response.status_code == 401
    assert "CODECLAB_ADMIN_TOKEN" in response.json()["detail"]


def test_delete_with_the_token_removes_the_record_and_its_own_objects(
    client: TestClient, lab_data: LabData, lab: Lab, admin: dict[str, str]
) -> None:
    exp_id = _throwaway(lab, lab_data)
    response = client.delete(f"/api/experiments/{exp_id}", headers=admin)
    assert response.status_code == 200, response.text
    assert set(response.json()["deleted_objects"]) == {
        f"decoders/{exp_id}_decoder.py",
        f"experiments/{exp_id}/stream.bin",
        f"experiments/{exp_id}/heatmaps/0.png",
    }
    assert client.get(f"/api/experiments/{exp_id}").status_code == 404
    assert not lab.store.exists(f"experiments/{exp_id}/stream.bin")
    assert lab.store.exists(lab_data.published.artifacts["source"])  # shared: kept
    assert client.delete(f"/api/experiments/{exp_id}", headers=admin).status_code == 404


def test_publish_with_the_token_publishes_a_completed_experiment(
    client: TestClient, lab_data: LabData, lab: Lab, admin: dict[str, str]
) -> None:
    response = client.post(f"/api/experiments/{lab_data.to_publish.id}/publish", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True
    record = lab.records.get_experiment(lab_data.to_publish.id)
    assert record.publish_status is PublishStatus.PUBLISHED
    assert lab.store.exists(record.artifacts["package"])


def test_publishing_a_running_experiment_is_409(
    client: TestClient, lab_data: LabData, admin: dict[str, str]
) -> None:
    response = client.post(f"/api/experiments/{lab_data.running.id}/publish", headers=admin)
    assert response.status_code == 409
    assert "completed" in response.json()["detail"]


# -- private reading -----------------------------------------------------------------------


def test_a_read_token_makes_reading_private(lab_data: LabData, lab: Lab) -> None:
    read = "read-token-for-tests-0123456789"
    app = create_app(lab_data.settings, access=Access(admin_token=ADMIN_TOKEN, read_token=read))
    with TestClient(app, base_url=TEST_BASE) as client:
        assert client.get("/api/experiments").status_code == 401
        assert client.get("/openapi.json").status_code == 401
        page = client.get("/blog", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/blog"
        bearer = {"Authorization": f"Bearer {read}"}
        assert client.get("/api/experiments", headers=bearer).status_code == 200
        assert client.get("/static/app.js").status_code == 200
        key = lab_data.published.artifacts["decoder"]
        assert client.get(lab.store.url(key)).status_code == 200  # signed links stay open
        refused = client.post("/login", data={"token": "wrong", "next": "/blog"})
        assert refused.status_code == 401
        login = client.post("/login", data={"token": read, "next": "/blog"}, follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/blog"
        assert client.get("/blog").status_code == 200  # the cookie now
        deleted = client.delete(f"/api/experiments/{lab_data.child.id}", headers=bearer)
        assert deleted.status_code == 401  # reading is not administering


def test_login_never_redirects_off_the_site(lab_data: LabData) -> None:
    read = "read-token-for-tests-0123456789"
    app = create_app(lab_data.settings, access=Access(read_token=read))
    with TestClient(app, base_url=TEST_BASE) as client:
        login = client.post(
            "/login",
            data={"token": read, "next": "//evil.example/"},
            follow_redirects=False,
        )
    assert login.headers["location"] == "/"
