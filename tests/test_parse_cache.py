"""Each landing file parsed once: a run parses only the files it has not seen, and the lake it builds equals
a full rebuild from scratch."""

from __future__ import annotations

import gc
import json
import shutil
import types
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from stedi_etl.cli import main
from stedi_etl.contracts import lake_tables
from stedi_etl.lake.storage import FileInfo, open_store
from stedi_etl.lake.tables import Lake
from stedi_etl.landing.cache import ParseCache
from stedi_etl.run.runner import run


def parsed_and_reused(lake: Path, landing: Path) -> dict[str, tuple[int, int]]:
    outcome = CliRunner().invoke(main, ["run-all", "--landing", str(landing), "--lake", str(lake), "--json"])
    assert outcome.exit_code == 0, outcome.output
    return {
        s["dataset"]: (s["files_parsed"], s["files_reused"])
        for s in json.loads(outcome.stdout)["landing_results"]
        if s["rows"] is not None
    }


def tables(lake: Path) -> dict[str, pl.DataFrame]:
    the_lake = Lake.of(str(lake))
    return {t: the_lake.read(t) for t in lake_tables()}


def assert_same_as_a_full_rebuild(lake: Path, landing: Path, scratch: Path) -> None:
    assert run(str(landing), str(scratch)).ok
    built, rebuilt = tables(lake), tables(scratch)
    for table in lake_tables():
        assert built[table].equals(rebuilt[table]), table
    shutil.rmtree(scratch)


def test_a_run_parses_only_new_or_changed_files(starter: Path, tmp_path: Path) -> None:
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    shutil.copytree(starter, landing)
    accelerometer = sorted((landing / "accelerometer" / "landing").iterdir())
    held_back = accelerometer[-1].read_bytes()
    accelerometer[-1].unlink()
    assert parsed_and_reused(lake, landing)["accelerometer"] == (8, 0)

    # One new file: only it is parsed; the lake equals a rebuild from scratch.
    accelerometer[-1].write_bytes(held_back)
    assert parsed_and_reused(lake, landing) == {"accelerometer": (1, 8)}
    assert_same_as_a_full_rebuild(lake, landing, tmp_path / "scratch")

    # A file's bytes changed: that file only.
    first = accelerometer[0]
    first.write_bytes(b"".join(first.read_bytes().splitlines(keepends=True)[:-5]))
    assert parsed_and_reused(lake, landing) == {"accelerometer": (1, 8)}
    assert_same_as_a_full_rebuild(lake, landing, tmp_path / "scratch")

    # A file removed: its rows are gone, nothing is parsed, and its parse is dropped from the cache.
    accelerometer[1].unlink()
    assert parsed_and_reused(lake, landing) == {"accelerometer": (0, 8)}
    assert_same_as_a_full_rebuild(lake, landing, tmp_path / "scratch")
    kept = list((lake / "_stedi" / "parsed" / "accelerometer").glob("*.parquet"))
    assert len(kept) == 8


def test_another_contract_or_reader_is_another_key() -> None:
    store = open_store(".")
    info = FileInfo(size=10, stamp="etag:abc")
    same = ParseCache(store, "x", "contract-1", "reader-1").key("a.json", info)
    assert same == ParseCache(store, "x", "contract-1", "reader-1").key("a.json", info)
    assert same != ParseCache(store, "x", "contract-2", "reader-1").key("a.json", info)
    assert same != ParseCache(store, "x", "contract-1", "reader-2").key("a.json", info)
    assert same != ParseCache(store, "x", "contract-1", "reader-1").key("b.json", info)


def test_a_damaged_entry_is_parsed_again(starter: Path, tmp_path: Path) -> None:
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    shutil.copytree(starter, landing)
    assert parsed_and_reused(lake, landing)["accelerometer"] == (9, 0)
    entries = sorted((lake / "_stedi" / "parsed" / "accelerometer").glob("*.parquet"))
    entries[0].write_bytes(b"PAR1 torn")  # rows that do not decode
    entries[1].with_suffix(".json").write_text("{")  # a record that is not JSON
    (landing / "accelerometer" / "landing" / "new.json").write_bytes(b"")  # so the run reads accelerometer

    assert parsed_and_reused(lake, landing) == {"accelerometer": (3, 7)}
    assert_same_as_a_full_rebuild(lake, landing, tmp_path / "scratch")


def test_looking_for_missing_entries_leaves_no_reference_cycle(tmp_path: Path) -> None:
    """A missing file's exception, kept with its traceback, held every caller's frame and locals (a run's
    landing frames: 0.6 GiB at scale 100) in a cycle until the cyclic collector happened to run."""
    store = open_store(str(tmp_path))
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds stays in gc.garbage, to be looked at
    try:
        found = store.read_many_if_exists([store.path("a.parquet"), store.path("b.json")])
        assert found == {store.path("a.parquet"): None, store.path("b.json"): None}
        del found
        gc.collect()
        # Nothing of this call was left for the cyclic collector: no exception of a missing file and no
        # frame of the storage layer. (Other threads, left running by earlier tests, may leave cycles of
        # their own meanwhile; those are not this call's.)
        left = [
            o
            for o in gc.garbage
            if isinstance(o, FileNotFoundError)
            or (isinstance(o, types.FrameType) and o.f_code.co_filename.endswith("lake/storage.py"))
        ]
        assert not left, left[:5]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_a_reused_parse_brings_its_checks_and_its_rows_are_not_read(
    starter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cron run reads nothing of the files it has parsed before but their records and Parquet footers: a
    dataset whose rules are all rules of one row gets its report from the files' kept checks."""
    from stedi_etl.landing import read as reader

    landing, lake = open_store(str(starter)), open_store(str(tmp_path))

    def read() -> reader.LandingRead:
        cache = ParseCache(lake, lake.path("parsed"), "contract", "code")
        return reader.read_landing(landing, "accelerometer", cache=cache, day_column="timestamp")

    first = read()
    assert not any(f.reused for f in first.files) and first.report.ok

    def no_whole_check(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the dataset's rows were read back to be checked")

    monkeypatch.setattr(reader, "check_frame", no_whole_check)
    second = read()
    assert all(f.reused for f in second.files)
    assert (second.report.rows, second.report.errors, second.report.warnings) == (
        first.report.rows,
        first.report.errors,
        first.report.warnings,
    )
    assert second.report.rows == first.rows == 81_273
