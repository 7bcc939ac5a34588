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

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from stedi_etl.model.steps import Step

DAY_MS = 86_400_000
NO_TIME = -(2**62)  # the day of a row without a reading time (contracts require one; still accounted for)
TASK_ROWS = 2_000_000  # input rows a task builds at once: days are grouped up to this size


def day_of(column: str) -> pl.Expr:
    """The UTC day number of a millisecond time column."""
    import polars as pl

    return (pl.col(column) // DAY_MS).fill_null(NO_TIME).alias("_day")


def day_digests(frame: pl.DataFrame, column: str) -> dict[int, str]:
    """Each day's rows of ``frame`` as one digest that does not depend on their order: a day whose digest
    is unchanged holds the same rows (as a multiset) as before."""
    import polars as pl

    if frame.is_empty():
        return {}
    hashes = frame.hash_rows(seed=7)
    sums = (
        pl.DataFrame({"_day": frame.select(day_of(column)).to_series(), "_hash": hashes})
        .group_by("_day")
        .agg(
            (pl.col("_hash") % 2**32).cast(pl.Int64).sum().alias("low"),
            (pl.col("_hash") // 2**32).cast(pl.Int64).sum().alias("high"),
            pl.len().alias("rows"),
        )
    )
    return {
        day: hashlib.sha256(f"{day} {rows} {low} {high}".encode()).hexdigest()[:32]
        for day, low, high, rows in sums.iter_rows()
    }


def input_days(step: Step, frames: Mapping[str, pl.DataFrame]) -> dict[int, int]:
    """Every day some partitioned input of ``step`` has rows on, with the number of those rows."""
    import polars as pl

    counts: dict[int, int] = {}
    for name, column in step.partition_by.items():
        found = frames[name].select(day_of(column)).group_by("_day").agg(pl.len().alias("rows"))
        for day, rows in found.iter_rows():
            counts[day] = counts.get(day, 0) + rows
    return counts


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
    import polars as pl

    built: dict[int, pl.DataFrame] = {}
    for group in tasks(days, task_rows):
        wanted = pl.Series("_days", group, dtype=pl.Int64)
        inputs = [
            frames[name].lazy().filter(day_of(step.partition_by[name]).is_in(wanted.implode()))
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
