"""`stedi-etl catalog`: each table's current version, contract columns, rows and the latest run's outcome."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from stedi_etl.cli import main
from stedi_etl.commands.catalog import build_catalog
from stedi_etl.errors import UsageError
from stedi_etl.lake import delta
from stedi_etl.lake.storage import Store
from stedi_etl.lake.tables import Lake
from tests.conftest import REPO, STARTER_COUNTS

# The rubric's row counts for a lake built from stedi-starter, and its empty quarantines.
STARTER_ROWS = {
    **STARTER_COUNTS,
    "customer_quarantine": 0,
    "accelerometer_quarantine": 0,
    "step_trainer_quarantine": 0,
}


def catalog(*args: str) -> Result:
    return CliRunner().invoke(main, ["catalog", *args])


def contract_columns(name: str) -> list[tuple[str, str]]:
    """A contract's (column, logicalType) pairs, read from its YAML file directly."""
    document = yaml.safe_load((REPO / "contracts" / f"{name}.yaml").read_text())
    return [(p["name"], p["logicalType"]) for p in document["schema"][0]["properties"]]


def test_every_table_with_its_version_columns_and_rows(starter_lake: Path) -> None:
    result = build_catalog(str(starter_lake))
    assert {t.table: t.rows for t in result.tables} == STARTER_ROWS
    for entry in result.tables:
        contract = "quarantine" if entry.table.endswith("_quarantine") else entry.table
        assert [(c.name, c.type) for c in entry.columns] == contract_columns(contract)
        assert entry.contract == "passed" and not entry.contract_changed
        # The location is the Delta table's fixed folder, and it holds the current version's files.
        folder = Path(entry.location or "")
        assert (folder / "_delta_log").is_dir() and entry.location.endswith("/")
        assert entry.version == 0
        assert entry.files and all((folder / name).is_file() for name in entry.files)
        assert entry.built_by_run == result.latest_run
    assert result.latest_run_ok is True
    zones = {t.table: t.zone for t in result.tables}
    assert zones["customer_curated"] == "curated" and zones["step_trainer_quarantine"] == "quarantine"


def test_the_cli_prints_the_catalog_as_a_table_and_as_json(starter_lake: Path) -> None:
    table = catalog("--lake", str(starter_lake))
    assert table.exit_code == 0, table.stderr
    line = next(row for row in table.stdout.splitlines() if row.startswith("machine_learning_curated"))
    assert line.split()[1:3] == ["curated", "40981"]
    assert "passed" in line and line.endswith("/step_trainer/curated/")
    assert "columns: user string, timestamp integer, x number" in table.stdout

    as_json = catalog("--lake", str(starter_lake), "--json")
    assert as_json.exit_code == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert {t["table"]: t["rows"] for t in document["tables"]} == STARTER_ROWS
    assert all(t["contract"] == "passed" for t in document["tables"])


def test_a_failed_latest_run_is_reported_beside_the_version_still_current(
    starter_lake: Path, tmp_path: Path
) -> None:
    lake_dir = tmp_path / "lake"
    shutil.copytree(starter_lake, lake_dir)
    lake = Lake(Store(str(lake_dir)))
    built_by = lake.pointer("customer_curated").run["run_id"]  # type: ignore[union-attr]
    failed_run = "29991231T235959999Z-ffffff"  # sorts after every real run id
    manifest = {
        "run_id": failed_run,
        "ok": False,
        "tables": [
            {"table": "customer_trusted", "status": "published", "rows": 482},
            {
                "table": "customer_curated",
                "status": "failed",
                "reason": "customer_curated.email_unique: 2 rows",
            },
            {
                "table": "step_trainer_trusted",
                "status": "skipped",
                "reason": "not built: needs customer_curated",
            },
        ],
    }
    lake.write_manifest(failed_run, manifest)

    result = build_catalog(str(lake_dir))
    by_table = {t.table: t for t in result.tables}
    assert result.latest_run == failed_run and result.latest_run_ok is False
    assert (
        by_table["customer_curated"].outcome
        == f"failed in run {failed_run}; current version from run {built_by}"
    )
    assert by_table["customer_curated"].contract == "passed"  # the current version did pass
    assert by_table["step_trainer_trusted"].latest_run.status == "skipped"  # type: ignore[union-attr]
    assert by_table["accelerometer_trusted"].latest_run is None

    printed = catalog("--lake", str(lake_dir))
    assert printed.exit_code == 0
    assert f"latest run {failed_run} (FAILED: tables: " in printed.stdout
    assert (
        f"failed in run {failed_run}; current version from run {built_by}: customer_curated.email_unique"
        in (printed.stdout)
    )


def test_a_version_checked_against_an_older_contract_is_flagged(starter_lake: Path, tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    shutil.copytree(starter_lake, lake_dir)
    lake = Lake(Store(str(lake_dir)))
    pointer = lake.pointer("step_trainer_trusted")
    assert pointer is not None
    stale = replace(pointer, contract_sha256="0" * 64)
    # A commit of the same file whose build record names another contract hash.
    folder = lake.table_dir("step_trainer_trusted")
    name = pointer.files[0]
    same = delta.DataFile(name, (Path(folder) / name).stat().st_size, pointer.rows, '{"numRecords": 1}')
    schema = lake.read("step_trainer_trusted").head(0).to_arrow().schema
    version = delta.commit(lake.store, folder, [same], schema, stale.record())
    snapshot = lake.snapshot()
    assert snapshot is not None
    lake.write_snapshot("stale-contract", {**snapshot.versions, "step_trainer_trusted": version})

    entries = {t.table: t for t in build_catalog(str(lake_dir)).tables}
    assert entries["step_trainer_trusted"].contract_changed
    assert not entries["customer_trusted"].contract_changed
    assert "passed*" in catalog("--lake", str(lake_dir)).stdout


def test_a_table_never_published_is_listed_without_a_version(tmp_path: Path) -> None:
    from stedi_etl.run.runner import run

    run(str(REPO / "fixtures" / "sample"), str(tmp_path), tables=["customer_trusted"])
    entries = {t.table: t for t in build_catalog(str(tmp_path)).tables}
    assert entries["customer_trusted"].contract == "passed"
    assert entries["machine_learning_curated"].location is None
    assert entries["machine_learning_curated"].contract == "not published"
    assert entries["machine_learning_curated"].rows is None


def test_a_missing_lake_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no published tables"):
        build_catalog(str(tmp_path / "nowhere"))
    outcome = catalog("--lake", str(tmp_path / "nowhere"))
    assert outcome.exit_code == 2
    assert outcome.stderr.startswith("error: no published tables in")
    assert len(outcome.stderr.strip().splitlines()) == 1
