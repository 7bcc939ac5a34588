"""Hostile input: each case gives one line naming the problem, the right exit code, no traceback, and
leaves the lake as it was; random bytes and random JSON never crash a run or lose a record."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stedi_etl.cli import main
from stedi_etl.contracts import load_contract
from stedi_etl.lake.storage import Store
from stedi_etl.landing.read import parse_file, read_landing
from stedi_etl.run import runner as pipeline
from tests.conftest import REPO

SAMPLE = REPO / "fixtures" / "sample"
ACCELEROMETER = Path("accelerometer") / "landing"


def lake_files(lake: Path) -> dict[str, bytes]:
    """Every table file and pointer with its bytes (stedi-etl's own records under _stedi aside)."""
    if not lake.exists():
        return {}
    return {
        str(p.relative_to(lake)): p.read_bytes()
        for p in sorted(lake.rglob("*"))
        if p.is_file() and p.relative_to(lake).parts[0] != "_stedi"
    }


@pytest.fixture(scope="module")
def built_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("built") / "lake"
    assert pipeline.run(str(SAMPLE), str(lake)).ok
    return lake


def bad_file(name: str, content: bytes | Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(landing: Path) -> None:
        path = landing / ACCELEROMETER / name
        if callable(content):
            content(path)
        else:
            path.write_bytes(content)

    return damage


def gzipped_json(path: Path) -> None:
    first = sorted((SAMPLE / ACCELEROMETER).iterdir())[0]
    path.write_bytes(gzip.compress(first.read_bytes()))


def unreadable(path: Path) -> None:
    """A file stedi-etl cannot read: one without read permission. (Root reads anything; a link to nowhere,
    which stood in for it, is now skipped and listed: tests/test_links.py.)"""
    path.write_text("{}")
    path.chmod(0)


def one_gigabyte_line(path: Path) -> None:
    with path.open("wb") as out:
        block = b"x" * (64 * 2**20)
        for _ in range(16):
            out.write(block)


def nested(depth: int) -> bytes:
    return b'{"user": ' + b"[" * depth + b"]" * depth + b"}\n"


# (name, damage done to a copy of the sample landing data, extra CLI arguments, exit code, message pattern)
CASES = [
    ("binary file", bad_file("bad.json", bytes(range(256)) * 40), [], 1, r"bad\.json is binary data"),
    ("gzip named .json", bad_file("bad.json", gzipped_json), [], 1, r"bad\.json is gzip-compressed data"),
    ("not gzip named .gz", bad_file("bad.json.gz", b"{}"), [], 1, r"bad\.json\.gz is named \.gz but is not"),
    (
        "an HTML error page",
        bad_file("bad.json", b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"),
        [],
        1,
        r"bad\.json is HTML or XML",
    ),
    ("deeply nested JSON", bad_file("bad.json", nested(100_000)), [], 1, r"bad\.json is not JSON records"),
    # Only a user other than root can be refused a file (root reads anything).
    *(
        [("unreadable file", bad_file("bad.json", unreadable), [], 1, r"cannot read \S+bad\.json: Perm")]
        if os.geteuid() != 0
        else []
    ),
    ("a 1 GB single line", bad_file("bad.json", one_gigabyte_line), [], 1, r"bad\.json is text without"),
    ("dataset folder missing", lambda landing: shutil.rmtree(landing / "step_trainer"), [], 2, "no landing"),
    (
        "empty landing folder",
        lambda landing: [shutil.rmtree(p) for p in landing.iterdir() if p.is_dir()],
        [],
        2,
        r"no landing files for customer under ",
    ),
    ("unknown table name", lambda _landing: None, ["--table", "no_such_table"], 2, r"unknown table 'no_such"),
]


@pytest.mark.parametrize(
    ("damage", "extra", "code", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
@pytest.mark.parametrize("lake_kind", ["new lake", "existing lake"])
def test_hostile_input_fails_in_one_line_and_writes_nothing(
    built_lake: Path,
    tmp_path: Path,
    damage: Callable[[Path], None],
    extra: list[str],
    code: int,
    message: str,
    lake_kind: str,
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE, landing)
    damage(landing)
    lake = tmp_path / "lake"
    if lake_kind == "existing lake":
        shutil.copytree(built_lake, lake)
    before = lake_files(lake)

    if extra[:1] == ["--table"]:
        arguments = ["run", extra[1], "--landing", str(landing), "--lake", str(lake), "-q"]
    else:  # --full-refresh: with nothing in the way, the run would rewrite every table
        arguments = ["run-all", "--landing", str(landing), "--lake", str(lake), "--full-refresh", "-q"]
    result = CliRunner().invoke(main, arguments)

    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in result.output and "unexpected" not in result.output
    assert lake_files(lake) == before  # nothing written or overwritten


def test_validate_reports_a_file_that_is_not_json_the_same_way(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE, landing)
    (landing / ACCELEROMETER / "page.json").write_bytes(b"<html></html>")
    result = CliRunner().invoke(main, ["validate", "--landing", str(landing)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "page.json is HTML or XML" in result.stderr


# --- random bytes and random JSON ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
user_like = st.sampled_from(["user", "USER", "timestamp", "timeStamp", "x", "y", "z"])
reading_like = st.dictionaries(user_like, json_values, max_size=5)
good_reading = st.builds(
    lambda ms, x: {"user": "nobody@test.com", "timestamp": 1655564000000 + ms, "x": x, "y": 0.0, "z": 1.0},
    st.integers(0, 10**6),
    st.floats(-100, 100),
)


def run_on(root: Path, content: bytes) -> tuple[int, str, str, dict | None]:
    landing = root / "landing"
    shutil.copytree(SAMPLE, landing)
    (landing / ACCELEROMETER / "random.json").write_bytes(content)
    lake = root / "lake"
    arguments = ["run-all", "--landing", str(landing), "--lake", str(lake), "--json"]
    result = CliRunner().invoke(main, arguments)
    document = json.loads(result.stdout) if result.exit_code == 0 else None
    return result.exit_code, result.stdout, result.stderr, document


def accelerometer_accounting(document: dict) -> tuple[int, int]:
    summary = next(s for s in document["landing_results"] if s["dataset"] == "accelerometer")
    return summary["rows"], summary["quarantined"]


SAMPLE_READ = read_landing(Store(str(SAMPLE)), "accelerometer")
SAMPLE_READINGS = SAMPLE_READ.rows + SAMPLE_READ.quarantined


def assert_failed_cleanly(code: int, stderr: str, root: Path) -> None:
    assert code == 1, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "random.json" in lines[0], stderr
    assert "unexpected" not in stderr
    assert lake_files(root / "lake") == {}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=2000))
def test_random_bytes_never_crash_a_run(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    root = tmp_path_factory.mktemp("bytes")
    code, _out, err, document = run_on(root, content)
    if code == 0:
        rows, quarantined = accelerometer_accounting(document)  # type: ignore[arg-type]
        # The sample's own records are all accounted for, and so is anything read from the random file.
        assert rows + quarantined >= SAMPLE_READINGS
    else:
        assert_failed_cleanly(code, err, root)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.one_of(json_values, reading_like, good_reading), min_size=1, max_size=12))
def test_random_json_values_are_each_a_row_or_a_quarantined_record(
    tmp_path_factory: pytest.TempPathFactory, values: list[object]
) -> None:
    # A file starting with "[" is one JSON array, whose elements are the records: not one value a line.
    assume(not isinstance(values[0], list))
    root = tmp_path_factory.mktemp("values")
    content = "\n".join(json.dumps(v) for v in values).encode()
    code, _out, err, document = run_on(root, content)
    if not any(isinstance(v, dict) for v in values):
        assert_failed_cleanly(code, err, root)  # not one JSON object: no landing data at all
        return
    assert code in (0, 1), err
    if code == 1:  # a value broke a contract rule across rows: the run says so, and exits 1
        assert "unexpected" not in err and "Traceback" not in err
        return
    rows, quarantined = accelerometer_accounting(document)  # type: ignore[arg-type]
    assert rows + quarantined == SAMPLE_READINGS + len(values)  # every record is a row or quarantined


def test_an_html_error_page_with_styles_is_refused_as_html(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE, landing)
    page = b"<html><head><style>body { color: red; }</style></head><body>502 Bad Gateway</body></html>\n"
    (landing / ACCELEROMETER / "page.json").write_bytes(page)
    result = CliRunner().invoke(
        main, ["run-all", "--landing", str(landing), "--lake", str(tmp_path / "l"), "-q"]
    )
    assert result.exit_code == 1
    assert "page.json is HTML or XML (it starts with '<'), not JSON records" in result.stderr


def test_a_torn_first_line_starting_with_a_bracket_costs_only_itself(tmp_path: Path) -> None:
    good = '{"user": "a@b.c", "timestamp": 1655564000000, "x": 1.0, "y": 2.0, "z": 3.0}'
    read = parse_file(f"<torn\n{good}\n".encode(), "f.json", load_contract("accelerometer_landing"))
    assert read.frame.height == 1 and [r.reason for r in read.rejected] == ["invalid_json"]
