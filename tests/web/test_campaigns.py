"""Campaigns started and stopped through the API: real ``codeclab run`` processes (the offline
designer on a few frames of carphone), a dashboard served by uvicorn on 127.0.0.1, and the
run each campaign records in the lab's database."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from codeclab.config import Settings
from codeclab.lab import Lab
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.web.campaigns import CampaignOptions
from tests.web.conftest import ADMIN_TOKEN, serving

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CAMPAIGN_SECONDS = 300  # a one-design campaign on a loaded 2-core machine


@dataclass(frozen=True)
class Lab1:
    url: str
    settings: Settings
    clip: str


@pytest.fixture(scope="module")
def lab1(tmp_path_factory: pytest.TempPathFactory, shared_clips: Path) -> Iterator[Lab1]:
    """An empty lab of its own (campaigns add runs the session lab's tests would count), and
    its dashboard over real HTTP."""
    data = tmp_path_factory.mktemp("campaign-lab") / "data"
    settings = Settings(data_dir=data, sandbox=SandboxSettings(scratch_root=data / "scratch"))
    with serving(settings) as served:
        yield Lab1(served.url, settings, str(shared_clips / "carphone_qcif.y4m"))


def _options(clip: str, **changes: Any) -> dict[str, Any]:
    """A campaign as small as a real one gets: one clip of 3 frames, one quality, no
    baselines, no VMAF, no smoke test."""
    return {
        "designer": "offline",
        "clips": [clip],
        "frames": 3,
        "quality": [50],
        "baselines": [],
        "vmaf": False,
        "smoke_frames": 0,
        "publish": "never",
        "workers": 1,
        **changes,
    }


def _wait_for(what: str, check: Callable[[], Any], seconds: float = CAMPAIGN_SECONDS) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def _launch(lab1: Lab1, launch_id: str) -> dict[str, Any]:
    response = httpx.get(f"{lab1.url}/api/campaigns/{launch_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_campaign_actions_need_the_admin_token(lab1: Lab1) -> None:
    wrong = {"Authorization": "Bearer not-the-admin-token-at-all"}
    for headers in ({}, wrong):
        for method, path, body in (
            ("POST", "/api/campaigns", _options(lab1.clip, iterations=1)),
            ("POST", "/api/campaigns", {"no_such_option": 1}),  # 401 before 422
            ("GET", "/api/campaigns", None),
            ("GET", "/api/campaigns/launch-20260101-000000-abcdef", None),
            ("POST", "/api/campaigns/launch-20260101-000000-abcdef/stop", None),
            ("POST", "/api/runs/run-none/stop", None),
        ):
            response = httpx.request(method, f"{lab1.url}{path}", json=body, headers=headers)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
    listed = httpx.get(f"{lab1.url}/api/campaigns", headers=ADMIN).json()["items"]
    assert listed == []  # nothing was started


@pytest.mark.parametrize(
    "body",
    [
        {"unknown": True},
        {"iterations": 0},
        {"forever": True, "iterations": 3},
        {"baselines": ["x266"]},
        {"quality": [101]},
        {"publish": "sometimes"},
        {"executor": "tcp://elsewhere:1"},
        {"time_budget": "soon"},
        {"designer": "offline --help"},
        {"resume": "run-1", "seed": 4},
    ],
)
def test_bad_campaign_options_are_refused(lab1: Lab1, body: dict[str, Any]) -> None:
    response = httpx.post(f"{lab1.url}/api/campaigns", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text


def test_unknown_launches_and_runs_give_404(lab1: Lab1) -> None:
    for method, path, body in (
        ("GET", "/api/campaigns/launch-20260101-000000-abcdef", None),
        ("POST", "/api/campaigns/launch-20260101-000000-abcdef/stop", None),
        ("POST", "/api/runs/run-none/stop", None),
        ("POST", "/api/campaigns", {"resume": "run-none"}),
    ):
        response = httpx.request(method, f"{lab1.url}{path}", json=body, headers=ADMIN)
        assert response.status_code == 404, (method, path, response.text)
    bad_id = httpx.get(f"{lab1.url}/api/campaigns/..%2Fsecrets", headers=ADMIN)
    assert bad_id.status_code in (404, 422)


def test_options_become_the_command_line_of_codeclab_run() -> None:
    options = CampaignOptions(
        designer="offline",
        clips=("a.y4m", "-b.y4m"),
        frames=3,
        iterations=2,
        quality=(20, 80),
        baselines=(),
        vmaf=False,
        forever=False,
    )
    assert options.arguments() == [
        "--designer=offline",
        "--clip=a.y4m",
        "--clip=-b.y4m",  # one argument: never read as an option
        "--frames=3",
        "--iterations=2",
        "--quality=20,80",
        "--baselines=",
        "--no-vmaf",
    ]


def test_a_started_campaign_runs_its_designs_and_records_its_run(lab1: Lab1) -> None:
    response = httpx.post(
        f"{lab1.url}/api/campaigns", json=_options(lab1.clip, iterations=1, seed=3), headers=ADMIN
    )
    assert response.status_code == 201, response.text
    started = response.json()
    assert started["state"] == "running" and started["alive"]
    assert "--iterations=1" in started["arguments"] and started["arguments"][0] == "run"

    ended = _wait_for(
        "the campaign to end",
        lambda: (body := _launch(lab1, started["id"]))["state"] == "exited" and body,
    )

    assert ended["exit_code"] == 0, f"codeclab run failed:\n{ended['log_tail']}"
    assert ended["run_id"] is not None, ended["log_tail"]
    run = httpx.get(f"{lab1.url}/api/runs/{ended['run_id']}").json()
    assert run["status"] == "finished"
    assert run["seed"] == 3 and run["experiments"] >= 1 and run["completed"] >= 1
    experiments = httpx.get(f"{lab1.url}/api/experiments", params={"run": run["id"]}).json()
    assert experiments["total"] == run["experiments"]
    with Lab.open(lab1.settings) as lab:  # recorded by the campaign, in the dashboard's lab
        assert lab.records.get_run(run["id"]).designer == "offline"
    stop = httpx.post(f"{lab1.url}/api/campaigns/{started['id']}/stop", headers=ADMIN)
    assert stop.status_code == 409  # it has ended


def test_stopping_a_campaign_ends_its_process_and_records_the_run_stopped(lab1: Lab1) -> None:
    response = httpx.post(
        f"{lab1.url}/api/campaigns", json=_options(lab1.clip, forever=True, seed=4), headers=ADMIN
    )
    assert response.status_code == 201, response.text
    launch_id, pid = response.json()["id"], response.json()["pid"]
    # the campaign process never sees the dashboard's tokens
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert ADMIN_TOKEN.encode() not in environ
    assert b"CODECLAB_DATABASE_URL=sqlite:///" in environ

    def running(check: Callable[[dict[str, Any]], Any]) -> Callable[[], Any]:
        def probe() -> Any:
            launch = _launch(lab1, launch_id)
            assert launch["alive"], f"the campaign ended early:\n{launch['log_tail']}"
            return check(launch)

        return probe

    run_id = _wait_for("the campaign's run", running(lambda launch: launch["run_id"]))
    _wait_for(  # a design is in flight: the stop has work to interrupt
        "an experiment of the run",
        running(lambda _: httpx.get(f"{lab1.url}/api/runs/{run_id}").json()["experiments"] >= 1),
    )
    page = httpx.get(f"{lab1.url}/runs/{run_id}").text
    assert 'data-action="admin-stop-run"' in page

    stopped = httpx.post(
        f"{lab1.url}/api/runs/{run_id}/stop", params={"grace": 120}, headers=ADMIN, timeout=180
    )

    assert stopped.status_code == 200, stopped.text
    body = stopped.json()
    assert (body["id"], body["state"], body["alive"]) == (launch_id, "stopped", False)
    assert body["stopped_by"] == "SIGTERM"  # it stopped by itself: no SIGKILL was needed
    run = httpx.get(f"{lab1.url}/api/runs/{run_id}").json()
    assert run["status"] == "stopped"
    assert not Path(f"/proc/{pid}").exists() or _is_zombie_free(pid)
    again = httpx.post(f"{lab1.url}/api/campaigns/{launch_id}/stop", headers=ADMIN)
    assert again.status_code == 409
    listed = httpx.get(f"{lab1.url}/api/campaigns", headers=ADMIN).json()["items"]
    assert listed[0]["id"] == launch_id and listed[0]["run_id"] == run_id


def _is_zombie_free(pid: int) -> bool:
    """The pid was reaped (or reused by an unrelated process)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state != "Z" and os.getpid() != pid


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def test_a_campaign_that_does_not_stop_within_the_grace_is_killed(lab1: Lab1) -> None:
    response = httpx.post(
        f"{lab1.url}/api/campaigns", json=_options(lab1.clip, forever=True, seed=5), headers=ADMIN
    )
    assert response.status_code == 201, response.text
    launch_id, pid = response.json()["id"], response.json()["pid"]
    _wait_for("the campaign's run", lambda: _launch(lab1, launch_id)["run_id"])

    stopped = httpx.post(
        f"{lab1.url}/api/campaigns/{launch_id}/stop", params={"grace": 0}, headers=ADMIN
    )

    assert stopped.status_code == 200, stopped.text
    body = stopped.json()
    assert (body["state"], body["alive"], body["stopped_by"]) == ("killed", False, "SIGKILL")
    # the whole process group went with it: the CLI and its pool workers
    _wait_for("the process group to end", lambda: not _group_members(pid), seconds=30)
    _wait_for("its exit code", lambda: _launch(lab1, launch_id)["exit_code"] == -9, seconds=10)
