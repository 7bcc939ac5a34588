"""`stedi-etl query`: the seed project's Athena queries verbatim on a lake built from stedi-starter,
identifiers in any case, and every way a query is refused (write statements, file access, bad SQL)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

from stedi_etl.cli import main
from stedi_etl.commands.query import check_read_only, referenced_tables, run_query
from stedi_etl.errors import UsageError

# The seed project's queries, verbatim.
CONSENTING_WITH_READINGS = (
    'SELECT COUNT(*) FROM "customer_trusted" WHERE email in (SELECT "user" from "accelerometer_trusted")'
)
STEP_TRAINER_DUPLICATES = (
    "SELECT sensorreadingtime, serialnumber, COUNT(*) AS duplicate_count FROM step_trainer_landing "
    "GROUP BY sensorreadingtime, serialnumber HAVING COUNT(*) > 1 ORDER BY duplicate_count DESC"
)
THREE_WAY_JOIN = (
    "SELECT * FROM customer_trusted INNER JOIN accelerometer_trusted ON customer_trusted.email = "
    "accelerometer_trusted.user INNER JOIN step_trainer_trusted ON customer_trusted.serialnumber = "
    "step_trainer_trusted.serialnumber WHERE accelerometer_trusted.timestamp = "
    "step_trainer_trusted.sensorreadingtime LIMIT 10"
)


def query(lake: Path, landing: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["query", *args, "--lake", str(lake), "--landing", str(landing)])


def test_the_seed_queries_run_verbatim_with_the_rubric_counts(starter_lake: Path, starter: Path) -> None:
    consenting = run_query(CONSENTING_WITH_READINGS, str(starter_lake), str(starter))
    assert consenting.frame.item() == 482
    assert consenting.tables == ("customer_trusted", "accelerometer_trusted")

    # stedi-starter's step trainer landing data holds no repeated reading (stedi-2022's does: below).
    assert run_query(STEP_TRAINER_DUPLICATES, str(starter_lake), str(starter)).frame.height == 0

    joined = run_query(THREE_WAY_JOIN, str(starter_lake), str(starter)).frame
    assert joined.height == 10
    # Columns both sides have come back once each, the second renamed rather than dropped.
    assert {"serialNumber", "serialNumber_1", "user", "sensorReadingTime"} <= set(joined.columns)
    everything = THREE_WAY_JOIN.replace("SELECT *", "SELECT COUNT(*)").removesuffix(" LIMIT 10")
    assert run_query(everything, str(starter_lake), str(starter)).frame.item() == 40981  # ML curated rows

    outcome = query(starter_lake, starter, CONSENTING_WITH_READINGS, "--format", "csv")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.splitlines()[1] == "482"


def test_duplicate_readings_of_stedi_2022_are_found(starter_lake: Path, stedi_2022: Path) -> None:
    outcome = query(starter_lake, stedi_2022, STEP_TRAINER_DUPLICATES, "--format", "json")
    assert outcome.exit_code == 0, outcome.stderr
    rows = json.loads(outcome.stdout)
    assert len(rows) == 5
    assert {row["duplicate_count"] for row in rows} == {2}


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT COUNT(*) FROM "CUSTOMER_TRUSTED"',
        "SELECT COUNT(*) FROM Customer_Trusted WHERE SerialNumber IS NOT NULL",
        "select count(EMAIL) from customer_trusted where SHAREWITHRESEARCHASOFDATE is not null",
        "SELECT COUNT(DISTINCT a.user) FROM customer_trusted JOIN accelerometer_trusted a ON email = a.User",
    ],
)
def test_identifiers_match_in_any_case_as_in_athena(starter_lake: Path, starter: Path, sql: str) -> None:
    assert run_query(sql, str(starter_lake), str(starter)).frame.item() == 482


def test_only_the_tables_a_query_names_are_read(starter: Path, tmp_path: Path) -> None:
    # No lake at all: a query of landing data alone never looks for one.
    result = run_query("SELECT COUNT(*) FROM customer_landing", str(tmp_path / "no-lake"), str(starter))
    assert result.tables == ("customer_landing",)
    assert result.frame.item() == 956
    assert referenced_tables('select 1 from "Step_Trainer_Trusted" join customer_curated_x') == (
        "step_trainer_trusted",
    )


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("COPY (SELECT 1) TO '{out}'", "not COPY"),
        ("ATTACH '{out}' AS other", "not ATTACH"),
        ("CREATE TABLE copied AS SELECT * FROM customer_trusted", "not CREATE"),
        ("INSERT INTO customer_trusted SELECT * FROM customer_trusted", "not INSERT"),
        ("DROP TABLE customer_trusted", "not DROP"),
        ("SET enable_external_access = true", "not SET"),
        ("INSTALL httpfs", "not LOAD"),
        ("SELECT 1; SELECT 2", "one statement at a time"),
        ("  ; ", "no SQL statement"),
        ("SELEC 1", "bad SQL: Parser Error"),
    ],
)
def test_anything_but_one_read_only_statement_is_refused(
    starter_lake: Path, starter: Path, tmp_path: Path, sql: str, message: str
) -> None:
    out = tmp_path / "written"
    sql = sql.format(out=out)
    with pytest.raises(UsageError, match=message):
        check_read_only(sql)
    outcome = query(starter_lake, starter, sql)
    assert outcome.exit_code == 2
    assert outcome.stderr.startswith("error: ") and message in outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_parquet('{lake}/**/*.parquet')",
    ],
)
def test_a_query_cannot_read_files(starter_lake: Path, starter: Path, sql: str) -> None:
    sql = sql.format(lake=starter_lake)
    with pytest.raises(UsageError, match="disabled by configuration"):
        run_query(sql, str(starter_lake), str(starter))
    outcome = query(starter_lake, starter, sql)
    assert outcome.exit_code == 2
    assert "file system operations are disabled" in outcome.stderr


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM no_such_table", "Table with name no_such_table does not exist"),
        ("SELECT * FROM '/etc/passwd'", "does not exist"),
        ("SELECT no_such_column FROM customer_trusted", "Binder Error"),
        ("SELECT CAST(email AS INTEGER) FROM customer_trusted", "Conversion Error"),
    ],
)
def test_bad_sql_is_one_line_and_exit_2(starter_lake: Path, starter: Path, sql: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        run_query(sql, str(starter_lake), str(starter))
    outcome = query(starter_lake, starter, sql)
    assert outcome.exit_code == 2
    assert message in outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1
    if "no_such_table" in sql:
        assert "tables: customer_landing" in outcome.stderr  # names what can be queried


def test_a_missing_lake_is_a_usage_error(starter: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no published tables"):
        run_query("SELECT * FROM customer_trusted", str(tmp_path / "nowhere"), str(starter))
    outcome = query(tmp_path / "nowhere", starter, "SELECT * FROM customer_trusted")
    assert outcome.exit_code == 2
    assert "no published tables" in outcome.stderr


def test_a_missing_landing_folder_is_a_usage_error(starter_lake: Path, tmp_path: Path) -> None:
    outcome = query(starter_lake, tmp_path, "SELECT * FROM step_trainer_landing")
    assert outcome.exit_code == 2
    assert "no landing files for step_trainer" in outcome.stderr


SMALL = "SELECT email, serialNumber FROM customer_trusted ORDER BY email LIMIT 3"


def test_output_formats(starter_lake: Path, starter: Path, tmp_path: Path) -> None:
    expected = pl.read_delta(str(starter_lake / "customer" / "trusted"))
    expected = expected.sort("email").head(3).select("email", "serialNumber")

    table = query(starter_lake, starter, SMALL)
    assert table.exit_code == 0, table.stderr
    assert "| email" in table.stdout and "(3 rows)" in table.stdout
    assert expected["email"][0] in table.stdout

    csv = query(starter_lake, starter, SMALL, "--format", "csv")
    assert pl.read_csv(io.StringIO(csv.stdout)).equals(expected)

    as_json = query(starter_lake, starter, SMALL, "--format", "json")
    assert json.loads(as_json.stdout) == expected.to_dicts()

    target = tmp_path / "out.parquet"
    written = query(starter_lake, starter, SMALL, "--format", "parquet", "--output", str(target))
    assert written.exit_code == 0, written.stderr
    assert written.stdout == ""
    assert pl.read_parquet(target).equals(expected)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "parquet"], "--format parquet writes a file: add --output PATH"),
        (["--format", "xml"], "Invalid value for '--format'"),
        (
            ["--output", "/nonexistent-dir/out.csv", "--format", "csv"],
            "cannot write /nonexistent-dir/out.csv",
        ),
    ],
)
def test_bad_output_options_are_usage_errors(
    starter_lake: Path, starter: Path, args: list[str], message: str
) -> None:
    outcome = query(starter_lake, starter, SMALL, *args)
    assert outcome.exit_code == 2
    assert message in outcome.stderr


# --- every result type in every format, or one line and exit 2 ---------------------------------------------

RESULT_TYPES = {
    "bytes": "SELECT 'a'::BLOB AS b",
    "settings": "SELECT * FROM duckdb_settings()",
    "list": "SELECT [1, 2] AS l, ['x', 'y'] AS s",
    "struct": "SELECT {'a': 1, 'b': 'x'} AS s",
    "map": "SELECT MAP {'k': 1} AS m",
    "interval": "SELECT INTERVAL 1 DAY AS i, {'x': INTERVAL 2 DAY} AS nested",
    "bytes in a list": "SELECT ['a'::BLOB] AS lb",
    "huge": "SELECT 170141183460469231731687303715884105727::HUGEINT AS h, 1.5::DECIMAL(10, 2) AS d",
}


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "parquet"])
@pytest.mark.parametrize("kind", list(RESULT_TYPES))
def test_every_result_type_is_written_in_every_format_or_refused_in_one_line(
    starter_lake: Path, starter: Path, tmp_path: Path, kind: str, fmt: str
) -> None:
    output = tmp_path / "out.parquet"
    extra = ["--output", str(output)] if fmt == "parquet" else []
    outcome = query(starter_lake, starter, RESULT_TYPES[kind], "--format", fmt, *extra)
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit), outcome.exception
    if outcome.exit_code == 2:  # refused: one line naming the column and a format that holds it
        assert outcome.stderr.count("\n") == 1 and outcome.stderr.startswith("error: column "), outcome.stderr
        assert "--format" in outcome.stderr and fmt in ("csv", "json")
        return
    assert outcome.exit_code == 0, outcome.stderr
    if fmt == "parquet":  # the file's rows, said on stderr
        rows = pl.read_parquet(output).height
        assert outcome.stderr == f"{rows} row{'s' if rows != 1 else ''} -> {output}\n"
    else:
        assert outcome.stderr == ""
    if fmt == "json":
        rows = json.loads(outcome.stdout)
        assert rows and all(isinstance(row, dict) for row in rows)
    elif fmt == "csv":
        assert pl.read_csv(io.StringIO(outcome.stdout)).height >= 1
    elif fmt == "parquet":
        assert pl.read_parquet(output).height >= 1


def test_bytes_are_hex_text_where_the_format_has_no_bytes(starter_lake: Path, starter: Path) -> None:
    as_json = query(starter_lake, starter, "SELECT 'ab'::BLOB AS b", "--format", "json")
    assert json.loads(as_json.stdout) == [{"b": "6162"}]
    as_csv = query(starter_lake, starter, "SELECT 'ab'::BLOB AS b", "--format", "csv")
    assert as_csv.stdout.splitlines() == ["b", "6162"]
    lists = query(starter_lake, starter, RESULT_TYPES["list"], "--format", "csv")
    assert (lists.exit_code, lists.stderr) == (
        2,
        "error: column 'l' holds List(Int32) values, which CSV cannot hold; use --format json or parquet\n",
    )


@pytest.mark.parametrize(
    "statement",
    [
        "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
        "EXPLAIN ANALYZE CHECKPOINT",
        "EXPLAIN ANALYZE LOAD parquet",
        "explain analyse insert into t values (1)",
        "EXPLAIN (FORMAT json) CREATE TABLE t AS SELECT 1",
        "EXPLAIN",
    ],
)
def test_explain_analyze_accepts_only_what_a_plain_query_accepts(statement: str) -> None:
    with pytest.raises(UsageError, match=r"^(EXPLAIN explains only read-only queries|bad SQL)"):
        check_read_only(statement)


@pytest.mark.parametrize(
    "statement", ["EXPLAIN SELECT 1", "EXPLAIN ANALYZE SELECT 1", "EXPLAIN (FORMAT json) SELECT 1"]
)
def test_explain_of_a_query_runs(starter_lake: Path, starter: Path, statement: str) -> None:
    outcome = query(starter_lake, starter, statement, "--format", "json")
    assert outcome.exit_code == 0, outcome.stderr
    assert json.loads(outcome.stdout)[0]["explain_key"] in ("physical_plan", "analyzed_plan")
