"""Incremental runs (the job-bookmark equivalent) and the run manifest: only what changed is rebuilt, the
result always equals a full rebuild, and every run is recorded in the lake."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stedi_etl import __version__
from stedi_etl.cli import main
from stedi_etl.lake.storage import Store
from stedi_etl.lake.tables import Lake
from stedi_etl.run import runner as pipeline
from stedi_etl.run.runner import RunOptions
from tests.conftest import REPO, write_landing

SAMPLE = REPO / "fixtures" / "sample"
TABLES = [step.table for step in pipeline.STEPS]
QUARANTINES = ["customer_quarantine", "accelerometer_quarantine", "step_trainer_quarantine"]


def copy_landing(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def statuses(result: pipeline.RunResult) -> dict[str, str]:
    return {t.table: t.status for t in result.tables + result.quarantines}


def table_files(lake: Path) -> dict[str, bytes]:
    """Every table file and pointer of a lake with its bytes; stedi-etl's own records (_stedi) aside."""
    return {
        str(p.relative_to(lake)): p.read_bytes()
        for p in sorted(lake.rglob("*"))
        if p.is_file() and p.relative_to(lake).parts[0] != "_stedi"
    }


def lake_tables(lake: Path) -> dict[str, pl.DataFrame]:
    the_lake = Lake(Store(str(lake)))
    return {name: the_lake.read(name) for name in TABLES + QUARANTINES}


def assert_same_tables(got: dict[str, pl.DataFrame], expected: dict[str, pl.DataFrame]) -> None:
    assert got.keys() == expected.keys()
    for name, frame in expected.items():
        # A quarantine's file names hold the landing root, which differs.
        drop = ["sourceFile"] if name.endswith("_quarantine") else []
        assert got[name].drop(drop).equals(frame.drop(drop)), name


def new_readings(landing: Path, name: str, shift_ms: int, count: int = 40) -> Path:
    """A new accelerometer file: readings of existing (consenting or not) users at new instants."""
    source = sorted((landing / "accelerometer" / "landing").iterdir())[0]
    records = [json.loads(line) for line in source.read_text().splitlines()[:count] if line.strip()]
    lines = [json.dumps({**r, "timestamp": r["timestamp"] + shift_ms}) for r in records]
    return write_landing(landing, "accelerometer", name, "\n".join(lines) + "\n")


def test_a_new_landing_file_rebuilds_exactly_what_depends_on_it(starter: Path, tmp_path: Path) -> None:
    landing = copy_landing(starter, tmp_path / "landing")
    lake = tmp_path / "lake"
    first = pipeline.run(str(landing), str(lake))
    assert set(statuses(first).values()) == {"published"}

    new_readings(landing, "new-readings.json", shift_ms=7)
    second = pipeline.run(str(landing), str(lake))

    assert second.ok
    assert statuses(second) == {
        "customer_quarantine": "up_to_date",
        "accelerometer_quarantine": "published",
        "step_trainer_quarantine": "up_to_date",
        "customer_trusted": "up_to_date",
        "accelerometer_trusted": "published",
        "customer_curated": "published",
        # customer_curated came out byte for byte as before, so the step-trainer table, which needs only it
        # and its own landing files, is up to date: rebuilding it could not change it.
        "step_trainer_trusted": "up_to_date",
        "machine_learning_curated": "published",
    }
    # Only the changed dataset was read.
    assert [(s.dataset, s.read) for s in second.landing_results] == [
        ("customer", False),
        ("accelerometer", True),
        ("step_trainer", False),
    ]
    counts = {t.table: t.rows for t in second.tables}
    assert counts["accelerometer_trusted"] > 40981

    full = pipeline.run(str(landing), str(tmp_path / "full"), full_refresh=True)
    assert full.ok
    assert_same_tables(lake_tables(lake), lake_tables(tmp_path / "full"))


def test_a_run_with_nothing_changed_writes_no_table(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    pipeline.run(str(SAMPLE), str(lake))
    before = table_files(lake)

    again = CliRunner().invoke(main, ["run-all", "--landing", str(SAMPLE), "--lake", str(lake)])

    assert again.exit_code == 0, again.output
    assert "tables: 0 published, 5 up to date, 0 failed; quarantines: 3 up to date" in again.stdout
    assert table_files(lake) == before  # not a byte of any table or pointer written
    runs = sorted((lake / "_stedi" / "runs").glob("*.json"))
    assert len(runs) == 2  # the run itself is still recorded
    manifest = json.loads(runs[-1].read_text())
    assert manifest["status"] == "succeeded"
    assert {t["status"] for t in manifest["tables"] + manifest["quarantines"]} == {"up_to_date"}


def test_options_contract_and_code_decide_what_is_up_to_date(tmp_path: Path, monkeypatch) -> None:
    lake = tmp_path / "lake"
    pipeline.run(str(SAMPLE), str(lake))

    timestamp_join = pipeline.run(str(SAMPLE), str(lake), options=RunOptions(ml_join="timestamp"))
    assert [t.table for t in timestamp_join.tables if t.status == "published"] == ["machine_learning_curated"]

    cutoff = pipeline.run(
        str(SAMPLE), str(lake), options=RunOptions(ml_join="timestamp", consent_cutoff=True)
    )
    rebuilt = {t.table for t in cutoff.tables if t.status == "published"}
    assert "accelerometer_trusted" in rebuilt and "customer_trusted" not in rebuilt

    # A new stedi-etl (or Polars) rebuilds everything, since its code may build tables differently.
    monkeypatch.setattr(pipeline, "code_fingerprint", lambda: "another release")
    upgraded = pipeline.run(
        str(SAMPLE), str(lake), options=RunOptions(ml_join="timestamp", consent_cutoff=True)
    )
    assert set(statuses(upgraded).values()) == {"published"}


def test_a_removed_or_rewritten_landing_file_is_noticed(tmp_path: Path) -> None:
    landing = copy_landing(SAMPLE, tmp_path / "landing")
    lake = tmp_path / "lake"
    pipeline.run(str(landing), str(lake))
    files = sorted((landing / "accelerometer" / "landing").iterdir())

    files[0].unlink()
    removed = pipeline.run(str(landing), str(lake))
    assert statuses(removed)["accelerometer_trusted"] == "published"

    text = files[1].read_text()
    files[1].write_text(text.replace('"x": ', '"x":', 1) if '"x": ' in text else text + "\n")
    rewritten = pipeline.run(str(landing), str(lake))
    assert statuses(rewritten)["accelerometer_quarantine"] == "published"

    pipeline.run(str(landing), str(tmp_path / "full"))
    assert_same_tables(lake_tables(lake), lake_tables(tmp_path / "full"))


# --- the result always equals a full rebuild ----------------------------------------------------------------

EMAILS = [f"c{i}@test.com" for i in range(6)]
T0 = 1655564000000  # 2022-06-18 14:53 UTC
STEP_MS = 10 * 3_600_000  # readings 10 hours apart: the tables built by day get several days to keep or build


def customer_line(i: int, consent: bool) -> str:
    return json.dumps(
        {
            "customerName": f"Customer {i}",
            "email": EMAILS[i],
            "phone": "8015551212",
            "birthDay": "1990-01-01",
            "serialNumber": f"serial-{i % 4}",
            "registrationDate": T0 - 10_000,
            "lastUpdateDate": T0 - 5_000,
            "shareWithResearchAsOfDate": T0 - 1_000 if consent else None,
            "shareWithPublicAsOfDate": None,
            "shareWithFriendsAsOfDate": None,
        }
    )


readings = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 6)), min_size=1, max_size=6)
changes = st.lists(
    st.one_of(
        st.tuples(st.just("add_accelerometer"), readings),
        st.tuples(st.just("add_steps"), readings),
        st.tuples(st.just("remove"), st.integers(0, 10)),
        st.tuples(st.just("consent"), st.lists(st.booleans(), min_size=6, max_size=6)),
        st.tuples(st.just("options"), st.sampled_from(["same-customer", "timestamp"]), st.booleans()),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=changes)
def test_an_incremental_run_always_equals_a_full_rebuild(
    tmp_path_factory: pytest.TempPathFactory, changes: list[tuple]
) -> None:
    """Every run keeps its parses (landing/cache.py), so this covers the parse cache too: files added,
    removed, and rewritten in place (the customer file, on a consent change)."""
    root = tmp_path_factory.mktemp("incremental")
    landing, lake = root / "landing", root / "lake"
    write_landing(landing, "customer", "c.json", "\n".join(customer_line(i, i % 2 == 0) for i in range(6)))
    write_landing(landing, "accelerometer", "a-0.json", accelerometer_text([(0, 0), (2, 1)]))
    write_landing(landing, "step_trainer", "s-0.json", steps_text([(0, 0)]))
    options = RunOptions()
    assert pipeline.run(str(landing), str(lake), options=options).ok
    for number, change in enumerate(changes, start=1):
        kind = change[0]
        if kind == "add_accelerometer":
            write_landing(landing, "accelerometer", f"a-{number}.json", accelerometer_text(change[1]))
        elif kind == "add_steps":
            write_landing(landing, "step_trainer", f"s-{number}.json", steps_text(change[1]))
        elif kind == "remove":  # a landing file, where its dataset keeps another
            removable = [
                path
                for folder in ("accelerometer", "step_trainer")
                for files in [sorted((landing / folder / "landing").iterdir())]
                if len(files) > 1
                for path in files
            ]
            if removable:
                removable[change[1] % len(removable)].unlink()
        elif kind == "consent":
            text = "\n".join(customer_line(i, consent) for i, consent in enumerate(change[1]))
            write_landing(landing, "customer", "c.json", text)
        else:
            options = RunOptions(ml_join=change[1], consent_cutoff=change[2])
        incremental = pipeline.run(str(landing), str(lake), options=options)
        full = pipeline.run(str(landing), str(root / f"full-{number}"), options=options)
        assert incremental.ok == full.ok
        if full.ok:
            assert_same_tables(lake_tables(lake), lake_tables(root / f"full-{number}"))


def accelerometer_text(pairs: list[tuple[int, int]]) -> str:
    return "\n".join(
        json.dumps({"user": EMAILS[who], "timestamp": T0 + STEP_MS * at, "x": 1.0, "y": 2.0, "z": float(who)})
        for who, at in pairs
    )


def steps_text(pairs: list[tuple[int, int]]) -> str:
    return "\n".join(
        json.dumps(
            {
                "sensorReadingTime": T0 + STEP_MS * at,
                "serialNumber": f"serial-{who % 4}",
                "distanceFromObject": at,
            }
        )
        for who, at in pairs
    )


# --- the run manifest and `stedi-etl runs` ------------------------------------------------------------------


def test_the_manifest_records_the_run_its_inputs_and_each_table(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    result = pipeline.run(str(SAMPLE), str(lake), options=RunOptions(ml_join="timestamp"))
    manifest = json.loads((lake / "_stedi" / "runs" / f"{result.run_id}.json").read_text())

    assert manifest["format"] == "stedi-etl/run/1"
    assert manifest["run_id"] == result.run_id
    assert manifest["status"] == "succeeded" and manifest["ok"] is True
    assert manifest["stedi_etl_version"] == __version__
    assert manifest["started_at"] <= manifest["ended_at"]
    assert manifest["options"] == {"ml_join": "timestamp", "consent_cutoff": False, "consent": "per-record"}
    tables = {t["table"]: t for t in manifest["tables"] + manifest["quarantines"]}
    assert set(tables) == set(TABLES + QUARANTINES)
    the_lake = Lake(Store(str(lake)))
    for name, table in tables.items():
        pointer = the_lake.pointer(name)
        assert table["status"] == "published"
        assert (table["version"], table["rows"]) == (pointer.version, pointer.rows)
        assert table["files"] == list(pointer.files)
        assert table["contract_sha256"] == pointer.contract_sha256
        assert table["fingerprint"] == pointer.fingerprint
    landing_files = {str(p) for p in (SAMPLE / "accelerometer" / "landing").iterdir()}
    inputs = tables["accelerometer_trusted"]["inputs"]
    assert {i["path"] for i in inputs if "path" in i} == landing_files
    for i in inputs:
        if "path" in i:
            assert i["size"] == Path(i["path"]).stat().st_size and i["stamp"].startswith("mtime:")
            assert f" ctime:{Path(i['path']).stat().st_ctime}" in i["stamp"]  # what no tool can set back
    assert {i["table"] for i in inputs if "table" in i} == {"customer_trusted"}


def test_runs_lists_every_run_as_text_and_json(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    first = pipeline.run(str(SAMPLE), str(lake))
    second = pipeline.run(str(SAMPLE), str(lake))
    runner = CliRunner()

    text = runner.invoke(main, ["runs", "--lake", str(lake)])
    assert text.exit_code == 0, text.output
    assert first.run_id in text.stdout and second.run_id in text.stdout
    # Counted as run-all counts: the five tables apart from the three quarantines.
    assert "tables: 5 published, 0 up to date, 0 failed; quarantines: 3 published" in text.stdout
    assert "tables: 0 published, 5 up to date, 0 failed; quarantines: 3 up to date" in text.stdout

    as_json = runner.invoke(main, ["runs", "--lake", str(lake), "--json", "--last", "1"])
    assert as_json.exit_code == 0
    document = json.loads(as_json.stdout)
    assert [r["run_id"] for r in document["runs"]] == [second.run_id]
    assert document["runs"][0]["status"] == "succeeded"

    missing = runner.invoke(main, ["runs", "--lake", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: no lake at ") and "Traceback" not in missing.output
    bad = runner.invoke(main, ["runs", "--lake", str(lake), "--last", "0"])
    assert bad.exit_code == 2
