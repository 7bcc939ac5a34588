"""Every S3 operation has a deadline: a store that accepts connections and never answers, or stalls one kind
of request, fails the run in one line within the documented bound (lake/storage.py), never hangs.

The endpoints are real TCP servers on loopback: one that answers nothing, and a proxy in front of moto's
server that holds chosen requests unanswered (tests/s3_fixtures.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from stedi_etl.cli import main
from stedi_etl.lake.storage import TIMEOUT_ENV

if TYPE_CHECKING:
    from tests.s3_fixtures import S3, FaultProxy, SilentEndpoint

pytest_plugins = ["tests.s3_fixtures"]
pytestmark = pytest.mark.s3

DEADLINE = 3  # seconds, through STEDI_ETL_S3_TIMEOUT
# The documented bound: the deadline, then at most two short deadlines (5 s) to record the failure and
# release the lock; and a little for the process itself.
BOUND = DEADLINE + 2 * 5 + 3


def cli(*args: str) -> tuple[int, str, str, float]:
    started = time.monotonic()
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr, time.monotonic() - started


def one_error(stderr: str) -> str:
    """The run's one error line; every other line on stderr is a retry's warning or progress."""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    others = [line for line in stderr.splitlines() if not line.startswith(("error:", "warning:", "["))]
    assert len(errors) == 1 and not others, stderr
    return errors[0]


def test_a_lake_on_an_endpoint_that_never_answers_fails_within_the_bound(
    s3: S3, silent_endpoint: SilentEndpoint, starter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, str(DEADLINE))
    silent = silent_endpoint.endpoint
    code, _out, err, took = cli(
        "run-all", "--landing", str(starter), "--lake", s3.uri("lake"), "--s3-endpoint-url", silent
    )
    assert code == 1 and took < BOUND, (took, err)
    line = one_error(err)
    assert f"no answer from {silent_endpoint.endpoint} within {DEADLINE} s ({TIMEOUT_ENV})" in line
    assert "warning: S3 " in err and "retrying" in err  # the retries were said as they happened


def _is_lock(method: str, path: str) -> bool:
    return method == "PUT" and "/lake/_stedi/lock" in path


def _is_landing_read(method: str, path: str) -> bool:
    return method == "GET" and "/landing/accelerometer/" in path


def _is_lake_data_write(method: str, path: str) -> bool:
    return method == "PUT" and "/lake/" in path and "/_stedi/lock" not in path and "/_stedi/runs/" not in path


def _is_commit(method: str, path: str) -> bool:
    return method == "PUT" and "/_delta_log/" in path


@pytest.mark.parametrize(
    ("stalls", "verb", "where"),
    [
        (_is_lock, "write", "lake/_stedi/lock"),
        (_is_landing_read, "read", "landing/accelerometer/"),
        (_is_lake_data_write, "write", "lake/"),
        (_is_commit, "commit", "lake/"),
    ],
    ids=["the lock", "a read", "a write", "a commit"],
)
def test_a_stalled_request_fails_the_run_in_one_line_within_the_bound(
    s3: S3,
    fault_proxy: FaultProxy,
    starter: Path,
    monkeypatch: pytest.MonkeyPatch,
    stalls: Callable[[str, str], bool],
    verb: str,
    where: str,
) -> None:
    from stedi_etl.commands.land import land_files

    land_files(str(starter), s3.uri("landing"), endpoint_url=s3.endpoint)
    monkeypatch.setenv(TIMEOUT_ENV, str(DEADLINE))
    fault_proxy.stalls = stalls
    lake = s3.uri("lake")
    code, _out, err, took = cli(
        "run-all", "--landing", s3.uri("landing"), "--lake", lake, "--s3-endpoint-url", fault_proxy.endpoint
    )
    assert fault_proxy.stalled, "nothing was stalled"
    assert code == 1 and took < BOUND, (took, err)
    line = one_error(err)
    assert line.startswith(f"error: cannot {verb} s3://{s3.bucket}/{where}"), line
    assert f"no answer from {fault_proxy.endpoint} within {DEADLINE} s" in line
    # Nothing was published, and the lock is free again for the next run.
    fault_proxy.stalls = lambda _method, _path: False
    code, out, err, _took = cli("runs", "--lake", lake, "--s3-endpoint-url", s3.endpoint, "--json")
    runs = json.loads(out)["runs"] if code == 0 else []
    assert all(recorded["status"] == "failed" for recorded in runs), runs
    code, _out, err, _took = cli(
        "run-all", "--landing", s3.uri("landing"), "--lake", lake, "--s3-endpoint-url", s3.endpoint
    )
    assert code == 0, err


def test_a_deadline_that_is_not_a_number_is_a_usage_error(
    s3: S3, starter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    code, _out, err, _took = cli(
        "run-all", "--landing", str(starter), "--lake", s3.uri("lake"), "--s3-endpoint-url", s3.endpoint
    )
    assert code == 2
    assert one_error(err) == f"error: {TIMEOUT_ENV}='soon' is not a number of seconds (for example 60)"


def test_the_first_error_is_reported_when_the_failed_run_cannot_be_recorded(
    s3: S3, fault_proxy: FaultProxy, starter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A landing read fails; then so does writing the failed run's manifest. The read is the error, the
    manifest's failure a second line: it used to replace the first."""
    from stedi_etl.commands.land import land_files

    land_files(str(starter), s3.uri("landing"), endpoint_url=s3.endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    manifests: list[str] = []

    def failing(method: str, path: str) -> bool:
        if method == "PUT" and "/_stedi/runs/" in path:
            manifests.append(path)
            return len(manifests) > 1  # the run's first record is written; its failure's is not
        return method == "GET" and "/landing/accelerometer/" in path

    fault_proxy.fail(None, "ServiceUnavailable", failing)
    proxy = fault_proxy.endpoint
    code, _out, err, _took = cli(
        "run-all", "--landing", s3.uri("landing"), "--lake", s3.uri("lake"), "--s3-endpoint-url", proxy
    )
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2, err
    assert errors[0].startswith(f"error: cannot read s3://{s3.bucket}/landing/accelerometer/landing"), errors
    assert errors[1].startswith("error: the failed run could not be recorded: cannot write "), errors
    assert "/_stedi/runs/" in errors[1]
