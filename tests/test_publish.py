"""The publish protocol: a run killed at any write leaves every table readable, at one whole version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stedi_etl import pipeline
from stedi_etl.lake import POINTER, Lake, new_run_id
from stedi_etl.storage import Store
from tests.killing import killed_run

STARTER = {
    "customer_trusted": 482,
    "accelerometer_trusted": 40981,
    "customer_curated": 482,
    "step_trainer_trusted": 14460,
    "machine_learning_curated": 40981,
}
STEDI_2022 = {
    "customer_trusted": 497,
    "accelerometer_trusted": 10316,
    "customer_curated": 137,
    "step_trainer_trusted": 29970,
    "machine_learning_curated": 0,
}
TABLES = list(STARTER)
QUARANTINES = ["customer_quarantine", "accelerometer_quarantine", "step_trainer_quarantine"]


def versions(lake: Path) -> dict[str, str]:
    the_lake = Lake(Store(str(lake)))
    return {table: the_lake.pointer(table).version for table in TABLES + QUARANTINES}


def readable_counts(lake: Path) -> dict[str, int]:
    the_lake = Lake(Store(str(lake)))
    return {table: the_lake.read(table).height for table in TABLES}


# Writes of a run: 8 new versions (3 quarantines, 5 tables), then 8 pointer temporaries, then the manifest.
@pytest.mark.parametrize("kill_at", [1, 4, 8])
def test_a_run_killed_while_writing_leaves_every_table_at_its_previous_version(
    starter: Path, stedi_2022: Path, tmp_path: Path, kill_at: int
) -> None:
    pipeline.run(str(starter), str(tmp_path))
    before = versions(tmp_path)

    killed_run(str(stedi_2022), str(tmp_path), kill_at, half_written=True)

    assert versions(tmp_path) == before
    assert readable_counts(tmp_path) == STARTER
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size and "v-" in str(p)]
    assert leftovers  # the dead run did leave half-written files, but no reader is pointed at them

    after = pipeline.run(str(stedi_2022), str(tmp_path))
    assert after.ok
    assert readable_counts(tmp_path) == STEDI_2022
    for table in TABLES + QUARANTINES:  # the next good run removed the dead run's leftovers
        folder = Lake(Store(str(tmp_path))).table_dir(table)
        assert sorted(p.name for p in Path(folder).iterdir()) == [POINTER, f"v-{after.run_id}"]


@pytest.mark.parametrize("kill_at", [9, 12, 16])
def test_a_run_killed_while_swapping_pointers_leaves_each_table_whole(
    starter: Path, stedi_2022: Path, tmp_path: Path, kill_at: int
) -> None:
    """Dying after some pointers moved gives a lake of two runs, but never a half-read table."""
    pipeline.run(str(starter), str(tmp_path))
    before = versions(tmp_path)
    killed_run(str(stedi_2022), str(tmp_path), kill_at, half_written=True)
    now = versions(tmp_path)
    counts = readable_counts(tmp_path)
    for table in TABLES:
        assert now[table] == before[table] or now[table].startswith("v-")
        assert counts[table] == (STARTER if now[table] == before[table] else STEDI_2022)[table]
    after = pipeline.run(str(stedi_2022), str(tmp_path))
    assert after.ok
    assert readable_counts(tmp_path) == STEDI_2022


def test_pointer_names_the_version_files_rows_and_contract(starter: Path, tmp_path: Path) -> None:
    result = pipeline.run(str(starter), str(tmp_path))
    pointer = json.loads((tmp_path / "customer" / "trusted" / POINTER).read_text())
    assert pointer["version"] == f"v-{result.run_id}"
    assert pointer["rows"] == 482
    assert pointer["contract"] == "customer_trusted"
    assert len(pointer["contract_sha256"]) == 64
    for name in pointer["files"]:
        assert (tmp_path / "customer" / "trusted" / name).is_file()


def test_pruning_clears_every_version_but_the_current_one(starter: Path, tmp_path: Path) -> None:
    """Only the lock holder publishes, so a version folder other than the current one is a leftover: an
    older version, or a dead run's half-written one, newer than the current."""
    pipeline.run(str(starter), str(tmp_path))
    dead_run = tmp_path / "customer" / "trusted" / f"v-{new_run_id()}"
    dead_run.mkdir()
    (dead_run / "part-00000.parquet").write_bytes(b"half written")
    older = tmp_path / "customer" / "trusted" / "v-20000101T000000000Z-000000"
    older.mkdir()
    (older / "part-00000.parquet").write_bytes(b"superseded")
    the_lake = Lake(Store(str(tmp_path)))
    current = the_lake.pointer("customer_trusted")
    assert the_lake.prune([current]) == sorted([str(older), str(dead_run)])
    assert sorted(p.name for p in (tmp_path / "customer" / "trusted").iterdir()) == [POINTER, current.version]
