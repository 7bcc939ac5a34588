"""`stedi-etl validate` and the library calls behind it, on data that keeps and breaks each contract rule."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from stedi_etl.checks.prefilter import suspect_rows
from stedi_etl.checks.rules import failure_cases
from stedi_etl.cli import main
from stedi_etl.commands.validate import validate_lake, validate_landing, validate_paths
from stedi_etl.contracts import load_contract
from stedi_etl.errors import UsageError
from stedi_etl.lake.storage import Store
from stedi_etl.lake.tables import Lake
from stedi_etl.run import runner as pipeline
from tests.conftest import MINIMAL_CONTRACT, write_landing

T0 = 1655564444103
GOOD_READINGS = {
    "user": ["a@test.com", "a@test.com", "b@test.com"],
    "timestamp": [T0, T0, T0 + 1],
    "x": [1.0, -1.0, 0.0],
    "y": [0.0, 0.0, 1.0],
    "z": [-1.0, -1.0, 0.0],
}


def validate(*args: str) -> Result:
    return CliRunner().invoke(main, ["validate", *args])


def broken_checks(result: Result) -> set[str]:
    """(column or table).check for every error line the CLI printed."""
    found = set()
    for line in result.stdout.splitlines():
        if line.strip().startswith("error"):
            where, check = line.split()[1].rstrip(":"), line.split()[2].rstrip(":")
            found.add(f"{where.split('.', 1)[1] if '.' in where else ''}.{check}".lstrip("."))
    return found


def test_a_file_that_keeps_its_contract_passes(tmp_path: Path) -> None:
    path = tmp_path / "readings.parquet"
    pl.DataFrame(GOOD_READINGS).write_parquet(path)
    result = validate_paths("accelerometer_trusted", (str(path),))
    assert result.ok
    assert [r.rows for r in result.reports] == [3]
    cli = validate("--contract", "accelerometer_trusted", str(path))
    assert cli.exit_code == 0, cli.output
    assert "ok" in cli.stdout.splitlines()[-1]


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        ("duplicate row", {"distinct_rows"}),
        ("null key", {"user.required"}),
        ("wrong type", {"timestamp.type"}),
        ("out-of-range value", {"timestamp.range"}),
        ("not finite", {"x.finite", "x.required"}),
        ("missing column", {"present"}),
        ("column outside the contract", {"in_contract"}),
    ],
)
def test_each_broken_rule_is_named_by_the_library_and_the_cli(
    tmp_path: Path, breakage: str, expected: set[str]
) -> None:
    frame = pl.DataFrame(GOOD_READINGS)
    frame = {
        "duplicate row": lambda f: pl.concat([f, f.head(1)]),
        "null key": lambda f: f.with_columns(
            pl.when(pl.col("x") == 0).then(None).otherwise("user").alias("user")
        ),
        "wrong type": lambda f: f.with_columns(pl.col("timestamp").cast(pl.String)),
        "out-of-range value": lambda f: f.with_columns(pl.col("timestamp") // 1000),  # seconds, not ms
        "not finite": lambda f: f.with_columns(
            pl.when(pl.col("x") == 0).then(float("nan")).otherwise("x").alias("x")
        ),
        "missing column": lambda f: f.drop("z"),
        "column outside the contract": lambda f: f.with_columns(pl.lit("x").alias("email")),
    }[breakage](frame)
    path = tmp_path / "readings.parquet"
    frame.write_parquet(path)

    result = validate_paths("accelerometer_trusted", (str(path),))
    assert not result.ok
    (report,) = result.reports
    names = {f"{f.column}.{f.check}" if f.column else f.check for f in report.errors}
    assert names == expected

    cli = validate("--contract", "accelerometer_trusted", str(path))
    assert cli.exit_code == 1
    assert broken_checks(cli) == expected
    assert "FAILED" in cli.stdout


def test_every_failure_is_reported_at_once_with_counts_and_samples(tmp_path: Path) -> None:
    frame = pl.DataFrame(GOOD_READINGS).with_columns(
        pl.Series("user", [None, "a@test.com", "b@test.com"]),
        pl.Series("timestamp", [T0, 17, 18]),
    )
    path = tmp_path / "bad.parquet"
    pl.concat([frame, frame.tail(1)]).write_parquet(path)
    (report,) = validate_paths("accelerometer_trusted", (str(path),)).reports
    by_name = {f"{f.column}.{f.check}" if f.column else f.check: f for f in report.errors}
    assert set(by_name) == {"user.required", "timestamp.range", "distinct_rows"}
    assert by_name["timestamp.range"].failing_rows == 3
    assert set(by_name["timestamp.range"].samples) == {"17", "18"}
    assert by_name["distinct_rows"].failing_rows == 2
    as_json = json.loads(validate("--contract", "accelerometer_trusted", str(path), "--json").stdout)
    assert {e["check"] for e in as_json["tables"][0]["errors"]} == {"required", "range", "distinct_rows"}


def test_columns_match_case_blind_as_in_glue(tmp_path: Path) -> None:
    path = tmp_path / "readings.parquet"
    pl.DataFrame(GOOD_READINGS).rename({"timestamp": "timeStamp", "user": "USER"}).write_parquet(path)
    assert validate_paths("accelerometer_trusted", (str(path),)).ok


def test_json_files_are_checked_with_unreadable_records_named(tmp_path: Path) -> None:
    path = tmp_path / "readings.json"
    good = json.dumps({"user": "a@test.com", "timestamp": T0, "x": 1, "y": 0, "z": 0})
    path.write_text(
        f'{good}\n{{"user":"b@test.com","timestamp":"soon","x":1,"y":0,"z":0}}\n{{"user":"c@test.com"'
    )
    (report,) = validate_paths("accelerometer_landing", (str(path),)).reports
    assert {f.check for f in report.errors} == {"bad_value", "invalid_json"}
    cli = validate("--contract", "accelerometer_landing", str(path))
    assert cli.exit_code == 1
    assert 'timestamp: "soon" is not an integer' in cli.stdout


def test_landing_validation_reports_rejects_and_passes_clean_data(starter: Path, tmp_path: Path) -> None:
    clean = validate("--landing", str(starter))
    assert clean.exit_code == 0, clean.output
    assert validate_landing(str(starter)).ok

    for dataset, content in {
        "customer": '{"email":"a@test.com","serialNumber":"s1"}\n',
        "accelerometer": '{"user":"a@test.com","timestamp":5,"x":1,"y":0,"z":0}\n',
        "step_trainer": '{"sensorReadingTime":%d,"serialNumber":"s1","distanceFromObject":1}\nnot json\n'
        % T0,
    }.items():
        write_landing(tmp_path, dataset, "f.json", content)
    result = validate_landing(str(tmp_path))
    assert not result.ok
    assert result.quarantined == {
        "customer": {},
        "accelerometer": {"check_failed": 1},
        "step_trainer": {"invalid_json": 1},
    }
    cli = validate("--landing", str(tmp_path))
    assert cli.exit_code == 1
    assert "accelerometer: 1 records would be quarantined: check_failed" in cli.stdout


def test_lake_validation_checks_every_table_and_the_rules_between_them(starter: Path, tmp_path: Path) -> None:
    pipeline.run(str(starter), str(tmp_path))
    assert validate_lake(str(tmp_path)).ok
    assert validate("--lake", str(tmp_path)).exit_code == 0

    # Tamper with the lake the way a manual fix might: a reading of a customer who never consented.
    lake = Lake(Store(str(tmp_path)))
    readings = lake.read("accelerometer_trusted")
    leaked = readings.head(1).with_columns(pl.lit("no.consent@test.com").alias("user"))
    tampered = pl.concat([readings, leaked])
    lake.publish([lake.stage("accelerometer_trusted", tampered, "29990101T000000000Z-000000", {})])

    result = validate_lake(str(tmp_path))
    failed = {(r.table, f.check) for r in result.reports for f in r.errors}
    assert failed == {("accelerometer_trusted", "only_consenting_customers")}
    cli = validate("--lake", str(tmp_path))
    assert cli.exit_code == 1
    assert "only_consenting_customers" in cli.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "choose exactly one of"),
        (("--contract", "no_such_table", "x.parquet"), "unknown contract 'no_such_table'"),
        (("--contract", "customer_trusted"), "needs at least one PATH"),
        (("--contract", "customer_trusted", "/no/such/file.parquet"), "no such file or folder"),
        (("--landing", "/no/such/landing"), "no landing files for customer"),
        (("--lake", "/no/such/lake"), "no published tables"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: tuple[str, ...], message: str) -> None:
    result = validate(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_the_library_raises_usage_errors_the_cli_turns_into_exit_2() -> None:
    with pytest.raises(UsageError, match="unknown contract"):
        validate_paths("no_such_table", ("x",))


def test_a_sql_rule_that_cannot_run_fails_rather_than_passes() -> None:
    """A consent rule must never pass by not running; one needing a table checked alone is only skipped."""
    from stedi_etl.checks.rules import check_frame
    from stedi_etl.contracts import parse_contract

    quality = """    quality:
      - {name: broken, type: sql, query: "SELECT COUNT(*) FROM t WHERE no_such_column = 1", mustBe: 0}
      - name: elsewhere
        type: sql
        query: "SELECT COUNT(*) FROM t WHERE a NOT IN (SELECT a FROM u)"
        mustBe: 0
    properties:"""
    contract = parse_contract(MINIMAL_CONTRACT.replace("    properties:", quality).encode(), "t.yaml")
    report = check_frame(pl.DataFrame({"a": [1]}), contract)
    assert [(f.check, f.severity) for f in report.errors] == [("broken", "error")]
    assert [(f.check, f.severity) for f in report.warnings] == [("elsewhere", "warning")]
    with_u = check_frame(pl.DataFrame({"a": [1]}), contract, related={"u": pl.DataFrame({"a": [1]})})
    assert [f.check for f in with_u.errors] == ["broken"] and with_u.warnings == ()


def test_a_lake_table_folder_is_checked_at_its_current_version_only(starter: Path, tmp_path: Path) -> None:
    pipeline.run(str(starter), str(tmp_path))
    stale = tmp_path / "customer" / "trusted" / "v-20000101T000000000Z-000000"
    stale.mkdir()
    pl.DataFrame({"email": [None]}).write_parquet(stale / "part-00000.parquet")  # would break the contract
    (report,) = validate_paths("customer_trusted", (str(tmp_path / "customer" / "trusted"),)).reports
    assert (report.ok, report.rows) == (True, 482)


# --- the counting pass never lets through what pandera would fail ------------------------------------------

ACCEL_LANDING = load_contract("accelerometer_landing")
STEP_LANDING = load_contract("step_trainer_landing")


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a@x.com", "b@x.com", None]),
            st.sampled_from([1655564000000, 1655564000001, 5, None, 9_000_000_000_000]),
            st.sampled_from([0.0, 1.5, -2.0, float("nan"), float("inf"), None]),
        ),
        max_size=6,
    ),
    severity=st.sampled_from(["error", "warning"]),
)
def test_the_counting_pass_agrees_with_pandera(rows: list[tuple], severity: str) -> None:
    import pandera.errors

    frame = pl.DataFrame(
        [(user, ts, x, 0.0, 1.0) for user, ts, x in rows],
        schema=ACCEL_LANDING.polars_schema(),
        orient="row",
    )
    failing: set[int] = set()
    try:
        ACCEL_LANDING.pandera_schema(severity).validate(frame, lazy=True)  # type: ignore[arg-type]
        pandera_passes = True
    except pandera.errors.SchemaErrors as err:
        pandera_passes = False
        failing = set(err.failure_cases.get_column("index").drop_nulls().to_list())
    suspects = suspect_rows(frame, ACCEL_LANDING, severity)  # type: ignore[arg-type]
    if suspects is not None and suspects.is_empty():  # the counting pass says every rule holds
        assert pandera_passes, frame
    if suspects is not None:  # every row pandera fails is a suspect
        assert failing <= set(suspects.to_list()), frame


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a@x.com", "b@x.com", None]),
            st.sampled_from([1, 2, None]),
            st.sampled_from([0.0, -0.0, 1.5, float("nan"), float("inf"), None]),
        ),
        max_size=8,
    ),
    order=st.sampled_from(["sorted", "sorted distinct", "as drawn"]),
)
def test_rows_vouched_ascending_never_repeat(rows: list[tuple], order: str) -> None:
    """The shortcut that skips hashing a sorted table's rows: whenever it says each row sorts after the one
    before, no two rows are equal, nulls, NaN and -0.0 included; and a distinct sorted table of plain
    values is vouched for (else the shortcut would never apply)."""
    from stedi_etl.checks.prefilter import _strictly_ascending

    frame = pl.DataFrame(rows, schema={"user": pl.String, "t": pl.Int64, "x": pl.Float64}, orient="row")
    if order != "as drawn":
        frame = frame.unique() if order == "sorted distinct" else frame
        frame = frame.sort(pl.all(), nulls_last=False)
    columns = frame.columns
    if _strictly_ascending(frame, columns, sample=3):
        assert not frame.is_duplicated().any(), frame
    plain = frame.drop_nulls().filter(pl.col("x").is_not_nan() & (pl.col("x") != 0.0))
    if order == "sorted distinct":
        assert _strictly_ascending(plain, columns, sample=3), plain


def test_the_counting_pass_defers_to_pandera_on_an_unexpected_shape() -> None:
    frame = pl.DataFrame({"sensorReadingTime": [1], "serialNumber": ["s"]})  # a column missing
    assert suspect_rows(frame, STEP_LANDING, "error") is None  # rows can't tell: pandera decides
    cases = failure_cases(frame, STEP_LANDING, "error")
    assert cases is not None and "column_in_dataframe" in cases.get_column("check").to_list()


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from([1655564000000, 1655564000001, -5, None]),
            st.sampled_from(["s-1", "s-2", None]),
            st.sampled_from([0, 1, 2, None]),
        ),
        max_size=8,
    ),
    severity=st.sampled_from(["error", "warning"]),
)
def test_pandera_on_the_suspect_rows_finds_what_it_finds_on_the_whole_frame(
    rows: list[tuple], severity: str
) -> None:
    """failure_cases runs pandera only on the rows the masks suspect; the cases, row indices included,
    must be exactly those of pandera over every row (repeats, nulls and out-of-range values mixed)."""
    import pandera.errors

    frame = pl.DataFrame(rows, schema=STEP_LANDING.polars_schema(), orient="row")
    columns = ["column", "check", "failure_case", "index"]
    try:
        STEP_LANDING.pandera_schema(severity).validate(frame, lazy=True)  # type: ignore[arg-type]
        expected: list[tuple] = []
    except pandera.errors.SchemaErrors as err:
        expected = sorted(err.failure_cases.select(columns).rows(), key=repr)
    cases = failure_cases(frame, STEP_LANDING, severity)  # type: ignore[arg-type]
    found = [] if cases is None else sorted(cases.select(columns).rows(), key=repr)
    assert found == expected


@pytest.mark.parametrize("dataset", ["customer", "step_trainer"])
def test_repeats_explained_without_pandera_match_pandera_on_real_data(stedi_2022: Path, dataset: str) -> None:
    """stedi-2022 repeats emails and Step Trainer readings: the cases found for those warnings without
    pandera are pandera's own, row for row."""
    import pandera.errors

    from stedi_etl.landing.read import read_landing

    contract = load_contract(f"{dataset}_landing")
    frame = read_landing(Store(str(stedi_2022)), dataset).frame
    with pytest.raises(pandera.errors.SchemaErrors) as raised:
        contract.pandera_schema("warning").validate(frame, lazy=True)
    columns = ["column", "check", "failure_case", "index"]
    expected = sorted(raised.value.failure_cases.select(columns).rows(), key=repr)
    cases = failure_cases(frame, contract, "warning")
    assert cases is not None and sorted(cases.select(columns).rows(), key=repr) == expected
    assert len(expected) >= 10  # stedi-2022 has 5 repeated Step Trainer readings and more repeated emails
