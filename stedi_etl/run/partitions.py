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

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from stedi_etl.model.days import DAY_MS, NO_TIME, day_of, day_sums, digests

__all__ = [
    "DAY_MS",
    "NO_TIME",
    "added_rows",
    "build_days",
    "day_digests",
    "day_of",
    "input_days",
    "on_days",
    "tasks",
]

if TYPE_CHECKING:
    import polars as pl

    from stedi_etl.model.steps import Step

TASK_ROWS = 2_000_000  # input rows a task builds at once: days are grouped up to this size


def day_digests(frame: pl.DataFrame, column: str) -> dict[int, str]:
    """Each day's rows of ``frame`` as one digest that does not depend on their order: a day whose digest
    is unchanged holds the same rows (as a multiset) as before."""
    return digests(day_sums(frame, column).get(0, {}))


def on_days(column: str, days: Iterable[int]) -> pl.Expr:
    """Rows whose time falls on one of ``days``; also as a time range, which lets a scan of Parquet or
    Delta files skip the files and row groups whose statistics lie outside it."""
    import polars as pl

    wanted = sorted(days)
    exact = day_of(column).is_in(pl.Series("_days", wanted, dtype=pl.Int64).implode())
    if not wanted or wanted[0] == NO_TIME:
        return exact
    time = pl.col(column)
    return (time >= wanted[0] * DAY_MS) & (time < (wanted[-1] + 1) * DAY_MS) & exact


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


def tasks(days: Mapping[int, int], task_rows: int = TASK_ROWS) -> list[list[int]]:
    """The days to build, in order, grouped into runs of neighbouring days of about ``task_rows`` rows."""
    grouped: list[list[int]] = []
    size = 0
    for day in sorted(days):
        if grouped and size + days[day] <= task_rows:
            grouped[-1].append(day)
            size += days[day]
        else:
            grouped.append([day])
            size = days[day]
    return grouped


def build_days(
    step: Step,
    frames: Mapping[str, pl.DataFrame],
    keywords: Mapping[str, Any],
    days: Mapping[int, int],
    task_rows: int = TASK_ROWS,
) -> dict[int, pl.DataFrame]:
    """The step's table on each of ``days`` (a day with no rows out is absent), one transform per task.

    Each task filters the partitioned inputs to its days, passes the other inputs whole, and cuts its
    output by day; every transform's output is sorted, so each day's frame is too.
    """

    built: dict[int, pl.DataFrame] = {}
    for group in tasks(days, task_rows):
        inputs = [
            frames[name].lazy().filter(on_days(step.partition_by[name], group))
            if name in step.partition_by
            else frames[name].lazy()
            for name in step.inputs
        ]
        out = step.transform(*inputs, **keywords).collect(engine="in-memory")
        if out.is_empty():
            continue
        if len(group) == 1:
            built[group[0]] = out
            continue
        cut = out.with_columns(day_of(step.partition_column)).partition_by("_day", as_dict=True)
        for (day,), part in cut.items():
            built[day] = part.drop("_day")
    return built
