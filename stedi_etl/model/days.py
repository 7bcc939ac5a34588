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
