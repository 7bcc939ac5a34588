"""A run of the pipeline in a child process that SIGKILLs itself at its Nth write: the crash tests' tool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from tests.conftest import REPO

DRIVER = textwrap.dedent(
    """
    import os, signal, sys, threading
    from stedi_etl import pipeline
    from stedi_etl.storage import Store

    landing, lake, kill_at, half_written = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "half"
    full_refresh = sys.argv[5] == "full"
    original = Store.write_bytes
    lock = threading.Lock()
    calls = 0

    def dying_write(self, path, data):
        global calls
        with lock:
            calls += 1
            dying = calls == kill_at
        if not dying:
            return original(self, path, data)
        if half_written:  # a file on disk can be left half-written
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as half:
                half.write(data[: len(data) // 2])
                half.flush()
        else:  # an S3 PUT lands whole or not at all
            original(self, path, data)
        os.kill(os.getpid(), signal.SIGKILL)

    Store.write_bytes = dying_write
    pipeline.run(landing, lake, full_refresh=full_refresh)
    """
)


def killed_run(
    landing: str,
    lake: str,
    kill_at: int,
    *,
    half_written: bool,
    env: dict[str, str] | None = None,
    full_refresh: bool = False,
) -> None:
    """Run the pipeline until its ``kill_at``-th write, and check it really died of SIGKILL there."""
    mode = "half" if half_written else "whole"
    refresh = "full" if full_refresh else "incremental"
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, landing, lake, str(kill_at), mode, refresh],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
