"""`stedi-etl profile`: the seed's duplicate findings on stedi-2022, the clean starter release, and a tiny
landing folder whose every count is known."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from stedi_etl.cli import main
from stedi_etl.commands.profile import Profile, profile_landing
from stedi_etl.errors import UsageError
from tests.conftest import write_landing


def profile(*args: str) -> Result:
    return CliRunner().invoke(main, ["profile", *args])


@pytest.fixture(scope="module")
def profile_2022(stedi_2022: Path) -> Profile:
    return profile_landing(str(stedi_2022))


def masked(value: str) -> str:
    """How a personal value is shown unless asked: a digest of it, nothing of the value itself."""
    return "***#" + hashlib.sha256(b"stedi-etl masked value\0" + value.encode()).hexdigest()[:8]


def test_stedi_2022_shows_the_seeds_findings(profile_2022: Profile) -> None:
    customer, _accelerometer, step_trainer = profile_2022.datasets
    assert customer.rows == 999
    assert customer.duplicates.key == ("email",)
    assert customer.duplicates.max_repeats == 6
    worst_two = customer.duplicates.worst[:2]
    assert [o.count for o in worst_two] == [6, 6]
    assert {o.key for o in worst_two} == {
        (masked("Angie.Davis@test.com"),),
        (masked("Larry.Mitra@test.com"),),
    }
    assert customer.duplicates.worst[2].count == 5

    assert profile_2022.serial_numbers.distinct_serials == 30
    assert profile_2022.consent_withdrawn == 72  # tests/test_consent.py has DuckDB find the same 72
    assert profile_2022.near_miss_readings == 0

    assert step_trainer.rows == 239_760
    assert step_trainer.duplicates.key == ("sensorReadingTime", "serialNumber")
    assert step_trainer.duplicates.repeated_keys == 5
    assert step_trainer.duplicates.extra_rows == 5
    assert [o.count for o in step_trainer.duplicates.worst] == [2] * 5


def test_the_cli_prints_the_profile_with_emails_masked_unless_asked(stedi_2022: Path) -> None:
    table = profile("--landing", str(stedi_2022))
    assert table.exit_code == 0, table.stderr
    assert "up to 6 rows per key" in table.stdout
    assert f"6x  {masked('Larry.Mitra@test.com')}" in table.stdout
    assert f"6x  {masked('Angie.Davis@test.com')}" in table.stdout
    assert "Larry.Mitra" not in table.stdout and "Angie.Davis" not in table.stdout  # a local part is a name
    assert "serialNumber: 30 distinct" in table.stdout
    assert "(sensorReadingTime, serialNumber): 5 keys repeated" in table.stdout
    assert "@test.com" not in table.stdout

    shown = profile("--landing", str(stedi_2022), "--show-personal", "--json", "--top", "2")
    assert shown.exit_code == 0, shown.stderr
    document = json.loads(shown.stdout)
    customer = document["datasets"][0]
    assert [o["key"] for o in customer["duplicates"]["worst"]] == [
        ["Angie.Davis@test.com"],
        ["Larry.Mitra@test.com"],
    ]
    assert document["serial_numbers"]["distinct_serials"] == 30
    assert document["personal_shown"] is True


def test_the_starter_release_has_unique_emails_and_474_without_research_consent(starter: Path) -> None:
    result = profile_landing(str(starter))
    customer = result.datasets[0]
    assert customer.rows == 956
    assert customer.duplicates.repeated_keys == 0 and customer.duplicates.worst == ()
    research = next(n for n in customer.nulls if n.column == "shareWithResearchAsOfDate")
    assert research.nulls == 474
    consent = next(c for c in result.consent if c.column == "shareWithResearchAsOfDate")
    assert (consent.records, consent.customers) == (482, 482)


def small_landing(root: Path) -> Path:
    """Two customers (one registered twice) sharing a serial, a third alone; readings with known defects."""
    customers = [
        {
            "customerName": "A",
            "email": "a@x.com",
            "serialNumber": "s1",
            "shareWithResearchAsOfDate": 1655564444103,
        },
        {"customerName": "A", "email": "a@x.com", "serialNumber": "s1"},
        {
            "customerName": None,
            "email": "b@x.com",
            "serialNumber": "s1",
            "shareWithPublicAsOfDate": 1655564444103,
        },
        {"customerName": "C", "email": "c@x.com", "serialNumber": "s2"},
    ]
    readings = [
        {"user": "a@x.com", "timestamp": 1655564444103, "x": 1.0, "y": 0.0, "z": 0.0},
        {"user": "a@x.com", "timestamp": 1655564444103, "x": 1.0, "y": 0.0, "z": 0.0},
        {"user": "a@x.com", "timestamp": 1655564444103, "x": 2.0, "y": 0.0, "z": 0.0},
        {"user": "nobody@x.com", "timestamp": 1655564444104, "x": 1.0, "y": 0.0, "z": 0.0},
        {"user": "nobody@x.com", "timestamp": 1655564444105, "x": 1.0, "y": 0.0, "z": 0.0},
    ]
    steps = [
        {"sensorReadingTime": 1655564444103, "serialNumber": "s1", "distanceFromObject": 200},
        {"sensorReadingTime": 1655564444103, "serialNumber": "s1", "distanceFromObject": 201},
        {"sensorReadingTime": 1655564444103, "serialNumber": "s9", "distanceFromObject": 200},
    ]
    for dataset, records in (("customer", customers), ("accelerometer", readings), ("step_trainer", steps)):
        write_landing(root, dataset, "part.json", "".join(json.dumps(r) + "\n" for r in records))
    return root


def test_every_count_on_a_tiny_landing_folder(tmp_path: Path) -> None:
    result = profile_landing(str(small_landing(tmp_path)), top=1)
    customer, accelerometer, step_trainer = result.datasets

    assert (customer.duplicates.repeated_keys, customer.duplicates.extra_rows) == (1, 1)
    assert [(o.key, o.count) for o in customer.duplicates.worst] == [((masked("a@x.com"),), 2)]
    names = {n.column: (n.nulls, n.rate) for n in customer.nulls}
    assert names["customerName"] == (1, 0.25)
    assert names["email"] == (0, 0.0)

    assert accelerometer.duplicates.key == ("user", "timestamp")
    assert (accelerometer.duplicates.repeated_keys, accelerometer.duplicates.max_repeats) == (1, 3)
    assert accelerometer.duplicates.worst[0].key == (masked("a@x.com"), "1655564444103")
    assert (step_trainer.duplicates.repeated_keys, step_trainer.duplicates.extra_rows) == (1, 1)

    serials = result.serial_numbers
    assert (serials.distinct_serials, serials.customers, serials.shared_serials) == (2, 3, 1)
    assert serials.max_customers == 2  # a@x.com twice counts once
    assert [(o.key, o.count) for o in serials.worst] == [(("s1",), 2)]

    consent = {c.column: (c.records, c.customers) for c in result.consent}
    assert consent == {
        "shareWithResearchAsOfDate": (1, 1),
        "shareWithPublicAsOfDate": (1, 1),
        "shareWithFriendsAsOfDate": (0, 0),
    }
    orphans = {o.dataset: (o.readings, o.distinct_values) for o in result.orphans}
    assert orphans == {"accelerometer": (2, 1), "step_trainer": (1, 1)}


def test_a_missing_landing_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no landing files for customer"):
        profile_landing(str(tmp_path))
    outcome = profile("--landing", str(tmp_path))
    assert outcome.exit_code == 2
    assert outcome.stderr.startswith("error: no landing files for customer")
    assert len(outcome.stderr.strip().splitlines()) == 1


def test_a_bad_top_is_a_usage_error(tmp_path: Path) -> None:
    outcome = profile("--landing", str(small_landing(tmp_path)), "--top", "-1")
    assert outcome.exit_code == 2
    assert "Invalid value for '--top'" in outcome.stderr
