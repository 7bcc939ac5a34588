"""One writer per lake: a second run fails fast naming the holder or waits; a dead holder's lock is taken
over; on S3 the lock is a conditional write with a lease."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from stedi_etl.cli import main
from stedi_etl.errors import LockError
from stedi_etl.lake import lock as lake_lock
from stedi_etl.lake.storage import Store
from stedi_etl.lake.tables import Lake
from stedi_etl.run import runner as pipeline
from tests.conftest import REPO
from tests.conftest import STEDI_2022_COUNTS as STEDI_2022

if TYPE_CHECKING:
    from tests.s3_fixtures import S3

pytest_plugins = ["tests.s3_fixtures"]

SAMPLE = REPO / "fixtures" / "sample"


def hold(lake: Path, run_id: str = "20260101T000000000Z-holder") -> lake_lock.LakeLock:
    the_lake = Lake(Store(str(lake)))
    return lake_lock.acquire(the_lake.store, the_lake.meta_path("lock"), run_id, lake=str(lake))


def test_a_second_run_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    held = hold(lake)
    try:
        started = time.monotonic()
        result = CliRunner().invoke(main, ["run-all", "--landing", str(SAMPLE), "--lake", str(lake)])
        assert time.monotonic() - started < 5
    finally:
        held.release()
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"error: lake {lake} is locked by run 20260101T000000000Z-holder (pid {os.getpid()}"
    )
    assert "--wait SECONDS" in lines[0]
    assert not (lake / "customer").exists()  # nothing written

    after = CliRunner().invoke(main, ["run-all", "--landing", str(SAMPLE), "--lake", str(lake), "-q"])
    assert after.exit_code == 0, after.output  # released: the next run goes ahead


def test_wait_lets_a_run_queue_behind_the_holder(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    held = hold(lake)
    threading.Timer(0.8, held.release).start()
    started = time.monotonic()
    result = pipeline.run(str(SAMPLE), str(lake), wait=30)
    assert result.ok
    assert time.monotonic() - started >= 0.7

    held = hold(lake)
    try:
        with pytest.raises(LockError, match=r"locked by run .*; waited 0\.3s$"):
            pipeline.run(str(SAMPLE), str(lake), wait=0.3)
    finally:
        held.release()


def test_a_run_that_waited_is_named_when_it_got_the_lock_not_before(tmp_path: Path) -> None:
    """Run ids sort by time and `catalog` names the newest as the one whose data is current: a run that
    waited for another must be named after it."""
    from stedi_etl.lake.tables import new_run_id

    lake = tmp_path / "lake"
    held = hold(lake)
    before_waiting = new_run_id()
    released: list[str] = []

    def release() -> None:
        released.append(new_run_id())
        held.release()

    threading.Timer(0.5, release).start()
    result = pipeline.run(str(SAMPLE), str(lake), wait=30)
    assert result.ok
    # Named once it held the lock: not before the release (ids hold the time to the millisecond; within
    # one millisecond their random parts decide, so the times are compared).
    moment = [run_id.split("-", 1)[0] for run_id in (before_waiting, released[0], result.run_id)]
    assert moment[0] < moment[1] <= moment[2], moment
    listed = CliRunner().invoke(main, ["runs", "--lake", str(lake), "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)["runs"][0]["run_id"] == result.run_id


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    pipeline.run(str(SAMPLE), str(lake))
    # A run that took the lock and was killed before it finished: its lock file still names it.
    takes_the_lock_and_dies = (
        "import os, signal, sys\n"
        "from stedi_etl.lake import lock\n"
        "from stedi_etl.lake.tables import Lake\n"
        "from stedi_etl.lake.storage import Store\n"
        "lake = Lake(Store(sys.argv[1]))\n"
        "lock.acquire(lake.store, lake.meta_path('lock'), '20260101T000000000Z-killed')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child = subprocess.run([sys.executable, "-c", takes_the_lock_and_dies, str(lake)], cwd=REPO, check=False)
    assert child.returncode == -9
    assert json.loads((lake / "_stedi" / "lock").read_text())["run_id"] == "20260101T000000000Z-killed"

    result = CliRunner().invoke(
        main, ["run-all", "--landing", str(SAMPLE), "--lake", str(lake), "--full-refresh"]
    )

    assert result.exit_code == 0, result.output
    assert "took over the lock of run 20260101T000000000Z-killed" in result.output
    interrupted = json.loads((lake / "_stedi" / "runs" / "20260101T000000000Z-killed.json").read_text())
    assert interrupted["status"] == "interrupted"
    assert (lake / "_stedi" / "lock").read_bytes() == b""  # released


def test_a_lake_path_that_is_a_file_is_refused_before_locking(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.write_text("not a folder")
    result = CliRunner().invoke(main, ["run-all", "--landing", str(SAMPLE), "--lake", str(lake)])
    assert result.exit_code == 2
    assert result.stderr == f"error: lake {lake} is a file, not a folder\n"
    assert lake.read_text() == "not a folder"


@pytest.mark.slow
def test_two_runs_started_together_one_runs_the_other_reports_the_lock(
    stedi_2022: Path, tmp_path: Path
) -> None:
    """Ten times over: two run-all processes on one lake; when they overlap exactly one gets the lock, and
    the lake always ends right. Two runs that did not overlap (one finished before the other asked for the
    lock, as a loaded machine can start them a second apart) both succeed and prove nothing, so most of
    the ten must overlap."""
    lake = tmp_path / "lake"
    command = [
        sys.executable,
        "-m",
        "stedi_etl",
        "run-all",
        "--landing",
        str(stedi_2022),
        "--lake",
        str(lake),
    ]
    overlapped = commits = 0
    for attempt in range(10):
        # A full refresh, so each run holds the lock for a whole build (a second or so) and the two overlap.
        runs = [
            subprocess.Popen(
                [*command, "-q", "--full-refresh"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(2)
        ]
        outcomes = [(p.wait(timeout=120), p.stderr.read().decode()) for p in runs]  # type: ignore[union-attr]
        codes = sorted(code for code, _err in outcomes)
        assert codes in ([0, 1], [0, 0]), (attempt, outcomes)
        if codes == [0, 1]:
            overlapped += 1
            refused = next(err for code, err in outcomes if code == 1)
            assert refused.startswith(f"error: lake {lake} is locked by run "), refused
            assert len(refused.strip().splitlines()) == 1
        commits += codes.count(0)
        the_lake = Lake(Store(str(lake)))
        assert {table: the_lake.read(table).height for table in STEDI_2022} == STEDI_2022
        # One commit per table and quarantine for each run that got the lock, never two at once.
        assert {p.version for p in the_lake.tables().values()} == {commits - 1}, (attempt, outcomes)
    assert overlapped >= 6, f"only {overlapped} of 10 attempts overlapped"


# --- S3: conditional writes and a lease ---------------------------------------------------------------------


@pytest.mark.s3
def test_on_s3_the_lock_is_exclusive_and_released(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    store = Store(s3.uri("lake"))
    path = store.path("_stedi", "lock")
    first = lake_lock.acquire(store, path, "20260101T000000000Z-first", lake=s3.uri("lake"))
    holder = json.loads(s3.get("lake/_stedi/lock"))
    assert holder["run_id"] == "20260101T000000000Z-first" and holder["expires"]

    with pytest.raises(LockError, match=r"is locked by run 20260101T000000000Z-first \(pid"):
        lake_lock.acquire(store, path, "20260101T000000000Z-second", lake=s3.uri("lake"))
    first.confirm()  # still ours: the lease renews
    first.release()
    assert "lake/_stedi/lock" not in s3.keys("lake/")

    second = lake_lock.acquire(store, path, "20260101T000000000Z-second", lake=s3.uri("lake"))
    second.release()


@pytest.mark.s3
def test_on_s3_an_expired_lease_is_taken_over_and_its_holder_cannot_publish(
    s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    store = Store(s3.uri("lake"))
    path = store.path("_stedi", "lock")
    stalled = lake_lock.acquire(store, path, "20260101T000000000Z-stalled", lake=s3.uri("lake"))
    # The holder stalls past its lease (on another host, so only the lease can tell).
    expired = {
        **json.loads(s3.get("lake/_stedi/lock")),
        "host": "elsewhere",
        "expires": (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="seconds"),
    }
    s3.client().put_object(Bucket=s3.bucket, Key="lake/_stedi/lock", Body=json.dumps(expired).encode())

    taker = lake_lock.acquire(store, path, "20260101T000000000Z-taker", lake=s3.uri("lake"))
    assert taker.took_over is not None and taker.took_over.run_id == "20260101T000000000Z-stalled"
    with pytest.raises(LockError, match="lost the lock"):
        stalled.confirm()  # the stalled run must not publish now
    stalled.release()  # and must not delete the new holder's lock
    assert json.loads(s3.get("lake/_stedi/lock"))["run_id"] == "20260101T000000000Z-taker"
    taker.release()


@pytest.mark.s3
def test_on_s3_two_runs_on_one_lake_one_is_refused(s3: S3, starter: Path) -> None:
    lake = s3.uri("lake")
    store = Store(lake, endpoint_url=s3.endpoint)
    held = lake_lock.acquire(store, store.path("_stedi", "lock"), "20260101T000000000Z-other", lake=lake)
    try:
        result = CliRunner().invoke(
            main,
            ["run-all", "--landing", str(starter), "--lake", lake, "--s3-endpoint-url", s3.endpoint],
        )
    finally:
        held.release()
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: lake {lake} is locked by run 20260101T000000000Z-other")
    assert not [k for k in s3.keys("lake/") if not k.startswith("lake/_stedi/")]
