"""A record holding one key twice never decides anything: it is quarantined as duplicate_key on every read
path (Polars' native reader, a large file read in parts, the tolerant splitter), in either letter case.

Before, the first value won on both read paths while Python's json and browsers keep the last: a consent
date followed by null was published as consent, and a reading sent as `"user": A, "user": B` landed as A's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stedi_etl.lake.storage import Store
from stedi_etl.lake.tables import Lake
from stedi_etl.landing.read import read_landing
from stedi_etl.run.runner import run
from tests.conftest import STARTER_COUNTS, write_landing

T0 = 1_655_564_400_000


def customer(email: str, consent: int | None) -> dict[str, object]:
    return {
        "customerName": "Case Consent",
        "email": email,
        "phone": "8015551212",
        "birthDay": "1990-01-01",
        "serialNumber": "serial-dup",
        "registrationDate": T0 - 10_000,
        "lastUpdateDate": T0 - 5_000,
        "shareWithResearchAsOfDate": consent,
        "shareWithPublicAsOfDate": None,
        "shareWithFriendsAsOfDate": None,
    }


def with_repeat(record: dict[str, object], key: str, spelled: str, value: object) -> str:
    """The record as JSON text with ``key`` given again (as ``spelled``) right after it, holding ``value``."""
    text = json.dumps(record)
    original = f'"{key}": {json.dumps(record[key])}'
    assert original in text
    return text.replace(original, f'{original}, "{spelled}": {json.dumps(value)}', 1)


CONSENT_THEN_NULL = with_repeat(
    customer("Case.Consent@x.com", T0), "shareWithResearchAsOfDate", "shareWithResearchAsOfDate", None
)
EMAIL_AND_EMAIL = with_repeat(customer("Mixed.Case@x.com", T0), "email", "Email", "Someone.Else@x.com")
READING_OF_TWO_USERS = json.dumps(
    {"user": "Case.Consent@x.com", "timestamp": T0 + 1, "x": 0.1, "y": 0.2, "z": 0.3}
).replace('"user": "Case.Consent@x.com"', '"user": "Case.Consent@x.com", "user": "NoConsent@x.com"')

LAYOUTS = {
    # one record per line: Polars' native reader
    "native": lambda lines: "\n".join(lines) + "\n",
    # a JSON array: the tolerant splitter
    "tolerant": lambda lines: "[\n" + ",\n".join(lines) + "\n]\n",
}


def good_customers(count: int) -> list[str]:
    return [json.dumps(customer(f"good{i}@x.com", T0)) for i in range(count)]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize(
    ("line", "what"),
    [(CONSENT_THEN_NULL, "same case"), (EMAIL_AND_EMAIL, "mixed case")],
    ids=["same", "mixed"],
)
def test_a_customer_record_with_a_repeated_key_is_quarantined(
    tmp_path: Path, layout: str, line: str, what: str
) -> None:
    lines = [*good_customers(3), line, *good_customers(2)[1:]]
    write_landing(tmp_path, "customer", "c.json", LAYOUTS[layout](lines))
    read = read_landing(Store(str(tmp_path)), "customer")
    assert read.quarantined == 1, what
    (reason,) = read.quarantine["reason"].to_list()
    assert reason == "duplicate_key"
    assert read.quarantine["recordNumber"].to_list() == [4]
    assert "Case" in read.quarantine["rawRecord"][0] or "Mixed" in read.quarantine["rawRecord"][0]
    assert read.rows == len(lines) - 1
    assert not {"Case.Consent@x.com", "Mixed.Case@x.com"} & set(read.frame["email"])


def test_a_repeated_key_in_a_large_file_is_quarantined_by_the_read_in_parts(tmp_path: Path) -> None:
    """A file of a few MiB: Polars refuses nothing, the key count shows a repeat, and only the part around
    the repeated key is read by the splitter."""
    readings = [
        json.dumps({"user": f"good{i % 50}@x.com", "timestamp": T0 + i, "x": 0.5, "y": 0.25, "z": 0.125})
        for i in range(40_000)
    ]
    readings[20_000] = READING_OF_TWO_USERS
    write_landing(tmp_path, "accelerometer", "a.json", "\n".join(readings) + "\n")
    read = read_landing(Store(str(tmp_path)), "accelerometer")
    assert read.quarantine["reason"].to_list() == ["duplicate_key"]
    assert read.quarantine["lineNumber"].to_list() == [20_001]
    assert read.rows == 39_999
    assert [f.path for f in read.files] == ["mixed"]  # not the whole file through the splitter
    assert "Case.Consent@x.com" not in set(read.frame["user"])


def test_a_run_publishes_neither_value_of_a_repeated_key(starter: Path, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(starter, landing)
    write_landing(landing, "customer", "crafted.json", CONSENT_THEN_NULL + "\n" + EMAIL_AND_EMAIL + "\n")
    write_landing(landing, "accelerometer", "crafted.json", READING_OF_TWO_USERS + "\n")
    result = run(str(landing), str(tmp_path / "lake"))
    assert result.ok
    assert {t.table: t.rows for t in result.tables} == STARTER_COUNTS  # neither crafted record counts
    reasons = {s.dataset: s.quarantined_by_reason for s in result.landing_results}
    assert reasons["customer"] == {"duplicate_key": 2} and reasons["accelerometer"] == {"duplicate_key": 1}
    lake = Lake.of(str(tmp_path / "lake"))
    assert "Case.Consent@x.com" not in set(lake.read("customer_trusted")["email"])
    assert lake.read("customer_quarantine")["reason"].to_list() == ["duplicate_key", "duplicate_key"]


def compact(record: dict[str, object]) -> str:
    return json.dumps(record, separators=(",", ":"))


@pytest.mark.parametrize(
    ("user", "repeat", "repeated"),
    [
        ("plain@x.com", None, False),  # one colon per value: the single-byte count settles it
        ("colon:in@x.com", None, False),  # a colon inside a string: the key count settles it
        ("plain@x.com", ',"user":null', True),  # a repeat whose value is null reads as nothing
        ("colon:in@x.com", ',"user":"b@x.com"', True),
        ("plain@x.com", ',"USER":"b@x.com"', True),
        ("plain@x.com", ',"us\\u0065r":"b@x.com"', True),  # an escaped spelling of the same key
        ("café@x.com", ',"extra":1', False),  # a key outside the contract, and an escape in a value
    ],
)
def test_the_native_reader_counts_keys_exactly_in_compact_records(
    user: str, repeat: str | None, repeated: bool
) -> None:
    """Compact records (no space after a colon) take the byte counts' shortcut; a repeated key must still
    keep the file off the native path, and a colon inside a value must not send a clean file elsewhere."""
    from stedi_etl.landing.read import landing_contract, read_native

    lines = [compact({"user": user, "timestamp": T0 + i, "x": 0.5, "y": 0.25, "z": 0.125}) for i in range(3)]
    if repeat:
        lines[1] = lines[1][:-1] + repeat + "}"
    frame = read_native(("\n".join(lines) + "\n").encode(), landing_contract("accelerometer"))
    assert (frame is None) is repeated
    if frame is not None:
        assert frame["user"].to_list() == [user] * 3


def test_a_key_repeated_in_an_escaped_spelling_is_quarantined(tmp_path: Path) -> None:
    """JSON readers decode "us\\u0065r" to "user": the record holds user twice, A then B."""
    reading = compact({"user": "a@x.com", "timestamp": T0, "x": 0.5, "y": 0.25, "z": 0.125})
    twice = reading.replace('"user":"a@x.com"', '"user":"a@x.com","us\\u0065r":"b@x.com"')
    clean = compact({"user": "c@x.com", "timestamp": T0 + 1, "x": 0.5, "y": 0.25, "z": 0.125})
    write_landing(tmp_path, "accelerometer", "a.json", twice + "\n" + clean + "\n")
    read = read_landing(Store(str(tmp_path)), "accelerometer")
    assert read.quarantine["reason"].to_list() == ["duplicate_key"]
    assert read.frame["user"].to_list() == ["c@x.com"]
