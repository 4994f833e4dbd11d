"""Campaigns end to end on a real clip: offline search, reproducibility, kill and resume, the
LLM designer through a scripted HTTP server, and the budget stop."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from codeclab.config import Settings
from codeclab.lab import Lab
from codeclab.maintenance import close_abandoned_runs
from codeclab.pipeline.analysis import Target
from codeclab.pipeline.campaign import (
    CampaignConfig,
    CampaignError,
    CampaignResult,
    CampaignStatus,
    run_campaign,
)
from codeclab.pipeline.history import (
    SEARCH,
    SMOKE,
    StageClips,
    is_interrupted,
    load_history,
    psnr_at_rate,
)
from codeclab.pipeline.run_command import parse_duration
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.storage.records import ExperimentRecord, RecordStore
from tests.designers.llm_server import Reply, ScriptedLLMServer, running_server

FRAMES = 12
SMOKE_FRAMES = 3

pytestmark = pytest.mark.slow


def open_lab(data: Path) -> Lab:
    return Lab.open(Settings(data_dir=data, sandbox=SandboxSettings(scratch_root=data / "scratch")))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with open_lab(tmp_path / "data") as opened:
        yield opened


@pytest.fixture(scope="module")
def carphone(clips_dir: Path) -> str:
    return str(clips_dir / "carphone_qcif.y4m")


def small_config(clip: str, **changes: object) -> CampaignConfig:
    """A short campaign on 12 frames of a QCIF clip: 2 qualities, x264 only.

    VMAF is measured (analysis needs it whenever baselines run) but not a target floor.
    """
    config = CampaignConfig(
        clips=(clip,),
        frames=FRAMES,
        qualities=(30, 70),
        baselines=("x264",),
        target=Target(max_mbps=0.3, min_psnr_y=28.0, min_vmaf=None),
        smoke_frames=SMOKE_FRAMES,
        iterations=6,
        workers=1,
        population=3,
        seed=11,
    )
    return replace(config, **changes)  # type: ignore[arg-type]


def codec_sequence(result: CampaignResult) -> list[str | None]:
    return [trial.first.codec_sha256 for trial in result.trials]


@pytest.fixture(scope="module")
def offline_run(
    carphone: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Lab, CampaignResult, list[CampaignStatus]]]:
    statuses: list[CampaignStatus] = []
    with open_lab(tmp_path_factory.mktemp("offline") / "data") as opened:
        result = run_campaign(opened, small_config(carphone), progress=statuses.append)
        yield opened, result, statuses


# --- the offline campaign -------------------------------------------------------------------


def test_offline_campaign_finds_a_codec_better_than_its_first(
    offline_run: tuple[Lab, CampaignResult, list[CampaignStatus]],
) -> None:
    _, result, _ = offline_run
    assert result.run.status.value == "finished"
    assert len(result.trials) == 6
    board = {row.alias: row for row in result.leaderboard}
    first, best = board["d1"], result.leaderboard[0]
    assert best.alias != "d1"
    assert best.sort_key() < first.sort_key()
    assert best.bd_rate_x264 is not None and first.bd_rate_x264 is not None
    assert best.bd_rate_x264 < first.bd_rate_x264


def test_each_design_is_smoke_tested_before_its_search_clip(
    offline_run: tuple[Lab, CampaignResult, list[CampaignStatus]],
) -> None:
    lab, result, _ = offline_run
    clips = StageClips.from_run_config(result.run.config, result.run.id)
    for trial in result.trials:
        stages = [clips.stage_of(e.clip_sha256) for e in trial.experiments]
        assert [s[0] for s in stages if s] == [SMOKE, SEARCH]
        smoke, search = trial.experiments
        assert lab.records.get_clip(smoke.clip_sha256 or "").frame_count == SMOKE_FRAMES
        assert [m["quality"] for m in smoke.metrics] == [70]  # the ladder's (upper) median
        assert smoke.comparison["comparisons"] == {}  # no baselines at smoke
        assert lab.records.get_clip(search.clip_sha256 or "").frame_count == FRAMES
        assert [m["quality"] for m in search.metrics] == [30, 70]
        assert "x264" in search.comparison["comparisons"]
        assert smoke.codec_sha256 == search.codec_sha256


def test_progress_reports_phases_and_best_so_far(
    offline_run: tuple[Lab, CampaignResult, list[CampaignStatus]],
) -> None:
    _, result, statuses = offline_run
    activities = [s.activity for s in statuses]
    assert "preparing clips" in activities and activities[-1] == "done"
    assert any(a.startswith("proposing d") for a in activities)
    assert any(f.phase == "execution" for s in statuses for f in s.in_flight)
    assert statuses[-1].best is not None
    assert statuses[-1].best.alias == result.leaderboard[0].alias
    assert statuses[-1].designs == 6


def test_same_seed_gives_the_same_designs(
    offline_run: tuple[Lab, CampaignResult, list[CampaignStatus]], carphone: str
) -> None:
    lab, first, _ = offline_run
    again = run_campaign(lab, small_config(carphone, iterations=4))  # 3 seeds, then 1 bred
    assert again.run.id != first.run.id
    assert codec_sequence(again) == codec_sequence(first)[:4]
    assert None not in codec_sequence(first)


def test_two_workers_evaluate_each_design_once_under_stable_names(
    offline_run: tuple[Lab, CampaignResult, list[CampaignStatus]], carphone: str
) -> None:
    lab, one_worker, _ = offline_run
    result = run_campaign(lab, small_config(carphone, iterations=4, workers=2))
    assert [t.alias for t in result.trials] == ["d1", "d2", "d3", "d4"]
    assert all(len(t.experiments) == 2 and t.state().completed for t in result.trials)
    assert len(set(codec_sequence(result))) == 4
    # the seed population comes first, whatever finishes first
    assert codec_sequence(result)[:3] == codec_sequence(one_worker)[:3]


def test_designer_history_names_designs_by_alias_with_their_parents(
    offline_run: tuple[Lab, CampaignResult, list[CampaignStatus]],
) -> None:
    lab, result, _ = offline_run
    history = load_history(lab, result.run.id)
    assert [h.id for h in history] == [f"d{i}" for i in range(1, 7)]
    assert all(h.status == "completed" and h.curve for h in history)
    aliases = {h.id for h in history}
    bred = [h for h in history if h.parent_ids]
    assert bred, "designs after the seed population descend from earlier ones"
    assert all(set(h.parent_ids) <= aliases for h in bred)
    # and in the records, parents are real experiment ids
    ids = {e.id for t in result.trials for e in t.experiments}
    assert all(set(t.first.parent_ids) <= ids for t in result.trials)


def test_resume_refuses_to_change_what_is_searched(
    offline_run: tuple[Lab, CampaignResult, list[CampaignStatus]], carphone: str
) -> None:
    lab, result, _ = offline_run
    with pytest.raises(CampaignError, match="seed=11"):
        run_campaign(lab, small_config(carphone, seed=12), resume=result.run.id)


# --- kill and resume ------------------------------------------------------------------------

CLI = "import typer; from codeclab.pipeline.run_command import run_command; typer.run(run_command)"


def cli(data: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", CLI, "--data-dir", str(data), *args]


def all_experiments(data: Path) -> list[ExperimentRecord]:
    with RecordStore.open(f"sqlite:///{data / 'codeclab.db'}") as records:
        return records.list_experiments(limit=1000, order="created_at")


def wait_for_mid_experiment(data: Path, process: subprocess.Popen[bytes]) -> None:
    """Until two experiments are done and another is in its execution phase."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the campaign ended before it could be killed"
        if (data / "codeclab.db").exists():
            found = all_experiments(data)
            done = [e for e in found if e.status.value == "completed"]
            if len(done) >= 2 and any(e.current_phase == "execution" for e in found):
                return
        time.sleep(0.05)
    raise AssertionError("no experiment reached its execution phase within 120 s")


def test_killed_campaign_resumes_without_losing_or_repeating_experiments(
    tmp_path: Path, carphone: str
) -> None:
    data = tmp_path / "data"
    args = ["--clip", carphone, "--frames", str(FRAMES), "--quality", "30,70"]
    args += ["--baselines", "x264", "--target-mbps", "0.3", "--min-vmaf", "0", "--seed", "3"]
    process = subprocess.Popen(
        cli(data, *args, "--iterations", "3"), cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for_mid_experiment(data, process)
        workers = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert workers, "the campaign ran its jobs in worker processes"
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers outlived the killed campaign: {alive}"

    before = {e.id: e for e in all_experiments(data)}
    killed = [e for e in before.values() if e.status.value == "running"]
    assert len(killed) == 1
    with open_lab(data) as lab:
        (run,) = lab.records.list_runs()
        assert run.status.value == "running"  # as the dead process left it
        assert close_abandoned_runs(lab) == [run.id]  # codeclab gc: its process is gone
        assert lab.records.get_run(run.id).status.value == "stopped"
    resumed = subprocess.run(
        cli(data, "--resume", run.id), cwd=tmp_path, capture_output=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]

    after = {e.id: e for e in all_experiments(data)}
    assert set(before) <= set(after), "experiments recorded before the kill were lost"
    for exp_id, record in before.items():
        if record.status.value == "completed":
            assert after[exp_id] == record, f"{exp_id} was changed by the resumed run"
    interrupted = after[killed[0].id]
    assert is_interrupted(interrupted) and interrupted.failed_phase == "execution"
    # none run twice: one real experiment per codec and clip
    real = [e for e in after.values() if not is_interrupted(e)]
    runs_of = Counter((e.codec_sha256, e.clip_sha256) for e in real)
    assert max(runs_of.values()) == 1, runs_of
    assert runs_of[(killed[0].codec_sha256, killed[0].clip_sha256)] == 1  # retried once
    assert all(e.status.value == "completed" for e in real)
    assert len({e.codec_sha256 for e in real}) == 3  # the three designs asked for
    with RecordStore.open(f"sqlite:///{data / 'codeclab.db'}") as records:
        assert records.get_run(run.id).status.value == "finished"
    with sqlite3.connect(data / "codeclab.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert b"leaderboard" in resumed.stdout


def test_sigterm_stops_a_campaign_cleanly_and_resume_reopens_its_run(
    tmp_path: Path, carphone: str
) -> None:
    data = tmp_path / "data"
    args = ["--clip", carphone, "--frames", str(FRAMES), "--quality", "30,70"]
    args += ["--baselines", "", "--min-vmaf", "0", "--no-vmaf", "--seed", "5"]
    process = subprocess.Popen(
        cli(data, *args, "--iterations", "3"), cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for_mid_experiment(data, process)
        workers = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert b"--resume" in stdout  # how to go on is printed
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers outlived the stopped campaign: {alive}"
    with RecordStore.open(f"sqlite:///{data / 'codeclab.db'}") as records:
        (run,) = records.list_runs()
    assert run.status.value == "stopped" and run.finished_at is not None
    stopped = all_experiments(data)
    assert not [e for e in stopped if e.status.value in ("running", "pending")]
    # what was in flight (nothing, if the signal fell between two experiments) says why
    in_flight = [e for e in stopped if is_interrupted(e)]
    assert len(in_flight) <= 1
    assert all("stopped by the user" in (e.error or "") for e in in_flight)

    resumed = subprocess.run(
        cli(data, "--resume", run.id), cwd=tmp_path, capture_output=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    with RecordStore.open(f"sqlite:///{data / 'codeclab.db'}") as records:
        again = records.get_run(run.id)
    assert again.status.value == "finished"
    assert again.finished_at is not None and again.finished_at > run.finished_at
    real = [e for e in all_experiments(data) if not is_interrupted(e)]
    assert len({e.codec_sha256 for e in real if e.status.value == "completed"}) == 3


# --- the LLM designer -----------------------------------------------------------------------

LOSSY = """import zlib

import numpy as np

STEP_BASE = {step}


class Encoder:
    def __init__(self, width, height, fps, params):
        quality = int(params.get("quality", 50))
        self.step = max(1, STEP_BASE - quality * STEP_BASE // 100)

    def encode(self, y, u, v):
        planes = [(plane // self.step).astype(np.uint8).tobytes() for plane in (y, u, v)]
        return bytes([self.step]) + zlib.compress(b"".join(planes), 9)


class Decoder:
    def __init__(self, width, height, fps):
        self.width = width
        self.height = height

    def decode(self, packet):
        {first_line}
        step = packet[0]
        flat = np.frombuffer(zlib.decompress(packet[1:]), dtype=np.uint8).astype(np.int32)
        flat = np.clip(flat * step + step // 2, 0, 255).astype(np.uint8)
        w, h = self.width, self.height
        cw, ch = (w + 1) // 2, (h + 1) // 2
        y = flat[: w * h].reshape(h, w)
        u = flat[w * h : w * h + cw * ch].reshape(ch, cw)
        v = flat[w * h + cw * ch :].reshape(ch, cw)
        return [(y, u, v)]
"""
EXPLOSION = "the decoder exploded on purpose"
CALL_COST = 100_000 * 0.15 / 1e6 + 10_000 * 0.60 / 1e6  # gpt-4o-mini list price


def lossy_codec(step: int, *, broken: bool = False) -> str:
    """A quantise-and-zlib codec; `broken`: its decoder raises (it still validates)."""
    first = f'raise ValueError("{EXPLOSION}")' if broken else "pass"
    return LOSSY.format(step=step, first_line=first)


def reply(source: str, rationale: str) -> Reply:
    text = f"RATIONALE: {rationale}\n\n```python\n{source}```\n"
    return Reply(text, input_tokens=100_000, output_tokens=10_000)


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedLLMServer]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-campaign-4f1e")
    with running_server() as server:
        yield server


def test_llm_campaign_revises_a_failing_design_and_stops_at_its_budget(
    lab: Lab, carphone: str, llm: ScriptedLLMServer
) -> None:
    llm.enqueue(
        reply(lossy_codec(16, broken=True), "quantise and deflate"),
        reply(lossy_codec(16), "the decoder no longer raises"),
        reply(lossy_codec(24), "coarser steps for fewer bits"),
    )
    config = small_config(
        carphone,
        designer=f"openai:gpt-4o-mini@{llm.openai_base_url}",
        iterations=10,
        budget_usd=2.5 * CALL_COST,
    )
    result = run_campaign(lab, config)

    assert result.run.status.value == "finished"
    assert "budget" in result.stop_reason
    assert len(llm.requests) == 3  # the fourth call was never made
    first, revision, third = result.trials
    failed = first.state().failed
    assert failed is not None and failed.failed_phase == "execution"
    assert EXPLOSION in (first.failure_text() or "")
    assert "smoke test" in (first.failure_text() or "")
    assert EXPLOSION in llm.requests[1].body.decode()  # the error went back to the model
    assert revision.first.parent_ids[0] == failed.id
    assert revision.state().completed and third.state().completed
    for trial in result.trials:  # the design's cost is charged once, to its first experiment
        assert trial.first.cost_usd == pytest.approx(CALL_COST)
        assert trial.first.tokens_in == 100_000 and trial.first.tokens_out == 10_000
        assert all(e.cost_usd == 0 for e in trial.experiments[1:])
    assert result.spent_usd == pytest.approx(3 * CALL_COST)
    assert {e.designer for t in result.trials for e in t.experiments} == {"openai:gpt-4o-mini"}


# --- small pure helpers ---------------------------------------------------------------------


def test_psnr_at_rate_interpolates_in_log_rate_and_refuses_unreachable_rates() -> None:
    curve = [(100_000.0, 30.0), (400_000.0, 36.0)]
    assert psnr_at_rate(curve, 200_000.0) == pytest.approx(33.0)
    assert psnr_at_rate(curve, 1e6) == 36.0
    assert psnr_at_rate(curve, 50_000.0) is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("30m", 1800.0), ("1.5h", 5400.0)]
)
def test_time_budget_parses_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_time_budget_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="30m"):
        parse_duration("half an hour")
