"""The scaled generator: deterministic bytes, linear size, the starter's join structure, clean or defective.

The structural checks read the written files back with the json module, not with the landing reader, and
state the zone rules directly (consent, same-customer instants), so they share no code with the generator.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stedi_etl.cli import main
from stedi_etl.errors import UsageError
from stedi_etl.lake.storage import Store
from stedi_etl.landing.read import read_landing
from stedi_etl.run.runner import run
from stedi_etl.synth.scale import generate_scaled

from .conftest import write_landing

DATASETS = ("customer", "accelerometer", "step_trainer")


def landing_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def records(root: Path, dataset: str) -> list[dict[str, Any]]:
    """Every record of a clean dataset, parsed line by line with the json module."""
    found = []
    for path in sorted((root / dataset / "landing").glob("*.json")):
        found.extend(json.loads(line) for line in path.read_text().splitlines())
    return found


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clean")
    generate_scaled(str(root), scale=0.1, seed=7, clean=True)
    return root


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_scaled(str(tmp_path / name), scale=0.05, seed=seed)
    first, again, other = (landing_bytes(tmp_path / name) for name in "abc")
    assert first == again
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first)


def test_regenerating_needs_force_and_never_writes_over_foreign_files(tmp_path: Path) -> None:
    generate_scaled(str(tmp_path), scale=0.05, seed=1, clean=True)
    before = landing_bytes(tmp_path)
    with pytest.raises(UsageError, match=r"not empty.*--force"):
        generate_scaled(str(tmp_path), scale=0.05, seed=2, clean=True)
    generate_scaled(str(tmp_path), scale=0.05, seed=1, clean=True, force=True)
    assert landing_bytes(tmp_path) == before
    write_landing(tmp_path, "step_trainer", "someone-else.json", "{}\n")
    with pytest.raises(UsageError, match="did not write"):
        generate_scaled(str(tmp_path), scale=0.05, seed=1, clean=True, force=True)


def test_size_grows_linearly_with_scale_and_scale_one_is_the_starter_set(tmp_path: Path) -> None:
    sizes = {}
    for scale in (0.1, 0.2, 1.0):
        result = generate_scaled(str(tmp_path / str(scale)), scale=scale, seed=0, clean=True)
        sizes[scale] = {d: c.records for d, c in result.datasets.items()}
    for dataset in DATASETS:
        assert 1.8 < sizes[0.2][dataset] / sizes[0.1][dataset] < 2.2, dataset
        assert 9 < sizes[1.0][dataset] / sizes[0.1][dataset] < 11, dataset
    one = sizes[1.0]
    assert abs(one["customer"] - 956) / 956 < 0.03
    assert abs(one["accelerometer"] - 81_273) / 81_273 < 0.05
    assert abs(one["step_trainer"] - 28_680) / 28_680 < 0.05
    assert len(list((tmp_path / "1.0" / "accelerometer" / "landing").glob("*.json"))) >= 4


def test_clean_files_read_natively_with_nothing_quarantined(clean: Path) -> None:
    store = Store(str(clean))
    for dataset in DATASETS:
        read = read_landing(store, dataset)
        assert read.quarantined == 0, dataset
        assert read.report.ok, dataset
        assert read.rows == len(records(clean, dataset))
        if dataset != "customer":  # digit-only phones and dates keep customer files off the native path
            assert {f.path for f in read.files} == {"native"}, dataset


def test_clean_data_has_the_starter_join_structure(clean: Path) -> None:
    customers = records(clean, "customer")
    readings = records(clean, "accelerometer")
    steps = records(clean, "step_trainer")
    consenting = {c["email"] for c in customers if c["shareWithResearchAsOfDate"] is not None}
    emails = {c["email"] for c in customers}
    assert 0.35 < len(consenting) / len(emails) < 0.65
    owners: dict[str, set[str]] = defaultdict(set)
    for c in customers:
        owners[c["serialNumber"]].add(c["email"])
    assert any(len(emails) > 1 for emails in owners.values()), "some customers share a device"
    assert len(customers) > len(emails), "some customers are registered twice"
    assert len({json.dumps(r) for r in readings}) < len(readings), "some uploads were re-sent"
    # Every step reading is at an instant of one of the device owners' accelerometer readings.
    instants = {(r["user"], r["timestamp"]) for r in readings}
    for step in steps:
        serial, moment = step["serialNumber"], step["sensorReadingTime"]
        assert any((email, moment) in instants for email in owners[serial]), step
    per_instant: dict[tuple[str, int], int] = defaultdict(int)
    for text in {json.dumps(r, sort_keys=True) for r in readings}:  # re-sent copies are one reading
        reading = json.loads(text)
        per_instant[(reading["user"], reading["timestamp"])] += 1
    assert set(per_instant.values()) <= {2, 3}


def test_run_all_on_clean_data_gives_the_expected_tables_with_only_consenting_customers(
    tmp_path: Path,
) -> None:
    result = generate_scaled(str(tmp_path / "landing"), scale=0.1, seed=11, clean=True)
    outcome = run(str(tmp_path / "landing"), str(tmp_path / "lake"))
    assert outcome.ok
    assert {t.table: t.rows for t in outcome.tables} == result.expected_tables
    assert result.expected_tables["machine_learning_curated"] > 0
    import polars as pl

    from stedi_etl.lake.tables import read_table

    lake = str(tmp_path / "lake")
    consenting = {
        c["email"] for c in records(tmp_path / "landing", "customer") if c["shareWithResearchAsOfDate"]
    }
    users = set(read_table(lake, "accelerometer_trusted")["user"])
    assert users and users <= consenting
    curated_serials = set(read_table(lake, "customer_curated")["serialNumber"])
    ml = read_table(lake, "machine_learning_curated")
    assert set(ml["serialNumber"]) <= curated_serials
    assert ml.height == ml.unique().height
    assert ml.select(pl.col("x", "y", "z").is_in([-1.0, 0.0, 1.0]).all()).row(0) == (True, True, True)


def test_defects_are_quarantined_as_counted_and_the_tables_are_unchanged(tmp_path: Path) -> None:
    result = generate_scaled(str(tmp_path / "landing"), scale=0.1, seed=11)
    outcome = run(str(tmp_path / "landing"), str(tmp_path / "lake"))
    assert outcome.ok
    for summary in outcome.landing_results:
        counts = result.datasets[summary.dataset]
        assert summary.rows == counts.rows
        assert summary.quarantined_by_reason == counts.quarantined
        assert len(counts.quarantined) == 5  # each dataset gets every reason
    assert {t.table: t.rows for t in outcome.tables} == result.expected_tables
    steps = sorted((tmp_path / "landing" / "step_trainer" / "landing").glob("*.json"))
    assert b"},\n" in steps[0].read_bytes()
    readings = sorted((tmp_path / "landing" / "accelerometer" / "landing").glob("*.json"))
    assert b'"timeStamp"' in readings[1].read_bytes() and b"\r\n" in readings[1].read_bytes()
    assert readings[2].read_bytes().startswith(b"\xef\xbb\xbf")


def test_cli_writes_what_the_library_writes(tmp_path: Path) -> None:
    generate_scaled(str(tmp_path / "library"), scale=0.05, seed=5, clean=True)
    outcome = CliRunner().invoke(
        main, ["generate", str(tmp_path / "cli"), "--scale", "0.05", "--seed", "5", "--clean", "--json"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.stdout)["clean"] is True
    assert landing_bytes(tmp_path / "cli") == landing_bytes(tmp_path / "library")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--scale", "0"], "--scale"),
        (["--scale", "-1"], "--scale"),
        (["--scale", "nan"], "--scale"),
        (["--scale", "1", "--customers", "10"], "cannot be combined with --customers"),
        (["--scale", "1", "--readings", "5"], "cannot be combined with --readings"),
        (["--clean"], "--clean needs --scale"),
    ],
)
def test_cli_rejects_bad_sizes_as_usage_errors(tmp_path: Path, arguments: list[str], message: str) -> None:
    outcome = CliRunner().invoke(main, ["generate", str(tmp_path / "out"), *arguments])
    assert outcome.exit_code == 2, outcome.output
    assert message in outcome.output
    assert not (tmp_path / "out").exists()
