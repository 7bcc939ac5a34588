"""Runs on a real Dask cluster: a `dask scheduler` and `dask worker` processes on loopback, started as a user
starts them, with the run's tasks on them (stedi_etl/run/executors.py).

Nothing of Dask is mocked: the workers are separate processes that import stedi-etl, read and write the same
stores (moto's S3 server, or this machine's disk), and one of them is killed with SIGKILL mid-run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest
from click.testing import CliRunner
from distributed import Client, WorkerPlugin

from stedi_etl.cli import main
from stedi_etl.lake.storage import Store
from stedi_etl.lake.tables import Lake
from stedi_etl.run.runner import run
from tests.conftest import STARTER_COUNTS, write_landing

if TYPE_CHECKING:
    from tests.s3_fixtures import S3

pytest_plugins = ["tests.s3_fixtures"]
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DASK = str(Path(sys.executable).with_name("dask"))
TABLES = tuple(STARTER_COUNTS)


@dataclass
class Cluster:
    """A scheduler and named workers, each its own process; ``workers`` maps a name to its process."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def client(self) -> Client:
        return Client(self.address, timeout=30, set_as_default=False)

    def worker_addresses(self) -> dict[str, str]:
        """Each live worker's name -> address, as the scheduler knows them."""
        with self.client() as client:
            info = client.scheduler_info(n_workers=-1)["workers"]
        return {str(worker["name"]): address for address, worker in info.items()}

    def stop(self) -> None:
        for process in [*self.workers.values(), self.scheduler]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.workers.values(), self.scheduler]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def start_cluster(folder: Path, names: tuple[str, ...]) -> Cluster:
    """`dask scheduler` and a `dask worker` per name, one task at a time each, without a nanny (a killed
    worker stays dead). The workers get this process's environment (the fake AWS credentials of the S3
    tests) and can import this repository's tests (the plugin below)."""
    from tests.s3_fixtures import free_port

    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def spawn(name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (logs / f"{name}.log").open("wb")
        return subprocess.Popen(
            [DASK, *args], env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=folder
        )

    cluster = Cluster(
        address, spawn("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
    )
    for name in names:
        cluster.workers[name] = spawn(
            name, "worker", address, "--nthreads", "1", "--no-nanny", "--name", name,
            "--local-directory", str(folder / name), "--no-dashboard",
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if len(cluster.worker_addresses()) == len(names):
                return cluster
        except OSError:
            pass
        time.sleep(0.2)
    cluster.stop()
    said = {path.name: path.read_text(errors="replace")[-500:] for path in sorted(logs.iterdir())}
    raise AssertionError(f"the cluster did not start; its logs end: {said}")


def start_cluster_retrying(folder: Path, names: tuple[str, ...]) -> Cluster:
    """``start_cluster``, tried a second time on fresh ports: once in about ten CI runs, on a loaded 2-core
    machine, a scheduler and its workers had written nothing and registered nothing within the minute."""
    try:
        return start_cluster(folder / "first", names)
    except AssertionError:
        return start_cluster(folder / "second", names)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    started = start_cluster_retrying(tmp_path / "cluster", ("w0", "w1"))
    try:
        yield started
    finally:
        started.stop()


class KillAtFirstDayTask(WorkerPlugin):
    """SIGKILLs the worker that starts the run's first task of days, once (``marker`` records it)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def setup(self, worker: object) -> None:
        self.worker = worker

    def transition(self, key: object, start: str, finish: str, **kwargs: object) -> None:
        if finish == "executing" and str(key).startswith("run_day_task") and not Path(self.marker).exists():
            Path(self.marker).write_text(f"{self.worker.name} {self.worker.address} {key}")  # type: ignore[attr-defined]
            os.kill(os.getpid(), signal.SIGKILL)


class KillSchedulerAtFirstDayTask(WorkerPlugin):
    """SIGKILLs the scheduler (process ``pid``) as a worker starts the run's first task of days."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def transition(self, key: object, start: str, finish: str, **kwargs: object) -> None:
        if finish == "executing" and str(key).startswith("run_day_task"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def tables_of(lake: Lake) -> dict[str, pl.DataFrame]:
    return {name: lake.read(name).sort(pl.all()) for name in TABLES}


def test_a_cluster_runs_the_starter_set_from_s3_to_s3_on_both_workers(
    s3: S3, cluster: Cluster, starter: Path, tmp_path: Path
) -> None:
    from stedi_etl.commands.land import land_files

    land_files(str(starter), s3.uri("landing"), endpoint_url=s3.endpoint)
    code, out, err = cli(
        "run-all", "--landing", s3.uri("landing"), "--lake", s3.uri("lake"), "--s3-endpoint-url", s3.endpoint,
        "--scheduler", cluster.address, "--json",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert {t["table"]: t["rows"] for t in result["tables"]} == STARTER_COUNTS
    workers = set(cluster.worker_addresses().values())
    assert result["executor"]["kind"] == "dask"
    assert result["executor"]["scheduler"] == cluster.address
    assert {task["worker"] for task in result["tasks"]} == workers  # both ran some
    assert set(result["executor"]["workers"]) == workers
    kinds = {(task["kind"], task["name"]) for task in result["tasks"]}
    assert ("parse", "accelerometer") in kinds and ("days", "machine_learning_curated") in kinds
    # What a reader of the lake gets: the published counts, the same rows as a build in one process.
    on_s3 = Lake(Store(s3.uri("lake"), endpoint_url=s3.endpoint))
    assert {name: on_s3.read(name).height for name in TABLES} == STARTER_COUNTS
    local = tmp_path / "local"
    assert run(str(starter), str(local)).ok
    expected = tables_of(Lake.of(str(local)))
    assert all(tables_of(on_s3)[name].equals(expected[name]) for name in TABLES)


def test_a_worker_killed_mid_run_has_its_task_run_again_and_the_lake_is_right(
    cluster: Cluster, starter: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "killed"
    with cluster.client() as client:
        client.register_plugin(KillAtFirstDayTask(str(marker)), name="kill-at-first-day-task")
    lake = tmp_path / "lake"
    code, out, err = cli(
        "run-all", "--landing", str(starter), "--lake", str(lake), "--scheduler", cluster.address, "--json"
    )
    assert code == 0, err
    assert marker.exists(), "no worker was killed"
    killed_name, killed_address, _key = marker.read_text().split()
    assert cluster.workers[killed_name].wait(timeout=10) == -signal.SIGKILL
    result = json.loads(out)
    assert {t["table"]: t["rows"] for t in result["tables"]} == STARTER_COUNTS
    days = [task for task in result["tasks"] if task["kind"] == "days"]
    assert len(days) == 3 and all(task["worker"] != killed_address for task in days)
    local = tmp_path / "local"
    assert run(str(starter), str(local)).ok
    expected = tables_of(Lake.of(str(local)))
    got = tables_of(Lake.of(str(lake)))
    assert all(got[name].equals(expected[name]) for name in TABLES)
    code, out, _ = cli("validate", "--lake", str(lake), "--json")
    assert code == 0, out


def test_a_scheduler_lost_mid_run_fails_the_run_in_one_line_and_publishes_nothing(
    cluster: Cluster, starter: Path, tmp_path: Path
) -> None:
    with cluster.client() as client:
        client.register_plugin(KillSchedulerAtFirstDayTask(cluster.scheduler.pid), name="kill-the-scheduler")
    lake = tmp_path / "lake"
    started = time.monotonic()
    code, _out, err = cli(
        "run-all", "--landing", str(starter), "--lake", str(lake), "--scheduler", cluster.address
    )
    assert time.monotonic() - started < 60
    assert code == 1
    assert cluster.scheduler.wait(timeout=10) == -signal.SIGKILL
    errors = [
        line for line in err.splitlines() if not line.startswith("[")
    ]  # progress lines start "[ 0.12s]"
    lost = "cancelled a run_day_task task: scheduler-connection-lost"
    assert errors == [f"error: the Dask cluster at {cluster.address} {lost}"]
    code, out, _ = cli("runs", "--lake", str(lake), "--json")
    assert code == 0
    [recorded] = json.loads(out)["runs"]
    assert recorded["status"] == "failed"
    assert not Lake.of(str(lake)).tables()  # nothing was committed


def test_a_task_failing_for_a_data_reason_fails_the_run_with_the_same_line_as_in_process(
    cluster: Cluster, starter: Path, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(starter, landing)
    write_landing(landing, "accelerometer", "broken.json", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    lines = {}
    for where, extra in (("in-process", ()), ("cluster", ("--scheduler", cluster.address))):
        code, _out, err = cli(
            "run-all", "--landing", str(landing), "--lake", str(tmp_path / where), "-q", *extra
        )
        assert code == 1, err
        lines[where] = [line for line in err.splitlines() if line.startswith("error")]
    assert len(lines["cluster"]) == 1 and lines["cluster"] == lines["in-process"], lines
    assert "broken.json" in lines["cluster"][0]


def test_a_scheduler_nobody_answers_at_fails_in_one_line_within_the_deadline(
    monkeypatch: pytest.MonkeyPatch, starter: Path, tmp_path: Path
) -> None:
    from stedi_etl.run import executors
    from tests.s3_fixtures import free_port

    monkeypatch.setattr(executors, "CONNECT_SECONDS", 3.0)
    nobody = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    code, _out, err = cli(
        "run-all", "--landing", str(starter), "--lake", str(tmp_path), "--scheduler", nobody
    )
    assert time.monotonic() - started < 20
    assert code == 1
    assert err.strip().splitlines() == [err.strip().splitlines()[-1]]
    assert f"cannot reach the Dask scheduler at {nobody}" in err
    assert not (tmp_path / "_stedi" / "lock").exists()


def test_without_dask_a_cluster_run_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, starter: Path, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed: importing it fails
    for option in (("--scheduler", "tcp://127.0.0.1:8786"), ("--workers", "2")):
        code, _out, err = cli("run-all", "--landing", str(starter), "--lake", str(tmp_path), *option)
        assert code == 2
        assert err.strip() == "error: running on a Dask cluster needs Dask: pip install 'stedi-etl[dask]'"


def test_scheduler_and_workers_together_are_a_usage_error(starter: Path, tmp_path: Path) -> None:
    code, _out, err = cli(
        "run-all",
        "--landing",
        str(starter),
        "--lake",
        str(tmp_path),
        "--scheduler",
        "tcp://x:1",
        "--workers",
        "2",
    )
    assert code == 2 and "give one" in err


def test_the_scheduler_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, cluster: Cluster, starter: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("STEDI_ETL_SCHEDULER", cluster.address)
    code, out, err = cli("run-all", "--landing", str(starter), "--lake", str(tmp_path / "a"), "--json")
    assert code == 0, err
    assert json.loads(out)["executor"]["scheduler"] == cluster.address
    code, out, err = cli("run-all", "--landing", str(starter), "--lake", str(tmp_path / "b"))
    assert code == 0, err
    [line] = [line for line in out.splitlines() if line.startswith("tasks:")]
    assert line.startswith("tasks: 12 tasks on the cluster at " + cluster.address)


def test_local_workers_started_for_the_run_build_the_same_lake(starter: Path, tmp_path: Path) -> None:
    result = run(str(starter), str(tmp_path / "lake"), workers=2)
    assert result.ok
    assert result.executor["kind"] == "dask" and result.executor["local"]
    assert {t.table: t.rows for t in result.tables} == STARTER_COUNTS
    in_process = run(str(starter), str(tmp_path / "local"))
    assert in_process.executor == {"kind": "in-process"}
    assert {task["worker"] for task in in_process.tasks} == {"in-process"}
    # The same tasks either way: each parse batch and task of days, wherever it ran.
    assert [t["kind"] for t in in_process.tasks].count("days") == 3
    got, expected = tables_of(Lake.of(str(tmp_path / "lake"))), tables_of(Lake.of(str(tmp_path / "local")))
    assert all(got[name].equals(expected[name]) for name in TABLES)
