"""The zone pipeline: published counts on the real data sets, failure isolation, re-runs, and invariants."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stedi_etl.checks.rules import ValidationReport
from stedi_etl.cli import main
from stedi_etl.contracts import Contract, load_contract
from stedi_etl.errors import UsageError
from stedi_etl.lake.storage import Store
from stedi_etl.lake.tables import Lake, read_table
from stedi_etl.model import sorting, transforms
from stedi_etl.model.days import DAY_MS
from stedi_etl.run import runner as pipeline
from tests.conftest import STARTER_COUNTS, break_step_trainer_trusted, write_landing


def counts(result: pipeline.RunResult) -> dict[str, int | None]:
    return {t.table: t.rows for t in result.tables}


def lake_counts(lake: Path) -> dict[str, int]:
    """Rows per table as a reader of the lake sees them (through the pointers), not as the run reported."""
    return {step.table: read_table(str(lake), step.table).height for step in pipeline.STEPS}


# --- the published counts -----------------------------------------------------------------------------------


def test_starter_reproduces_the_published_counts(starter: Path, tmp_path: Path) -> None:
    result = pipeline.run(str(starter), str(tmp_path))
    assert result.ok
    assert counts(result) == STARTER_COUNTS
    assert lake_counts(tmp_path) == STARTER_COUNTS
    assert [s.quarantined for s in result.landing_results] == [0, 0, 0]


def test_starter_with_the_rubric_join(starter: Path, tmp_path: Path) -> None:
    result = pipeline.run(str(starter), str(tmp_path), options=pipeline.RunOptions(ml_join="timestamp"))
    assert result.ok
    assert lake_counts(tmp_path) == {**STARTER_COUNTS, "machine_learning_curated": 43681}
    ml = next(t for t in result.tables if t.table == "machine_learning_curated")
    assert {w.check for w in ml.warnings} == {"distinct_rows", "same_customer_pairs"}  # waived, still shown


def test_starter_with_consent_cutoff(starter: Path, tmp_path: Path) -> None:
    result = pipeline.run(str(starter), str(tmp_path), options=pipeline.RunOptions(consent_cutoff=True))
    assert result.ok
    found = lake_counts(tmp_path)
    assert (found["accelerometer_trusted"], found["customer_curated"]) == (32025, 464)
    readings = Lake(Store(str(tmp_path))).read("accelerometer_trusted")
    consent = pl.read_ndjson(next((starter / "customer" / "landing").glob("*.json"))).select(
        "email", "shareWithResearchAsOfDate"
    )
    early = readings.join(consent, left_on="user", right_on="email").filter(
        pl.col("timestamp") < pl.col("shareWithResearchAsOfDate")
    )
    assert early.is_empty()


def test_stedi_2022_reproduces_the_published_counts(stedi_2022: Path, tmp_path: Path) -> None:
    result = pipeline.run(str(stedi_2022), str(tmp_path))
    assert result.ok
    assert lake_counts(tmp_path) == {
        "customer_trusted": 497,
        "accelerometer_trusted": 10316,
        "customer_curated": 137,
        "step_trainer_trusted": 29970,
        "machine_learning_curated": 0,
    }
    warned = {(t.table, w.check) for t in result.tables for w in t.warnings}
    assert ("customer_trusted", "email_unique") in warned  # re-registered customers are reported, not hidden


def test_run_all_cli_prints_the_summary_and_json(starter: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    text = runner.invoke(main, ["run-all", "--landing", str(starter), "--lake", str(tmp_path / "a")])
    assert text.exit_code == 0, text.output
    for table, rows in STARTER_COUNTS.items():
        assert any(
            line.split()[:1] == [table] and str(rows) in line.split() for line in text.stdout.splitlines()
        )
    assert "machine_learning_curated: 40981 rows" in text.stderr  # progress goes to stderr

    as_json = runner.invoke(
        main, ["run-all", "--landing", str(starter), "--lake", str(tmp_path / "b"), "--json"]
    )
    assert as_json.exit_code == 0
    assert as_json.stderr == ""
    document = json.loads(as_json.stdout)
    assert {t["table"]: t["rows"] for t in document["tables"]} == STARTER_COUNTS
    assert document["ok"] is True

    quiet = runner.invoke(main, ["run-all", "--landing", str(starter), "--lake", str(tmp_path / "c"), "-q"])
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")
    assert lake_counts(tmp_path / "c") == STARTER_COUNTS


# --- re-runs, partial runs, failures ------------------------------------------------------------------------


def test_a_full_refresh_replaces_every_table_and_leaves_one_version(starter: Path, tmp_path: Path) -> None:
    first = pipeline.run(str(starter), str(tmp_path))
    the_lake = Lake(Store(str(tmp_path)))
    before = {step.table: the_lake.read(step.table) for step in pipeline.STEPS}
    second = pipeline.run(str(starter), str(tmp_path), full_refresh=True)
    assert first.run_id != second.run_id
    assert {t.status for t in second.tables + second.quarantines} == {"published"}
    for step in pipeline.STEPS:
        assert the_lake.read(step.table).equals(before[step.table])
        folder = tmp_path / load_contract(step.table).dataset / load_contract(step.table).zone
        # One Delta table at the fixed folder, its second version the second run's, its first kept
        # (readable within the retention).
        pointer = the_lake.pointer(step.table)
        assert pointer is not None and pointer.version == 1 and pointer.run["run_id"] == second.run_id
        made = [
            name for run in (first, second) for t in run.tables if t.table == step.table for name in t.files
        ]
        assert len(made) == 2 and all(name.endswith(f"-{first.run_id}.parquet") for name in made[:1])
        assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*.parquet")) == sorted(made)
        assert the_lake.read(step.table, replace(pointer, version=0)).equals(before[step.table])


def test_run_builds_only_the_named_tables_and_what_they_need(starter: Path, tmp_path: Path) -> None:
    result = pipeline.run(str(starter), str(tmp_path), tables=["customer_curated"])
    assert [t.table for t in result.tables] == [
        "customer_trusted",
        "accelerometer_trusted",
        "customer_curated",
    ]
    assert [s.dataset for s in result.landing_results] == ["customer", "accelerometer"]
    assert not (tmp_path / "step_trainer").exists()

    cli = CliRunner().invoke(
        main, ["run", "customer_trusted", "--landing", str(starter), "--lake", str(tmp_path)]
    )
    assert cli.exit_code == 0, cli.output


def test_unknown_table_and_missing_landing_are_usage_errors(starter: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown table 'customers'"):
        pipeline.plan(["customers"])
    runner = CliRunner()
    unknown = runner.invoke(main, ["run", "customers", "--landing", str(starter), "--lake", str(tmp_path)])
    assert unknown.exit_code == 2
    assert unknown.stderr.strip().count("\n") == 0 and "unknown table" in unknown.stderr
    missing = runner.invoke(
        main, ["run-all", "--landing", str(tmp_path / "nope"), "--lake", str(tmp_path / "l")]
    )
    assert missing.exit_code == 2
    assert "no landing files for customer" in missing.stderr
    assert "Traceback" not in missing.output
    assert not (tmp_path / "l").exists()  # nothing written


def test_a_table_failing_its_contract_is_not_published_and_stops_only_its_dependents(
    starter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.run(str(starter), str(tmp_path))  # a previous, good version of every table
    the_lake = Lake(Store(str(tmp_path)))
    previous = {step.table: the_lake.pointer(step.table).version for step in pipeline.STEPS}

    break_step_trainer_trusted(monkeypatch)
    result = CliRunner().invoke(
        main, ["run-all", "--landing", str(starter), "--lake", str(tmp_path), "--full-refresh"]
    )
    assert result.exit_code == 1
    assert "step_trainer_trusted failed" in result.stderr and "distinct_rows" in result.stderr
    assert "machine_learning_curated skipped" in result.stderr

    now = {step.table: the_lake.pointer(step.table).version for step in pipeline.STEPS}
    for table in ("step_trainer_trusted", "machine_learning_curated"):
        assert now[table] == previous[table]  # not replaced
        assert the_lake.read(table).height == STARTER_COUNTS[table]
    for table in ("customer_trusted", "accelerometer_trusted", "customer_curated"):
        assert now[table] != previous[table]  # the independent tables were still published


def _with_transform(monkeypatch: pytest.MonkeyPatch, table: str, transform: object) -> None:
    steps = tuple(
        step if step.table != table else replace(step, transform=transform) for step in pipeline.STEPS
    )
    monkeypatch.setattr(pipeline, "STEPS", steps)


def test_a_machine_learning_table_pairing_other_customers_readings_is_not_published(
    starter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consent rule relating the table to its inputs blocks it. No later step needs the table or its
    inputs, so the rule reads them back from the Parquet staged for them; the verdict must not change."""

    def any_customer(
        step_readings: pl.LazyFrame, customers: pl.LazyFrame, readings: pl.LazyFrame, **_: object
    ) -> pl.LazyFrame:
        rubric = transforms.machine_learning_curated(step_readings, customers, readings, ml_join="timestamp")
        return rubric.unique().sort(pl.all())

    _with_transform(monkeypatch, "machine_learning_curated", any_customer)
    result = pipeline.run(str(starter), str(tmp_path))
    ml = next(t for t in result.tables if t.table == "machine_learning_curated")
    assert (ml.status, [e.check for e in ml.errors]) == ("failed", ["same_customer_pairs"])
    # Every same-customer pair is among the rubric's pairs, so exactly the others fail.
    assert ml.errors[0].failing_rows == ml.rows - STARTER_COUNTS["machine_learning_curated"] > 0
    assert Lake(Store(str(tmp_path))).pointer("machine_learning_curated") is None
    assert [t.status for t in result.tables if t.table != "machine_learning_curated"] == ["published"] * 4

    cli = CliRunner().invoke(main, ["run-all", "--landing", str(starter), "--lake", str(tmp_path / "cli")])
    assert cli.exit_code == 1
    assert "machine_learning_curated failed" in cli.stderr and "same_customer_pairs" in cli.stderr


def test_a_step_reading_that_is_not_trusted_fails_its_own_rule(
    starter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reading moved by one unit is no step_trainer_trusted reading: step_readings_exist fails, alone."""

    def moved(
        step_readings: pl.LazyFrame, customers: pl.LazyFrame, readings: pl.LazyFrame, **options: object
    ) -> pl.LazyFrame:
        built = transforms.machine_learning_curated(step_readings, customers, readings, **options)  # type: ignore[arg-type]
        return built.with_columns(
            pl.when(pl.int_range(pl.len()) == 0)
            .then(pl.col("distanceFromObject") + 1)
            .otherwise(pl.col("distanceFromObject"))
        )

    _with_transform(monkeypatch, "machine_learning_curated", moved)
    result = pipeline.run(str(starter), str(tmp_path))
    ml = next(t for t in result.tables if t.table == "machine_learning_curated")
    assert [(e.check, e.failing_rows) for e in ml.errors] == [("step_readings_exist", 1)]


def test_trusted_readings_of_a_customer_without_consent_stop_every_table_built_from_them(
    starter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """accelerometer_trusted is still needed by later steps, so its rule reads the frame in memory."""

    def leaking(readings: pl.LazyFrame, customers: pl.LazyFrame, **_: object) -> pl.LazyFrame:
        return readings.unique().sort(pl.all())  # every reading, consent or not

    _with_transform(monkeypatch, "accelerometer_trusted", leaking)
    result = pipeline.run(str(starter), str(tmp_path))
    status = {t.table: t.status for t in result.tables}
    assert status == {
        "customer_trusted": "published",
        "accelerometer_trusted": "failed",
        "customer_curated": "skipped",
        "step_trainer_trusted": "skipped",
        "machine_learning_curated": "skipped",
    }
    at = next(t for t in result.tables if t.table == "accelerometer_trusted")
    assert [e.check for e in at.errors] == ["only_consenting_customers"]


def test_rules_read_a_table_no_later_step_needs_from_its_staged_parquet(
    starter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What keeps the run's peak down: rules read tables no later step needs from staged Parquet, and the
    tables built by day are built and checked a task's days at a time, their readings read for those days
    only (the customer tables whole)."""
    from stedi_etl.checks import rules
    from stedi_etl.checks.rules import PartCounts, RelationTally
    from stedi_etl.model.days import day_of
    from stedi_etl.run.partitions import Budget, DayShared, DayTask, DayTaskResult

    read_as: dict[str, dict[str, str]] = {}
    days_seen: dict[str, list[set[int]]] = {}
    check_relations = pipeline.check_relations
    columns = {step.table: step.partition_by for step in pipeline.STEPS}

    def kind(frame: pl.DataFrame | pl.LazyFrame) -> str:
        if isinstance(frame, pl.DataFrame):
            return "frame"
        return "parquet" if "PARQUET" in frame.explain().upper() else "lazy"

    def spy(
        report: ValidationReport,
        contract: Contract,
        tables: Mapping[str, pl.DataFrame | pl.LazyFrame],
        waive: frozenset[str] = frozenset(),
    ) -> ValidationReport:
        read_as[contract.name] = {name: kind(t) for name, t in tables.items()}
        return check_relations(report, contract, tables, waive)

    class Tally(RelationTally):
        def count(self, tables: Mapping[str, pl.DataFrame | pl.LazyFrame]) -> PartCounts:
            if not columns.get(self.contract.name):  # a table built whole: check_relations' spy sees it
                return super().count(tables)
            read_as[self.contract.name] = {name: kind(t) for name, t in tables.items()}
            days: set[int] = set()
            for name, column in columns[self.contract.name].items():
                days |= set(tables[name].lazy().select(day_of(column)).collect().to_series())
            days_seen.setdefault(self.contract.name, []).append(days)
            return super().count(tables)

    monkeypatch.setattr(pipeline, "check_relations", spy)
    monkeypatch.setattr(rules, "RelationTally", Tally)  # as each day task imports it

    class TaskPerDay(Budget):
        @property
        def task_rows(self) -> int:
            return 1

    monkeypatch.setattr(pipeline, "budget", lambda _limit=None: TaskPerDay(2**30, "given"))
    given: list[tuple[str, tuple[int, ...], str, str]] = []  # table, task days, input, file
    run_day_task = pipeline.run_day_task

    def recorded(task: DayTask, shared: DayShared) -> DayTaskResult:
        for name, files in task.sources.items():
            given.extend((task.step.table, task.days, name, path) for path in files)
        return run_day_task(task, shared)

    monkeypatch.setattr(pipeline, "run_day_task", recorded)
    landing = tmp_path / "landing"
    shutil.copytree(starter, landing)
    for dataset, column in (("accelerometer", "timestamp"), ("step_trainer", "sensorReadingTime")):
        for path in sorted((landing / dataset / "landing").glob("*.json")):  # the same readings a day later
            records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            later = [{**r, column: r[column] + DAY_MS} for r in records if isinstance(r.get(column), int)]
            path.with_name(f"later-{path.name}").write_text("".join(json.dumps(r) + "\n" for r in later))
    assert pipeline.run(str(landing), str(tmp_path / "lake")).ok
    assert read_as["machine_learning_curated"] == {
        "step_trainer_trusted": "frame",
        "customer_curated": "frame",
        "accelerometer_trusted": "frame",
        "machine_learning_curated": "frame",
    }
    assert read_as["accelerometer_trusted"] == {
        "accelerometer_landing": "frame",
        "customer_trusted": "frame",
        "accelerometer_trusted": "frame",
    }
    for table in ("accelerometer_trusted", "step_trainer_trusted", "machine_learning_curated"):
        seen = days_seen[table]
        assert len(seen) > 1 and all(len(days) == 1 for days in seen), table  # one day per task
        assert len(set().union(*seen)) == len(seen), table  # each day in one task
    assert read_as["customer_curated"]["customer_trusted"] == "parquet"  # its last use
    # A task is given only the files holding its days' readings (parse-cache entries, the input's days).
    assert {table for table, *_ in given} == set(days_seen)
    for table, task_days, name, path in given:
        column = columns[table][name]
        in_file = set(pl.read_parquet(path).select(day_of(column)).to_series())
        assert in_file and in_file <= set(task_days), (table, name, path)


# --- invariants over generated data -------------------------------------------------------------------------

EMAILS = [f"c{i}@test.com" for i in range(8)]
SERIALS = [f"serial-{i}" for i in range(5)]
T0 = 1655564000000


@st.composite
def landing_data(draw: st.DrawFn) -> dict[str, list[dict[str, object]]]:
    """Customers (consenting or not, some re-registered), readings of customers and strangers, duplicates."""
    customers = []
    for email in draw(st.lists(st.sampled_from(EMAILS), min_size=1, max_size=10)):
        record: dict[str, object] = {"email": email, "serialNumber": draw(st.sampled_from(SERIALS))}
        consent = draw(st.sampled_from(["absent", "null", "early", "late"]))
        if consent == "null":
            record["shareWithResearchAsOfDate"] = None
        elif consent != "absent":
            record["shareWithResearchAsOfDate"] = T0 + (0 if consent == "early" else 5)
        customers.append(record)
    instants = st.integers(0, 9).map(lambda i: T0 + i)
    axis = st.sampled_from([-1.0, 0.0, 1.0])
    accelerometer = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "user": st.sampled_from([*EMAILS, "stranger@test.com"]),
                    "timestamp": instants,
                    "x": axis,
                    "y": axis,
                    "z": axis,
                }
            ),
            max_size=40,
        )
    )
    step_trainer = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "sensorReadingTime": instants,
                    "serialNumber": st.sampled_from([*SERIALS, "serial-unsold"]),
                    "distanceFromObject": st.integers(0, 300),
                }
            ),
            max_size=30,
        )
    )
    duplicate = draw(st.booleans())
    return {
        "customer": customers + (customers[:1] if duplicate else []),
        "accelerometer": accelerometer + (accelerometer[:2] if duplicate else []),
        "step_trainer": step_trainer + (step_trainer[:2] if duplicate else []),
    }


def write_all(root: Path, data: dict[str, list[dict[str, object]]]) -> None:
    for dataset, records in data.items():
        write_landing(root, dataset, f"{dataset}.json", "".join(json.dumps(r) + "\n" for r in records))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=landing_data(), cutoff=st.booleans())
def test_invariants_hold_on_generated_data(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, list[dict[str, object]]], cutoff: bool
) -> None:
    landing, lake = tmp_path_factory.mktemp("landing"), tmp_path_factory.mktemp("lake")
    write_all(landing, data)
    options = pipeline.RunOptions(consent_cutoff=cutoff)
    first = pipeline.run(str(landing), str(lake), options=options)
    assert first.ok, [t.reason for t in first.failed]
    the_lake = Lake(Store(str(lake)))
    as_read = {step.table: the_lake.read(step.table) for step in pipeline.STEPS}
    tables = dict(as_read)
    for step in pipeline.STEPS:  # the partition column is the UTC day of the reading time, as a date
        if step.partition_column:
            day = (pl.col(step.partition_column) // DAY_MS).cast(pl.Int32).cast(pl.Date)
            assert tables[step.table].filter(pl.col("reading_date") != day).is_empty()
            tables[step.table] = tables[step.table].drop("reading_date")

    # An oracle in plain Python, from the records as written.
    consent_at: dict[str, int] = {}
    for c in data["customer"]:
        if c.get("shareWithResearchAsOfDate") is not None:
            consent_at[c["email"]] = max(consent_at.get(c["email"], 0), c["shareWithResearchAsOfDate"])  # type: ignore
    readings = {
        (r["user"], r["timestamp"], r["x"], r["y"], r["z"])
        for r in data["accelerometer"]
        if r["user"] in consent_at and (not cutoff or r["timestamp"] >= consent_at[r["user"]])  # type: ignore
    }
    active = {user for user, *_ in readings}
    curated = {
        (c["email"], c["serialNumber"])
        for c in data["customer"]
        if c["email"] in active and c.get("shareWithResearchAsOfDate") is not None
    }
    owners: dict[str, set[str]] = {}
    for email, serial in curated:
        owners.setdefault(serial, set()).add(email)  # type: ignore[arg-type]
    steps = {
        (r["sensorReadingTime"], r["serialNumber"], r["distanceFromObject"])
        for r in data["step_trainer"]
        if r["serialNumber"] in owners
    }
    ml = {
        (t, s, d, x, y, z)
        for (t, s, d) in steps
        for (u, ts, x, y, z) in readings
        if ts == t and u in owners[s]
    }

    # Consent never leaks, and nothing is lost: every table holds exactly what the oracle says.
    assert set(tables["customer_trusted"]["email"]) == set(consent_at)
    assert set(tables["accelerometer_trusted"].rows()) == readings
    assert set(tables["customer_curated"].select("email", "serialNumber").rows()) == curated
    assert set(tables["step_trainer_trusted"].rows()) == steps
    assert set(tables["machine_learning_curated"].rows()) == ml
    assert not (set(tables["machine_learning_curated"].columns) & {"email", "user", "customerName", "phone"})

    # No derived table has an exact duplicate row.
    for name, frame in tables.items():
        assert frame.height == frame.unique().height, name

    # Two runs over the same input give the same rows in every table.
    second = pipeline.run(str(landing), str(lake), options=options)
    assert second.ok
    for name, frame in as_read.items():
        assert the_lake.read(name).equals(frame), name


@settings(max_examples=200, deadline=None)
@given(data=landing_data())
def test_the_rubric_join_keeps_every_same_instant_pair(data: dict[str, list[dict[str, object]]]) -> None:
    """The timestamp join pairs readings of any customer at an instant, and keeps each pair once."""
    step = pl.DataFrame(data["step_trainer"], schema=load_contract("step_trainer_trusted").file_schema())
    reading_schema = load_contract("accelerometer_trusted").file_schema()
    readings = pl.DataFrame(data["accelerometer"], schema=reading_schema)
    step, readings = step.unique(), readings.unique()
    customers = pl.DataFrame(schema=load_contract("customer_curated").polars_schema())
    built = transforms.machine_learning_curated(
        step.lazy(), customers.lazy(), readings.lazy(), ml_join="timestamp"
    ).collect()
    expected = sorted(
        (t, s, d, x, y, z) for t, s, d in step.rows() for _u, ts, x, y, z in readings.rows() if ts == t
    )
    assert sorted(built.rows()) == expected


def test_personal_data_never_reaches_output_logs_or_manifests(stedi_2022: Path, tmp_path: Path) -> None:
    """Warnings about repeated emails say how many, never which: names, emails and phones stay out."""
    customers = pl.read_ndjson(next((stedi_2022 / "customer" / "landing").glob("*.json")))
    personal = {v for column in ("customerName", "email", "birthDay") for v in customers[column].to_list()}
    runner = CliRunner()
    text = runner.invoke(main, ["run-all", "--landing", str(stedi_2022), "--lake", str(tmp_path)])
    as_json = runner.invoke(
        main, ["run-all", "--landing", str(stedi_2022), "--lake", str(tmp_path), "--json"]
    )
    checked = runner.invoke(main, ["validate", "--landing", str(stedi_2022)])
    manifests = "".join(p.read_text() for p in (tmp_path / "_stedi" / "runs").glob("*.json"))
    assert "email_unique" in text.stdout  # the warning is there
    for output in (text.stdout, text.stderr, as_json.stdout, checked.stdout, manifests):
        assert not [value for value in personal if value in output]


def frames_of_mixed_columns() -> st.SearchStrategy[pl.DataFrame]:
    """Small frames whose values repeat and include the awkward ones: nulls, empty text, NaN, -0.0."""
    text = st.sampled_from([None, "", "a", "b", "ab", "B", "é"])
    number = st.sampled_from([None, 0.0, -0.0, 1.5, -2.0, float("nan"), float("inf")])
    whole = st.sampled_from([None, -1, 0, 7])
    rows = st.lists(st.tuples(text, number, whole, text), max_size=40)
    return rows.map(
        lambda r: pl.DataFrame(
            r, schema={"t": pl.String, "f": pl.Float64, "i": pl.Int64, "u": pl.String}, orient="row"
        )
    )


@settings(max_examples=300, deadline=None)
@given(frame=frames_of_mixed_columns())
def test_distinct_sorted_rows_equal_the_plain_unique_then_sort(frame: pl.DataFrame) -> None:
    """The transforms' sort and neighbour dedupe give exactly what unique() then sort() gives, whether text
    leads (sorted by ranks) or a number does (sorted plainly)."""
    for ordered in (frame, frame.select("i", "t", "f", "u")):
        expected = ordered.unique().sort(pl.all())
        assert sorting.sorted_by_all(ordered.lazy(), distinct=True).collect().equals(expected)
        assert sorting.sorted_by_all(ordered.lazy()).collect().equals(ordered.sort(pl.all()))
