"""The sample-data generator: same seed same bytes, counts a reader must reproduce, and a pipeline oracle.

The oracle below reads the generated files with the json module and applies the zone definitions in plain
Python; it shares no code with the landing reader, the transforms or the generator's own expectations.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from stedi_etl.cli import main
from stedi_etl.errors import UsageError
from stedi_etl.lake.storage import Store
from stedi_etl.landing.read import read_landing
from stedi_etl.run.runner import RunOptions, run
from stedi_etl.synth.sample import GenerateResult, generate

from .conftest import REPO, write_landing

if TYPE_CHECKING:
    from .s3_fixtures import S3

# The moto S3 server fixtures; registered as a plugin so pytest rewrites their asserts too.
pytest_plugins = ["tests.s3_fixtures"]

DATASETS = ("customer", "accelerometer", "step_trainer")
FIXTURE = REPO / "fixtures" / "sample"
FIXTURE_SEED, FIXTURE_CUSTOMERS = 2026, 300


def landing_bytes(root: Path) -> dict[str, bytes]:
    """Every file under the landing folders, by path relative to root."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for dataset in DATASETS
        for p in sorted((root / dataset / "landing").rglob("*"))
        if p.is_file()
    }


# --- an independent reading of the raw files ----------------------------------------------------------------

EPOCH_MS = (1262304000000, 4102444800000)
# column -> (kind, required, check); kind: text | integer | number
COLUMNS: dict[str, dict[str, tuple[str, bool, str | None]]] = {
    "customer": {
        "customerName": ("text", False, None),
        "email": ("text", True, None),
        "phone": ("text", False, None),
        "birthDay": ("text", False, None),
        "serialNumber": ("text", True, None),
        "registrationDate": ("integer", False, "epoch"),
        "lastUpdateDate": ("integer", False, "epoch"),
        "shareWithResearchAsOfDate": ("integer", False, "epoch"),
        "shareWithPublicAsOfDate": ("integer", False, "epoch"),
        "shareWithFriendsAsOfDate": ("integer", False, "epoch"),
    },
    "accelerometer": {
        "user": ("text", True, None),
        "timestamp": ("integer", True, "epoch"),
        "x": ("number", True, "finite"),
        "y": ("number", True, "finite"),
        "z": ("number", True, "finite"),
    },
    "step_trainer": {
        "sensorReadingTime": ("integer", True, "epoch"),
        "serialNumber": ("text", True, None),
        "distanceFromObject": ("integer", True, "non_negative"),
    },
}
INVALID = object()


def _no_constants(name: str) -> Any:
    raise ValueError(name)


def raw_records(path: Path) -> list[Any]:
    """The records of one file: a JSON array's elements, else one per non-blank line (INVALID if unparsable).

    The generator writes one record per line, so lines are records; a torn record is its own line.
    """
    text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    if text.lstrip().startswith("["):
        return list(json.loads(text, parse_constant=_no_constants))
    return [raw_records_of_line(line) for line in text.splitlines() if line.strip()]


def raw_records_of_line(line: str) -> Any:
    try:
        return json.loads(line.strip().removesuffix(","), parse_constant=_no_constants)
    except ValueError:
        return INVALID


class Rejected(Exception):
    """A record the contract refuses, with the quarantine reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def typed(value: Any, kind: str) -> Any:
    """A JSON value as the contract's type: digits count as text, numeric strings as numbers."""
    if isinstance(value, bool):
        raise Rejected("bad_value")
    if kind == "text":
        if isinstance(value, str):
            return value
        if isinstance(value, int):
            return str(value)
        raise Rejected("bad_value")
    if isinstance(value, str):
        try:
            value = int(value) if value.strip().lstrip("+-").isdigit() else float(value)
        except ValueError:
            raise Rejected("bad_value") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise Rejected("bad_value")  # "nan"/"inf" text is not a numeric string the contract takes
    if not isinstance(value, int | float):
        raise Rejected("bad_value")
    if kind == "integer":
        if isinstance(value, float) and not value.is_integer():
            raise Rejected("bad_value")
        return int(value)
    return float(value)


def conform(record: Any, dataset: str) -> tuple[Any, ...]:
    """The typed row of one raw record, or Rejected with the reason the contract gives."""
    if record is INVALID:
        raise Rejected("invalid_json")
    if not isinstance(record, dict):
        raise Rejected("not_an_object")
    columns = COLUMNS[dataset]
    by_lower = {name.lower(): name for name in columns}
    values: dict[str, Any] = {}
    for key, value in record.items():
        name = by_lower.get(key.lower())
        if name is not None:
            values.setdefault(name, value)
    if any(values.get(name) is None for name, (_k, required, _c) in columns.items() if required):
        raise Rejected("missing_required")
    row = {
        name: None if values.get(name) is None else typed(values[name], kind)
        for name, (kind, _r, _c) in columns.items()
    }
    for name, (_kind, _required, check) in columns.items():
        value = row[name]
        if value is None or check is None:
            continue
        if (
            (check == "epoch" and not EPOCH_MS[0] <= value <= EPOCH_MS[1])
            or (check == "non_negative" and value < 0)
            or (check == "finite" and not math.isfinite(value))
        ):
            raise Rejected("check_failed")
    return tuple(row[name] for name in columns)


def oracle_landing(root: Path, dataset: str) -> tuple[list[tuple[Any, ...]], Counter[str], int]:
    """Good rows, rejects by reason and the number of records of one dataset's landing files."""
    rows: list[tuple[Any, ...]] = []
    rejected: Counter[str] = Counter()
    records = 0
    for path in sorted((root / dataset / "landing").iterdir()):
        for record in raw_records(path):
            records += 1
            try:
                rows.append(conform(record, dataset))
            except Rejected as why:
                rejected[why.reason] += 1
    return rows, rejected, records


def oracle_tables(root: Path, options: RunOptions) -> dict[str, int]:
    """Row counts of every table, by the zone definitions, from the raw files."""
    customers, _, _ = oracle_landing(root, "customer")
    readings, _, _ = oracle_landing(root, "accelerometer")
    steps, _, _ = oracle_landing(root, "step_trainer")
    trusted = {c for c in customers if c[7] is not None}
    consented_at: dict[str, int] = {}
    for c in trusted:
        consented_at[c[1]] = max(consented_at.get(c[1], c[7]), c[7])
    accelerometer = {
        r
        for r in readings
        if r[0] in consented_at and (not options.consent_cutoff or r[1] >= consented_at[r[0]])
    }
    users = {r[0] for r in accelerometer}
    curated = {c for c in trusted if c[1] in users}
    owners = {(c[4], c[1]) for c in curated}
    step_trusted = {s for s in steps if s[1] in {serial for serial, _ in owners}}
    if options.ml_join == "timestamp":
        at: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for r in accelerometer:
            at[r[1]].append(r)
        ml = sum(len(at[s[0]]) for s in step_trusted)  # every pair, repeats included
    else:
        ml = len(
            {
                (*s, *r[2:])
                for s in step_trusted
                for serial, email in owners
                if serial == s[1]
                for r in accelerometer
                if r[0] == email and r[1] == s[0]
            }
        )
    return {
        "customer_trusted": len(trusted),
        "accelerometer_trusted": len(accelerometer),
        "customer_curated": len(curated),
        "step_trainer_trusted": len(step_trusted),
        "machine_learning_curated": ml,
    }


# --- determinism --------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    generate(str(tmp_path / "a"), seed=7, customers=40, readings_per_customer=6)
    generate(str(tmp_path / "b"), seed=7, customers=40, readings_per_customer=6)
    generate(str(tmp_path / "c"), seed=8, customers=40, readings_per_customer=6)
    first, again, other = (landing_bytes(tmp_path / name) for name in "abc")
    assert len(first) == 10
    assert first == again
    assert other.keys() == first.keys()
    assert all(other[name] != first[name] for name in first if first[name])


def test_regenerating_over_its_own_output_gives_the_same_bytes(tmp_path: Path) -> None:
    generate(str(tmp_path), seed=3, customers=20, readings_per_customer=4)
    before = landing_bytes(tmp_path)
    generate(str(tmp_path), seed=3, customers=20, readings_per_customer=4, force=True)
    assert landing_bytes(tmp_path) == before


def test_a_folder_that_holds_files_is_refused_without_force(tmp_path: Path) -> None:
    """Another seed over earlier output would change every count expected of it without a word."""
    generate(str(tmp_path), seed=3, customers=20, readings_per_customer=4)
    before = landing_bytes(tmp_path)
    with pytest.raises(UsageError, match=r"is not empty \(\d+ files\).*--force"):
        generate(str(tmp_path), seed=4, customers=20, readings_per_customer=4)
    assert landing_bytes(tmp_path) == before
    outcome = CliRunner().invoke(main, ["generate", str(tmp_path), "--seed", "4"])
    assert outcome.exit_code == 2 and "--force" in outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1
    assert landing_bytes(tmp_path) == before
    forced = CliRunner().invoke(
        main, ["generate", str(tmp_path), "--seed", "4", "--customers", "20", "--force"]
    )
    assert forced.exit_code == 0, forced.output
    assert landing_bytes(tmp_path) != before


def test_refuses_to_mix_with_files_it_did_not_write(tmp_path: Path) -> None:
    write_landing(tmp_path, "accelerometer", "someone-else.json", '{"user":"a@test.com"}\n')
    with pytest.raises(UsageError, match=r"someone-else\.json"):
        generate(str(tmp_path), seed=1, customers=5, force=True)  # --force writes over ours only


def test_refuses_no_customers(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        generate(str(tmp_path), customers=0)


def test_the_committed_sample_is_what_the_generator_writes(tmp_path: Path) -> None:
    generate(str(tmp_path), seed=FIXTURE_SEED, customers=FIXTURE_CUSTOMERS)
    fresh = landing_bytes(tmp_path)
    committed = landing_bytes(FIXTURE)
    assert sorted(committed) == sorted(fresh), "fixtures/sample lacks or has extra landing files"
    changed = [name for name in fresh if committed[name] != fresh[name]]
    assert not changed, (
        f"{changed} differ from a fresh `stedi-etl generate fixtures/sample --seed {FIXTURE_SEED} "
        f"--customers {FIXTURE_CUSTOMERS}`; regenerate instead of editing by hand"
    )
    assert sum(len(b) for b in committed.values()) < 700_000  # small enough to ship in the wheel


# --- what a reader must account for -------------------------------------------------------------------------


def check_reader_accounts(root: Path, result: GenerateResult) -> None:
    """The landing reader, the generator's counts and the oracle's agree record for record."""
    for path in sorted(root.glob("*/landing/*")):
        lines = [line for line in path.read_bytes().decode("utf-8-sig").splitlines() if line.strip()]
        for line, following in pairwise(lines):
            if lines[0] != "[" and raw_records_of_line(line) is INVALID:
                # After a broken record comes an object, so no reader's resynchronisation rule can merge
                # two planted defects into one record.
                assert following.lstrip().startswith("{"), (path.name, line, following)
    store = Store(str(root))
    for dataset in DATASETS:
        expected = result.datasets[dataset]
        read = read_landing(store, dataset)
        rows, rejected, records = oracle_landing(root, dataset)
        assert records == expected.records, dataset
        assert read.rows + read.quarantined == expected.records, dataset
        assert read.rows == expected.rows == len(rows), dataset
        assert read.quarantined_by_reason() == expected.quarantined == dict(rejected), dataset
        # Exact duplicates are rows: the reader keeps them for the pipeline to collapse.
        assert read.frame.height - read.frame.unique().height == expected.duplicates, dataset
        assert len(rows) - len(set(rows)) == expected.duplicates, dataset
        placed = {
            (d.file, d.line, d.record, d.reason) for d in result.defects if d.dataset == dataset and d.reason
        }
        found = set(read.quarantine.select("sourceFile", "lineNumber", "recordNumber", "reason").iter_rows())
        assert found == placed, dataset


def test_reader_accounts_for_every_record_of_the_default_sample(tmp_path: Path) -> None:
    result = generate(str(tmp_path), seed=FIXTURE_SEED, customers=FIXTURE_CUSTOMERS)
    check_reader_accounts(tmp_path, result)
    for dataset in DATASETS:
        # Every kind of reject is planted in every dataset.
        assert set(result.datasets[dataset].quarantined) == {
            "invalid_json",
            "not_an_object",
            "missing_required",
            "bad_value",
            "check_failed",
        }
        assert result.datasets[dataset].duplicates >= 2
    kinds = {d.kind for d in result.defects}
    assert {
        "no_final_newline",
        "json_array",
        "empty_file",
        "crlf_line_endings",
        "timeStamp_key",
        "utf8_bom",
        "trailing_commas",
        "torn_record",
        "junk_line",
        "numeric_strings",
        "duplicate",
        "reregistered",
    } <= kinds


# What each file-level quirk looks like in the bytes, checked without the generator's help.
QUIRKS = {
    "no_final_newline": lambda data: data != b"" and not data.endswith(b"\n"),
    "json_array": lambda data: data.lstrip().startswith(b"["),
    "empty_file": lambda data: data == b"",
    "crlf_line_endings": lambda data: data.count(b"\r\n") == data.count(b"\n") > 0,
    "timeStamp_key": lambda data: b'"timeStamp":' in data and b'"timestamp":' not in data,
    "utf8_bom": lambda data: data.startswith(b"\xef\xbb\xbf"),
    "trailing_commas": lambda data: (
        data != b"" and all(line.rstrip().endswith(b",") for line in data.splitlines() if line.strip())
    ),
}


def test_file_quirks_are_where_the_result_says_and_nowhere_else(tmp_path: Path) -> None:
    result = generate(str(tmp_path), seed=FIXTURE_SEED, customers=FIXTURE_CUSTOMERS)
    listed = {(d.file, d.kind) for d in result.defects if d.line is None}
    for file in result.files:
        data = Path(file).read_bytes()
        for quirk, present in QUIRKS.items():
            assert present(data) == ((file, quirk) in listed), (Path(file).name, quirk)
    assert {kind for _file, kind in listed} == set(QUIRKS)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    customers=st.integers(1, 30),
    readings=st.integers(1, 8),
)
def test_reader_accounts_for_every_record_at_any_size(
    tmp_path_factory: pytest.TempPathFactory, seed: int, customers: int, readings: int
) -> None:
    root = tmp_path_factory.mktemp("generated")
    result = generate(str(root), seed=seed, customers=customers, readings_per_customer=readings)
    check_reader_accounts(root, result)


def test_people_counts_match_the_customer_files(tmp_path: Path) -> None:
    result = generate(str(tmp_path), seed=11, customers=120, readings_per_customer=5)
    records = [r for p in sorted((tmp_path / "customer" / "landing").iterdir()) for r in raw_records(p)]
    people = {r["email"]: r for r in records if isinstance(r, dict) and r.get("email")}
    good, _, _ = oracle_landing(tmp_path, "customer")
    emails = {row[1] for row in good}
    assert len(emails) == result.people["customers"]
    assert len({row[1] for row in good if row[7] is not None}) == result.people["consenting"]
    absent = {e for e, r in people.items() if e in emails and "shareWithResearchAsOfDate" not in r}
    nulls = {e for e, r in people.items() if e in emails and r.get("shareWithResearchAsOfDate", 0) is None}
    assert len(absent) == result.people["consent_absent"] > 0
    assert len(nulls) == result.people["consent_null"] > 0
    readings, _, _ = oracle_landing(tmp_path, "accelerometer")
    users = {r[0] for r in readings}
    assert len(users & emails) == result.people["with_readings"]
    assert len(users - emails) == result.people["non_customer_users"]


# --- the CLI and the library --------------------------------------------------------------------------------


def test_cli_writes_what_the_library_writes(tmp_path: Path) -> None:
    runner = CliRunner()
    arguments = ["--seed", "5", "--customers", "25", "--readings", "4"]
    outcome = runner.invoke(main, ["generate", str(tmp_path / "cli"), *arguments, "--json"])
    assert outcome.exit_code == 0, outcome.output
    reported = json.loads(outcome.stdout)
    library = generate(str(tmp_path / "lib"), seed=5, customers=25, readings_per_customer=4).to_dict()
    assert landing_bytes(tmp_path / "cli") == landing_bytes(tmp_path / "lib")
    as_text = json.dumps(library).replace(str(tmp_path / "lib"), str(tmp_path / "cli"))
    assert reported == json.loads(as_text)
    assert reported["seed"] == 5 and reported["customers"] == 25

    summary = runner.invoke(main, ["generate", str(tmp_path / "cli"), *arguments, "--force"])
    assert summary.exit_code == 0, summary.output
    counts = library["datasets"]["accelerometer"]
    assert f"{counts['records']} records: {counts['rows']} rows" in summary.stdout
    assert "torn_record" in summary.stdout and "-> invalid_json" in summary.stdout

    quiet = runner.invoke(main, ["generate", str(tmp_path / "cli"), *arguments, "--quiet", "--force"])
    assert quiet.exit_code == 0 and quiet.stdout == ""


def test_cli_rejects_a_foreign_landing_folder_with_a_usage_error(tmp_path: Path) -> None:
    write_landing(tmp_path, "customer", "mine.json", "{}\n")
    outcome = CliRunner().invoke(main, ["generate", str(tmp_path), "--force"])
    assert outcome.exit_code == 2
    assert "mine.json" in outcome.stderr


# --- the pipeline on generated data -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [RunOptions(), RunOptions(consent_cutoff=True), RunOptions(ml_join="timestamp")],
    ids=["default", "consent-cutoff", "timestamp-join"],
)
def test_pipeline_tables_match_the_oracle(tmp_path: Path, options: RunOptions) -> None:
    landing = tmp_path / "landing"
    generated = generate(str(landing), seed=FIXTURE_SEED, customers=FIXTURE_CUSTOMERS)
    result = run(str(landing), str(tmp_path / "lake"), options=options)
    assert result.ok, [t.reason for t in result.failed]
    built = {t.table: t.rows for t in result.tables}
    expected = oracle_tables(landing, options)
    assert built == expected
    assert all(rows > 0 for rows in built.values()), built
    if options == RunOptions():
        assert generated.expected_tables == expected
    else:
        # The option must matter on this data, or the comparison above proves nothing about it.
        assert expected != oracle_tables(landing, RunOptions())
    for summary in result.landing_results:
        assert summary.quarantined_by_reason == generated.datasets[summary.dataset].quarantined
        assert summary.rows == generated.datasets[summary.dataset].rows


def test_default_run_all_uses_the_committed_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = CliRunner().invoke(main, ["run-all", "--json"])
    assert outcome.exit_code == 0, outcome.output
    result = json.loads(outcome.stdout)
    expected = oracle_tables(FIXTURE, RunOptions())
    assert {t["table"]: t["rows"] for t in result["tables"]} == expected
    assert all(rows > 0 for rows in expected.values())
    for summary in result["landing_results"]:
        _rows, rejected, _records = oracle_landing(FIXTURE, summary["dataset"])
        assert summary["quarantined_by_reason"] == dict(rejected)
    assert (tmp_path / "lake").is_dir()


# --- S3 -----------------------------------------------------------------------------------------------------


@pytest.mark.s3
def test_generates_the_same_bytes_into_s3(s3: S3, tmp_path: Path) -> None:
    local = generate(str(tmp_path), seed=4, customers=15, readings_per_customer=3)
    remote = generate(
        s3.uri("landing"), seed=4, customers=15, readings_per_customer=3, endpoint_url=s3.endpoint
    )
    expected = {f"landing/{name}": data for name, data in landing_bytes(tmp_path).items()}
    assert {key: s3.get(key) for key in s3.keys("landing/")} == expected
    assert remote.files == tuple(f.replace(str(tmp_path), s3.uri("landing")) for f in local.files)
    store = Store(s3.uri("landing"), endpoint_url=s3.endpoint)
    for dataset in DATASETS:
        read = read_landing(store, dataset)
        assert read.rows == local.datasets[dataset].rows
        assert read.quarantined_by_reason() == local.datasets[dataset].quarantined
