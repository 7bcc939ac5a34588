"""How landing files are read. A bad line costs only itself: a file Polars' reader refuses is read again in
parts, the parts it accepts stay on the native path, and the file reads exactly as the tolerant splitter
reads it whole. A file on disk is read from its path, exactly as its bytes would be."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from stedi_etl.cli import main
from stedi_etl.contracts import load_contract
from stedi_etl.lake.tables import Lake
from stedi_etl.landing import read as landing_read
from stedi_etl.landing.read import ParsedFile, parse_file, read_tolerant
from tests.conftest import write_landing

ACCEL = load_contract("accelerometer_landing")


def reading(i: int) -> str:
    return json.dumps(
        {"user": f"u{i % 7}@example.com", "timestamp": 1655564000000 + i, "x": 0.5, "y": 1.0, "z": -1.0}
    )


# Each way a record can break, as the lines it takes. "spanning" and "nested" are records over several
# lines; "nested" holds whole readings on its inner lines, the case a cut between parts must not split.
BREAKS = {
    "junk": ["junk"],
    "torn": ['{"user": "torn'],
    "missing": ['{"user": null, "timestamp": 1, "x": 1, "y": 1, "z": 1}'],
    "spanning": ['{"user": "a@example.com",', '"timestamp": 5, "x": 1, "y": 2, "z": 3}'],
    "nested": [
        '{"user": "a@example.com", "timestamp": 5, "x": 1, "y": 2, "z": 3, "inner": [',
        reading(1) + ",",
        reading(2) + ",",
        reading(3),
        "]}",
    ],
    "blank": ["", "   "],
    "number_as_text": ['{"user": 123, "timestamp": 1, "x": 1, "y": 1, "z": 1}'],
    "too_big": ['{"user": "a@example.com", "timestamp": 99999999999999999999, "x": 1, "y": 1, "z": 1}'],
}


def file_text(records: int, breaks: list[tuple[int, str]], trailing_commas: bool) -> bytes:
    lines = [[reading(i)] for i in range(records)]
    for position, kind in sorted(breaks, reverse=True):
        lines.insert(position, list(BREAKS[kind]))
    if trailing_commas:
        lines = [[*group[:-1], group[-1] + ","] if group[-1].strip() else group for group in lines]
    return ("\n".join(line for group in lines for line in group) + "\n").encode()


def as_compared(parsed: ParsedFile) -> tuple[object, ...]:
    rejects = [(r.line, r.record, r.reason, r.detail, r.raw) for r in parsed.rejected]
    return parsed.frame.to_dicts(), rejects


@settings(max_examples=60, deadline=None)
@given(
    records=st.integers(1, 300),
    breaks=st.lists(st.tuples(st.integers(1, 300), st.sampled_from(sorted(BREAKS))), max_size=4),
    trailing_commas=st.booleans(),
)
def test_a_file_read_in_parts_reads_as_the_tolerant_path_reads_it(
    records: int, breaks: list[tuple[int, str]], trailing_commas: bool
) -> None:
    data = file_text(records, [(min(p, records), kind) for p, kind in breaks], trailing_commas)
    with pytest.MonkeyPatch.context() as patch:
        # Small parts, so that files of a few hundred records are cut many times over.
        patch.setattr(landing_read, "_SPLIT_FROM", 0)
        patch.setattr(landing_read, "_SMALLEST_PART", 200)
        patch.setattr(landing_read, "_PARTS", 3)
        parsed = parse_file(data, "f.json", ACCEL)
    assert as_compared(parsed) == as_compared(read_tolerant(data, "f.json", ACCEL))
    if parsed.path == "mixed":
        assert 0 < parsed.tolerant_records < records + sum(len(BREAKS[k]) for _p, k in breaks)


def test_one_bad_line_in_the_middle_of_a_large_file_costs_only_its_part() -> None:
    records = 40_000
    data = file_text(records, [(records // 2, "torn")], trailing_commas=False)
    assert len(data) > 3 * landing_read._SPLIT_FROM
    parsed = parse_file(data, "big.json", ACCEL)
    assert parsed.path == "mixed"
    assert parsed.frame.height == records
    assert parsed.tolerant_records < records // 50  # one part of at most 64 KiB around the bad line
    ((reject,),) = [parsed.rejected]
    assert (reject.line, reject.record, reject.reason) == (records // 2 + 1, records // 2 + 1, "invalid_json")


def test_a_run_reports_the_read_path_of_a_file_with_one_bad_line(starter: Path, tmp_path: Path) -> None:
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    shutil.copytree(starter, landing)
    users = ["Santosh.Clayton@test.com", "Frank.Jones@test.com"]
    lines = [
        json.dumps({"user": users[i % 2], "timestamp": 1655564000000 + i, "x": 1.0, "y": 0.0, "z": -1.0})
        for i in range(50_000)
    ]
    lines[25_000] = '{"user": "Santosh.Clayton@test.com", "timestamp": 16555'  # torn mid-record
    write_landing(landing, "accelerometer", "accelerometer-big.json", "\n".join(lines) + "\n")

    outcome = CliRunner().invoke(main, ["run-all", "--landing", str(landing), "--lake", str(lake), "--json"])

    assert outcome.exit_code == 0, outcome.output
    summaries = json.loads(outcome.stdout)["landing_results"]
    (accelerometer,) = [s for s in summaries if s["dataset"] == "accelerometer"]
    files = len(list((starter / "accelerometer" / "landing").iterdir()))
    assert accelerometer["read_paths"] == {"native": files, "mixed": 1}
    assert 0 < accelerometer["records_read_tolerantly"] < 1_000  # of 50,000
    quarantine = Lake.of(str(lake)).read("accelerometer_quarantine")
    (bad,) = quarantine.filter(quarantine["sourceFile"].str.ends_with("accelerometer-big.json")).to_dicts()
    assert (bad["lineNumber"], bad["reason"]) == (25_001, "invalid_json")
