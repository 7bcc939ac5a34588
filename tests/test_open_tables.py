"""The lake as open tables: after two runs, readers that know nothing of stedi-etl read every table at its
fixed location, both versions, and Athena's DDL names the same location before and after."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from click.testing import CliRunner, Result
from sqlglot import exp, parse_one

from stedi_etl.cli import main
from stedi_etl.contracts import lake_tables, quarantine_tables
from stedi_etl.lake.tables import Lake
from stedi_etl.run.runner import RunOptions, run
from tests.conftest import STARTER_COUNTS

FOLDERS = {
    "customer_trusted": "customer/trusted",
    "accelerometer_trusted": "accelerometer/trusted",
    "customer_curated": "customer/curated",
    "step_trainer_trusted": "step_trainer/trusted",
    "machine_learning_curated": "step_trainer/curated",
}
TIMESTAMP_JOIN_ROWS = 43681  # the rubric's join on stedi-starter


def ddl_location(lake: Path) -> str:
    outcome = CliRunner().invoke(
        main, ["ddl", "machine_learning_curated", "--lake", str(lake), "--location", "s3://bucket/stedi"]
    )
    assert outcome.exit_code == 0, outcome.output
    statement = parse_one(outcome.stdout, read="athena")
    return statement.find(exp.LocationProperty).this.name  # type: ignore[union-attr]


def test_two_runs_give_two_versions_every_delta_reader_sees(starter: Path, tmp_path: Path) -> None:
    from deltalake import DeltaTable

    lake = tmp_path / "lake"
    assert run(str(starter), str(lake)).ok
    location_before = ddl_location(lake)
    assert run(str(starter), str(lake), options=RunOptions(ml_join="timestamp")).ok
    assert ddl_location(lake) == location_before == "s3://bucket/stedi/step_trainer/curated/"

    assert set(FOLDERS) == set(lake_tables())
    for table, folder in FOLDERS.items():
        where = str(lake / folder)
        expected = TIMESTAMP_JOIN_ROWS if table == "machine_learning_curated" else STARTER_COUNTS[table]
        assert pl.scan_delta(where).select(pl.len()).collect().item() == expected, table
        assert DeltaTable(where).version() == (1 if table == "machine_learning_curated" else 0), table
    ml = str(lake / FOLDERS["machine_learning_curated"])
    assert pl.read_delta(ml, version=0).height == STARTER_COUNTS["machine_learning_curated"]
    assert Lake.of(str(lake)).read("machine_learning_curated").height == TIMESTAMP_JOIN_ROWS
    # No file a plain Parquet reader would pick up besides the tables' own: no pointers, no version folders.
    assert not list(lake.rglob("_current.json")) and not list(lake.rglob("v-*"))


def test_history_lists_each_version_with_its_run_and_rows(starter: Path, tmp_path: Path) -> None:
    import json

    from stedi_etl.commands.history import table_history

    lake = tmp_path / "lake"
    first = run(str(starter), str(lake))
    second = run(str(starter), str(lake), options=RunOptions(ml_join="timestamp"))
    outcome = CliRunner().invoke(main, ["history", "machine_learning_curated", "--lake", str(lake), "--json"])
    assert outcome.exit_code == 0, outcome.output
    versions = json.loads(outcome.stdout)["versions"]
    assert [(v["version"], v["run_id"], v["rows"], v["current"]) for v in versions] == [
        (1, second.run_id, TIMESTAMP_JOIN_ROWS, True),
        (0, first.run_id, STARTER_COUNTS["machine_learning_curated"], False),
    ]
    library = table_history(str(lake))
    assert {v.table for v in library.versions} == {*lake_tables(), *quarantine_tables()}
    text = CliRunner().invoke(main, ["history", "--lake", str(lake)])
    assert text.exit_code == 0 and f"{second.run_id}  (current)" in text.stdout
    unknown = CliRunner().invoke(main, ["history", "customer_landing", "--lake", str(lake)])
    assert unknown.exit_code == 2 and "unknown table 'customer_landing'" in unknown.stderr


FIVE = (
    "SELECT (SELECT COUNT(*) FROM customer_trusted) AS a, (SELECT COUNT(*) FROM accelerometer_trusted) AS b,"
    " (SELECT COUNT(*) FROM customer_curated) AS c, (SELECT COUNT(*) FROM step_trainer_trusted) AS d,"
    " (SELECT COUNT(*) FROM machine_learning_curated) AS e"
)


def five_counts(lake: Path) -> list[int]:
    outcome = CliRunner().invoke(main, ["query", FIVE, "--lake", str(lake), "--format", "csv"])
    assert outcome.exit_code == 0, outcome.output
    return [int(n) for n in outcome.stdout.splitlines()[1].split(",")]


def test_a_run_killed_between_commits_leaves_readers_on_the_previous_runs_lake(
    starter: Path, stedi_2022: Path, tmp_path: Path
) -> None:
    from tests.conftest import STEDI_2022_COUNTS
    from tests.killing import killed_run

    lake = tmp_path / "lake"
    assert run(str(starter), str(lake)).ok
    # Writes: two manifests, eight data files, then the commits: killed before the fourth commit.
    killed_run(str(stedi_2022), str(lake), 14, half_written=False)
    committed = [t for t, f in FOLDERS.items() if pl.read_delta(str(lake / f)).height == STEDI_2022_COUNTS[t]]
    assert committed  # some tables took the dead run's commit: a plain Delta reader sees a mix
    assert five_counts(lake) == [STARTER_COUNTS[t] for t in FOLDERS]  # stedi-etl reads the snapshot

    # The next run of the snapshot's landing finds every table up to date and settles the strays.
    again = run(str(starter), str(lake))
    assert again.ok and {t.status for t in again.tables} == {"up_to_date"}
    for table, folder in FOLDERS.items():
        assert pl.read_delta(str(lake / folder)).height == STARTER_COUNTS[table], table
    assert five_counts(lake) == [STARTER_COUNTS[t] for t in FOLDERS]


def test_as_of_reads_an_earlier_runs_lake_until_its_files_are_vacuumed(
    starter: Path, stedi_2022: Path, tmp_path: Path
) -> None:
    from tests.conftest import STEDI_2022_COUNTS

    lake = tmp_path / "lake"
    first = run(str(starter), str(lake))
    second = run(str(stedi_2022), str(lake))
    third = run(str(starter), str(lake), options=RunOptions(ml_join="timestamp"))
    assert first.ok and second.ok and third.ok

    def as_of(moment: str) -> Result:
        return CliRunner().invoke(
            main, ["query", FIVE, "--lake", str(lake), "--format", "csv", "--as-of", moment]
        )

    counts = as_of(first.run_id)
    assert counts.exit_code == 0, counts.output
    assert [int(n) for n in counts.stdout.splitlines()[1].split(",")] == [STARTER_COUNTS[t] for t in FOLDERS]
    second_snapshot = Lake.of(str(lake), as_of=second.run_id).snapshot()
    assert second_snapshot is not None
    by_time = as_of(second_snapshot.written_at)  # a time: the snapshot current then
    assert [int(n) for n in by_time.stdout.splitlines()[1].split(",")] == [
        STEDI_2022_COUNTS[t] for t in FOLDERS
    ]
    assert five_counts(lake)[-1] == TIMESTAMP_JOIN_ROWS  # without --as-of: the latest run's lake
    validated = CliRunner().invoke(main, ["validate", "--lake", str(lake), "--as-of", first.run_id])
    assert validated.exit_code == 0, validated.output

    # A fourth run with no retention vacuums the files only the earlier runs' versions named.
    assert run(str(stedi_2022), str(lake), retention_hours=0).ok
    gone = as_of(first.run_id)
    assert gone.exit_code == 2
    assert "is no longer kept" in gone.stderr and len(gone.stderr.strip().splitlines()) == 1
    unknown = as_of("no-such-run")
    assert unknown.exit_code == 2 and "neither a run" in unknown.stderr


WRITER = """
import sys
from stedi_etl.run.runner import run
lake, landings, rounds = sys.argv[1], sys.argv[2:4], int(sys.argv[4])
for number in range(rounds):
    assert run(landings[number % 2], lake, full_refresh=True).ok
"""


def test_readers_see_one_runs_lake_while_a_writer_replaces_it(
    starter: Path, stedi_2022: Path, tmp_path: Path
) -> None:
    """A writer alternates the lake between the two data sets; every five-table query equals one run's
    counts and validate --lake never fails (before snapshots: 1 of 74 queries read two runs' tables)."""
    import subprocess
    import sys

    from stedi_etl.commands.query import run_query
    from stedi_etl.commands.validate import validate_lake
    from tests.conftest import REPO, STEDI_2022_COUNTS

    lake = tmp_path / "lake"
    assert run(str(starter), str(lake)).ok
    one_run = {tuple(STARTER_COUNTS[t] for t in FOLDERS), tuple(STEDI_2022_COUNTS[t] for t in FOLDERS)}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(lake), str(stedi_2022), str(starter), "20"],
        cwd=REPO,
        stderr=subprocess.PIPE,
    )
    reads = validations = 0
    try:
        while writer.poll() is None:
            counts = tuple(run_query(FIVE, str(lake), None).frame.row(0))
            assert counts in one_run, counts
            reads += 1
            if reads % 10 == 0:
                result = validate_lake(str(lake))
                assert result.ok, [f.line() for r in result.reports for f in r.errors]
                validations += 1
    finally:
        writer.wait(timeout=300)
    assert writer.returncode == 0, writer.stderr.read().decode()  # type: ignore[union-attr]
    print(f"{reads} five-table reads and {validations} lake validations during 20 runs")
    assert reads >= 50
