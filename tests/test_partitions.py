"""The reading tables built day by day equal the tables built whole: the reasoning that DISTINCT, the
semi-joins and the machine-learning join never mix rows of different days is checked here, for any way of
grouping days into tasks, rather than trusted."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from stedi_etl.checks.rules import check_relations_in_parts, check_rows
from stedi_etl.cli import main
from stedi_etl.contracts import load_contract
from stedi_etl.lake.tables import Lake
from stedi_etl.model.steps import STEPS, RunOptions
from stedi_etl.run.partitions import DAY_MS, build_days, day_digests, input_days, tasks
from stedi_etl.run.runner import run
from tests.conftest import STARTER_COUNTS

EMAILS = ["a@x.com", "b@x.com", "c@x.com"]
SERIALS = ["s1", "s2"]
# Instants on both sides of day boundaries, shared by several users and devices.
INSTANTS = [DAY_MS - 1, DAY_MS, DAY_MS + 1, 2 * DAY_MS + 5, 3 * DAY_MS - 1, 5 * DAY_MS]


def customers() -> st.SearchStrategy[pl.DataFrame]:
    row = st.fixed_dictionaries(
        {
            "email": st.sampled_from(EMAILS),
            "serialNumber": st.sampled_from(SERIALS),
            "shareWithResearchAsOfDate": st.sampled_from([None, 0, DAY_MS + 1]),
            "lastUpdateDate": st.sampled_from([1, 2]),
        }
    )
    schema = load_contract("customer_landing").polars_schema()

    def frame(rows: list[dict[str, object]]) -> pl.DataFrame:
        full = [
            {"customerName": "N", "phone": "1", "birthDay": "2000-01-01", "registrationDate": 1, **r}
            for r in rows
        ]
        return pl.DataFrame(full, schema=schema)

    return st.lists(row, max_size=6).map(frame)


def readings() -> st.SearchStrategy[pl.DataFrame]:
    row = st.tuples(
        st.sampled_from([*EMAILS, "z@x.com"]), st.sampled_from(INSTANTS), st.sampled_from([0.0, 1.0])
    )
    schema = load_contract("accelerometer_landing").polars_schema()
    return st.lists(row, max_size=25).map(
        lambda rows: pl.DataFrame([(u, t, x, x, -x) for u, t, x in rows], schema=schema, orient="row")
    )


def step_readings() -> st.SearchStrategy[pl.DataFrame]:
    row = st.tuples(st.sampled_from(INSTANTS), st.sampled_from([*SERIALS, "s9"]), st.sampled_from([1, 2]))
    schema = load_contract("step_trainer_landing").polars_schema()
    return st.lists(row, max_size=25).map(lambda rows: pl.DataFrame(rows, schema=schema, orient="row"))


def by_days(table: str, frames: dict[str, pl.DataFrame], options: RunOptions, task_rows: int) -> pl.DataFrame:
    step = next(s for s in STEPS if s.table == table)
    keywords = {name: getattr(options, name) for name in step.options}
    built = build_days(step, frames, keywords, input_days(step, frames), task_rows)
    parts = [built[day] for day in sorted(built)]
    return pl.concat(parts) if parts else frames[table].clear()


@settings(max_examples=150, deadline=None)
@given(
    customer_landing=customers(),
    accelerometer_landing=readings(),
    step_trainer_landing=step_readings(),
    task_rows=st.integers(1, 60),
    ml_join=st.sampled_from(["same-customer", "timestamp"]),
    consent_cutoff=st.booleans(),
)
def test_tables_built_by_day_equal_the_tables_built_whole(
    customer_landing: pl.DataFrame,
    accelerometer_landing: pl.DataFrame,
    step_trainer_landing: pl.DataFrame,
    task_rows: int,
    ml_join: str,
    consent_cutoff: bool,
) -> None:
    options = RunOptions(ml_join=ml_join, consent_cutoff=consent_cutoff)  # type: ignore[arg-type]
    frames = {
        "customer_landing": customer_landing,
        "accelerometer_landing": accelerometer_landing,
        "step_trainer_landing": step_trainer_landing,
    }
    for step in STEPS:  # the whole tables, each from the whole tables before it
        keywords = {name: getattr(options, name) for name in step.options}
        frames[step.table] = step.transform(*(frames[i].lazy() for i in step.inputs), **keywords).collect()
    partitioned = [s for s in STEPS if s.partition_by]
    assert {s.table for s in partitioned} == {
        "accelerometer_trusted",
        "step_trainer_trusted",
        "machine_learning_curated",
    }
    for step in partitioned:
        in_days = by_days(step.table, frames, options, task_rows)
        # Each day's rows come out sorted; across days the table is in day order.
        days = frames[step.table].get_column(step.partition_column) // DAY_MS
        assert in_days.equals(frames[step.table].sort(days, maintain_order=True)), step.table


def test_days_are_grouped_into_tasks_up_to_the_row_budget() -> None:
    days = {3: 5, 1: 2, 2: 2, 9: 10, 4: 1}
    assert tasks(days, 4) == [[1, 2], [3], [4], [9]]
    assert tasks(days, 100) == [[1, 2, 3, 4, 9]]
    assert tasks(days, 1) == [[1], [2], [3], [4], [9]]
    assert tasks({}, 10) == []


def test_a_day_digest_changes_with_its_rows_only() -> None:
    schema = load_contract("accelerometer_landing").polars_schema()
    rows = [("a", DAY_MS + 1, 1.0, 0.0, 0.0), ("a", 2 * DAY_MS, 1.0, 0.0, 0.0)]
    before = day_digests(pl.DataFrame(rows, schema=schema, orient="row"), "timestamp")
    reordered = day_digests(pl.DataFrame(rows[::-1], schema=schema, orient="row"), "timestamp")
    changed = day_digests(
        pl.DataFrame([rows[0], ("b", 2 * DAY_MS, 1.0, 0.0, 0.0)], schema=schema, orient="row"), "timestamp"
    )
    assert before == reordered
    assert changed[1] == before[1] and changed[2] != before[2]


def shifted_copy(source: Path, target: Path, column: str, by_ms: int) -> None:
    """A landing file's records with their reading time moved by ``by_ms``."""
    records = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(json.dumps({**r, column: r[column] + by_ms}) for r in records) + "\n")


def run_json(landing: Path, lake: Path) -> dict[str, dict[str, object]]:
    outcome = CliRunner().invoke(main, ["run-all", "--landing", str(landing), "--lake", str(lake), "--json"])
    assert outcome.exit_code == 0, outcome.output
    return {t["table"]: t for t in json.loads(outcome.stdout)["tables"]}


def test_a_new_file_rebuilds_only_the_days_it_touches(starter: Path, tmp_path: Path) -> None:
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    shutil.copytree(starter, landing)
    for dataset, column in (("accelerometer", "timestamp"), ("step_trainer", "sensorReadingTime")):
        for path in sorted((starter / dataset / "landing").glob("*.json")):  # the same readings 2 days later
            shifted_copy(path, landing / dataset / "landing" / f"later-{path.name}", column, 2 * DAY_MS)
    first = run_json(landing, lake)
    assert {t: (first[t]["days_built"], first[t]["days_kept"]) for t in first if first[t]["days_built"]} == {
        "accelerometer_trusted": (2, 0),
        "step_trainer_trusted": (2, 0),
        "machine_learning_curated": (2, 0),
    }
    assert first["machine_learning_curated"]["rows"] == 2 * STARTER_COUNTS["machine_learning_curated"]

    # One new accelerometer file, on the later day only (its readings a millisecond after the originals).
    a_file = min((starter / "accelerometer" / "landing").glob("*.json"))
    shifted_copy(a_file, landing / "accelerometer" / "landing" / "new.json", "timestamp", 2 * DAY_MS + 1)
    cron = run_json(landing, lake)
    assert cron["accelerometer_trusted"]["status"] == "published"
    assert (cron["accelerometer_trusted"]["days_built"], cron["accelerometer_trusted"]["days_kept"]) == (1, 1)
    assert (
        cron["machine_learning_curated"]["days_built"],
        cron["machine_learning_curated"]["days_kept"],
    ) == (
        1,
        1,
    )
    assert cron["step_trainer_trusted"]["status"] == "up_to_date"
    assert run(str(landing), str(tmp_path / "full")).ok
    for table in ("accelerometer_trusted", "customer_curated", "machine_learning_curated"):
        assert Lake.of(str(lake)).read(table).equals(Lake.of(str(tmp_path / "full")).read(table)), table

    unchanged = run_json(landing, lake)
    assert {t["status"] for t in unchanged.values()} == {"up_to_date"}


def test_a_rule_checked_in_parts_counts_its_failures_in_every_part() -> None:
    contract = load_contract("accelerometer_trusted")
    schema = contract.polars_schema()
    customers = pl.DataFrame({"email": ["a@x.com"]})  # what the rule reads of customer_trusted
    second, third = date(1970, 1, 2), date(1970, 1, 3)
    consenting = ("a@x.com", DAY_MS, 0.0, 0.0, 0.0, second)
    stranger = ("z@x.com", DAY_MS + 1, 0.0, 0.0, 0.0, second)
    day = [
        pl.DataFrame([consenting, stranger], schema=schema, orient="row"),
        pl.DataFrame([("z@x.com", 2 * DAY_MS, 0.0, 0.0, 0.0, third)], schema=schema, orient="row"),
    ]
    parts = [{"accelerometer_trusted": frame.lazy(), "customer_trusted": customers} for frame in day]
    report = check_rows(pl.concat(day), contract, None)
    checked = check_relations_in_parts(report, contract, parts)
    assert [(e.check, e.failing_rows) for e in checked.errors] == [("only_consenting_customers", 2)]
    assert check_relations_in_parts(report, contract, []).errors == ()


def test_landing_day_sums_kept_with_each_parse_add_up_to_the_rows_read(tmp_path: Path) -> None:
    """Each file's day sums are taken over its rows that pass the row rules; a run that reuses some parses
    must add up to the sums of the rows it reads (an empty file and a row that breaks a rule included)."""
    from stedi_etl.lake.storage import open_store
    from stedi_etl.landing.cache import ParseCache
    from stedi_etl.landing.read import read_landing
    from stedi_etl.model.days import day_sums

    def line(user: str, at: int) -> str:
        return json.dumps({"user": user, "timestamp": at, "x": 1.0, "y": 0.0, "z": 0.0})

    folder = tmp_path / "landing" / "accelerometer" / "landing"
    folder.mkdir(parents=True)
    (folder / "a.json").write_text("\n".join(line("a@x.com", DAY_MS * 20_000 + i) for i in range(5)))
    (folder / "b.json").write_text("")
    # The second record's time is in seconds: it breaks the contract's minimum and is quarantined.
    (folder / "c.json").write_text(line("c@x.com", DAY_MS * 20_001) + "\n" + line("c@x.com", 1_655_564))
    (folder / "d.json").write_text("\n".join(line("d@x.com", DAY_MS * 20_000 + 7 * i) for i in range(3)))
    landing, lake = open_store(str(tmp_path / "landing")), open_store(str(tmp_path / "lake"))

    def read() -> tuple[object, object]:
        cache = ParseCache(lake, lake.path("parsed"), "contract", "code")
        found = read_landing(landing, "accelerometer", cache=cache, day_column="timestamp")
        cache.save()
        return found.days, day_sums(found.lazy().collect(), "timestamp").get(0, {})

    first, expected = read()
    assert first == expected and sum(rows for rows, _low, _high in first.values()) == 9
    (folder / "d.json").write_text(line("d@x.com", DAY_MS * 20_002))  # one file changed: three reused
    second, expected = read()
    assert second == expected and sum(rows for rows, _low, _high in second.values()) == 7


def test_a_memory_limit_sizes_the_work_and_never_the_result(starter: Path, tmp_path: Path) -> None:
    """The least memory limit builds the same lake in more, smaller tasks; the run says what it used."""
    from stedi_etl.run.partitions import MIN_TASK_ROWS, budget

    landing = tmp_path / "landing"
    shutil.copytree(starter, landing)
    for dataset, column in (("accelerometer", "timestamp"), ("step_trainer", "sensorReadingTime")):
        for path in sorted((starter / dataset / "landing").glob("*.json")):  # three days of readings
            for days in (1, 2):
                target = landing / dataset / "landing" / f"later-{days}-{path.name}"
                shifted_copy(path, target, column, days * DAY_MS)
    command = ["run-all", "--landing", str(landing), "--lake", str(tmp_path / "small"), "--json"]
    small = CliRunner().invoke(main, [*command, "--memory-limit", "128MiB"])
    assert small.exit_code == 0, small.output
    used = json.loads(small.stdout)["budget"]
    assert used["memory_limit"] == 128 * 2**20 and used["source"] == "given"
    # Fewer rows per task than the three days' 3 x 81,273 accelerometer records: the days take two tasks
    # or more, where the default budget builds them in one.
    assert MIN_TASK_ROWS <= used["task_rows"] < 3 * 81_273 < budget().task_rows
    assert used["landing_batch_bytes"] < budget().landing_batch_bytes
    assert run(str(landing), str(tmp_path / "default")).ok
    for table in STARTER_COUNTS:
        built_small = Lake.of(str(tmp_path / "small")).read(table)
        assert built_small.equals(Lake.of(str(tmp_path / "default")).read(table)), table
    assert built_small.height == 3 * STARTER_COUNTS["machine_learning_curated"]


def test_memory_limits_are_read_in_the_units_people_write() -> None:
    from stedi_etl.run.partitions import Budget, parse_size

    assert parse_size("1GiB") == parse_size("1 gib") == 2**30
    assert parse_size("800MB") == 800 * 10**6 and parse_size("512M") == 512 * 10**6
    assert parse_size("1.5GiB") == 3 * 2**29 and parse_size("268435456") == 2**28
    for wrong in ("lots", "1 GiB of it", "-1GiB", "12", "100MiB"):
        try:
            parse_size(wrong)
        except ValueError:
            continue
        raise AssertionError(f"{wrong!r} was read as a size")
    # More memory gives larger tasks and batches, up to the caps.
    sizes = [Budget(limit * 2**20, "given") for limit in (256, 1024, 4096, 65536)]
    assert [b.task_rows for b in sizes] == sorted(b.task_rows for b in sizes)
    assert [b.landing_batch_bytes for b in sizes] == sorted(b.landing_batch_bytes for b in sizes)


def test_a_memory_limit_that_is_not_a_size_is_a_usage_error(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(main, ["run-all", "--lake", str(tmp_path), "--memory-limit", "lots"])
    assert outcome.exit_code == 2
    assert "'lots' is not a size (for example 1GiB, 800MB, 512M)" in outcome.stderr
    assert "Traceback" not in outcome.output


def test_a_landing_key_rule_checked_a_day_at_a_time_counts_what_the_whole_check_counts(
    tmp_path: Path,
) -> None:
    """step_trainer_landing's key holds the reading time, so its repeats are found day by day from the
    parse cache (flat memory) with the same counts as over the dataset whole."""
    from stedi_etl.lake.storage import open_store
    from stedi_etl.landing.cache import ParseCache
    from stedi_etl.landing.read import read_landing

    def reading(serial: str, at: int, distance: int) -> str:
        return json.dumps({"sensorReadingTime": at, "serialNumber": serial, "distanceFromObject": distance})

    folder = tmp_path / "landing" / "step_trainer" / "landing"
    folder.mkdir(parents=True)
    day = 20_000 * DAY_MS
    (folder / "a.json").write_text(
        "\n".join(reading("s1", day + i, 100 + i) for i in range(4)) + "\n" + reading("s1", day, 7)
    )
    (folder / "b.json").write_text(  # repeats on a later day, one of them of a file before
        "\n".join([reading("s2", day + DAY_MS, 1), reading("s2", day + DAY_MS, 2), reading("s1", day + 1, 9)])
    )
    landing, lake = open_store(str(tmp_path / "landing")), open_store(str(tmp_path / "lake"))
    whole = read_landing(landing, "step_trainer")
    cache = ParseCache(lake, lake.path("parsed"), "contract", "code")
    by_day = read_landing(
        landing, "step_trainer", cache=cache, day_column="sensorReadingTime", rows_at_once=1
    )
    assert [(w.check, w.failing_rows) for w in whole.report.warnings] == [("reading_key_unique", 6)]
    assert [(w.check, w.failing_rows) for w in by_day.report.warnings] == [("reading_key_unique", 6)]
    assert by_day.report.errors == whole.report.errors == ()


def test_a_day_task_and_its_result_are_small_descriptions(
    starter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a task takes and gives back crosses a process boundary as a few kilobytes: files, days,
    records and counts, never the readings (the customer tables go to every task beside it)."""
    import pickle

    from stedi_etl.run import runner
    from stedi_etl.run.partitions import DayShared, DayTask, DayTaskResult, run_day_task

    seen: list[tuple[int, int]] = []

    def described(task: DayTask, shared: DayShared) -> DayTaskResult:
        sent = pickle.loads(pickle.dumps(task))  # what another process would get
        assert all(isinstance(path, str) for files in sent.sources.values() for path in files)
        assert set(shared.broadcast) <= {"customer_trusted", "customer_curated"}
        result = run_day_task(sent, shared)
        back = pickle.loads(pickle.dumps(result))
        seen.append((len(pickle.dumps(task)), len(pickle.dumps(result))))
        assert back.days == result.days and back.checks == result.checks
        return back

    monkeypatch.setattr(runner, "run_day_task", described)
    assert run(str(starter), str(tmp_path)).ok
    assert len(seen) == 3  # one task for each table built by day (the starter's readings are one day)
    assert all(task < 8192 and result < 8192 for task, result in seen), seen
    for table in ("accelerometer_trusted", "step_trainer_trusted", "machine_learning_curated"):
        assert Lake.of(str(tmp_path)).read(table).height == STARTER_COUNTS[table]
