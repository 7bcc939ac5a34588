"""Where a run's tasks run: in this process, one after another, or on a Dask cluster.

A task is a module-level function called with a small description (a ``ParseTask``, a ``DayTask``) and
the data every task of a kind shares (the stores, the small customer tables). It reads its input from the
stores, writes its files there, and returns a small description of what it did. The run's own process
plans the tasks, checks what they return, and commits: the lake's guarantees (one commit per table, a
snapshot per run, nothing visible before it) do not depend on where the tasks ran.

On a cluster the workers must reach the same stores as the run (S3, or a disk they all mount at the same
path) and import the same stedi-etl. Dask recomputes a lost worker's tasks on another: a task only writes
files named by its run and its days (a repeat writes the same names) and nothing is committed before every
task is back, so a repeated task changes nothing.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from stedi_etl.errors import StediError, UsageError

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

IN_PROCESS = "in-process"
# How long connecting to a scheduler, or starting a local cluster's workers, may take.
CONNECT_SECONDS = 30.0
INSTALL_HINT = "pip install 'stedi-etl[dask]'"


class ExecutorError(StediError):
    """The cluster could not be reached, or lost a task more often than it retries one."""

    exit_code = 1


@dataclass(frozen=True)
class Done:
    """One task's result, where it ran and how long it took there."""

    index: int  # its place in the items given to ``map``
    result: Any
    worker: str  # the worker's address, or "in-process"
    seconds: float


class Executor(Protocol):
    kind: str

    @property
    def slots(self) -> int:
        """How many tasks run at once."""
        ...

    def map(self, function: Callable[[Any, Any], Any], items: Sequence[Any], shared: Any) -> Iterator[Done]:
        """``function(item, shared)`` for each of ``items``, yielded as each finishes. A task's exception
        is raised here as it was raised there; the tasks not yet finished are cancelled."""
        ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class InProcess:
    """Each task in this process, in order: the default, and what every run did before clusters."""

    kind = IN_PROCESS
    slots = 1

    def map(self, function: Callable[[Any, Any], Any], items: Sequence[Any], shared: Any) -> Iterator[Done]:
        for index, item in enumerate(items):
            started = time.perf_counter()
            result = function(item, shared)
            yield Done(index, result, IN_PROCESS, time.perf_counter() - started)

    def describe(self) -> dict[str, Any]:
        return {"kind": IN_PROCESS}

    def close(self) -> None:
        pass


def _on_worker(function: Callable[[Any, Any], Any], item: Any, shared: Any) -> tuple[Any, str, float]:
    """A task as a Dask worker runs it: its result, and the worker's address to say where it ran."""
    from distributed import get_worker

    started = time.perf_counter()
    result = function(item, shared)
    return result, get_worker().address, time.perf_counter() - started


class DaskCluster:
    """Tasks on a Dask cluster: an existing one (its scheduler's address) or local worker processes
    started for the run. Each worker should run one task at a time (``--nthreads 1``): Polars uses every
    core of the machine within a task."""

    kind = "dask"

    def __init__(self, client: Client, cluster: LocalCluster | None = None) -> None:
        self.client = client
        self.cluster = cluster
        self.scheduler = client.scheduler.address if client.scheduler is not None else ""
        self.workers_seen: set[str] = set()

    @classmethod
    def connect(cls, address: str, timeout: float | None = None) -> DaskCluster:
        """The cluster whose scheduler is at ``address`` (tcp://host:port), reached within ``timeout``
        seconds (default ``CONNECT_SECONDS``)."""
        Client = _distributed().Client
        try:
            client = Client(address, timeout=timeout or CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ExecutorError(f"cannot reach the Dask scheduler at {address}: {reason}") from None
        return cls(client)

    @classmethod
    def start_local(cls, workers: int, timeout: float | None = None) -> DaskCluster:
        """A cluster of ``workers`` local worker processes (one task at a time each), for this run only."""
        import logging

        distributed = _distributed()
        try:
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
                timeout=timeout or CONNECT_SECONDS,
            )
        except (OSError, TimeoutError) as err:
            raise ExecutorError(f"cannot start {workers} local Dask workers: {err}") from None
        return cls(distributed.Client(cluster, set_as_default=False), cluster)

    @property
    def slots(self) -> int:
        return max(len(self.client.scheduler_info(n_workers=-1).get("workers", {})), 1)

    def map(self, function: Callable[[Any, Any], Any], items: Sequence[Any], shared: Any) -> Iterator[Done]:
        distributed = _distributed()
        if not items:
            return
        # The shared data goes to every worker once, not with each task. Wrapped in a list: a dict would
        # be scattered value by value.
        [on_workers] = self.client.scatter([shared], broadcast=True, hash=False)
        name = getattr(function, "__name__", "task")
        batch = uuid.uuid4().hex[:8]
        futures = [
            self.client.submit(_on_worker, function, item, on_workers, key=f"{name}-{batch}-{i}", pure=False)
            for i, item in enumerate(items)
        ]
        index_of = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in distributed.as_completed(futures, loop=self.client.loop):
                try:
                    result, worker, seconds = future.result()
                except distributed.KilledWorker as err:
                    raise ExecutorError(
                        f"a {name} task was lost with every worker that ran it ({err}); is a worker "
                        "running out of memory?"
                    ) from None
                except distributed.client.FutureCancelledError as err:
                    # Its reason, as Dask gives it (scheduler-connection-lost, ...): the first line says it.
                    reason = str(getattr(err, "reason", "") or err).splitlines()[0]
                    raise ExecutorError(
                        f"the Dask cluster at {self.scheduler} cancelled a {name} task: {reason}"
                    ) from None
                self.workers_seen.add(worker)
                yield Done(index_of[future.key], result, worker, seconds)
        finally:
            self.client.cancel([*futures, on_workers])

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scheduler": self.scheduler,
            "local": self.cluster is not None,
            "workers": sorted(self.workers_seen),
        }

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _distributed() -> Any:
    import logging

    try:
        import distributed
    except ImportError:
        raise UsageError(f"running on a Dask cluster needs Dask: {INSTALL_HINT}") from None
    if not os.environ.get("STEDI_ETL_DEBUG"):
        # Dask logs a lost connection's tracebacks itself; the run reports each failure in one line.
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
    return distributed


def open_executor(scheduler: str | None = None, workers: int | None = None) -> Executor:
    """This process, or the Dask cluster at ``scheduler``, or ``workers`` local Dask workers."""
    if scheduler and workers:
        raise UsageError("--scheduler and --workers: give one (a cluster to use, or local workers to start)")
    if scheduler:
        return DaskCluster.connect(scheduler)
    if workers:
        return DaskCluster.start_local(workers)
    return InProcess()
