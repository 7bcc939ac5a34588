"""What a correct run must build from good landing rows: every table's row count, by the zone definitions.

The one oracle of both generators. It is written with plain Polars unique and joins on the landing
contracts' columns, not with stedi-etl's transforms, so a generator's expectations check the pipeline
against the definitions rather than against itself (tests/test_generate.py has a third, pure-Python one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl


def frame_of(rows: Iterable[Sequence[Any]], columns: Sequence[str]) -> pl.DataFrame:
    """Row tuples in ``columns``' order as a frame (values of one column may mix ints and floats)."""
    return pl.DataFrame(
        list(rows), schema=list(columns), orient="row", strict=False, infer_schema_length=None
    )


def expected_tables(customers: pl.DataFrame, readings: pl.DataFrame, steps: pl.DataFrame) -> dict[str, int]:
    """Row counts of the five lake tables for these good landing rows (default options)."""
    trusted = customers.filter(pl.col("shareWithResearchAsOfDate").is_not_null()).unique()
    consenting = trusted.select("email").unique()
    accelerometer = readings.join(consenting, left_on="user", right_on="email", how="semi").unique()
    curated = trusted.join(
        accelerometer.select("user").unique(), left_on="email", right_on="user", how="semi"
    )
    owners = curated.select("serialNumber", "email").unique()
    step_trusted = steps.join(owners.select("serialNumber").unique(), on="serialNumber", how="semi").unique()
    paired = (
        step_trusted.join(owners, on="serialNumber")
        .join(accelerometer, left_on=["email", "sensorReadingTime"], right_on=["user", "timestamp"])
        .select(*steps.columns, "x", "y", "z")
        .unique()
    )
    return {
        "customer_trusted": trusted.height,
        "accelerometer_trusted": accelerometer.height,
        "customer_curated": curated.height,
        "step_trainer_trusted": step_trusted.height,
        "machine_learning_curated": paired.height,
    }
