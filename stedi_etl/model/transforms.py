"""What each table means: pure functions, LazyFrames in, one LazyFrame out, no I/O, no state.

Each output is distinct (Glue's jobs appended duplicates and let joins multiply rows) and sorted by all of
its columns, so the same input gives the same rows in the same order on every run. How that sort is made
fast is sorting.py's business, not this file's.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from stedi_etl.model.sorting import distinct

Consent = Literal["per-record", "latest-record"]
MlJoin = Literal["same-customer", "timestamp"]


def _columns(frame: pl.LazyFrame) -> list[str]:
    return frame.collect_schema().names()


def customer_trusted(customers: pl.LazyFrame, *, consent: Consent = "per-record") -> pl.LazyFrame:
    """Distinct customer records with research consent; an absent or null consent date is no consent.

    With ``consent="latest-record"``, only the records of customers whose latest record (by lastUpdateDate)
    consents: a customer who withdrew consent in a later record is out, earlier records and all.
    """
    consenting = customers.filter(pl.col("shareWithResearchAsOfDate").is_not_null())
    if consent == "latest-record":
        consenting = consenting.join(withdrawn(customers), on="email", how="anti")
    return distinct(consenting)


def withdrawn(customers: pl.LazyFrame) -> pl.LazyFrame:
    """The emails (column ``email``) whose latest record lacks research consent while an earlier one has it.

    A customer's latest records are those with the greatest lastUpdateDate, a null one counting as the
    oldest; where several records tie as latest, one without consent decides (a withdrawal is never lost
    to an ordering accident).
    """
    updated = pl.col("lastUpdateDate").fill_null(pl.lit(-(2**63), pl.Int64))
    consents = pl.col("shareWithResearchAsOfDate").is_not_null()
    return (
        customers.group_by("email")
        .agg(
            (~consents).filter(updated == updated.max()).any().alias("_latest_withdraws"),
            consents.any().alias("_ever_consented"),
        )
        .filter(pl.col("_latest_withdraws") & pl.col("_ever_consented"))
        .select("email")
    )


def accelerometer_trusted(
    readings: pl.LazyFrame, customers: pl.LazyFrame, *, consent_cutoff: bool = False
) -> pl.LazyFrame:
    """Distinct readings whose user is a consenting customer's email; accelerometer columns only.

    With ``consent_cutoff``, only readings taken at or after the customer consented. A customer with several
    records counts from the latest consent date among them: the conservative choice, which keeps the
    fewest readings.
    """
    if not consent_cutoff:
        kept = readings.join(customers.select("email"), left_on="user", right_on="email", how="semi")
        return distinct(kept)
    consented_at = customers.group_by("email").agg(
        pl.col("shareWithResearchAsOfDate").max().alias("_consented_at")
    )
    kept = readings.join(consented_at, left_on="user", right_on="email", how="inner").filter(
        pl.col("timestamp") >= pl.col("_consented_at")
    )
    return distinct(kept.select(_columns(readings)))


def customer_curated(customers: pl.LazyFrame, readings: pl.LazyFrame) -> pl.LazyFrame:
    """Distinct consenting customers who have trusted accelerometer readings; customer columns only."""
    return distinct(customers.join(readings.select("user"), left_on="email", right_on="user", how="semi"))


def step_trainer_trusted(step_readings: pl.LazyFrame, customers: pl.LazyFrame) -> pl.LazyFrame:
    """Distinct step trainer readings of devices that belong to a curated customer."""
    return distinct(step_readings.join(customers.select("serialNumber"), on="serialNumber", how="semi"))


def machine_learning_curated(
    step_readings: pl.LazyFrame,
    customers: pl.LazyFrame,
    readings: pl.LazyFrame,
    *,
    ml_join: MlJoin = "same-customer",
) -> pl.LazyFrame:
    """Each step trainer reading beside the accelerometer readings taken at the same instant.

    ``same-customer`` (the default) pairs a device's reading only with readings of the customers who own the
    device (serialNumber -> email -> user). ``timestamp`` is the course rubric's looser join: any customer's
    reading at that instant; it keeps every pair, so rows repeat where two customers' readings look alike.
    The output has the step trainer's columns and x, y, z: no email or other personal data.
    """
    output = [*_columns(step_readings), "x", "y", "z"]
    if ml_join == "timestamp":
        pairs = step_readings.join(readings, left_on="sensorReadingTime", right_on="timestamp", how="inner")
        return pairs.select(output).sort(pl.all())
    if ml_join != "same-customer":
        raise ValueError(f"unknown ml_join {ml_join!r}")
    owners = customers.select("serialNumber", "email").unique()
    pairs = step_readings.join(owners, on="serialNumber", how="inner").join(
        readings,
        left_on=["email", "sensorReadingTime"],
        right_on=["user", "timestamp"],
        how="inner",
    )
    return distinct(pairs.select(output))
