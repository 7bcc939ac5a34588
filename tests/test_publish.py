"""The publish protocol: a run killed at any write or commit leaves every table readable at one whole Delta
version, its previous one or the dead run's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from stedi_etl.errors import LakeError
from stedi_etl.lake import delta
from stedi_etl.lake.storage import Store
from stedi_etl.lake.tables import LEGACY_POINTER, Lake
from stedi_etl.run import runner as pipeline
from tests.conftest import REPO
from tests.conftest import STARTER_COUNTS as STARTER
from tests.conftest import STEDI_2022_COUNTS as STEDI_2022
from tests.killing import killed_run, run_with_moments

TABLES = list(STARTER)
QUARANTINES = ["customer_quarantine", "accelerometer_quarantine", "step_trainer_quarantine"]


def versions(lake: Path) -> dict[str, int]:
    the_lake = Lake(Store(str(lake)))
    return {table: the_lake.pointer(table).version for table in TABLES + QUARANTINES}


def readable_counts(lake: Path) -> dict[str, int]:
    the_lake = Lake(Store(str(lake)))
    return {table: the_lake.read(table).height for table in TABLES}


def settled(lake: Path, table: str) -> set[str]:
    """What a table's folder holds once every file no version needs is vacuumed at once."""
    the_lake = Lake(Store(str(lake)))
    delta.vacuum(the_lake.store, the_lake.table_dir(table), retention_hours=0)
    folder = Path(the_lake.table_dir(table))  # data files may lie in partition folders (reading_date=...)
    data = {
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "_delta_log" not in p.parts
    }
    return {"_delta_log", *data}


def current_files(lake: Path, table: str) -> set[str]:
    return {"_delta_log", *Lake(Store(str(lake))).pointer(table).files}  # type: ignore[union-attr]


# Writes of a run: its manifest (started), its manifest again (publishing), 8 new data files (3 quarantines,
# 5 tables), then 8 Delta commits, then the landing record and its manifest (succeeded).
@pytest.mark.parametrize("kill_at", [3, 6, 10])
def test_a_run_killed_while_writing_leaves_every_table_at_its_previous_version(
    starter: Path, stedi_2022: Path, tmp_path: Path, kill_at: int
) -> None:
    first = pipeline.run(str(starter), str(tmp_path))
    before = versions(tmp_path)
    before_runs = [first.run_id]

    killed_run(str(stedi_2022), str(tmp_path), kill_at, half_written=True)

    assert versions(tmp_path) == before
    assert readable_counts(tmp_path) == STARTER
    dead_files = [p for p in tmp_path.rglob("part-*.parquet") if all(r not in p.name for r in before_runs)]
    assert dead_files  # the dead run did leave half-written files, but no commit names them

    after = pipeline.run(str(stedi_2022), str(tmp_path))
    assert after.ok
    assert readable_counts(tmp_path) == STEDI_2022
    for table in TABLES + QUARANTINES:  # the dead run's leftovers are files no version needs
        assert settled(tmp_path, table) == current_files(tmp_path, table)


@pytest.mark.parametrize("kill_at", [11, 14, 18])
def test_a_run_killed_while_committing_leaves_each_table_whole(
    starter: Path, stedi_2022: Path, tmp_path: Path, kill_at: int
) -> None:
    """Dying after some tables were committed gives a lake of two runs, but never a half-read table."""
    pipeline.run(str(starter), str(tmp_path))
    before = versions(tmp_path)
    killed_run(str(stedi_2022), str(tmp_path), kill_at, half_written=True)
    now = versions(tmp_path)
    counts = readable_counts(tmp_path)
    for table in TABLES:
        assert now[table] in (before[table], before[table] + 1)
        assert counts[table] == (STARTER if now[table] == before[table] else STEDI_2022)[table]
    after = pipeline.run(str(stedi_2022), str(tmp_path))
    assert after.ok
    assert readable_counts(tmp_path) == STEDI_2022


def test_each_commit_carries_the_run_files_rows_and_contract(starter: Path, tmp_path: Path) -> None:
    result = pipeline.run(str(starter), str(tmp_path))
    store = Store(str(tmp_path))
    (latest,) = delta.history(store, store.path("customer", "trusted"))
    assert latest.version == 0 and latest.record["run"]["run_id"] == result.run_id
    assert latest.record["rows"] == 482
    assert latest.record["contract"] == "customer_trusted"
    assert len(latest.record["contract_sha256"]) == 64
    for name in latest.record["files"]:
        assert (tmp_path / "customer" / "trusted" / name).is_file()
    manifest = json.loads(Path(result.manifest or "").read_text())
    assert {t["table"]: t["version"] for t in manifest["tables"]}["customer_trusted"] == 0


def test_a_dead_runs_files_are_vacuumed_once_older_than_the_retention(starter: Path, tmp_path: Path) -> None:
    """Only the lock holder commits, so a data file no commit names is a dead run's leftover."""
    pipeline.run(str(starter), str(tmp_path))
    folder = tmp_path / "customer" / "trusted"
    (folder / "part-00000-20990101T000000000Z-dead00.parquet").write_bytes(b"half written")
    pipeline.run(str(starter), str(tmp_path), full_refresh=True)  # within the week: kept
    assert (folder / "part-00000-20990101T000000000Z-dead00.parquet").exists()
    assert len(list(folder.glob("part-*.parquet"))) == 3
    pipeline.run(str(starter), str(tmp_path), full_refresh=True, retention_hours=0)
    assert {p.name for p in folder.iterdir()} == current_files(tmp_path, "customer_trusted")


def test_a_lake_of_the_earlier_release_is_refused_by_readers_and_converted_by_a_run(
    starter: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "customer" / "trusted"
    (folder / "v-20260101T000000000Z-000000").mkdir(parents=True)
    (folder / "v-20260101T000000000Z-000000" / "part-00000.parquet").write_bytes(b"old release")
    (folder / LEGACY_POINTER).write_text('{"format": "stedi-etl/table-pointer/1"}')
    with pytest.raises(LakeError, match=r"earlier stedi-etl.*run `stedi-etl run-all --lake"):
        Lake(Store(str(tmp_path))).tables()
    assert pipeline.run(str(starter), str(tmp_path)).ok
    assert readable_counts(tmp_path) == STARTER
    assert not (folder / LEGACY_POINTER).exists()
    assert not list(folder.glob("v-*"))


# --- killed at any moment: reading, validating or publishing ------------------------------------------------

SAMPLE = REPO / "fixtures" / "sample"
ALL_TABLES = TABLES + QUARANTINES
KILLS = 24


@pytest.fixture(scope="module")
def before_and_after(starter: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A lake built from stedi-starter (the "before"), the tables a run of the sample data gives (the
    "after"), and the moments of that run, from one uninterrupted instrumented run."""
    root = tmp_path_factory.mktemp("moments")
    before = root / "before"
    pipeline.run(str(starter), str(before))
    calibration = root / "calibration"
    shutil.copytree(before, calibration)
    moments = run_with_moments(str(SAMPLE), str(calibration), 0, str(root / "calibration.log"))
    return {
        "lake": before,
        "before": all_tables(before),
        "after": all_tables(calibration),
        "moments": moments,
    }


def all_tables(lake: Path) -> dict[str, pl.DataFrame]:
    the_lake = Lake(Store(str(lake)))
    return {table: the_lake.read(table) for table in ALL_TABLES}


def chosen_moments(moments: list[tuple[int, str, str]]) -> list[int]:
    """KILLS moments: a third in each phase, spread evenly over it from its first moment to its last."""
    by_phase: dict[str, list[int]] = {}
    for number, phase, _name in moments:
        by_phase.setdefault(phase, []).append(number)
    chosen: set[int] = set()
    each = KILLS // len(by_phase)
    for numbers in by_phase.values():
        chosen.update(numbers[round(i * (len(numbers) - 1) / (each - 1))] for i in range(each))
    return sorted(chosen)


def test_the_run_has_enough_moments_in_each_phase(before_and_after: dict[str, Any]) -> None:
    moments = before_and_after["moments"]
    phases = {phase for _n, phase, _name in moments}
    assert phases == {"reading", "validating", "publishing"}
    chosen = chosen_moments(moments)
    assert len(chosen) >= 20
    phase_of = {n: phase for n, phase, _name in moments}
    for phase in phases:
        assert sum(phase_of[n] == phase for n in chosen) >= KILLS // 4
    assert moments[-1][0] in chosen  # the very last write: the run's final manifest


@pytest.mark.slow
@pytest.mark.parametrize("slot", range(KILLS))
def test_a_run_killed_at_any_moment_leaves_a_whole_consistent_lake(
    before_and_after: dict[str, Any], tmp_path: Path, slot: int
) -> None:
    moments = before_and_after["moments"]
    kill_at = chosen_moments(moments)[slot]
    lake = tmp_path / "lake"
    shutil.copytree(before_and_after["lake"], lake)
    base_versions = versions(lake)

    reached = run_with_moments(str(SAMPLE), str(lake), kill_at, str(tmp_path / "killed.log"))
    assert reached[-1][0] == kill_at
    where = f"killed at moment {kill_at}: {reached[-1][1]} {reached[-1][2]}"

    # Every table reads at exactly its previous version or the dead run's new one.
    the_lake = Lake(Store(str(lake)))
    now = versions(lake)
    for table in ALL_TABLES:
        frame = the_lake.read(table)
        expected = before_and_after["before" if now[table] == base_versions[table] else "after"][table]
        assert frame.equals(expected), (where, table)

    # The manifests agree with the tables: every current version's run recorded it.
    manifests = {p.stem: json.loads(p.read_text()) for p in (lake / "_stedi" / "runs").glob("*.json")}
    for table in ALL_TABLES:
        pointer = the_lake.pointer(table)
        recorded = manifests[pointer.run["run_id"]]
        listed = {t["table"]: t for t in recorded["tables"] + recorded["quarantines"]}
        assert listed[table]["version"] == pointer.version, (where, table)
    killed = [m for m in manifests.values() if m["status"] != "succeeded"]
    assert all(m["status"] in ("running", "publishing") for m in killed), where
    held = (lake / "_stedi" / "lock").read_text()
    killed_run = json.loads(held)["run_id"] if held else None

    # The next run finishes the job: the sample's tables, nothing but vacuumable files left over, the dead
    # run recorded.
    after = pipeline.run(str(SAMPLE), str(lake))
    assert after.ok, where
    assert after.took_over_from == killed_run
    tables = all_tables(lake)
    for table in ALL_TABLES:
        assert tables[table].equals(before_and_after["after"][table]), (where, table)
        assert settled(lake, table) == current_files(lake, table), where
    if killed_run and killed_run in manifests:
        final = json.loads((lake / "_stedi" / "runs" / f"{killed_run}.json").read_text())
        assert final["status"] == "interrupted", where
        # It counts as published only the tables it committed: `runs` said "8 published" for a run killed
        # before its first commit.
        store = Store(str(lake))
        for entry in final["tables"] + final["quarantines"]:
            committed = any(
                (c.record.get("run") or {}).get("run_id") == killed_run
                for c in delta.history(store, Lake(store).table_dir(entry["table"]))
            )
            assert (entry["status"] == "published") == committed, (where, entry["table"], entry["status"])
