"""The code stays ruff-clean (lint and format), checked with the tests so CI enforces it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff_is_clean(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _readme_command(marker: str) -> str:
    """The README's one-line command that ends with ``marker`` (its quick-start code blocks)."""
    lines = [line.strip() for line in (REPO / "README.md").read_text().splitlines()]
    found = [line for line in lines if line.startswith("python3 -m venv") and line.endswith(marker)]
    assert len(found) == 1, f"the README should give one command ending {marker!r}, found {found}"
    return found[0]


def test_ci_runs_the_readmes_test_command_word_for_word() -> None:
    command = _readme_command("python -m pytest")
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert command in [line.strip() for line in ci], f".ci/run does not run the README's {command!r}"
    # The set-up is the one script: .ci/run installs nothing of its own beside it.
    assert not [line for line in ci if "pip install" in line or "apt-get" in line]
    assert "scripts/setup-tests" in command


def test_the_setup_script_installs_the_browser_the_report_tests_need() -> None:
    script = (REPO / "scripts" / "setup-tests").read_text()
    assert "-e '.[test,dask]'" in script  # tests/test_cluster.py needs Dask
    assert "apt-get install" in script and "chromium" in script
