"""A run of the pipeline in a child process that SIGKILLs itself at its Nth write of the lake (parse-cache
entries, written while reading, are not counted): the crash tests' tool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

from tests.conftest import REPO

DRIVER = textwrap.dedent(
    """
    import os, signal, sys, threading
    from stedi_etl.run import runner as pipeline
    from stedi_etl.lake import delta
    from stedi_etl.lake.storage import Store

    landing, lake, kill_at, half_written = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "half"
    full_refresh = sys.argv[5] == "full"
    original = Store.write_bytes
    lock = threading.Lock()
    calls = 0

    def dying_write(self, path, data):
        global calls
        if "/_stedi/parsed/" in path:  # parse-cache entries, written while reading: not the run's output
            return original(self, path, data)
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

    # A Delta commit is a write too: the run dies before the kill_at-th write, whichever kind it is.
    original_commit = delta.commit

    def dying_commit(*args, **kwargs):
        global calls
        with lock:
            calls += 1
            dying = calls == kill_at
        if dying:
            os.kill(os.getpid(), signal.SIGKILL)
        return original_commit(*args, **kwargs)

    Store.write_bytes = dying_write
    delta.commit = dying_commit
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


# The moments of a run, by phase: each call of these is one moment a kill can land on.
EVENT_DRIVER = textwrap.dedent(
    """
    import json, os, signal, sys, threading
    from dataclasses import replace
    from stedi_etl.lake import tables as lake
    from stedi_etl.landing import read as landing
    from stedi_etl.run import runner as pipeline
    from stedi_etl.lake import delta, storage

    landing_uri, lake_uri, kill_at, log_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    guard = threading.Lock()
    count = [0]
    log = open(log_path, "w")

    def moment(phase, name, original):
        def wrapped(*args, **kwargs):
            with guard:
                count[0] += 1
                log.write(json.dumps([count[0], phase, name]) + "\\n")
                log.flush()
                dying = count[0] == kill_at
            if dying:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)
        return wrapped

    for owner, name, phase in [
        (storage.Store, "listing", "reading"),
        (storage.Store, "read_many", "reading"),
        (storage.Store, "read_many_if_exists", "reading"),
        (landing, "parse_files", "reading"),
        (landing, "read_tolerant", "reading"),
        (lake.Lake, "read", "reading"),
        (landing, "check_frame", "validating"),
        (pipeline, "check_frame", "validating"),
        (pipeline, "check_rows", "validating"),
        (pipeline, "check_relations", "validating"),
        (lake.Lake, "stage", "publishing"),
        (storage.Store, "write_bytes", "publishing"),
        (storage.Store, "replace", "publishing"),
        (storage.Store, "remove_many", "publishing"),
        (delta, "commit", "publishing"),
        (delta, "vacuum", "publishing"),
    ]:
        label = f"{getattr(owner, '__name__', owner)}.{name}"
        setattr(owner, name, moment(phase, label, getattr(owner, name)))
    pipeline.STEPS = tuple(
        replace(step, transform=moment("validating", step.table, step.transform)) for step in pipeline.STEPS
    )
    pipeline.run(landing_uri, lake_uri)
    """
)


def run_with_moments(landing: str, lake: str, kill_at: int, log: str) -> list[tuple[int, str, str]]:
    """Run the pipeline in a child process, SIGKILLed at its ``kill_at``-th moment (0: never); the moments
    it reached, as (number, phase, what)."""
    done = subprocess.run(
        [sys.executable, "-c", EVENT_DRIVER, landing, lake, str(kill_at), log],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == (-signal.SIGKILL if kill_at else 0), done.stderr
    with open(log) as lines:  # noqa: PTH123 - a plain text file the child wrote
        return [tuple(json.loads(line)) for line in lines if line.strip()]  # type: ignore[misc]
