"""The Delta table layer (stedi_etl/lake/delta.py): files written through the storage layer, one commit per
publish, every version readable by stedi-etl and by plain Delta readers, locally and on S3 (moto's server).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from stedi_etl.errors import LakeError, StorageError
from stedi_etl.lake import delta
from stedi_etl.lake.storage import Store, open_store
from tests.conftest import REPO

pytest_plugins = ["tests.s3_fixtures"]

FIRST = pl.DataFrame(
    {"sensorReadingTime": [1, 2, 3], "serialNumber": ["a", "b", None], "distanceFromObject": [1.5, None, 3.0]}
)
SECOND = pl.DataFrame(
    {"sensorReadingTime": [7, 8], "serialNumber": ["c", "d"], "distanceFromObject": [7.0, 8.0]}
)


def publish(store: Store, table_dir: str, frame: pl.DataFrame, run_id: str) -> int:
    written = delta.write_file(store, table_dir, frame, f"part-00000-{run_id}.parquet")
    record = {"run_id": run_id, "rows": frame.height, "contract_sha256": "c0ffee", "fingerprint": run_id * 2}
    return delta.commit(store, table_dir, [written], frame.head(0).to_arrow().schema, record)


def rows(frame: pl.DataFrame) -> list[tuple[object, ...]]:
    return sorted(frame.rows(), key=repr)


def test_each_publish_is_one_version_that_every_reader_sees_whole(tmp_path: Path) -> None:
    from deltalake import DeltaTable

    store = open_store(str(tmp_path / "lake"))
    table_dir = store.path("step_trainer", "curated")
    assert delta.version(store, table_dir) is None and delta.history(store, table_dir) == []
    assert publish(store, table_dir, FIRST, "run-1") == 0
    assert publish(store, table_dir, SECOND, "run-2") == 1

    assert rows(delta.read(store, table_dir)) == rows(SECOND)
    assert rows(delta.read(store, table_dir, at_version=0)) == rows(FIRST)
    # Readers that know nothing of stedi-etl, at the fixed location.
    location = str(tmp_path / "lake" / "step_trainer" / "curated")
    assert rows(pl.scan_delta(location).collect()) == rows(SECOND)
    assert rows(pl.read_delta(location, version=0)) == rows(FIRST)
    assert DeltaTable(location).version() == 1
    # The add action carries the statistics, row count included (read from the log: no pyarrow here).
    log = (tmp_path / "lake" / "step_trainer" / "curated" / "_delta_log" / f"{1:020d}.json").read_text()
    adds = [json.loads(line)["add"] for line in log.splitlines() if '"add"' in line]
    assert [json.loads(a["stats"])["numRecords"] for a in adds] == [2]

    commits = delta.history(store, table_dir)
    assert [c.version for c in commits] == [1, 0]
    assert [c.record["run_id"] for c in commits] == ["run-2", "run-1"]
    assert commits[0].record["rows"] == 2 and commits[0].operation


def test_a_commit_naming_a_file_that_is_not_there_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    table_dir = store.path("customer", "trusted")
    publish(store, table_dir, FIRST, "run-1")
    written = delta.write_file(store, table_dir, SECOND, "part-00000-run-2.parquet")
    schema = SECOND.head(0).to_arrow().schema
    missing = delta.DataFile("part-00000-gone.parquet", written.size, 2, written.stats)
    with pytest.raises(LakeError, match=r"part-00000-gone\.parquet is missing"):
        delta.commit(store, table_dir, [missing], schema, {"run_id": "run-2"})
    wrong_size = delta.DataFile(written.path, written.size + 1, 2, written.stats)
    with pytest.raises(LakeError, match=rf"{written.size} bytes, not {written.size + 1}"):
        delta.commit(store, table_dir, [wrong_size], schema, {"run_id": "run-2"})
    assert delta.version(store, table_dir) == 0
    assert rows(delta.read(store, table_dir)) == rows(FIRST)


def test_vacuum_removes_only_what_no_retained_version_needs(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    table_dir = store.path("customer", "trusted")
    publish(store, table_dir, FIRST, "run-1")
    publish(store, table_dir, SECOND, "run-2")
    assert delta.vacuum(store, table_dir) == []  # within the default week, the first version is kept
    assert rows(delta.read(store, table_dir, at_version=0)) == rows(FIRST)
    removed = delta.vacuum(store, table_dir, retention_hours=0)
    assert removed == ["part-00000-run-1.parquet"]
    assert rows(delta.read(store, table_dir)) == rows(SECOND)
    with pytest.raises(StorageError, match="at version 0"):
        delta.read(store, table_dir, at_version=0)


def test_statistics_count_rows_and_nulls_and_leave_out_what_cannot_bound() -> None:
    frame = pl.DataFrame(
        {
            "n": [3, None, 1],
            "x": [float("nan"), 2.5, float("inf")],
            "short": ["b", "a", None],
            "long": ["x" * 40, "y", "z"],
            "flag": [True, False, None],
        }
    )
    stats = json.loads(delta.statistics(frame))
    assert stats["numRecords"] == 3
    assert stats["nullCount"] == {"n": 1, "x": 0, "short": 1, "long": 0, "flag": 1}
    assert stats["minValues"] == {"n": 1, "x": 2.5, "short": "a"}
    assert stats["maxValues"] == {"n": 3, "x": 2.5, "short": "b"}
    assert json.loads(delta.statistics(frame.clear()))["minValues"] == {}


def test_reading_a_table_does_not_abort_the_interpreter_at_exit(tmp_path: Path) -> None:
    """Reads through pyarrow's datasets aborted at exit in 25-70 % of runs (FACTS.md); Polars' reader does
    not. Three processes each read both versions and must exit 0."""
    store = open_store(str(tmp_path))
    table_dir = store.path("customer", "trusted")
    publish(store, table_dir, FIRST, "run-1")
    publish(store, table_dir, SECOND, "run-2")
    reader = (
        "import sys\n"
        "from stedi_etl.lake import delta\n"
        "from stedi_etl.lake.storage import open_store\n"
        "store = open_store(sys.argv[1])\n"
        "d = store.path('customer', 'trusted')\n"
        "assert delta.read(store, d).height == 2 and delta.read(store, d, at_version=0).height == 3\n"
    )
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", reader, str(tmp_path)],
            cwd=REPO,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()


@pytest.mark.s3
def test_on_s3_both_versions_read_back_through_plain_delta_readers(s3: object) -> None:
    from tests.s3_fixtures import S3

    assert isinstance(s3, S3)
    store = open_store(s3.uri("lake"), endpoint_url=s3.endpoint)
    table_dir = store.path("step_trainer", "curated")
    assert publish(store, table_dir, FIRST, "run-1") == 0
    assert publish(store, table_dir, SECOND, "run-2") == 1
    location = s3.uri("lake", "step_trainer", "curated")
    options = store.polars_options()
    assert options["AWS_ENDPOINT_URL"] == s3.endpoint and options["AWS_ALLOW_HTTP"] == "true"
    assert rows(pl.scan_delta(location, storage_options=options).collect()) == rows(SECOND)
    assert rows(pl.scan_delta(location, version=0, storage_options=options).collect()) == rows(FIRST)
    assert [c.record["run_id"] for c in delta.history(store, table_dir)] == ["run-2", "run-1"]
    keys = s3.keys("lake/step_trainer/curated/")
    assert "lake/step_trainer/curated/_delta_log/00000000000000000001.json" in keys
