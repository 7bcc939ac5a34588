"""What a run records of a landing file is what it read: a file rewritten in place while runs read it, with
its modification time put back (as `rsync --inplace -t` leaves it), never yields a published version short
of rows, and the run after the writer stops builds the right lake without --full-refresh.
"""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from pathlib import Path

import pytest

from stedi_etl.errors import LandingError
from stedi_etl.lake.tables import Lake
from stedi_etl.run.runner import run
from tests.conftest import STARTER_COUNTS

pytestmark = pytest.mark.slow

READING_TABLES = ("step_trainer_trusted", "machine_learning_curated")


class InPlaceWriter:
    """Rewrites ``paths`` over and over with their own bytes, in place: truncated, written back in chunks,
    the modification time restored. A reader can find a file empty or half written, with the size and
    modification time it had before."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.contents = {path: path.read_bytes() for path in paths}
        self.stop = threading.Event()
        self.rewrites = 0
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        chance = random.Random(7)
        while not self.stop.is_set():
            for path in self.paths:
                before = path.stat()
                with path.open("r+b") as handle:
                    handle.truncate(0)
                    handle.flush()
                    data = self.contents[path]
                    for start in range(0, len(data), 64 * 1024):
                        handle.write(data[start : start + 64 * 1024])
                        handle.flush()
                        time.sleep(0.002)
                os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
                self.rewrites += 1
            self.stop.wait(chance.uniform(0.0, 0.3))  # now and then quiet long enough for a whole read

    def __enter__(self) -> InPlaceWriter:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def test_a_file_rewritten_in_place_during_runs_never_publishes_a_short_lake(
    starter: Path, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(starter, landing)
    lake = tmp_path / "lake"
    rewritten = sorted((landing / "step_trainer" / "landing").glob("*.json"))[:2]
    published = refused = 0
    with InPlaceWriter(rewritten) as writer:
        deadline = time.monotonic() + 25
        runs = 0
        while time.monotonic() < deadline and runs < 12:
            runs += 1
            try:
                result = run(str(landing), str(lake), full_refresh=True)
            except LandingError as err:  # a file that kept changing as it was read: the run refused it
                assert "changed while it was read" in str(err) or "disappeared" in str(err), err
                refused += 1
                continue
            assert result.ok, [(t.table, t.reason) for t in result.failed]
            published += 1
            # The version this run published, as every reader gets it: never short of rows.
            current = Lake.of(str(lake))
            for table in READING_TABLES:
                assert current.read(table).height == STARTER_COUNTS[table], (table, runs)
    assert writer.rewrites > runs, "the writer did not keep up with the runs"
    assert published + refused == runs and published >= 1, (published, refused)
    # The writer stopped: the next run (no --full-refresh) gives the right lake.
    after = run(str(landing), str(lake))
    assert after.ok
    current = Lake.of(str(lake))
    assert {t: current.read(t).height for t in STARTER_COUNTS} == STARTER_COUNTS
