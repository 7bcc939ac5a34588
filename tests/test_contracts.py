"""The contracts: their shape, their promises on personal data and consent, and what derives from them."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandera.polars as pa
import polars as pl
import pytest
import yaml

from stedi_etl.contracts import contract_names, load_contract, parse_contract
from stedi_etl.errors import ContractError
from stedi_etl.run.runner import STEPS
from tests.conftest import MINIMAL_CONTRACT, REPO

TABLES = {
    "customer_landing",
    "accelerometer_landing",
    "step_trainer_landing",
    "customer_trusted",
    "accelerometer_trusted",
    "customer_curated",
    "step_trainer_trusted",
    "machine_learning_curated",
}
PERSONAL = {"customerName", "email", "phone", "birthDay", "user"}


def raw(name: str) -> dict:
    """A contract file as plain YAML, read without the package: the independent view of what it says."""
    return yaml.safe_load((REPO / "contracts" / f"{name}.yaml").read_text())


def test_there_is_a_contract_for_every_table_and_the_quarantine() -> None:
    assert set(contract_names()) == TABLES | {"quarantine"}
    assert {step.table for step in STEPS} <= TABLES


@pytest.mark.parametrize("name", sorted(TABLES | {"quarantine"}))
def test_each_contract_has_the_odcs_v3_shape_and_states_its_grain(name: str) -> None:
    document = raw(name)
    assert document["apiVersion"].startswith("v3.") and document["kind"] == "DataContract"
    (schema,) = document["schema"]
    assert schema["name"] == name
    assert schema["dataGranularityDescription"].startswith("One row per")
    for prop in schema["properties"]:
        assert {"name", "logicalType", "classification", "description"} <= set(prop), prop["name"]


@pytest.mark.parametrize("name", sorted(TABLES))
def test_personal_data_is_classified_and_never_reaches_machine_learning(name: str) -> None:
    contract = load_contract(name)
    assert set(contract.personal_columns) == PERSONAL & set(contract.column_names)
    if name == "machine_learning_curated":
        assert contract.personal_columns == ()


def test_consent_is_required_in_every_customer_table_after_landing() -> None:
    assert not load_contract("customer_landing").column("shareWithResearchAsOfDate").required
    for name in ("customer_trusted", "customer_curated"):
        assert load_contract(name).column("shareWithResearchAsOfDate").required


def test_a_column_means_the_same_in_every_contract_it_appears_in() -> None:
    seen: dict[str, tuple[str, str]] = {}
    for name in sorted(TABLES):
        for column in load_contract(name).columns:
            meaning = (column.logical_type, column.classification)
            assert seen.setdefault(column.name, meaning) == meaning, (name, column.name)


@pytest.mark.parametrize("name", sorted(TABLES | {"quarantine"}))
def test_the_pandera_schema_is_derived_from_the_contract_file(name: str) -> None:
    """The compiled schema has exactly the file's columns, types and nullability."""
    types = {"string": pl.String, "integer": pl.Int64, "number": pl.Float64, "date": pl.Date}
    schema = load_contract(name).pandera_schema()
    assert isinstance(schema, pa.DataFrameSchema)
    props = raw(name)["schema"][0]["properties"]
    assert list(schema.columns) == [p["name"] for p in props]
    for prop in props:
        column = schema.columns[prop["name"]]
        assert column.dtype.type == types[prop["logicalType"]]
        assert column.nullable is not bool(prop.get("required", False))
    assert schema.strict is True


def test_keys_come_from_primary_key_flags() -> None:
    assert load_contract("customer_landing").key_columns == ("email",)
    assert load_contract("step_trainer_trusted").key_columns == ("sensorReadingTime", "serialNumber")


BASE = MINIMAL_CONTRACT


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("kind: DataContract", "kind: Something"), "kind must be DataContract"),
        (("apiVersion: v3.1.0", "apiVersion: v2.2.2"), "ODCS v3"),
        (("    dataGranularityDescription: One row per thing.\n", ""), "grain"),
        (("logicalType: integer", "logicalType: decimal"), "logicalType must be one of"),
        (("classification: internal", "classification: secret"), "classification must be"),
        (
            (
                "classification: internal}",
                "classification: internal, quality: [{name: q, metric: nullValues, mustBeLessThan: 5}]}",
            ),
            "only 'mustBe: 0'",
        ),
        (
            (
                "classification: internal}",
                "classification: internal, quality: [{name: q, metric: rowCount, mustBe: 0}]}",
            ),
            "not supported",
        ),
    ],
)
def test_malformed_contracts_are_refused_with_the_reason(change: tuple[str, str], message: str) -> None:
    text = BASE.replace(*change)
    assert text != BASE
    with pytest.raises(ContractError, match=message):
        parse_contract(text.encode(), "t.yaml")


def test_a_well_formed_minimal_contract_loads() -> None:
    contract = parse_contract(BASE.encode(), "t.yaml")
    assert (contract.name, contract.dataset, contract.zone, contract.column_names) == ("t", "d", "z", ("a",))


@pytest.mark.slow
def test_the_built_wheel_carries_the_contracts_and_sample_data(tmp_path: Path) -> None:
    """An installed package finds its contracts and sample data without the source tree."""
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("stedi_etl-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "installed")
    for name in TABLES | {"quarantine"}:
        assert f"stedi_etl/_contracts/{name}.yaml" in names
    assert any(n.startswith("stedi_etl/_sample/customer/landing/") for n in names)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = (
        "from stedi_etl.contracts import contracts_dir, load_contracts;"
        "from stedi_etl import sample_landing;"
        "print(contracts_dir()); print(len(load_contracts())); print(sample_landing())"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "installed")}
    shown = subprocess.run(
        [sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0, shown.stderr
    where, count, sample = shown.stdout.split()
    assert Path(where) == tmp_path / "installed" / "stedi_etl" / "_contracts"
    assert int(count) == len(TABLES) + 1
    assert Path(sample) == tmp_path / "installed" / "stedi_etl" / "_sample"


def test_the_quarantine_contract_knows_every_reason_the_reader_gives() -> None:
    from typing import get_args

    from stedi_etl.landing.read import Reason

    (rule,) = [r for r in load_contract("quarantine").rules if r.column == "reason"]
    assert set(rule.valid_values) == set(get_args(Reason))
