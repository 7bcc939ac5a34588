"""Links and files not read: one policy, every file not read listed with its reason.

A link is read as the file it names when that is a regular file inside the landing root; any other link
(outside the root, to /etc/passwd, to nothing, a loop, to a folder), a pipe, and a hidden file (".x", "_x")
is not read, and the run's output, its --json and manifest, and `validate --landing` list each with why.
Before, every link failed the whole run as "a link to nothing", and hidden files were skipped unmentioned.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from stedi_etl.cli import main
from stedi_etl.landing.read import DOT_PARTS, HIDDEN
from tests.conftest import STARTER_COUNTS

if TYPE_CHECKING:
    from tests.s3_fixtures import S3

pytest_plugins = ["tests.s3_fixtures"]


@pytest.fixture
def landing(starter: Path, tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    shutil.copytree(starter, root)
    folder = root / "accelerometer" / "landing"
    first = sorted(folder.glob("*.json"))[0]
    (root / "elsewhere").mkdir()
    shutil.copy(first, root / "elsewhere" / "kept-apart.json")
    (folder / "inside.json").symlink_to(root / "elsewhere" / "kept-apart.json")
    (folder / "passwd.json").symlink_to("/etc/passwd")
    original = starter / "accelerometer" / "landing" / first.name
    (folder / "outside.json").symlink_to(original.resolve())  # the real data set: outside this landing root
    (folder / "dangling.json").symlink_to(folder / "gone.json")
    (folder / "loop-a.json").symlink_to(folder / "loop-b.json")
    (folder / "loop-b.json").symlink_to(folder / "loop-a.json")
    (folder / "sub").mkdir()
    (folder / "folder.json").symlink_to(folder / "sub")
    os.mkfifo(folder / "pipe.json")
    (folder / ".hidden.json").write_text(first.read_text())
    (folder / "_under.json").write_text(first.read_text())
    return root


def expected_reasons(landing: Path) -> dict[str, str]:
    folder = landing / "accelerometer" / "landing"
    return {
        str(folder / ".hidden.json"): HIDDEN,
        str(folder / "_under.json"): HIDDEN,
        str(folder / "dangling.json"): f"a link to nothing ({folder / 'gone.json'})",
        str(folder / "folder.json"): f"a link to {folder / 'sub'}, which is not a regular file",
        str(folder / "passwd.json"): f"a link to /etc/passwd, outside the landing root {landing}",
        str(folder / "pipe.json"): "not a regular file (a pipe, socket or device)",
    }


def test_a_run_reads_links_inside_the_root_and_lists_every_file_it_does_not_read(
    landing: Path, tmp_path: Path, starter: Path
) -> None:
    lake = tmp_path / "lake"
    result = CliRunner().invoke(main, ["run-all", "--landing", str(landing), "--lake", str(lake), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    (accelerometer,) = [s for s in summary["landing_results"] if s["dataset"] == "accelerometer"]
    skipped = dict(accelerometer["skipped"])  # a copy, emptied as each file is found
    for path, why in expected_reasons(landing).items():
        assert skipped.pop(path) == why
    folder = landing / "accelerometer" / "landing"
    outside = (starter / "accelerometer" / "landing").resolve()
    assert skipped.pop(str(folder / "outside.json")).startswith(f"a link to {outside}/")
    assert {Path(p).name for p in skipped} == {"loop-a.json", "loop-b.json"}
    assert all(why.startswith("a link that cannot be followed") for why in skipped.values())
    # The link inside the root is read as the file it names: its readings are in, as duplicates.
    starter_files = len(list((starter / "accelerometer" / "landing").glob("*.json")))
    assert accelerometer["files"] == starter_files + 1
    assert accelerometer["rows"] > 81_273
    assert {t["table"]: t["rows"] for t in summary["tables"]} == STARTER_COUNTS
    # The manifest keeps the list; the text summary shows it.
    manifest = json.loads(Path(summary["manifest"]).read_text())
    (recorded,) = [s for s in manifest["landing_results"] if s["dataset"] == "accelerometer"]
    assert recorded["skipped"] == accelerometer["skipped"]
    text = CliRunner().invoke(main, ["run-all", "--landing", str(landing), "--lake", str(tmp_path / "b")])
    assert text.exit_code == 0
    assert (
        f"    not read: {folder / 'passwd.json'} (a link to /etc/passwd, outside the landing root"
        in text.stdout
    )


def test_validate_landing_lists_the_same_files_not_read(landing: Path) -> None:
    result = CliRunner().invoke(main, ["validate", "--landing", str(landing), "--json"])
    assert result.exit_code == 0, result.output
    skipped = json.loads(result.stdout)["skipped"]["accelerometer"]
    for path, why in expected_reasons(landing).items():
        assert skipped[path] == why
    text = CliRunner().invoke(main, ["validate", "--landing", str(landing)])
    folder = landing / "accelerometer" / "landing"
    assert f"accelerometer: not read: {folder / '_under.json'} ({HIDDEN})" in text.stdout


def test_a_run_with_nothing_to_rebuild_still_lists_what_it_does_not_read(
    landing: Path, tmp_path: Path
) -> None:
    lake = str(tmp_path / "lake")
    assert (
        CliRunner().invoke(main, ["run-all", "--landing", str(landing), "--lake", lake, "-q"]).exit_code == 0
    )
    again = CliRunner().invoke(main, ["run-all", "--landing", str(landing), "--lake", lake, "--json"])
    (accelerometer,) = [
        s for s in json.loads(again.stdout)["landing_results"] if s["dataset"] == "accelerometer"
    ]
    assert accelerometer["rows"] is None  # unchanged, not read
    assert accelerometer["skipped"][str(landing / "accelerometer" / "landing" / "_under.json")] == HIDDEN


@pytest.mark.s3
def test_s3_keys_with_dot_parts_are_listed_as_not_read(s3: S3, starter: Path) -> None:
    """S3 keys are not paths: `a/./b.json` and `a/../b.json` are objects of their own, which no local copy
    could hold. They were skipped as hidden, with no word."""
    from stedi_etl.commands.land import land_files

    land_files(str(starter), s3.uri("landing"), endpoint_url=s3.endpoint)
    body = next((starter / "accelerometer" / "landing").glob("*.json")).read_bytes()
    for key in ("landing/accelerometer/landing/./dot.json", "landing/accelerometer/landing/sub/../up.json"):
        s3.client().put_object(Bucket=s3.bucket, Key=key, Body=body)
    result = CliRunner().invoke(
        main, ["validate", "--landing", s3.uri("landing"), "--s3-endpoint-url", s3.endpoint, "--json"]
    )
    assert result.exit_code == 0, result.output
    skipped = json.loads(result.stdout)["skipped"]["accelerometer"]
    assert {key.rsplit("landing/", 1)[-1]: why for key, why in skipped.items()} == {
        "./dot.json": DOT_PARTS,
        "sub/../up.json": DOT_PARTS,
    }
