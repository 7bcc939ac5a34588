"""`stedi-etl ddl`: Athena DDL from the contracts, parsed back with sqlglot's Athena dialect and compared with
the contracts, the seed project's customer_landing.sql and the lake's pointers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlglot
import yaml
from click.testing import CliRunner, Result
from sqlglot import exp

from stedi_etl.cli import main
from stedi_etl.commands.ddl import generate_ddl
from stedi_etl.errors import UsageError
from stedi_etl.lake.storage import Store
from stedi_etl.lake.tables import Lake
from tests.conftest import REPO

# What each contract logical type must become in Hive DDL (sqlglot prints Hive's string as STRING).
EXPECTED_TYPES = {"string": "STRING", "integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN"}
LANDING = ("customer_landing", "accelerometer_landing", "step_trainer_landing")
LAKE = ("customer_trusted", "accelerometer_trusted", "customer_curated", "step_trainer_trusted")
LAKE_TABLES = (*LAKE, "machine_learning_curated")

# The seed project's customer_landing.sql (Glue lower-cases the names).
SEED_CUSTOMER_LANDING = {
    "customername": "STRING",
    "email": "STRING",
    "phone": "STRING",
    "birthday": "STRING",
    "serialnumber": "STRING",
    "registrationdate": "BIGINT",
    "lastupdatedate": "BIGINT",
    "sharewithresearchasofdate": "BIGINT",
    "sharewithpublicasofdate": "BIGINT",
    "sharewithfriendsasofdate": "BIGINT",
}


def ddl(*args: str) -> Result:
    return CliRunner().invoke(main, ["ddl", *args])


def parse(script: str) -> dict[str, exp.Create]:
    """Each CREATE statement of ``script`` by table name, parsed as Athena reads it."""
    statements = sqlglot.parse(script, read="athena")
    assert all(isinstance(s, exp.Create) for s in statements)
    return {s.this.this.name: s for s in statements}  # type: ignore[union-attr]


def columns(statement: exp.Create) -> list[tuple[str, str]]:
    return [(c.name, c.args["kind"].sql("hive")) for c in statement.this.expressions]


def prop(statement: exp.Create, kind: type[exp.Expression]) -> exp.Expression:
    found = [p for p in statement.args["properties"].expressions if isinstance(p, kind)]
    assert len(found) == 1, f"{kind.__name__}: {found}"
    return found[0]


def contract_columns(name: str) -> list[tuple[str, str]]:
    document = yaml.safe_load((REPO / "contracts" / f"{name}.yaml").read_text())
    return [(p["name"], EXPECTED_TYPES[p["logicalType"]]) for p in document["schema"][0]["properties"]]


def test_every_table_parses_with_its_contracts_columns(starter_lake: Path) -> None:
    outcome = ddl("--lake", str(starter_lake), "--location", "s3://stedi-lake-house/stedi")
    assert outcome.exit_code == 0, outcome.stderr
    statements = parse(outcome.stdout)
    assert list(statements) == [*LANDING, *LAKE_TABLES]
    lake = Lake(Store(str(starter_lake)))
    for table, statement in statements.items():
        assert statement.args["kind"] == "TABLE" and prop(statement, exp.ExternalProperty)
        location = prop(statement, exp.LocationProperty).this.name
        if table in LANDING:
            assert statement.this.this.db == "stedi"  # type: ignore[union-attr]
            assert columns(statement) == contract_columns(table)
            serde = prop(statement, exp.RowFormatSerdeProperty)
            assert serde.this.name == "org.openx.data.jsonserde.JsonSerDe"
            serde_properties = {
                p.name: p.args["value"].name for p in serde.args["serde_properties"].expressions
            }
            assert serde_properties["case.insensitive"] == "TRUE"
            assert "TextInputFormat" in prop(statement, exp.FileFormatProperty).sql("hive")
            assert location == f"s3://stedi-lake-house/stedi/{table.removesuffix('_landing')}/landing/"
        else:
            # Athena's Delta form: no columns (the table's log has them), the fixed folder, table_type.
            assert statement.this.db == "stedi"  # type: ignore[union-attr]
            properties = {p.name: p.text("value") for p in statement.find_all(exp.Property) if p.name}
            assert properties.get("table_type") == "DELTA", statement.sql("athena")
            folder = Path(lake.table_dir(table)).relative_to(starter_lake)
            assert location == f"s3://stedi-lake-house/stedi/{folder}/"


def test_customer_landing_is_the_seed_projects_customer_landing_sql() -> None:
    outcome = ddl("customer_landing", "--location", "s3://stedi-lake-house")
    assert outcome.exit_code == 0, outcome.stderr
    statement = parse(outcome.stdout)["customer_landing"]
    assert {name.lower(): kind for name, kind in columns(statement)} == SEED_CUSTOMER_LANDING
    assert prop(statement, exp.LocationProperty).this.name == "s3://stedi-lake-house/customer/landing/"
    assert "`stedi`.`customer_landing`" in outcome.stdout


def test_a_local_lake_or_landing_without_location_says_what_to_pass(
    starter_lake: Path, starter: Path
) -> None:
    """Athena reads S3 only: a local folder as LOCATION would be DDL that can never work."""
    for args, where in [
        # All eight: the landing tables first, at the landing the lake records it was built from.
        (["--lake", str(starter_lake)], f"landing {starter}"),
        (["machine_learning_curated", "--lake", str(starter_lake)], f"lake {starter_lake}"),
        (["step_trainer_landing", "--landing", str(starter)], f"landing {starter}"),
    ]:
        outcome = ddl(*args)
        assert outcome.exit_code == 2, outcome.output
        assert outcome.stderr.startswith(f"error: {where} is a local folder")
        assert "pass --location s3://bucket/prefix" in outcome.stderr
        assert len(outcome.stderr.strip().splitlines()) == 1
    with pytest.raises(UsageError, match="pass --location"):
        generate_ddl(("machine_learning_curated",), lake=str(starter_lake))


def test_the_recorded_landing_is_laid_out_under_location(starter_lake: Path) -> None:
    """`ddl --lake L --location P` on its own defaults: every table, none needing --landing."""
    outcome = ddl("--lake", str(starter_lake), "--location", "s3://b/p", "--json")
    assert outcome.exit_code == 0, outcome.stderr
    locations = {t["table"]: t["location"] for t in json.loads(outcome.stdout)["tables"]}
    assert locations["customer_landing"] == "s3://b/p/customer/landing/"
    assert locations["machine_learning_curated"] == "s3://b/p/step_trainer/curated/"
    assert len(locations) == 8


def test_user_and_timestamp_are_quoted_columns() -> None:
    script = generate_ddl(("accelerometer_landing",), location="s3://b").script()
    assert "`user` string,\n  `timestamp` bigint" in script
    assert columns(parse(script)["accelerometer_landing"])[:2] == [
        ("user", "STRING"),
        ("timestamp", "BIGINT"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_table", "--location", "s3://b"], "unknown table 'no_such_table'"),
        (["customer_landing"], "customer_landing needs a LOCATION"),
        (["customer_trusted", "--lake", "{missing}"], "no published tables in"),
        (["customer_landing", "--location", "s3://b", "--database", "my db"], "database name 'my db'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    args = [a.format(missing=tmp_path / "nowhere") for a in args]
    outcome = ddl(*args)
    assert outcome.exit_code == 2
    assert outcome.stderr.startswith("error: ") and message in outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1


def test_a_table_without_a_published_version_is_named(tmp_path: Path) -> None:
    from stedi_etl.run.runner import run

    run(str(REPO / "fixtures" / "sample"), str(tmp_path), tables=["customer_trusted"])
    published = generate_ddl(("customer_trusted",), lake=str(tmp_path), location="s3://b")
    assert published.tables[0].table == "customer_trusted"
    with pytest.raises(UsageError, match="step_trainer_trusted has no published version"):
        generate_ddl(("step_trainer_trusted",), lake=str(tmp_path), location="s3://b")
    outcome = ddl("step_trainer_trusted", "--lake", str(tmp_path))
    assert outcome.exit_code == 2
    assert "step_trainer_trusted has no published version" in outcome.stderr
