"""The experiment list's narrow query reads the same values as whole records, on SQLite and on
a real PostgreSQL server, in every order the API offers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from codeclab.config import Settings
from codeclab.lab import Lab
from codeclab.storage.records import ORDER_FIELDS, RecordStore
from codeclab.web import queries, schemas
from tests.storage.conftest_records import *  # noqa: F403 (the fixtures)
from tests.web.conftest import serving

# savings as the analysis writes them, and values a list must not take for a number
SAVINGS: list[object] = [-232.22124761268543, 12.5, 0, None, True, "12", 1e-300, 97.00000000000001]


def _fill(store: RecordStore) -> list[str]:
    run = store.create_run("test", {}, seed=1)
    ids: list[str] = []
    for n, saving in enumerate(SAVINGS):
        exp = store.create_experiment(
            designer="test",
            run_id=run.id if n % 2 else None,
            rationale=f"  \nIdea {n}: a finer quantiser\nand why",
            parent_ids=ids[-1:],
        )
        ids.append(exp.id)
        if n == 3:
            continue  # still pending: no comparison, no numbers
        comparison: dict[str, object] = {
            "comparisons": {
                "x264": {"saving_percent_at_equal_psnr_y": 1.0},
                "x265": {"saving_percent_at_equal_psnr_y": saving, "sentence": "x265 needs"},
            }
        }
        if n == 5:
            comparison = {"comparisons": {"x264": {"saving_percent_at_equal_psnr_y": 3.0}}}
        store.update_experiment(
            exp.id,
            status="completed" if n % 3 else "failed",
            comparison=comparison,
            bitrate_bps=None if n == 6 else 1e5 * (n + 1),
            psnr_y=30.0 + n / 3,
            ssim_y=0.9,
            vmaf=None if n % 4 == 0 else 60.0 + n,
            tier=n % 3 or None,
            target_achieved=n % 2 == 0,
            bytes_stored=n * 1000,
        )
    return ids


@pytest.mark.parametrize("order", [f"-{name}" for name in ORDER_FIELDS])
def test_list_rows_match_whole_records_in_every_order(
    record_store: RecordStore, order: str
) -> None:
    _fill(record_store)
    for ascending in (order, order.removeprefix("-")):
        for offset in (0, 3):
            expected = [
                schemas.ExperimentSummary.of(record)
                for record in record_store.list_experiments(limit=4, offset=offset, order=ascending)
            ]
            got = [
                schemas.ExperimentSummary.of_listed(row)
                for row in queries.listed(record_store, limit=4, offset=offset, order=ascending)
            ]
            assert got == expected, ascending


def test_list_rows_take_only_finite_numbers_as_savings(record_store: RecordStore) -> None:
    ids = _fill(record_store)

    rows = {row.id: row for row in queries.listed(record_store, limit=100, offset=0)}

    savings = [rows[exp_id].saving_vs_reference_percent for exp_id in ids]
    assert savings == [-232.22124761268543, 12.5, 0.0, None, None, None, 1e-300, 97.00000000000001]
    assert rows[ids[0]].title == "Idea 0: a finer quantiser"


def test_list_rows_follow_the_filters(record_store: RecordStore) -> None:
    ids = _fill(record_store)
    run_id = record_store.get_experiment(ids[1]).run_id

    def listed(**filters: object) -> list[str]:
        return [row.id for row in queries.listed(record_store, limit=50, offset=0, **filters)]  # type: ignore[arg-type]

    assert listed(run_id=run_id) == ids[1::2][::-1]
    assert listed(achieved=True) == [i for n, i in enumerate(ids) if n % 2 == 0 and n != 3][::-1]
    assert listed(status="pending") == [ids[3]]
    assert listed(run_id=run_id, status="failed") == []
    with pytest.raises(ValueError, match="order"):
        queries.listed(record_store, limit=1, offset=0, order="-rationale")


def test_the_api_list_follows_every_change_of_a_record(tmp_path: Path) -> None:
    """The list keeps each row per version of its record: a change, a new experiment and a
    deletion all show on the next read, over real HTTP."""
    settings = Settings(data_dir=tmp_path / "data")
    with Lab.open(settings) as lab, serving(settings) as served:
        ids = _fill(lab.records)
        url = f"{served.url}/api/experiments"

        def listed() -> dict[str, dict[str, Any]]:
            body = httpx.get(url, params={"limit": 50}).json()
            assert body["total"] == len(body["items"])
            return {item["id"]: item for item in body["items"]}

        first = listed()
        expected = [
            schemas.ExperimentSummary.of(r).model_dump(mode="json")
            for r in lab.records.list_experiments(limit=50)
        ]
        assert list(first.values()) == expected
        assert listed() == first  # served from the rows kept

        lab.records.update_experiment(ids[2], psnr_y=44.5, bytes_stored=77)
        lab.records.delete_experiment(ids[4])
        added = lab.records.create_experiment(designer="later", rationale="Newest")
        second = listed()

        assert second[ids[2]]["psnr_y"] == 44.5 and second[ids[2]]["bytes_stored"] == 77
        assert ids[4] not in second
        assert next(iter(second)) == added.id and second[added.id]["title"] == "Newest"
        for exp_id in set(first) - {ids[2], ids[4]}:
            assert second[exp_id] == first[exp_id]
