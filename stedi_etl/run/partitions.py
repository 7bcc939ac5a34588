"""Building the reading tables by day of their reading time, so a run rebuilds only the days that changed.

accelerometer_trusted, step_trainer_trusted and machine_learning_curated hold readings, and every row holds
its reading time. Their transforms are row filters, semi-joins against the small customer tables, DISTINCT
and (for the machine-learning table) a join on ``timestamp = sensorReadingTime``: rows of different instants
never meet. So the table built from the inputs of one day alone is exactly that day's rows of the table
built from everything (tests/test_partitions.py checks this for any cut, rather than trusting it). A
step's ``partition_by`` names, for each input holding readings, the column with their time; its other
inputs (the customer tables) go whole to every day.

The unit is the UTC day of the reading time (milliseconds since the epoch // 86,400,000): stable, so a
day's file, its rows and what it was built from can be kept in the table's build record and reused by the
next run while its inputs are unchanged. Days are built in tasks of neighbouring days of about ``task_rows``
input rows (a day larger than that is a task alone), each task one call of the step's transform.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stedi_etl.model.days import DAY_MS, NO_TIME, day_of, day_sums, digests, on_days, tasks

__all__ = [
    "DAY_MS",
    "NO_TIME",
    "Budget",
    "DayShared",
    "DayTask",
    "DayTaskResult",
    "added_rows",
    "budget",
    "build_days",
    "build_task",
    "cut_by_day",
    "day_digests",
    "day_of",
    "input_days",
    "on_days",
    "parse_size",
    "run_day_task",
    "task_inputs",
    "tasks",
]

if TYPE_CHECKING:
    import polars as pl

    from stedi_etl.checks.rules import PartCounts, ValidationReport
    from stedi_etl.lake.tables import Lake
    from stedi_etl.model.steps import Step

TASK_ROWS = 2_000_000  # input rows per task of build_days where no budget is given (a run passes its own)

# What a run's memory goes to, measured at scale 100 on the 2-core machine (FINDINGS): about 400 MiB of
# libraries, customer tables and allocator slack whatever the data; parsing a batch of landing files holds
# about twice the batch's bytes; a task of days holds about 300 bytes per input row at its peak.
BASE_BYTES = 400 * 2**20
BATCH_COST = 2
ROW_COST = 300
MIN_TASK_ROWS, MAX_TASK_ROWS = 50_000, 8_000_000
MIN_BATCH, MAX_BATCH = 4 * 2**20, 64 * 2**20
# The default: at scale 100 tasks of the 1.3M rows it allows built as fast as tasks of 2.2M (a 1 GiB limit),
# and held about 580 MiB at the peak rather than 875 MiB: within 1.5x scale 10's 400 MiB (FINDINGS).
DEFAULT_LIMIT = 768 * 2**20


@dataclass(frozen=True)
class Budget:
    """How much a run may hold at once, and the work sizes that follow from it: a soft limit (the sizes
    aim under it; a single day or file larger than they allow is still read whole)."""

    memory_limit: int  # bytes
    source: str  # "given", or how the default was found

    @property
    def usable(self) -> int:
        return max(self.memory_limit - BASE_BYTES, 64 * 2**20)

    @property
    def task_rows(self) -> int:
        """Input rows a task of days builds at once."""
        return min(max(self.usable // ROW_COST, MIN_TASK_ROWS), MAX_TASK_ROWS)

    @property
    def landing_batch_bytes(self) -> int:
        """Bytes of landing files parsed at once (half the usable memory at most)."""
        return min(max(self.usable // (2 * BATCH_COST), MIN_BATCH), MAX_BATCH)

    def to_dict(self) -> dict[str, Any]:
        return {
            "memory_limit": self.memory_limit,
            "source": self.source,
            "task_rows": self.task_rows,
            "landing_batch_bytes": self.landing_batch_bytes,
        }


def machine_memory() -> tuple[int, str]:
    """This machine's memory as a process may use it: the physical memory, or the cgroup's limit (a
    container's) where lower."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        capped = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        capped = "max"
    if capped.isdigit() and int(capped) < total:
        return int(capped), "the cgroup's memory.max"
    return total, "physical memory"


def budget(memory_limit: int | None = None) -> Budget:
    """The run's budget: ``memory_limit`` bytes where given, else 768 MiB or a quarter of the machine's
    memory where that is less (a cron run shares the machine)."""
    if memory_limit is not None:
        return Budget(memory_limit, "given")
    total, found = machine_memory()
    if total // 4 < DEFAULT_LIMIT:
        return Budget(total // 4, f"a quarter of {found}")
    return Budget(DEFAULT_LIMIT, "default")


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "ki": 2**10, "mi": 2**20, "gi": 2**30}


def parse_size(text: str) -> int:
    """Bytes from a size such as ``1GiB``, ``800MB``, ``512M`` or ``1073741824``; ValueError otherwise."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if found is None or found.group(2).lower() not in _UNITS:
        raise ValueError(f"{text!r} is not a size (for example 1GiB, 800MB, 512M)")
    size = int(float(found.group(1)) * _UNITS[found.group(2).lower()])
    if size < 128 * 2**20:
        raise ValueError(f"{text!r} is below the least a run needs (128MiB)")
    return size


def day_digests(frame: pl.DataFrame | pl.LazyFrame, column: str) -> dict[int, str]:
    """Each day's rows of ``frame`` as one digest that does not depend on their order: a day whose digest
    is unchanged holds the same rows (as a multiset) as before."""
    import polars as pl

    rows = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    return digests(day_sums(rows, column).get(0, {}))


def input_days(step: Step, frames: Mapping[str, pl.DataFrame]) -> dict[int, int]:
    """Every day some partitioned input of ``step`` has rows on, with the number of those rows."""
    import polars as pl

    counts: dict[int, int] = {}
    for name, column in step.partition_by.items():
        found = (
            frames[name].lazy().select(day_of(column)).group_by("_day").agg(pl.len().alias("rows")).collect()
        )
        for day, rows in found.iter_rows():
            counts[day] = counts.get(day, 0) + rows
    return counts


def added_rows(parts: list[Mapping[int, int]]) -> dict[int, int]:
    """Rows per day of several inputs together."""
    total: dict[int, int] = {}
    for part in parts:
        for day, rows in part.items():
            total[day] = total.get(day, 0) + rows
    return total


def task_inputs(
    step: Step, frames: Mapping[str, pl.DataFrame | pl.LazyFrame], days: list[int]
) -> dict[str, pl.DataFrame | pl.LazyFrame]:
    """The step's inputs for a task of ``days``: each partitioned input cut to those days and read (all
    in one parallel query, each from wherever it is: a scan reads only the files and row groups whose
    times can fall on them), the other inputs as they are."""
    import polars as pl

    cut = [name for name in step.inputs if name in step.partition_by]
    read = pl.collect_all(
        [frames[name].lazy().filter(on_days(step.partition_by[name], days)) for name in cut]
    )
    found = dict(zip(cut, read, strict=True))
    return {name: found[name] if name in found else frames[name] for name in step.inputs}


def build_task(
    step: Step, inputs: Mapping[str, pl.DataFrame | pl.LazyFrame], keywords: Mapping[str, Any]
) -> pl.DataFrame:
    """The step's transform on one task's inputs (``task_inputs``): its rows of the task's days, sorted."""
    return step.transform(*(inputs[name].lazy() for name in step.inputs), **keywords).collect(
        engine="in-memory"
    )


def cut_by_day(out: pl.DataFrame, days: list[int], column: str) -> dict[int, pl.DataFrame]:
    """A task's output by day of ``column`` (a day with no rows is absent); each day's rows keep their
    order, so each day's frame is sorted as the output is."""
    if out.is_empty():
        return {}
    if len(days) == 1:
        return {days[0]: out}
    cut = out.with_columns(day_of(column)).partition_by("_day", as_dict=True)
    return {day: part.drop("_day") for (day,), part in cut.items()}  # type: ignore[misc]


def build_days(
    step: Step,
    frames: Mapping[str, pl.DataFrame | pl.LazyFrame],
    keywords: Mapping[str, Any],
    days: Mapping[int, int],
    task_rows: int = TASK_ROWS,
) -> dict[int, pl.DataFrame]:
    """The step's table on each of ``days`` (a day with no rows out is absent), one transform per task
    of neighbouring days (``tasks``)."""
    built: dict[int, pl.DataFrame] = {}
    for group in tasks(days, task_rows):
        out = build_task(step, task_inputs(step, frames, group), keywords)
        built |= cut_by_day(out, group, step.partition_column)
    return built


@dataclass(frozen=True)
class DayTask:
    """One task of a table built by day, as a description another process can run (``run_day_task``): the
    days, where its readings are (the Parquet files holding each partitioned input, as paths of the
    lake's store: parse-cache entries or an input table's day files), and the run's options. The other
    inputs, the customer tables, are small and go to every task as they are."""

    step: Step  # its transform and inputs (module functions: a process gets them by name)
    days: tuple[int, ...]
    sources: Mapping[str, tuple[str, ...]]  # partitioned input -> its Parquet files
    keywords: Mapping[str, Any]
    waive: frozenset[str]
    run_id: str


@dataclass(frozen=True)
class DayTaskResult:
    """What a task did, as a description: each day's file written into the table's folder (its record:
    file, rows, size, statistics, content hash, partition values), its row checks, its counts of the rules
    between tables, and its output's Arrow schema."""

    days: dict[int, dict[str, Any]]
    checks: ValidationReport
    counts: PartCounts
    schema: Any
    notices: tuple[tuple[str, int, str], ...] = ()  # the step's notices on this task's inputs (Step.notice)


@dataclass(frozen=True)
class DayShared:
    """What every task of a table built by day shares: the lake, and the step's other inputs (the customer
    tables, sent to each worker once)."""

    lake: Lake
    broadcast: Mapping[str, pl.DataFrame | pl.LazyFrame]


def run_day_task(task: DayTask, shared: DayShared) -> DayTaskResult:
    """Read a task's days of its readings, build them with the step's own transform, derive the table's
    partition column, check the rows and the rules between tables, and write each day's file."""
    from stedi_etl.checks.rules import RelationTally, check_rows, failure_cases
    from stedi_etl.contracts import load_contract
    from stedi_etl.model.days import day_date

    lake, broadcast = shared.lake, shared.broadcast
    step = task.step
    contract = load_contract(step.table)
    frames = {
        name: lake.store.scan_parquet(task.sources[name], load_contract(name).file_schema())
        if name in step.partition_by
        else broadcast[name]
        for name in step.inputs
    }
    part = task_inputs(step, frames, list(task.days))
    out = build_task(step, part, task.keywords).with_columns(
        day_date(step.partition_column).alias(name) for name in contract.partition_columns
    )
    checks = check_rows(out, contract, failure_cases(out, contract, "error", task.waive), waive=task.waive)
    counts = RelationTally(contract, task.waive).count({**part, step.table: out})
    notices = (
        tuple(step.notice(*(part[name].lazy() for name in step.inputs), options=task.keywords))
        if step.notice is not None
        else ()
    )
    written = lake.write_days(
        step.table, cut_by_day(out, list(task.days), step.partition_column), task.run_id
    )
    return DayTaskResult(written, checks, counts, out.head(0).to_arrow().schema, notices)
