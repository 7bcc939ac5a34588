"""Consent without ambiguity (issue 32): with `--consent latest-record` a customer's latest record decides,
so a withdrawal is honoured in every table; under the default `per-record` the withdrawals are counted.

The expected counts come from DuckDB SQL written here over the landing files, not from the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stedi_etl.cli import main
from stedi_etl.contracts import load_contract
from stedi_etl.lake.tables import Lake
from stedi_etl.model import transforms
from stedi_etl.run.runner import RunOptions, run
from tests.conftest import STARTER_COUNTS

# A customer's latest record: the greatest lastUpdateDate, a null one counting as the oldest; among
# records tied as latest, one without consent decides. Withdrawn: latest lacks consent, an earlier had it.
WITHDRAWN_SQL = """
WITH c AS (
  SELECT *, coalesce(lastUpdateDate, -9223372036854775808) AS _u, shareWithResearchAsOfDate IS NOT NULL AS _ok
  FROM read_json_auto('{customers}')
),
latest AS (SELECT email, max(_u) AS _mu, bool_or(_ok) AS _ever FROM c GROUP BY email),
withdrawn AS (
  SELECT latest.email FROM latest JOIN c ON c.email = latest.email AND c._u = latest._mu
  WHERE latest._ever GROUP BY latest.email HAVING bool_or(NOT c._ok)
)
SELECT
  (SELECT list(email) FROM withdrawn),
  (SELECT count(*) FROM (SELECT DISTINCT * EXCLUDE (_u, _ok) FROM c WHERE _ok
                         AND email NOT IN (SELECT email FROM withdrawn))),
  (SELECT count(*) FROM (SELECT DISTINCT * EXCLUDE (_u, _ok) FROM c WHERE _ok))
"""


def oracle(landing: Path) -> tuple[set[str], int, int]:
    """(withdrawn emails, customer_trusted rows under latest-record, under per-record)."""
    customers = landing / "customer" / "landing" / "*.json"
    ((emails, latest, per_record),) = duckdb.sql(WITHDRAWN_SQL.format(customers=customers)).fetchall()
    return set(emails or []), latest, per_record


def test_latest_record_takes_the_withdrawn_customers_out_of_every_table(
    stedi_2022: Path, tmp_path: Path
) -> None:
    withdrawn, latest_rows, per_record_rows = oracle(stedi_2022)
    assert len(withdrawn) == 72  # the count the privacy review found
    result = CliRunner().invoke(
        main,
        [
            "run-all",
            "--landing",
            str(stedi_2022),
            "--lake",
            str(tmp_path),
            "--consent",
            "latest-record",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["options"]["consent"] == "latest-record"
    assert {t["table"]: t["rows"] for t in summary["tables"]}["customer_trusted"] == latest_rows
    lake = Lake.of(str(tmp_path))
    assert not withdrawn & set(lake.read("customer_trusted")["email"])
    assert not withdrawn & set(lake.read("accelerometer_trusted")["user"])
    assert not withdrawn & set(lake.read("customer_curated")["email"])
    # Per record (the default), the same lake is rebuilt with them, and the withdrawals are counted.
    again = run(str(stedi_2022), str(tmp_path))
    tables = {t.table: t for t in again.tables}
    assert tables["customer_trusted"].status == "published"  # the option is part of its fingerprint
    assert tables["customer_trusted"].rows == per_record_rows
    (notice,) = [w for w in tables["customer_trusted"].warnings if w.check == "consent_withdrawn"]
    assert notice.failing_rows == len(withdrawn)


@pytest.mark.parametrize("consent", ["per-record", "latest-record"])
def test_the_starter_set_keeps_its_published_counts_either_way(
    starter: Path, tmp_path: Path, consent: str
) -> None:
    withdrawn, latest_rows, per_record_rows = oracle(starter)
    assert (withdrawn, latest_rows, per_record_rows) == (set(), 482, 482)
    result = run(str(starter), str(tmp_path), options=RunOptions(consent=consent))  # type: ignore[arg-type]
    assert result.ok
    assert {t.table: t.rows for t in result.tables} == STARTER_COUNTS
    assert not any(w.check == "consent_withdrawn" for t in result.tables for w in t.warnings)


T0 = 1_655_000_000_000
EMAILS = [f"customer{i}@example.com" for i in range(5)]
record = st.tuples(
    st.integers(0, 4),  # whose record
    st.one_of(st.none(), st.integers(0, 3)),  # lastUpdateDate step (None: absent)
    st.booleans(),  # research consent in this record
    st.integers(0, 3),  # serial number
)


def customer_frame(records: list[tuple[int, int | None, bool, int]]) -> pl.DataFrame:
    schema = load_contract("customer_landing").polars_schema()
    rows = [
        {
            "customerName": f"Customer {who}",
            "email": EMAILS[who],
            "phone": "8015551212",
            "birthDay": "1990-01-01",
            "serialNumber": f"serial-{serial}",
            "registrationDate": T0 - 10_000,
            "lastUpdateDate": None if step is None else T0 + step,
            "shareWithResearchAsOfDate": T0 - 1_000 if consents else None,
            "shareWithPublicAsOfDate": None,
            "shareWithFriendsAsOfDate": None,
        }
        for who, step, consents, serial in records
    ]
    return pl.DataFrame(rows, schema=schema)


def latest_lacks_consent(records: list[tuple[int, int | None, bool, int]]) -> set[str]:
    """Emails whose latest record has no consent, worked out in plain Python."""
    lacking = set()
    for who in {r[0] for r in records}:
        mine = [r for r in records if r[0] == who]
        newest = max(-1 if r[1] is None else r[1] for r in mine)
        if any(not r[2] for r in mine if (-1 if r[1] is None else r[1]) == newest):
            lacking.add(EMAILS[who])
    return lacking


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, min_size=1, max_size=14))
def test_under_latest_record_no_customer_whose_latest_record_lacks_consent_reaches_any_table(
    records: list[tuple[int, int | None, bool, int]],
) -> None:
    customers = customer_frame(records).lazy()
    readings = pl.LazyFrame(
        {
            "user": EMAILS,
            "timestamp": [T0 + i for i in range(5)],
            "x": [0.1] * 5,
            "y": [0.2] * 5,
            "z": [0.3] * 5,
        },
        schema=load_contract("accelerometer_landing").polars_schema(),
    )
    steps = pl.LazyFrame(
        {
            "sensorReadingTime": [T0 + i for i in range(5)],
            "serialNumber": [f"serial-{i % 4}" for i in range(5)],
        }
        | {"distanceFromObject": list(range(5))},
        schema=load_contract("step_trainer_landing").polars_schema(),
    )
    trusted = transforms.customer_trusted(customers, consent="latest-record")
    accelerometer = transforms.accelerometer_trusted(readings, trusted)
    curated = transforms.customer_curated(trusted, accelerometer)
    machine = transforms.machine_learning_curated(
        transforms.step_trainer_trusted(steps, curated), curated, accelerometer
    ).collect()
    lacking = latest_lacks_consent(records)
    assert not lacking & set(trusted.collect()["email"])
    assert not lacking & set(accelerometer.collect()["user"])
    assert not lacking & set(curated.collect()["email"])
    own_times = {T0 + EMAILS.index(email) for email in lacking}
    assert not own_times & set(
        machine["sensorReadingTime"]
    )  # each customer's reading is at their own instant
    # Every customer whose latest record consents keeps every consenting record.
    consenting = {EMAILS[r[0]] for r in records if r[2]} - lacking
    assert set(trusted.collect()["email"]) == consenting


def test_readings_sent_under_a_case_or_space_variant_of_an_email_are_counted_not_dropped_silently(
    starter: Path, tmp_path: Path
) -> None:
    """Matching stays exact (an email is who sent it); 4 of a consenting customer's 7 readings sent under a
    lower-case, upper-case or space-padded variant of the email are reported with their count."""
    import shutil

    customers = starter / "customer" / "landing" / "*.json"
    ((email,),) = duckdb.sql(
        f"SELECT min(email) FROM read_json_auto('{customers}') WHERE shareWithResearchAsOfDate IS NOT NULL"
        " AND email <> lower(email)"
    ).fetchall()
    variants = [email, email, email, email.lower(), email.upper(), f" {email}", f"{email}  "]
    landing = tmp_path / "landing"
    shutil.copytree(starter, landing)
    crafted = [
        json.dumps({"user": user, "timestamp": 1_600_000_000_000 + i, "x": 0.1, "y": 0.2, "z": 0.3})
        for i, user in enumerate(variants)
    ]
    (landing / "accelerometer" / "landing" / "variants.json").write_text("\n".join(crafted) + "\n")
    result = run(str(landing), str(tmp_path / "lake"))
    assert result.ok
    tables = {t.table: t for t in result.tables}
    (notice,) = [w for w in tables["accelerometer_trusted"].warnings if w.check == "near_miss_user"]
    assert notice.failing_rows == 4
    assert tables["accelerometer_trusted"].rows == STARTER_COUNTS["accelerometer_trusted"] + 3
    kept = (
        Lake.of(str(tmp_path / "lake"))
        .read("accelerometer_trusted")
        .filter(pl.col("timestamp") < 1_600_000_001_000)
    )
    assert set(kept["user"]) == {email}
    # Without variants there is nothing to say.
    assert not any(
        w.check == "near_miss_user"
        for t in run(str(starter), str(tmp_path / "plain")).tables
        for w in t.warnings
    )
