"""A newcomer's path: the lake remembers its landing, nothing succeeds by doing nothing, the help helps.

Each case goes through the CLI (click's CliRunner) and, where there is one, the library function behind it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from stedi_etl import sample_landing
from stedi_etl.cli import main
from stedi_etl.errors import UsageError
from stedi_etl.lake import Lake, choose_landing
from stedi_etl.pipeline import STEPS, run
from stedi_etl.storage import Store
from tests.conftest import STARTER_COUNTS, STARTER_LANDING


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def rows(outcome: Result) -> dict[str, int]:
    assert outcome.exit_code == 0, outcome.output
    return {t["table"]: t["rows"] for t in json.loads(outcome.stdout)["tables"]}


def test_a_plain_rerun_keeps_the_landing_the_lake_was_built_from(starter: Path, tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    assert rows(cli("run-all", "--landing", str(starter), "--lake", lake, "--json")) == STARTER_COUNTS
    # A forgotten --landing: before, this rebuilt the lake from the bundled sample (482 -> 155).
    again = cli("run-all", "--lake", lake, "--full-refresh", "--json")
    assert rows(again) == STARTER_COUNTS
    document = json.loads(again.stdout)
    assert document["landing"] == str(starter)
    assert document["landing_source"] == "recorded" and document["landing_changed_from"] is None
    summary = cli("run-all", "--lake", lake)
    assert summary.exit_code == 0, summary.output
    assert "landing: the one the lake was built from" in summary.stdout
    assert "landing changed" not in summary.stdout

    query = cli("query", "SELECT COUNT(*) AS n FROM customer_landing", "--lake", lake, "--format", "csv")
    assert query.exit_code == 0, query.output
    assert query.stdout.splitlines() == ["n", str(STARTER_LANDING["customer"])]
    profile = cli("profile", "--lake", lake, "--json")
    assert profile.exit_code == 0, profile.output
    landed = {d["dataset"]: d["rows"] for d in json.loads(profile.stdout)["datasets"]}
    assert landed == STARTER_LANDING


def test_another_landing_is_allowed_and_the_summary_says_it_changed(starter: Path, tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    assert cli("run-all", "--landing", str(starter), "--lake", lake, "-q").exit_code == 0
    sample = sample_landing()
    changed = cli("run-all", "--landing", sample, "--lake", lake)
    assert changed.exit_code == 0, changed.output
    assert f"landing changed: {starter} -> {sample}" in changed.stdout
    # From now on the lake remembers the sample: a plain run and a plain query read it.
    assert choose_landing(Lake(Store(lake)), None).uri == sample
    back = run(None, lake)
    assert back.landing_source == "recorded" and back.landing_changed_from is None


def test_a_new_lake_reads_the_bundled_sample(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    assert choose_landing(Lake(Store(lake)), None).source == "sample"
    first = run(None, lake)
    assert first.ok and first.landing_source == "sample"
    assert first.landing == sample_landing()
    # The sample is recorded as the bundled sample, so the lake keeps reading it: nothing to rebuild.
    second = run(None, lake)
    assert second.landing_source == "recorded"
    assert {t.status for t in second.tables} == {"up_to_date"}


def test_a_lake_of_an_earlier_release_falls_back_to_its_last_succeeded_run(
    starter: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    assert run(str(starter), str(lake)).ok
    (lake / "_stedi" / "landing.json").unlink()  # as a lake written before the record existed
    assert choose_landing(Lake(Store(str(lake))), None).uri == str(starter)


@pytest.mark.parametrize("tables", [["customer_landing"], ["customer_landing", "step_trainer_landing"]])
def test_run_naming_only_landing_tables_is_a_usage_error_and_records_no_run(
    tmp_path: Path, tables: list[str]
) -> None:
    lake = tmp_path / "lake"
    outcome = cli("run", *tables, "--lake", str(lake))
    assert outcome.exit_code == 2, outcome.output
    assert "validate --landing" in outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1
    with pytest.raises(UsageError, match="landing tables are read, not built"):
        run(None, str(lake), tables=tables)
    assert not (lake / "_stedi" / "runs").exists()  # no empty run becomes the latest


def test_run_help_lists_the_tables_it_builds() -> None:
    outcome = cli("run", "--help")
    assert outcome.exit_code == 0
    for step in STEPS:
        assert step.table in outcome.stdout
