"""The day of a reading: the unit the reading tables are built and kept by (run/partitions.py).

A day is the UTC day of a reading's time (milliseconds since the epoch // 86,400,000). A day's rows are
summed into an order-independent digest: the sums of the two 32-bit halves of each row's hash and the row
count. Sums add up, so the digest of a day across many landing files is the sum of each file's, kept with
its parse, and a run need not hash rows it has hashed before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

DAY_MS = 86_400_000
NO_TIME = -(2**62)  # the day of a row without a reading time (contracts require one; still accounted for)
HASH_SEED = 7

DaySums = dict[int, tuple[int, int, int]]  # day -> (rows, sum of low halves, sum of high halves)


def day_of(column: str) -> pl.Expr:
    """The UTC day number of a millisecond time column."""
    import polars as pl

    return (pl.col(column) // DAY_MS).fill_null(NO_TIME).alias("_day")


def day_date(column: str) -> pl.Expr:
    """The UTC day of a millisecond time column as a date (null for a null time): a table's partition
    column as readers see it."""
    import polars as pl

    return (pl.col(column) // DAY_MS).cast(pl.Int32).cast(pl.Date)


def day_sums(frame: pl.DataFrame, column: str, by: pl.Series | None = None) -> dict[int, DaySums]:
    """Each day's sums of ``frame``'s rows, per value of ``by`` (one group, 0, without it)."""
    import polars as pl

    if frame.is_empty():
        return {}
    hashes = frame.hash_rows(seed=HASH_SEED)
    groups = by if by is not None else pl.repeat(0, frame.height, dtype=pl.Int64, eager=True)
    sums = (
        pl.DataFrame({"_by": groups, "_day": frame.select(day_of(column)).to_series(), "_hash": hashes})
        .group_by("_by", "_day")
        .agg(
            pl.len().alias("rows"),
            (pl.col("_hash") % 2**32).cast(pl.Int64).sum().alias("low"),
            (pl.col("_hash") // 2**32).cast(pl.Int64).sum().alias("high"),
        )
    )
    found: dict[int, DaySums] = {}
    for group, day, rows, low, high in sums.iter_rows():
        found.setdefault(group, {})[day] = (rows, low, high)
    return found


def added(parts: Iterable[Mapping[int, tuple[int, int, int]]]) -> DaySums:
    """Day sums of several parts together."""
    total: DaySums = {}
    for part in parts:
        for day, (rows, low, high) in part.items():
            before = total.get(day, (0, 0, 0))
            total[day] = (before[0] + rows, before[1] + low, before[2] + high)
    return total


def digests(sums: Mapping[int, tuple[int, int, int]]) -> dict[int, str]:
    """Each day's digest: equal for the same rows, in any order and any split into files."""
    return {
        day: hashlib.sha256(f"{day} {rows} {low} {high}".encode()).hexdigest()[:32]
        for day, (rows, low, high) in sums.items()
    }


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


def tasks(days: Mapping[int, int], task_rows: int) -> list[list[int]]:
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
