"""Why rows of a step's source did not reach its table: one function per step, restating its transform's
semantics as counts over the very inputs the step was built from (positional, as the transform takes them).

The funnel (commands/funnel.py) adds them up; STEPS attaches each to its step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

# Why rows left, in the words the report shows (a stable id -> a label).
REASONS = {
    "quarantined": "quarantined (could not be read)",
    "no_consent": "no research consent",
    "not_consenting_customer": "not a consenting customer's reading",
    "before_consent": "taken before the customer consented",
    "no_readings": "no accelerometer readings",
    "no_curated_serial": "serial number of no curated customer",
    "no_match": "no matching accelerometer reading",
    "duplicates": "duplicates",
    "other": "other (not explained by the report)",
}


@dataclass(frozen=True)
class Loss:
    reason: str  # a key of REASONS
    rows: int

    @property
    def label(self) -> str:
        return REASONS.get(self.reason, self.reason)


Explained = tuple[tuple[Loss, ...], int | None, tuple[Loss, ...]]  # losses, pairs (joins), pair losses


def duplicates(frame: pl.DataFrame) -> int:
    return frame.height - frame.n_unique()


def filtered(reason: str, source: pl.DataFrame, kept: pl.DataFrame) -> Explained:
    """A filter's explanation: the rows it dropped for ``reason``, then the repeats among those it kept."""
    return (Loss(reason, source.height - kept.height), Loss("duplicates", duplicates(kept))), None, ()


def customer_trusted(customers: pl.DataFrame, *, options: Mapping[str, Any]) -> Explained:
    """transforms.customer_trusted: consenting records (of customers whose latest record consents, with
    ``consent="latest-record"``), distinct."""
    import polars as pl

    from stedi_etl.model.transforms import withdrawn

    consenting = customers.filter(pl.col("shareWithResearchAsOfDate").is_not_null())
    if options.get("consent") != "latest-record":
        return filtered("no_consent", customers, consenting)
    kept = consenting.join(withdrawn(customers.lazy()).collect(), on="email", how="anti")
    losses = (
        Loss("no_consent", customers.height - consenting.height),
        Loss("consent_withdrawn", consenting.height - kept.height),
        Loss("duplicates", duplicates(kept)),
    )
    return losses, None, ()


def consent_withdrawn(customers: pl.LazyFrame, *, options: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    """Under ``consent="per-record"``, the customers whose latest record withdraws the research consent an
    earlier record gave: their consenting records are kept, and the reader should know how many."""
    from stedi_etl.model.transforms import withdrawn

    if options.get("consent") == "latest-record":
        return []
    count = withdrawn(customers).select("email").collect().height
    text = (
        "customers whose latest record (by lastUpdateDate) withdraws the research consent an earlier record "
        "gave; their consenting records are kept (--consent latest-record leaves them out)"
    )
    return [("consent_withdrawn", count, text)] if count else []


def near_miss_users(
    readings: pl.LazyFrame, customers: pl.LazyFrame, *, options: Mapping[str, Any]
) -> list[tuple[str, int, str]]:
    """Readings whose user is no consenting customer's email as sent, but is one once spaces are trimmed
    and letter case ignored: matching stays exact (an email's owner is who sent it), and they are counted
    rather than dropped without a word."""
    import polars as pl

    emails = customers.select(pl.col("email").str.strip_chars().str.to_lowercase().alias("_folded")).unique()
    # Each distinct user once (the strings folded per user, not per reading: half the time at scale 100).
    count = (
        readings.group_by("user")
        .agg(pl.len().alias("_readings"))
        .join(customers.select("email"), left_on="user", right_on="email", how="anti")
        .with_columns(pl.col("user").str.strip_chars().str.to_lowercase().alias("_folded"))
        .join(emails, on="_folded", how="semi")
        .select(pl.col("_readings").sum())
        .collect()
        .item()
    )
    text = (
        "readings whose user matches a consenting customer's email only once spaces are trimmed or letter "
        "case ignored; matching is exact, so they are left out (fix the sender, or the customer record)"
    )
    return [("near_miss_user", count, text)] if count else []


def accelerometer_trusted(
    readings: pl.DataFrame, customers: pl.DataFrame, *, options: Mapping[str, Any]
) -> Explained:
    """transforms.accelerometer_trusted: readings of a consenting customer (at or after consent, with the
    consent cutoff), distinct."""
    import polars as pl

    ours = readings.join(customers.select("email").unique(), left_on="user", right_on="email", how="semi")
    losses = [Loss("not_consenting_customer", readings.height - ours.height)]
    if options.get("consent_cutoff"):
        consented_at = customers.group_by("email").agg(pl.col("shareWithResearchAsOfDate").max().alias("_at"))
        after = ours.join(consented_at, left_on="user", right_on="email").filter(
            pl.col("timestamp") >= pl.col("_at")
        )
        losses.append(Loss("before_consent", ours.height - after.height))
        ours = after.select(readings.columns)
    losses.append(Loss("duplicates", duplicates(ours)))
    return tuple(losses), None, ()


def customer_curated(
    customers: pl.DataFrame, readings: pl.DataFrame, *, options: Mapping[str, Any]
) -> Explained:
    """transforms.customer_curated: trusted customers with trusted readings, distinct."""
    with_readings = customers.join(
        readings.select("user").unique(), left_on="email", right_on="user", how="semi"
    )
    return filtered("no_readings", customers, with_readings)


def step_trainer_trusted(
    readings: pl.DataFrame, customers: pl.DataFrame, *, options: Mapping[str, Any]
) -> Explained:
    """transforms.step_trainer_trusted: readings of a curated customer's device, distinct."""
    owned = readings.join(customers.select("serialNumber").unique(), on="serialNumber", how="semi")
    return filtered("no_curated_serial", readings, owned)


def machine_learning_curated(
    step: pl.DataFrame,
    customers: pl.DataFrame,
    readings: pl.DataFrame,
    *,
    options: Mapping[str, Any],
) -> Explained:
    """transforms.machine_learning_curated: each step trainer reading paired with the accelerometer
    readings at that instant (of the device's owners, by default); pairs distinct in that mode only."""
    key = step.columns
    output = [*key, "x", "y", "z"]
    if options.get("ml_join") == "timestamp":
        pairs = step.join(readings, left_on="sensorReadingTime", right_on="timestamp")
        duplicate_pairs = 0  # the rubric's join keeps every pair
    else:
        owners = customers.select("serialNumber", "email").unique()
        pairs = step.join(owners, on="serialNumber").join(
            readings, left_on=["email", "sensorReadingTime"], right_on=["user", "timestamp"]
        )
        duplicate_pairs = duplicates(pairs.select(output))
    matched = pairs.select(key).n_unique()
    return (
        (Loss("no_match", step.n_unique() - matched), Loss("duplicates", duplicates(step))),
        pairs.height,
        (Loss("duplicates", duplicate_pairs),),
    )
