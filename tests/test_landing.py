"""The landing reader: real data sets, every accepted layout, every quarantine reason, and accounting."""

from __future__ import annotations

import gzip
import json
from itertools import pairwise
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stedi_etl.contracts import load_contract
from stedi_etl.errors import LandingError, UsageError
from stedi_etl.lake.storage import Store
from stedi_etl.landing.read import (
    HIDDEN,
    parse_file,
    read_landing,
    read_native,
    read_tolerant,
    require_landing,
)
from tests.conftest import write_landing

ACCEL = load_contract("accelerometer_landing")
CUSTOMER = load_contract("customer_landing")
T0 = 1655564444103


def accel(
    user: str, ts: int, x: float = 1.0, y: float = 0.0, z: float = -1.0, time_key: str = "timestamp"
) -> str:
    return json.dumps({"user": user, time_key: ts, "x": x, "y": y, "z": z})


def rows(frame: pl.DataFrame) -> list[tuple[object, ...]]:
    return frame.rows()


# --- the real data sets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data_set", "expected"),
    [
        ("starter", {"customer": 956, "accelerometer": 81273, "step_trainer": 28680}),
        ("stedi_2022", {"customer": 999, "accelerometer": 25126, "step_trainer": 239760}),
    ],
)
def test_real_landing_counts_with_nothing_quarantined(
    data_set: str, expected: dict[str, int], request
) -> None:
    store = Store(str(request.getfixturevalue(data_set)))
    for dataset, count in expected.items():
        read = read_landing(store, dataset)
        assert (dataset, read.rows, read.quarantined) == (dataset, count, 0)


def test_2022_quirks_take_the_native_path(stedi_2022: Path) -> None:
    """Trailing commas, `timeStamp` and no final newline are read by Polars' reader, not the slow path."""
    store = Store(str(stedi_2022))
    for dataset in ("accelerometer", "step_trainer"):
        read = read_landing(store, dataset)
        assert {f.path for f in read.files} == {"native"}
    accelerometer = read_landing(store, "accelerometer").frame
    assert accelerometer.get_column("timestamp").null_count() == 0
    first = (stedi_2022 / "accelerometer" / "landing").glob("*.json").__next__().read_text().splitlines()[0]
    assert tuple(json.loads(first).values()) in rows(accelerometer)


# --- accepted layouts ---------------------------------------------------------------------------------------

EXPECTED = [("a@x.com", T0, 1.0, 0.0, -1.0), ("b@x.com", T0 + 1, 1.0, 0.0, -1.0)]
A, B = accel("a@x.com", T0), accel("b@x.com", T0 + 1)


@pytest.mark.parametrize(
    ("layout", "content"),
    [
        ("ndjson", f"{A}\n{B}\n"),
        ("trailing comma after each record", f"{A},\n{B},\n"),
        ("trailing comma, no final newline", f"{A},\n{B},"),
        ("crlf", f"{A}\r\n{B}\r\n"),
        ("byte-order mark", "\ufeff" + f"{A}\n{B}\n"),
        ("one JSON array", f"[{A},{B}]"),
        ("one JSON array, a record per line", f"[\n{A},\n{B}\n]\n"),
        ("pretty-printed JSON array", json.dumps([json.loads(A), json.loads(B)], indent=2)),
        (
            "pretty-printed records one after another (jq)",
            f"{json.dumps(json.loads(A), indent=2)}\n{json.dumps(json.loads(B), indent=2)}\n",
        ),
        ("no final newline", f"{A}\n{B}"),
        ("blank lines", f"\n{A}\n\n   \n{B}\n\n"),
        ("keys in another case", f"{A}\n{accel('b@x.com', T0 + 1, time_key='timeStamp')}\n"),
        (
            "every key in another case",
            f"{A.replace('user', 'USER')}\n{B.replace('timestamp', 'TimeStamp')}\n",
        ),
        (
            "numbers as numeric strings",
            f'{A}\n{{"user":"b@x.com","timestamp":"{T0 + 1}","x":"1","y":"0.0","z":"-1"}}\n',
        ),
        (
            "integral float for an integer",
            f'{A}\n{{"user":"b@x.com","timestamp":{T0 + 1}.0,"x":1,"y":0,"z":-1}}\n',
        ),
        (
            "keys outside the contract",
            f'{A}\n{{"user":"b@x.com","timestamp":{T0 + 1},"x":1,"y":0,"z":-1,"q":[1]}}\n',
        ),
        ("two records on one line", f"{A}{B}\n"),
    ],
)
def test_accepted_layouts_read_every_record(layout: str, content: str) -> None:
    parsed = parse_file(content.encode(), "f.json", ACCEL)
    assert parsed.rejected == []
    assert rows(parsed.frame) == EXPECTED


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf", b"[]", b"[\n]\n"])
def test_empty_files_give_no_rows_and_no_rejects(content: bytes) -> None:
    parsed = parse_file(content, "empty.json", ACCEL)
    assert (parsed.frame.height, parsed.rejected) == (0, [])
    assert parsed.frame.schema == ACCEL.polars_schema()


def test_absent_and_null_optional_keys_read_as_null() -> None:
    content = (
        '{"email":"a@x.com","serialNumber":"s1","shareWithResearchAsOfDate":1655564376361}\n'
        '{"email":"b@x.com","serialNumber":"s2","shareWithResearchAsOfDate":null,"phone":8015551212}\n'
    )
    parsed = parse_file(content.encode(), "c.json", CUSTOMER)
    assert parsed.rejected == []
    frame = parsed.frame.select("email", "phone", "shareWithResearchAsOfDate")
    assert rows(frame) == [("a@x.com", None, 1655564376361), ("b@x.com", "8015551212", None)]


def test_gzip_and_nested_folders_are_read_and_hidden_files_ignored(tmp_path: Path) -> None:
    write_landing(tmp_path, "accelerometer", "2024/01/a.json", f"{A}\n")
    write_landing(tmp_path, "accelerometer", "b.json.gz", gzip.compress(f"{B}\n".encode()))
    write_landing(tmp_path, "accelerometer", ".DS_Store", b"\x00\x01binary")
    write_landing(tmp_path, "accelerometer", "_SUCCESS", b"")
    read = read_landing(Store(str(tmp_path)), "accelerometer")
    assert sorted(rows(read.frame)) == EXPECTED
    assert read.quarantined == 0
    assert sorted(Path(p).name for p in read.skipped) == [".DS_Store", "_SUCCESS"]
    assert set(read.skipped.values()) == {HIDDEN}


def test_a_missing_landing_folder_is_a_usage_error(tmp_path: Path) -> None:
    write_landing(tmp_path, "customer", "c.json", "")
    with pytest.raises(UsageError, match="no landing files for accelerometer"):
        require_landing(Store(str(tmp_path)), ["customer", "accelerometer"])


# --- quarantine ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_line", "reason", "detail"),
    [
        ("hello world", "invalid_json", "invalid JSON"),
        ('{"user":"b@x.com","timestamp":16555', "invalid_json", "invalid JSON"),
        (
            f'{{"user":"b@x.com","timestamp":{T0},"x":NaN,"y":0,"z":0}}',
            "invalid_json",
            "NaN is not valid JSON",
        ),
        ("42", "not_an_object", "number"),
        ('"just text"', "not_an_object", "string"),
        ("[1, 2]", "not_an_object", "array"),
        (f'{{"timestamp":{T0},"x":1,"y":0,"z":0}}', "missing_required", "user"),
        (f'{{"user":null,"timestamp":{T0},"x":1,"y":0,"z":0}}', "missing_required", "user"),
        ('{"user":"b@x.com","timestamp":"abc","x":1,"y":0,"z":0}', "bad_value", "timestamp"),
        (f'{{"user":"b@x.com","timestamp":{T0},"x":"abc","y":0,"z":0}}', "bad_value", "x"),
        (f'{{"user":"b@x.com","timestamp":{T0},"x":true,"y":0,"z":0}}', "bad_value", "x"),
        (f'{{"user":1.5,"timestamp":{T0},"x":1,"y":0,"z":0}}', "bad_value", "user"),
        (f'{{"user":{{"a":1}},"timestamp":{T0},"x":1,"y":0,"z":0}}', "bad_value", "user"),
        (f'{{"user":"b@x.com","timestamp":{T0}.5,"x":1,"y":0,"z":0}}', "bad_value", "timestamp"),
        ('{"user":"b@x.com","timestamp":99999999999999999999,"x":1,"y":0,"z":0}', "bad_value", "64-bit"),
    ],
)
def test_each_quarantine_reason_names_file_line_text_and_reason(
    tmp_path: Path, bad_line: str, reason: str, detail: str
) -> None:
    write_landing(tmp_path, "accelerometer", "f.json", f"{A}\n{bad_line}\n{B}\n")
    read = read_landing(Store(str(tmp_path)), "accelerometer")
    assert rows(read.frame) == EXPECTED
    assert read.quarantine.height == 1
    rejected = read.quarantine.row(0, named=True)
    assert rejected["sourceFile"] == str(tmp_path / "accelerometer" / "landing" / "f.json")
    assert (rejected["lineNumber"], rejected["recordNumber"], rejected["reason"]) == (2, 2, reason)
    assert rejected["rawRecord"] == bad_line
    assert detail in rejected["detail"]


@pytest.mark.parametrize(
    ("record", "check"),
    [
        (accel("b@x.com", 1655564444), "timestamp: range"),  # seconds, not milliseconds
        (accel("b@x.com", 5_000_000_000_000), "timestamp: range"),
        ('{"user":"b@x.com","timestamp":%d,"x":1e999,"y":0,"z":0}' % T0, "x: finite"),
    ],
)
def test_rows_failing_a_row_check_are_quarantined(tmp_path: Path, record: str, check: str) -> None:
    write_landing(tmp_path, "accelerometer", "f.json", f"{A}\n{B}\n{record}\n")
    read = read_landing(Store(str(tmp_path)), "accelerometer")
    assert rows(read.frame) == EXPECTED
    assert read.quarantine.select("lineNumber", "reason").rows() == [(3, "check_failed")]
    assert check in read.quarantine.item(0, "detail")
    assert read.quarantine.item(0, "rawRecord") == record


def test_negative_distance_is_quarantined_from_a_native_file(tmp_path: Path) -> None:
    good = '{"sensorReadingTime":%d,"serialNumber":"s1","distanceFromObject":%d}'
    write_landing(
        tmp_path, "step_trainer", "s.json", "\n".join(good % (T0 + i, 200 - 100 * i) for i in range(4))
    )
    read = read_landing(Store(str(tmp_path)), "step_trainer")
    assert read.frame.get_column("distanceFromObject").to_list() == [200, 100, 0]
    assert read.quarantine.select("lineNumber", "recordNumber", "reason").rows() == [(4, 4, "check_failed")]


def test_a_torn_record_inside_a_json_array_quarantines_that_record_only() -> None:
    torn = '{"user":"t@x.com","timest'
    content = f"[{A},{torn},{B}]"
    parsed = parse_file(content.encode(), "array.json", ACCEL)
    assert rows(parsed.frame) == EXPECTED
    assert [(r.record, r.reason, r.raw) for r in parsed.rejected] == [(2, "invalid_json", torn)]


def test_a_torn_record_in_a_pretty_printed_array_quarantines_that_record_only() -> None:
    content = (
        '[\n  {"user": "a@x.com", "timestamp": %d, "x": 1.0, "y": 0.0, "z": -1.0},\n  {"user": "t@x.c\n' % T0
    )
    content += '  {"user": "b@x.com",\n   "timestamp": %d, "x": 1.0, "y": 0.0, "z": -1.0}\n]\n' % (T0 + 1)
    parsed = parse_file(content.encode(), "array.json", ACCEL)
    assert rows(parsed.frame) == EXPECTED
    assert [(r.line, r.reason) for r in parsed.rejected] == [(3, "invalid_json")]


def test_invalid_utf8_is_quarantined_and_shown_escaped() -> None:
    content = (
        A.encode() + b'\n{"user":"b\xff@x.com","timestamp":1655564444104,"x":1,"y":0,"z":0}\n' + B.encode()
    )
    parsed = parse_file(content, "f.json", ACCEL)
    assert rows(parsed.frame) == EXPECTED
    assert [(r.reason, "\\xff" in r.raw) for r in parsed.rejected] == [("bad_value", True)]


# --- the native path is exact -------------------------------------------------------------------------------


def test_native_path_refuses_what_it_cannot_read_exactly() -> None:
    """Each of these reads differently through Polars (stringified, null, or first-key) than by the rules."""
    ambiguous = [
        f'{A}\n{{"user":1.0,"timestamp":{T0},"x":1,"y":0,"z":0}}\n',  # Polars reads 1.0 as "1"
        f'{A}\n{{"user":true,"timestamp":{T0},"x":1,"y":0,"z":0}}\n',  # Polars reads true as "true"
        f'{A}\n{{"user":{{"k":1}},"timestamp":{T0},"x":1,"y":0,"z":0}}\n',  # objects become text
        f'{A}\n{{"USER": 12,"timestamp":{T0},"x":1,"y":0,"z":0}}\n',  # a number under a key in another case
        f'{A}\n{{"user":"12","timestamp":{T0},"x":1,"y":0,"z":0}}\n{{"user":12.0,"timestamp":{T0},"x":1}}\n',
        f"{A}\n{accel('b@x.com', T0 + 1, time_key='TIMESTAMP')}\n",  # a key spelled unlike record 1
    ]
    for content in ambiguous:
        assert read_native(content.encode(), ACCEL) is None, content


SPELLINGS = {name: [name, name.upper(), name.capitalize(), name.swapcase()] for name in ACCEL.column_names}


@st.composite
def native_candidate_files(draw: st.DrawFn) -> bytes:
    """NDJSON-ish files mixing key spellings, numeric strings, repeated keys and optional layouts."""
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        pairs = []
        for name in ACCEL.column_names:
            spelling = draw(st.sampled_from(SPELLINGS[name]))
            if name == "user":
                texts = ["a@x.com", "12345", "1.5", "true", "B@X.COM", "[1]", 12345, 1.5, 1.0, True, None]
                value: object = draw(st.sampled_from(texts))
            elif name == "timestamp":
                value = draw(st.sampled_from([T0, str(T0), float(T0), T0 + 7]))
            else:
                value = draw(st.sampled_from([1, 1.5, -1.0, "0.25", 0]))
            pairs.append((spelling, value))
            if draw(st.booleans()) and draw(st.booleans()):
                pairs.append((draw(st.sampled_from(SPELLINGS[name])), value))  # a repeated key
        lines.append("{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}")
    separator = draw(st.sampled_from(["\n", ",\n", "\r\n"]))
    return (separator.join(lines) + draw(st.sampled_from(["", separator]))).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(native_candidate_files())
def test_native_path_agrees_with_the_tolerant_path_whenever_it_answers(content: bytes) -> None:
    native = read_native(content, ACCEL)
    tolerant = read_tolerant(content, "f.json", ACCEL)
    if native is not None:
        assert tolerant.rejected == []
        assert native.equals(tolerant.frame), (native, tolerant.frame)


# --- accounting: every record written is a row or a reject --------------------------------------------------

FIELDS = {
    "email": st.from_regex(r"[A-Za-z]{1,8}\.[A-Za-z]{1,8}@test\.com", fullmatch=True),
    "serialNumber": st.uuids().map(str),
    "customerName": st.text(alphabet="abcdefghij KLMNOP'é", min_size=1, max_size=12),
    "phone": st.sampled_from(["8015551212", 8015551212, "+1 801 555"]),
    "birthDay": st.sampled_from(["1900-01-01", "993-01-01"]),
    "registrationDate": st.integers(1262304000000, 4102444800000),
    "shareWithResearchAsOfDate": st.one_of(st.none(), st.integers(1262304000000, 4102444800000)),
}


@st.composite
def customer_records(draw: st.DrawFn) -> tuple[str, str, dict[str, object] | None]:
    """(kind, text, expected row): a good record (keys mangled, some absent) or one broken on purpose."""
    kind = draw(
        st.sampled_from(["good"] * 6 + ["torn", "junk", "not_object", "missing", "bad_value", "range"])
    )
    record = {name: draw(strategy) for name, strategy in FIELDS.items()}
    for optional in ("customerName", "phone", "birthDay", "registrationDate", "shareWithResearchAsOfDate"):
        if draw(st.booleans()) and draw(st.booleans()):
            del record[optional]  # an absent optional key
    if kind == "missing":
        del record[draw(st.sampled_from(["email", "serialNumber"]))]
    elif kind == "bad_value":
        record["registrationDate"] = draw(st.sampled_from(["abc", 1.5, True, [1]]))
    elif kind == "range":
        record["registrationDate"] = draw(st.integers(0, 1262304000000 - 1))
    as_sent = {}
    for name, value in record.items():
        key = draw(st.sampled_from([name, name.upper(), name.lower()]))
        as_sent[key] = (
            str(value) if isinstance(value, int) and name.endswith("Date") and draw(st.booleans()) else value
        )
    text = json.dumps(as_sent, ensure_ascii=draw(st.booleans()))
    if kind == "torn":
        text = text[: draw(st.integers(1, len(text) - 1))]
    elif kind == "junk":
        text = draw(st.sampled_from(["hello", "<html>", "}{", "'single'", "nul"]))
    elif kind == "not_object":
        text = draw(st.sampled_from(["42", '"text"', "[1, 2]", "null", "true"]))
    if kind != "good":
        return kind, text, None
    expected = {c.name: None for c in CUSTOMER.columns}
    for name, value in record.items():
        expected[name] = str(value) if name == "phone" else value
    return kind, text, expected


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    records=st.lists(customer_records(), min_size=1, max_size=25),
    layout=st.sampled_from(["ndjson", "trailing_comma", "array", "array_per_line"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    final_newline=st.booleans(),
)
def test_every_record_written_is_a_row_or_a_reject(
    tmp_path_factory: pytest.TempPathFactory,
    records: list[tuple[str, str, dict[str, object] | None]],
    layout: str,
    newline: str,
    bom: bool,
    final_newline: bool,
) -> None:
    texts = [text for _kind, text, _expected in records]
    # A file whose first character is "[" is read as one JSON array, so an array record can't come first.
    assume(layout.startswith("array") or not texts[0].startswith("["))
    # Inside an array, a torn record runs to the next "{" that starts a record: a junk element right after
    # it cannot be told from the torn record's own remains.
    kinds = [kind for kind, _text, _expected in records]
    assume(
        not layout.startswith("array")
        or not any(a == "torn" and b in ("junk", "not_object") for a, b in pairwise(kinds))
    )
    if layout == "ndjson":
        body = newline.join(texts)
    elif layout == "trailing_comma":
        body = newline.join(t + "," for t in texts)
    elif layout == "array":
        body = "[" + ",".join(texts) + "]"
    else:
        body = "[" + newline + ("," + newline).join(texts) + newline + "]"
    if final_newline:
        body += newline
    root = tmp_path_factory.mktemp("landing")
    write_landing(root, "customer", "c.json", ("\ufeff" if bom else "") + body)
    if all(kind in ("torn", "junk", "not_object") for kind in kinds):
        # Not one JSON object: the file is no landing data at all, and the run stops naming it.
        with pytest.raises(LandingError, match=r"c\.json is .*not JSON records"):
            read_landing(Store(str(root)), "customer")
        return
    read = read_landing(Store(str(root)), "customer")

    assert read.rows + read.quarantined == len(records)
    good = [expected for kind, _text, expected in records if kind == "good"]
    assert read.frame.to_dicts() == good  # no good record lost or altered, in file order
    expected_reasons = {
        "torn": "invalid_json",
        "junk": "invalid_json",
        "not_object": "not_an_object",
        "missing": "missing_required",
        "bad_value": "bad_value",
        "range": "check_failed",
    }
    assert read.quarantine.get_column("reason").to_list() == [
        expected_reasons[kind] for kind, _text, _expected in records if kind != "good"
    ]


def test_text_that_looks_like_a_number_is_read_natively_when_the_bytes_show_it_was_quoted(
    starter: Path, stedi_2022: Path
) -> None:
    """Digit-only phone numbers and dates are strings in the file; nothing unquoted follows their keys."""
    quoted = f'{{"user":"12345","timestamp":{T0},"x":1,"y":0,"z":0}}\n{A}\n'
    assert read_native(quoted.encode(), ACCEL).get_column("user").to_list() == ["12345", "a@x.com"]
    for data_set in (starter, stedi_2022):
        read = read_landing(Store(str(data_set)), "customer")
        assert {f.path for f in read.files} == {"native"}, data_set


def test_a_number_where_text_belongs_is_caught_in_whichever_file_of_a_batch_holds_it(tmp_path: Path) -> None:
    """Files of a batch are searched for number-shaped text together; each file's finding stays its own.

    The first file's user 1.5 was a JSON number: Polars reads it as "1.5", so only the tolerant path can
    say so. The second file's digit-only user was quoted, which the native path keeps; the third holds no
    number-shaped text at all.
    """
    number_user = f'{{"user":1.5,"timestamp":{T0},"x":1,"y":0,"z":0}}\n'
    quoted_digits = f'{{"user":"12345","timestamp":{T0},"x":1,"y":0,"z":0}}\n'
    write_landing(tmp_path, "accelerometer", "a.json", accel("a@x.com", T0) + "\n" + number_user)
    write_landing(tmp_path, "accelerometer", "b.json", quoted_digits + accel("b@x.com", T0) + "\n")
    write_landing(tmp_path, "accelerometer", "c.json", accel("c@x.com", T0) + "\n")
    read = read_landing(Store(str(tmp_path)), "accelerometer")
    assert [(Path(f.source).name, f.path) for f in read.files] == [
        ("a.json", "tolerant"),
        ("b.json", "native"),
        ("c.json", "native"),
    ]
    assert read.quarantine.select("sourceFile", "lineNumber", "reason").rows() == [
        (read.files[0].source, 2, "bad_value")
    ]
    assert sorted(read.frame.get_column("user").to_list()) == ["12345", "a@x.com", "b@x.com", "c@x.com"]


def test_reading_in_small_batches_gives_the_same_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are read a batch at a time to bound memory; batching must not change a row or a reject."""
    sample = Store(str(Path(__file__).resolve().parents[1] / "fixtures" / "sample"))
    whole = read_landing(sample, "accelerometer")
    monkeypatch.setattr("stedi_etl.landing.read.BATCH_BYTES", 1)  # one file a batch
    batched = read_landing(sample, "accelerometer")
    assert batched.frame.equals(whole.frame)
    assert batched.quarantine.equals(whole.quarantine)
    assert batched.files == whole.files
    assert whole.quarantined  # the sample's defects, row-rule breaks among them, were found both ways
    assert "check_failed" in whole.quarantined_by_reason()
