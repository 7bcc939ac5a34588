"""A full disk: the run fails in one clear line per error, leaves no temporary file behind, and the next run
(with room again) records the failed one as ended and builds the lake.

The lake is a real tmpfs of a few hundred KiB, mounted in a private mount namespace (`unshare -rm`: no
privilege needed where user namespaces are allowed, and nothing outside the test sees it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, STARTER_COUNTS

pytestmark = pytest.mark.slow

SCRIPT = """
set -u
mount -t tmpfs -o size={size} tmpfs {lake} || exit 97
{python} -m stedi_etl run-all --landing {landing} --lake {lake} -q 2> {out}/full.err
echo $? > {out}/full.rc
find {lake} -name '*.tmp-*' > {out}/leftovers
mount -o remount,size=64m {lake}
{python} -m stedi_etl run-all --landing {landing} --lake {lake} --json > {out}/after.json 2> {out}/after.err
echo $? > {out}/after.rc
{python} -m stedi_etl runs --lake {lake} --json > {out}/runs.json
"""


def in_private_mounts(script: str) -> None:
    """Run a shell script in a mount namespace of its own, where it may mount what it likes."""
    assert shutil.which("unshare"), "util-linux's unshare is needed to mount a private tmpfs"
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("size", ["256k", "1m"])
def test_a_full_disk_fails_the_run_in_clear_lines_and_the_next_run_settles_it(
    starter: Path, tmp_path: Path, size: str
) -> None:
    lake, out = tmp_path / "lake", tmp_path / "out"
    lake.mkdir()
    out.mkdir()
    script = SCRIPT.format(size=size, lake=lake, landing=starter, out=out, python=sys.executable)
    in_private_mounts(script)
    assert (out / "full.rc").read_text().strip() == "1"
    errors = (out / "full.err").read_text().splitlines()
    assert errors and all(line.startswith("error: cannot write ") for line in errors[:1]), errors
    assert all(line.startswith("error: ") and line.endswith("No space left on device") for line in errors)
    assert not any("unexpected" in line or "Traceback" in line for line in errors)
    assert (out / "leftovers").read_text() == ""  # no <file>.tmp-<hex> left by a write that failed
    # Room again: the next run builds the lake, and no run is left recorded as still going.
    assert (out / "after.rc").read_text().strip() == "0", (out / "after.err").read_text()
    after = json.loads((out / "after.json").read_text())
    assert {t["table"]: t["rows"] for t in after["tables"]} == STARTER_COUNTS
    runs = json.loads((out / "runs.json").read_text())["runs"]
    assert runs[-1]["status"] == "succeeded" and runs[-1]["run_id"] == after["run_id"]  # oldest first
    assert all(r["status"] in ("succeeded", "failed", "interrupted") for r in runs), runs


def test_a_read_only_lake_fails_in_one_clear_line(starter: Path, tmp_path: Path) -> None:
    lake, out = tmp_path / "lake", tmp_path / "out"
    lake.mkdir()
    out.mkdir()
    script = (
        f"mount --bind {lake} {lake} && mount -o remount,bind,ro {lake} || exit 97\n"
        f"{sys.executable} -m stedi_etl run-all --landing {starter} --lake {lake} -q 2> {out}/err\n"
        f"echo $? > {out}/rc\n"
    )
    in_private_mounts(script)
    assert (out / "rc").read_text().strip() == "1"
    assert (out / "err").read_text() == f"error: cannot lock {lake}: Read-only file system\n"
