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
from stedi_etl.lake.storage import Store
from stedi_etl.lake.tables import Lake, choose_landing
from stedi_etl.run.runner import STEPS, run
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


# --- messages that help ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "hint"),
    [
        ("SELECT emial FROM customer_trusted", 'Candidate bindings: "email"'),
        ("SELECT * FROM customer_trustd", 'Did you mean "customer_trusted"?'),
        ("SELEC * FROM customer_trusted", "LINE 1: SELEC * FROM customer_trusted"),
    ],
)
def test_query_errors_keep_the_engines_hint_on_one_line(starter_lake: Path, sql: str, hint: str) -> None:
    outcome = cli("query", sql, "--lake", str(starter_lake))
    assert outcome.exit_code == 2
    assert hint in outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1


def test_contracts_show_where_each_table_lives() -> None:
    outcome = cli("contracts")
    assert outcome.exit_code == 0
    assert "quarantine  (<lake>/_quarantine/<dataset>" in outcome.stdout
    assert "_quarantine/quarantine" not in outcome.stdout
    assert "customer_landing  (<landing>/customer/landing/)" in outcome.stdout
    assert "machine_learning_curated  (<lake>/step_trainer/curated)" in outcome.stdout


def test_one_table_is_counted_in_the_singular(tmp_path: Path) -> None:
    from stedi_etl.run.runner import run as build

    build(None, str(tmp_path / "lake"), tables=["customer_trusted"])
    parquet = next((tmp_path / "lake" / "customer" / "trusted").rglob("*.parquet"))
    outcome = cli("validate", "--contract", "customer_trusted", str(parquet))
    assert outcome.exit_code == 0, outcome.output
    assert outcome.stdout.splitlines()[-1] == "ok: 1 table passes its contract"


def test_run_all_runs_catalog_and_the_report_count_tables_one_way(starter: Path, tmp_path: Path) -> None:
    """Before, run-all said "5/5 tables published" where runs said "8 published" of the same run."""
    lake = str(tmp_path / "lake")
    expected = "tables: 5 published, 0 up to date, 0 failed; quarantines: 3 published"
    summary = cli("run-all", "--landing", str(starter), "--lake", lake, "--report", str(tmp_path / "r.html"))
    assert summary.exit_code == 0, summary.output
    assert f"ok: {expected}; 0 records quarantined" in summary.stdout
    assert expected in cli("runs", "--lake", lake).stdout
    assert f"(ok: {expected})" in cli("catalog", "--lake", lake).stdout
    assert f'data-testid="run-counts">{expected}<' in (tmp_path / "r.html").read_text()


# --- progress on a terminal, nothing extra in a pipe ------------------------------------------------------


def _stderr_of_run(lake: Path, landing: Path, *flags: str, terminal: bool) -> str:
    """stderr of `run-all` as a separate process, on a pseudo-terminal or a pipe."""
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import REPO

    command = [sys.executable, "-m", "stedi_etl", "run-all", "--landing", str(landing), "--lake", str(lake)]
    if not terminal:
        done = subprocess.run([*command, *flags], cwd=REPO, capture_output=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stderr.decode()
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*command, *flags], cwd=REPO, stdout=subprocess.DEVNULL, stderr=follower, stdin=subprocess.DEVNULL
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's other end closed: the process is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=120) == 0
    return b"".join(chunks).decode(errors="replace")


def test_progress_bars_show_on_a_terminal_and_not_in_a_pipe(stedi_2022: Path, tmp_path: Path) -> None:
    on_terminal = _stderr_of_run(tmp_path / "a", stedi_2022, terminal=True)
    assert "building tables: 100%" in on_terminal and "8/8" in on_terminal
    assert "reading step_trainer:" in on_terminal and "B/s" in on_terminal  # bytes and their rate
    assert "[  " in on_terminal  # the step lines are still written, between the bars

    in_pipe = _stderr_of_run(tmp_path / "b", stedi_2022, terminal=False)
    assert "%|" not in in_pipe and "\r" not in in_pipe
    assert "landing step_trainer: 239760 rows from 8 files" in in_pipe

    forced = _stderr_of_run(tmp_path / "c", stedi_2022, "--progress", terminal=False)
    assert "building tables: 100%" in forced
    silenced = _stderr_of_run(tmp_path / "d", stedi_2022, "--no-progress", terminal=True)
    assert "%|" not in silenced and "landing step_trainer" in silenced


# --- an empty result is legal, never silent ---------------------------------------------------------------


def test_an_empty_table_is_flagged_with_its_reason_in_the_summary_and_the_report(
    stedi_2022: Path, tmp_path: Path
) -> None:
    reason = "no step trainer reading shares an instant with an accelerometer reading of the same customer"
    lake, page = tmp_path / "lake", tmp_path / "report.html"
    outcome = cli("run-all", "--landing", str(stedi_2022), "--lake", str(lake), "--report", str(page))
    assert outcome.exit_code == 0, outcome.output  # legal: still exit 0
    line = next(x for x in outcome.stdout.splitlines() if x.strip().startswith("machine_learning_curated "))
    assert line.split()[2:4] == ["0", "published"] and line.endswith("empty: see warnings")
    assert (
        f"machine_learning_curated: empty: {reason} (inputs: step_trainer_trusted 29970 rows, "
        "customer_curated 137 rows, accelerometer_trusted 10316 rows)"
    ) in outcome.stdout
    assert reason in page.read_text()
    # A table with rows carries no such warning.
    result = run(None, str(lake), full_refresh=True)
    empty = [t.table for t in result.tables if any(w.check == "empty" for w in t.warnings)]
    assert empty == ["machine_learning_curated"]
    # Up to date, it is still flagged: the reason is the contract's, the inputs were not read.
    again = run(None, str(lake))
    ml = next(t for t in again.tables if t.table == "machine_learning_curated")
    assert ml.status == "up_to_date" and [w.description for w in ml.warnings] == [reason]
