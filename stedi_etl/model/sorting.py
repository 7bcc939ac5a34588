"""The sort beneath the transforms: every table is distinct and sorted by all its columns, made fast here.

Tuning, not meaning: ``distinct(frame)`` gives exactly ``frame.unique().sort(pl.all())``.
"""

from __future__ import annotations

import polars as pl


def sorted_by_all(frame: pl.LazyFrame, *, distinct: bool = False) -> pl.LazyFrame:
    """``frame`` sorted by all of its columns, in order; with ``distinct``, each row once.

    In a table led by text, each text column is sorted by its rank among the column's distinct values: the
    same order as fixed-width integers, and faster than sorting text. Where a number leads (a reading's
    time), text only breaks its rare ties and the plain sort is faster. Once sorted, equal rows are
    neighbours, so a row whose sort keys equal the previous row's is a repeat: that comparison replaces
    ``unique``'s hash table over every row. Timings: benchmarks/FINDINGS.md, "Sorting by rank".
    """
    schema = frame.collect_schema()
    led_by_text = bool(schema) and schema.dtypes()[0] == pl.String
    texts = [name for name, dtype in schema.items() if dtype == pl.String] if led_by_text else []
    keyed = frame
    for name in texts:
        ranks = frame.select(name).unique().sort(name).with_row_index(f"_rank_{name}")
        keyed = keyed.join(ranks, on=name, how="left", nulls_equal=True)
    keys = [f"_rank_{name}" if name in texts else name for name in schema]
    ordered = keyed.sort(keys)
    if distinct:
        differs = [pl.col(key).ne_missing(pl.col(key).shift()) for key in keys]
        ordered = ordered.filter(pl.any_horizontal(differs) | (pl.int_range(pl.len()) == 0))
    return ordered.select(schema.names())


def distinct(frame: pl.LazyFrame) -> pl.LazyFrame:
    """The distinct rows of ``frame`` sorted by all columns: what ``unique().sort(pl.all())`` gives."""
    return sorted_by_all(frame, distinct=True)
