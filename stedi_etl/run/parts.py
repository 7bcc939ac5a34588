"""Building a step in key ranges of its large inputs, so no sort, dedupe or join holds more than a part.

Tuning, not meaning: the table is the same whole or in parts (tests/test_pipeline.py checks it), and the
part size is measured in benchmarks/FINDINGS.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from stedi_etl.model.steps import Step


# A step is built in parts of about this many rows of its largest split input. Parts bound what a step's
# sort and joins hold beyond its inputs, but the inputs are held whole anyway: at scale 100 (7.9M landing
# readings), 400k-row parts raised the peak from 1.59 to 1.88 GiB at the same speed, so only steps past
# that size are split.
PART_ROWS = 10_000_000


def build_in_parts(
    step: Step, inputs: list[pl.DataFrame], keywords: dict[str, Any], part_rows: int = PART_ROWS
) -> pl.DataFrame:
    """``step``'s table, built from key ranges of its split inputs and concatenated in range order.

    ``step.split_by`` names, for some inputs, the column their rows meet other rows on (join keys), the
    first being the output's first column. Every transform returns distinct rows sorted by all columns, so
    cutting each split input into the same ranges of its column, building each range from those slices
    (and the other inputs whole) and concatenating the parts in order gives exactly the whole table: equal
    rows and matching rows share a range. No sort, dedupe or join then holds more than a part, and no part
    reads more than its slice of a large input.
    """
    import polars as pl

    frames = dict(zip(step.inputs, inputs, strict=True))
    whole = step.transform(*(frame.lazy() for frame in inputs), **keywords)
    split = dict(step.split_by)
    if not split:
        return whole.collect(engine="in-memory")
    (leader, key), *_ = split.items()
    if key != whole.collect_schema().names()[0]:
        raise ValueError(f"{step.table}: split_by must start with the output's first column, not {key!r}")
    parts = -(-max(frames[name].height for name in split) // part_rows)
    if parts <= 1:
        return whole.collect(engine="in-memory")
    values = frames[leader].get_column(key).drop_nulls().unique().sort()
    bounds = values.gather([i * values.len() // parts for i in range(1, parts)]).unique().sort()
    if bounds.is_empty():
        return whole.collect(engine="in-memory")
    # Each row's range, found once (nulls sort first, into range 0): a part is then an integer filter.
    # Cutting the inputs up front with partition_by was faster but held a second copy of each.
    ranged = {
        name: frame.with_columns(
            bounds.search_sorted(frame.get_column(split[name]), side="right").alias("_range")
        ).lazy()
        for name, frame in frames.items()
        if name in split
    }
    built = []
    for index in range(bounds.len() + 1):
        sliced = [
            ranged[name].filter(pl.col("_range") == index).drop("_range") if name in split else frame.lazy()
            for name, frame in frames.items()
        ]
        built.append(step.transform(*sliced, **keywords).collect(engine="in-memory"))
    return pl.concat(built, how="vertical", rechunk=False)  # one copy of the table, not two
